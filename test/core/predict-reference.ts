/**
 * The demand forecaster as it was before its storage was made lazy and compact (commit a719407,
 * src/core/predict/profile.ts and forecast.ts), kept verbatim (only renamed, and the types
 * imported) as the reference of test/core/predict-equivalence.property.test.ts: the current
 * implementation must give exactly the same values. Do not "fix" this copy.
 */
import type { DemandForecast, ForecastPoint, VmForecast } from '../../src/core/model/types.js';
import type { RecorderOptions, VmDemandSample } from '../../src/core/predict/forecast.js';
import type { DemandSample, Prediction, ProfileOptions, ProfileSource } from '../../src/core/predict/profile.js';

const DAY_SEC = 86_400;
const WEEK_SEC = 7 * DAY_SEC;

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
function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}


export class RefProfileLearner {
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
function isWeekend(timeSec: number): boolean {
  return Math.floor(mod(timeSec, WEEK_SEC) / DAY_SEC) >= 5;
}


export class RefDemandRecorder {
  private readonly cluster: RefProfileLearner;
  private readonly vms = new Map<string, RefProfileLearner>();
  private readonly opts: RecorderOptions;
  readonly horizonSec: number;
  readonly stepSec: number;
  private readonly offsetSec: number;

  constructor(opts: RecorderOptions = {}) {
    this.opts = opts;
    this.cluster = new RefProfileLearner(opts);
    this.horizonSec = opts.horizonSec ?? 4 * 3600;
    this.stepSec = opts.stepSec ?? this.cluster.bucketSec;
    this.offsetSec = opts.offsetSec ?? 0;
  }

  /** Records one round: each VM's demand and (their sum) the cluster's. */
  record(callerSec: number, vms: readonly VmDemandSample[]): void {
    const timeSec = callerSec + this.offsetSec;
    let cpu = 0;
    let mem = 0;
    for (const v of vms) {
      cpu += v.cpuMips;
      mem += v.memMiB;
      if (this.opts.perVm === false) continue;
      let l = this.vms.get(v.id);
      if (!l) this.vms.set(v.id, (l = new RefProfileLearner({ ...this.opts, keepWeekly: this.opts.vmKeepWeekly ?? 6, keepDaily: this.opts.vmKeepDaily ?? 12 })));
      l.add({ timeSec, cpuMips: v.cpuMips, memMiB: v.memMiB });
    }
    this.cluster.add({ timeSec, cpuMips: cpu, memMiB: mem });
  }

  /**
   * The forecast for the snapshot at `nowSec`: cluster points at now + k·stepSec within the
   * horizon (those the profile has seen), and each VM's CPU at the same points when its own
   * profile covers all of them. Undefined when nothing ahead is known yet.
   */
  forecast(nowSec: number): DemandForecast | undefined {
    const ahead = this.cluster.ahead(nowSec + this.offsetSec, this.horizonSec, this.stepSec);
    if (ahead.length === 0) return undefined;
    const points: ForecastPoint[] = ahead.map(({ atSec, p }) => ({ atSec: atSec - this.offsetSec, cpuMips: p.cpuMips, cpuMipsHigh: p.cpuMipsHigh, memMiB: p.memMiB }));
    const vms: Record<string, VmForecast> = {};
    for (const [id, l] of this.vms) {
      const cpuMips: number[] = [];
      const cpuMipsHigh: number[] = [];
      for (const { atSec } of points) {
        const p = l.predict(atSec + this.offsetSec);
        if (!p) break;
        cpuMips.push(p.cpuMips);
        cpuMipsHigh.push(p.cpuMipsHigh);
      }
      if (cpuMips.length === points.length) vms[id] = { cpuMips, cpuMipsHigh };
    }
    return { quantile: this.cluster.quantile, points, vms };
  }
}
