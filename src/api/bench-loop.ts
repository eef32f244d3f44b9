/**
 * `tide bench loop`: the daemon's whole round — collect → plan → journal → execute — on a
 * synthetic cluster behind the simulated driver (src/drivers/sim) with a real SQLite store,
 * timed per stage over several rounds.
 *
 * Everything runs through the daemon's own code (createDaemon → daemon.round → Controller.tick):
 * the round's stage times are the Controller's own (TickResult.stageMs). Time inside the
 * simulated datacenter is a VirtualClock, so a migration's simulated duration costs no wall
 * time: executeMs is Tide's own work to run a round's steps (executor, driver calls, the
 * per-step journal writes), not how long the migrations would take on real hosts.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePolicy } from '../core/policy.js';
import { createDaemon } from '../daemon/daemon.js';
import { SimDriver } from '../drivers/sim/sim-driver.js';
import { VirtualClock } from '../executor/clock.js';
import type { SimScenario, SimVmSpec } from '../sim/scenario.js';
import { syntheticCluster } from '../sim/synthetic.js';
import { openSqliteStore } from '../store/store.js';

export interface BenchLoopOptions {
  readonly hosts: number;
  readonly vms: number;
  /** Rounds to run and time (default 5). */
  readonly rounds?: number;
  /** Policy spec (default 'tide'). */
  readonly policy?: string;
  readonly seed?: number;
  /** Seconds between rounds on the simulated clock (default 60). */
  readonly intervalSec?: number;
  /** Executor limits (default: the configuration's defaults, 2 in flight cluster-wide, 1 per host). */
  readonly maxConcurrent?: number;
  readonly maxPerHost?: number;
  /** SQLite file of the journal (default: a new file in a temporary directory, removed afterwards). */
  readonly storePath?: string;
  /** Called after each round (progress). */
  readonly onRound?: (r: BenchLoopRound) => void;
}

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
}

/** One timed round. */
export interface BenchLoopRound {
  readonly round: number;
  readonly collectMs: number;
  readonly planMs: number;
  readonly journalMs: number;
  readonly executeMs: number;
  /** The daemon's whole round, wall ms (stages plus its own bookkeeping: plan settling, status row). */
  readonly roundMs: number;
  /** CPU time of the process during the round, ms (user + system): on a shared machine the wall times also count waiting for a core. */
  readonly roundCpuMs: number;
  /** CPU time of the process in each stage, ms (TickResult.stageCpuMs). */
  readonly cpuMs: { readonly collectMs: number; readonly planMs: number; readonly journalMs: number; readonly executeMs: number };
  readonly steps: number;
  readonly migrations: number;
  readonly powerOffs: number;
  readonly powerOns: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
}

export interface BenchLoopResult {
  readonly hosts: number;
  readonly vms: number;
  readonly rounds: number;
  readonly policy: string;
  readonly intervalSec: number;
  readonly collectMs: Percentiles;
  readonly planMs: Percentiles;
  readonly journalMs: Percentiles;
  readonly executeMs: Percentiles;
  readonly roundMs: Percentiles;
  readonly roundCpuMs: Percentiles;
  /** The stages' CPU time, ms (p50, p99 over the rounds). */
  readonly stageCpuMs: { readonly collectMs: Percentiles; readonly planMs: Percentiles; readonly journalMs: Percentiles; readonly executeMs: Percentiles };
  /** Peak resident memory of the process, MiB (getrusage maxrss): scenario, driver, daemon and store together. */
  readonly peakRssMiB: number;
  /** Time to build the synthetic cluster and the simulated driver, ms (not part of a round). */
  readonly buildMs: number;
  /** Size of the SQLite journal after the rounds (database + WAL), bytes. */
  readonly storeBytes: number;
  /** Steps executed (succeeded) over all rounds. */
  readonly stepsExecuted: number;
  /**
   * The machine: CPU model and count, Node version, and its 1-minute load average when the run
   * began and when it ended (on a shared machine wall times include waiting for a core; compare
   * roundCpuMs).
   */
  readonly machine: { readonly cpuModel: string; readonly cpus: number; readonly node: string; readonly loadAvg1Start: number; readonly loadAvg1End: number };
  readonly perRound: readonly BenchLoopRound[];
}

/** Nearest-rank percentile of `xs` (q in 0..1), rounded to 0.1 ms. */
function percentile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return Math.round((s[i] ?? 0) * 10) / 10;
}

const pct = (xs: readonly number[]): Percentiles => ({ p50: percentile(xs, 0.5), p99: percentile(xs, 0.99) });

/**
 * The synthetic cluster of `tide bench plan` (src/sim/synthetic.ts) as a simulated datacenter:
 * same hosts, VM sizes and initial placement; each VM's CPU trace is its synthetic history
 * (a share of its size per sample, looping), memory in use 60 % of its size.
 */
export function loopScenario(opts: { hosts: number; vms: number; seed?: number; intervalSec: number }): { scenario: SimScenario; placement: Record<string, string> } {
  const snap = syntheticCluster({ hosts: opts.hosts, vms: opts.vms, seed: opts.seed });
  const samples = 12;
  const mem = new Float64Array(samples).fill(0.6);
  const placement: Record<string, string> = {};
  const vms: SimVmSpec[] = snap.vms.map((v) => {
    const size = v.vcpus * v.mipsPerVcpu;
    const cpu = Float64Array.from(v.cpuHistoryMips ?? [v.demand.cpuMips], (x) => x / size);
    if (v.host !== null) placement[v.id] = v.host;
    return { id: v.id, vcpus: v.vcpus, mipsPerVcpu: v.mipsPerVcpu, memMiB: v.memMiB, cpu, mem };
  });
  const hosts = snap.hosts.map((h) => ({
    id: h.id, cpuCores: h.cpuCores, mipsPerCore: h.mipsPerCore, memMiB: h.memMiB,
    netBytesPerSec: h.netBytesPerSec ?? 3.125e9, diskBytesPerSec: h.diskBytesPerSec ?? 2e9, power: h.power,
  }));
  return { scenario: { name: `synthetic-${opts.hosts}x${opts.vms}`, intervalSec: opts.intervalSec, samples, startSec: 0, hosts, vms, rules: [] }, placement };
}

export async function benchLoop(opts: BenchLoopOptions): Promise<BenchLoopResult> {
  const rounds = opts.rounds ?? 5;
  const intervalSec = opts.intervalSec ?? 60;
  const policy = compilePolicy(opts.policy ?? 'tide');
  const loadAvg1Start = loadavg()[0]!;
  const t0 = performance.now();
  const { scenario, placement } = loopScenario({ hosts: opts.hosts, vms: opts.vms, seed: opts.seed, intervalSec });
  const clock = new VirtualClock(0);
  const driver = new SimDriver(scenario, clock, { placement, meterEnergy: false });
  const buildMs = Math.round(performance.now() - t0);
  const dir = opts.storePath === undefined ? mkdtempSync(join(tmpdir(), 'tide-bench-loop-')) : null;
  const storePath = opts.storePath ?? join(dir!, 'tide.sqlite');
  const store = openSqliteStore(storePath);
  const perRound: BenchLoopRound[] = [];
  try {
    // The daemon as `tide daemon` runs it, automatic mode, on the virtual clock; the store is
    // this run's own, so no cluster lock for the daemon's life (each executed plan still takes it).
    const daemon = createDaemon({
      clock, store, hypervisor: driver, power: driver, holdLock: false, pollMs: 0,
      settings: {
        policy, mode: 'automatic', intervalSec,
        limits: { maxConcurrent: opts.maxConcurrent ?? 2, maxPerHost: opts.maxPerHost ?? 1 },
        migrate: { mode: 'live', autoConverge: true, timeoutSec: 600 },
        hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])),
        bootTimeoutSec: 900,
      },
    });
    for (let i = 0; i < rounds; i++) {
      // the next round starts one interval after the previous one began (or at once when it overran)
      if (i > 0) await clock.runUntil(Math.max(clock.now(), i * intervalSec * 1000));
      const w0 = performance.now();
      const c0 = process.cpuUsage();
      const report = await clock.drive(daemon.round());
      const roundMs = performance.now() - w0;
      const cpu = process.cpuUsage(c0);
      const roundCpuMs = (cpu.user + cpu.system) / 1000;
      if (report.result === 'error' || !report.tick) throw new Error(`bench loop: round ${i + 1} failed: ${report.error?.code ?? ''} ${report.error?.message ?? 'no round'}`);
      const { tick } = report;
      const st = tick.stageMs ?? { collectMs: 0, planMs: 0, journalMs: 0, executeMs: 0 };
      const sc = tick.stageCpuMs ?? { collectMs: 0, planMs: 0, journalMs: 0, executeMs: 0 };
      const kind = (k: string): number => tick.plan.steps.filter((s) => s.kind === k).length;
      const r: BenchLoopRound = {
        round: i + 1, ...st, roundMs, roundCpuMs, cpuMs: { collectMs: round1(sc.collectMs), planMs: round1(sc.planMs), journalMs: round1(sc.journalMs), executeMs: round1(sc.executeMs) }, steps: tick.plan.steps.length,
        migrations: kind('migrate'), powerOffs: kind('powerOff'), powerOns: kind('powerOn'),
        succeeded: tick.run?.succeeded ?? 0, failed: tick.run?.failed ?? 0, skipped: tick.run?.skipped ?? 0,
      };
      perRound.push(r);
      opts.onRound?.(r);
    }
  } finally {
    store.close();
  }
  let storeBytes = 0;
  for (const f of [storePath, `${storePath}-wal`]) {
    try {
      storeBytes += statSync(f).size;
    } catch { /* no WAL left after a clean close */ }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  const of = (k: 'collectMs' | 'planMs' | 'journalMs' | 'executeMs' | 'roundMs' | 'roundCpuMs'): Percentiles => pct(perRound.map((r) => r[k]));
  return {
    hosts: opts.hosts, vms: opts.vms, rounds, policy: policy.label, intervalSec,
    collectMs: of('collectMs'), planMs: of('planMs'), journalMs: of('journalMs'), executeMs: of('executeMs'), roundMs: of('roundMs'), roundCpuMs: of('roundCpuMs'),
    stageCpuMs: {
      collectMs: pct(perRound.map((r) => r.cpuMs.collectMs)), planMs: pct(perRound.map((r) => r.cpuMs.planMs)),
      journalMs: pct(perRound.map((r) => r.cpuMs.journalMs)), executeMs: pct(perRound.map((r) => r.cpuMs.executeMs)),
    },
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), buildMs, storeBytes,
    stepsExecuted: perRound.reduce((a, r) => a + r.succeeded, 0),
    machine: { cpuModel: cpus()[0]?.model ?? 'unknown', cpus: cpus().length, node: process.version, loadAvg1Start: round2(loadAvg1Start), loadAvg1End: round2(loadavg()[0]!) },
    perRound: perRound.map((r) => ({ ...r, collectMs: round1(r.collectMs), planMs: round1(r.planMs), journalMs: round1(r.journalMs), executeMs: round1(r.executeMs), roundMs: round1(r.roundMs), roundCpuMs: round1(r.roundCpuMs) })),
  };
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
const round2 = (x: number): number => Math.round(x * 100) / 100;
