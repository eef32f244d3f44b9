/**
 * The Tide daemon: per cluster, rounds of collect → plan → (approve) → execute every
 * `intervalSec`, over the shared Controller (src/app/controller.ts). Everything comes in as
 * dependencies — clock, hypervisor and power drivers, store, logger — so the same loop runs
 * unattended against libvirt (`tide daemon`), in tests on the simulator, and in `tide demo` on a
 * VirtualClock:
 *
 *   const daemon = createDaemon({ clock, hypervisor, power, store, settings, log });
 *   const exit = await daemon.run();          // until daemon.stop() (or untilMs, or the signal)
 *   // on a VirtualClock: await clock.drive(daemon.run(untilMs));
 *
 * Modes: automatic — each round's plan is executed at once (Controller.tick). approve — plans
 * are stored 'proposed'; an operator approves one (`tide approve ID` → 'approved'); the next
 * round (or a wake-up: daemon.wake(), or the store poll while sleeping) executes it, but only
 * if a fresh collect shows the cluster the plan was made from (same fingerprint: VM set and
 * placement, host power, maintenance/excluded — src/daemon/fingerprint.ts) and the plan was
 * re-confirmed by a round within `expireAfterIntervals` intervals; otherwise it is 'expired'
 * with the reason. recommend — plans are stored and shown, never executed.
 *
 * One pending plan at a time: a round that finds the same plan for the same cluster keeps the
 * pending one (its id stays valid for `tide approve`, re-confirmed) and drops the new copy; a
 * round that finds a different plan (or none) supersedes the pending ones.
 *
 * Maintenance set with `tide host maintenance on HOST` lives in the store; each round merges it
 * into the host settings, so the planner evacuates the host through a normal plan.
 *
 * Stop (daemon.stop(), SIGTERM in the CLI): no new round and no new step starts; running steps
 * finish; after `stopGraceMs` they are aborted through the executor's signal (the drivers
 * abort a migration safely: the guest stays on its source). The cluster lock, held for the
 * daemon's whole life (a second daemon or a manual `tide evacuate` is refused with
 * TIDE_LOCKED), is released when run() returns.
 *
 * A round that fails (no host answers, the store fails, a bug) is logged with its code, recorded
 * (store.recordRoundError) and the loop goes on at the next interval. The daemon writes its
 * status row (Store.saveDaemonStatus) at each round and state change, for `tide status`.
 */
import { hostname } from 'node:os';
import { Controller, type ControllerObserver, type HostSettings, type Mode, type TickResult } from '../app/controller.js';
import type { Clock } from '../core/clock.js';
import type { FreezeOptions } from '../core/freeze.js';
import type { ClusterSnapshot, Rule } from '../core/model/types.js';
import type { Plan, Step } from '../core/plan/types.js';
import type { CompiledPolicy } from '../core/policy.js';
import type { Schedule } from '../core/schedule.js';
import { DriverError } from '../drivers/errors.js';
import type { HypervisorDriver, MigrateOptions } from '../drivers/hypervisor.js';
import type { MetricsSource } from '../drivers/metrics/source.js';
import type { PowerDriver } from '../drivers/power.js';
import type { ExecutorLimits, PlanRun, StepRun } from '../executor/executor.js';
import { currentHolder, withClusterLock } from '../store/lock.js';
import { describeHolder, type ClusterLease, type DaemonStatusRecord, type LockHolder, type PlanStatus, type Store, type StoredPlan } from '../store/store.js';
import { describeChange, fingerprintOf, planSignature } from './fingerprint.js';

export type { Mode } from '../app/controller.js';

/** What a configuration (or a reload of it) decides; everything else is a dependency. */
export interface DaemonSettings {
  readonly mode: Mode;
  /** Seconds between rounds. */
  readonly intervalSec: number;
  readonly policy: CompiledPolicy;
  readonly limits: ExecutorLimits;
  readonly migrate: Omit<MigrateOptions, 'onProgress'>;
  /** Per-host settings from the configuration; the store's maintenance state is merged in each round. */
  readonly hosts?: Readonly<Record<string, HostSettings>>;
  readonly pinnedVms?: readonly string[];
  readonly rules?: readonly Rule[];
  readonly schedule?: Schedule;
  /** See ControllerDeps.scheduleOffsetSec (simulations: SIM_MONDAY_EPOCH_SEC). */
  readonly scheduleOffsetSec?: number;
  readonly bootTimeoutSec?: number;
  /** A pending plan not re-confirmed by a round for this many intervals expires (default 3). */
  readonly expireAfterIntervals?: number;
  /** Telemetry-freeze thresholds (configuration section `freeze`; src/core/freeze.ts defaults when absent). */
  readonly freeze?: FreezeOptions;
  /** The retry window after a failed wake, s (configuration `wakeRetrySec`; default src/app/wake-refused.ts DEFAULT_WAKE_RETRY_SEC). */
  readonly wakeRetrySec?: number;
}

/** Minimal structured logger (a pino Logger fits; see src/daemon/log.ts). */
export interface DaemonLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface StartContext {
  readonly store: Store;
  readonly hypervisor: HypervisorDriver;
  readonly power?: PowerDriver;
  readonly clock: Clock;
  readonly log: DaemonLog;
  /** Aborts when the daemon is stopped hard (or loses its lock). */
  readonly signal: AbortSignal;
}

export interface DaemonDeps {
  readonly clock: Clock;
  readonly hypervisor: HypervisorDriver;
  readonly power?: PowerDriver;
  readonly store: Store;
  readonly settings: DaemonSettings;
  /** Where utilisation is read (src/drivers/metrics; default: polling the hypervisor driver). */
  readonly metrics?: MetricsSource;
  readonly log?: DaemonLog;
  readonly observer?: DaemonObserver;
  /** Who the daemon is for the cluster lock (default: this process as 'tide daemon'). */
  readonly lockHolder?: LockHolder;
  readonly lockTtlMs?: number;
  /** Hold the cluster lock for the daemon's whole life (default true). */
  readonly holdLock?: boolean;
  /**
   * Several controllers of one cluster (docs/operations.md "Several controllers"): while
   * another controller holds the cluster lock, wait as a standby — retry every lease TTL / 4,
   * take over once its lease expired or its process died — instead of failing with TIDE_LOCKED.
   * The lease TTL is then leaseTtlMsFor(intervalSec) unless lockTtlMs says otherwise. Default
   * false (`tide daemon` turns it on).
   */
  readonly standby?: boolean;
  /**
   * Called once, under the lock, before the first round: crash recovery (the journal's
   * reconcile, src/app/journal.ts) goes here. Throwing ends run() with that error, no round run.
   */
  readonly onStart?: (ctx: StartContext) => Promise<void> | void;
  /** Shown in the status row. */
  readonly configFile?: string | null;
  /**
   * While sleeping between rounds, look at the store this often (clock ms) for plans an
   * operator approved, and execute them at once (default 2000; 0: only at rounds and wake()).
   */
  readonly pollMs?: number;
  /** How long stop() lets running steps finish before aborting them, clock ms (default 15 min). */
  readonly stopGraceMs?: number;
}

export interface DaemonObserver extends ControllerObserver {
  /** A round ended (ok or error). */
  onRound?(r: RoundReport): void;
  /** The daemon changed a plan's status (approved plan expired, superseded, executed). */
  onPlanStatus?(planId: number, status: PlanStatus, reason: string): void;
}

export interface RoundReport {
  readonly startedMs: number;
  readonly endedMs: number;
  readonly result: 'ok' | 'error';
  /** The controller's round (null: the round failed before it, or the daemon was stopping). */
  readonly tick: TickResult | null;
  /** The pending plan after this round (approve/recommend: the kept or new proposal), or the plan executed (automatic). */
  readonly planId: number | null;
  /** Approved plans executed at the start of this round. */
  readonly executed: readonly { readonly planId: number; readonly run: PlanRun }[];
  /** Plans this round expired or superseded, with why. */
  readonly retired: readonly { readonly planId: number; readonly status: PlanStatus; readonly reason: string }[];
  readonly error?: { readonly code: string; readonly message: string };
}

export interface DaemonExit {
  /**
   * 'stopped': stop() or the signal; 'until': untilMs or maxRounds reached; 'lock-lost': the
   * cluster lock was taken over or could not be renewed (another actor may act: the daemon
   * stopped at once — `tide daemon` exits 1 so that systemd restarts it).
   */
  readonly reason: 'stopped' | 'until' | 'lock-lost';
  readonly rounds: number;
}

export interface Daemon {
  /**
   * Runs rounds until stop(), `signal` (a graceful stop too), clock time `untilMs` or
   * `maxRounds` rounds (`tide daemon --once`: 1). Once only.
   */
  run(untilMs?: number, signal?: AbortSignal, opts?: { maxRounds?: number }): Promise<DaemonExit>;
  /** One round now (tests, the demo's own pacing). Not while run() is between rounds' own calls. */
  round(signal?: AbortSignal): Promise<RoundReport>;
  /** Executes the approved plans now (what a wake-up does); returns what ran. */
  executeApproved(signal?: AbortSignal): Promise<RoundReport['executed']>;
  /** Graceful stop: no new round or step; running steps get `graceMs` (default deps.stopGraceMs) before they are aborted. */
  stop(opts?: { graceMs?: number; reason?: string }): void;
  /** Ends the sleep between rounds early to execute approved plans. */
  wake(): void;
  /** New settings from the next round on (a SIGHUP reload); the Controller (and its usage history) is kept. */
  reload(settings: DaemonSettings): void;
  /** Records a configuration reload that failed (the daemon keeps its settings) in the status row. */
  reloadFailed(message: string): void;
  readonly settings: DaemonSettings;
  readonly controller: Controller;
  /** The status row as the daemon would write it now. */
  status(): DaemonStatusRecord;
  /** Leader election: this daemon's role and, when it leads, its lease. */
  role(): DaemonRole;
  /**
   * Undefined while this daemon leads (or runs without the lock); otherwise why it may not act,
   * naming the leader (the HTTP API's 503 TIDE_NOT_LEADER for changes on a standby).
   */
  notLeader(): string | undefined;
}

/** See Daemon.role(). 'starting': run() not called yet or acquiring; 'standby': another controller leads. */
export interface DaemonRole {
  readonly role: 'starting' | 'standby' | 'leader' | 'stopped';
  /** When it leads: since when (lease acquired, wall-clock ms) and its fencing token. */
  readonly lease: ClusterLease | null;
}

/**
 * The cluster lock's lease TTL for a daemon of several controllers: one interval, at least 2 s
 * (a busy event loop must not depose a healthy leader) and at most 60 s. Heartbeats every
 * TTL / 3, standbys retry every TTL / 4, so a dead or paused leader is replaced within TTL +
 * TTL / 4 ≤ 1.25 intervals (for intervals ≥ 2 s), and within TTL / 4 when its process is seen
 * dead on the same machine.
 */
export function leaseTtlMsFor(intervalSec: number): number {
  return Math.min(60_000, Math.max(2_000, Math.round(intervalSec * 1000)));
}

const DEFAULT_EXPIRE_INTERVALS = 3;
const DEFAULT_POLL_MS = 2000;
const DEFAULT_GRACE_MS = 15 * 60_000;

function errorOf(e: unknown): { code: string; message: string } {
  const c = (e as { code?: unknown } | null)?.code;
  return { code: typeof c === 'string' && c.startsWith('TIDE_') ? c : 'TIDE_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

const quiet: DaemonLog = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

function stepText(s: Step): string {
  return s.kind === 'migrate' ? `migrate ${s.vm} ${s.from} → ${s.to}` : s.kind === 'place' ? `place ${s.vm} on ${s.to}` : `${s.kind} ${s.host}`;
}

function stepFields(s: Step): Record<string, unknown> {
  return s.kind === 'migrate' ? { step: s.id, kind: s.kind, vm: s.vm, from: s.from, to: s.to }
    : s.kind === 'place' ? { step: s.id, kind: s.kind, vm: s.vm, to: s.to } : { step: s.id, kind: s.kind, host: s.host };
}

/** The freeze a snapshot carries (ClusterSnapshot.freeze, when the controller sets one). */
export function freezeOf(snapshot: ClusterSnapshot): { frozen: boolean; reason: string | null } {
  const f = (snapshot as { freeze?: { reasons?: readonly { code?: string; reason?: string }[] } }).freeze;
  if (!f) return { frozen: false, reason: null };
  const reasons = (f.reasons ?? []).map((r) => `${r.code ?? 'frozen'}: ${r.reason ?? ''}`.trim());
  return { frozen: true, reason: reasons.join('; ') || 'telemetry frozen' };
}

type FreezeView = { readonly frozen: boolean; readonly reason: string | null; readonly sinceMs?: number | null };

/** The controller's freeze after a round: TickResult.freeze, else (a failed round) its freezeState, else the snapshot's. */
function freezeAfter(controller: Controller, tick: TickResult | null): DaemonStatusRecord['frozen'] | null {
  const f = (tick as { freeze?: FreezeView } | null)?.freeze ?? (controller as unknown as { freezeState?: FreezeView }).freezeState;
  if (f) return { frozen: f.frozen, reason: f.frozen ? f.reason ?? 'telemetry frozen' : null, sinceMs: f.sinceMs ?? null };
  return tick ? freezeOf(tick.snapshot) : null;
}

export function createDaemon(deps: DaemonDeps): Daemon {
  const { clock, store } = deps;
  const log = deps.log ?? quiet;
  let settings = deps.settings;
  let mergedHosts: Readonly<Record<string, HostSettings>> | undefined = settings.hosts;
  const drainAc = new AbortController();
  const hardAc = new AbortController();
  let wakeAc = new AbortController();
  let stopping = false;
  let running = false;
  let rounds = 0;
  const holder = deps.lockHolder ?? currentHolder('tide daemon');
  const startedMs = clock.now();
  let state: DaemonStatusRecord['state'] = 'starting';
  let nextRoundMs: number | null = null;
  let lastRound: DaemonStatusRecord['lastRound'] = null;
  let window: DaemonStatusRecord['window'] = null;
  let frozen: DaemonStatusRecord['frozen'] = { frozen: false, reason: null };
  let configError: DaemonStatusRecord['configError'] = null;
  const graceAc = new AbortController();
  /** Set when executing approved plans between rounds failed: no more polling until the next round (no retry storm). */
  let pollBlocked = false;
  let lockLost = false;
  /** The loop began (the lock was taken): only then is the status row this daemon's. */
  let entered = false;
  /** Leader election (deps.standby): the role, the lease held, and the end of a standby's wait. */
  let role: DaemonRole['role'] = 'starting';
  let lease: ClusterLease | null = null;
  const standbyAc = new AbortController();
  const lockTtlMs = deps.lockTtlMs ?? (deps.standby ? leaseTtlMsFor(settings.intervalSec) : undefined);
  const intervalMs = (): number => settings.intervalSec * 1000;
  const expireMs = (): number => (settings.expireAfterIntervals ?? DEFAULT_EXPIRE_INTERVALS) * intervalMs();

  const observer = deps.observer;
  const controllerObserver: ControllerObserver = {
    onStepStart: (r) => {
      log.info({ event: 'step-start', ...stepFields(r.step), reason: r.step.reason, by: r.step.by }, `step ${r.step.id} start: ${stepText(r.step)} — ${r.step.reason}`);
      observer?.onStepStart?.(r);
    },
    onStepEnd: (r: StepRun) => {
      const ms = r.startedAt !== undefined && r.endedAt !== undefined ? r.endedAt - r.startedAt : undefined;
      const fields = {
        event: r.step.kind === 'powerOn' || r.step.kind === 'powerOff' ? 'power' : 'step-end', ...stepFields(r.step), state: r.state, ms,
        ...(r.error ? { code: r.error.code, error: r.error.message } : {}), ...(r.note ? { note: r.note } : {}),
        ...(r.result?.downtimeMs !== undefined ? { downtimeMs: r.result.downtimeMs } : {}),
      };
      const text = `step ${r.step.id} ${r.state}: ${stepText(r.step)}${r.error ? ` (${r.error.code}: ${r.error.message})` : ''}`;
      if (r.state === 'succeeded') log.info(fields, text);
      else if (r.state === 'failed') log.error(fields, text);
      else log.warn(fields, text);
      observer?.onStepEnd?.(r);
    },
    onProgress: (r, p) => observer?.onProgress?.(r, p),
    onPlan: (p, at, id, ms) => observer?.onPlan?.(p, at, id, ms),
    onRunEnd: (run, at) => observer?.onRunEnd?.(run, at),
    onRoundError: (e, at) => observer?.onRoundError?.(e, at),
    onReconcile: (reports, at) => {
      for (const r of reports) log.warn({ event: 'reconcile', vm: r.vm, from: r.from, to: r.to, outcome: (r as { outcome?: unknown }).outcome }, `reconciled the unknown migration of ${r.vm}`);
      observer?.onReconcile?.(reports, at);
    },
    onTick: (t) => observer?.onTick?.(t),
    onFreeze: (f, at) => {
      if (f.frozen) log.warn({ event: 'freeze', frozen: true, reason: f.reason, sinceMs: f.sinceMs }, `moves frozen: ${f.reason}`);
      else log.info({ event: 'freeze', frozen: false }, 'telemetry healthy again: moves allowed');
      observer?.onFreeze?.(f, at);
    },
  };

  // Getters: the Controller reads its deps at each use, so a reload (settings) and the store's
  // maintenance (mergedHosts) apply from the next round without losing its usage history.
  const controller = new Controller({
    hypervisor: deps.hypervisor,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    power: deps.power,
    clock,
    store,
    get policy() { return settings.policy; },
    get mode() { return settings.mode; },
    get limits() { return settings.limits; },
    get migrate() { return settings.migrate; },
    get intervalSec() { return settings.intervalSec; },
    get hosts() { return mergedHosts; },
    get pinnedVms() { return settings.pinnedVms; },
    get rules() { return settings.rules; },
    get schedule() { return settings.schedule; },
    get scheduleOffsetSec() { return settings.scheduleOffsetSec; },
    get bootTimeoutSec() { return settings.bootTimeoutSec; },
    get freeze() { return settings.freeze; },
    get wakeRetrySec() { return settings.wakeRetrySec; },
    observer: controllerObserver,
    log,
    lockHolder: holder,
    lockTtlMs: deps.lockTtlMs,
    drain: drainAc.signal,
  });

  const status = (): DaemonStatusRecord => ({
    pid: holder.pid, host: holder.host, startedMs, state, heartbeatMs: clock.now(), configFile: deps.configFile ?? null,
    mode: settings.mode, intervalSec: settings.intervalSec, nextRoundMs, lastRound, window, frozen, configError,
  });
  const writeStatus = (): void => {
    // A standby never writes the status row: it is the leader's.
    if (role === 'standby') return;
    try {
      store.saveDaemonStatus(status());
    } catch (e) {
      log.error({ event: 'error', ...errorOf(e) }, `could not write the status row: ${errorOf(e).message}`);
    }
  };

  const retire = (p: StoredPlan, to: PlanStatus, reason: string, out: { planId: number; status: PlanStatus; reason: string }[]): void => {
    if (!store.transitionPlan(p.id, ['proposed', 'approved'], to, reason)) return;
    out.push({ planId: p.id, status: to, reason });
    log.info({ event: 'plan-status', planId: p.id, status: to, reason }, `plan ${p.id} ${to}: ${reason}`);
    observer?.onPlanStatus?.(p.id, to, reason);
  };

  const pending = (): StoredPlan[] => [...store.listPlans({ status: 'proposed', limit: 1000 }), ...store.listPlans({ status: 'approved', limit: 1000 })].sort((a, b) => a.id - b.id);

  /** Merges the store's maintenance into the configured host settings. */
  const refreshHosts = (): void => {
    const states = store.hostStates().filter((h) => h.maintenance);
    if (states.length === 0) {
      mergedHosts = settings.hosts;
      return;
    }
    const m: Record<string, HostSettings> = { ...(settings.hosts ?? {}) };
    for (const h of states) m[h.host] = { ...(m[h.host] ?? {}), maintenance: true };
    mergedHosts = m;
  };

  /** Pending plans no round re-confirmed within expireAfterIntervals intervals. */
  const expireOld = (now: number, out: { planId: number; status: PlanStatus; reason: string }[]): void => {
    for (const p of pending()) {
      const ref = p.confirmedMs ?? p.createdMs;
      if (now - ref > expireMs()) retire(p, 'expired', `not re-confirmed for ${Math.round((now - ref) / 1000)} s (more than ${settings.expireAfterIntervals ?? DEFAULT_EXPIRE_INTERVALS} intervals of ${settings.intervalSec} s)`, out);
    }
  };

  const executeApproved = async (signal: AbortSignal, retired: { planId: number; status: PlanStatus; reason: string }[] = []): Promise<{ planId: number; run: PlanRun }[]> => {
    const executed: { planId: number; run: PlanRun }[] = [];
    if (settings.mode === 'recommend') return executed;
    expireOld(clock.now(), retired);
    let approved = store.listPlans({ status: 'approved', limit: 1000 }).sort((a, b) => a.id - b.id);
    if (approved.length === 0) return executed;
    // Fail closed: while the controller's telemetry freeze holds, approved plans wait (and expire
    // by age if it lasts); what they assumed can no longer be checked.
    const freeze = freezeAfter(controller, null);
    if (freeze?.frozen) {
      log.warn({ event: 'plan-wait', plans: approved.map((p) => p.id), reason: freeze.reason }, `approved plan(s) ${approved.map((p) => p.id).join(', ')} wait: moves are frozen (${freeze.reason})`);
      return executed;
    }
    refreshHosts();
    // A re-check, not a round: no usage sample is recorded (the round's own collect does that).
    let fp = fingerprintOf(await controller.collect({ record: false }));
    for (const p of approved) {
      if (stopping || signal.aborted) break;
      const change = p.fingerprint ? describeChange(p.fingerprint, fp) : 'no fingerprint of the cluster it was made from was recorded';
      if (change !== null) {
        retire(p, 'expired', `the cluster changed since the plan was made: ${change}`, retired);
        continue;
      }
      if (!store.transitionPlan(p.id, ['approved'], 'running', 'approved; executing')) continue;
      log.info({ event: 'plan-execute', planId: p.id, steps: p.plan.steps.length }, `executing approved plan ${p.id} (${p.plan.steps.length} step(s))`);
      observer?.onPlanStatus?.(p.id, 'running', 'approved; executing');
      const run = await controller.execute(p.plan, p.id, signal);
      executed.push({ planId: p.id, run });
      log.info({ event: 'plan-done', planId: p.id, succeeded: run.succeeded, failed: run.failed, skipped: run.skipped, cancelled: run.cancelled },
        `plan ${p.id} ran: ${run.succeeded} succeeded, ${run.failed} failed, ${run.skipped} skipped, ${run.cancelled} cancelled`);
      approved = approved.filter((x) => x.id !== p.id);
      if (approved.length > 0) fp = fingerprintOf(await controller.collect({ record: false }));
    }
    return executed;
  };

  /** After the controller's round: fingerprint, one pending plan, retire the rest. */
  const settlePlans = (tick: TickResult, now: number, retired: { planId: number; status: PlanStatus; reason: string }[]): number | null => {
    const fp = fingerprintOf(tick.snapshot);
    const others = pending().filter((p) => p.id !== tick.planId);
    if (tick.planId === null) {
      for (const p of others) retire(p, 'superseded', tick.plan.steps.length === 0 ? 'a later round needs no step' : 'a later round planned differently', retired);
      return null;
    }
    if (settings.mode === 'automatic') {
      store.setPlanMeta(tick.planId, { fingerprint: fp });
      for (const p of others) retire(p, 'superseded', `the daemon runs in automatic mode; plan ${tick.planId} was executed instead`, retired);
      return tick.planId;
    }
    const sig = planSignature(tick.plan);
    const same = others.find((p) => p.fingerprint === fp && planSignature(p.plan) === sig);
    if (same) {
      store.discardPlan(tick.planId);
      store.setPlanMeta(same.id, { confirmedMs: now });
      for (const p of others) if (p.id !== same.id) retire(p, 'superseded', `plan ${same.id} is the current plan`, retired);
      return same.id;
    }
    store.setPlanMeta(tick.planId, { fingerprint: fp, confirmedMs: now });
    for (const p of others) {
      const change = p.fingerprint ? describeChange(p.fingerprint, fp) : null;
      retire(p, 'superseded', `replaced by plan ${tick.planId}${change ? ` (the cluster changed: ${change})` : ' (a different plan for the same cluster)'}`, retired);
    }
    return tick.planId;
  };

  const round = async (signal?: AbortSignal): Promise<RoundReport> => {
    const sig = signal ? AbortSignal.any([signal, hardAc.signal]) : hardAc.signal;
    const t0 = clock.now();
    rounds++;
    const retired: { planId: number; status: PlanStatus; reason: string }[] = [];
    let executed: { planId: number; run: PlanRun }[] = [];
    let tick: TickResult | null = null;
    let planId: number | null = null;
    let report: RoundReport;
    pollBlocked = false;
    try {
      refreshHosts();
      executed = await executeApproved(sig, retired);
      if (!stopping && !sig.aborted) {
        refreshHosts();
        tick = await controller.tick(sig);
        planId = settlePlans(tick, clock.now(), retired);
        frozen = freezeAfter(controller, tick) ?? frozen;
        const w = tick.snapshot.window;
        window = w ? { kind: w.kind, name: w.name, untilMs: w.untilSec === null ? null : w.untilSec * 1000 } : null;
        if (stopping && tick.run && tick.planId !== null && tick.run.steps.every((r) => r.state === 'cancelled')) {
          store.transitionPlan(tick.planId, ['failed'], 'superseded', 'not started: the daemon was stopping');
        }
      }
      const endedMs = clock.now();
      const steps = tick?.plan.steps.length ?? 0;
      const summary = tick === null ? (executed.length ? `executed plan(s) ${executed.map((e) => e.planId).join(', ')}` : 'stopping: no round')
        : steps === 0 ? 'no step needed'
          : settings.mode === 'automatic' ? `plan ${planId} executed: ${tick.run?.succeeded ?? 0}/${steps} step(s) succeeded`
            : `plan ${planId} ${settings.mode === 'approve' ? 'awaits approval' : 'recommended'} (${steps} step(s))`;
      report = { startedMs: t0, endedMs, result: 'ok', tick, planId, executed, retired };
      lastRound = { startedMs: t0, endedMs, result: 'ok', planId, steps, summary };
      const notMoved = tick?.plan.notMoved.length ?? 0;
      log.info({ event: 'round', round: rounds, mode: settings.mode, planId, steps, notMoved, executed: executed.map((e) => e.planId), ms: endedMs - t0,
        ...(window ? { window: window.kind } : {}), ...(frozen.frozen ? { frozen: frozen.reason } : {}) }, `round ${rounds}: ${summary}`);
      if (tick && steps > 0 && settings.mode !== 'automatic' && tick.planId === planId) {
        for (const s of tick.plan.steps) log.info({ event: 'plan', planId, ...stepFields(s), reason: s.reason, by: s.by }, `plan ${planId} step ${s.id}: ${stepText(s)} — ${s.reason}`);
      }
    } catch (e) {
      const endedMs = clock.now();
      const err = errorOf(e);
      try {
        store.recordRoundError({ atMs: endedMs, ...err });
      } catch { /* a failing store must not stop the loop */ }
      try {
        observer?.onRoundError?.(err, endedMs);
      } catch { /* likewise */ }
      log.error({ event: 'error', round: rounds, code: err.code, error: err.message }, `round ${rounds} failed: ${err.message} [${err.code}]`);
      frozen = freezeAfter(controller, null) ?? frozen;
      report = { startedMs: t0, endedMs, result: 'error', tick, planId, executed, retired, error: err };
      lastRound = { startedMs: t0, endedMs, result: 'error', planId, steps: tick?.plan.steps.length ?? 0, summary: err.message, error: err };
    }
    writeStatus();
    try {
      observer?.onRound?.(report);
    } catch (e) {
      log.error({ event: 'error', ...errorOf(e) }, `round observer failed: ${errorOf(e).message}`);
    }
    return report;
  };

  /** Sleeps until clock time `until`, waking early on stop, wake() or (polling) an approved plan. Returns true when it should execute approved plans. */
  const sleepUntil = async (until: number): Promise<boolean> => {
    const poll = deps.pollMs ?? DEFAULT_POLL_MS;
    while (!stopping) {
      const now = clock.now();
      if (now >= until) return false;
      const slice = poll > 0 ? Math.min(poll, until - now) : until - now;
      const woken = wakeAc.signal;
      try {
        await clock.sleep(slice, woken);
      } catch {
        if (stopping) return false;
        wakeAc = new AbortController();
        return true;
      }
      if (poll > 0 && !stopping && !pollBlocked && settings.mode !== 'recommend') {
        try {
          if (store.listPlans({ status: 'approved', limit: 1 }).length > 0) return true;
        } catch { /* the next round reports a failing store */ }
      }
    }
    return false;
  };

  const loop = async (lockSignal: AbortSignal | null, untilMs: number, maxRounds: number): Promise<DaemonExit> => {
    entered = true;
    const sig = lockSignal ? AbortSignal.any([lockSignal, hardAc.signal]) : hardAc.signal;
    lockSignal?.addEventListener('abort', () => {
      lockLost = true;
      log.error({ event: 'error', ...errorOf(lockSignal.reason) }, `lost the cluster lock: ${errorOf(lockSignal.reason).message}; stopping`);
      stop({ graceMs: 0, reason: 'lost the cluster lock' });
    }, { once: true });
    if (deps.onStart) await deps.onStart({ store, hypervisor: deps.hypervisor, power: deps.power, clock, log, signal: sig });
    state = 'running';
    writeStatus();
    let next = clock.now();
    let reason: DaemonExit['reason'] = 'stopped';
    while (!stopping) {
      if (next >= untilMs) {
        reason = 'until';
        break;
      }
      await round(sig);
      if (stopping) break;
      if (rounds >= maxRounds) {
        reason = 'until';
        break;
      }
      next += intervalMs();
      const now = clock.now();
      if (now > next) next += Math.ceil((now - next) / intervalMs()) * intervalMs();
      if (next >= untilMs) {
        reason = 'until';
        break;
      }
      nextRoundMs = next;
      writeStatus();
      while (await sleepUntil(next)) {
        const retired: { planId: number; status: PlanStatus; reason: string }[] = [];
        try {
          await executeApproved(sig, retired);
        } catch (e) {
          const err = errorOf(e);
          pollBlocked = true;
          log.error({ event: 'error', code: err.code, error: err.message }, `executing approved plans failed (retried at the next round): ${err.message} [${err.code}]`);
          try {
            store.recordRoundError({ atMs: clock.now(), ...err });
          } catch { /* ignore */ }
        }
        writeStatus();
      }
    }
    return { reason: lockLost ? 'lock-lost' : reason, rounds };
  };

  const stop = (opts: { graceMs?: number; reason?: string } = {}): void => {
    if (stopping) {
      if (opts.graceMs === 0 && !hardAc.signal.aborted) hardAc.abort(new DriverError('TIDE_ABORTED', opts.reason ?? 'stopped at once'));
      return;
    }
    stopping = true;
    state = 'stopping';
    const graceMs = opts.graceMs ?? deps.stopGraceMs ?? DEFAULT_GRACE_MS;
    log.info({ event: 'stop', reason: opts.reason ?? 'stop requested', graceMs }, `stopping (${opts.reason ?? 'stop requested'}): no new step starts; running steps get ${Math.round(graceMs / 1000)} s`);
    drainAc.abort(new DriverError('TIDE_ABORTED', 'the daemon is stopping'));
    standbyAc.abort();
    wakeAc.abort();
    writeStatus();
    if (graceMs <= 0) {
      hardAc.abort(new DriverError('TIDE_ABORTED', opts.reason ?? 'stopped at once'));
      return;
    }
    clock.sleep(graceMs, graceAc.signal).then(() => {
      if (!running) return;
      log.warn({ event: 'stop', graceMs }, `running steps did not finish within ${Math.round(graceMs / 1000)} s: aborting them`);
      hardAc.abort(new DriverError('TIDE_ABORTED', `the daemon's stop grace (${Math.round(graceMs / 1000)} s) ran out`));
    }, () => { /* run ended first */ });
  };

  const run = async (untilMs = Infinity, signal?: AbortSignal, opts: { maxRounds?: number } = {}): Promise<DaemonExit> => {
    const maxRounds = opts.maxRounds ?? Infinity;
    if (running || state !== 'starting') throw new Error('Daemon.run: already started (a daemon runs once)');
    running = true;
    const onAbort = (): void => stop({ reason: 'the caller aborted' });
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    log.info({ event: 'start', mode: settings.mode, intervalSec: settings.intervalSec, policy: settings.policy.label, holder: describeHolder(holder), host: hostname(), node: holder.node ?? null },
      `tide daemon starting: mode ${settings.mode}, every ${settings.intervalSec} s, policy ${settings.policy.label}`);
    try {
      if (deps.holdLock === false) return await loop(null, untilMs, maxRounds);
      return await withClusterLock(store, holder, (lockSignal) => loop(lockSignal, untilMs, maxRounds), {
        ttlMs: lockTtlMs,
        onTakeover: (lease) => log.warn({ event: 'lock', previous: lease.tookOver ? describeHolder(lease.tookOver.holder) : null, why: lease.tookOver?.why },
          `took over a stale cluster lock${lease.tookOver ? ` of ${describeHolder(lease.tookOver.holder)} (${lease.tookOver.why})` : ''}`),
        onAcquired: (l) => {
          lease = l;
          role = 'leader';
          if (deps.standby) {
            log.info({ event: 'leader', token: l.token, acquiredMs: l.acquiredMs, ttlMs: l.ttlMs, previous: l.tookOver ? describeHolder(l.tookOver.holder) : null },
              `leading the cluster (lease TTL ${l.ttlMs} ms${l.tookOver ? `, taken over from ${describeHolder(l.tookOver.holder)}` : ''})`);
          }
        },
        ...(deps.standby ? {
          standby: {
            signal: standbyAc.signal,
            onWait: (e: DriverError) => {
              role = 'standby';
              const h = (e.detail as { holder?: LockHolder } | undefined)?.holder;
              log.info({ event: 'standby', leader: h ? describeHolder(h) : null, ttlMs: lockTtlMs },
                `standby: ${e.message}; taking over when its lease (TTL ${lockTtlMs} ms) expires or its process ends`);
            },
          },
        } : {}),
      });
    } catch (e) {
      // Stopped while waiting as a standby: a normal stop, no round run.
      if (role === 'standby' && stopping && e instanceof DriverError && e.code === 'TIDE_ABORTED') return { reason: 'stopped', rounds };
      throw e;
    } finally {
      role = 'stopped';
      lease = null;
      running = false;
      signal?.removeEventListener('abort', onAbort);
      graceAc.abort();
      state = 'stopped';
      nextRoundMs = null;
      // Refused at the lock (or a standby): the status row is the running daemon's, not ours to overwrite.
      if (entered) {
        writeStatus();
        log.info({ event: 'stop', rounds }, `tide daemon stopped after ${rounds} round(s)${deps.holdLock === false ? '' : '; cluster lock released'}`);
      } else {
        log.error({ event: 'stop', rounds: 0 }, 'tide daemon did not start');
      }
    }
  };

  return {
    run,
    round: (signal) => round(signal),
    executeApproved: async (signal) => executeApproved(signal ? AbortSignal.any([signal, hardAc.signal]) : hardAc.signal),
    stop,
    wake: () => wakeAc.abort(),
    reload(next) {
      const before = settings;
      settings = next;
      mergedHosts = next.hosts;
      configError = null;
      log.info({ event: 'reload', mode: next.mode, intervalSec: next.intervalSec, policy: next.policy.label },
        `configuration reloaded: mode ${before.mode} → ${next.mode}, interval ${before.intervalSec} → ${next.intervalSec} s, policy ${next.policy.label}`);
      writeStatus();
      wakeAc.abort();
    },
    reloadFailed(message) {
      configError = { atMs: clock.now(), message };
      log.error({ event: 'reload', code: 'TIDE_CONFIG', error: message }, `configuration reload failed; keeping the previous configuration: ${message}`);
      writeStatus();
    },
    get settings() { return settings; },
    controller,
    status,
    role: () => ({ role, lease }),
    notLeader() {
      if (role === 'leader' || deps.holdLock === false) return undefined;
      let cur: ReturnType<Store['clusterLock']>;
      try {
        cur = store.clusterLock();
      } catch (e) {
        return `this controller is a ${role === 'standby' ? 'standby' : role} and the store cannot tell who leads (${errorOf(e).message})`;
      }
      return `this controller (${describeHolder(holder)}) is a ${role === 'standby' ? 'standby' : role}; the cluster is led by ${cur ? `${describeHolder(cur.holder)} since ${new Date(cur.acquiredMs).toISOString()}` : 'no controller right now (a standby takes over)'}: send changes to the leader`;
    },
  };
}

/** Plan steps as one line each, for logs and the CLI. */
export function describeSteps(plan: Plan): string[] {
  return plan.steps.map((s) => `${s.id}. ${stepText(s)} — ${s.reason}`);
}
