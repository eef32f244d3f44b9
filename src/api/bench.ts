/** Benchmarks exposed through the API (and `tide bench plan`). */
import { compilePolicy, plan } from '../core/policy.js';
import { migrations } from '../core/plan/types.js';
import { syntheticCluster } from '../sim/synthetic.js';

export interface BenchPlanResult {
  readonly policy: string;
  readonly hosts: number;
  readonly vms: number;
  readonly migrations: number;
  readonly powerOffs: number;
  readonly powerOns: number;
  readonly notMoved: number;
  /** Wall time of one planning pass, ms (snapshot construction excluded). */
  readonly planMs: number;
  /**
   * CPU time of the process during the pass (user + system, ms): on a machine shared with other
   * work the wall time also counts waiting for a core, this does not.
   */
  readonly planCpuMs: number;
  /** Time to build the synthetic snapshot, ms. */
  readonly buildMs: number;
  /** Peak resident memory of the process so far, MiB (getrusage maxrss). */
  readonly peakRssMiB: number;
}

export function benchPlan(opts: { hosts: number; vms: number; policy?: string; seed?: number }): BenchPlanResult {
  const policy = compilePolicy(opts.policy ?? 'tide');
  const t0 = performance.now();
  const snapshot = syntheticCluster({ hosts: opts.hosts, vms: opts.vms, seed: opts.seed });
  const t1 = performance.now();
  const c1 = process.cpuUsage();
  const p = plan(snapshot, policy, snapshot.time);
  const c2 = process.cpuUsage(c1);
  const t2 = performance.now();
  return {
    policy: policy.label,
    hosts: opts.hosts,
    vms: opts.vms,
    migrations: migrations(p).length,
    powerOffs: p.steps.filter((s) => s.kind === 'powerOff').length,
    powerOns: p.steps.filter((s) => s.kind === 'powerOn').length,
    notMoved: p.notMoved.length,
    planMs: Math.round((t2 - t1) * 10) / 10,
    planCpuMs: Math.round((c2.user + c2.system) / 100) / 10,
    buildMs: Math.round(t1 - t0),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}
