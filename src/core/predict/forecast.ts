/**
 * From recorded demand to `ClusterSnapshot.forecast`: one profile for the cluster's total and
 * one per VM (src/core/predict/profile.ts), fed every round by the app layer (the simulator
 * engine, the controller) and asked for the next hours when a snapshot is built. Pure: the
 * caller passes the times.
 */
import type { DemandForecast, ForecastPoint, Vm, VmForecast } from '../model/types.js';
import { CpuProfile } from './cpu-profile.js';
import { ProfileLearner, WEEK_SEC, type BucketOf, type ProfileOptions } from './profile.js';

export interface RecorderOptions extends ProfileOptions {
  /** How far ahead forecasts reach, s (default 4 h). */
  readonly horizonSec?: number;
  /** Spacing of forecast points, s (default: the bucket width). */
  readonly stepSec?: number;
  /** Per-VM profiles too (default true). */
  readonly perVm?: boolean;
  /**
   * Samples kept per bucket of a VM's profile (defaults 6 per time-of-week bucket = 2 weeks of
   * 5-min samples in 15-min buckets, 12 per time-of-day bucket); the cluster's uses the
   * ProfileOptions defaults. With whole capacities 1..127 (the defaults) a VM profile is a
   * CpuProfile (./cpu-profile.ts: CPU only, 16-bit values, time-of-day rings freed once a week
   * is known): about 9 KiB with two weeks learned at 5-min rounds; otherwise a ProfileLearner.
   */
  readonly vmKeepWeekly?: number;
  readonly vmKeepDaily?: number;
  /**
   * A VM's profile is dropped once no sample of it was recorded for longer than this, s
   * (default 2 weeks: a VM gone that long is deleted, or back as a new workload; its profile
   * would be the history the default time-of-week rings hold). Infinity: never.
   */
  readonly vmForgetAfterSec?: number;
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

/** What the recorder needs of a VM's profile: CpuProfile, or ProfileLearner for other capacities. */
interface VmProfile {
  predictCpu(b: BucketOf, out: Float64Array): boolean;
  readonly lastSec: number;
}

export class DemandRecorder {
  private readonly cluster: ProfileLearner;
  private readonly vms = new Map<string, VmProfile>();
  private readonly opts: RecorderOptions;
  /** Options of every VM profile (one object, shared). */
  private readonly vmOpts: ProfileOptions;
  /** The VM profiles are CpuProfiles with these options (else ProfileLearners). */
  private readonly compact: ConstructorParameters<typeof CpuProfile>[0] | null;
  private readonly forgetAfterSec: number;
  /** Time (recorder base) of the last sweep for VMs to forget. */
  private sweptSec = -Infinity;
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
    const capW = capOf(this.vmOpts.keepWeekly!);
    const capD = capOf(this.vmOpts.keepDaily!);
    this.compact = CpuProfile.supports(capW, capD) ? { bucketSec: this.cluster.bucketSec, quantile: this.cluster.quantile, capWeekly: capW, capDaily: capD } : null;
    this.forgetAfterSec = opts.vmForgetAfterSec ?? 2 * WEEK_SEC;
    this.horizonSec = opts.horizonSec ?? 4 * 3600;
    this.stepSec = opts.stepSec ?? this.cluster.bucketSec;
    this.offsetSec = opts.offsetSec ?? 0;
  }

  /** Records one round: each VM's demand and (their sum) the cluster's. */
  record(callerSec: number, vms: readonly VmDemandSample[]): void {
    const timeSec = callerSec + this.offsetSec;
    const b = this.roundStart(timeSec);
    let cpu = 0;
    let mem = 0;
    for (const v of vms) {
      cpu += v.cpuMips;
      mem += v.memMiB;
      this.addVm(timeSec, b, v.id, v.cpuMips, v.memMiB);
    }
    this.roundEnd(timeSec, cpu, mem);
  }

  /**
   * A round of which only the cluster's total is known (`record` with the VMs' sums, the VM
   * profiles left alone): for history older than any VM profile can use (historyNeededSec).
   */
  recordTotal(callerSec: number, cpuMips: number, memMiB: number): void {
    const timeSec = callerSec + this.offsetSec;
    this.roundStart(timeSec);
    this.roundEnd(timeSec, cpuMips, memMiB);
  }

  /**
   * How far back history can still change what this recorder predicts, s before the present,
   * when rounds come every `intervalSec` (Infinity: all of it). A bucket keeps its `cap` most
   * recent samples; regular rounds put k = max(1, ⌊bucketSec / intervalSec⌋) samples a week
   * into a time-of-week bucket and 2k into a weekend time-of-day one (the fewest of the
   * time-of-day rings), so a sample older than max(⌈capWeekly / k⌉, ⌈capDaily / 2k⌉, 1) weeks
   * (plus two buckets: the current one is partly filled) has been pushed out of every ring, and
   * the kept samples still span the week that makes time-of-week buckets count. VM profiles
   * also: a VM with no sample for vmForgetAfterSec is dropped at a sweep (at most a bucket
   * apart), so a VM sample older than vmForgetAfterSec + 1 week was either followed by its
   * VM's forgetting or by another sample over a week old (the kept ones span that week too).
   * With gaps in the history a bucket fills more slowly and older samples could still count:
   * the bound assumes regular rounds (a VM measured in every one, or long gone).
   */
  historyNeededSec(intervalSec: number): { vmSec: number; clusterSec: number } {
    const b = this.cluster.bucketSec;
    const k = Math.max(1, Math.floor(b / intervalSec));
    const span = (capW: number, capD: number): number =>
      (Number.isFinite(capW) && Number.isFinite(capD) ? Math.max(Math.ceil(capW / k), Math.ceil(capD / (2 * k)), 1) * WEEK_SEC + 2 * b : Infinity);
    const vmSec = this.opts.perVm === false ? 0
      : Math.max(span(capOf(this.vmOpts.keepWeekly!), capOf(this.vmOpts.keepDaily!)), this.forgetAfterSec + WEEK_SEC + 2 * b);
    return { vmSec, clusterSec: span(this.cluster.capWeekly, this.cluster.capDaily) };
  }

  /**
   * `record` of the measured VMs of a snapshot's VM list, straight from it (no sample objects):
   * each VM without `usage` (a fresh measurement: a stale or unknown value is a guess, no
   * history) with its `demand.cpuMips` and `demand.memMiB`.
   */
  recordVms(callerSec: number, vms: readonly Vm[]): void {
    const timeSec = callerSec + this.offsetSec;
    const b = this.roundStart(timeSec);
    let cpu = 0;
    let mem = 0;
    for (const v of vms) {
      if (v.usage !== undefined) continue;
      cpu += v.demand.cpuMips;
      mem += v.demand.memMiB;
      this.addVm(timeSec, b, v.id, v.demand.cpuMips, v.demand.memMiB);
    }
    this.roundEnd(timeSec, cpu, mem);
  }

  /** VM profiles held (forgotten ones excluded). */
  get vmCount(): number {
    return this.vms.size;
  }

  /** Whether a profile of VM `id` is held. */
  knowsVm(id: string): boolean {
    return this.vms.has(id);
  }

  /**
   * Bytes of typed-array storage of the VM profiles (CpuProfile.storedBytes; 0 for
   * ProfileLearner ones, which keep plain arrays): what the values cost, without the objects.
   */
  vmStoredBytes(): number {
    let n = 0;
    for (const l of this.vms.values()) if (l instanceof CpuProfile) n += l.storedBytes;
    return n;
  }

  private roundStart(timeSec: number): BucketOf {
    this.version++;
    return this.cluster.bucketOf(timeSec);
  }

  /**
   * One VM's sample. As ProfileLearner.add, a sample with a non-finite time, CPU or memory is
   * ignored (the memory value is not kept: no VM forecast uses it).
   */
  private addVm(timeSec: number, b: BucketOf, id: string, cpuMips: number, memMiB: number): void {
    if (this.opts.perVm === false) return;
    let l = this.vms.get(id);
    if (this.compact) {
      // (ProfileLearner would hold an empty profile for such a VM: it predicts nothing either)
      if (!Number.isFinite(timeSec) || !Number.isFinite(cpuMips) || !Number.isFinite(memMiB)) return;
      if (!l) this.vms.set(id, (l = new CpuProfile(this.compact)));
      (l as CpuProfile).add(timeSec, b, cpuMips);
      return;
    }
    if (!l) this.vms.set(id, (l = new ProfileLearner(this.vmOpts)));
    (l as ProfileLearner).add({ timeSec, cpuMips, memMiB });
  }

  /**
   * The cluster's sample; then, at most once per bucket width, drops the VM profiles without a
   * sample for longer than vmForgetAfterSec (an empty one, which predicts nothing, at the first
   * sweep).
   */
  private roundEnd(timeSec: number, cpu: number, mem: number): void {
    this.cluster.add({ timeSec, cpuMips: cpu, memMiB: mem });
    // (after a clock step back, sweeps go on from the new time)
    if (!Number.isFinite(timeSec) || this.forgetAfterSec === Infinity || !(Math.abs(timeSec - this.sweptSec) >= this.cluster.bucketSec)) return;
    this.sweptSec = timeSec;
    for (const [id, l] of this.vms) if (!(timeSec - l.lastSec <= this.forgetAfterSec)) this.vms.delete(id);
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

/** As profile.ts capOf: the capacity a `keep` option means. */
function capOf(keep: number): number {
  return Number.isNaN(keep) || keep === Infinity ? Infinity : Math.max(0, Math.floor(keep));
}
