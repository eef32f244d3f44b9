import { describe, expect, it } from 'vitest';
import { HP_ML110_G4, HP_ML110_G5, linearPower, powerAt } from '../../src/core/model/power.js';
import { iqr, mad, median, olsRSquared, percentileSorted, simpleRegression } from '../../src/core/util/stats.js';
import { seededRng } from '../../src/core/util/rng.js';

describe('powerAt (SPECpower table, CloudSim interpolation)', () => {
  it('returns table points at multiples of 10 %', () => {
    expect(powerAt(HP_ML110_G4, 0)).toBe(86);
    expect(powerAt(HP_ML110_G5, 1)).toBe(135);
    expect(powerAt(HP_ML110_G4, 0.5)).toBe(102);
  });
  it('interpolates linearly between points', () => {
    // 55 % on G4: halfway between 102 (50 %) and 106 (60 %).
    expect(powerAt(HP_ML110_G4, 0.55)).toBeCloseTo(104, 10);
    // 25 % on G5: halfway between 101 (20 %) and 105 (30 %).
    expect(powerAt(HP_ML110_G5, 0.25)).toBeCloseTo(103, 10);
  });
  it('clamps (1, 1.01) to 1 and rejects anything else outside [0, 1]', () => {
    expect(powerAt(HP_ML110_G4, 1.005)).toBe(117);
    expect(() => powerAt(HP_ML110_G4, 1.2)).toThrow(RangeError);
    expect(() => powerAt(HP_ML110_G4, -0.1)).toThrow(RangeError);
  });
  it('builds linear models from idle and max', () => {
    const p = linearPower(100, 200);
    expect(p.wattsAtLoad).toHaveLength(11);
    expect(powerAt(p, 0.37)).toBeCloseTo(137, 10);
  });
});

describe('statistics (CloudSim / commons-math semantics)', () => {
  it('median averages the two middle values for even n', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
  it('percentile uses the legacy p(n+1) position', () => {
    expect(percentileSorted([1, 2, 3, 4], 25)).toBeCloseTo(1.25, 12);
    expect(percentileSorted([1, 2, 3, 4], 1)).toBe(1);
    expect(percentileSorted([1, 2, 3, 4], 99)).toBe(4);
  });
  it('IQR picks order statistics without interpolation', () => {
    // n = 8: Q1 = sorted[round(2.25) - 1] = 2, Q3 = sorted[round(6.75) - 1] = 7.
    expect(iqr([8, 7, 6, 5, 4, 3, 2, 1])).toBe(5);
  });
  it('MAD has no consistency factor', () => {
    expect(mad([1, 2, 3, 4, 100])).toBe(1);
  });
  it('simple regression recovers a line', () => {
    const [a, b] = simpleRegression([1, 2, 3, 4], [3, 5, 7, 9]);
    expect(a).toBeCloseTo(1, 12);
    expect(b).toBeCloseTo(2, 12);
  });
  it('OLS R² is 1 for an exact linear relation and null when undefined', () => {
    const rng = seededRng(3);
    const X = Array.from({ length: 8 }, () => [rng.next(), rng.next()]);
    const y = X.map(([x1, x2]) => 1 + 2 * x1! - 3 * x2!);
    expect(olsRSquared(y, X)).toBeCloseTo(1, 9);
    const noise = X.map(() => rng.next());
    expect(olsRSquared(noise, X)!).toBeLessThan(0.99);
    // More parameters (3) than observations (2).
    expect(olsRSquared([1, 2], [[1, 2], [3, 4]])).toBeNull();
    // A zero column next to the intercept: singular.
    expect(olsRSquared([1, 2, 3, 5], [[0], [0], [0], [0]])).toBeNull();
  });
  it('the seeded RNG is reproducible and uniform-ish', () => {
    const a = seededRng(42);
    const b = seededRng(42);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.next()));
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(m).toBeGreaterThan(0.45);
    expect(m).toBeLessThan(0.55);
  });
});
