/**
 * Placement as a pipeline of small pieces (after kube-scheduler's framework): hard filters say
 * whether VM v may go to host h, weighted scorers (each 0..100) rank the hosts that pass.
 * Spread versus pack is a choice of scorer, not a second code path.
 */
import type { ClusterState } from '../model/state.js';

/**
 * A hard constraint. `check` returns null when VM v may go to host h, or a stable rejection
 * code (e.g. 'insufficient-memory'); it is on the hot path, so it allocates nothing.
 * `explain` turns a code into a sentence with the numbers, only when someone asks why.
 */
export interface HostFilter {
  readonly name: string;
  /**
   * Expensive filters (e.g. a tentative move plus a detector run) are evaluated only for a
   * host that would otherwise win, unless the caller asks for a full explanation. The chosen
   * host is the same either way: the best-scoring host that passes every filter.
   */
  readonly expensive?: boolean;
  check(state: ClusterState, v: number, h: number): string | null;
  explain(state: ClusterState, v: number, h: number, code: string): string;
}

/** A preference: 0 (worst) .. 100 (best) for putting VM v on host h. */
export interface HostScorer {
  readonly name: string;
  score(state: ClusterState, v: number, h: number): number;
}

export interface WeightedScorer {
  readonly scorer: HostScorer;
  readonly weight: number;
}

export interface Placer {
  readonly filters: readonly HostFilter[];
  readonly scorers: readonly WeightedScorer[];
}

interface PreparedPlacer extends Placer {
  readonly cheap: readonly HostFilter[];
  readonly costly: readonly HostFilter[];
  readonly totalWeight: number;
}

const prepared = new WeakMap<Placer, PreparedPlacer>();

function prepare(p: Placer): PreparedPlacer {
  let pp = prepared.get(p);
  if (!pp) {
    let totalWeight = 0;
    for (const s of p.scorers) totalWeight += s.weight;
    pp = { ...p, cheap: p.filters.filter((f) => !f.expensive), costly: p.filters.filter((f) => f.expensive), totalWeight };
    prepared.set(p, pp);
  }
  return pp;
}

/** Why one host was not chosen: a value, not an exception (principle 4). */
export interface Rejection {
  readonly host: string;
  readonly code: string;
  readonly reason: string;
  /** The filter that rejected it. */
  readonly by: string;
}

export interface PlaceResult {
  /** Chosen host index, or -1. */
  readonly host: number;
  readonly score: number;
  /** Every rejection, when asked to explain (otherwise empty). */
  readonly rejections: readonly Rejection[];
}

/** The (frozen, shared) empty rejection list of a search without explain. */
const NO_REJECTIONS: readonly Rejection[] = Object.freeze([]);

/**
 * Runs the filters and scorers of `placer` for VM v over `candidates` (host indices, any
 * order) and returns the best-scoring host that passes every filter; ties go to the lowest
 * host index. With `explain`, it also returns why every other candidate was rejected.
 */
export function findHost(
  state: ClusterState,
  placer: Placer,
  v: number,
  candidates: Iterable<number>,
  explain = false,
  /**
   * Stop after this many hosts passed every filter (kube-scheduler's "feasible nodes to
   * find"): on huge clusters, give candidates best-first and a bound; default: all.
   */
  maxFeasible = Infinity,
): PlaceResult {
  const { scorers, cheap, costly, totalWeight } = prepare(placer);
  let best = -1;
  let bestScore = -Infinity;
  // (without explain: no array and no closure per call — consolidation calls this 100,000s
  // of times per pass)
  const rejections: Rejection[] | null = explain ? [] : null;
  const nCheap = cheap.length;
  const nScorers = scorers.length;
  let feasible = 0;
  hosts: for (const h of candidates) {
    if (feasible >= maxFeasible && !explain) break;
    for (let i = 0; i < nCheap; i++) {
      const f = cheap[i]!;
      const code = f.check(state, v, h);
      if (code !== null) {
        if (rejections) rejections.push({ host: state.hosts[h]!.id, code, reason: f.explain(state, v, h, code), by: f.name });
        continue hosts;
      }
    }
    let score = 0;
    if (totalWeight > 0) {
      for (let i = 0; i < nScorers; i++) {
        const s = scorers[i]!;
        score += s.weight * s.scorer.score(state, v, h);
      }
      score /= totalWeight;
    }
    const better = score > bestScore || (score === bestScore && h < best);
    // A host that cannot beat the best needs no costly check.
    if (!better && !explain) {
      if (costly.length === 0) feasible++;
      continue;
    }
    for (const f of costly) {
      const code = f.check(state, v, h);
      if (code !== null) {
        if (rejections) rejections.push({ host: state.hosts[h]!.id, code, reason: f.explain(state, v, h, code), by: f.name });
        continue hosts;
      }
    }
    feasible++;
    if (better) {
      bestScore = score;
      best = h;
    }
  }
  return { host: best, score: best >= 0 ? bestScore : NaN, rejections: rejections ?? NO_REJECTIONS };
}

/**
 * A placement search for one placer: `search(state, v, candidates, maxFeasible)` is
 * `findHost(state, placer, v, candidates, false, maxFeasible).host` — same filters in the same
 * order, same scores summed in the same order, same tie-break — but each filter and scorer is
 * called from a call site of its own instead of through one loop over the lists. At 10,000
 * hosts consolidation runs ~900,000 filter-and-score visits per pass, and the generic loop's
 * calls (one site for every filter of every placer) cost more than the checks themselves.
 */
export type HostSearch = (state: ClusterState, v: number, candidates: Iterable<number>, maxFeasible?: number) => number;

const PASS: HostFilter = { name: 'pass', check: () => null, explain: () => '' };
const ZERO: HostScorer = { name: 'zero', score: () => 0 };

/**
 * The search of `placer` (see HostSearch), or null when it does not fit the unrolled form:
 * an expensive filter, more than 8 filters or more than 3 scorers (use findHost then).
 */
export function compileSearch(placer: Placer): HostSearch | null {
  const { cheap, costly, scorers, totalWeight } = prepare(placer);
  if (costly.length > 0 || cheap.length > 8 || scorers.length > 3) return null;
  const [f0 = PASS, f1 = PASS, f2 = PASS, f3 = PASS, f4 = PASS, f5 = PASS, f6 = PASS, f7 = PASS] = cheap;
  const n = scorers.length;
  const s0 = scorers[0]?.scorer ?? ZERO;
  const s1 = scorers[1]?.scorer ?? ZERO;
  const s2 = scorers[2]?.scorer ?? ZERO;
  const w0 = scorers[0]?.weight ?? 0;
  const w1 = scorers[1]?.weight ?? 0;
  const w2 = scorers[2]?.weight ?? 0;
  return (state, v, candidates, maxFeasible = Infinity) => {
    let best = -1;
    let bestScore = -Infinity;
    let feasible = 0;
    for (const h of candidates) {
      if (feasible >= maxFeasible) break;
      if (f0.check(state, v, h) !== null || f1.check(state, v, h) !== null || f2.check(state, v, h) !== null || f3.check(state, v, h) !== null
        || f4.check(state, v, h) !== null || f5.check(state, v, h) !== null || f6.check(state, v, h) !== null || f7.check(state, v, h) !== null) continue;
      // (as findHost: the weighted scores added one by one from 0, in scorer order, then divided)
      let score = 0;
      if (totalWeight > 0) {
        if (n > 0) score += w0 * s0.score(state, v, h);
        if (n > 1) score += w1 * s1.score(state, v, h);
        if (n > 2) score += w2 * s2.score(state, v, h);
        score /= totalWeight;
      }
      feasible++;
      if (score > bestScore || (score === bestScore && h < best)) {
        bestScore = score;
        best = h;
      }
    }
    return best;
  };
}

/** Host indices 0..n-1 (the default candidate order: lowest index wins ties). */
export function allHosts(state: ClusterState): number[] {
  return Array.from({ length: state.hosts.length }, (_, i) => i);
}

/** Counts rejections by code: a compact "why not" for plans with thousands of hosts. */
export function summariseRejections(rejections: readonly Rejection[], examplesPerCode = 3): RejectionSummary[] {
  const byCode = new Map<string, { code: string; by: string; hosts: number; examples: Rejection[] }>();
  for (const r of rejections) {
    let s = byCode.get(r.code);
    if (!s) byCode.set(r.code, (s = { code: r.code, by: r.by, hosts: 0, examples: [] }));
    s.hosts++;
    if (s.examples.length < examplesPerCode) s.examples.push(r);
  }
  return [...byCode.values()].sort((a, b) => b.hosts - a.hosts);
}

export interface RejectionSummary {
  readonly code: string;
  readonly by: string;
  /** How many hosts were rejected for this reason. */
  readonly hosts: number;
  readonly examples: readonly Rejection[];
}
