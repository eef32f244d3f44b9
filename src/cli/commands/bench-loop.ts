import { benchLoop as runBenchLoop, type BenchLoopResult } from '../../api/bench-loop.js';
import { checkStorePath, LIMITS } from '../../input/schema.js';
import { num, parse, table } from '../args.js';
import type { CliIo } from '../io.js';

export const benchLoopUsage = `tide bench loop [--hosts N] [--vms M] [--rounds R] [--policy P] [--seed S]
                [--interval SEC] [--max-concurrent N] [--max-per-host N] [--store FILE] [--json]

  Runs the daemon's rounds — collect → plan → journal → execute — on a synthetic cluster (the
  one of \`tide bench plan\`) behind the simulated driver, journaling into a real SQLite store
  (default: a temporary file, removed afterwards), and reports each stage's wall time (p50, p99
  over the rounds: collectMs, planMs, journalMs, executeMs), the peak resident memory and the
  machine's load average (wall times on a shared machine include waiting for a core).
  Simulated time is virtual: executeMs is Tide's own work for the steps, not the migrations'
  duration. Defaults: 1000 hosts, 20 VMs per host, 5 rounds, policy tide, interval 60 s,
  2 migrations in flight (1 per host).`;

/** `tide bench loop`: times the full daemon round on the simulated driver. */
export async function benchLoop(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, {
    hosts: { type: 'string' },
    vms: { type: 'string' },
    rounds: { type: 'string' },
    policy: { type: 'string' },
    seed: { type: 'string' },
    interval: { type: 'string' },
    'max-concurrent': { type: 'string' },
    'max-per-host': { type: 'string' },
    store: { type: 'string' },
    json: { type: 'boolean' },
  });
  const hosts = num(values.hosts as string | undefined, '--hosts', 1000, { min: 1, max: LIMITS.benchHosts, int: true });
  const vms = num(values.vms as string | undefined, '--vms', Math.min(hosts * 20, LIMITS.benchVms), { min: 0, max: LIMITS.benchVms, int: true });
  const rounds = num(values.rounds as string | undefined, '--rounds', 5, { min: 1, max: 1000, int: true });
  const seed = num(values.seed as string | undefined, '--seed', 1, { min: 0, max: 2 ** 32 - 1, int: true });
  const intervalSec = num(values.interval as string | undefined, '--interval', 60, { min: LIMITS.intervalSec.min, max: LIMITS.intervalSec.max, int: true });
  const maxConcurrent = num(values['max-concurrent'] as string | undefined, '--max-concurrent', 2, { min: 1, max: 1000, int: true });
  const maxPerHost = num(values['max-per-host'] as string | undefined, '--max-per-host', 1, { min: 1, max: 1000, int: true });
  const store = values.store as string | undefined;
  if (store !== undefined) checkStorePath(store, '--store');
  const r = await runBenchLoop({
    hosts, vms, rounds, seed, intervalSec, maxConcurrent, maxPerHost, storePath: store, policy: values.policy as string | undefined,
    onRound: values.json ? undefined : (x) => io.err(`round ${x.round}: ${x.steps} step(s), ${Math.round(x.roundMs)} ms\n`),
  });
  if (values.json) {
    io.out(JSON.stringify(r) + '\n');
    return 0;
  }
  io.out(formatBenchLoop(r));
  return 0;
}

/** The stage table (p50 / p99 ms) and the run's figures. */
export function formatBenchLoop(r: BenchLoopResult): string {
  const stages = [['collect', r.collectMs], ['plan', r.planMs], ['journal', r.journalMs], ['execute', r.executeMs], ['whole round', r.roundMs], ['whole round, CPU', r.roundCpuMs]] as const;
  const head = `${r.hosts} hosts, ${r.vms} VMs, ${r.rounds} round(s) of ${r.intervalSec} s, policy ${r.policy}: ${r.stepsExecuted} step(s) executed, peak RSS ${r.peakRssMiB} MiB, journal ${(r.storeBytes / 2 ** 20).toFixed(1)} MiB\n`
    + `machine: ${r.machine.cpus} × ${r.machine.cpuModel}, Node ${r.machine.node}, load average (1 min) ${r.machine.loadAvg1Start} at the start, ${r.machine.loadAvg1End} at the end\n\n`;
  const t = table(['stage', 'p50 ms', 'p99 ms'], stages.map(([name, p]) => [name, p.p50.toFixed(1), p.p99.toFixed(1)]));
  const c = r.stageCpuMs;
  const cpu = table(['stage', 'CPU p50 ms', 'CPU p99 ms'], ([['collect', c.collectMs], ['plan', c.planMs], ['journal', c.journalMs], ['execute', c.executeMs]] as const)
    .map(([name, p]) => [name, p.p50.toFixed(1), p.p99.toFixed(1)]));
  const rounds = table(
    ['round', 'steps', 'executed', 'collect ms', 'plan ms', 'journal ms', 'execute ms', 'round ms', 'round CPU ms'],
    r.perRound.map((x) => [x.round, x.steps, x.succeeded, x.collectMs.toFixed(1), x.planMs.toFixed(1), x.journalMs.toFixed(1), x.executeMs.toFixed(1), x.roundMs.toFixed(1), x.roundCpuMs.toFixed(1)]),
  );
  return `${head}${t}\n${cpu}\n${rounds}`;
}
