/**
 * A plan is data: ordered steps with dependencies, each with a human-readable reason, plus an
 * account of what was *not* done and why. The executor runs it; the CLI prints it; the
 * simulator replays it. Producing a plan never changes anything.
 */
import type { RejectionSummary } from '../place/placement.js';
import type { HostId, VmId } from '../model/types.js';

interface StepBase {
  /** Unique within the plan; dependencies refer to it. */
  readonly id: number;
  /** Steps that must have succeeded before this one may start. */
  readonly deps: readonly number[];
  /** Why, in one sentence with the numbers. */
  readonly reason: string;
  /** Component that decided (e.g. 'overload:thr(0.8)/mmt/pabfd', 'consolidate'). */
  readonly by: string;
}

export interface MigrateStep extends StepBase {
  readonly kind: 'migrate';
  readonly vm: VmId;
  readonly from: HostId;
  readonly to: HostId;
  /** Memory to copy, MiB (the main migration cost). */
  readonly memMiB: number;
}

/** First placement of a VM that runs nowhere yet (new VM, or initial placement in a simulation). */
export interface PlaceStep extends StepBase {
  readonly kind: 'place';
  readonly vm: VmId;
  readonly to: HostId;
}

export interface PowerOnStep extends StepBase {
  readonly kind: 'powerOn';
  readonly host: HostId;
}

export interface PowerOffStep extends StepBase {
  readonly kind: 'powerOff';
  readonly host: HostId;
}

export type PowerStep = PowerOnStep | PowerOffStep;

export type Step = MigrateStep | PlaceStep | PowerStep;

/** unknown: the host did not answer; it is left out of the plan (see PowerState). */
export type HostClass = 'overloaded' | 'underloaded' | 'normal' | 'off' | 'maintenance' | 'excluded' | 'spare' | 'unknown';

/** How the planner saw each host this round (the "explain every non-move" part for hosts). */
export interface HostVerdict {
  readonly host: HostId;
  readonly class: HostClass;
  readonly reason: string;
  readonly by: string;
}

/** A VM the planner wanted to move (or place) but did not, and why. */
export interface NotMoved {
  readonly vm: VmId;
  readonly host: HostId | null;
  /** Stable code, e.g. 'no-host-fits', 'cooldown', 'would-be-undone', 'cycle-deferred'. */
  readonly code: string;
  readonly reason: string;
  readonly by: string;
  /** For 'no-host-fits': which filters rejected how many hosts, with examples. */
  readonly rejections?: readonly RejectionSummary[];
}

export interface Plan {
  readonly policy: string;
  /** Snapshot time the plan was made for, s. */
  readonly time: number;
  readonly steps: readonly Step[];
  readonly hosts: readonly HostVerdict[];
  readonly notMoved: readonly NotMoved[];
}

export function migrations(plan: Plan): MigrateStep[] {
  return plan.steps.filter((s): s is MigrateStep => s.kind === 'migrate');
}
