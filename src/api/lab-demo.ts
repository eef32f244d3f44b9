/**
 * `tide lab demo`: the story of `tide demo` on the real two-host lab (root) — real guests, real
 * live migrations, real IPMI power (`tide lab up --power`: ipmi_sim BMCs driven with ipmitool) —
 * with a day compressed into minutes. The control loop is the daemon's (src/daemon) on a scaled
 * clock: simulated time runs `dayFactor(minutes)` times faster than the wall, and the
 * schedule (consolidate 18:00–07:00, balance otherwise), the round interval, cooldowns and
 * hysteresis are read on it. What happens in real time stays in real time: each migration's
 * timeout (the hypervisor driver's own clock) and the IPMI soft-off grace (the power driver runs
 * on the wall clock); the executor's wait for a woken host is given in simulated seconds, so it
 * is scaled up to the real boot time.
 *
 * The guests run a load generator the demo drives (GET /cgi-bin/load, src/lab/guest-init.ts):
 * busy office hours, quiet evening and night, one overload spike (src/lab/demo.ts). Every guest
 * is probed (HTTP from the switch namespace) from before the first round to after the last.
 *
 * Energy figures are estimates from the hosts' power model (the controller's default linear
 * model) at each round's measured demand, held until the next round: the lab draws no real watts
 * worth measuring.
 */
import type { TickResult } from '../app/controller.js';
import { createDaemon, type Daemon } from '../daemon/daemon.js';
import { loadConfig } from '../config/load.js';
import { compileSchedule } from '../config/schedule.js';
import type { TideConfig } from '../config/schema.js';
import { powerAt } from '../core/model/power.js';
import type { Host, Vm } from '../core/model/types.js';
import { compilePolicy } from '../core/policy.js';
import { SIM_MONDAY_EPOCH_SEC } from '../core/schedule.js';
import { createDriver } from '../drivers/index.js';
import type { MigrateOptions } from '../drivers/hypervisor.js';
import { createPowerDriver } from '../drivers/power/index.js';
import type { Clock } from '../core/clock.js';
import { scaledClock, systemClock } from '../executor/clock.js';
import type { StepRun } from '../executor/executor.js';
import type { RunningProbe } from '../probe/index.js';
import { lowerBoundWatts, timelineFigures, type TimelineEntry } from '../sim/timeline.js';
import { openSqliteStore } from '../store/store.js';
import { DEFAULT_STORY, GuestLoad, LAB_DEMO_SCHEDULE, dayFactor, labDemoPolicyArgs, loadAt, type LoadStory } from '../lab/demo.js';
import { LabError } from '../lab/exec.js';
import { Lab, type LabHostName } from '../lab/index.js';
import { clockLabel } from './demo.js';

export interface LabDemoOptions {
  /** Lab directory (default /tmp/tide-lab); brought up (or reused) with --power and the guests. */
  readonly dir?: string;
  /** Wall minutes a simulated 24 h day lasts (default 8; the story covers 17 h of it). */
  readonly minutes?: number;
  /** Guests vm1…vmN (default 4; an even number: half on each host by day). */
  readonly vms?: number;
  readonly story?: LoadStory;
  /** Simulated seconds between rounds (default 600). */
  readonly intervalSec?: number;
  /** Interval of each guest's probe, wall ms (default 500). */
  readonly probeIntervalMs?: number;
  readonly onEvent?: (e: LabDemoEvent) => void;
  /** Lab progress (bring-up, power restore), one line each. */
  readonly log?: (msg: string) => void;
}

export interface LabDemoEvent {
  /** Simulated time, s since Monday 00:00. */
  readonly atSec: number;
  readonly kind: 'migrate' | 'powerOn' | 'powerOff' | 'failed' | 'load' | 'window' | 'status' | 'freeze' | 'error';
  readonly text: string;
}

export interface LabDemoSummary {
  readonly scenario: string;
  readonly policy: string;
  readonly mode: 'automatic';
  /** Simulated hours the story covered, and the wall minutes a simulated day took. */
  readonly hours: number;
  readonly minutesPerDay: number;
  readonly wallSec: number;
  /** Estimated (power model at measured demand), kWh of simulated time. */
  readonly energyKWh: number;
  readonly baselineEnergyKWh: number;
  readonly savedPct: number;
  readonly lowerBoundKWh: number;
  readonly alwaysOnKWh: number;
  readonly migrations: number;
  readonly failedSteps: number;
  readonly powerOns: number;
  readonly powerOffs: number;
  readonly plans: number;
  readonly rounds: number;
  /** Rounds that failed (no host answered, …); the loop went on. */
  readonly roundErrors: number;
  /** Times the controller froze moves (stale or implausible telemetry, clock jump). */
  readonly freezes: number;
  /** Host-rounds whose measured guest demand exceeded the host's CPU (guests without a sample that round left out). */
  readonly saturatedIntervals: number;
  readonly saturatedHostIntervals: number;
  readonly meanHostsOn: number;
  readonly hosts: number;
  readonly maxMovesPerVmPerDay: number;
  readonly shortestOffSec: number | null;
  readonly timeline: readonly TimelineEntry[];
  /** Probe requests to the guests that failed (all guests, the whole run), and all sent. */
  readonly probeFailed: number;
  readonly probeSent: number;
  /** Longest gap between two successful replies of one guest's probe, wall ms. */
  readonly probeMaxGapMs: number;
  /** Guests not running on exactly one host at the end (lost, or running twice). */
  readonly vmsLost: number;
  /** Distinct hosts powered off / woken by Tide through the power driver, and its kind. */
  readonly hostsPoweredOff: number;
  readonly hostsWoken: number;
  readonly powerMethod: string;
  /** When the evening consolidation emptied a host (its power-off) and the morning spread moved a VM onto a woken host; null: it did not happen. */
  readonly consolidatedAtSec: number | null;
  readonly spreadAtSec: number | null;
  /** Load generator requests that got no answer (retried). */
  readonly loadFailures: number;
  /** CPU one guest got in the calibration at the office and at the quiet load, vCPUs (the thresholds follow them). */
  readonly busyVcpu: number;
  readonly quietVcpu: number;
}

/** The power kinds under which the lab's hosts are powered by IPMI (wol powers off through IPMI too). */
function powerMethodOf(config: TideConfig): string {
  const kinds = [...new Set(config.hosts.map((h) => h.power.kind))];
  if (kinds.length !== 1 || (kinds[0] !== 'ipmi' && kinds[0] !== 'wol')) {
    throw new LabError(`the lab's hosts have no IPMI power (power kinds: ${kinds.join(', ')}); bring it up with \`tide lab up --power\``);
  }
  return kinds[0];
}

function migrateOptions(config: TideConfig): Omit<MigrateOptions, 'onProgress'> {
  const m = config.migration;
  return {
    mode: 'live', autoConverge: m.autoConverge, postCopyAfterIterations: m.postCopyAfterIterations, copyStorage: m.copyStorage,
    unsafe: m.unsafe, timeoutSec: m.timeoutSec,
    ...(m.bandwidthMiBps !== undefined ? { bandwidthMiBps: m.bandwidthMiBps } : {}),
    ...(m.maxDowntimeMs !== undefined ? { maxDowntimeMs: m.maxDowntimeMs } : {}),
  };
}

/** When the evening consolidation and the morning spread happened in a timeline (day seconds), see LabDemoSummary. */
export function storyMarks(timeline: readonly TimelineEntry[], consolidateFromHour = 18, balanceFromHour = 7): { consolidatedAtSec: number | null; spreadAtSec: number | null } {
  const hour = (t: number): number => (t % 86_400) / 3600;
  const inNight = (t: number): boolean => hour(t) >= consolidateFromHour || hour(t) < balanceFromHour;
  const off = timeline.find((e) => e.kind === 'powerOff' && inNight(e.t)
    && timeline.some((m) => m.kind === 'migrate' && m.from === e.host && m.t <= e.t && inNight(m.t)));
  const wake = timeline.find((e) => e.kind === 'powerOn' && !inNight(e.t) && (off === undefined || e.t > off.t));
  const spread = wake && timeline.find((m) => m.kind === 'migrate' && m.to === wake.host && m.t >= wake.t);
  return { consolidatedAtSec: off?.t ?? null, spreadAtSec: spread?.t ?? null };
}

export async function runLabDemo(opts: LabDemoOptions = {}): Promise<LabDemoSummary> {
  const story = opts.story ?? DEFAULT_STORY;
  const minutes = opts.minutes ?? 8;
  const factor = dayFactor(minutes);
  const intervalSec = opts.intervalSec ?? 600;
  const log = opts.log ?? (() => {});
  const wall0 = performance.now();

  const { lab } = await Lab.up({ dir: opts.dir, vms: opts.vms ?? 4, power: { method: 'ipmi' }, log });
  // Every host on before the story starts (a previous run or test may have left one off).
  for (const h of lab.hostNames) {
    if ((await lab.powerStatus(h)).state !== 'on') {
      log(`powering ${h} on before the demo`);
      await lab.powerAction(h, 'on');
    }
    await lab.waitHostUp(h, 120_000);
  }
  const config = loadConfig(lab.configFile);
  const powerMethod = powerMethodOf(config);
  const vms = lab.vms.map((v) => v.name);
  const at0: Record<string, LabHostName | null> = {};
  for (const v of vms) at0[v] = await lab.locate(v);
  const running = vms.filter((v) => at0[v] !== null);
  if (running.length < 2) throw new LabError(`the demo needs at least 2 running guests (running: ${running.join(', ') || 'none'})`);

  const hypervisor = createDriver(config);
  // The power driver's own waits (soft-off grace) are real time.
  const power = createPowerDriver(config.hosts, { clock: systemClock });
  // The simulated day starts when the first round does (set below, after the warm-up).
  let clock: Clock = { now: () => story.startSec * 1000, sleep: (ms, signal) => systemClock.sleep(ms, signal) };
  const nowSec = (): number => clock.now() / 1000;
  const emit = (kind: LabDemoEvent['kind'], text: string): void => opts.onEvent?.({ atSec: nowSec(), kind, text });
  const store = openSqliteStore(':memory:');
  const load = new GuestLoad(lab, running, story);
  const probes: RunningProbe[] = [];
  let stopLoad = false;
  let loadLoop: Promise<void> = Promise.resolve();

  let migrations = 0;
  let failed = 0;
  let powerOns = 0;
  let powerOffs = 0;
  let plans = 0;
  let rounds = 0;
  let roundErrors = 0;
  let freezes = 0;
  let saturated = 0;
  let hostsOnSum = 0;
  let energyWs = 0;
  let alwaysOnWs = 0;
  let lowerWs = 0;
  const timeline: TimelineEntry[] = [];
  const wokenHosts = new Set<string>();
  const offHosts = new Set<string>();
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
      emit('migrate', `${s.vm}: ${s.from} → ${s.to} live in ${((r.result?.totalMs ?? 0) / 1000).toFixed(1)} s (wall), downtime ${r.result?.downtimeMs ?? '?'} ms — ${s.reason}`);
    } else if (s.kind === 'powerOn') {
      powerOns++;
      wokenHosts.add(s.host);
      timeline.push({ t, kind: 'powerOn', host: s.host, reason: s.reason });
      emit('powerOn', `power on ${s.host} (${power.kind === 'config' ? powerMethod : power.kind}) — ${s.reason}`);
    } else if (s.kind === 'powerOff') {
      powerOffs++;
      offHosts.add(s.host);
      timeline.push({ t, kind: 'powerOff', host: s.host, reason: s.reason });
      emit('powerOff', `power off ${s.host} (${powerMethod}) — ${s.reason}`);
    }
  };
  // Per-round figures, each held until the next round (or the end), in simulated seconds.
  const prev = { atSec: story.startSec, energyW: 0, alwaysOnW: 0, lowerW: 0 };
  const hold = (untilSec: number): void => {
    const dt = Math.max(0, untilSec - prev.atSec);
    energyWs += prev.energyW * dt;
    alwaysOnWs += prev.alwaysOnW * dt;
    lowerWs += prev.lowerW * dt;
    prev.atSec = untilSec;
  };
  let lastWindow = '';
  let lastStatusHour = -1;
  const onTick = (res: TickResult): void => {
    rounds++;
    const { hosts, vms: snapVms } = res.snapshot;
    hold(res.snapshot.time);
    const demandOf = (h: Host): number => snapVms.filter((v: Vm) => v.host === h.id).reduce((a, v) => a + v.demand.cpuMips, 0);
    const cap = (h: Host): number => h.cpuCores * h.mipsPerCore;
    const total = snapVms.reduce((a, v) => a + v.demand.cpuMips, 0);
    const capAll = hosts.reduce((a, h) => a + cap(h), 0);
    prev.energyW = hosts.reduce((a, h) => a + (h.powerState === 'on' ? powerAt(h.power, Math.min(1, demandOf(h) / cap(h))) : h.powerState === 'off' ? h.power.offW : h.power.bootW), 0);
    prev.alwaysOnW = hosts.reduce((a, h) => a + powerAt(h.power, Math.min(1, total / capAll)), 0);
    prev.lowerW = lowerBoundWatts(hosts, total, snapVms.reduce((a, v) => a + v.memMiB, 0));
    for (const h of hosts) {
      if (h.powerState === 'on') hostsOnSum++;
      // measured demand only: a VM without a sample this round counts at its full size in the
      // snapshot (pessimistic for planning), which is not a measurement of saturation
      const measured = snapVms.filter((v: Vm) => v.host === h.id && v.usage !== 'unknown').reduce((a, v) => a + v.demand.cpuMips, 0);
      if (measured > cap(h)) saturated++;
    }
    if (res.plan.steps.length > 0) plans++;
    const hour = Math.floor(res.snapshot.time / 3600);
    if (hour !== lastStatusHour) {
      lastStatusHour = hour;
      emit('status', `hosts ${hosts.map((h) => (h.powerState === 'on' ? `${h.id} ${Math.round((100 * demandOf(h)) / cap(h))} %` : `${h.id} ${h.powerState}`)).join(', ')} (demand, % of the host's CPU); guests ${snapVms.map((v) => `${v.id}@${v.host} ${Math.round((100 * v.demand.cpuMips) / (v.vcpus * v.mipsPerVcpu))} %`).join(', ')}; ${res.plan.hosts.map((h) => `${h.host} ${h.class}: ${h.reason}`).join('; ')}`);
    }
    const w = res.snapshot.window;
    const label = w ? `${w.kind}${w.name ? ` (${w.name})` : ''}` : '';
    if (label !== lastWindow) {
      emit('window', `schedule window: ${label || 'none'}`);
      lastWindow = label;
    }
  };

  const untilMs = story.endSec * 1000;
  const maxBootSec = Math.max(...config.hosts.map((h) => h.bootSec));
  const hostCores = (await hypervisor.listHosts()).find((h) => h.up)?.cpuCores ?? 2;
  // The daemon (src/daemon) over this run's own store (in memory: no cluster lock needed, and the
  // wake path of each host is tested before its first power-off, as on a fresh installation).
  const newDaemon = (): Daemon => createDaemon({
    hypervisor, power, clock, store, holdLock: false, pollMs: 0,
    settings: {
      mode: 'automatic',
      policy: compilePolicy('tide', labDemoPolicyArgs(hostCores, busyVcpu, running.length, quietVcpu)),
      limits: { maxConcurrent: 1, maxPerHost: 1 },
      migrate: migrateOptions(config),
      intervalSec,
      hosts: Object.fromEntries(config.hosts.map((h) => [h.name, { tags: h.tags }])),
      rules: [],
      schedule: compileSchedule(LAB_DEMO_SCHEDULE),
      scheduleOffsetSec: SIM_MONDAY_EPOCH_SEC,
      // the executor waits for a woken host on the scaled clock: give it the real boot time, twice
      bootTimeoutSec: Math.ceil((2 * maxBootSec + 30) * factor),
    },
    observer: {
      onStepEnd,
      onTick,
      onRoundError: (e) => {
        roundErrors++;
        emit('error', `round failed: ${e.code}: ${e.message}`);
      },
      onFreeze: (f) => {
        freezes += f.frozen ? 1 : 0;
        emit('freeze', f.frozen ? `moves frozen: ${f.reason}` : 'telemetry healthy again: moves allowed');
      },
    },
  });

  let busyVcpu = 0;
  let quietVcpu = 0;
  let probeFailed = 0;
  let probeSent = 0;
  let probeMaxGapMs = 0;
  let vmsLost = 0;
  try {
    try {
      for (const v of running) probes.push(await lab.probe(v, { intervalMs: opts.probeIntervalMs ?? 500, infoEvery: 20 }));
      // Calibration: what a guest at the quiet and at the office load gets of this machine now,
      // probes running (see labDemoPolicyArgs).
      const measure = async (pct: number): Promise<number[]> => {
        await load.setAll(pct);
        await systemClock.sleep(3000);
        await hypervisor.sample();
        await systemClock.sleep(6000);
        const u = await hypervisor.sample();
        return running.map((v) => u.vms.find((x) => x.vm === v)?.cpuPct).filter((x): x is number => typeof x === 'number').sort((a, b) => a - b);
      };
      const median = (xs: number[]): number => (xs[Math.floor(xs.length / 2)] ?? 0) / 100;
      const quietGot = await measure(story.quietPct);
      const busyGot = await measure(story.officePct);
      quietVcpu = median(quietGot);
      busyVcpu = median(busyGot);
      log(`calibration: a guest gets ${quietGot.map((x) => x.toFixed(1)).join(', ')} % of a vCPU at ${story.quietPct} % load, ${busyGot.map((x) => x.toFixed(1)).join(', ')} % at ${story.officePct} %`);
      if (busyVcpu < 0.03 || busyVcpu < 1.8 * quietVcpu) {
        throw new LabError(`the guests get too little CPU to tell busy from quiet (${(100 * quietVcpu).toFixed(1)} % of a vCPU at ${story.quietPct} % load, ${(100 * busyVcpu).toFixed(1)} % at ${story.officePct} %): is the machine overloaded?`);
      }
      // The afternoon's load, then one sample so the first round has rates to read.
      await load.set(story.startSec);
      await hypervisor.sample();
      await systemClock.sleep(1000);
      clock = scaledClock(factor, story.startSec * 1000);
      const daemon = newDaemon();
      loadLoop = (async () => {
        let last = '';
        while (!stopLoad) {
          await load.set(nowSec());
          const d = describeLoad(story, running, nowSec());
          if (d !== last) emit('load', d);
          last = d;
          await systemClock.sleep(250);
        }
      })();
      await daemon.run(untilMs);
      hold(Math.max(nowSec(), story.endSec));
    } finally {
      stopLoad = true;
      await loadLoop.catch(() => {});
      await load.stop().catch(() => {});
      for (const p of probes) {
        const rep = await p.stop();
        probeFailed += rep.failed;
        probeSent += rep.sent;
        probeMaxGapMs = Math.max(probeMaxGapMs, rep.maxGapMs);
      }
      store.close();
      await hypervisor.close();
    }
    // Lost: not running on exactly one host (checked with virsh on each host, not through Tide),
    // before any host is powered back on.
    for (const v of running) {
      let active = 0;
      for (const h of lab.hostNames) {
        const r = await lab.virsh(h, ['list', '--name']);
        if (r.code === 0 && r.stdout.split('\n').map((s) => s.trim()).includes(v)) active++;
      }
      if (active !== 1) vmsLost++;
    }
  } finally {
    // Leave the lab whole: hosts Tide powered off come back on (not part of the figures).
    for (const h of lab.hostNames) {
      if ((await lab.powerStatus(h)).state === 'off') {
        log(`powering ${h} back on after the demo`);
        await lab.powerAction(h, 'on');
        await lab.waitHostUp(h, 120_000);
      }
    }
  }
  const figures = timelineFigures(timeline);
  const marks = storyMarks(timeline);
  const energyKWh = energyWs / 3.6e6;
  const alwaysOnKWh = alwaysOnWs / 3.6e6;
  return {
    scenario: `lab(${lab.hostNames.length} hosts, ${running.length} guests)`, policy: 'tide', mode: 'automatic',
    hours: (story.endSec - story.startSec) / 3600, minutesPerDay: minutes, wallSec: Math.round((performance.now() - wall0) / 1000),
    energyKWh, baselineEnergyKWh: alwaysOnKWh, savedPct: alwaysOnKWh > 0 ? (100 * (alwaysOnKWh - energyKWh)) / alwaysOnKWh : 0,
    lowerBoundKWh: lowerWs / 3.6e6, alwaysOnKWh,
    migrations, failedSteps: failed, powerOns, powerOffs, plans, rounds, roundErrors, freezes,
    saturatedIntervals: saturated, saturatedHostIntervals: saturated, meanHostsOn: hostsOnSum / Math.max(1, rounds), hosts: lab.hostNames.length,
    maxMovesPerVmPerDay: figures.maxMovesPerVmPerDay, shortestOffSec: figures.shortestOffSec, timeline,
    probeFailed, probeSent, probeMaxGapMs, vmsLost,
    hostsPoweredOff: offHosts.size, hostsWoken: wokenHosts.size, powerMethod,
    ...marks, loadFailures: load.failures, busyVcpu, quietVcpu,
  };
}

function describeLoad(story: LoadStory, vms: readonly string[], t: number): string {
  return `load: ${vms.map((v, i) => `${v} ${Math.round(loadAt(story, i, t))} %`).join(', ')} of a vCPU`;
}

export { clockLabel };
