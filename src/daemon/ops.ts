/**
 * What an operator does to a running daemon, through the store it shares with it (so it works
 * from any process on the machine, while the daemon holds the cluster lock): list and show
 * plans, approve or reject one, put a host in or out of maintenance, read the status. The CLI's
 * plans, plan show, approve, reject, host maintenance and status commands are thin shells.
 */
import { hostname, userInfo } from 'node:os';
import type { TideConfig } from '../config/schema.js';
import { compileSchedule } from '../config/schedule.js';
import type { HostVerdict, NotMoved, Step } from '../core/plan/types.js';
import { activeWindow } from '../core/schedule.js';
import { DriverError } from '../drivers/errors.js';
import { effectiveConfig, type Provenance } from '../http/overrides.js';
import {
  describeHolder, type DaemonStatusRecord, type HeldClusterLock, type HostState, type LockHolder, type PlanStatus, type Store, type StoredPlan, type StoredStepRun, type UnknownMigration,
} from '../store/store.js';

/** "alice@ctl-1" (user name unknown: "?@ctl-1"). */
export function operatorName(env: Readonly<Record<string, string | undefined>> = process.env): string {
  let user: string | undefined;
  try {
    user = userInfo().username;
  } catch {
    user = env.USER ?? env.LOGNAME;
  }
  return `${user ?? '?'}@${hostname()}`;
}

export interface PlanRow {
  readonly id: number;
  readonly createdMs: number;
  readonly mode: string;
  readonly policy: string;
  readonly status: PlanStatus;
  readonly statusReason: string | null;
  readonly steps: number;
  /** "3 migrations, 1 power-off" */
  readonly summary: string;
}

function summarize(steps: readonly Step[]): string {
  const n = (k: Step['kind']): number => steps.filter((s) => s.kind === k).length;
  const parts = [[n('migrate'), 'migration'], [n('place'), 'placement'], [n('powerOn'), 'power-on'], [n('powerOff'), 'power-off']] as const;
  const out = parts.filter(([c]) => c > 0).map(([c, w]) => `${c} ${w}${c === 1 ? '' : 's'}`);
  return out.length ? out.join(', ') : 'no step';
}

export function planRow(p: StoredPlan): PlanRow {
  return {
    id: p.id, createdMs: p.createdMs, mode: p.mode, policy: p.policy, status: p.status, statusReason: p.statusReason ?? null,
    steps: p.plan.steps.length, summary: summarize(p.plan.steps),
  };
}

export function listPlanRows(store: Store, opts: { status?: PlanStatus; limit?: number } = {}): PlanRow[] {
  return store.listPlans(opts).map(planRow);
}

export interface PlanStepDetail {
  readonly id: number;
  readonly kind: Step['kind'];
  readonly vm: string | null;
  readonly from: string | null;
  readonly to: string | null;
  readonly host: string | null;
  readonly deps: readonly number[];
  readonly reason: string;
  readonly by: string;
  /** From the store: pending (never started), running, succeeded, failed, skipped, cancelled. */
  readonly state: string;
  readonly startedMs: number | null;
  readonly endedMs: number | null;
  readonly error: { readonly code: string; readonly message: string } | null;
  readonly note: string | null;
}

export interface PlanDetail extends PlanRow {
  readonly fingerprint: string | null;
  readonly confirmedMs: number | null;
  readonly stepDetails: readonly PlanStepDetail[];
  readonly notMoved: readonly NotMoved[];
  readonly hosts: readonly HostVerdict[];
}

export function planDetail(store: Store, id: number): PlanDetail {
  const p = store.getPlan(id);
  if (!p) throw new DriverError('TIDE_NO_SUCH_PLAN', `no plan with id ${id} in the store`, { planId: id });
  const runs = new Map<number, StoredStepRun>(store.stepRuns(id).map((r) => [r.stepId, r]));
  return {
    ...planRow(p),
    fingerprint: p.fingerprint ?? null,
    confirmedMs: p.confirmedMs ?? null,
    stepDetails: p.plan.steps.map((s) => {
      const r = runs.get(s.id);
      return {
        id: s.id, kind: s.kind, vm: 'vm' in s ? s.vm : null, from: s.kind === 'migrate' ? s.from : null,
        to: s.kind === 'migrate' || s.kind === 'place' ? s.to : null, host: s.kind === 'powerOn' || s.kind === 'powerOff' ? s.host : null,
        deps: s.deps, reason: s.reason, by: s.by, state: r?.state ?? 'pending', startedMs: r?.startedMs ?? null, endedMs: r?.endedMs ?? null,
        error: r?.errorCode ? { code: r.errorCode, message: r.errorMessage ?? '' } : null, note: r?.note ?? null,
      };
    }),
    notMoved: p.plan.notMoved,
    hosts: p.plan.hosts,
  };
}

/**
 * Approves a proposed plan (atomically: it must still be 'proposed'). The daemon executes it at
 * its next round if the cluster still matches it. Approving an approved plan is a no-op.
 * Refused (TIDE_PLAN_STATE) for a plan made in recommend mode, or one no longer proposed.
 */
export function approvePlan(store: Store, id: number, by: string): StoredPlan {
  const p = store.getPlan(id);
  if (!p) throw new DriverError('TIDE_NO_SUCH_PLAN', `no plan with id ${id} in the store`, { planId: id });
  if (p.status === 'approved') return p;
  if (p.mode === 'recommend') {
    throw new DriverError('TIDE_PLAN_STATE', `plan ${id} was made in recommend mode, which never executes; set mode: approve (or automatic) in the configuration and reload the daemon`, { planId: id });
  }
  if (!store.transitionPlan(id, ['proposed'], 'approved', `approved by ${by}`)) {
    const now = store.getPlan(id)!;
    throw new DriverError('TIDE_PLAN_STATE', `plan ${id} is ${now.status}${now.statusReason ? ` (${now.statusReason})` : ''}, not proposed: only a proposed plan can be approved`, { planId: id, status: now.status });
  }
  return store.getPlan(id)!;
}

/** Rejects a proposed or approved plan (never executed). Rejecting a rejected plan is a no-op. */
export function rejectPlan(store: Store, id: number, by: string, reason?: string): StoredPlan {
  const p = store.getPlan(id);
  if (!p) throw new DriverError('TIDE_NO_SUCH_PLAN', `no plan with id ${id} in the store`, { planId: id });
  if (p.status === 'rejected') return p;
  if (!store.transitionPlan(id, ['proposed', 'approved'], 'rejected', `rejected by ${by}${reason ? `: ${reason}` : ''}`)) {
    const now = store.getPlan(id)!;
    throw new DriverError('TIDE_PLAN_STATE', `plan ${id} is ${now.status}, not proposed or approved: it cannot be rejected`, { planId: id, status: now.status });
  }
  return store.getPlan(id)!;
}

/** Sets a configured host's maintenance state in the store (TIDE_NO_SUCH_HOST for a host not in the configuration). */
export function setMaintenance(store: Store, config: Pick<TideConfig, 'hosts'>, host: string, on: boolean, by: string, reason?: string, atMs = Date.now()): HostState {
  if (!config.hosts.some((h) => h.name === host)) {
    throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${host}' in the configuration (hosts: ${config.hosts.map((h) => h.name).join(', ')})`, { host });
  }
  return store.setHostMaintenance(host, on, { atMs, by, ...(reason ? { reason } : {}) });
}

export interface StatusReport {
  /** The daemon as its status row says; alive: it did not stop, and wrote within 3 intervals (or 90 s) or holds the cluster lock with a fresh heartbeat. */
  readonly daemon: (DaemonStatusRecord & { readonly alive: boolean; readonly heartbeatAgeMs: number }) | null;
  /** The daemon's mode, else the configuration's. */
  readonly mode: string;
  readonly intervalSec: number;
  /** The schedule window in force now (computed from the configuration; the daemon's own when it is alive). */
  readonly window: { readonly kind: string; readonly name: string; readonly untilMs: number | null } | null;
  readonly frozen: { readonly frozen: boolean; readonly reason: string | null; readonly sinceMs?: number | null };
  readonly pendingApproval: readonly PlanRow[];
  readonly approved: readonly PlanRow[];
  readonly unknownMigrations: readonly UnknownMigration[];
  readonly lock: (HeldClusterLock & { readonly holderText: string }) | null;
  readonly maintenance: readonly HostState[];
  /**
   * Leader election (several controllers): who leads — the lock's holder, since when, and when
   * its lease expires unless renewed (last heartbeat + TTL, by the store's clock); expired: a
   * standby may take over now. null: no controller holds the lock.
   */
  readonly leader: {
    readonly holderText: string; readonly host: string; readonly pid: number;
    /** The leading controller's node id (daemon.nodeId; null: a lease taken by a one-shot command or an older Tide). */
    readonly node: string | null;
    readonly sinceMs: number; readonly leaseExpiresMs: number; readonly expired: boolean;
  } | null;
  /**
   * This controller: the node id of the configuration's daemon (src/daemon/node-id.ts; null
   * without a configuration) — 'leader' when the current lease carries that node id; without a
   * node id on either side, by hostname (where `tide status` runs), as before node ids.
   */
  readonly thisNode: { readonly host: string; readonly node: string | null; readonly role: 'leader' | 'standby' };
  /**
   * The policy in force and where it comes from: the configuration file, or an edit through the
   * HTTP API kept in the store (when, by which token); rules likewise (src/http/overrides.ts).
   * null without a configuration.
   */
  readonly policy: { readonly name: string; readonly args: Record<string, unknown> } & Provenance | null;
  readonly rules: Provenance | null;
}

export function statusReport(store: Store, config: TideConfig | null, nowMs = Date.now(), node: string | null = null): StatusReport {
  const row = store.daemonStatus() ?? null;
  const eff = config ? effectiveConfig(config, store) : null;
  const ageMs = row ? nowMs - row.heartbeatMs : Infinity;
  const lock = store.clusterLock();
  // Alive: its status row is recent, or it holds the cluster lock with a fresh heartbeat (a
  // round executing long migrations writes no status row meanwhile, but renews the lock).
  const holdsLock = row !== null && lock !== undefined && lock.holder.pid === row.pid && lock.holder.host === row.host && nowMs - lock.heartbeatMs <= lock.ttlMs;
  const alive = row !== null && row.state !== 'stopped' && (ageMs <= Math.max(90_000, 3 * row.intervalSec * 1000) || holdsLock);
  let window: StatusReport['window'] = alive ? row!.window : null;
  if (!window && config?.schedule) {
    const w = activeWindow(compileSchedule(config.schedule), nowMs / 1000);
    window = { kind: w.kind, name: w.name, untilMs: w.untilSec === null ? null : w.untilSec * 1000 };
  }
  return {
    daemon: row ? { ...row, alive, heartbeatAgeMs: ageMs } : null,
    mode: alive ? row!.mode : config?.mode ?? row?.mode ?? 'recommend',
    intervalSec: alive ? row!.intervalSec : config?.intervalSec ?? row?.intervalSec ?? 0,
    window,
    frozen: alive ? row!.frozen : { frozen: false, reason: null },
    pendingApproval: listPlanRows(store, { status: 'proposed', limit: 100 }),
    approved: listPlanRows(store, { status: 'approved', limit: 100 }),
    unknownMigrations: store.unknownMigrations(),
    lock: lock ? { ...lock, holderText: describeHolder(lock.holder) } : null,
    maintenance: store.hostStates().filter((h) => h.maintenance),
    leader: leaderOf(lock, nowMs),
    thisNode: { host: hostname(), node, role: lock && !leaderOf(lock, nowMs)!.expired && isThisNode(lock.holder, node) ? 'leader' : 'standby' },
    policy: eff ? { name: eff.config.policy.name, args: eff.config.policy.args, ...eff.policy } : null,
    rules: eff ? eff.rules : null,
  };
}

function leaderOf(lock: HeldClusterLock | undefined, nowMs: number): StatusReport['leader'] {
  if (!lock) return null;
  const leaseExpiresMs = lock.heartbeatMs + lock.ttlMs;
  return { holderText: describeHolder(lock.holder), host: lock.holder.host, pid: lock.holder.pid, node: lock.holder.node ?? null, sinceMs: lock.acquiredMs, leaseExpiresMs, expired: nowMs > leaseExpiresMs };
}

/** Is the lease holder `h` the controller with node id `node`? By node id when both have one (two controllers on one host differ); else by hostname. */
function isThisNode(h: LockHolder, node: string | null): boolean {
  if (node !== null && h.node !== undefined) return h.node === node;
  return node === null && h.host === hostname();
}
