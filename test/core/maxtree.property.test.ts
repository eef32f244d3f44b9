/**
 * MaxTree (src/core/util/maxtree.ts) against a linear scan: after any sequence of builds and
 * point updates, firstAtLeast(from, x) is the first position ≥ from whose value is ≥ x. The
 * consolidation scan of the tide strategy skips receivers with it, so a wrong answer would
 * silently change which host a VM goes to.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MaxTree, MultiMaxTree } from '../../src/core/util/maxtree.js';

const value = fc.oneof(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.integer({ min: -5, max: 5 }).map((x) => x * 1000), fc.constant(-Infinity), fc.constant(Number.NaN));

/** The contract: NaN values always reach, a NaN threshold is reached everywhere. */
function naive(a: readonly number[], from: number, x: number): number {
  for (let i = Math.max(0, from); i < a.length; i++) if (a[i]! >= x || Number.isNaN(a[i]!) || Number.isNaN(x)) return i;
  return -1;
}

describe('MaxTree', () => {
  it('firstAtLeast equals a linear scan after builds and updates', () => {
    fc.assert(fc.property(
      fc.array(value, { maxLength: 70 }),
      fc.array(fc.tuple(fc.nat(80), value), { maxLength: 40 }),
      fc.array(fc.tuple(fc.integer({ min: -2, max: 80 }), value), { minLength: 1, maxLength: 40 }),
      (init, updates, queries) => {
        const a = [...init];
        const t = new MaxTree(a.length);
        t.build(a);
        for (const [i, x] of updates) {
          if (a.length === 0) break;
          const at = i % a.length;
          a[at] = x;
          t.set(at, x);
          expect(t.get(at)).toBe(Number.isNaN(x) ? Infinity : x);
        }
        for (const [from, x] of queries) expect(t.firstAtLeast(from, x)).toBe(naive(a, from, x));
        // every threshold that occurs, from every position
        for (let from = 0; from < a.length; from++) for (const x of a) expect(t.firstAtLeast(from, x)).toBe(naive(a, from, x));
      },
    ), { numRuns: 300 });
  });

  it('an empty tree and positions past the end find nothing', () => {
    const t = new MaxTree(0);
    t.build([]);
    expect(t.firstAtLeast(0, -Infinity)).toBe(-1);
    const u = new MaxTree(3);
    u.build([1, 2, 3]);
    expect(u.firstAtLeast(3, 0)).toBe(-1);
    expect(u.firstAtLeast(0, 2.5)).toBe(2);
    expect(u.firstAtLeast(0, 4)).toBe(-1);
  });
});

/** The contract of MultiMaxTree: every key reaches its threshold (NaN rules as above). */
function naiveMulti(cols: readonly (readonly number[])[], n: number, from: number, xs: readonly number[]): number {
  for (let i = Math.max(0, from); i < n; i++) if (cols.every((c, k) => c[i]! >= xs[k]! || Number.isNaN(c[i]!) || Number.isNaN(xs[k]!))) return i;
  return -1;
}

describe('MultiMaxTree', () => {
  it('firstAtLeast equals a linear scan over all keys after builds and updates', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.nat(40),
      fc.array(value, { minLength: 3 * 40, maxLength: 3 * 40 }),
      fc.array(fc.tuple(fc.nat(80), fc.nat(2), value), { maxLength: 40 }),
      fc.array(fc.tuple(fc.integer({ min: -2, max: 80 }), fc.array(value, { minLength: 3, maxLength: 3 })), { minLength: 1, maxLength: 40 }),
      (keys, n, pool, updates, queries) => {
        const cols = Array.from({ length: keys }, (_, k) => pool.slice(k * 40, k * 40 + n));
        const t = new MultiMaxTree(n, keys);
        cols.forEach((c, k) => t.build(k, c));
        for (const [i, k0, x] of updates) {
          if (n === 0) break;
          const at = i % n;
          const k = k0 % keys;
          cols[k]![at] = x;
          t.set(at, k, x);
          expect(t.get(at, k)).toBe(Number.isNaN(x) ? Infinity : x);
        }
        for (const [from, xs] of queries) expect(t.firstAtLeast(from, xs)).toBe(naiveMulti(cols, n, from, xs));
        // thresholds taken from the values, so that some positions qualify
        for (let from = 0; from < n; from++) {
          for (let j = 0; j < n; j++) {
            const xs = cols.map((c) => c[j]!);
            expect(t.firstAtLeast(from, xs)).toBe(naiveMulti(cols, n, from, xs));
          }
        }
      },
    ), { numRuns: 200 });
  });
});
