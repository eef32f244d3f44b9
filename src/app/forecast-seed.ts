/**
 * Predictive DPM across restarts: a new controller's demand recorder (src/core/predict) is fed
 * the store's metrics history before its first forecast, so a restarted daemon forecasts from
 * its first round instead of relearning for days.
 *
 * The store keeps, per VM, CPU as a share of its vCPUs (0..100) and memory MiB in use, every
 * round for 24 h (`raw`) and hourly means for 56 days (`hour`); a value that was not measured
 * is null (journal.ts metricSamples). The recorder learns what Controller.collect records each
 * round: each freshly measured VM's CPU MIPS and memory MiB, and their sum as the cluster's
 * demand. So each stored round is replayed as one recorder round of the VMs measured in it,
 * with CPU MIPS = share × the VM's size now (vCPUs × the snapshot's MIPS per vCPU: the same
 * convention the controller's own history uses). An hourly mean of n rounds is replayed as n
 * rounds spread evenly over its hour, each at the mean (so it weighs as much as the rounds it
 * replaced, in the 15-min buckets they fell in). A VM not in the current snapshot has no known
 * size and is left out (the forecast is of the VMs that exist).
 */
import type { Vm } from '../core/model/types.js';
import type { DemandRecorder, VmDemandSample } from '../core/predict/forecast.js';
import type { MetricPoint, Store } from '../store/store.js';

const HOUR_MS = 3_600_000;

/** One replayed round: clock seconds and the VMs measured in it. */
export interface HistoryRound {
  readonly atSec: number;
  readonly vms: readonly VmDemandSample[];
}

/**
 * Rounds of demand from stored VM metrics points (oldest first, as store.metricsHistory returns
 * them), for VMs whose size (MIPS at 100 %) is in `sizeMips`. Pure.
 */
export function* historyRounds(points: readonly MetricPoint[], sizeMips: ReadonlyMap<string, number>): Generator<HistoryRound> {
  let i = 0;
  while (i < points.length) {
    const first = points[i]!;
    const group: MetricPoint[] = [];
    for (; i < points.length && points[i]!.atMs === first.atMs && points[i]!.res === first.res; i++) group.push(points[i]!);
    const vms: VmDemandSample[] = [];
    let n = 1;
    for (const p of group) {
      const size = sizeMips.get(p.name);
      if (p.kind !== 'vm' || p.cpuPct === null || p.memMiB === null || size === undefined) continue;
      vms.push({ id: p.name, cpuMips: (p.cpuPct / 100) * size, memMiB: p.memMiB });
      n = Math.max(n, p.samples);
    }
    if (vms.length === 0) continue;
    if (first.res === 'raw') {
      yield { atSec: first.atMs / 1000, vms };
      continue;
    }
    for (let k = 0; k < n; k++) yield { atSec: (first.atMs + ((k + 0.5) * HOUR_MS) / n) / 1000, vms };
  }
}

/**
 * Feeds `recorder` the store's VM metrics recorded before `nowSec` (clock seconds), with sizes
 * from the VMs of the current snapshot. Returns the rounds replayed (0: nothing stored).
 */
export function seedRecorderFromStore(recorder: DemandRecorder, store: Pick<Store, 'metricsHistory'>, vms: readonly Vm[], nowSec: number): number {
  const sizeMips = new Map(vms.map((v) => [v.id, v.vcpus * v.mipsPerVcpu]));
  const nowMs = nowSec * 1000;
  const points = store.metricsHistory({ kind: 'vm' }).filter((p) => p.atMs < nowMs);
  let rounds = 0;
  for (const r of historyRounds(points, sizeMips)) {
    recorder.record(r.atSec, r.vms);
    rounds++;
  }
  return rounds;
}
