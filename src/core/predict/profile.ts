/**
 * Demand profiles for predictive DPM: learn what a cluster (or one VM) asks for at each time
 * of the week from recorded samples, and predict the next hours from it.
 *
 * Model: time is cut into buckets of `bucketSec` (15 min) per time of week (7 × 96 buckets) and
 * per time of day (96 buckets). A prediction for an instant uses its time-of-week bucket once a
 * full week of history is known and that bucket has samples; before that (or for a bucket never
 * seen) the time-of-day bucket of the same kind of day (weekday / weekend) if seen, else of any
 * day; else there is no prediction. Each bucket keeps its most recent samples (bounded), so a
 * profile follows slow change; the prediction is their mean and a high quantile.
 *
 * Time of week is `timeSec` modulo 7 days: the caller chooses the origin (the simulator's t = 0
 * is a Monday 00:00; the controller passes epoch seconds shifted so that 0 is a Monday 00:00 in
 * the zone that matters). Weekday/weekend: days 0–4 of the week are weekdays.
 *
 * Pure: no clock, no I/O. `ProfileLearner` is incremental (O(1) per sample), so a controller or
 * the simulator can feed it every round.
 */

export const DAY_SEC = 86_400;
export const WEEK_SEC = 7 * DAY_SEC;

/** One recorded sample of demand: a cluster's total, or one VM's. */
export interface DemandSample {
  /** s, with time of week = timeSec mod 7 days (0 = Monday 00:00). */
  readonly timeSec: number;
  readonly cpuMips: number;
  readonly memMiB: number;
}

export interface ProfileOptions {
  /** Width of a bucket, s (default 900 = 15 min; must divide a day). */
  readonly bucketSec?: number;
  /** Quantile of the `…High` predictions, 0..1 (default 0.9). */
  readonly quantile?: number;
  /** Samples kept per time-of-week bucket (default 24: 8 weeks of 5-min samples in 15-min buckets). */
  readonly keepWeekly?: number;
  /** Samples kept per time-of-day bucket (default 42: 14 days of 5-min samples in 15-min buckets). */
  readonly keepDaily?: number;
}

/** Where a prediction came from. */
export type ProfileSource = 'weekly' | 'daily-same-kind' | 'daily';

export interface Prediction {
  readonly cpuMips: number;
  /** The `quantile` of the bucket's samples. */
  readonly cpuMipsHigh: number;
  readonly memMiB: number;
  readonly memMiBHigh: number;
  readonly source: ProfileSource;
  /** Samples behind it. */
  readonly samples: number;
}

const mod = (a: number, m: number): number => ((a % m) + m) % m;

/**
 * Most samples a bucket keeps for a `keep` option: what `push` then drop-the-oldest-while-longer
 * kept before (floor of keep, at least 0; unbounded for NaN or Infinity).
 */
const capOf = (keep: number): number => (Number.isNaN(keep) || keep === Infinity ? Infinity : Math.max(0, Math.floor(keep)));

/**
 * The most recent samples of one bucket (at most `cap`, passed in by the learner so that it is
 * not stored per bucket): CPU and memory interleaved in one plain array of doubles, a circular
 * buffer once full (`head` = the oldest). Created on a bucket's first sample, so a profile
 * costs memory only for the buckets it has seen. No cached statistics (they would cost memory
 * in every bucket); predictions compute them from the ≤ cap values.
 */
class Ring {
  /** Room for up to `cap` samples, grown by doubling (not by push: its spare capacity would stay in every bucket). */
  private v: number[];
  /** Samples held. */
  size = 1;
  private head = 0;
  constructor(cpu: number, mem: number) {
    this.v = [cpu, mem];
  }
  push(cpu: number, mem: number, cap: number): void {
    const n = this.size;
    if (n < cap) {
      if (2 * n === this.v.length) {
        const grown = new Array<number>(2 * Math.min(cap, 2 * n));
        for (let i = 0; i < 2 * n; i++) grown[i] = this.v[i]!;
        this.v = grown;
      }
      this.v[2 * n] = cpu;
      this.v[2 * n + 1] = mem;
      this.size = n + 1;
      return;
    }
    this.v[2 * this.head] = cpu;
    this.v[2 * this.head + 1] = mem;
    this.head = (this.head + 1) % n;
  }
  /** Column c (0 CPU, 1 memory), oldest first. */
  column(c: 0 | 1): number[] {
    const n = this.size;
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.v[2 * ((this.head + i) % n) + c]!;
    return out;
  }
}

/** Mean of the values, summed oldest first from 0 (the order fixes the rounding). */
function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Linear-interpolated quantile q of values (type 7, as R and NumPy default). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Where an instant falls: its time-of-week bucket, time-of-day bucket and kind of day. */
export interface BucketOf {
  readonly w: number;
  readonly d: number;
  readonly weekend: boolean;
}

/**
 * Storage: one Map per profile from a bucket key to its Ring, created on the first sample (an
 * empty profile holds no bucket slots at all). Keys: time-of-week bucket w → w (≥ 0);
 * time-of-day bucket d of day kind k (0 weekdays, 1 weekends, 2 any day) → −1 − (3d + k).
 */
export class ProfileLearner {
  readonly bucketSec: number;
  readonly quantile: number;
  private rings: Map<number, Ring> | null = null;
  /** Most samples a time-of-week / time-of-day bucket keeps (from keepWeekly / keepDaily). */
  readonly capWeekly: number;
  readonly capDaily: number;
  private firstSec = Infinity;
  private newestSec = -Infinity;

  constructor(opts: ProfileOptions = {}) {
    const b = opts.bucketSec ?? 900;
    if (!(b > 0) || DAY_SEC % b !== 0) throw new RangeError(`bucketSec ${b} must be > 0 and divide a day`);
    this.bucketSec = b;
    this.quantile = opts.quantile ?? 0.9;
    this.capWeekly = capOf(opts.keepWeekly ?? 24);
    this.capDaily = capOf(opts.keepDaily ?? 42);
  }

  /** The newest sample's time, s (−Infinity before the first). */
  get lastSec(): number {
    return this.newestSec;
  }

  /** Seconds of history seen (newest − oldest sample). */
  get spanSec(): number {
    return this.newestSec >= this.firstSec ? this.newestSec - this.firstSec : 0;
  }

  /** The buckets of instant `timeSec` (same time base as samples). */
  bucketOf(timeSec: number): BucketOf {
    return { w: Math.floor(mod(timeSec, WEEK_SEC) / this.bucketSec), d: Math.floor(mod(timeSec, DAY_SEC) / this.bucketSec), weekend: isWeekend(timeSec) };
  }

  /** Records a sample. Non-finite values are ignored (a missing measurement is no zero). */
  add(s: DemandSample): void {
    if (!Number.isFinite(s.timeSec) || !Number.isFinite(s.cpuMips) || !Number.isFinite(s.memMiB)) return;
    this.firstSec = Math.min(this.firstSec, s.timeSec);
    this.newestSec = Math.max(this.newestSec, s.timeSec);
    const { w, d, weekend } = this.bucketOf(s.timeSec);
    const rings = (this.rings ??= new Map());
    this.push(rings, w, this.capWeekly, s);
    this.push(rings, -1 - (3 * d + (weekend ? 1 : 0)), this.capDaily, s);
    this.push(rings, -1 - (3 * d + 2), this.capDaily, s);
  }

  private push(rings: Map<number, Ring>, key: number, cap: number, s: DemandSample): void {
    if (cap === 0) return; // such a bucket never holds a sample
    const r = rings.get(key);
    if (r) r.push(s.cpuMips, s.memMiB, cap);
    else rings.set(key, new Ring(s.cpuMips, s.memMiB));
  }

  /** The bucket a prediction at instant `b` uses (see the module comment), or null. */
  private ringFor(b: BucketOf): { ring: Ring; source: ProfileSource } | null {
    const rings = this.rings;
    if (!rings) return null;
    let ring: Ring | undefined;
    if (this.spanSec >= WEEK_SEC && (ring = rings.get(b.w))) return { ring, source: 'weekly' };
    if ((ring = rings.get(-1 - (3 * b.d + (b.weekend ? 1 : 0))))) return { ring, source: 'daily-same-kind' };
    if ((ring = rings.get(-1 - (3 * b.d + 2)))) return { ring, source: 'daily' };
    return null;
  }

  /** Expected demand at `atSec` from the profile; null when no bucket for it was ever seen. */
  predict(atSec: number): Prediction | null {
    const found = this.ringFor(this.bucketOf(atSec));
    if (!found) return null;
    const { ring, source } = found;
    const cpu = ring.column(0);
    const mem = ring.column(1);
    return { cpuMips: mean(cpu), cpuMipsHigh: quantile(cpu, this.quantile), memMiB: mean(mem), memMiBHigh: quantile(mem, this.quantile), source, samples: ring.size };
  }

  /**
   * CPU only of `predict` at an instant in bucket `b`: writes the mean and the high quantile to
   * out[0], out[1] and returns true, or returns false when predict would return null. For the
   * recorder's per-VM forecast, which needs no memory figures and no Prediction object.
   */
  predictCpu(b: BucketOf, out: Float64Array): boolean {
    const found = this.ringFor(b);
    if (!found) return false;
    const cpu = found.ring.column(0);
    out[0] = mean(cpu);
    out[1] = quantile(cpu, this.quantile);
    return true;
  }

  /**
   * Predictions at `fromSec + k·stepSec` for k = 1 … ⌊horizonSec / stepSec⌋ (the present is
   * measured, not predicted). Instants without a prediction are left out.
   */
  ahead(fromSec: number, horizonSec: number, stepSec = this.bucketSec): { atSec: number; p: Prediction }[] {
    const out: { atSec: number; p: Prediction }[] = [];
    for (let k = 1; k * stepSec <= horizonSec; k++) {
      const atSec = fromSec + k * stepSec;
      const p = this.predict(atSec);
      if (p) out.push({ atSec, p });
    }
    return out;
  }
}

/** Saturday or Sunday, with time of week 0 = Monday 00:00. */
export function isWeekend(timeSec: number): boolean {
  return Math.floor(mod(timeSec, WEEK_SEC) / DAY_SEC) >= 5;
}

/** A learner fed with `samples` (convenience for tests and one-off analysis). */
export function learnProfile(samples: Iterable<DemandSample>, opts: ProfileOptions = {}): ProfileLearner {
  const l = new ProfileLearner(opts);
  for (const s of samples) l.add(s);
  return l;
}
