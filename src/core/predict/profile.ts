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

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const mod = (a: number, m: number): number => ((a % m) + m) % m;

/** Bounded list of the most recent values of one bucket. */
class Ring {
  readonly cpu: number[] = [];
  readonly mem: number[] = [];
  /** Statistics of the current contents (computed on demand, dropped on push). */
  private stats: { q: number; cpu: number; cpuHigh: number; mem: number; memHigh: number } | null = null;
  constructor(private readonly keep: number) {}
  push(cpu: number, mem: number): void {
    this.cpu.push(cpu);
    this.mem.push(mem);
    this.stats = null;
    if (this.cpu.length > this.keep) {
      this.cpu.shift();
      this.mem.shift();
    }
  }
  summary(q: number): { cpu: number; cpuHigh: number; mem: number; memHigh: number } {
    if (this.stats?.q !== q) this.stats = { q, cpu: mean(this.cpu), cpuHigh: quantile(this.cpu, q), mem: mean(this.mem), memHigh: quantile(this.mem, q) };
    return this.stats;
  }
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


export class ProfileLearner {
  readonly bucketSec: number;
  readonly quantile: number;
  private readonly weekly: (Ring | undefined)[];
  /** Time-of-day buckets: [0] weekdays, [1] weekends, [2] any day. */
  private readonly daily: (Ring | undefined)[][];
  private readonly keepWeekly: number;
  private readonly keepDaily: number;
  private firstSec = Infinity;
  private lastSec = -Infinity;

  constructor(opts: ProfileOptions = {}) {
    const b = opts.bucketSec ?? 900;
    if (!(b > 0) || DAY_SEC % b !== 0) throw new RangeError(`bucketSec ${b} must be > 0 and divide a day`);
    this.bucketSec = b;
    this.quantile = opts.quantile ?? 0.9;
    this.keepWeekly = opts.keepWeekly ?? 24;
    this.keepDaily = opts.keepDaily ?? 42;
    this.weekly = new Array<Ring | undefined>(WEEK_SEC / b);
    this.daily = [0, 1, 2].map(() => new Array<Ring | undefined>(DAY_SEC / b));
  }

  /** Seconds of history seen (newest − oldest sample). */
  get spanSec(): number {
    return this.lastSec >= this.firstSec ? this.lastSec - this.firstSec : 0;
  }

  /** Records a sample. Non-finite values are ignored (a missing measurement is no zero). */
  add(s: DemandSample): void {
    if (!Number.isFinite(s.timeSec) || !Number.isFinite(s.cpuMips) || !Number.isFinite(s.memMiB)) return;
    this.firstSec = Math.min(this.firstSec, s.timeSec);
    this.lastSec = Math.max(this.lastSec, s.timeSec);
    const w = Math.floor(mod(s.timeSec, WEEK_SEC) / this.bucketSec);
    (this.weekly[w] ??= new Ring(this.keepWeekly)).push(s.cpuMips, s.memMiB);
    const d = Math.floor(mod(s.timeSec, DAY_SEC) / this.bucketSec);
    const kind = isWeekend(s.timeSec) ? 1 : 0;
    (this.daily[kind]![d] ??= new Ring(this.keepDaily)).push(s.cpuMips, s.memMiB);
    (this.daily[2]![d] ??= new Ring(this.keepDaily)).push(s.cpuMips, s.memMiB);
  }

  /** Expected demand at `atSec` from the profile; null when no bucket for it was ever seen. */
  predict(atSec: number): Prediction | null {
    let ring: Ring | undefined;
    let source: ProfileSource = 'weekly';
    if (this.spanSec >= WEEK_SEC) ring = this.weekly[Math.floor(mod(atSec, WEEK_SEC) / this.bucketSec)];
    if (!ring || ring.cpu.length === 0) {
      const d = Math.floor(mod(atSec, DAY_SEC) / this.bucketSec);
      ring = this.daily[isWeekend(atSec) ? 1 : 0]![d];
      source = 'daily-same-kind';
      if (!ring || ring.cpu.length === 0) {
        ring = this.daily[2]![d];
        source = 'daily';
      }
    }
    if (!ring || ring.cpu.length === 0) return null;
    const st = ring.summary(this.quantile);
    return { cpuMips: st.cpu, cpuMipsHigh: st.cpuHigh, memMiB: st.mem, memMiBHigh: st.memHigh, source, samples: ring.cpu.length };
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
