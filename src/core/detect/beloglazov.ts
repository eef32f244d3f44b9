/**
 * The overload detectors of Beloglazov & Buyya (CCPE 2012), ported from CloudSim 3.0.3:
 * static threshold (THR), inter-quartile range (IQR), median absolute deviation (MAD), local
 * regression (LR) and robust local regression (LRR). IQR/MAD/LR fall back to THR 0.7 while the
 * host's utilisation history is too short, exactly as CloudSim does.
 */
import type { ClusterState } from '../model/state.js';
import { iqr, mad, simpleRegression } from '../util/stats.js';
import type { Assessment, OverloadDetector } from './detector.js';

/** Overloaded iff Σ requested MIPS / host MIPS > threshold. */
export function thr(threshold: number): OverloadDetector {
  const by = `thr(${threshold})`;
  return {
    name: by,
    isOverloaded: (s, h) => s.requestedUtil(h) > threshold,
    assess: (s, h) => {
      const value = s.requestedUtil(h);
      return { overloaded: value > threshold, value, threshold, by };
    },
  };
}

const FALLBACK = thr(0.7);

function withFallback(name: string, base: Assessment | null, s: ClusterState, h: number): Assessment {
  if (base) return base;
  const fb = FALLBACK.assess(s, h);
  return { ...fb, by: `${name}→${fb.by}` };
}

/**
 * Adaptive upper threshold 1 − s·dispersion(history), compared with the requested utilisation;
 * needs ≥ 12 history entries (after trimming the zero tail), else THR 0.7.
 */
function dispersion(name: string, safety: number, spread: (history: number[]) => number): OverloadDetector {
  const assess = (s: ClusterState, h: number): Assessment => {
    const history = s.hostHistory(h);
    if (history.length < 12) return withFallback(name, null, s, h);
    const threshold = 1 - safety * spread(history);
    const value = s.requestedUtil(h);
    return { overloaded: value > threshold, value, threshold, by: name };
  };
  return { name, assess, isOverloaded: (s, h) => assess(s, h).overloaded };
}

export const iqrDetector = (safety: number): OverloadDetector => dispersion(`iqr(${safety})`, safety, iqr);
export const madDetector = (safety: number): OverloadDetector => dispersion(`mad(${safety})`, safety, mad);

/** Length of the regression window (CloudSim: 10, "responsive enough to latest values"). */
const LR_WINDOW = 10;

/**
 * Longest migration time among the host's VMs, s: memory ÷ half the host's network bandwidth
 * (the other half is left to the VMs' own traffic), as in CloudSim's LR policy.
 */
export function maxMigrationSec(s: ClusterState, h: number): number {
  const bw = s.hosts[h]!.netBytesPerSec / 2;
  let max = 0;
  for (const v of s.vmsOn(h)) max = Math.max(max, (s.vms[v]!.memMiB * 1048576) / bw);
  return max;
}

/**
 * Local regression: a line fitted to the last 10 utilisation samples (x = 1..10, oldest
 * first) predicts the utilisation one migration later (x = 10 + ⌈Tmig/interval⌉); overloaded
 * iff safety × prediction ≥ 1. CloudSim's "robust" variant computes the same OLS line (its
 * weights are never applied: docs/simulator.md, CloudSim's quirks), so LRR shares this implementation.
 */
export function lrDetector(safety: number, robust = false): OverloadDetector {
  const name = `${robust ? 'lrr' : 'lr'}(${safety})`;
  const xs = Array.from({ length: LR_WINDOW }, (_, i) => i + 1);
  const assess = (s: ClusterState, h: number): Assessment => {
    const history = s.hostHistory(h);
    if (history.length < LR_WINDOW) return withFallback(name, null, s, h);
    const ys = new Array<number>(LR_WINDOW);
    for (let i = 0; i < LR_WINDOW; i++) ys[i] = history[LR_WINDOW - i - 1]!;
    const [a, b] = simpleRegression(xs, ys);
    if (Number.isNaN(a) || Number.isNaN(b)) return withFallback(name, null, s, h);
    const intervals = Math.ceil(maxMigrationSec(s, h) / s.sampleIntervalSec);
    const value = safety * (a + b * (LR_WINDOW + intervals));
    return { overloaded: value >= 1, value, threshold: 1, by: name };
  };
  return { name, assess, isOverloaded: (s, h) => assess(s, h).overloaded };
}
