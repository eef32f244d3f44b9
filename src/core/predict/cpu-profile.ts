/**
 * A VM's demand profile in bounded, compact memory: what `ProfileLearner` (./profile.ts) learns
 * and `predictCpu` answers, for the CPU column only (a VM's forecast, `VmForecast`, has no
 * memory figures; the cluster's profile keeps them).
 *
 * Same model and the same buckets, rings and choices as ProfileLearner, so the same samples give
 * the same predictions except for the value encoding:
 *  - Values are kept in 16 bits (`encodeCpu`: 5-bit exponent, 11-bit mantissa, no sign, normal
 *    range 2^-8 … ≈ 8.4 · 10^6 MIPS): a kept value is within 2^-12 (0.0244 %) of the sample,
 *    or 2^-20 MIPS below 2^-8 MIPS. The rounding is monotone, so the mean and the quantile of a
 *    bucket are within the same bound (CPU_REL_ERROR, CPU_ABS_ERROR). A sample that the encoding
 *    cannot hold (negative, −0, ≥ 2^23 · 4095/4096 · 2) switches the profile to plain doubles
 *    (exact), once.
 *  - The "any day" time-of-day ring is not stored: ProfileLearner asks it only when the ring of
 *    the instant's kind of day (weekday/weekend) at that time of day never had a sample, and then
 *    every sample at that time of day was of the other kind, so the "any day" ring holds exactly
 *    the other kind's ring (same pushes, same capacity).
 *  - Once a week of history is known, a time-of-day ring is consulted only for a time-of-week
 *    bucket that never had a sample. So the storage of the ring of kind k at time of day d is
 *    freed once the span is ≥ 1 week, every time-of-week bucket of kind k at d has a sample and
 *    the other kind's ring at d exists (so the "any day" ring, i.e. this one, is never asked
 *    again): nothing consults it afterwards. With regular rounds this frees all time-of-day
 *    storage after the first week.
 *
 * Layout: buckets are grouped in chunks of consecutive buckets of one table (time of week; time
 * of day on weekdays; on weekends), 8 × 6 or 4 × 12 values with the recorder's defaults; a
 * chunk is allocated on its first sample in the profile's one typed array (see CpuProfile), so
 * a profile costs memory only for what it has seen: with the defaults about 0.5 KiB after one
 * round, 8.8 KiB once two weeks of rounds are learned (84 chunks of 104 B, a 288-B header).
 * Only for capacities 1..MAX_COMPACT_KEEP (the recorder falls back to ProfileLearner otherwise).
 */
import { DAY_SEC, WEEK_SEC, type BucketOf } from './profile.js';

/** Largest per-bucket capacity this storage supports (its per-bucket byte holds < 2 · cap). */
export const MAX_COMPACT_KEEP = 127;
/** Bound on |kept − sample| / sample for samples ≥ 2^-8 MIPS (and on the mean and quantile). */
export const CPU_REL_ERROR = 2 ** -12;
/** Bound on |kept − sample| below 2^-8 MIPS, MIPS. */
export const CPU_ABS_ERROR = 2 ** -20;

const MAX_CODE = 0xffff;
/** code → value, shared (65,536 doubles, 512 KiB once per process). */
let decodeTable: Float64Array | null = null;

function codeValue(code: number): number {
  const e = code >>> 11;
  const m = code & 2047;
  return e === 0 ? m * 2 ** -19 : (2048 + m) * 2 ** (e - 20);
}

function table(): Float64Array {
  if (decodeTable) return decodeTable;
  const t = new Float64Array(MAX_CODE + 1);
  for (let c = 0; c <= MAX_CODE; c++) t[c] = codeValue(c);
  return (decodeTable = t);
}

/** The value a 16-bit code stands for. */
export function decodeCpu(code: number): number {
  return table()[code]!;
}

/**
 * The 16-bit code nearest to `x` (ties away from zero), or −1 when x cannot be held (negative,
 * −0, not finite, or beyond the largest code). Monotone: x ≤ y ⇒ code(x) ≤ code(y).
 */
export function encodeCpu(x: number): number {
  if (!(x >= 0) || Object.is(x, -0) || !Number.isFinite(x)) return -1;
  if (x < 2 ** -8) return Math.round(x * 2 ** 19); // 0 … 2048 (2048 is the first normal code)
  let e = Math.floor(Math.log2(x)) + 9;
  // log2 may be off by one next to a power of two: x ∈ [2^(e−9), 2^(e−8)).
  if (2 ** (e - 9) > x) e--;
  else if (2 ** (e - 8) <= x) e++;
  const code = e * 2048 + Math.round(x * 2 ** (20 - e)) - 2048; // mantissa 2048 rolls into e + 1
  return code > MAX_CODE ? -1 : code;
}

type Values = Uint16Array | Float64Array;

/** One bucket's decoded samples while a prediction is computed (no allocation per bucket). */
const SCRATCH = new Float64Array(MAX_COMPACT_KEEP);

/** Values per chunk (a chunk holds ⌊CHUNK_VALUES / cap⌋ buckets of one table, at least one). */
const CHUNK_VALUES = 48;

/** The options of a CpuProfile and the layout they give (one object shared by a recorder's profiles). */
export interface CpuProfileOptions {
  readonly bucketSec: number;
  readonly quantile: number;
  readonly capWeekly: number;
  readonly capDaily: number;
}

class Layout {
  readonly nW: number;
  readonly nD: number;
  /** Buckets per chunk: time of week, time of day. */
  readonly bw: number;
  readonly bd: number;
  /** Chunks of the time-of-week table; of each time-of-day table (weekdays, then weekends). */
  readonly chunksW: number;
  readonly chunksD: number;
  readonly chunks: number;
  /** Words of a chunk holding its buckets' counts (one byte per bucket). */
  readonly countWords: number;
  readonly chunkLen: number;
  /** Header words: the chunk table, then one bit per time-of-day bucket "ever had a sample". */
  readonly header: number;
  constructor(readonly o: CpuProfileOptions) {
    this.nW = WEEK_SEC / o.bucketSec;
    this.nD = DAY_SEC / o.bucketSec;
    this.bw = Math.max(1, Math.floor(CHUNK_VALUES / o.capWeekly));
    this.bd = Math.max(1, Math.floor(CHUNK_VALUES / o.capDaily));
    this.chunksW = Math.ceil(this.nW / this.bw);
    this.chunksD = Math.ceil(this.nD / this.bd);
    this.chunks = this.chunksW + 2 * this.chunksD;
    this.countWords = Math.ceil(Math.max(this.bw, this.bd) / 2);
    this.chunkLen = this.countWords + Math.max(this.bw * o.capWeekly, this.bd * o.capDaily);
    this.header = this.chunks + Math.ceil((2 * this.nD) / 16);
  }
}

const layouts = new WeakMap<CpuProfileOptions, Layout>();

/**
 * The CPU column of a ProfileLearner, compact (see the module comment). `add` and `predictCpu`
 * behave as ProfileLearner's (same options), within CPU_REL_ERROR / CPU_ABS_ERROR.
 *
 * Storage: one typed array per profile (Uint16Array; Float64Array once widened), created on the
 * first sample and grown as chunks are needed: a header — per chunk its number + 1 (0 = none:
 * never, or freed), and a bit per time-of-day bucket that ever had a sample — then the chunks,
 * each the count bytes of its buckets (n: size = min(n, cap), and once full (n ≥ cap) the oldest
 * at slot n − cap) and cap values per bucket.
 */
export class CpuProfile {
  private readonly l: Layout;
  private buf: Values | null = null;
  /** Chunk slots used in buf (freed ones included until compacted). */
  private used = 0;
  private freed = 0;
  /** Time-of-day chunks held. */
  private heldDaily = 0;
  private firstSec = Infinity;
  /** The newest sample's time (s, the recorder's time base); −Infinity before the first. */
  lastSec = -Infinity;

  /** `opts` is the key of a shared layout: pass one object for all profiles of a recorder. */
  constructor(opts: CpuProfileOptions) {
    let l = layouts.get(opts);
    if (!l) layouts.set(opts, (l = new Layout(opts)));
    this.l = l;
  }

  /** Whether this storage supports per-bucket capacities cw, cd (whole, 1..MAX_COMPACT_KEEP). */
  static supports(capWeekly: number, capDaily: number): boolean {
    return [capWeekly, capDaily].every((c) => Number.isInteger(c) && c >= 1 && c <= MAX_COMPACT_KEEP);
  }

  get bucketSec(): number {
    return this.l.o.bucketSec;
  }

  /** Bytes of storage this profile holds (its typed array). */
  get storedBytes(): number {
    return this.buf?.byteLength ?? 0;
  }

  /** Whether time-of-day values are still stored (false once all are freed, or before the first sample). */
  get holdsDaily(): boolean {
    return this.heldDaily > 0;
  }

  get spanSec(): number {
    return this.lastSec >= this.firstSec ? this.lastSec - this.firstSec : 0;
  }

  /** Records a CPU sample at `b` (the buckets of `timeSec`). Callers filter non-finite values. */
  add(timeSec: number, b: BucketOf, cpuMips: number): void {
    const l = this.l;
    this.firstSec = Math.min(this.firstSec, timeSec);
    this.lastSec = Math.max(this.lastSec, timeSec);
    // room for the header and the two chunks a first sample needs
    this.buf ??= new Uint16Array(l.header + 2 * l.chunkLen);
    let v = cpuMips;
    if (this.buf instanceof Uint16Array) {
      const code = encodeCpu(cpuMips);
      if (code >= 0) v = code;
      else this.widen();
    }
    this.push(Math.floor(b.w / l.bw), b.w % l.bw, l.o.capWeekly, v);
    const k = b.weekend ? 1 : 0;
    const c = l.chunksW + k * l.chunksD + Math.floor(b.d / l.bd);
    const seen = this.ever(k * l.nD + b.d);
    // A freed ring (it had samples, its chunk is not held) is never consulted again: skip it.
    if (!seen || this.buf[c] !== 0) {
      this.push(c, b.d % l.bd, l.o.capDaily, v);
      const bit = k * l.nD + b.d;
      if (!seen) this.buf[l.chunks + (bit >> 4)] = this.buf[l.chunks + (bit >> 4)]! | (1 << (bit & 15));
    }
    if (this.heldDaily > 0 && this.spanSec >= WEEK_SEC) this.freeDaily(b.d);
  }

  /** Whether time-of-day bucket i (k · nD + d) ever had a sample. */
  private ever(i: number): boolean {
    return ((this.buf![this.l.chunks + (i >> 4)]! >> (i & 15)) & 1) === 1;
  }

  /** Base index of chunk c in buf, allocating it (zeroed) when not held. */
  private chunk(c: number): number {
    const l = this.l;
    let buf = this.buf!;
    if (buf[c] === 0) {
      // freed slots are reclaimed before the array grows (so it never holds more than l.chunks)
      if (this.freed > 0 && l.header + (this.used + 1) * l.chunkLen > buf.length) {
        this.compact();
        buf = this.buf!;
      }
      const n = this.used++;
      const need = l.header + this.used * l.chunkLen;
      if (need > buf.length) {
        // grow by a quarter (at least one chunk), never beyond what can be needed
        const chunks = Math.min(l.chunks, Math.max(this.used, Math.floor(this.used * 1.25)));
        const grown = buf instanceof Float64Array ? new Float64Array(l.header + chunks * l.chunkLen) : new Uint16Array(l.header + chunks * l.chunkLen);
        grown.set(buf.subarray(0, l.header + n * l.chunkLen));
        this.buf = buf = grown;
      } else buf.fill(0, l.header + n * l.chunkLen, need);
      buf[c] = n + 1;
      if (c >= l.chunksW) this.heldDaily++;
    }
    return l.header + (buf[c]! - 1) * l.chunkLen;
  }

  /** Pushes value v into slot s (a bucket) of chunk c. */
  private push(c: number, s: number, cap: number, v: number): void {
    const base = this.chunk(c);
    const buf = this.buf!;
    const word = base + (s >> 1);
    const shift = (s & 1) * 8;
    const n = (buf[word]! >> shift) & 255;
    const at = base + this.l.countWords + s * cap;
    let next: number;
    if (n < cap) {
      buf[at + n] = v;
      next = n + 1;
    } else {
      buf[at + n - cap] = v;
      next = cap + ((n - cap + 1) % cap);
    }
    buf[word] = (buf[word]! & ~(255 << shift)) | (next << shift);
  }

  /** Whether slot s of chunk c is held and has a sample. */
  private has(c: number, s: number): boolean {
    const buf = this.buf!;
    if (buf[c] === 0) return false;
    const base = this.l.header + (buf[c]! - 1) * this.l.chunkLen;
    return ((buf[base + (s >> 1)]! >> ((s & 1) * 8)) & 255) !== 0;
  }

  /** Decodes the samples of slot s of chunk c (held), oldest first, into SCRATCH; their count (0: none). */
  private column(c: number, s: number, cap: number): number {
    const buf = this.buf!;
    if (buf[c] === 0) return 0;
    const base = this.l.header + (buf[c]! - 1) * this.l.chunkLen;
    const n = (buf[base + (s >> 1)]! >> ((s & 1) * 8)) & 255;
    if (n === 0) return 0;
    const at = base + this.l.countWords + s * cap;
    const size = Math.min(n, cap);
    const head = n < cap ? 0 : n - cap;
    if (buf instanceof Float64Array) for (let j = 0; j < size; j++) SCRATCH[j] = buf[at + ((head + j) % size)]!;
    else {
      const t = table();
      for (let j = 0; j < size; j++) SCRATCH[j] = t[buf[at + ((head + j) % size)]!]!;
    }
    return size;
  }

  /** The same profile in doubles (values decoded; header and counts as they are). */
  private widen(): void {
    const buf = this.buf as Uint16Array;
    const l = this.l;
    const wide = new Float64Array(buf.length);
    wide.set(buf);
    const t = table();
    for (let n = 0; n < this.used; n++) {
      const base = l.header + n * l.chunkLen;
      for (let i = base + l.countWords; i < base + l.chunkLen; i++) wide[i] = t[buf[i]!]!;
    }
    this.buf = wide;
  }

  /** Frees the time-of-day chunks around time of day d that nothing can consult any more (span ≥ 1 week). */
  private freeDaily(d: number): void {
    const l = this.l;
    const buf = this.buf!;
    const d0 = Math.floor(d / l.bd) * l.bd;
    for (const k of [0, 1]) {
      const c = l.chunksW + k * l.chunksD + d0 / l.bd;
      if (buf[c] === 0) continue;
      let freeable = true;
      for (let dd = d0; dd < Math.min(d0 + l.bd, l.nD) && freeable; dd++) {
        if (!this.ever(k * l.nD + dd)) continue; // no sample: nothing stored to keep
        // it may stand in for the "any day" ring while the other kind has no ring here
        if (!this.ever((1 - k) * l.nD + dd)) freeable = false;
        // every time-of-week bucket of this kind at dd has a sample
        for (let day = k === 0 ? 0 : 5; day < (k === 0 ? 5 : 7) && freeable; day++) {
          const w = day * l.nD + dd;
          if (!this.has(Math.floor(w / l.bw), w % l.bw)) freeable = false;
        }
      }
      if (!freeable) continue;
      buf[c] = 0;
      this.heldDaily--;
      this.freed++;
    }
    // reclaim in batches (a compaction copies the profile)
    if (this.freed > 0 && (this.heldDaily === 0 || this.freed >= 16)) this.compact();
  }

  /** A new buffer with the held chunks only, renumbered in order. */
  private compact(): void {
    const l = this.l;
    const old = this.buf!;
    const held: number[] = [];
    for (let c = 0; c < l.chunks; c++) if (old[c] !== 0) held.push(c);
    held.sort((a, b) => old[a]! - old[b]!);
    const buf = old instanceof Float64Array ? new Float64Array(l.header + held.length * l.chunkLen) : new Uint16Array(l.header + held.length * l.chunkLen);
    buf.set(old.subarray(0, l.header));
    held.forEach((c, n) => {
      const from = l.header + (old[c]! - 1) * l.chunkLen;
      buf.set(old.subarray(from, from + l.chunkLen), l.header + n * l.chunkLen);
      buf[c] = n + 1;
    });
    this.buf = buf;
    this.used = held.length;
    this.freed = 0;
  }

  /**
   * As ProfileLearner.predictCpu: the mean and the high quantile of the bucket a prediction at
   * `b` uses into out[0], out[1] and true; false when there is none.
   */
  predictCpu(b: BucketOf, out: Float64Array): boolean {
    if (!this.buf) return false;
    const l = this.l;
    let n = 0;
    if (this.spanSec >= WEEK_SEC) n = this.column(Math.floor(b.w / l.bw), b.w % l.bw, l.o.capWeekly);
    if (n === 0) {
      // the instant's kind of day, else (the "any day" ring) the other kind
      const k = b.weekend ? 1 : 0;
      const kind = this.ever(k * l.nD + b.d) ? k : this.ever((1 - k) * l.nD + b.d) ? 1 - k : -1;
      if (kind < 0) return false;
      n = this.column(l.chunksW + kind * l.chunksD + Math.floor(b.d / l.bd), b.d % l.bd, l.o.capDaily);
      if (n === 0) throw new Error(`CpuProfile: a freed time-of-day bucket (${kind}, ${b.d}) was asked`); // a bug: see freeDaily
    }
    // profile.ts's mean (summed oldest first) and quantile (sorted ascending, type 7), on SCRATCH
    // without allocating: an insertion sort gives the order Array.sort does (both stable)
    let sum = 0;
    for (let j = 0; j < n; j++) sum += SCRATCH[j]!;
    out[0] = sum / n;
    for (let j = 1; j < n; j++) {
      const x = SCRATCH[j]!;
      let i = j - 1;
      for (; i >= 0 && SCRATCH[i]! > x; i--) SCRATCH[i + 1] = SCRATCH[i]!;
      SCRATCH[i + 1] = x;
    }
    const pos = (n - 1) * Math.min(1, Math.max(0, this.quantile));
    const lo = Math.floor(pos);
    const hi = Math.ceil(pos);
    out[1] = SCRATCH[lo]! + (SCRATCH[hi]! - SCRATCH[lo]!) * (pos - lo);
    return true;
  }

  get quantile(): number {
    return this.l.o.quantile;
  }
}
