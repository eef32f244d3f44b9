import { benchPlan as runBenchPlan } from '../../api/bench.js';
import { LIMITS } from '../../input/schema.js';
import { num, parse, table } from '../args.js';
import type { CliIo } from '../io.js';

export const benchPlanUsage = `tide bench plan [--hosts N] [--vms M] [--policy P] [--seed S] [--json]

  Builds a synthetic cluster (three host generations, mixed VM sizes, busy and idle VMs) and
  times one planning pass of the policy (default: tide). Prints hosts, vms, migrations,
  planMs, planCpuMs (the process's CPU time during the pass: unlike the wall time, not inflated
  by waiting for a core on a shared machine) and peakRssMiB (the process's peak resident memory).`;

/** `tide bench plan`: times one planning pass on a synthetic cluster. */
export async function benchPlan(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, {
    hosts: { type: 'string' },
    vms: { type: 'string' },
    policy: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean' },
  });
  const hosts = num(values.hosts as string | undefined, '--hosts', 1000, { min: 1, max: LIMITS.benchHosts, int: true });
  const vms = num(values.vms as string | undefined, '--vms', Math.min(hosts * 20, LIMITS.benchVms), { min: 0, max: LIMITS.benchVms, int: true });
  const seed = num(values.seed as string | undefined, '--seed', 1, { min: 0, max: 2 ** 32 - 1, int: true });
  const r = runBenchPlan({ hosts, vms, seed, policy: values.policy as string | undefined });
  if (values.json) {
    io.out(JSON.stringify(r) + '\n');
    return 0;
  }
  io.out(table(
    ['policy', 'hosts', 'vms', 'migrations', 'power-offs', 'power-ons', 'not moved', 'plan ms', 'plan CPU ms', 'build ms', 'peak RSS MiB'],
    [[r.policy, r.hosts, r.vms, r.migrations, r.powerOffs, r.powerOns, r.notMoved, r.planMs.toFixed(1), r.planCpuMs.toFixed(1), r.buildMs, r.peakRssMiB]],
  ));
  return 0;
}
