/**
 * What-if: replay this cluster's recorded history (the store's per-VM CPU metrics, written by
 * the daemon each round) on its own hosts and VMs (the daemon's last round) through other
 * policies, and report energy, SLA and migrations side by side with the configured policy and
 * the always-on reference. Realistic accounting (src/sim). Read-only; bounded in size.
 */
import type { TickResult } from '../app/controller.js';
import { compileSchedule } from '../config/schedule.js';
import type { TideConfig } from '../config/schema.js';
import { compilePolicy, policyDefinition } from '../core/policy.js';
import { alwaysOnEnergyKWh, simulate } from '../sim/run.js';
import type { SimScenario } from '../sim/scenario.js';
import { DriverError } from '../drivers/errors.js';
import type { Store } from '../store/store.js';

export interface WhatIfRequest {
  /** History to replay, hours back from now (≤ 24: every round; more: hourly means). */
  readonly hours: number;
  /** Policies to compare with the configured one. */
  readonly policies: readonly { readonly name: string; readonly args?: Record<string, unknown> }[];
}

export interface WhatIfRow {
  readonly policy: string;
  readonly label: string;
  readonly configured: boolean;
  readonly energyKWh: number;
  readonly savedVsAlwaysOnPct: number;
  readonly migrations: number;
  readonly slaViolationPct: number;
  readonly saturatedHostIntervals: number;
  readonly meanActiveHosts: number;
  readonly powerOffs: number;
  readonly powerOns: number;
}

export interface WhatIfResult {
  readonly fromMs: number;
  readonly toMs: number;
  readonly samples: number;
  readonly intervalSec: number;
  readonly hosts: number;
  readonly vms: number;
  readonly alwaysOnKWh: number;
  readonly results: readonly WhatIfRow[];
}

/** Seconds since the Monday 00:00 UTC before `epochSec` (the simulator's t = 0 is a Monday). */
function sinceMondaySec(epochSec: number): number {
  const day = Math.floor(epochSec / 86_400);
  return (((day + 3) % 7) * 86_400) + (epochSec - day * 86_400);
}

/**
 * `hours` back from the daemon's last round (tick.at: the clock the store's metrics are written
 * with — the demo's virtual clock, the system clock in tide daemon).
 */
export function whatIf(store: Store, config: TideConfig, tick: TickResult | null, req: WhatIfRequest): WhatIfResult {
  if (!tick) throw new DriverError('TIDE_STALE_PLAN', 'the daemon has not finished a round yet: no hosts and VMs to replay on');
  // Validate every policy first (400 TIDE_POLICY naming the argument) before any work.
  const specs = [{ name: config.policy.name, args: config.policy.args, configured: true }, ...req.policies.map((p) => ({ name: p.name, args: p.args ?? {}, configured: false }))];
  const compiled = specs.map((s) => compilePolicy(s.name, { ...(policyDefinition(s.name).sim.realisticArgs ?? {}), ...s.args }));
  const res = req.hours <= 24 ? 'raw' : 'hour';
  const sinceMs = tick.at - req.hours * 3_600_000;
  const points = store.metricsHistory({ kind: 'vm', sinceMs, res });
  const times = [...new Set(points.map((p) => p.atMs))].sort((a, b) => a - b);
  if (times.length < 2) throw new DriverError('TIDE_STALE_PLAN', `fewer than 2 recorded samples in the last ${req.hours} h: nothing to replay yet`);
  const steps = times.slice(1).map((t, i) => t - times[i]!).sort((a, b) => a - b);
  const intervalSec = Math.max(1, Math.round(steps[Math.floor(steps.length / 2)]! / 1000));
  const index = new Map(times.map((t, i) => [t, i]));
  const snap = tick.snapshot;
  const cpu = new Map<string, Float64Array>(snap.vms.map((v) => [v.id, new Float64Array(times.length).fill(Number.NaN)]));
  for (const p of points) {
    const a = cpu.get(p.name);
    if (a && p.cpuPct !== null) a[index.get(p.atMs)!] = Math.min(1, Math.max(0, p.cpuPct / 100));
  }
  for (const a of cpu.values()) {
    // Gaps (a VM not measured in a round) carry the last value; leading gaps the first.
    const first = a.find((x) => !Number.isNaN(x)) ?? 0;
    let last = first;
    for (let i = 0; i < a.length; i++) a[i] = Number.isNaN(a[i]!) ? last : (last = a[i]!);
  }
  const scenario: SimScenario = {
    name: `this cluster, last ${req.hours} h`,
    intervalSec, samples: times.length, startSec: sinceMondaySec(Math.floor(times[0]! / 1000)),
    hosts: snap.hosts.map((h) => ({ id: h.id, cpuCores: h.cpuCores, mipsPerCore: h.mipsPerCore, memMiB: h.memMiB, netBytesPerSec: h.netBytesPerSec, diskBytesPerSec: h.diskBytesPerSec, power: h.power, tags: h.tags })),
    vms: snap.vms.map((v) => ({ id: v.id, vcpus: v.vcpus, mipsPerVcpu: v.mipsPerVcpu, memMiB: v.memMiB, cpu: cpu.get(v.id)!, tags: v.tags, migratable: v.migratable })),
    rules: snap.rules,
    ...(config.schedule ? { schedule: compileSchedule(config.schedule) } : {}),
  };
  const alwaysOnKWh = alwaysOnEnergyKWh(scenario, 'realistic');
  const results = compiled.map((policy, i): WhatIfRow => {
    const r = simulate({ scenario, policy, accounting: 'realistic' });
    return {
      policy: specs[i]!.name, label: policy.label, configured: specs[i]!.configured,
      energyKWh: r.energyKWh, savedVsAlwaysOnPct: alwaysOnKWh > 0 ? (100 * (alwaysOnKWh - r.energyKWh)) / alwaysOnKWh : 0,
      migrations: r.migrations, slaViolationPct: r.overallSlaViolationPct, saturatedHostIntervals: r.saturatedHostIntervals,
      meanActiveHosts: r.meanActiveHosts, powerOffs: r.powerOffs, powerOns: r.powerOns,
    };
  });
  return { fromMs: times[0]!, toMs: times[times.length - 1]!, samples: times.length, intervalSec, hosts: snap.hosts.length, vms: snap.vms.length, alwaysOnKWh, results };
}
