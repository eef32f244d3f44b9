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
 * Layout: buckets are grouped in chunks of CHUNK consecutive buckets of one table (time of week;
 * time of day on weekdays; on weekends); a chunk's values live in one growable typed array per
 * table kind (weekly, daily), allocated on the chunk's first sample, so a profile costs memory
 * only for what it has seen. Per bucket one byte says how many samples it holds and where the
 * oldest is (see `meta`). Only for capacities 1..MAX_COMPACT_KEEP (the recorder falls back to
 * ProfileLearner otherwise).
 */
import { DAY_SEC, WEEK_SEC, quantile, type BucketOf } from './profile.js';

/** Largest per-bucket capacity this storage supports (its per-bucket byte holds < 2 · cap). */
export const MAX_COMPACT_KEEP = 127;
/** Bound on |kept − sample| / sample for samples ≥ 2^-8 MIPS (and on the mean and quantile). */
export const CPU_REL_ERROR = 2 ** -12;
/** Bound on |kept − sample| below 2^-8 MIPS, MIPS. */
export const CPU_ABS_ERROR = 2 ** -20;

const CHUNK = 4;
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

/** One growable array of fixed-size chunks (a chunk = CHUNK buckets × cap values). */
class Chunks {
  vals: Values;
  /** Chunks in use. */
  used = 0;
  constructor(
    readonly chunkLen: number,
    /** Most chunks this array can ever hold (its growth stops there). */
    readonly maxChunks: number,
    wide: boolean,
  ) {
    this.vals = wide ? new Float64Array(0) : new Uint16Array(0);
  }
  /** A new chunk's number (0-based). */
  add(): number {
    const n = this.used++;
    if (this.used * this.chunkLen > this.vals.length) {
      // grow by a quarter (at least one chunk), never beyond what can be needed
      const chunks = Math.min(this.maxChunks, Math.max(this.used, Math.floor(this.used * 1.25)));
      const grown = this.vals instanceof Float64Array ? new Float64Array(chunks * this.chunkLen) : new Uint16Array(chunks * this.chunkLen);
      grown.set(this.vals);
      this.vals = grown;
    }
    return n;
  }
  /** The same chunks in doubles (decoded). */
  widen(): void {
    if (this.vals instanceof Float64Array) return;
    const t = table();
    const wide = new Float64Array(this.vals.length);
    for (let i = 0; i < this.used * this.chunkLen; i++) wide[i] = t[this.vals[i]!]!;
    this.vals = wide;
  }
}

/**
 * The CPU column of a ProfileLearner, compact (see the module comment). `add` and `predictCpu`
 * behave as ProfileLearner's (same options), within CPU_REL_ERROR / CPU_ABS_ERROR.
 */
export class CpuProfile {
  readonly bucketSec: number;
  readonly quantile: number;
  private readonly capW: number;
  private readonly capD: number;
  private readonly nW: number;
  private readonly nD: number;
  /** Chunks of the time-of-week table; then of time of day, weekdays; then weekends. */
  private readonly chunksW: number;
  private readonly chunksD: number;
  /**
   * Per bucket (index: time-of-week w; nW + d weekdays; nW + nD + d weekends): 0 = never a
   * sample; else n with size = min(n, cap) and, once full (n ≥ cap), the oldest at slot n − cap.
   * Created on the first sample.
   */
  private meta: Uint8Array | null = null;
  /** Per chunk (same order): its number + 1 in its Chunks, 0 = no storage (never, or freed). */
  private where: Uint8Array | Uint16Array | Uint32Array | null = null;
  private weekly: Chunks | null = null;
  private daily: Chunks | null = null;
  private wide = false;
  private firstSec = Infinity;
  /** The newest sample's time (s, the recorder's time base); −Infinity before the first. */
  lastSec = -Infinity;

  constructor(opts: { readonly bucketSec: number; readonly quantile: number; readonly capWeekly: number; readonly capDaily: number }) {
    this.bucketSec = opts.bucketSec;
    this.quantile = opts.quantile;
    this.capW = opts.capWeekly;
    this.capD = opts.capDaily;
    this.nW = WEEK_SEC / opts.bucketSec;
    this.nD = DAY_SEC / opts.bucketSec;
    this.chunksW = Math.ceil(this.nW / CHUNK);
    this.chunksD = Math.ceil(this.nD / CHUNK);
  }

  /** Whether this storage supports per-bucket capacities cw, cd (whole, 1..MAX_COMPACT_KEEP). */
  static supports(capWeekly: number, capDaily: number): boolean {
    return [capWeekly, capDaily].every((c) => Number.isInteger(c) && c >= 1 && c <= MAX_COMPACT_KEEP);
  }

  /** Bytes of typed-array storage this profile holds (values, per-bucket bytes, chunk table). */
  get storedBytes(): number {
    return (this.meta?.byteLength ?? 0) + (this.where?.byteLength ?? 0) + (this.weekly?.vals.byteLength ?? 0) + (this.daily?.vals.byteLength ?? 0);
  }

  /** Whether time-of-day values are still stored (false once all are freed, or before the first sample). */
  get holdsDaily(): boolean {
    return this.daily !== null && this.daily.used > 0;
  }

  get spanSec(): number {
    return this.lastSec >= this.firstSec ? this.lastSec - this.firstSec : 0;
  }

  /** Records a CPU sample at `b` (the buckets of `timeSec`). Callers filter non-finite values. */
  add(timeSec: number, b: BucketOf, cpuMips: number): void {
    this.firstSec = Math.min(this.firstSec, timeSec);
    this.lastSec = Math.max(this.lastSec, timeSec);
    if (!this.meta) {
      this.meta = new Uint8Array(this.nW + 2 * this.nD);
      const chunks = this.chunksW + 2 * this.chunksD;
      this.where = chunks <= 0xff ? new Uint8Array(chunks) : chunks <= 0xffff ? new Uint16Array(chunks) : new Uint32Array(chunks);
      this.weekly = new Chunks(CHUNK * this.capW, this.chunksW, false);
      this.daily = new Chunks(CHUNK * this.capD, 2 * this.chunksD, false);
    }
    let code = -1;
    if (!this.wide && (code = encodeCpu(cpuMips)) < 0) {
      this.wide = true;
      this.weekly!.widen();
      this.daily?.widen();
    }
    const v = this.wide ? cpuMips : code;
    this.push(b.w, 0, b.w, this.capW, this.weekly!, v);
    const k = b.weekend ? 1 : 0;
    const bucket = this.nW + k * this.nD + b.d;
    const chunk = this.chunksW + k * this.chunksD + Math.floor(b.d / CHUNK);
    // A freed ring (it had samples, its chunk has no storage) is never consulted again: skip it.
    if (this.meta[bucket] === 0 || this.where![chunk] !== 0) {
      this.daily ??= new Chunks(CHUNK * this.capD, 2 * this.chunksD, this.wide);
      this.push(bucket, this.chunksW + k * this.chunksD, b.d, this.capD, this.daily, v);
    }
    if (this.daily && this.spanSec >= WEEK_SEC) this.freeDaily(b.d);
  }

  /** Pushes value v into bucket `bucket` (position `i` in its table, whose first chunk is `chunk0`). */
  private push(bucket: number, chunk0: number, i: number, cap: number, store: Chunks, v: number): void {
    const meta = this.meta!;
    const where = this.where!;
    const c = chunk0 + Math.floor(i / CHUNK);
    if (where[c] === 0) where[c] = store.add() + 1;
    const base = (where[c]! - 1) * store.chunkLen + (i % CHUNK) * cap;
    const n = meta[bucket]!;
    if (n < cap) {
      store.vals[base + n] = v;
      meta[bucket] = n + 1;
    } else {
      store.vals[base + n - cap] = v;
      meta[bucket] = cap + ((n - cap + 1) % cap);
    }
  }

  /** Frees the time-of-day storage at time of day d that nothing can consult any more (span ≥ 1 week). */
  private freeDaily(d: number): void {
    const meta = this.meta!;
    const where = this.where!;
    const c0 = Math.floor(d / CHUNK) * CHUNK;
    let changed = false;
    for (const k of [0, 1]) {
      const chunk = this.chunksW + k * this.chunksD + c0 / CHUNK;
      if (where[chunk] === 0) continue;
      let freeable = true;
      for (let dd = c0; dd < Math.min(c0 + CHUNK, this.nD) && freeable; dd++) {
        if (meta[this.nW + k * this.nD + dd] === 0) continue; // no sample: nothing stored to keep
        if (meta[this.nW + (1 - k) * this.nD + dd] === 0) freeable = false; // may stand in for the "any day" ring
        for (let day = k === 0 ? 0 : 5; day < (k === 0 ? 5 : 7) && freeable; day++) if (meta[day * this.nD + dd] === 0) freeable = false;
      }
      if (!freeable) continue;
      where[chunk] = 0;
      changed = true;
    }
    if (changed) this.compactDaily();
  }

  /** Rebuilds the time-of-day storage with the chunks still held (none: dropped). */
  private compactDaily(): void {
    const old = this.daily!;
    const where = this.where!;
    const held: number[] = [];
    for (let c = this.chunksW; c < where.length; c++) if (where[c] !== 0) held.push(c);
    if (held.length === 0) {
      this.daily = null;
      return;
    }
    const next = new Chunks(old.chunkLen, old.maxChunks, this.wide);
    for (const c of held) {
      const from = (where[c]! - 1) * old.chunkLen;
      const to = next.add() * old.chunkLen;
      next.vals.set(old.vals.subarray(from, from + old.chunkLen), to);
      where[c] = to / old.chunkLen + 1;
    }
    this.daily = next;
  }

  /** The values of a bucket, oldest first, decoded; null when it never had a sample. */
  private column(bucket: number, chunk0: number, i: number, cap: number, store: Chunks | null): number[] | null {
    const n = this.meta![bucket]!;
    if (n === 0) return null;
    const c = this.where![chunk0 + Math.floor(i / CHUNK)]!;
    if (c === 0 || !store) throw new Error(`CpuProfile: bucket ${bucket} was freed but is asked`); // a bug: see freeDaily
    const base = (c - 1) * store.chunkLen + (i % CHUNK) * cap;
    const size = Math.min(n, cap);
    const head = n < cap ? 0 : n - cap;
    const out = new Array<number>(size);
    const vals = store.vals;
    if (this.wide) for (let j = 0; j < size; j++) out[j] = vals[base + ((head + j) % size)]!;
    else {
      const t = table();
      for (let j = 0; j < size; j++) out[j] = t[vals[base + ((head + j) % size)]!]!;
    }
    return out;
  }

  /**
   * As ProfileLearner.predictCpu: the mean and the high quantile of the bucket a prediction at
   * `b` uses into out[0], out[1] and true; false when there is none.
   */
  predictCpu(b: BucketOf, out: Float64Array): boolean {
    if (!this.meta) return false;
    let xs: number[] | null = null;
    if (this.spanSec >= WEEK_SEC) xs = this.column(b.w, 0, b.w, this.capW, this.weekly);
    const k = b.weekend ? 1 : 0;
    // the instant's kind of day, else (the "any day" ring) the other kind
    xs ??= this.column(this.nW + k * this.nD + b.d, this.chunksW + k * this.chunksD, b.d, this.capD, this.daily);
    xs ??= this.column(this.nW + (1 - k) * this.nD + b.d, this.chunksW + (1 - k) * this.chunksD, b.d, this.capD, this.daily);
    if (!xs) return false;
    let s = 0;
    for (const x of xs) s += x;
    out[0] = s / xs.length;
    out[1] = quantile(xs, this.quantile);
    return true;
  }
}
