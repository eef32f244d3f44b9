/**
 * The allocation-free pieces of the planner's fourth speed pass (issue 9, point 4), against
 * the plain code they replace: a wrong answer would silently change a plan.
 * - MultiMaxTree.buildAll (one pass over interleaved values) builds the tree that one build per
 *   key builds, also when reused for fewer positions.
 * - TreeScan (src/core/util/maxtree.ts) yields exactly list[i] for the positions a linear scan
 *   over all keys finds, from `from` on, less `skip`, and can be reset mid-iteration.
 * - ClusterState.move / rollback (src/core/model/state.ts) keep host lists in the order the
 *   splice-based lists had: moves append, rollback puts each VM back at its old position.
 * - compileSearch (src/core/place/placement.ts), the unrolled search consolidation uses, picks
 *   the host findHost picks, for any filters, scorers, weights, candidates and bound.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClusterState } from '../../src/core/model/state.js';
import { compileSearch, findHost, type HostFilter, type HostScorer, type Placer } from '../../src/core/place/placement.js';
import { MultiMaxTree, TreeScan } from '../../src/core/util/maxtree.js';
import { cluster, host, vm } from '../helpers/cluster.js';

const value = fc.oneof(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.integer({ min: -3, max: 3 }).map((x) => x * 1000), fc.constant(-Infinity), fc.constant(Number.NaN));

/** Positions ≥ from where every key reaches its threshold (NaN: always), as list values less skip. */
function naive(cols: readonly (readonly number[])[], list: readonly number[], from: number, xs: readonly number[], skip: number): number[] {
  const out: number[] = [];
  for (let i = Math.max(0, from); i < list.length; i++) {
    if (!cols.every((c, k) => c[i]! >= xs[k]! || Number.isNaN(c[i]!) || Number.isNaN(xs[k]!))) continue;
    if (list[i] !== skip) out.push(list[i]!);
  }
  return out;
}

describe('MultiMaxTree.buildAll', () => {
  it('answers as one build per key, after a longer build and after updates', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 0, max: 30 }),
      fc.integer({ min: 0, max: 30 }),
      fc.array(value, { minLength: 3 * 30, maxLength: 3 * 30 }),
      fc.array(fc.tuple(fc.integer({ min: -1, max: 31 }), fc.array(value, { minLength: 3, maxLength: 3 })), { minLength: 1, maxLength: 20 }),
      (keys, n0, n, pool, queries) => {
        const cap = Math.max(n0, n);
        const a = new MultiMaxTree(cap, keys);
        const b = new MultiMaxTree(cap, keys);
        // first a longer (or shorter) tree, then n positions: leftovers must not count
        a.setLength(n0);
        a.buildAll(pool.slice(0, n0 * keys));
        a.setLength(n);
        b.setLength(n);
        a.buildAll(pool.slice(0, n * keys));
        for (let k = 0; k < keys; k++) b.build(k, Array.from({ length: n }, (_, i) => pool[i * keys + k]!));
        for (let i = 0; i < n; i++) for (let k = 0; k < keys; k++) expect(a.get(i, k)).toBe(b.get(i, k));
        for (const [from, xs] of queries) expect(a.firstAtLeast(from, xs.slice(0, keys))).toBe(b.firstAtLeast(from, xs.slice(0, keys)));
        if (n > 0) {
          a.set(n - 1, 0, 5e6);
          b.set(n - 1, 0, 5e6);
          for (const [from, xs] of queries) expect(a.firstAtLeast(from, xs.slice(0, keys))).toBe(b.firstAtLeast(from, xs.slice(0, keys)));
        }
        // and once more, shorter, from the reversed pool: against a fresh tree
        const m = Math.floor(n / 2);
        const rev = [...pool].reverse();
        a.setLength(m);
        a.buildAll(rev.slice(0, m * keys));
        const c = new MultiMaxTree(m, keys);
        for (let k = 0; k < keys; k++) c.build(k, Array.from({ length: m }, (_, i) => rev[i * keys + k]!));
        for (const [from, xs] of queries) expect(a.firstAtLeast(from, xs.slice(0, keys))).toBe(c.firstAtLeast(from, xs.slice(0, keys)));
        for (let from = 0; from < m; from++) for (let i = 0; i < m; i++) expect(a.firstAtLeast(from, rev.slice(i * keys, i * keys + keys))).toBe(c.firstAtLeast(from, rev.slice(i * keys, i * keys + keys)));
      },
    ), { numRuns: 300 });
  });
});

describe('TreeScan', () => {
  it('yields what a linear scan yields, and a reset starts over', () => {
    fc.assert(fc.property(
      fc.nat(40),
      fc.array(value, { minLength: 3 * 40, maxLength: 3 * 40 }),
      fc.array(fc.tuple(fc.integer({ min: -2, max: 45 }), fc.array(value, { minLength: 3, maxLength: 3 }), fc.integer({ min: -1, max: 45 }), fc.nat(5)), { minLength: 1, maxLength: 20 }),
      (n, pool, queries) => {
        const cols = Array.from({ length: 3 }, (_, k) => pool.slice(k * 40, k * 40 + n));
        // list values: host-like indices in some order (here: reversed positions + 100)
        const list = Array.from({ length: n }, (_, i) => 100 + n - i);
        const t = new MultiMaxTree(n, 3);
        cols.forEach((c, k) => t.build(k, c));
        const scan = new TreeScan(3);
        for (const [from, xs, skipAt, partial] of queries) {
          const skip = skipAt >= 0 && skipAt < n ? list[skipAt]! : -1;
          const want = naive(cols, list, from, xs, skip);
          // a partial iteration first, then a reset: the reset must not carry anything over
          scan.need.set(xs);
          const it = scan.reset(t, list, from, skip)[Symbol.iterator]();
          for (let k = 0; k < partial; k++) it.next();
          scan.need.set(xs);
          expect([...scan.reset(t, list, from, skip)]).toEqual(want);
          // exhausted: stays done
          expect(scan.next().done).toBe(true);
        }
      },
    ), { numRuns: 300 });
  });
});

describe('ClusterState lists without splice', () => {
  it('move and rollback leave every host list as the splice-based reference does', () => {
    fc.assert(fc.property(
      fc.array(fc.nat(3), { minLength: 1, maxLength: 12 }),
      fc.array(fc.oneof(fc.tuple(fc.constant('move' as const), fc.nat(11), fc.integer({ min: -1, max: 3 })), fc.tuple(fc.constant('mark' as const), fc.constant(0), fc.constant(0)), fc.tuple(fc.constant('rollback' as const), fc.constant(0), fc.constant(0))), { maxLength: 60 }),
      (placement, ops) => {
        const hosts = Array.from({ length: 4 }, (_, h) => host(`h${h}`));
        const vms = placement.map((h, v) => vm(`v${v}`, `h${h}`, { history: [10 + v], memMiB: 100 + v }));
        const s = new ClusterState(cluster(hosts, vms), { historyWindow: 1 });
        // reference: plain lists with splice, and a journal of (vm, from, fromPos, to)
        const ref: number[][] = [[], [], [], []];
        placement.forEach((h, v) => ref[h]!.push(v));
        const where = [...placement];
        const journal: { v: number; from: number; pos: number; to: number }[] = [];
        const marks: { state: ReturnType<ClusterState['mark']>; len: number }[] = [];
        for (const [op, a, b] of ops) {
          if (op === 'move') {
            const v = a % placement.length;
            const from = where[v]!;
            if (from === b) continue;
            let pos = -1;
            if (from >= 0) {
              pos = ref[from]!.lastIndexOf(v);
              ref[from]!.splice(pos, 1);
            }
            if (b >= 0) ref[b]!.push(v);
            where[v] = b;
            journal.push({ v, from, pos, to: b });
            s.move(v, b);
          } else if (op === 'mark') {
            marks.push({ state: s.mark(), len: journal.length });
          } else if (marks.length > 0) {
            const m = marks.pop()!;
            while (journal.length > m.len) {
              const j = journal.pop()!;
              if (j.to >= 0) ref[j.to]!.splice(ref[j.to]!.lastIndexOf(j.v), 1);
              if (j.from >= 0) ref[j.from]!.splice(j.pos, 0, j.v);
              where[j.v] = j.from;
            }
            s.rollback(m.state);
          }
          for (let h = 0; h < 4; h++) expect([...s.vmsOn(h)]).toEqual(ref[h]);
        }
      },
    ), { numRuns: 300 });
  });
});

describe('compileSearch', () => {
  it('chooses the host findHost chooses', () => {
    const nh = 12;
    const s = new ClusterState(cluster(Array.from({ length: nh }, (_, h) => host(`h${h}`)), [vm('v', 'h0')]), { historyWindow: 1 });
    const score = fc.oneof(fc.double({ min: 0, max: 100, noNaN: true }), fc.integer({ min: 0, max: 4 }).map((x) => x * 25), fc.constant(Number.NaN));
    fc.assert(fc.property(
      // per filter: the hosts it rejects; per scorer: a weight and a score per host
      fc.array(fc.array(fc.boolean(), { minLength: nh, maxLength: nh }), { maxLength: 8 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.array(score, { minLength: nh, maxLength: nh })), { maxLength: 3 }),
      fc.array(fc.nat(nh - 1), { maxLength: 2 * nh }),
      fc.oneof(fc.constant(Infinity), fc.integer({ min: 0, max: 5 })),
      (rejects, scores, candidates, bound) => {
        const filters: HostFilter[] = rejects.map((r, i) => ({ name: `f${i}`, check: (_s, _v, h) => (r[h] ? `no-${i}` : null), explain: () => '' }));
        const scorers = scores.map(([weight, t], i) => ({ weight, scorer: { name: `s${i}`, score: (_s, _v, h) => t[h]! } satisfies HostScorer }));
        const placer: Placer = { filters, scorers };
        const search = compileSearch(placer)!;
        expect(search).not.toBeNull();
        expect(search(s, 0, candidates, bound)).toBe(findHost(s, placer, 0, candidates, false, bound).host);
        // also through an iterable that is not an array
        expect(search(s, 0, new Set(candidates), bound)).toBe(findHost(s, placer, 0, new Set(candidates), false, bound).host);
      },
    ), { numRuns: 500 });
  });

  it('declines placers it does not unroll (an expensive filter, too many filters or scorers)', () => {
    const f: HostFilter = { name: 'f', check: () => null, explain: () => '' };
    const sc = { weight: 1, scorer: { name: 's', score: () => 1 } };
    expect(compileSearch({ filters: [{ ...f, expensive: true }], scorers: [] })).toBeNull();
    expect(compileSearch({ filters: Array.from({ length: 9 }, () => f), scorers: [] })).toBeNull();
    expect(compileSearch({ filters: [f], scorers: [sc, sc, sc, sc] })).toBeNull();
  });
});
