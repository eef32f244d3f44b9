/**
 * From recorded demand to `ClusterSnapshot.forecast`: one profile for the cluster's total and
 * one per VM (src/core/predict/profile.ts), fed every round by the app layer (the simulator
 * engine, the controller) and asked for the next hours when a snapshot is built. Pure: the
 * caller passes the times.
 */
import type { DemandForecast, ForecastPoint, VmForecast } from '../model/types.js';
import { ProfileLearner, type BucketOf, type ProfileOptions } from './profile.js';

export interface RecorderOptions extends ProfileOptions {
  /** How far ahead forecasts reach, s (default 4 h). */
  readonly horizonSec?: number;
  /** Spacing of forecast points, s (default: the bucket width). */
  readonly stepSec?: number;
  /** Per-VM profiles too (default true). */
  readonly perVm?: boolean;
  /**
   * Samples kept per bucket of a VM's profile (defaults 6 per time-of-week bucket = 2 weeks of
   * 5-min samples in 15-min buckets, 12 per time-of-day bucket): a VM profile costs at most
   * about (672 × 6 + 288 × 12) × 2 numbers, the cluster's uses the ProfileOptions defaults.
   */
  readonly vmKeepWeekly?: number;
  readonly vmKeepDaily?: number;
  /**
   * Added to the caller's seconds to get time of week with 0 = Monday 00:00 (default 0: the
   * simulator's t = 0 is a Monday midnight). Forecast instants come back in the caller's seconds.
   */
  readonly offsetSec?: number;
}

export interface VmDemandSample {
  readonly id: string;
  readonly cpuMips: number;
  readonly memMiB: number;
}

export class DemandRecorder {
  private readonly cluster: ProfileLearner;
  private readonly vms = new Map<string, ProfileLearner>();
  private readonly opts: RecorderOptions;
  /** Options of every VM profile (one object, shared). */
  private readonly vmOpts: ProfileOptions;
  readonly horizonSec: number;
  readonly stepSec: number;
  private readonly offsetSec: number;
  /** Bumped by every record(): a forecast is a function of (recorded samples, nowSec). */
  private version = 0;
  private memo: { nowSec: number; version: number; result: DemandForecast | undefined } | null = null;

  constructor(opts: RecorderOptions = {}) {
    this.opts = opts;
    this.cluster = new ProfileLearner(opts);
    this.vmOpts = { ...opts, keepWeekly: opts.vmKeepWeekly ?? 6, keepDaily: opts.vmKeepDaily ?? 12 };
    this.horizonSec = opts.horizonSec ?? 4 * 3600;
    this.stepSec = opts.stepSec ?? this.cluster.bucketSec;
    this.offsetSec = opts.offsetSec ?? 0;
  }

  /** Records one round: each VM's demand and (their sum) the cluster's. */
  record(callerSec: number, vms: readonly VmDemandSample[]): void {
    this.version++;
    const timeSec = callerSec + this.offsetSec;
    let cpu = 0;
    let mem = 0;
    for (const v of vms) {
      cpu += v.cpuMips;
      mem += v.memMiB;
      if (this.opts.perVm === false) continue;
      let l = this.vms.get(v.id);
      if (!l) this.vms.set(v.id, (l = new ProfileLearner(this.vmOpts)));
      l.add({ timeSec, cpuMips: v.cpuMips, memMiB: v.memMiB });
    }
    this.cluster.add({ timeSec, cpuMips: cpu, memMiB: mem });
  }

  /**
   * The forecast for the snapshot at `nowSec`: cluster points at now + k·stepSec within the
   * horizon (those the profile has seen), and each VM's CPU at the same points when its own
   * profile covers all of them. Undefined when nothing ahead is known yet.
   *
   * Asked again for the same `nowSec` with nothing recorded since, it returns the same object
   * (immutable). Per VM, consecutive points in the same buckets share one prediction (computed
   * once), and a VM's arrays are built only once its profile is known to cover every point.
   */
  forecast(nowSec: number): DemandForecast | undefined {
    if (this.memo && this.memo.nowSec === nowSec && this.memo.version === this.version) return this.memo.result;
    const result = this.compute(nowSec);
    this.memo = { nowSec, version: this.version, result };
    return result;
  }

  private compute(nowSec: number): DemandForecast | undefined {
    const ahead = this.cluster.ahead(nowSec + this.offsetSec, this.horizonSec, this.stepSec);
    if (ahead.length === 0) return undefined;
    const points: ForecastPoint[] = ahead.map(({ atSec, p }) => ({ atSec: atSec - this.offsetSec, cpuMips: p.cpuMips, cpuMipsHigh: p.cpuMipsHigh, memMiB: p.memMiB }));
    // Runs of consecutive points in the same buckets (the same for every VM profile: they share
    // the bucket width): runStart[r] = first point of run r; a profile's prediction is a
    // function of the buckets, so it is computed once per run.
    const runStart: number[] = [];
    const runBucket: BucketOf[] = [];
    let last: BucketOf | null = null;
    points.forEach(({ atSec }, k) => {
      const b = this.cluster.bucketOf(atSec + this.offsetSec);
      if (last && last.w === b.w && last.d === b.d && last.weekend === b.weekend) return;
      runStart.push(k);
      runBucket.push((last = b));
    });
    runStart.push(points.length);
    const runs = runBucket.length;
    const runMean = new Float64Array(runs);
    const runHigh = new Float64Array(runs);
    const out = new Float64Array(2);
    const vms: Record<string, VmForecast> = {};
    for (const [id, l] of this.vms) {
      let r = 0;
      for (; r < runs; r++) {
        if (!l.predictCpu(runBucket[r]!, out)) break;
        runMean[r] = out[0]!;
        runHigh[r] = out[1]!;
      }
      if (r < runs) continue;
      const cpuMips = new Array<number>(points.length);
      const cpuMipsHigh = new Array<number>(points.length);
      for (r = 0; r < runs; r++) {
        for (let k = runStart[r]!; k < runStart[r + 1]!; k++) {
          cpuMips[k] = runMean[r]!;
          cpuMipsHigh[k] = runHigh[r]!;
        }
      }
      vms[id] = { cpuMips, cpuMipsHigh };
    }
    return { quantile: this.cluster.quantile, points, vms };
  }
}
