/**
 * The embedded demo: the Tide daemon (src/daemon: collect → plan → execute, in automatic mode
 * by default) running against the simulated office datacenter on virtual time, next to the same datacenter left
 * alone, so the energy saved and the price paid (migrations, saturation) are both visible.
 */
import { compilePolicy } from '../core/policy.js';
import type { Plan } from '../core/plan/types.js';
import { SIM_MONDAY_EPOCH_SEC, type Schedule } from '../core/schedule.js';
import type { Mode, TickResult } from '../app/controller.js';
import { createDaemon } from '../daemon/daemon.js';
import { SimDriver } from '../drivers/sim/sim-driver.js';
import { VirtualClock } from '../executor/clock.js';
import type { StepRun } from '../executor/executor.js';
import { openSqliteStore, type Store } from '../store/store.js';
import { InputError } from '../input/errors.js';
import { LIMITS, rangedNumber, validate } from '../input/schema.js';
import { officeScenario } from '../sim/office.js';
import { lowerBoundWatts, timelineFigures, type TimelineEntry } from '../sim/timeline.js';
import { drivePaced, type WallClock } from './pacing.js';

export interface DemoOptions {
  readonly hours?: number;
  readonly hosts?: number;
  readonly policy?: string;
  readonly mode?: Mode;
  readonly seed?: number;
  /** SQLite file for the run's history (default: in memory). */
  readonly storePath?: string;
  readonly onEvent?: (e: DemoEvent) => void;
  /** Consolidate / balance / blackout windows, read with t = 0 as Monday 00:00 UTC (default: none). */
  readonly schedule?: Schedule;
  /**
   * Virtual seconds per wall second (default Infinity: as fast as it can go); e.g.
   * WEEK_PER_MINUTE (src/api/pacing.ts) for watching on a terminal.
   */
  readonly speed?: number;
  /** Wall clock the pacing reads (default: the real one; tests inject a fake). */
  readonly wall?: WallClock;
  /** Each round of the daemon, as its observer saw it (observer.onTick). */
  readonly onRound?: (r: TickResult) => void;
  /**
   * Days the daemon first runs in recommend mode (default 0: a cold start; `tide demo` passes
   * DEMO_OBSERVE_DAYS): plans computed and stored, nothing executed, the metrics history
   * recorded in the store, the learned demand profile fed. Then its configuration is reloaded
   * with `mode` — as an operator flips `mode` in the configuration and reloads `tide daemon`
   * (SIGHUP): the controller keeps its learned profile. The `hours` are the acting period after
   * it; every figure covers them only.
   */
  readonly observeDays?: number;
}

/** `tide demo`'s default observation: as docs/operations.md advises, recommend mode for a week first. */
export const DEMO_OBSERVE_DAYS = 7;

export interface DemoEvent {
  /** Simulated time, s since Monday 00:00. */
  readonly atSec: number;
  /** 'mode': the observation ended and the daemon's configuration was reloaded in the acting mode. */
  readonly kind: 'migrate' | 'powerOn' | 'powerOff' | 'failed' | 'plan' | 'mode';
  readonly text: string;
}

export interface DemoSummary {
  readonly scenario: string;
  readonly policy: string;
  readonly mode: Mode;
  /** Acting hours (the figures' period), after `observeDays` in recommend mode. */
  readonly hours: number;
  /** Days observed in recommend mode before acting (0: a cold start). */
  readonly observeDays: number;
  /** Virtual time the acting period started, s since Monday 00:00 of the observation's first week (timeline `t` counts from there too). */
  readonly actingFromSec: number;
  /** Plans with steps the daemon recommended (stored, not executed) while observing. */
  readonly recommendedPlans: number;
  /** Migrations and power actions executed while observing (always 0: recommend mode executes nothing). */
  readonly observedSteps: number;
  readonly energyKWh: number;
  readonly baselineEnergyKWh: number;
  readonly savedPct: number;
  readonly migrations: number;
  readonly failedSteps: number;
  readonly powerOns: number;
  readonly powerOffs: number;
  readonly plans: number;
  /** Host-intervals in which demand exceeded capacity (with Tide / left alone). */
  readonly saturatedIntervals: number;
  readonly baselineSaturatedIntervals: number;
  readonly meanHostsOn: number;
  /** Rounds the daemon ran (one every intervalSec). */
  readonly rounds: number;
  readonly hosts: number;
  /** Energy lower bound: each round's demand on the fewest hosts, packed perfectly, kWh. */
  readonly lowerBoundKWh: number;
  /** Every host on, VMs spread as placed, nothing moved (the datacenter left alone), kWh. */
  readonly alwaysOnKWh: number;
  /** Host-rounds with demand above capacity, with Tide (the same as `saturatedIntervals`). */
  readonly saturatedHostIntervals: number;
  readonly maxMovesPerVmPerDay: number;
  /** Shortest completed off period of a host, s; null when none was switched off and on again. */
  readonly shortestOffSec: number | null;
  /** Succeeded migrations and power actions; `t` is when the step started, s since Monday 00:00. */
  readonly timeline: readonly TimelineEntry[];
}

export function clockLabel(sec: number): string {
  const days = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  return `${days[d % 7]} ${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
}

export async function runDemo(opts: DemoOptions = {}): Promise<DemoSummary> {
  const hours = opts.hours ?? 48;
  const observeDays = opts.observeDays === undefined ? 0 : validate(rangedNumber({ min: 0, max: LIMITS.officeDays, int: true }), opts.observeDays, 'observeDays', (m) => new InputError(m, 'TIDE_SCENARIO'), 'invalid number of observation days');
  const observeMs = observeDays * 86_400_000;
  const scenario = officeScenario({ hosts: opts.hosts ?? 4, days: Math.max(1, Math.ceil((observeDays * 24 + hours) / 24)), seed: opts.seed });
  const policy = compilePolicy(opts.policy ?? 'tide');
  const mode = opts.mode ?? 'automatic';
  const clock = new VirtualClock(0);
  const driver = new SimDriver(scenario, clock);
  const baselineClock = new VirtualClock(0);
  const baseline = new SimDriver(scenario, baselineClock);
  const store: Store = openSqliteStore(opts.storePath ?? ':memory:');
  const emit = (kind: DemoEvent['kind'], text: string): void => opts.onEvent?.({ atSec: clock.now() / 1000, kind, text });
  let migrations = 0;
  let failed = 0;
  let powerOns = 0;
  let powerOffs = 0;
  let plans = 0;
  let recommendedPlans = 0;
  let observedSteps = 0;
  /** False while observing in recommend mode: nothing counts towards the figures yet. */
  let acting = observeMs === 0;
  const isActing = (): boolean => acting || clock.now() >= observeMs;
  let saturated = 0;
  let hostsOnSum = 0;
  let rounds = 0;
  let lowerWs = 0;
  const timeline: TimelineEntry[] = [];
  const onStepEnd = (r: StepRun): void => {
    const s = r.step;
    const t = (r.startedAt ?? clock.now()) / 1000;
    if (!isActing()) {
      // Recommend mode executes nothing; a step here would be a bug, counted and reported.
      observedSteps++;
      return;
    }
    if (r.state !== 'succeeded') {
      if (r.state === 'failed') failed++;
      emit('failed', `${s.kind} ${'vm' in s ? s.vm : s.host}: ${r.state}${r.error ? ` (${r.error.code}: ${r.error.message})` : ''}`);
      return;
    }
    if (s.kind === 'migrate') {
      migrations++;
      timeline.push({ t, kind: 'migrate', vm: s.vm, from: s.from, to: s.to, reason: s.reason });
      emit('migrate', `${s.vm}: ${s.from} → ${s.to} in ${((r.result?.totalMs ?? 0) / 1000).toFixed(1)} s, downtime ${r.result?.downtimeMs ?? '?'} ms — ${s.reason}`);
    } else if (s.kind === 'powerOn') {
      powerOns++;
      timeline.push({ t, kind: 'powerOn', host: s.host, reason: s.reason });
      emit('powerOn', `power on ${s.host} — ${s.reason}`);
    } else if (s.kind === 'powerOff') {
      powerOffs++;
      timeline.push({ t, kind: 'powerOff', host: s.host, reason: s.reason });
      emit('powerOff', `power off ${s.host} — ${s.reason}`);
    }
  };
  const untilMs = observeMs + hours * 3600 * 1000;
  // Per-round figures from the loop's own rounds (observer.onTick): the lower bound holds each
  // round's demand until the next round (or the end), saturation and hosts on count per round —
  // over the acting period only.
  const prev = { atMs: observeMs, watts: 0 };
  let flipped = false;
  const onTick = (res: TickResult): void => {
    if (res.snapshot.time * 1000 < observeMs) {
      // The operator's flip: `mode` in the configuration, then a reload (SIGHUP), effective
      // from the next round — the first of the acting period.
      if (!flipped && (res.snapshot.time + scenario.intervalSec) * 1000 >= observeMs) {
        flipped = true;
        daemon.reload({ ...daemon.settings, mode });
      }
      opts.onRound?.(res);
      return;
    }
    rounds++;
    const { hosts, vms } = res.snapshot;
    const atMs = res.snapshot.time * 1000;
    lowerWs += (prev.watts * (Math.min(atMs, untilMs) - prev.atMs)) / 1000;
    prev.atMs = atMs;
    prev.watts = lowerBoundWatts(hosts, vms.reduce((a, v) => a + v.demand.cpuMips, 0), vms.reduce((a, v) => a + v.memMiB, 0));
    for (const h of hosts) {
      if (h.powerState === 'on') hostsOnSum++;
      const demand = vms.filter((v) => v.host === h.id).reduce((a, v) => a + v.demand.cpuMips, 0);
      if (demand > h.cpuCores * h.mipsPerCore) saturated++;
    }
    opts.onRound?.(res);
  };
  // The daemon (src/daemon): its own rounds, on the virtual clock. The store is this run's own
  // (in memory unless --store), so no cluster lock is needed; nothing to poll in automatic mode.
  const daemonIn = (runMode: Mode): ReturnType<typeof createDaemon> => createDaemon({
    clock, store, hypervisor: driver, power: driver, holdLock: false, pollMs: 0,
    settings: {
      policy, mode: runMode,
      limits: { maxConcurrent: 2, maxPerHost: 1 },
      migrate: { mode: 'live', autoConverge: true, timeoutSec: 600 },
      intervalSec: scenario.intervalSec,
      hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])),
      rules: scenario.rules,
      ...(opts.schedule ? { schedule: opts.schedule, scheduleOffsetSec: SIM_MONDAY_EPOCH_SEC } : {}),
      bootTimeoutSec: 900,
    },
    observer: {
      onStepEnd,
      onTick,
      onPlan: (p: Plan) => {
        if (!isActing()) {
          if (p.steps.length > 0) recommendedPlans++;
          return;
        }
        if (p.steps.length > 0) plans++;
        if (mode !== 'automatic' && p.steps.length > 0) emit('plan', `${p.steps.length} step(s) proposed (mode ${mode}): ${p.steps.map((s) => (s.kind === 'migrate' ? `${s.vm}→${s.to}` : `${s.kind} ${'host' in s ? s.host : ''}`)).join(', ')}`);
      },
    },
  });
  // Recommend mode first: the daemon stores its plans and the metrics history, feeds its demand
  // profile and executes nothing; at `observeMs` the configuration is reloaded in `mode` (the
  // controller and its learned profile are kept, as with SIGHUP). Energy is read at that instant
  // (nothing changes power at a single instant, so the order against the round there is moot).
  let energy0 = 0;
  const daemon = daemonIn(observeMs > 0 ? 'recommend' : mode);
  const running = daemon.run(untilMs);
  if (observeMs > 0) {
    running.catch(() => {}); // awaited below; only not left unhandled while observing
    // The observation runs as fast as it can go (nothing happens to watch).
    await clock.drive(clock.sleep(observeMs).then(() => {
      energy0 = driver.energyKWh();
      acting = true;
      emit('mode', `observed ${observeDays} day(s) in recommend mode: ${recommendedPlans} plan(s) recommended and stored, nothing executed; configuration reloaded in ${mode} mode`);
    }));
  }
  // The loop itself: the daemon's run on the virtual clock, paced against wall time when asked.
  await drivePaced(clock, running, opts.speed ?? Infinity, opts.wall);
  lowerWs += (prev.watts * (untilMs - prev.atMs)) / 1000;
  // Migrations and boots the last round started finish on virtual time.
  await clock.runUntil(untilMs);
  const stepMs = scenario.intervalSec * 1000;
  // The datacenter left alone: same traces, same initial placement, every host on; measured
  // over the acting period as well.
  let baseSat = 0;
  let base0 = 0;
  for (let t = 0; t < untilMs; t += stepMs) {
    await baselineClock.runUntil(t);
    if (t === observeMs) base0 = baseline.energyKWh();
    if (t < observeMs) continue;
    const u = await baseline.sample();
    baseSat += u.hosts.filter((h) => (h.cpuPct ?? 0) >= 100 - 1e-9).length;
  }
  await baselineClock.runUntil(untilMs);
  const energy = driver.energyKWh() - energy0;
  const base = baseline.energyKWh() - base0;
  store.close();
  const figures = timelineFigures(timeline);
  return {
    // Named for the acting period (the scenario's traces also cover the observation).
    scenario: scenario.name.replace(/, [^,]* d\)$/, `, ${Math.max(1, Math.ceil(hours / 24))} d)`), policy: policy.label, mode, hours, observeDays, actingFromSec: observeMs / 1000, recommendedPlans, observedSteps,
    energyKWh: energy, baselineEnergyKWh: base, savedPct: (100 * (base - energy)) / base,
    migrations, failedSteps: failed, powerOns, powerOffs, plans,
    saturatedIntervals: saturated, baselineSaturatedIntervals: baseSat, meanHostsOn: hostsOnSum / Math.max(1, rounds), rounds,
    hosts: scenario.hosts.length,
    lowerBoundKWh: lowerWs / 3.6e6, alwaysOnKWh: base, saturatedHostIntervals: saturated,
    maxMovesPerVmPerDay: figures.maxMovesPerVmPerDay, shortestOffSec: figures.shortestOffSec, timeline,
  };
}
