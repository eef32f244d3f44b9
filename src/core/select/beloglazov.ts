/**
 * VM selection policies of Beloglazov & Buyya (CCPE 2012), ported from CloudSim 3.0.3:
 * minimum migration time (MMT), minimum utilisation (MU), maximum correlation (MC) and random
 * selection (RS, seeded here; CloudSim's is unseeded).
 */
import type { ClusterState } from '../model/state.js';
import type { Rng } from '../util/rng.js';
import { olsRSquared } from '../util/stats.js';
import { migratableOn, type VmSelector } from './selector.js';

/** argmin of metric over the migratable VMs; ties go to the first in list order. */
function argmin(state: ClusterState, h: number, metric: (v: number) => number): number {
  let best = -1;
  let bestMetric = Infinity;
  for (const v of state.vmsOn(h)) {
    if (!state.vms[v]!.migratable) continue;
    const m = metric(v);
    if (m < bestMetric) {
      bestMetric = m;
      best = v;
    }
  }
  return best;
}

/** Minimum migration time: the VM with the least memory to copy. */
export const mmt: VmSelector = {
  name: 'mmt',
  select: (s, h) => argmin(s, h, (v) => s.vms[v]!.memMiB),
};

/** Minimum utilisation: the VM with the lowest current demand relative to its size. */
export const mu: VmSelector = {
  name: 'mu',
  select: (s, h) => argmin(s, h, (v) => {
    const vm = s.vms[v]!;
    return vm.demand.cpuMips / (vm.vcpus * vm.mipsPerVcpu);
  }),
};

/** Random selection among the migratable VMs, from a seeded generator. */
export function rs(rng: Rng): VmSelector {
  return {
    name: 'rs',
    select: (s, h) => {
      const vms = migratableOn(s, h);
      return vms.length === 0 ? -1 : vms[rng.int(vms.length)]!;
    },
  };
}

/** The VM's utilisation history (fraction of its size), newest first, at most `window` samples. */
function utilHistory(state: ClusterState, v: number): number[] {
  const vm = state.vms[v]!;
  const size = vm.vcpus * vm.mipsPerVcpu;
  const h = vm.cpuHistoryMips;
  const n = Math.min(h.length, state.historyWindow);
  const out = new Array<number>(n);
  for (let k = 0; k < n; k++) out[k] = h[h.length - 1 - k]! / size;
  return out;
}

/**
 * Maximum correlation: the VM whose utilisation history is best explained (highest R² of an
 * OLS regression with intercept) by the other VMs' histories. As in CloudSim, only R² > 0 can
 * win (ties keep the first), and MMT decides when the regression is undefined (one VM, fewer
 * samples than regressors, singular matrix).
 */
export const mc: VmSelector = {
  name: 'mc',
  select: (s, h) => {
    const vms = migratableOn(s, h);
    if (vms.length === 0) return -1;
    if (vms.length === 1) return mmt.select(s, h);
    const rows = vms.map((v) => utilHistory(s, v));
    const m = Math.min(...rows.map((r) => r.length));
    const data = rows.map((r) => r.slice(0, m));
    let best = 0;
    let bestR2 = Number.MIN_VALUE;
    for (let i = 0; i < vms.length; i++) {
      const y = data[i]!;
      const X: number[][] = [];
      for (let t = 0; t < m; t++) {
        const row: number[] = [];
        for (let j = 0; j < vms.length; j++) if (j !== i) row.push(data[j]![t]!);
        X.push(row);
      }
      const r2 = olsRSquared(y, X);
      if (r2 === null) return mmt.select(s, h);
      if (r2 > bestR2) {
        bestR2 = r2;
        best = i;
      }
    }
    return vms[best]!;
  },
};
