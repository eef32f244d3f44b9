/**
 * Unknown migrations, from record to resolution: a migrate step that ended with
 * TIDE_MIGRATION_UNKNOWN (the target could not be asked; the source was left paused) is written
 * to the store; every controller round — and `tide reconcile` — asks the hypervisor driver to
 * reconcile each open one (the recovery decision table, docs/drivers.md "Recovery") and records
 * the outcome. While a record is not resolved the VM and both hosts are blocked: the planner
 * does not move that VM, and neither host is a source, target or power-off candidate (see
 * `blocksOf` and `guardPlan`). Failing closed: a driver without reconcile, a reconcile that
 * throws, or a cluster lock held by another process leaves the record open and the block on.
 */
import type { Clock } from '../core/clock.js';
import type { Plan, Step } from '../core/plan/types.js';
import { isDriverError } from '../drivers/errors.js';
import type { HypervisorDriver, RecoveryOutcome } from '../drivers/hypervisor.js';
import type { StepRun } from '../executor/executor.js';
import { checkFence, heldLease } from '../store/lock.js';
import type { Store, UnknownMigration } from '../store/store.js';

/** One reconcile attempt as reported (CLI, controller observer). */
export interface ReconcileReport {
  vm: string;
  from: string;
  to: string;
  /** The store record's id (null when the store had none and none was needed). */
  id: number | null;
  /** The driver's outcome; 'unknown' also when the driver cannot reconcile or the call failed. */
  outcome: RecoveryOutcome;
  /** After this attempt: open (still unknown), operator (ran on both / split), resolved. */
  status: UnknownMigration['status'];
  reason: string;
  actions: string[];
  vmOn: string | null;
  attempts: number;
}

/** What an unresolved unknown migration blocks: the VM, and its two hosts, each with why. */
export interface Blocks {
  readonly vms: ReadonlyMap<string, string>;
  readonly hosts: ReadonlyMap<string, string>;
}

export const NO_BLOCKS: Blocks = { vms: new Map(), hosts: new Map() };

/**
 * Records a migrate step that ended with TIDE_MIGRATION_UNKNOWN; returns whether it was one.
 * Called from the executor's onStepEnd (controller, evacuate).
 */
export function recordUnknownStep(store: Store | undefined, planId: number | null, r: StepRun, atMs: number): boolean {
  const s = r.step;
  if (!store || s.kind !== 'migrate' || r.state !== 'failed' || r.error?.code !== 'TIDE_MIGRATION_UNKNOWN') return false;
  store.recordUnknownMigration({ vm: s.vm, from: s.from, to: s.to, planId, sinceMs: r.endedAt ?? atMs, reason: `${r.error.code}: ${r.error.message}` });
  return true;
}

/** The blocks of every record not resolved yet (open or waiting for an operator). */
export function blocksOf(records: readonly UnknownMigration[]): Blocks {
  const vms = new Map<string, string>();
  const hosts = new Map<string, string>();
  for (const u of records) {
    const why = u.status === 'operator'
      ? `the migration of ${u.vm} from ${u.from} to ${u.to} needs an operator (${u.outcome}: ${u.outcomeReason ?? ''})`
      : `the migration of ${u.vm} from ${u.from} to ${u.to} has an unknown outcome since ${new Date(u.sinceMs).toISOString()} (not reconciled yet${u.outcomeReason ? `: ${u.outcomeReason}` : ''})`;
    vms.set(u.vm, why);
    for (const h of [u.from, u.to]) if (!hosts.has(h)) hosts.set(h, why);
  }
  return { vms, hosts };
}

/**
 * Removes from `plan` every step that would touch a blocked VM or host — a move of the VM, any
 * move to or from either host, a power action on either — and every step that depends on a
 * removed one; each blocked VM gets a 'migration-unknown' entry in notMoved. The snapshot
 * already marks them (VM not migratable, hosts excluded), so with a well-behaved policy this
 * removes nothing: it is the guard for policies that ignore those marks (e.g. power-off of
 * any empty host).
 */
export function guardPlan(plan: Plan, blocks: Blocks, vmHost: ReadonlyMap<string, string | null>): Plan {
  if (blocks.vms.size === 0 && blocks.hosts.size === 0) return plan;
  const touches = (s: Step): boolean => {
    switch (s.kind) {
      case 'migrate': return blocks.vms.has(s.vm) || blocks.hosts.has(s.from) || blocks.hosts.has(s.to);
      case 'place': return blocks.vms.has(s.vm) || blocks.hosts.has(s.to);
      default: return blocks.hosts.has(s.host);
    }
  };
  const removed = new Set<number>();
  let changed = true;
  while (changed) {
    changed = false;
    for (const s of plan.steps) {
      if (removed.has(s.id)) continue;
      if (touches(s) || s.deps.some((d) => removed.has(d))) {
        removed.add(s.id);
        changed = true;
      }
    }
  }
  const notMoved = [...plan.notMoved];
  for (const [vm, why] of blocks.vms) {
    if (!vmHost.has(vm) || notMoved.some((n) => n.vm === vm && n.code === 'migration-unknown')) continue;
    notMoved.push({ vm, host: vmHost.get(vm) ?? null, code: 'migration-unknown', reason: why, by: 'reconcile' });
  }
  return { ...plan, steps: plan.steps.filter((s) => !removed.has(s.id)), notMoved };
}

export interface ReconcileOptions {
  /** Only this VM (its record, or `from`/`to` when the store has none). */
  readonly vm?: string;
  readonly from?: string;
  readonly to?: string;
  /** Let running jobs settle this long, ms (the driver's default: 0). */
  readonly settleMs?: number;
  /**
   * The operator has settled a record waiting for one ('both', 'split') by hand: reconcile it
   * again (the table then finds one copy and closes it). Without it such records are reported,
   * never reconciled.
   */
  readonly operatorDone?: boolean;
}

/**
 * Reconciles the store's open unknown migrations (or one VM's) and records each outcome.
 * Records waiting for an operator ('both', 'split') are reported as they are and reconciled
 * only with `operatorDone` (for a named VM): reconciling them on its own would let the
 * decision table pick which of two copies that both ran to keep (it destroys a paused source
 * beside a running target), which is the operator's call. A VM named without a record needs
 * `from` and `to`; when its outcome is not settled it is recorded (and blocked) like a failed
 * step.
 */
export async function reconcileUnknown(store: Store, hypervisor: HypervisorDriver, clock: Clock, o: ReconcileOptions = {}): Promise<ReconcileReport[]> {
  let todo: { rec: UnknownMigration | null; from: string; to: string }[];
  if (o.vm === undefined) {
    // open ones are reconciled; those waiting for an operator are reported (see above)
    todo = store.unknownMigrations().map((rec) => ({ rec, from: rec.from, to: rec.to }));
  } else {
    const rec = store.unknownMigrations({ vm: o.vm })[0] ?? null;
    const from = o.from ?? rec?.from;
    const to = o.to ?? rec?.to;
    if (from === undefined || to === undefined) return [];
    todo = [{ rec, from, to }];
  }
  const out: ReconcileReport[] = [];
  for (const { rec, from, to } of todo) {
    const vm = rec?.vm ?? o.vm!;
    let outcome: RecoveryOutcome = 'unknown';
    let reason: string;
    let actions: string[] = [];
    let vmOn: string | null = null;
    if (rec?.status === 'operator' && !o.operatorDone) {
      out.push({
        vm, from, to, id: rec.id, outcome: (rec.outcome ?? 'unknown') as RecoveryOutcome, status: 'operator', actions: [], vmOn: null, attempts: rec.attempts,
        reason: `needs an operator: ${rec.outcomeReason ?? rec.reason}; once one copy is left, run tide reconcile ${vm} --operator-done`,
      });
      continue;
    }
    if (!hypervisor.reconcile) {
      reason = `the ${hypervisor.kind} driver cannot reconcile a migration; resolve it by hand and run tide reconcile ${vm}`;
    } else {
      try {
        // Reconciling may act (resume or destroy a copy): fenced when run under the cluster lock.
        if (heldLease(store)) checkFence(store, `reconciling ${vm}`);
        const r = await hypervisor.reconcile(vm, { from, to, ...(o.settleMs !== undefined ? { settleMs: o.settleMs } : {}) });
        ({ outcome, reason, vmOn } = r);
        actions = [...r.actions];
      } catch (e) {
        reason = `reconcile failed: ${isDriverError(e) ? `${e.code}: ${e.message}` : (e as Error)?.message ?? String(e)}`;
      }
    }
    const atMs = clock.now();
    let id = rec?.id ?? null;
    // a VM named without a record is recorded only when it is still unknown (it must be blocked)
    if (id === null && (outcome === 'unknown' || outcome === 'both' || outcome === 'split')) id = store.recordUnknownMigration({ vm, from, to, planId: null, sinceMs: atMs, reason });
    const saved = id === null ? null : store.recordReconcile(id, { atMs, outcome, reason, actions, vmOn });
    out.push({
      vm, from, to, id, outcome, reason, actions, vmOn,
      status: saved?.status ?? (outcome === 'both' || outcome === 'split' ? 'operator' : 'resolved'),
      attempts: saved?.attempts ?? 1,
    });
  }
  return out;
}
