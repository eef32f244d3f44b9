import { describe, expect, it } from 'vitest';
import { iqrDetector, lrDetector, madDetector, thr } from '../../src/core/detect/beloglazov.js';
import { ClusterState } from '../../src/core/model/state.js';
import { mc, mmt, mu, rs } from '../../src/core/select/beloglazov.js';
import { seededRng } from '../../src/core/util/rng.js';
import { cluster, host, vm } from '../helpers/cluster.js';

/** One 2000-MIPS host with the given VMs. */
const one = (...vms: ReturnType<typeof vm>[]): ClusterState => new ClusterState(cluster([host('h')], vms), { historyWindow: 30 });

describe('THR', () => {
  it('fires strictly above the threshold on requested utilisation', () => {
    const s = one(vm('a', 'h', { cpu: 900 }), vm('b', 'h', { cpu: 800 }));
    expect(thr(0.8).isOverloaded(s, 0)).toBe(true); // 0.85 > 0.8
    expect(thr(0.85).isOverloaded(s, 0)).toBe(false); // not strictly above
    expect(thr(0.8).assess(s, 0)).toMatchObject({ value: 0.85, threshold: 0.8, by: 'thr(0.8)' });
  });
});

// Host utilisation history (newest first): 0.75, then 6 × 0.4, then 5 × 0.2 (12 entries).
const history12 = [400, 400, 400, 400, 400, 800, 800, 800, 800, 800, 800, 1500];

describe('IQR and MAD (adaptive thresholds, THR 0.7 fallback below 12 samples)', () => {
  it('IQR: 1 − s·IQR with CloudSim quartiles', () => {
    const s = one(vm('a', 'h', { history: history12 }));
    // Sorted: 5 × 0.2, 6 × 0.4, 0.75 → Q1 = 0.2, Q3 = 0.4, IQR = 0.2.
    expect(iqrDetector(1).assess(s, 0)).toMatchObject({ overloaded: false, threshold: 0.8, by: 'iqr(1)' }); // 0.75 ≤ 0.8
    expect(iqrDetector(1.5).assess(s, 0).threshold).toBeCloseTo(0.7, 12); // 0.75 > 0.7
    expect(iqrDetector(1.5).isOverloaded(s, 0)).toBe(true);
  });
  it('MAD: median |x − median| = 0.1 here', () => {
    const s = one(vm('a', 'h', { history: history12 }));
    expect(madDetector(2.4).isOverloaded(s, 0)).toBe(false); // threshold 0.76
    expect(madDetector(2.6).isOverloaded(s, 0)).toBe(true); // threshold 0.74
  });
  it('falls back to THR 0.7 with 11 samples', () => {
    const s = one(vm('a', 'h', { history: history12.slice(1) }));
    const a = iqrDetector(1).assess(s, 0);
    expect(a).toMatchObject({ overloaded: true, threshold: 0.7, by: 'iqr(1)→thr(0.7)' });
    expect(madDetector(2.4).assess(s, 0).by).toBe('mad(2.4)→thr(0.7)');
  });
});

describe('LR', () => {
  // Utilisation rising 0.05 per sample: 0.05 … 0.50; the line predicts 0.55 one migration ahead.
  const rising = Array.from({ length: 10 }, (_, i) => (i + 1) * 100);
  it('predicts one migration ahead and scales by the safety parameter', () => {
    const s = one(vm('a', 'h', { history: rising }));
    expect(lrDetector(1.2).assess(s, 0).value).toBeCloseTo(0.66, 9);
    expect(lrDetector(1.2).isOverloaded(s, 0)).toBe(false);
    expect(lrDetector(2).isOverloaded(s, 0)).toBe(true); // 1.1 ≥ 1
  });
  it('falls back to THR 0.7 with fewer than 10 samples; LRR is the same line', () => {
    const s = one(vm('a', 'h', { history: rising.slice(1) }));
    expect(lrDetector(2).assess(s, 0).by).toBe('lr(2)→thr(0.7)');
    const full = one(vm('a', 'h', { history: rising }));
    expect(lrDetector(1.2, true).assess(full, 0).value).toBe(lrDetector(1.2).assess(full, 0).value);
  });
});

describe('VM selection', () => {
  const s = one(
    vm('big', 'h', { memMiB: 2048, cpu: 100 }),
    vm('small1', 'h', { memMiB: 512, cpu: 400, mipsPerVcpu: 1000 }),
    vm('small2', 'h', { memMiB: 512, cpu: 50, mipsPerVcpu: 500 }),
    vm('pinned', 'h', { memMiB: 256, cpu: 10, migratable: false }),
  );
  const id = (v: number): string => s.vms[v]!.id;
  it('MMT: least memory among migratable VMs, first on ties', () => {
    expect(id(mmt.select(s, 0))).toBe('small1');
  });
  it('MU: lowest utilisation relative to size', () => {
    // big 100/1000 = 0.1, small1 0.4, small2 50/500 = 0.1: tie → first (big).
    expect(id(mu.select(s, 0))).toBe('big');
  });
  it('RS: seeded, reproducible, never a VM that may not move', () => {
    const picks = (seed: number): string[] => {
      const sel = rs(seededRng(seed));
      return Array.from({ length: 20 }, () => id(sel.select(s, 0)));
    };
    expect(picks(5)).toEqual(picks(5));
    expect(new Set(picks(5)).size).toBeGreaterThan(1);
    expect(picks(5)).not.toContain('pinned');
  });
  it('returns -1 when nothing may move', () => {
    const t = one(vm('p', 'h', { migratable: false }));
    expect(mmt.select(t, 0)).toBe(-1);
    expect(mc.select(t, 0)).toBe(-1);
  });
});

describe('MC (maximum correlation)', () => {
  const rng = seededRng(11);
  const noise = (): number[] => Array.from({ length: 12 }, () => Math.round(rng.next() * 900) + 50);
  const a = noise();
  const b = noise();
  const twiceA = a.map((x) => 2 * x);
  it('picks the first VM whose history the others explain exactly (R² = 1)', () => {
    const s1 = one(vm('b', 'h', { history: b, mipsPerVcpu: 2000 }), vm('c', 'h', { history: twiceA, mipsPerVcpu: 2000 }), vm('a', 'h', { history: a, mipsPerVcpu: 2000 }));
    expect(s1.vms[mc.select(s1, 0)]!.id).toBe('c');
    const s2 = one(vm('a', 'h', { history: a, mipsPerVcpu: 2000 }), vm('b', 'h', { history: b, mipsPerVcpu: 2000 }), vm('c', 'h', { history: twiceA, mipsPerVcpu: 2000 }));
    expect(s2.vms[mc.select(s2, 0)]!.id).toBe('a');
  });
  it('falls back to MMT when the regression is undefined (a single VM)', () => {
    const s = one(vm('x', 'h', { history: a, memMiB: 900 }), vm('y', 'h', { history: b, memMiB: 100, migratable: false }));
    expect(s.vms[mc.select(s, 0)]!.id).toBe('x');
  });
});
