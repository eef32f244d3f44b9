/**
 * The executor carries a plan out: a small state machine per step
 * (pending → running → succeeded | failed | skipped | cancelled), dependencies honoured, limits
 * on migrations in flight (globally and per host, as source or target), and abort. A step
 * whose dependency did not succeed is skipped, so a host is powered off only when every
 * evacuation it depends on succeeded (the plan's powerOff steps depend on them).
 *
 * Before its side effect every step checks that the world still matches it (one inventory
 * read of the hosts involved): a step whose premise no longer holds is `skipped` with
 * TIDE_STALE_PLAN and a reason, and its dependants are skipped after it. The power-off step
 * fails closed (see powerOff below): a host is powered off only on positive evidence that it
 * holds no running guest, never on the absence of an answer.
 *
 * Intent before effect: `onStepStart` is called (synchronously) before the step does anything,
 * so an observer that persists it (Controller.execute saves the step as `running`) has
 * recorded the intent before any migration or power request is sent. If an observer throws —
 * the record could not be made — the step does not run, no further step starts, steps in
 * flight finish, and runPlan rejects with that error.
 */
import type { Clock } from '../core/clock.js';
import type { MigrateStep, Plan, PlaceStep, PowerStep, Step } from '../core/plan/types.js';
import { DriverError, isDriverError } from '../drivers/errors.js';
import type { HypervisorDriver, MigrateOptions, MigrationProgress, MigrationResult, VmInfo, VmState } from '../drivers/hypervisor.js';
import type { HostPower, PowerDriver, WakeTestResult } from '../drivers/power.js';
import type { Store, WakePathRecord } from '../store/store.js';
import { MinHeap } from '../core/util/heap.js';

export type StepState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

export interface StepRun {
  readonly step: Step;
  state: StepState;
  startedAt?: number;
  endedAt?: number;
  error?: { code: string; message: string };
  result?: MigrationResult;
  /** What the step found and did beyond its plain effect (e.g. "already on", definitions left behind). */
  note?: string;
}

export interface ExecutorLimits {
  /** Migrations in flight at once, cluster-wide. */
  readonly maxConcurrent: number;
  /** Migrations in flight touching one host (as source or target). */
  readonly maxPerHost: number;
}

export interface ExecutorObserver {
  /** Called before the step does anything (intent). Throwing stops the plan (see above). */
  onStepStart?(run: StepRun): void;
  onStepEnd?(run: StepRun): void;
  onProgress?(run: StepRun, p: MigrationProgress): void;
}

export interface ExecutorDeps {
  readonly hypervisor: HypervisorDriver;
  readonly power?: PowerDriver;
  readonly clock: Clock;
  readonly limits: ExecutorLimits;
  /** Migration settings for every migrate step (mode, bandwidth, timeout, …). */
  readonly migrate: Omit<MigrateOptions, 'onProgress'>;
  /** How long a woken host may take until its hypervisor answers, s. */
  readonly bootTimeoutSec?: number;
  readonly observer?: ExecutorObserver;
  /**
   * Drain (a graceful stop, e.g. the daemon's SIGTERM): once aborted, no new step starts (each
   * pending one ends 'cancelled'), while steps already running go on to their end. The run's
   * `signal` is the hard stop that also aborts running migrations.
   */
  readonly drain?: AbortSignal;
  /**
   * Where wake-path tests are remembered (the store): a host is tested once before its first
   * power-off, and one whose test (or a real wake) failed is never powered off again until a
   * passing test replaces the record or its power configuration changed (wakePathKey).
   * Absent (simulations, tests): the wake path is tested before every power-off.
   */
  readonly wakePaths?: WakePathBook;
  /**
   * Empty powered-on hosts kept on as spares (the policy's spareHosts): a power-off that would
   * leave fewer other empty hosts on is refused (TIDE_POWER_REFUSED, cause 'spare-hosts').
   */
  readonly spareHosts?: number;
  /**
   * Fencing (several controllers, docs/operations.md "Several controllers"): called right before
   * every side effect (a migration, a VM start, a power request); throws — DriverError
   * 'TIDE_FENCED' — when this controller may no longer act (its lease was lost or cannot be
   * renewed). The step then ends 'cancelled' with nothing done. Absent: no check (simulations).
   */
  readonly fence?: (what: string) => void;
  /**
   * Scheduling work, for tests: `examined` counts each time the scheduler looks at a pending
   * step to start, skip, cancel or park it. The scheduler examines a step when it becomes
   * ready (its dependencies ended), when a migration slot or a host it waits for frees, and
   * once more to cancel or skip it, so the count grows linearly with the plan (plus each
   * host's queue of waiting moves), never as steps × completions.
   */
  readonly counters?: { examined: number };
  /**
   * Journal grouping (the store's batch): runs one scheduling pass — the intents of the steps it
   * starts (onStepStart) and the outcomes of the steps it skips or cancels — as one transaction.
   * The steps it started begin their side effects only after it returned, so every intent is
   * committed before its effect; a step's outcome (onStepEnd, after its effect) is never grouped
   * with a later step's intent. If it throws, nothing it held was recorded: the steps it started
   * end 'failed' without doing anything, and the plan stops as when an observer throws.
   */
  readonly journalGroup?: (pass: () => void) => void;
}

/** The part of the store the wake-path rule needs. */
export type WakePathBook = Pick<Store, 'wakePath' | 'recordWakePath'>;

/** The host's wake-path record if it still counts: same power configuration (key) as now. */
export function currentWakePath(book: WakePathBook | undefined, power: PowerDriver | undefined, host: string): WakePathRecord | undefined {
  const rec = book?.wakePath(host);
  return rec && rec.key === wakeKeyOf(power, host) ? rec : undefined;
}

/** The power driver's wake-path key for `host` (null: it has none, or does not know the host). */
function wakeKeyOf(power: PowerDriver | undefined, host: string): string | null {
  try {
    return power?.wakePathKey?.(host) ?? null;
  } catch {
    return null;
  }
}

/** Why `host` must not be powered off because its wake path failed (undefined: it has not). For the snapshot (Host.powerOffRefused). */
export function wakePathRefusal(book: WakePathBook | undefined, power: PowerDriver | undefined, host: string): string | undefined {
  const rec = currentWakePath(book, power, host);
  return rec && !rec.ok ? `its wake path failed (${new Date(rec.testedMs).toISOString()}): ${rec.reason}; fix it, then run tide wake-test ${host}` : undefined;
}

export interface PlanRun {
  readonly steps: StepRun[];
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  readonly cancelled: number;
}

/**
 * Domain states that may stay on a host being powered off. Only `shutoff`: a shut-off
 * persistent definition runs nothing, so it stays (the VM cannot be started until the host is
 * back on; the step's note names them). Running, paused, suspended, crashed (QEMU may still be
 * alive with on_crash=preserve) and unknown states all block the power-off.
 */
const MAY_STAY_WHEN_OFF: ReadonlySet<VmState> = new Set<VmState>(['shutoff']);

/** The step no longer matches the world: it is skipped (not failed) and says why. */
function stale(message: string, detail?: Record<string, unknown>): DriverError {
  return new DriverError('TIDE_STALE_PLAN', `skipped, the world changed since the plan: ${message}`, detail);
}

/** The power-off guard refused. `cause` is machine-readable: unreachable | not-empty | power-status | in-flight | wake-path | spare-hosts. */
function refused(host: string, cause: string, message: string, detail?: Record<string, unknown>): DriverError {
  return new DriverError('TIDE_POWER_REFUSED', `not powering off ${host}: ${message}`, { host, cause, ...detail });
}

type Asked = { readonly ok: true; readonly domains: VmInfo[] } | { readonly ok: false; readonly reason: string };

/** Every domain on `host`, or why the host could not be asked. Other errors (unknown host, bugs) propagate. */
async function ask(h: HypervisorDriver, host: string): Promise<Asked> {
  try {
    return { ok: true, domains: await h.hostDomains(host) };
  } catch (e) {
    if (isDriverError(e) && e.code === 'TIDE_HOST_UNREACHABLE') return { ok: false, reason: e.message };
    throw e;
  }
}

const list = (doms: readonly VmInfo[]): string => doms.map((d) => `${d.name} (${d.state})`).join(', ');

/** The scheduler's queues: plan indexes, lowest (earliest in the plan) first. */
const indexHeap = (): MinHeap<number> => new MinHeap<number>((x, y) => x < y);

export async function runPlan(plan: Plan, deps: ExecutorDeps, signal?: AbortSignal): Promise<PlanRun> {
  const runs = new Map<number, StepRun>(plan.steps.map((s) => [s.id, { step: s, state: 'pending' }]));
  /**
   * Scheduling without rescanning the plan on every step end (linear in the steps): a step is
   * examined only when it can have become startable. `waiting`: in-plan dependencies not ended
   * yet; at 0 the step enters `ready` (a heap in plan order, so steps start in plan order as
   * before). A migration or placement refused a cluster-wide slot waits in `slotWait` (taken
   * in plan order as slots free); one refused because a host it touches is busy (per-host
   * limit, or being powered off) waits in `hostWait` of that host until a step on it ends.
   */
  const byIndex: StepRun[] = plan.steps.map((s) => runs.get(s.id)!);
  const indexOf = new Map<StepRun, number>(byIndex.map((r, i) => [r, i]));
  const waiting = new Map<StepRun, number>();
  const dependents = new Map<number, StepRun[]>();
  for (const r of byIndex) {
    let n = 0;
    for (const d of new Set(r.step.deps)) {
      if (!runs.has(d)) continue;
      n++;
      const l = dependents.get(d);
      if (l) l.push(r);
      else dependents.set(d, [r]);
    }
    waiting.set(r, n);
  }
  const ready = indexHeap();
  const slotWait = indexHeap();
  const hostWait = new Map<string, number[]>();
  for (const r of byIndex) if (waiting.get(r) === 0) ready.push(indexOf.get(r)!);
  /** Migrations and placements not ended, per target host (the spare count's "incoming"). */
  const incomingTo = new Map<string, number>();
  for (const r of byIndex) if (r.step.kind === 'migrate' || r.step.kind === 'place') incomingTo.set(r.step.to, (incomingTo.get(r.step.to) ?? 0) + 1);
  const inFlight = new Set<number>();
  /** Resolves the main loop's wait when a running step ends. */
  let wakeLoop: (() => void) | null = null;
  const perHost = new Map<string, number>();
  let migrating = 0;
  /** Hosts whose power-off step is running: no migration or placement touching them starts meanwhile. */
  const poweringOff = new Set<string>();
  /**
   * Hosts whose power-off this plan has reserved (passed the spare check; removed again when a
   * later check refuses it) or done: never counted as spares. Spare checks run one at a time
   * (spareCheck chain), so two concurrent power-offs cannot each count the other as a spare.
   */
  const offInPlan = new Set<string>();
  let spareCheck: Promise<unknown> = Promise.resolve();
  /**
   * Hosts and VMs of a migration that ended with TIDE_MIGRATION_UNKNOWN in this plan (either
   * host may run the VM): no later step touching them starts; each is skipped with the reason.
   * Across rounds the store's record does the same (src/app/reconcile.ts).
   */
  const unknownOutcome = new Map<string, string>();
  /** First error an observer threw: once set, nothing new starts and runPlan rejects with it. */
  let observerError: { error: unknown } | null = null;
  const hostsOf = (s: Step): string[] => (s.kind === 'migrate' ? [s.from, s.to] : s.kind === 'place' ? [s.to] : [s.host]);
  const notify = (f: () => void): boolean => {
    try {
      f();
      return true;
    } catch (e) {
      observerError ??= { error: e };
      return false;
    }
  };

  const finish = (run: StepRun, state: StepState, error?: unknown): void => {
    run.state = state;
    run.endedAt = deps.clock.now();
    if (error !== undefined) {
      const e = error as { code?: string; message?: string };
      run.error = { code: typeof e.code === 'string' ? e.code : 'TIDE_INTERNAL', message: e.message ?? String(error) };
    }
    const st = run.step;
    if (run.error?.code === 'TIDE_MIGRATION_UNKNOWN' && st.kind !== 'powerOn' && st.kind !== 'powerOff') {
      const why = `the migration of ${st.vm} (step ${st.id}) has an unknown outcome: it may run on ${hostsOf(st).join(' or ')}`;
      for (const k of [`vm:${st.vm}`, ...hostsOf(st).map((h) => `host:${h}`)]) if (!unknownOutcome.has(k)) unknownOutcome.set(k, why);
    }
    if (st.kind === 'migrate' || st.kind === 'place') incomingTo.set(st.to, incomingTo.get(st.to)! - 1);
    // Its dependants whose dependencies have now all ended are examined at the next pass.
    for (const d of dependents.get(st.id) ?? []) {
      const n = waiting.get(d)! - 1;
      waiting.set(d, n);
      if (n === 0) ready.push(indexOf.get(d)!);
    }
    notify(() => deps.observer?.onStepEnd?.(run));
  };

  const migrate = async (run: StepRun, s: MigrateStep): Promise<void> => {
    const [src, dst] = await Promise.all([ask(deps.hypervisor, s.from), ask(deps.hypervisor, s.to)]);
    if (!src.ok) throw stale(`${s.vm} was to move from ${s.from}, which does not answer (${src.reason}); its state there is unknown`, { vm: s.vm, host: s.from });
    const here = src.domains.find((d) => d.name === s.vm);
    if (!here) {
      const there = dst.ok ? dst.domains.find((d) => d.name === s.vm) : undefined;
      throw stale(there ? `${s.vm} is already on ${s.to} (${there.state}), not on ${s.from}` : `${s.vm} is no longer on ${s.from}`, { vm: s.vm, host: s.from });
    }
    // A live or suspend move is planned for a guest that runs (or is paused); an offline move
    // also takes a shut-off definition. Anything else means the VM changed since the plan.
    const expected: VmState[] = deps.migrate.mode === 'offline' ? ['running', 'paused', 'shutoff'] : ['running', 'paused'];
    if (!expected.includes(here.state)) throw stale(`${s.vm} is ${here.state} on ${s.from}, the plan expected ${expected.join(' or ')}`, { vm: s.vm, host: s.from, state: here.state });
    if (!dst.ok) throw stale(`target ${s.to} does not answer (${dst.reason})`, { vm: s.vm, host: s.to });
    deps.fence?.(`migrating ${s.vm} from ${s.from} to ${s.to}`);
    run.result = await deps.hypervisor.migrate(s.vm, s.to, { ...deps.migrate, onProgress: (p) => notify(() => deps.observer?.onProgress?.(run, p)) }, signal);
  };

  /**
   * Starts a defined, shut-off VM on `s.to`. The driver starts a VM where its definition is,
   * so a definition held by another host is first moved there by an offline migration (nothing
   * runs during the move); a VM that already runs somewhere, or whose definition no host that
   * answered holds, is a stale step.
   */
  const place = async (run: StepRun, s: PlaceStep): Promise<void> => {
    const target = await ask(deps.hypervisor, s.to);
    if (!target.ok) throw stale(`target ${s.to} does not answer (${target.reason})`, { vm: s.vm, host: s.to });
    let at = target.domains.find((d) => d.name === s.vm);
    if (!at) {
      at = (await deps.hypervisor.listVms()).find((d) => d.name === s.vm);
      if (!at) throw stale(`no host that answered holds a definition of ${s.vm}`, { vm: s.vm });
    }
    if (at.state !== 'shutoff') throw stale(`${s.vm} is already ${at.state} on ${at.host}`, { vm: s.vm, host: at.host, state: at.state });
    if (at.host !== s.to) {
      deps.fence?.(`moving the definition of ${s.vm} from ${at.host} to ${s.to}`);
      run.result = await deps.hypervisor.migrate(s.vm, s.to, { ...deps.migrate, mode: 'offline' }, signal);
      run.note = `moved the definition of ${s.vm} from ${at.host} to ${s.to} before starting it`;
    }
    if (signal?.aborted) throw new DriverError('TIDE_ABORTED', `placing ${s.vm} aborted before it was started${at.host !== s.to ? ` (its definition is now on ${s.to})` : ''}`);
    try {
      deps.fence?.(`starting ${s.vm} on ${s.to}`);
      await deps.hypervisor.start(s.vm);
    } catch (e) {
      if (at.host !== s.to && e instanceof Error) e.message += ` (its definition was moved from ${at.host} to ${s.to}; it is shut off there)`;
      throw e;
    }
  };

  /**
   * Wakes `s.host`. It is back only when its hypervisor answers — listed up by listHosts AND
   * hostDomains answering — never because the power driver says 'on'. A host that does not
   * answer within bootTimeoutSec gets one more power-on (idempotent: a BMC that reads on gets
   * nothing, a WoL host gets a second packet) and another bootTimeoutSec; then the step fails
   * with TIDE_WAKE_TIMEOUT and the failed wake is recorded as a failed wake path, so the host,
   * once brought back by hand, is not powered off again until its wake path is fixed.
   */
  const powerOn = async (run: StepRun, s: PowerStep): Promise<void> => {
    const isUp = async (): Promise<boolean> => {
      if (!((await deps.hypervisor.listHosts()).find((h) => h.name === s.host)?.up ?? false)) return false;
      return (await ask(deps.hypervisor, s.host)).ok;
    };
    if (!deps.power) {
      if (await isUp()) {
        run.note = `${s.host} already answers: nothing to power on`;
        return;
      }
      throw new DriverError('TIDE_UNSUPPORTED', `no power driver configured to wake ${s.host}`);
    }
    // Waking a host cannot lose a VM, so an unreadable power state still sends the request
    // (power-on is idempotent); a host already on or booting is only waited for.
    let ps: HostPower | 'unreadable';
    try {
      ps = await deps.power.status(s.host);
    } catch {
      ps = 'unreadable';
    }
    if (ps === 'on' || ps === 'booting') run.note = `${s.host} was already ${ps}: no power-on request sent`;
    else {
      deps.fence?.(`powering on ${s.host}`);
      await deps.power.powerOn(s.host);
    }
    const timeoutSec = deps.bootTimeoutSec ?? 600;
    const waitUp = async (): Promise<boolean> => {
      const deadline = deps.clock.now() + timeoutSec * 1000;
      for (;;) {
        if (await isUp()) return true;
        if (deps.clock.now() >= deadline) return false;
        await deps.clock.sleep(Math.min(5000, Math.max(1, deadline - deps.clock.now())), signal);
      }
    };
    if (await waitUp()) return;
    // One retry: a lost magic packet or a BMC that dropped the request gets a second chance.
    const first = `${s.host}'s hypervisor did not answer within ${timeoutSec} s of ${ps === 'on' || ps === 'booting' ? `the power driver reporting it ${ps}` : 'power-on'}`;
    deps.fence?.(`powering on ${s.host} again`);
    await deps.power.powerOn(s.host);
    if (await waitUp()) {
      run.note = `${run.note ? `${run.note}; ` : ''}${first}; it answered after a second power-on`;
      return;
    }
    const reason = `${first}, nor within ${timeoutSec} s of a second power-on`;
    const by = deps.power as PowerDriver & { methodOf?: (h: string) => string };
    recordWakePath(s.host, { ok: false, method: by.methodOf?.(s.host) ?? deps.power.kind, reason: `a wake timed out: ${reason}` });
    throw new DriverError('TIDE_WAKE_TIMEOUT', reason, { host: s.host, timeoutSec, attempts: 2 });
  };

  /** Records a wake-path outcome in the book (if any), keyed to the host's power configuration now. */
  const recordWakePath = (host: string, r: { ok: boolean; method: string; reason: string }): void => {
    deps.wakePaths?.recordWakePath({ host, testedMs: deps.clock.now(), ok: r.ok, reason: r.reason, method: r.method, key: wakeKeyOf(deps.power, host) });
  };

  /**
   * The wake-path test before a power-off: the driver's wakeTest; a driver without one passes
   * by its status having answered 'on' just now (`statusOn`, read by the caller). A host with a passing record (same power
   * configuration) is not tested again. The outcome is recorded before anything else happens.
   */
  const wakePathOk = async (host: string, statusOn = false): Promise<WakeTestResult> => {
    const rec = currentWakePath(deps.wakePaths, deps.power, host);
    if (rec?.ok) return { ok: true, method: rec.method ?? deps.power!.kind, reason: rec.reason };
    let t: WakeTestResult;
    try {
      t = deps.power!.wakeTest ? await deps.power!.wakeTest(host)
        : statusOn ? { ok: true, method: deps.power!.kind, reason: `the ${deps.power!.kind} power driver answered status (on)` }
          : { ok: false, method: deps.power!.kind, code: 'TIDE_POWER_FAILED', reason: `the ${deps.power!.kind} power driver did not report the host on` };
    } catch (e) {
      t = { ok: false, method: deps.power!.kind, code: isDriverError(e) ? e.code : 'TIDE_INTERNAL', reason: (e as Error)?.message ?? String(e) };
    }
    recordWakePath(host, t);
    return t;
  };

  /**
   * Other powered-on, answering, empty hosts that stay on after this power-off, counted up to
   * `need`: not being (or having been) powered off in this plan, not the target of a migration
   * or placement of this plan that has not ended.
   */
  const countSpares = async (host: string, need: number): Promise<number> => {
    let spares = 0;
    for (const h of await deps.hypervisor.listHosts()) {
      if (spares >= need) break;
      if (!h.up || h.name === host || offInPlan.has(h.name) || (incomingTo.get(h.name) ?? 0) > 0) continue;
      const a = await ask(deps.hypervisor, h.name);
      if (a.ok && a.domains.every((d) => MAY_STAY_WHEN_OFF.has(d.state))) spares++;
    }
    return spares;
  };

  /**
   * Fails closed: powers `s.host` off only if (a) no migration or placement touching it is in
   * flight in this plan, (b) no failed wake-path record stands against it, (c) its hypervisor
   * answered just now (hostDomains) with no domain other than shut-off definitions, (d) at
   * least spareHosts other empty hosts stay on, (e) its wake path passed a test (once per
   * store; see wakePathOk), (f) the power driver reports it 'on'. Dependencies were checked before
   * the step started. Unreachable is never empty.
   */
  const powerOff = async (run: StepRun, s: PowerStep): Promise<void> => {
    if (!deps.power) throw new DriverError('TIDE_UNSUPPORTED', `no power driver configured to power off ${s.host}`);
    if ((perHost.get(s.host) ?? 0) > 0) throw refused(s.host, 'in-flight', 'a migration or placement touching it is in flight in this plan');
    const failedPath = wakePathRefusal(deps.wakePaths, deps.power, s.host);
    if (failedPath !== undefined) throw refused(s.host, 'wake-path', failedPath);
    const asked = await ask(deps.hypervisor, s.host);
    if (!asked.ok) throw refused(s.host, 'unreachable', `its hypervisor did not answer (${asked.reason}), so it may still run guests`);
    const blocking = asked.domains.filter((d) => !MAY_STAY_WHEN_OFF.has(d.state));
    if (blocking.length > 0) throw refused(s.host, 'not-empty', `it still holds ${list(blocking)}`, { vms: blocking.map((d) => d.name) });
    const need = deps.spareHosts ?? 0;
    if (need > 0) {
      const check = spareCheck.then(async () => {
        const spares = await countSpares(s.host, need);
        if (spares < need) throw refused(s.host, 'spare-hosts', `only ${spares} other empty powered-on host(s) would stay on; the policy keeps ${need} spare(s) on`, { spares, spareHosts: need });
        offInPlan.add(s.host);
      });
      spareCheck = check.catch(() => undefined);
      await check;
    } else offInPlan.add(s.host);
    try {
      await powerOffChecked(run, s, asked.domains);
    } catch (e) {
      offInPlan.delete(s.host);
      throw e;
    }
  };

  /** The rest of powerOff, once the host is reserved: (e) the wake path, (f) power status 'on', then the request. */
  const powerOffChecked = async (run: StepRun, s: PowerStep, domains: readonly VmInfo[]): Promise<void> => {
    if (!deps.power) throw new DriverError('TIDE_UNSUPPORTED', `no power driver configured to power off ${s.host}`);
    // The wake path first: a BMC refusing the configured credentials fails the test and is
    // recorded (never powered off until re-tested), rather than being a one-round refusal.
    const wakeFailed = (w: WakeTestResult): DriverError =>
      refused(s.host, 'wake-path', `its wake path failed its test (${w.method}): ${w.reason}; fix it, then run tide wake-test ${s.host}`, { method: w.method, testCode: w.code });
    const ownTest = typeof deps.power.wakeTest === 'function';
    if (ownTest) {
      const wake = await wakePathOk(s.host);
      if (!wake.ok) throw wakeFailed(wake);
    }
    let ps: HostPower;
    try {
      ps = await deps.power.status(s.host);
    } catch (e) {
      throw refused(s.host, 'power-status', `its power state could not be read (${(e as Error)?.message ?? String(e)})`);
    }
    if (ps !== 'on') throw refused(s.host, 'power-status', `its power driver reports '${ps}', not 'on'`, { power: ps });
    if (!ownTest) {
      const wake = await wakePathOk(s.host, true);
      if (!wake.ok) throw wakeFailed(wake);
    }
    const kept = domains.filter((d) => MAY_STAY_WHEN_OFF.has(d.state));
    if (kept.length > 0) run.note = `shut-off definitions stay on ${s.host} (they cannot start until it is back on): ${kept.map((d) => d.name).join(', ')}`;
    deps.fence?.(`powering off ${s.host}`);
    await deps.power.powerOff(s.host);
  };

  const execute = async (run: StepRun): Promise<void> => {
    const s = run.step;
    if (s.kind === 'migrate') await migrate(run, s);
    else if (s.kind === 'place') await place(run, s);
    else if (s.kind === 'powerOn') await powerOn(run, s);
    else await powerOff(run, s);
  };

  /** Steps the current pass started (intent recorded), launched once the pass's journal group has returned. */
  type Started = { readonly run: StepRun; readonly isMigration: boolean; readonly offHost: string | null };
  let started: Started[] = [];

  /** Records the intent and reserves the step's slots; its effect starts at launch (after the pass). */
  const start = (run: StepRun): void => {
    run.state = 'running';
    run.startedAt = deps.clock.now();
    if (!notify(() => deps.observer?.onStepStart?.(run))) {
      // The intent could not be recorded: do nothing.
      finish(run, 'failed', new DriverError('TIDE_ABORTED', `not started: recording the step failed (${String((observerError?.error as Error)?.message ?? observerError?.error)})`));
      return;
    }
    const isMigration = run.step.kind === 'migrate' || run.step.kind === 'place';
    const offHost = run.step.kind === 'powerOff' ? run.step.host : null;
    if (offHost !== null) poweringOff.add(offHost);
    if (isMigration) {
      migrating++;
      for (const h of hostsOf(run.step)) perHost.set(h, (perHost.get(h) ?? 0) + 1);
    }
    started.push({ run, isMigration, offHost });
  };

  /** Gives back a started step's slots (it ended, or never launched). */
  const unreserve = ({ run, isMigration, offHost }: Started): void => {
    if (offHost !== null) {
      poweringOff.delete(offHost);
      release(offHost);
    }
    if (isMigration) {
      migrating--;
      for (const h of hostsOf(run.step)) {
        perHost.set(h, perHost.get(h)! - 1);
        release(h);
      }
    }
  };

  const launch = (st: Started): void => {
    const { run } = st;
    inFlight.add(run.step.id);
    void execute(run).then(
      () => finish(run, 'succeeded'),
      (e) => finish(run, signal?.aborted || (isDriverError(e) && e.code === 'TIDE_FENCED') ? 'cancelled' : isDriverError(e) && e.code === 'TIDE_STALE_PLAN' ? 'skipped' : 'failed', e),
    ).finally(() => {
      unreserve(st);
      inFlight.delete(run.step.id);
      wakeLoop?.();
    });
  };

  /** A step touching `host` ended: the moves waiting for it are examined again. */
  const release = (host: string): void => {
    const w = hostWait.get(host);
    if (!w) return;
    hostWait.delete(host);
    for (const i of w) ready.push(i);
  };

  const stopReason = (): string | null => (signal?.aborted ? 'plan aborted before this step started' : observerError ? 'plan stopped before this step started: a step could not be recorded'
    : deps.drain?.aborted ? 'not started: Tide is stopping (running steps were let finish)' : null);

  /** Examines the pending step at plan index `i`: skips, parks or starts it. */
  const examine = (i: number): void => {
    const run = byIndex[i]!;
    if (run.state !== 'pending') return;
    if (deps.counters) deps.counters.examined++;
    const deps_ = run.step.deps.map((d) => runs.get(d));
    const bad = deps_.find((d) => d && (d.state === 'failed' || d.state === 'skipped' || d.state === 'cancelled'));
    if (bad) {
      finish(run, 'skipped', new DriverError('TIDE_ABORTED', `skipped: step ${bad.step.id} (${bad.step.kind}) ${bad.state}`));
      return;
    }
    const st = run.step;
    const blockedBy = [...(st.kind === 'migrate' || st.kind === 'place' ? [`vm:${st.vm}`] : []), ...hostsOf(st).map((h) => `host:${h}`)]
      .map((k) => unknownOutcome.get(k)).find((w) => w !== undefined);
    if (blockedBy !== undefined) {
      finish(run, 'skipped', new DriverError('TIDE_STALE_PLAN', `skipped: ${blockedBy}`));
      return;
    }
    if (st.kind === 'migrate' || st.kind === 'place') {
      if (migrating >= deps.limits.maxConcurrent) {
        slotWait.push(i);
        return;
      }
      const busy = hostsOf(st).find((h) => (perHost.get(h) ?? 0) >= deps.limits.maxPerHost || poweringOff.has(h));
      if (busy !== undefined) {
        const w = hostWait.get(busy);
        if (w) w.push(i);
        else hostWait.set(busy, [i]);
        return;
      }
    }
    start(run);
  };

  /**
   * One scheduling pass: every step that may start now starts, in plan order (the ready steps
   * and, while cluster-wide slots are free, the moves waiting for one). Once the plan is
   * stopped (aborted, draining, a record failed), every pending step is cancelled instead.
   */
  const pass = (): void => {
    for (;;) {
      const why = stopReason();
      if (why !== null) {
        for (const run of byIndex) {
          if (run.state !== 'pending') continue;
          if (deps.counters) deps.counters.examined++;
          finish(run, 'cancelled', new DriverError('TIDE_ABORTED', why));
        }
        return;
      }
      const r = ready.peek();
      const w = migrating < deps.limits.maxConcurrent ? slotWait.peek() : undefined;
      if (r === undefined && w === undefined) return;
      if (w !== undefined && (r === undefined || w < r)) examine(slotWait.pop()!);
      else examine(ready.pop()!);
    }
  };

  for (;;) {
    let groupFailed: { error: unknown } | null = null;
    try {
      if (deps.journalGroup) deps.journalGroup(pass);
      else pass();
    } catch (e) {
      groupFailed = { error: e };
    }
    const now = started;
    started = [];
    if (groupFailed) {
      // Nothing the pass recorded is known to have landed: none of its steps may act.
      observerError ??= groupFailed;
      const why = `not started: recording the step failed (${String((groupFailed.error as Error)?.message ?? groupFailed.error)})`;
      for (const st of now) {
        unreserve(st);
        finish(st.run, 'failed', new DriverError('TIDE_ABORTED', why));
      }
      pass(); // cancels the pending steps (observerError), one write each
    } else for (const st of now) launch(st);
    if (inFlight.size === 0) break;
    await new Promise<void>((resolve) => {
      wakeLoop = resolve;
    });
    wakeLoop = null;
  }
  for (const run of runs.values()) {
    if (run.state === 'pending') finish(run, 'skipped', new DriverError('TIDE_ABORTED', 'skipped: its dependencies can never complete'));
  }
  if (observerError) throw (observerError as { error: unknown }).error;
  const all = [...runs.values()];
  const count = (st: StepState): number => all.filter((r) => r.state === st).length;
  return { steps: all, succeeded: count('succeeded'), failed: count('failed'), skipped: count('skipped'), cancelled: count('cancelled') };
}
