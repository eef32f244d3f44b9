/**
 * The journal and crash safety (issue 7, item 5).
 *
 * Journal: the store records each step as `running` before its side effect and again when it
 * ended (Controller.execute → store.saveStepRun, called from the executor's synchronous
 * onStepStart before any driver call), power actions the same way (intent `pending` before the
 * request, outcome after: journalPowerStart / journalPowerEnd), each round's decision with
 * the reasons VMs stayed (journalRound → store.recordDecision) and a downsampled metrics
 * history (store.recordMetrics).
 *
 * Recovery: `recoverOnStart` runs once when a daemon starts, before its first round. A step
 * still `running` in the journal belonged to a process that died mid-step (the cluster lock
 * proves no live process runs it: recovery takes the lock, and a live holder refuses it). For
 * each such step it asks the hypervisor and power drivers what happened, never assumes:
 *
 * - migrate: the driver's reconcile (the fail-closed decision table of
 *   src/drivers/common/recovery.ts, or the simulator's own) waits up to `settleMs` for a
 *   migration job still running, then says where the VM is, resuming a paused source only when
 *   no other copy is active. On the target: the step succeeded; on the source: it failed. Active
 *   on neither (an offline or suspend move left it shut off): it is started where its one
 *   definition is, only when every host answered or is known off. Anything else (a job that did
 *   not end, a host that does not answer, both copies ran) is an unknown migration
 *   (src/app/reconcile.ts): the VM and both hosts stay blocked, and every round reconciles it,
 *   so no second migration of a VM that may still be migrating ever starts.
 * - place: succeeded if the VM runs on its target; else failed (the next round plans again).
 * - powerOn / powerOff: the power driver's status (and whether the hypervisor answers) decides.
 *
 * Each step is marked truthfully (with a note saying recovery settled it), never-started steps
 * of the interrupted plan are marked cancelled, and the plan is marked `superseded` with a
 * reason, so the next round plans afresh from what libvirt reports. What it did comes back as
 * values with a stable code and a reason.
 */
import type { Clock } from '../core/clock.js';
import type { ClusterSnapshot } from '../core/model/types.js';
import type { Plan, Step } from '../core/plan/types.js';
import { isDriverError } from '../drivers/errors.js';
import type { HypervisorDriver, RecoveryOutcome, VmInfo } from '../drivers/hypervisor.js';
import type { PowerDriver } from '../drivers/power.js';
import type { StepRun, StepState } from '../executor/executor.js';
import { checkFence, currentHolder, withClusterLock } from '../store/lock.js';
import type { LockHolder, MetricSample, Store, StoredStepRun } from '../store/store.js';

// ---------------------------------------------------------------------------------- journal

/** Host and VM utilisation of one snapshot, as metrics samples (CPU 0..100, memory MiB). */
export function metricSamples(snapshot: ClusterSnapshot): MetricSample[] {
  const memOn = new Map<string, number>();
  for (const v of snapshot.vms) if (v.host !== null) memOn.set(v.host, (memOn.get(v.host) ?? 0) + v.demand.memMiB);
  const out: MetricSample[] = [];
  for (const h of snapshot.hosts) {
    if (h.powerState !== 'on') continue;
    const capMips = h.cpuCores * h.mipsPerCore;
    out.push({
      kind: 'host', name: h.id, host: null,
      cpuPct: h.cpuUsedMips === undefined || !(capMips > 0) ? null : (100 * h.cpuUsedMips) / capMips,
      memMiB: memOn.get(h.id) ?? 0,
    });
  }
  for (const v of snapshot.vms) {
    const sizeMips = v.vcpus * v.mipsPerVcpu;
    const known = v.usage === undefined; // fresh this round; stale or unknown values are not history
    out.push({ kind: 'vm', name: v.id, host: v.host, cpuPct: known && sizeMips > 0 ? (100 * v.demand.cpuMips) / sizeMips : null, memMiB: known ? v.demand.memMiB : null });
  }
  return out;
}

/** "3 moves, 1 power-off" or "nothing to do (2 VMs not moved)". */
export function planSummary(plan: Plan): string {
  const n = (k: Step['kind']): number => plan.steps.filter((s) => s.kind === k).length;
  const parts = [[n('migrate'), 'move'], [n('place'), 'placement'], [n('powerOn'), 'power-on'], [n('powerOff'), 'power-off']] as const;
  const did = parts.filter(([c]) => c > 0).map(([c, w]) => `${c} ${w}${c === 1 ? '' : 's'}`).join(', ');
  const why = plan.notMoved.length > 0 ? ` (${plan.notMoved.length} VM${plan.notMoved.length === 1 ? '' : 's'} not moved)` : '';
  return `${did || 'nothing to do'}${why}`;
}

/**
 * Journals one round: the decision (plan summary, notMoved reasons) and the metrics samples.
 * No-op without a store.
 */
export function journalRound(store: Store | undefined, r: { atMs: number; snapshot: ClusterSnapshot; plan: Plan; planId: number | null; mode: string }): void {
  if (!store) return;
  store.recordDecision({
    atMs: r.atMs, planId: r.planId, mode: r.mode, policy: r.plan.policy, window: r.snapshot.window?.kind ?? null,
    summary: planSummary(r.plan), steps: r.plan.steps.length, notMoved: r.plan.notMoved.map((x) => ({ vm: x.vm, code: x.code, reason: x.reason })),
  });
  store.recordMetrics(r.atMs, metricSamples(r.snapshot));
}

/** Records a power step's intent before its request (executor onStepStart); returns the journal id, or null when not a power step. */
export function journalPowerStart(store: Store | undefined, planId: number | null, run: StepRun): number | null {
  const s = run.step;
  if (!store || (s.kind !== 'powerOn' && s.kind !== 'powerOff')) return null;
  return store.recordPowerIntent({ planId, stepId: s.id, host: s.host, action: s.kind, atMs: run.startedAt ?? 0 });
}

/** Records how a power step ended (executor onStepEnd). */
export function journalPowerEnd(store: Store | undefined, id: number | null | undefined, run: StepRun): void {
  if (!store || id === null || id === undefined) return;
  store.recordPowerOutcome(id, { atMs: run.endedAt ?? 0, outcome: run.state, errorCode: run.error?.code ?? null, errorMessage: run.error?.message ?? null, note: run.note ?? null });
}

// ---------------------------------------------------------------------------------- recovery

/** What recovery concluded about one interrupted step. */
export type StepRecoveryCode =
  /** migrate: the VM is on its target (the migration completed after the crash, or before it). */
  | 'migrated'
  /** migrate: the VM is on its source (the migration never ran, failed, or was rolled back). */
  | 'stayed-on-source'
  /** migrate: the VM was active nowhere (an offline or suspend move left it down) and was started on the one host that holds it. */
  | 'restarted'
  /** migrate: the outcome is unknown (a job did not end, a host did not answer): recorded as an unknown migration, VM and hosts blocked. */
  | 'migration-unknown'
  /** migrate: both copies ran, or a post-copy failed: recorded for an operator, VM and hosts blocked. */
  | 'needs-operator'
  /** migrate: the VM is down and could not be started safely (several definitions, a host unknown, start failed). */
  | 'left-down'
  | 'placed'
  | 'not-placed'
  | 'powered-on'
  | 'power-on-not-done'
  | 'powered-off'
  | 'power-off-not-done'
  /** power: the power state could not be read: the outcome stays unknown. */
  | 'power-unknown';

export interface StepRecovery {
  readonly planId: number;
  readonly stepId: number;
  readonly kind: Step['kind'];
  readonly vm: string | null;
  readonly host: string | null;
  readonly code: StepRecoveryCode;
  /** The state the step is now saved with. */
  readonly state: StepState;
  readonly reason: string;
  /** What recovery did, in order (e.g. "resumed vm1 on a"); empty when it only looked. */
  readonly actions: readonly string[];
  /** migrate: the reconcile outcome the decision rests on. */
  readonly outcome?: RecoveryOutcome;
}

export interface PlanRecovery {
  readonly planId: number;
  /** superseded (interrupted mid-run), done / failed (every step had ended: only the status was missing). */
  readonly status: 'superseded' | 'done' | 'failed';
  readonly reason: string;
  /** Steps that never started, now saved as cancelled. */
  readonly cancelled: readonly number[];
}

export interface RecoverReport {
  /** clean: the journal showed nothing interrupted; recovered: it settled what it found; locked: another live process holds the cluster lock, nothing was done. */
  readonly code: 'clean' | 'recovered' | 'locked';
  readonly reason: string;
  readonly atMs: number;
  readonly steps: readonly StepRecovery[];
  readonly plans: readonly PlanRecovery[];
  /** Pending power intents not tied to a running step, settled from the power state. */
  readonly power: readonly { readonly id: number; readonly host: string; readonly action: string; readonly outcome: string; readonly reason: string }[];
}

export interface RecoverDeps {
  readonly store: Store;
  readonly hypervisor: HypervisorDriver;
  readonly power?: PowerDriver;
  readonly clock: Clock;
  /** How long a migration job still running may take to end before it counts as unknown, ms (default 120 000). */
  readonly settleMs?: number;
  /** How long a host being powered off may take to report off, and between looks, ms (default 30 000 / 2 000). */
  readonly powerSettleMs?: number;
  readonly pollMs?: number;
  /** How long a host being powered on may take until its hypervisor answers, s (default 600). */
  readonly bootTimeoutSec?: number;
  readonly lockHolder?: LockHolder;
  readonly lockTtlMs?: number;
}

const errMsg = (e: unknown): string => (isDriverError(e) ? `${e.code}: ${e.message}` : (e as Error)?.message ?? String(e));

interface Settled {
  readonly code: StepRecoveryCode;
  readonly state: StepState;
  readonly reason: string;
  readonly actions: string[];
  readonly error?: { code: string; message: string };
  readonly outcome?: RecoveryOutcome;
}

/**
 * Reconciles the journal with what the hypervisors and power drivers report, once, before a
 * daemon's first round (see the module comment). Takes the cluster lock for the whole
 * recovery; with a live holder it does nothing and reports 'locked' (the steps may still be
 * running there). Steps are settled one at a time, in plan and step order.
 */
export async function recoverOnStart(deps: RecoverDeps): Promise<RecoverReport> {
  const { store, clock } = deps;
  const running = store.runningStepRuns();
  const runningPlans = store.listPlans({ status: 'running', limit: 1000 });
  const pendingPower = store.powerActions({ pending: true, limit: 1000 });
  const at0 = clock.now();
  if (running.length === 0 && runningPlans.length === 0 && pendingPower.length === 0) {
    return { code: 'clean', reason: 'the journal shows no interrupted step or plan', atMs: at0, steps: [], plans: [], power: [] };
  }
  try {
    return await withClusterLock(store, deps.lockHolder ?? currentHolder('tide recover'), () => recover(deps, running, runningPlans.map((p) => p.id)), { ttlMs: deps.lockTtlMs });
  } catch (e) {
    if (isDriverError(e) && e.code === 'TIDE_LOCKED') {
      return { code: 'locked', reason: `not recovering: ${e.message}; the interrupted steps may still run there`, atMs: clock.now(), steps: [], plans: [], power: [] };
    }
    throw e;
  }
}

async function recover(deps: RecoverDeps, running: StoredStepRun[], runningPlanIds: number[]): Promise<RecoverReport> {
  const { store, clock } = deps;
  const steps: StepRecovery[] = [];
  const planIds = [...new Set([...running.map((r) => r.planId), ...runningPlanIds])].sort((a, b) => a - b);
  const settledPower = new Set<number>();
  for (const r of running) {
    const stored = store.getPlan(r.planId);
    const step = stored?.plan.steps.find((s) => s.id === r.stepId);
    if (!step) continue; // a step row without its plan: nothing to act on
    let s: Settled;
    try {
      s = step.kind === 'migrate' ? await recoverMigrate(deps, step.vm, step.from, step.to)
        : step.kind === 'place' ? await recoverPlace(deps, step.vm, step.to)
          : step.kind === 'powerOn' ? await recoverPowerOn(deps, step.host) : await recoverPowerOff(deps, step.host);
    } catch (e) {
      // a bug or I/O while looking: fail closed as unknown, blocking a migrate's VM and hosts
      s = { code: step.kind === 'migrate' ? 'migration-unknown' : step.kind === 'place' ? 'not-placed' : 'power-unknown', state: 'failed', actions: [],
        reason: `recovery could not settle it: ${errMsg(e)}`, error: { code: 'TIDE_MIGRATION_UNKNOWN', message: `recovery could not settle it: ${errMsg(e)}` } };
      if (step.kind !== 'migrate') s = { ...s, error: { code: isDriverError(e) ? e.code : 'TIDE_INTERNAL', message: s.reason } };
    }
    const now = clock.now();
    const note = `interrupted: the process running this step died; recovery at ${new Date(now).toISOString()}: ${s.reason}${s.actions.length ? ` (${s.actions.join('; ')})` : ''}`;
    store.saveStepRun(r.planId, { step, state: s.state, startedAt: r.startedMs ?? undefined, endedAt: now, note, ...(s.error ? { error: s.error } : {}) });
    if (step.kind === 'migrate') {
      if (s.code === 'migration-unknown' || s.code === 'needs-operator') {
        const id = store.recordUnknownMigration({ vm: step.vm, from: step.from, to: step.to, planId: r.planId, sinceMs: now, reason: `interrupted by a crash: ${s.reason}` });
        if (s.outcome === 'both' || s.outcome === 'split') store.recordReconcile(id, { atMs: now, outcome: s.outcome, reason: s.reason, actions: s.actions, vmOn: null });
      } else if (s.code === 'migrated' || s.code === 'stayed-on-source' || (s.code === 'restarted' && s.state === 'succeeded')) {
        // total time is an upper bound: the end is when recovery found out
        store.recordMigration({
          planId: r.planId, vm: step.vm, from: step.from, to: step.to, mode: 'interrupted', ok: s.state === 'succeeded', startedMs: r.startedMs ?? now,
          totalMs: now - (r.startedMs ?? now), downtimeMs: null, probeDowntimeMs: null, bytes: null, error: s.state === 'succeeded' ? null : `interrupted: ${s.reason}`,
        });
      }
    }
    if (step.kind === 'powerOn' || step.kind === 'powerOff') {
      for (const p of store.powerActions({ pending: true, planId: r.planId, limit: 1000 }).filter((x) => x.stepId === step.id)) {
        store.recordPowerOutcome(p.id, { atMs: now, outcome: s.state, errorCode: s.error?.code ?? null, errorMessage: s.error?.message ?? null, note: s.reason, by: 'recovery' });
        settledPower.add(p.id);
      }
    }
    steps.push({
      planId: r.planId, stepId: step.id, kind: step.kind, vm: 'vm' in step ? step.vm : null, host: 'host' in step ? step.host : step.to,
      code: s.code, state: s.state, reason: s.reason, actions: s.actions, ...(s.outcome ? { outcome: s.outcome } : {}),
    });
  }

  // power intents whose step was not running (e.g. recorded outside a plan): settle from the power state
  const power: RecoverReport['power'][number][] = [];
  for (const p of store.powerActions({ pending: true, limit: 1000 })) {
    if (settledPower.has(p.id)) continue;
    const s = p.action === 'powerOn' ? await recoverPowerOn(deps, p.host) : await recoverPowerOff(deps, p.host);
    store.recordPowerOutcome(p.id, { atMs: clock.now(), outcome: s.state, errorCode: s.error?.code ?? null, errorMessage: s.error?.message ?? null, note: s.reason, by: 'recovery' });
    power.push({ id: p.id, host: p.host, action: p.action, outcome: s.state, reason: s.reason });
  }

  const plans: PlanRecovery[] = [];
  for (const id of planIds) {
    const stored = store.getPlan(id);
    if (!stored) continue;
    const rows = new Map(store.stepRuns(id).map((r) => [r.stepId, r]));
    const now = clock.now();
    const interrupted = steps.filter((s) => s.planId === id);
    const cancelled: number[] = [];
    if (interrupted.length === 0 && stored.plan.steps.every((s) => rows.has(s.id) && rows.get(s.id)!.state !== 'running')) {
      // every step had ended: the process died before it saved the plan's status
      const ok = stored.plan.steps.every((s) => rows.get(s.id)!.state === 'succeeded');
      const reason = `every step had ended when the process running the plan died; recovery set the status it would have (${ok ? 'all succeeded' : 'some did not succeed'})`;
      store.setPlanStatus(id, ok ? 'done' : 'failed', reason);
      plans.push({ planId: id, status: ok ? 'done' : 'failed', reason, cancelled });
      continue;
    }
    for (const s of stored.plan.steps) {
      if (rows.has(s.id)) continue;
      store.saveStepRun(id, {
        step: s, state: 'cancelled', endedAt: now,
        error: { code: 'TIDE_ABORTED', message: 'not started: the process running the plan died, and recovery superseded the plan' },
      });
      cancelled.push(s.id);
    }
    const what = interrupted.map((s) => `step ${s.stepId} ${s.kind}${s.vm ? ` ${s.vm}` : s.host ? ` ${s.host}` : ''}: ${s.code}`).join('; ');
    const reason = `interrupted: the process running it died; recovery at ${new Date(now).toISOString()} settled ${interrupted.length} step(s) from what the hosts report${what ? ` (${what})` : ''}${cancelled.length ? `; ${cancelled.length} never started, cancelled` : ''}; the next round plans afresh`;
    store.setPlanStatus(id, 'superseded', reason);
    plans.push({ planId: id, status: 'superseded', reason, cancelled });
  }
  const n = steps.length;
  return {
    code: 'recovered', atMs: clock.now(), steps, plans, power,
    reason: `${n} interrupted step(s) settled, ${plans.filter((p) => p.status === 'superseded').length} plan(s) superseded${power.length ? `, ${power.length} power intent(s) settled` : ''}`,
  };
}

/** Where a VM is, by one look at every host (null: nowhere an answering host sees it). */
async function findVm(h: HypervisorDriver, vm: string): Promise<VmInfo[]> {
  return (await h.listVms()).filter((v) => v.name === vm);
}

async function recoverMigrate(deps: RecoverDeps, vm: string, from: string, to: string): Promise<Settled> {
  const h = deps.hypervisor;
  let outcome: RecoveryOutcome;
  let reason: string;
  let actions: string[] = [];
  if (h.reconcile) {
    // the plan only moves running VMs (Controller.collect: migratable needs 'running');
    // reconciling may act (resume or destroy a copy): fenced (recovery runs under the cluster lock)
    checkFence(deps.store, `reconciling the interrupted migration of ${vm}`);
    const r = await h.reconcile(vm, { from, to, settleMs: deps.settleMs ?? 120_000, wasState: 'running' });
    ({ outcome, reason } = r);
    actions = [...r.actions];
  } else {
    // no job information: only a VM already on its target is settled (a migration never moves
    // it back); one still on its source may be mid-move, so it stays blocked
    const copies = await findVm(h, vm);
    const hosts = await h.listHosts();
    const bothAnswer = [from, to].every((x) => hosts.find((y) => y.name === x)?.up);
    const onTo = copies.filter((c) => c.host === to && c.state === 'running');
    if (bothAnswer && onTo.length === 1 && copies.length === 1) {
      outcome = 'target';
      reason = `${vm} runs on ${to} alone`;
    } else {
      outcome = 'unknown';
      reason = `the ${h.kind} driver cannot tell whether a migration job of ${vm} still runs (${copies.map((c) => `${c.state} on ${c.host}`).join(', ') || 'not seen'})`;
    }
  }
  const fail = (m: string): { code: string; message: string } => ({ code: 'TIDE_ABORTED', message: m });
  const unknown = (m: string): { code: string; message: string } => ({ code: 'TIDE_MIGRATION_UNKNOWN', message: m });
  switch (outcome) {
    case 'target': return { code: 'migrated', state: 'succeeded', reason, actions, outcome };
    case 'source': return { code: 'stayed-on-source', state: 'failed', reason, actions, outcome, error: fail(`interrupted; ${vm} stays on ${from}: ${reason}`) };
    case 'both': case 'split': return { code: 'needs-operator', state: 'failed', reason, actions, outcome, error: unknown(reason) };
    case 'unknown': return { code: 'migration-unknown', state: 'failed', reason, actions, outcome, error: unknown(reason) };
    case 'none': {
      const st = await startOnce(deps, vm);
      const all = [...actions, ...st.actions];
      if (st.started === null) {
        return st.unknown
          ? { code: 'migration-unknown', state: 'failed', reason: `${reason}; ${st.reason}`, actions: all, outcome: 'unknown', error: unknown(st.reason) }
          : { code: 'left-down', state: 'failed', reason: `${reason}; ${st.reason}`, actions: all, outcome, error: fail(st.reason) };
      }
      const ok = st.started === to;
      return { code: 'restarted', state: ok ? 'succeeded' : 'failed', reason: `${reason}; ${st.reason}`, actions: all, outcome: ok ? 'target' : st.started === from ? 'source' : outcome,
        ...(ok ? {} : { error: fail(`interrupted; ${vm} was restarted on ${st.started}`) }) };
    }
    default: return { code: 'migration-unknown', state: 'failed', reason, actions, outcome: 'unknown', error: unknown(reason) };
  }
}

/**
 * Starts a VM that an interrupted move left shut off, on exactly one host: only when every
 * host answered or is known powered off (a silent host may run it), no host has it active,
 * and exactly one host holds its definition. Checks afterwards that it runs exactly once.
 */
async function startOnce(deps: RecoverDeps, vm: string): Promise<{ started: string | null; unknown: boolean; reason: string; actions: string[] }> {
  const h = deps.hypervisor;
  const hosts = await h.listHosts();
  const silent: string[] = [];
  for (const x of hosts) {
    if (x.up) continue;
    const ps = deps.power ? await deps.power.status(x.name).catch(() => 'unknown' as const) : 'unknown';
    if (ps !== 'off') silent.push(x.name);
  }
  if (silent.length > 0) return { started: null, unknown: true, actions: [], reason: `not started: ${silent.join(', ')} did not answer and may run ${vm}` };
  const copies = await findVm(h, vm);
  const active = copies.filter((c) => c.state !== 'shutoff');
  if (active.length > 0) return { started: null, unknown: active.length > 1, actions: [], reason: `not started: it is ${active.map((c) => `${c.state} on ${c.host}`).join(', ')}` };
  if (copies.length !== 1) {
    return { started: null, unknown: false, actions: [], reason: copies.length === 0 ? `no host that answered holds a definition of ${vm}` : `not started: ${vm} is defined on ${copies.map((c) => c.host).join(' and ')} (an operator picks one)` };
  }
  const at = copies[0]!.host;
  try {
    await h.start(vm);
  } catch (e) {
    return { started: null, unknown: false, actions: [`start of ${vm} on ${at} failed: ${errMsg(e)}`], reason: `${vm} is shut off on ${at} and could not be started (${errMsg(e)})` };
  }
  const after = (await findVm(h, vm)).filter((c) => c.state === 'running');
  if (after.length !== 1 || after[0]!.host !== at) {
    return { started: null, unknown: true, actions: [`started ${vm} on ${at}`], reason: `after the start ${vm} runs on ${after.map((c) => c.host).join(', ') || 'no host'}` };
  }
  return { started: at, unknown: false, actions: [`started ${vm} on ${at}`], reason: `${vm} was shut off on ${at}, its only definition, and was started there` };
}

async function recoverPlace(deps: RecoverDeps, vm: string, to: string): Promise<Settled> {
  const copies = await findVm(deps.hypervisor, vm);
  const run = copies.filter((c) => c.state === 'running');
  if (run.length === 1 && run[0]!.host === to) return { code: 'placed', state: 'succeeded', actions: [], reason: `${vm} runs on ${to}` };
  const where = copies.map((c) => `${c.state} on ${c.host}`).join(', ') || 'not seen by any host that answered';
  return { code: 'not-placed', state: 'failed', actions: [], reason: `${vm} is ${where}`, error: { code: 'TIDE_ABORTED', message: `interrupted; ${vm} is ${where}` } };
}

async function hypervisorUp(h: HypervisorDriver, host: string): Promise<boolean> {
  return (await h.listHosts()).find((x) => x.name === host)?.up ?? false;
}

async function recoverPowerOn(deps: RecoverDeps, host: string): Promise<Settled> {
  if (await hypervisorUp(deps.hypervisor, host)) return { code: 'powered-on', state: 'succeeded', actions: [], reason: `${host}'s hypervisor answers` };
  const ps = deps.power ? await deps.power.status(host).catch(() => 'unknown' as const) : 'unknown';
  if (ps === 'on' || ps === 'booting') {
    const deadline = deps.clock.now() + (deps.bootTimeoutSec ?? 600) * 1000;
    while (deps.clock.now() < deadline) {
      await deps.clock.sleep(deps.pollMs ?? 2000);
      if (await hypervisorUp(deps.hypervisor, host)) return { code: 'powered-on', state: 'succeeded', actions: [], reason: `${host} was ${ps}; its hypervisor answers now` };
    }
    const m = `${host} is ${ps} but its hypervisor did not answer within ${deps.bootTimeoutSec ?? 600} s`;
    return { code: 'power-on-not-done', state: 'failed', actions: [], reason: m, error: { code: 'TIDE_TIMEOUT', message: m } };
  }
  if (ps === 'off') {
    const m = `${host} is off: the power-on request was not sent or not carried out; the next round decides again`;
    return { code: 'power-on-not-done', state: 'failed', actions: [], reason: m, error: { code: 'TIDE_ABORTED', message: m } };
  }
  const m = `${host}'s power state cannot be read and its hypervisor does not answer`;
  return { code: 'power-unknown', state: 'failed', actions: [], reason: m, error: { code: 'TIDE_POWER_FAILED', message: m } };
}

async function recoverPowerOff(deps: RecoverDeps, host: string): Promise<Settled> {
  const read = async (): Promise<string> => (deps.power ? await deps.power.status(host).catch(() => 'unknown') : 'unknown');
  let ps = await read();
  // a graceful power-off may still be under way: let it finish before calling it not done
  const deadline = deps.clock.now() + (deps.powerSettleMs ?? 30_000);
  while (ps === 'on' && !(await hypervisorUp(deps.hypervisor, host).catch(() => false)) && deps.clock.now() < deadline) {
    await deps.clock.sleep(deps.pollMs ?? 2000);
    ps = await read();
  }
  if (ps === 'off') return { code: 'powered-off', state: 'succeeded', actions: [], reason: `${host} is off` };
  if (ps === 'on' || ps === 'booting') {
    const m = `${host} is ${ps}: it was not powered off (the process died before the request, or it was not carried out); the next round decides again`;
    return { code: 'power-off-not-done', state: 'failed', actions: [], reason: m, error: { code: 'TIDE_ABORTED', message: m } };
  }
  const m = `${host}'s power state cannot be read: whether it was powered off is unknown`;
  return { code: 'power-unknown', state: 'failed', actions: [], reason: m, error: { code: 'TIDE_POWER_FAILED', message: m } };
}

/** A report line per settled step, for logs and the CLI. */
export function describeRecovery(r: RecoverReport): string[] {
  return [
    `recovery: ${r.code}: ${r.reason}`,
    ...r.steps.map((s) => `plan ${s.planId} step ${s.stepId} ${s.kind} ${s.vm ?? s.host ?? ''}: ${s.code} → ${s.state}: ${s.reason}${s.actions.length ? ` [${s.actions.join('; ')}]` : ''}`),
    ...r.plans.map((p) => `plan ${p.planId}: ${p.status}${p.cancelled.length ? ` (${p.cancelled.length} never-started step(s) cancelled)` : ''}`),
  ];
}


/** The structured logger recovery reports to (a pino Logger, the daemon's DaemonLog fit). */
export interface RecoveryLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/**
 * The daemon's start hook (DaemonDeps.onStart, called under the daemon's cluster lock before
 * its first round): recoverOnStart, each settled step logged with its code. Steps settled as
 * unknown (the VM stays blocked until a round's reconcile settles it) log as warnings.
 */
export async function recoverAtDaemonStart(ctx: { store: Store; hypervisor: HypervisorDriver; power?: PowerDriver; clock: Clock; log: RecoveryLog }, opts: Partial<RecoverDeps> = {}): Promise<RecoverReport> {
  const r = await recoverOnStart({ store: ctx.store, hypervisor: ctx.hypervisor, power: ctx.power, clock: ctx.clock, ...opts });
  if (r.code !== 'clean') ctx.log.info({ event: 'recovery', code: r.code, steps: r.steps.length, plans: r.plans.map((p) => p.planId) }, `crash recovery: ${r.reason}`);
  for (const s of r.steps) {
    const line = { event: 'recovery-step', code: s.code, planId: s.planId, stepId: s.stepId, kind: s.kind, vm: s.vm, host: s.host, state: s.state, actions: s.actions };
    const msg = `plan ${s.planId} step ${s.stepId} ${s.kind} ${s.vm ?? s.host ?? ''}: ${s.code} → ${s.state}: ${s.reason}`;
    if (s.code === 'migration-unknown' || s.code === 'needs-operator' || s.code === 'left-down' || s.code === 'power-unknown') ctx.log.warn(line, msg);
    else ctx.log.info(line, msg);
  }
  return r;
}
