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
}

export interface DemoEvent {
  /** Simulated time, s since Monday 00:00. */
  readonly atSec: number;
  readonly kind: 'migrate' | 'powerOn' | 'powerOff' | 'failed' | 'plan';
  readonly text: string;
}

export interface DemoSummary {
  readonly scenario: string;
  readonly policy: string;
  readonly mode: Mode;
  readonly hours: number;
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
  const scenario = officeScenario({ hosts: opts.hosts ?? 4, days: Math.max(1, Math.ceil(hours / 24)), seed: opts.seed });
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
  let saturated = 0;
  let hostsOnSum = 0;
  let rounds = 0;
  let lowerWs = 0;
  const timeline: TimelineEntry[] = [];
  const onStepEnd = (r: StepRun): void => {
    const s = r.step;
    const t = (r.startedAt ?? clock.now()) / 1000;
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
  const untilMs = hours * 3600 * 1000;
  // Per-round figures from the loop's own rounds (observer.onTick): the lower bound holds each
  // round's demand until the next round (or the end), saturation and hosts on count per round.
  const prev = { atMs: 0, watts: 0 };
  const onTick = (res: TickResult): void => {
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
  const daemon = createDaemon({
    clock, store, hypervisor: driver, power: driver, holdLock: false, pollMs: 0,
    settings: {
      policy, mode,
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
        if (p.steps.length > 0) plans++;
        if (mode !== 'automatic' && p.steps.length > 0) emit('plan', `${p.steps.length} step(s) proposed (mode ${mode}): ${p.steps.map((s) => (s.kind === 'migrate' ? `${s.vm}→${s.to}` : `${s.kind} ${'host' in s ? s.host : ''}`)).join(', ')}`);
      },
    },
  });
  // The loop itself: the daemon's run on the virtual clock, paced against wall time when asked.
  await drivePaced(clock, daemon.run(untilMs), opts.speed ?? Infinity, opts.wall);
  lowerWs += (prev.watts * (untilMs - prev.atMs)) / 1000;
  // Migrations and boots the last round started finish on virtual time.
  await clock.runUntil(untilMs);
  const stepMs = scenario.intervalSec * 1000;
  // The datacenter left alone: same traces, same initial placement, every host on.
  let baseSat = 0;
  for (let t = 0; t < untilMs; t += stepMs) {
    await baselineClock.runUntil(t);
    const u = await baseline.sample();
    baseSat += u.hosts.filter((h) => (h.cpuPct ?? 0) >= 100 - 1e-9).length;
  }
  await baselineClock.runUntil(untilMs);
  const energy = driver.energyKWh();
  const base = baseline.energyKWh();
  store.close();
  const figures = timelineFigures(timeline);
  return {
    scenario: scenario.name, policy: policy.label, mode, hours,
    energyKWh: energy, baselineEnergyKWh: base, savedPct: (100 * (base - energy)) / base,
    migrations, failedSteps: failed, powerOns, powerOffs, plans,
    saturatedIntervals: saturated, baselineSaturatedIntervals: baseSat, meanHostsOn: hostsOnSum / Math.max(1, rounds), rounds,
    hosts: scenario.hosts.length,
    lowerBoundKWh: lowerWs / 3.6e6, alwaysOnKWh: base, saturatedHostIntervals: saturated,
    maxMovesPerVmPerDay: figures.maxMovesPerVmPerDay, shortestOffSec: figures.shortestOffSec, timeline,
  };
}
