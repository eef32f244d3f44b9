/**
 * A max segment tree over positions 0..n-1: point updates and "first position at or after
 * `from` whose value is at least x", both O(log n). Used to skip, in one step, a run of
 * candidates that a filter is known to reject (src/core/strategies/tide.ts, consolidation).
 * Fail-safe for skipping: a NaN value counts as +∞ (always reached) and a NaN threshold is
 * reached by every position, so NaN never makes a position skipped.
 */
export class MaxTree {
  private readonly size: number;
  private readonly t: Float64Array;

  constructor(readonly n: number) {
    let size = 1;
    while (size < n) size *= 2;
    this.size = size;
    this.t = new Float64Array(2 * size).fill(-Infinity);
  }

  /** Sets every value at once (values.length ≤ n), O(n). */
  build(values: ArrayLike<number>): void {
    const { t, size } = this;
    t.fill(-Infinity);
    for (let i = 0; i < values.length; i++) t[size + i] = Number.isNaN(values[i]!) ? Infinity : values[i]!;
    for (let i = size - 1; i >= 1; i--) t[i] = Math.max(t[2 * i]!, t[2 * i + 1]!);
  }

  set(i: number, x: number): void {
    const t = this.t;
    let j = i + this.size;
    t[j] = Number.isNaN(x) ? Infinity : x;
    for (j >>= 1; j >= 1; j >>= 1) {
      const m = Math.max(t[2 * j]!, t[2 * j + 1]!);
      if (t[j] === m) break;
      t[j] = m;
    }
  }

  /** The stored value (a NaN was stored as +∞). */
  get(i: number): number {
    return this.t[i + this.size]!;
  }

  /** The first position ≥ from whose value is ≥ x (see NaN above), or -1. */
  firstAtLeast(from: number, x: number): number {
    if (from < 0) from = 0;
    if (from >= this.n) return -1;
    if (Number.isNaN(x)) return from;
    const t = this.t;
    let i = from + this.size;
    // climb to the leftmost subtree to the right of `from` (inclusive) whose max reaches x
    while (!(t[i]! >= x)) {
      while (i & 1) i >>= 1; // a right child: its parent's right part is done
      if (i === 0) return -1;
      i++;
    }
    // descend to its leftmost leaf that reaches x
    while (i < this.size) {
      i *= 2;
      if (!(t[i]! >= x)) i++;
    }
    const at = i - this.size;
    return at < this.n ? at : -1;
  }
}

/**
 * K max trees over the same positions, searched together: `firstAtLeast(from, xs)` is the first
 * position ≥ from where every key k reaches xs[k]. A subtree is skipped when one key's maximum
 * there is below its threshold (necessary for any position inside to qualify); leaves are
 * checked exactly, so the answer is that of a linear scan. Not O(log n) in the worst case
 * (keys may qualify in different subtrees), but a subtree that fails one key is never entered.
 * NaN contract as MaxTree: a NaN value counts as +∞, a NaN threshold is reached everywhere.
 * Used by the tide strategy's consolidation to skip receivers that a filter is known to
 * reject (CPU guard headroom, free memory, CPU demand headroom).
 */
export class MultiMaxTree {
  private readonly size: number;
  /** t[node * keys + k]: max of key k over the node's positions (node 1 = root). */
  private readonly t: Float64Array;

  /** Positions in use (≤ capacity); see setLength. */
  n: number;
  /**
   * Leaves at or past this position hold −∞ (never written since the tree was made, or reset
   * by buildAll), and so does every node above only such leaves: buildAll rebuilds only below.
   */
  private written: number;

  constructor(n: number, readonly keys: number) {
    this.n = n;
    let size = 1;
    while (size < n) size *= 2;
    this.size = size;
    this.t = new Float64Array(2 * size * keys).fill(-Infinity);
    this.written = 0;
  }

  /** How many positions the tree can hold without a new one. */
  get capacity(): number {
    return this.size;
  }

  /**
   * Reuses the tree for n ≤ capacity positions (no allocation); every key must then be built
   * again before a search.
   */
  setLength(n: number): void {
    if (n > this.size) throw new RangeError(`MultiMaxTree: ${n} positions > capacity ${this.size}`);
    this.n = n;
  }

  /** Sets every value of key k at once (values.length ≤ n), O(n). */
  build(k: number, values: ArrayLike<number>): void {
    const { t, size, keys: K } = this;
    this.written = size;
    for (let i = size; i < 2 * size; i++) t[i * K + k] = -Infinity;
    for (let i = 0; i < values.length; i++) t[(size + i) * K + k] = Number.isNaN(values[i]!) ? Infinity : values[i]!;
    for (let i = size - 1; i >= 1; i--) t[i * K + k] = Math.max(t[2 * i * K + k]!, t[(2 * i + 1) * K + k]!);
  }

  /**
   * Sets every value of every key at once, O(n·keys): `values[i * keys + k]` is key k at
   * position i (values.length ≤ n · keys). The same tree as `build(k, column k)` for each key,
   * in one pass over the nodes instead of one per key.
   */
  buildAll(values: ArrayLike<number>): void {
    const { t, size, keys: K } = this;
    const m = values.length;
    // Leaves [0, hi) are written (values, then −∞ up to the old `written`); the rest already
    // hold −∞, and so do the nodes above them alone. Level by level, nodes [a, b) are those
    // with a leaf below hi: only they are recomputed (the tree a full rebuild gives).
    const hi = Math.min(size, Math.max(Math.ceil(m / K), this.written));
    for (let j = 0; j < hi * K; j++) {
      const x = j < m ? values[j]! : -Infinity;
      t[size * K + j] = Number.isNaN(x) ? Infinity : x;
    }
    this.written = Math.min(size, Math.ceil(m / K));
    let a = size;
    let b = size + hi;
    while (a > 1) {
      a >>= 1;
      b = (b + 1) >> 1;
      for (let i = a; i < b; i++) {
        const o = i * K;
        const l = 2 * i * K;
        for (let k = 0; k < K; k++) t[o + k] = Math.max(t[l + k]!, t[l + K + k]!);
      }
    }
  }

  set(i: number, k: number, x: number): void {
    const { t, keys: K } = this;
    if (i >= this.written) this.written = i + 1;
    let j = i + this.size;
    t[j * K + k] = Number.isNaN(x) ? Infinity : x;
    for (j >>= 1; j >= 1; j >>= 1) {
      const m = Math.max(t[2 * j * K + k]!, t[(2 * j + 1) * K + k]!);
      if (t[j * K + k] === m) break;
      t[j * K + k] = m;
    }
  }

  /** The stored value of key k at position i (a NaN was stored as +∞). */
  get(i: number, k: number): number {
    return this.t[(i + this.size) * this.keys + k]!;
  }

  /** The first position ≥ from where every key k is ≥ xs[k] (see NaN above), or -1. */
  firstAtLeast(from: number, xs: ArrayLike<number>): number {
    if (from < 0) from = 0;
    if (from >= this.n) return -1;
    const { t, size, keys: K } = this;
    // Depth-first, left to right, over the subtrees right of `from` (inclusive): enter a node
    // whose maxima all reach (left child first), else go on to the next subtree to its right.
    let i = from + size;
    for (;;) {
      let reaches = true;
      const o = i * K;
      for (let k = 0; k < K; k++) {
        if (t[o + k]! < xs[k]!) {
          reaches = false;
          break;
        }
      }
      if (reaches) {
        if (i >= size) return i - size < this.n ? i - size : -1;
        i *= 2;
        continue;
      }
      while (i & 1) i >>= 1; // a right child: its parent's subtree is done
      if (i === 0) return -1;
      i++;
    }
  }
}

/**
 * A reusable iterable over `list[i]` for the positions i ≥ from, in increasing order, that
 * `tree.firstAtLeast(i, need)` reaches (every key k of position i ≥ need[k]), leaving out the
 * value `skip`: the same sequence as a generator over those positions, but one object reset
 * per search, so a search allocates nothing (consolidation runs 100,000s of them per pass).
 * One iteration at a time per object: `reset` starts a new one and ends the previous.
 */
export class TreeScan implements Iterable<number>, Iterator<number> {
  /** Thresholds per key, set by the caller before (or right after) reset. */
  readonly need: Float64Array;
  private tree: MultiMaxTree;
  private list: readonly number[] = [];
  private i = -1;
  private skip = -1;
  /** One result object, refilled: for-of reads it before asking for the next. */
  private readonly res: { value: number; done: boolean } = { value: -1, done: true };

  constructor(keys: number) {
    this.need = new Float64Array(keys);
    this.tree = new MultiMaxTree(0, keys);
  }

  /** Starts a scan of `list` (list[i] at tree position i) from position `from` (< 0: 0). */
  reset(tree: MultiMaxTree, list: readonly number[], from: number, skip = -1): this {
    this.tree = tree;
    this.list = list;
    this.i = from < 0 ? 0 : from;
    this.skip = skip;
    return this;
  }

  [Symbol.iterator](): Iterator<number> {
    return this;
  }

  next(): IteratorResult<number> {
    const res = this.res;
    const list = this.list;
    for (;;) {
      const i = this.i >= 0 && this.i < list.length ? this.tree.firstAtLeast(this.i, this.need) : -1;
      if (i < 0) {
        this.i = -1;
        res.done = true;
        return res as IteratorResult<number>;
      }
      this.i = i + 1;
      const h = list[i]!;
      if (h === this.skip) continue;
      res.value = h;
      res.done = false;
      return res as IteratorResult<number>;
    }
  }
}
