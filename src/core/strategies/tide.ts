/**
 * Tide's default strategy. Design (docs/tide-policy.md has the full argument):
 *
 * 1. Forecast, not snapshot. Each VM's demand over the next interval is described by a mean
 *    m (half the current value, half the mean of the last `windowSamples`) and a variance σ²
 *    (of those samples). A host's forecast peak is Σm + z·√Σσ²: independent VMs rarely peak
 *    together (statistical multiplexing), so a host full of small noisy VMs needs less
 *    headroom than the sum of their peaks, and one with a single volatile VM needs more.
 * 2. Hysteresis. A host is overloaded only when its forecast peak exceeds its capacity (or it
 *    is saturated now); relief and placement fill hosts only up to `targetUtil`, and
 *    consolidation only up to `consolidateUtil` < targetUtil. A move therefore never creates
 *    the overload that would undo it next round.
 * 3. Migration cost. Relief moves the VMs that fix the overload with the least memory to
 *    copy; consolidation evacuates first the hosts that save the most watts per MiB moved
 *    (least efficient hosts, few small VMs), and only if every VM fits elsewhere.
 * 4. Energy-aware host choice. Consolidation keeps the most efficient hosts (watts per MIPS
 *    at full load) and wakes the most efficient sleeping host when capacity is short.
 * 5. No flapping. VMs migrated within `cooldownSec` are not moved again for consolidation;
 *    every move is checked against the forecast the next round will use.
 *
 * It is a pure function of the snapshot, like every strategy: all it remembers travels in the
 * snapshot (VM histories, last migration times).
 */
import { z } from 'zod';
import { powerAt } from '../model/power.js';
import { ClusterState } from '../model/state.js';
import type { ClusterSnapshot } from '../model/types.js';
import { hardRules, hostUsable, ioFits, memoryFits, notIn } from '../place/filters.js';
import { allHosts, compileSearch, findHost, summariseRejections, type HostFilter, type HostScorer, type Placer } from '../place/placement.js';
import { RuleIndex } from '../place/rules.js';
import { MultiMaxTree, TreeScan } from '../util/maxtree.js';
import { leastAllocated, softRules } from '../place/scorers.js';
import { failClosed } from '../plan/fail-closed.js';
import { orderPlan, type IntendedMove, type IntendedPower } from '../plan/order.js';
import type { HostVerdict, NotMoved, Plan } from '../plan/types.js';
import type { PlanContext, Strategy } from './strategy.js';

/**
 * Resolution of the learned forecast, s: each forecast point is the mean of its 15-minute
 * profile bucket (src/core/predict/profile.ts), so on a ramp the demand late in a bucket is
 * already near the next bucket's level (the office's 08:30 bucket forecast 96 % while 08:35
 * measured 103 %). Relief ahead of a predicted ramp therefore looks one bucket past the lead.
 */
const FORECAST_BUCKET_SEC = 900;

export const tideArgs = z.object({
  /** Relief and placement fill a host's forecast peak up to this share of its CPU. */
  targetUtil: z.number().min(0.1).max(1).default(0.9),
  /** Consolidation fills receivers only up to this share (hysteresis below targetUtil). */
  consolidateUtil: z.number().min(0.1).max(1).default(0.85),
  /** Overload trigger: forecast peak above this share of CPU capacity. */
  overloadUtil: z.number().min(0.1).max(1.5).default(1),
  /** Confidence of the forecast peak, in standard deviations of the summed demand. */
  z: z.number().min(0).max(6).default(2),
  /** Samples of history the forecast looks at. */
  windowSamples: z.number().int().min(1).max(288).default(12),
  /** A VM migrated less than this long ago is not moved again for consolidation, s. */
  cooldownSec: z.number().min(0).default(3600),
  /** Share of a host's disk/network bandwidth placement may use. */
  ioUtil: z.number().min(0.1).max(1).default(0.8),
  /**
   * A host that came on less than this long ago is not emptied again (DPM hysteresis: a woken
   * host stays up for at least this long), s.
   */
  minOnSec: z.number().min(0).default(0),
  /**
   * A host that went off less than this long ago (Host.offSinceSec) is not woken, unless an
   * overload, a maintenance evacuation or a broken hard rule needs room that no powered-on or
   * longer-off host has (DPM hysteresis: a host stays off for at least this long), s.
   */
  minOffSec: z.number().min(0).default(7200),
  /**
   * Migration budget of the cluster: at most this many migrations start per rolling hour,
   * counting those of the last hour (ClusterSnapshot.movesLastHour). Absent: no budget.
   */
  maxMovesPerHour: z.number().int().min(0).optional(),
  /**
   * At most this many migrations of one VM per rolling 24 h (Vm.movesToday), except to
   * evacuate a host in maintenance. Absent: only `cooldownSec` applies.
   */
  maxMovesPerVmPerDay: z.number().int().min(0).optional(),
  /** Empty hosts kept powered on as spares (DPM's "hosts in reserve"). */
  spareHosts: z.number().int().min(0).default(0),
  /** Consolidate (evacuate and power off hosts). */
  consolidate: z.boolean().default(true),
  /** Emit power-off steps for hosts left empty. */
  powerOff: z.boolean().default(true),
  /** Placement scorer: pack onto few hosts (energy) or spread (performance). */
  scorer: z.enum(['pack', 'spread']).default('pack'),
  /** On clusters above `exhaustiveUpTo` hosts, stop consolidating after this many consecutive hosts could not be evacuated (bounds planning time). */
  maxFailedEvacuations: z.number().int().min(1).default(64),
  /**
   * On clusters of more than `exhaustiveUpTo` hosts, placement scores only the first
   * this-many hosts that fit, taken best-fit first (kube-scheduler's "feasible nodes to
   * find"); smaller clusters are searched exhaustively.
   */
  feasibleHosts: z.number().int().min(1).default(8),
  exhaustiveUpTo: z.number().int().min(0).default(1000),
  /**
   * On memory-bound clusters up to `exhaustiveUpTo` hosts, try this many candidate orders
   * for consolidation and keep the best (1 = just the watts-per-MiB order).
   */
  orderings: z.number().int().min(1).max(4).default(1),
  /**
   * How far ahead the snapshot's learned demand forecast (ClusterSnapshot.forecast) is planned
   * against, s: no VM is placed, and no host is left, where the forecast puts the host's peak
   * over the limit within this time; a host whose forecast peak exceeds `overloadUtil` within
   * its wake lead (boot + migration + margin) is relieved now, waking a host if needed. 0:
   * ignore the forecast.
   */
  lookaheadSec: z.number().min(0).default(7200),
  /**
   * Samples whose rising trend is projected two samples ahead in the forecast mean of a VM
   * the learned forecast does not cover (0: no trend).
   */
  trendSamples: z.number().int().min(0).max(288).default(6),
  /** Safety margin of pre-wakes (ahead of a predicted ramp, or of a consolidate window's end), s. */
  prewakeMarginSec: z.number().min(0).default(300),
}).strict();

export type TideArgs = z.output<typeof tideArgs>;

const fmt = (x: number, d = 0): string => x.toFixed(d);

/**
 * -1, 1 or 0 (NaN: 0) as x is below, above or equal to y: in a sort comparator, the same order
 * as `x - y` (the sign of a difference of doubles is that of the comparison, and NaN is falsy),
 * but a small integer — a comparator's double result is boxed into a new heap number on every
 * call from the engine's sort (megabytes of garbage per pass at 10,000 hosts).
 */
const cmp = (x: number, y: number): number => (x < y ? -1 : x > y ? 1 : 0);

/**
 * Mean and variance (MIPS, MIPS²) of one VM's next-interval CPU demand from its last samples
 * `hist` (oldest first), followed by `extra` more samples equal to the current demand.
 */
function forecastOne(hist: ArrayLike<number>, extra: number, cur: number, size: number, window: number, trendSamples: number, learned: boolean, out: Float64Array): void {
  const n = hist.length + extra;
  const hn = hist.length;
  const len = Math.min(window, n);
  if (len === 0) {
    out[0] = cur;
    out[1] = 0;
    return;
  }
  // Sample k is hist[k] for k < hn, the current demand past the history (`extra` more
  // samples). Each sum runs over the history part, then over the extra part: the same additions
  // in the same order as one loop choosing per k, but no value that is sometimes a typed-array
  // element and sometimes `cur` — V8 boxed every such value into a new heap number (~170 MB of
  // garbage per 10,000-host pass).
  const k0 = n - len;
  const kx = k0 > hn ? k0 : hn;
  let s = 0;
  for (let k = k0; k < hn; k++) s += hist[k]!;
  for (let k = kx; k < n; k++) s += cur;
  const mu = s / len;
  let ss = 0;
  for (let k = k0; k < hn; k++) {
    const d = hist[k]! - mu;
    ss += d * d;
  }
  for (let k = kx; k < n; k++) {
    const d = cur - mu;
    ss += d * d;
  }
  let mean = Math.min(size, 0.5 * cur + 0.5 * mu);
  // A rising trend the learned profile does not know about (no profile yet: a first day, a
  // new VM): project the last `trendSamples` samples' least-squares slope two samples ahead
  // (the next round plus the time to act), so a ramp is relieved before it saturates.
  const tn = Math.min(trendSamples, n);
  if (tn >= 3 && !learned) {
    let sx = 0;
    let sy = 0;
    let sxy = 0;
    let sxx = 0;
    // (sample n − tn + i: from the history while that index is below hn, then the current
    // demand; two loops for the reason above)
    const ih = hn - (n - tn);
    let i = 0;
    for (; i < tn && i < ih; i++) {
      const y = hist[n - tn + i]!;
      sx += i;
      sy += y;
      sxy += i * y;
      sxx += i * i;
    }
    for (; i < tn; i++) {
      const y = cur;
      sx += i;
      sy += y;
      sxy += i * y;
      sxx += i * i;
    }
    const slope = (tn * sxy - sx * sy) / (tn * sxx - sx * sx);
    if (slope > 0) mean = Math.min(size, Math.max(mean, cur + 2 * slope));
  }
  // A short history says little: assume at least the spread a uniform draw over
  // [0, 2·mean] would have, until enough samples are seen.
  const floor = len < window ? (mean * mean) / 3 : 0;
  out[0] = mean;
  out[1] = Math.max(ss / len, floor);
}

/**
 * Per-VM forecast: mean and variance of the next interval's CPU demand, MIPS and MIPS², and a
 * guard pair for receivers — the larger of this forecast and the one the next round will make
 * if demand stays as it is now (one more sample equal to the current demand). A VM is placed
 * only where the guard fits, so that the next round, seeing the same demand, does not find
 * its new host overloaded and move it (or wake a host) again: the forecast's trend term and
 * short-history floor can change with one more sample.
 */
function forecast(snapshot: ClusterSnapshot, window: number, trendSamples = 0): { mean: Float64Array; variance: Float64Array; guardMean: Float64Array; guardVariance: Float64Array } {
  const learned = snapshot.forecast?.vms;
  const n = snapshot.vms.length;
  const mean = new Float64Array(n);
  const variance = new Float64Array(n);
  const guardMean = new Float64Array(n);
  const guardVariance = new Float64Array(n);
  const f0 = new Float64Array(2);
  const f1 = new Float64Array(2);
  for (let v = 0; v < n; v++) {
    const vm = snapshot.vms[v]!;
    const size = vm.vcpus * vm.mipsPerVcpu;
    const known = !!learned?.[vm.id];
    forecastOne(vm.cpuHistoryMips, 0, vm.demand.cpuMips, size, window, trendSamples, known, f0);
    const m0 = f0[0]!;
    const q0 = f0[1]!;
    if (vm.cpuHistoryMips.length === 0) f1.set(f0);
    else forecastOne(vm.cpuHistoryMips, 1, vm.demand.cpuMips, size, window, trendSamples, known, f1);
    const m1 = f1[0]!;
    const q1 = f1[1]!;
    mean[v] = m0;
    variance[v] = q0;
    guardMean[v] = Math.max(m0, m1);
    guardVariance[v] = Math.max(q0, q1);
  }
  return { mean, variance, guardMean, guardVariance };
}

const MEAN = 0;
const VAR = 1;

/**
 * Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9), for
 * turning a forecast's high quantile into a standard deviation.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p <= 0 ? -Infinity : Infinity;
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo || p > 1 - lo) {
    const q = Math.sqrt(-2 * Math.log(p < lo ? p : 1 - p));
    const x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
    return p < lo ? x : -x;
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/**
 * Per-VM columns of the learned forecast within `lookaheadSec`: for each forecast point k, the
 * VM's expected CPU and the variance implied by its high quantile ((high − expected) ÷ z_q)².
 * A VM without a forecast keeps its recent-sample mean and variance at every point.
 */
function aheadColumns(snapshot: ClusterSnapshot, args: TideArgs, now: number, mean: Float64Array, variance: Float64Array): { cols: Float64Array[]; at: number[] } {
  const f = snapshot.forecast;
  if (!f?.vms || args.lookaheadSec <= 0) return { cols: [], at: [] };
  const zq = Math.max(0.5, normalQuantile(f.quantile));
  const cols: Float64Array[] = [];
  const at: number[] = [];
  f.points.forEach((pt, k) => {
    if (!(pt.atSec > now && pt.atSec <= now + args.lookaheadSec)) return;
    const m = new Float64Array(snapshot.vms.length);
    const q = new Float64Array(snapshot.vms.length);
    snapshot.vms.forEach((vm, v) => {
      const vf = f.vms![vm.id];
      const e = vf?.cpuMips[k];
      const hi = vf?.cpuMipsHigh[k];
      if (e === undefined || hi === undefined || !Number.isFinite(e) || !Number.isFinite(hi)) {
        m[v] = mean[v]!;
        q[v] = variance[v]!;
        return;
      }
      m[v] = Math.min(vm.vcpus * vm.mipsPerVcpu, Math.max(0, e));
      const sd = Math.max(0, hi - e) / zq;
      q[v] = sd * sd;
    });
    cols.push(m, q);
    at.push(pt.atSec);
  });
  return { cols, at };
}

/**
 * The schedule window in the snapshot overrides the arguments that differ between quiet and
 * busy hours (one code path; pack vs spread is the scorer): balance spreads and neither
 * consolidates nor powers off (relief, rule fixes and wakes still run); consolidate uses the
 * arguments as given. Blackout is handled before any planning (planTide).
 */
function windowArgs(args: TideArgs, window: ClusterSnapshot['window']): TideArgs {
  if (window?.kind === 'balance') return { ...args, consolidate: false, powerOff: false, scorer: 'spread' };
  return args;
}

/**
 * A blackout window: no migrations, no placements, no power actions, not even evacuation of
 * hosts in maintenance or relief of overloaded hosts (a blackout means no moves at all, e.g.
 * while backups read the disks); every host gets a verdict saying why.
 */
function blackoutPlan(snapshot: ClusterSnapshot, window: NonNullable<ClusterSnapshot['window']>): Plan {
  const until = window.untilSec === null ? 'further notice' : `t=${window.untilSec}`;
  const reason = `blackout window ${window.name} until ${until}: no moves and no power actions`;
  const hosts: HostVerdict[] = snapshot.hosts.map((h) => ({ host: h.id, class: h.powerState === 'unknown' ? 'unknown' : h.maintenance ? 'maintenance' : h.powerState === 'off' ? 'off' : 'normal', reason, by: 'tide:schedule' }));
  const notMoved: NotMoved[] = [];
  const inMaintenance = new Set(snapshot.hosts.filter((h) => h.maintenance).map((h) => h.id));
  for (const vm of snapshot.vms) {
    if (vm.host === null || inMaintenance.has(vm.host)) notMoved.push({ vm: vm.id, host: vm.host, code: 'blackout', reason, by: 'tide:schedule' });
  }
  return { policy: 'tide', time: snapshot.time, steps: [], hosts, notMoved };
}

/**
 * Estimated time to live-migrate `memMiB` off `host`, s: memory ÷ half the link (the other half
 * for dirty-page re-sends and guest traffic), the simulator's own assumption.
 */
export function migrationSec(memMiB: number, host: { readonly netBytesPerSec: number }): number {
  return host.netBytesPerSec > 0 ? (memMiB * 1048576) / (host.netBytesPerSec / 2) : 0;
}

/** What a pre-wake before a consolidate window's end decided (see prewakeAtEdge). */
export interface EdgePrewake {
  /** End of the consolidate window, s. */
  readonly edgeSec: number;
  /** boot + migrations + margin, s: hosts are woken from edgeSec − leadSec on. */
  readonly leadSec: number;
  readonly bootSec: number;
  readonly migrateSec: number;
  /** Sleeping hosts to wake now (snapshot host ids), cheapest first. */
  readonly wake: readonly string[];
}

/**
 * Pre-wake at the end of a consolidate window (issue 7, item 2): the hosts the next window
 * needs are powered on early enough that boot and the migrations that spread the VMs onto
 * them finish by the edge. Lead = the slowest boot among the usable hosts + the time to copy
 * the memory one spread-out host would receive (all VMs' memory ÷ usable hosts, over half the
 * slowest link, as `migrationSec`) + `prewakeMarginSec`. Null unless a consolidate window ends
 * within that lead. Which hosts: with a learned forecast reaching past the edge, the cheapest
 * sleeping hosts until the powered-on capacity holds the forecast's high quantile (at
 * `targetUtil`) and the VMs' memory over `lookaheadSec` after the edge; without one, every
 * sleeping usable host (the balance window is for performance). Inside the lead nothing is
 * consolidated or powered off, so the woken hosts stay on.
 */
export function prewakeAtEdge(snapshot: ClusterSnapshot, args: TideArgs, now: number): EdgePrewake | null {
  const w = snapshot.window;
  if (w?.kind !== 'consolidate' || w.untilSec === null || now >= w.untilSec) return null;
  const usable = snapshot.hosts.filter((h) => !h.maintenance && !h.excluded && h.powerState !== 'unknown');
  if (usable.length === 0) return null;
  const bootSec = Math.max(...usable.map((h) => h.power.bootSec));
  let memMiB = 0;
  for (const vm of snapshot.vms) memMiB += vm.memMiB;
  const slowest = usable.reduce((a, h) => (h.netBytesPerSec < a.netBytesPerSec ? h : a));
  const migrateSec = migrationSec(memMiB / usable.length, slowest);
  const leadSec = bootSec + migrateSec + args.prewakeMarginSec;
  const edgeSec = w.untilSec;
  if (edgeSec - leadSec > now) return null;
  const cap = (h: ClusterSnapshot['hosts'][number]): number => h.cpuCores * h.mipsPerCore;
  const sleeping = usable
    .filter((h) => (h.powerState === 'off' || h.powerState === 'standby') && h.wakeRefused === undefined)
    .sort((a, b) => powerAt(a.power, 0) / cap(a) - powerAt(b.power, 0) / cap(b) || a.id.localeCompare(b.id));
  const after = args.lookaheadSec > 0 ? (snapshot.forecast?.points ?? []).filter((p) => p.atSec >= edgeSec && p.atSec <= edgeSec + args.lookaheadSec) : [];
  let wake = sleeping;
  if (after.length > 0) {
    const needCpu = Math.max(...after.map((p) => p.cpuMipsHigh)) / args.targetUtil;
    let needMem = 0;
    for (const vm of snapshot.vms) needMem += vm.memReservedMiB;
    let haveCpu = 0;
    let haveMem = 0;
    for (const h of usable) {
      if (h.powerState !== 'on' && h.powerState !== 'waking') continue;
      haveCpu += cap(h);
      haveMem += h.memMiB;
    }
    wake = [];
    for (const h of sleeping) {
      if (haveCpu >= needCpu && haveMem >= needMem) break;
      wake.push(h);
      haveCpu += cap(h);
      haveMem += h.memMiB;
    }
  }
  return { edgeSec, leadSec, bootSec, migrateSec, wake: wake.map((h) => h.id) };
}

export function planTide(input: ClusterSnapshot, givenArgs: TideArgs, ctx: PlanContext): Plan {
  if (input.window?.kind === 'blackout') return blackoutPlan(input, input.window);
  const edge = prewakeAtEdge(input, givenArgs, ctx.now);
  // Inside the pre-wake lead of a consolidate window's end: no consolidation, no power-off.
  const args = edge ? { ...windowArgs(givenArgs, input.window), consolidate: false, powerOff: false } : windowArgs(givenArgs, input.window);
  // Unknown hosts and unmeasured VMs are left alone (see fail-closed.ts).
  const blind = failClosed(input, 'tide');
  const snapshot = blind.snapshot;
  const { mean, variance, guardMean, guardVariance } = forecast(snapshot, args.windowSamples, args.trendSamples);
  // The learned forecast (if any): columns 2k, 2k+1 = expected CPU and variance at point k.
  const ahead = aheadColumns(snapshot, args, ctx.now, mean, variance);
  // Where the learned profile knows a VM, its spread over the next minutes replaces the spread
  // of the last samples: a ramp or a step the profile expected (the working day starting, a
  // batch job's hour) is a level change, not noise, and must not look like an overload.
  if (ahead.cols.length > 0) {
    const f = snapshot.forecast!.vms!;
    for (let v = 0; v < snapshot.vms.length; v++) {
      if (!f[snapshot.vms[v]!.id]) continue;
      variance[v] = Math.min(variance[v]!, ahead.cols[1]![v]!);
      guardVariance[v] = Math.min(guardVariance[v]!, ahead.cols[1]![v]!);
    }
  }
  const s = new ClusterState(snapshot, { historyWindow: 1, vmColumns: [mean, variance, ...ahead.cols, guardMean, guardVariance] });
  const GUARD = 2 + ahead.cols.length;
  const start = s.mark();
  const rules = new RuleIndex(s);
  const nh = s.hosts.length;
  const z2 = args.z;
  const label = 'tide';
  const verdicts: HostVerdict[] = [...blind.verdicts];
  // Off hosts whose wake failed recently are never woken (the placement filter refuses them): say so.
  for (const h of snapshot.hosts) {
    if (h.wakeRefused !== undefined && h.powerState !== 'on' && h.powerState !== 'unknown') verdicts.push({ host: h.id, class: 'off', reason: `${h.powerState}, not woken: ${h.wakeRefused}`, by: label });
  }
  const notMoved: NotMoved[] = [];
  const raw: { vm: number; from: number; to: number; reason: string; by: string }[] = [];

  /** Forecast peak of host h, MIPS, optionally with VM v added. */
  const peak = (h: number, v = -1): number => {
    const m = s.columnSum(MEAN, h) + (v >= 0 ? mean[v]! : 0);
    const q = s.columnSum(VAR, h) + (v >= 0 ? variance[v]! : 0);
    return m + z2 * Math.sqrt(Math.max(0, q));
  };
  /** Guarded forecast peak of host h with VM v added, MIPS: what receivers are checked against (see forecast). */
  const guardPeak = (h: number, v: number): number => {
    const m = s.columnSum(GUARD, h) + guardMean[v]!;
    const q = s.columnSum(GUARD + 1, h) + guardVariance[v]!;
    return m + z2 * Math.sqrt(Math.max(0, q));
  };
  const aheadCol = (k: number): Float64Array => ahead.cols[k]!;
  /**
   * Learned-forecast peak of host h within `withinSec` from now, MIPS, optionally with VM v
   * added (sign 1) or removed (sign −1): the worst forecast point; 0 without a forecast.
   */
  const aheadPeak = (h: number, v = -1, withinSec = args.lookaheadSec, sign = 1): number => {
    let worst = 0;
    for (let k = 0; k < ahead.at.length; k++) {
      if (ahead.at[k]! > ctx.now + withinSec) break;
      const m = s.columnSum(2 + 2 * k, h) + (v >= 0 ? sign * aheadCol(2 * k)[v]! : 0);
      const q = s.columnSum(3 + 2 * k, h) + (v >= 0 ? sign * aheadCol(2 * k + 1)[v]! : 0);
      worst = Math.max(worst, m + z2 * Math.sqrt(Math.max(0, q)));
    }
    return worst;
  };
  /** When the worst forecast point of host h within `withinSec` lies, s (NaN: none). */
  const aheadWhen = (h: number, withinSec: number): number => {
    let worst = -1;
    let when = NaN;
    for (let k = 0; k < ahead.at.length; k++) {
      if (ahead.at[k]! > ctx.now + withinSec) break;
      const p = s.columnSum(2 + 2 * k, h) + z2 * Math.sqrt(Math.max(0, s.columnSum(3 + 2 * k, h)));
      if (p > worst) {
        worst = p;
        when = ahead.at[k]!;
      }
    }
    return when;
  };

  // Filters: forecast fit below a utilisation limit; each vCPU's likely peak fits a core.
  // Current demand must fit too: a forecast below the present value must not hide a host
  // that would saturate the moment the VM lands.
  const fitsBelow = (limit: number, name: string): HostFilter => ({
    name,
    check: (st, v, h) => {
      const cap = st.capMips[h]!;
      if (st.reqMips[h]! + st.vmCpuMips[v]! > limit * cap) return 'demand-over-limit';
      // guardPeak(h, v), written out: this check runs ~900,000 times a pass at 10,000 hosts,
      // and a call returning a double that the engine does not inline allocates a heap number
      const gm = s.columnSum(GUARD, h) + guardMean[v]!;
      const gq = s.columnSum(GUARD + 1, h) + guardVariance[v]!;
      if (gm + z2 * Math.sqrt(Math.max(0, gq)) > limit * cap) return 'forecast-over-limit';
      return ahead.at.length > 0 && aheadPeak(h, v) > limit * cap ? 'predicted-over-limit' : null;
    },
    explain: (st, v, h, code) => code === 'demand-over-limit'
      ? `${st.hosts[h]!.id}: demand now with ${st.vms[v]!.id} ${fmt(st.reqMips[h]! + st.vms[v]!.demand.cpuMips)} MIPS > ${fmt(limit * 100)} % of ${fmt(st.capMips[h]!)}`
      : code === 'predicted-over-limit'
        ? `${st.hosts[h]!.id}: learned forecast within ${fmt(args.lookaheadSec / 60)} min with ${st.vms[v]!.id} peaks at ${fmt(aheadPeak(h, v))} MIPS > ${fmt(limit * 100)} % of ${fmt(st.capMips[h]!)}`
        : `${st.hosts[h]!.id}: forecast peak with ${st.vms[v]!.id} ${fmt(guardPeak(h, v))} MIPS > ${fmt(limit * 100)} % of ${fmt(st.capMips[h]!)}`,
  });
  // A vCPU can never run faster than one host core: a VM whose vCPUs are faster than this
  // host's cores would be capped as soon as it gets busy, so it only goes where they fit.
  const coreFits: HostFilter = {
    name: 'core',
    check: (st, v, h) => (st.vmMipsPerVcpu[v]! > st.hostMipsPerCore[h]! ? 'core-too-small' : null),
    explain: (st, v, h) => `${st.hosts[h]!.id}: one core gives ${fmt(st.hosts[h]!.mipsPerCore)} MIPS, a vCPU of ${st.vms[v]!.id} may use ${fmt(st.vms[v]!.mipsPerVcpu)}`,
  };
  // Best fit weighs each resource by how scarce it is cluster-wide (its share in use), so
  // packing tightens the dimension that decides how many hosts are needed: memory on
  // memory-bound clusters, CPU on CPU-bound ones.
  let cpuUse = 0;
  let cpuCap = 0;
  let memUse = 0;
  let memCap = 0;
  for (let h = 0; h < nh; h++) {
    if (s.powerState(h) !== 'on') continue;
    cpuUse += s.columnSum(MEAN, h);
    cpuCap += s.capMips[h]!;
    memUse += s.memReservedMiB[h]!;
    memCap += s.hosts[h]!.memMiB;
  }
  const wCpu = cpuCap > 0 ? cpuUse / cpuCap : 1;
  const wMem = memCap > 0 ? memUse / memCap : 0;
  const avgCap = cpuCap / Math.max(1, nh);
  const avgMem = memCap / Math.max(1, nh);
  /**
   * Energy cost of a host per unit of useful capacity: its draw at the cluster's current CPU
   * utilisation divided by its capacity in the scarce resource. On a CPU-bound cluster that is
   * watts per MIPS (faster, efficient servers win); on a memory-bound one the idle draw per
   * GiB decides. Lower is better: keep and wake the cheapest, empty the dearest first.
   */
  const uCluster = cpuCap > 0 ? Math.min(1, cpuUse / cpuCap) : 0;
  const wpm = Float64Array.from(s.hosts, (host, h) => {
    const capacity = (wCpu * s.capMips[h]!) / (avgCap || 1) + (wMem * host.memMiB) / (avgMem || 1);
    return powerAt(host.power, uCluster) / (capacity || 1);
  });
  const bestWpm = Math.min(...wpm);
  /**
   * Each VM's size for first-fit-decreasing, in the same scarcity-weighted terms as packing
   * (computed once: its inputs do not change while planning).
   */
  const sizeOf = new Float64Array(s.vms.length);
  for (let v = 0; v < sizeOf.length; v++) sizeOf[v] = wCpu * (mean[v]! / (avgCap || 1)) + wMem * (s.vmMemReservedMiB[v]! / (avgMem || 1));
  const packScorer: HostScorer = {
    name: 'pack-forecast',
    score: (st, v, h) => {
      // peak(h, v), written out (see fitsBelow)
      const pm = s.columnSum(MEAN, h) + mean[v]!;
      const pq = s.columnSum(VAR, h) + variance[v]!;
      const cpu = Math.min(1, (pm + z2 * Math.sqrt(Math.max(0, pq))) / st.capMips[h]!);
      const host = st.hosts[h]!;
      const mem = host.memMiB > 0 ? Math.min(1, (st.memReservedMiB[h]! + st.vmMemReservedMiB[v]!) / host.memMiB) : 0;
      return (100 * (wCpu * cpu + wMem * mem)) / (wCpu + wMem || 1);
    },
  };
  const efficiencyScorer: HostScorer = { name: 'efficiency', score: (_st, _v, h) => (100 * bestWpm) / wpm[h]! };
  const placementScorer = args.scorer === 'pack' ? packScorer : leastAllocated;

  const excluded = new Uint8Array(nh);
  // Filters run in order and stop at the first rejection: the most selective go first. Rule
  // filters and scorers are left out when the snapshot has no rules of that strength.
  const hasHard = s.rules.some((r) => r.strength === 'hard');
  const hasSoft = s.rules.some((r) => r.strength === 'soft');
  const placer = (limit: number, allowWake: boolean): Placer => ({
    filters: [
      notIn(excluded, 'excluded-this-round', 'overloaded or being evacuated this round'),
      fitsBelow(limit, `forecast≤${limit}`),
      memoryFits,
      coreFits,
      ioFits(args.ioUtil),
      hostUsable({ allowWake }),
      ...(hasHard ? [hardRules(rules)] : []),
    ],
    scorers: [
      { scorer: allowWake ? efficiencyScorer : placementScorer, weight: 4 },
      { scorer: allowWake ? placementScorer : efficiencyScorer, weight: 1 },
      ...(hasSoft ? [{ scorer: softRules(rules), weight: 1 }] : []),
    ],
  });
  const candidates = (): number[] => (ctx.explain ? allHosts(s) : s.placementCandidates());
  const bound = nh > args.exhaustiveUpTo && !ctx.explain ? args.feasibleHosts : Infinity;
  /** How full a host is on the packing measure: mean of forecast-CPU and memory shares. */
  const fullness = (h: number): number => {
    const host = s.hosts[h]!;
    const mem = host.memMiB > 0 ? Math.min(1, s.memReservedMiB[h]! / host.memMiB) : 0;
    return (Math.min(1, peak(h) / s.capMips[h]!) + mem) / 2;
  };
  // Active hosts in best-fit order (fullest first for packing, emptiest first for spreading),
  // refreshed at the start of each phase; with `bound`, placement looks at the front only.
  let onSorted: number[] = [];
  let offList: number[] = [];
  const refresh = (): void => {
    const all = candidates();
    offList = all.filter((h) => s.powerState(h) !== 'on');
    const on = all.filter((h) => s.powerState(h) === 'on');
    const key = new Float64Array(nh);
    for (const h of on) key[h] = fullness(h);
    const sign = args.scorer === 'pack' ? -1 : 1;
    onSorted = on.sort((a, b) => (sign < 0 ? cmp(key[b]!, key[a]!) : cmp(key[a]!, key[b]!)) || a - b);
  };
  const reliefOn = placer(args.targetUtil, false);
  const reliefWake = placer(args.targetUtil, true);

  /** A host that went off less than `minOffSec` ago (DPM hysteresis). */
  const recentlyOff = (h: number): boolean => {
    const off = s.hosts[h]!.offSinceSec;
    return args.minOffSec > 0 && off !== undefined && ctx.now - off < args.minOffSec;
  };
  /** Hosts woken before their `minOffSec` because nothing else could take a VM that had to move. */
  const wokenEarly = new Set<number>();
  /** Places VM v (already off its host) on an active host, else wakes one; -1 if none fits. */
  const place = (v: number): { host: number; rejections: ReturnType<typeof findHost>['rejections'] } => {
    const a = findHost(s, reliefOn, v, onSorted, ctx.explain, bound);
    if (a.host >= 0) return { host: a.host, rejections: [] };
    // DPM hysteresis: hosts off for less than minOffSec are woken only when no other can take v.
    // offList keeps one host per class of identical empty hosts; their off times differ, so
    // with minOffSec every off host is looked at (only for VMs that need a wake: rare).
    const off = args.minOffSec > 0 ? allHosts(s).filter((h) => s.powerState(h) !== 'on') : offList;
    const rested = off.filter((h) => !recentlyOff(h));
    let b = findHost(s, reliefWake, v, rested, ctx.explain);
    if (b.host < 0 && rested.length < off.length) {
      const early = findHost(s, reliefWake, v, off.filter(recentlyOff), ctx.explain);
      if (early.host >= 0) wokenEarly.add(early.host);
      b = { ...early, rejections: [...b.rejections, ...early.rejections] };
    }
    // The woken host counts as on from here: later decisions may use or empty it.
    if (b.host >= 0) {
      s.setPowerState(b.host, 'on');
      offList = offList.filter((h) => h !== b.host);
      onSorted.unshift(b.host);
    }
    return { host: b.host, rejections: [...a.rejections, ...b.rejections] };
  };

  /**
   * Which filter rejected which host, for a VM that could not be placed. With `explain` the
   * search already recorded it; otherwise it is worked out now, over every host (rare: only
   * for VMs Tide wanted to move and could not).
   */
  const whyNot = (v: number, seen: ReturnType<typeof findHost>['rejections']) =>
    summariseRejections(ctx.explain ? seen : findHost(s, reliefWake, v, allHosts(s), true).rejections);

  const inCooldown = (v: number): boolean => {
    const t = s.vms[v]!.lastMigratedAt;
    return t !== undefined && ctx.now - t < args.cooldownSec;
  };

  // Migration budget (anti-flapping). Moves are granted in the order Tide decides them, which
  // is their order of value: hard-rule fixes, maintenance evacuation and overload relief, then
  // consolidation best-watts-saved-per-MiB first, a host's evacuation all or nothing. Moves
  // the budget refuses are listed in notMoved with code 'budget'.
  const HOUR_SEC = 3600;
  const DAY_SEC = 86400;
  // (counted only with a budget: without one it is never used, and counting reads every VM object)
  const movedLastHour = args.maxMovesPerHour === undefined ? 0 : snapshot.movesLastHour
    ?? snapshot.vms.reduce((n, vm) => n + (vm.lastMigratedAt !== undefined && ctx.now - vm.lastMigratedAt < HOUR_SEC ? 1 : 0), 0);
  /** Migrations this plan may still start (raw moves are counted: a conservative bound). */
  let budget = args.maxMovesPerHour === undefined ? Infinity : Math.max(0, args.maxMovesPerHour - movedLastHour);
  const budgetReason = (): string => `migration budget: ${args.maxMovesPerHour ?? 0} per hour, ${movedLastHour} started in the last hour and the rest of this plan's share is taken by more valuable moves`;
  /** Moves of VM v in the last 24 h: the snapshot's count, or at least 1 if it moved within 24 h. */
  const movesToday = (v: number): number => {
    const vm = s.vms[v]!;
    const recent = vm.lastMigratedAt !== undefined && ctx.now - vm.lastMigratedAt < DAY_SEC ? 1 : 0;
    return Math.max(vm.movesToday ?? 0, recent);
  };
  const vmCapped = (v: number): boolean => args.maxMovesPerVmPerDay !== undefined && movesToday(v) >= args.maxMovesPerVmPerDay;
  const cappedReason = (v: number): string => `${s.vms[v]!.id} already moved ${movesToday(v)} time(s) in 24 h (maxMovesPerVmPerDay ${args.maxMovesPerVmPerDay ?? 0})`;
  /** Budget refusals of consolidation, by VM (the passes may meet the same host again). */
  const budgetHeld = new Map<number, NotMoved>();

  // 0. Hard rules already broken (a VM on a host its pin excludes, anti-affine VMs together,
  //    affine VMs apart): move the offending VM to a host where the rule holds. Run again
  //    after consolidation, which may have made room.
  const unfixable = new Map<number, NotMoved>();
  const fixRules = (): void => {
    // (no rules: no VM has one, nothing below could happen — and the loop would read 100,000s
    // of VM objects for nothing, on every pass)
    if (s.rules.length === 0) return;
    for (let v = 0; v < s.vms.length; v++) {
      const h = s.hostOf[v]!;
      if (h < 0 || !s.vms[v]!.migratable || !rules.hasRules(v)) continue;
      const broken = rules.brokenHere(s, v);
      if (!broken) {
        unfixable.delete(v);
        continue;
      }
      if (budget < 1 || vmCapped(v)) {
        unfixable.set(v, { vm: s.vms[v]!.id, host: s.hosts[h]!.id, code: 'budget', reason: `${s.vms[v]!.id} breaks rule ${broken.id} but is not moved: ${budget < 1 ? budgetReason() : cappedReason(v)}`, by: label });
        continue;
      }
      s.move(v, -1);
      const r = place(v);
      if (r.host < 0) {
        s.move(v, h);
        unfixable.set(v, {
          vm: s.vms[v]!.id, host: s.hosts[h]!.id, code: 'rule-unfixable',
          reason: `${s.vms[v]!.id} breaks rule ${broken.id} on ${s.hosts[h]!.id} but no host satisfies it and has room`,
          by: label, rejections: whyNot(v, r.rejections),
        });
        continue;
      }
      unfixable.delete(v);
      s.move(v, r.host);
      budget--;
      raw.push({ vm: v, from: h, to: r.host, by: 'tide:rules', reason: `${s.vms[v]!.id} broke rule ${broken.id} on ${s.hosts[h]!.id}; ${s.hosts[r.host]!.id} satisfies it` });
    }
  };
  refresh();
  fixRules();

  // Pre-wake lead for a host's predicted overload: the slowest boot among the sleeping hosts
  // that may have to take its VMs, plus copying its largest VM, plus the margin. A forecast
  // peak further ahead than that is not acted on yet (waking earlier only burns power).
  let maxBootSec = 0;
  for (let h = 0; h < nh; h++) if (s.powerState(h) !== 'on' && s.powerState(h) !== 'unknown') maxBootSec = Math.max(maxBootSec, s.hosts[h]!.power.bootSec);
  const leadSec = (h: number): number => {
    let mem = 0;
    for (const v of s.vmsOn(h)) mem = Math.max(mem, s.vms[v]!.memMiB);
    return maxBootSec + migrationSec(mem, s.hosts[h]!) + args.prewakeMarginSec + FORECAST_BUCKET_SEC;
  };
  const leadOf = new Float64Array(nh);
  /** Hosts relieved only because of a predicted ramp (not overloaded on recent samples). */
  const predictedOnly = new Set<number>();
  /** Hosts that receive a VM relieved ahead of a predicted ramp. */
  const aheadTargets = new Set<number>();

  // 1. Overload (and maintenance): relieve each host with the cheapest set of moves.
  const overloaded: number[] = [];
  for (let h = 0; h < nh; h++) {
    const host = s.hosts[h]!;
    if (host.excluded || s.isEmpty(h) || blind.unknownHost[h]) continue;
    if (host.maintenance) {
      overloaded.push(h);
      excluded[h] = 1;
      verdicts.push({ host: host.id, class: 'maintenance', reason: `in maintenance: ${s.vmsOn(h).length} VM(s) to move away`, by: label });
      continue;
    }
    // Its load includes a guess (a VM at full size, never measured): no relief on that.
    if (blind.unmeasured[h]) continue;
    const cap = s.capMips[h]!;
    const p = peak(h);
    const now = s.reqMips[h]!;
    leadOf[h] = ahead.at.length > 0 ? leadSec(h) : 0;
    const pa = ahead.at.length > 0 ? aheadPeak(h, -1, leadOf[h]!) : 0;
    if (p > args.overloadUtil * cap || now > cap || pa > args.overloadUtil * cap) {
      if (p <= args.overloadUtil * cap && now <= cap) predictedOnly.add(h);
      overloaded.push(h);
      excluded[h] = 1;
      verdicts.push({
        host: host.id, class: 'overloaded', by: label,
        reason: now > cap
          ? `saturated now: demand ${fmt(now)} MIPS > capacity ${fmt(cap)}`
          : p > args.overloadUtil * cap
            ? `forecast peak ${fmt(p)} MIPS (${fmt((100 * p) / cap)} %) > ${fmt(args.overloadUtil * 100)} % of ${fmt(cap)}`
            : `predicted ramp: learned forecast peaks at ${fmt(pa)} MIPS (${fmt((100 * pa) / cap)} %) at t=${fmt(aheadWhen(h, leadOf[h]!))}, within the wake lead ${fmt(leadOf[h]!)} s (boot + migration + margin + one forecast bucket); relieved ahead`,
      });
    }
  }
  const stuck = new Map<number, NotMoved>();
  /**
   * How far ahead a relief makes room, s: for a host relieved ahead of a predicted ramp, the
   * ramp's whole lookahead, not only the lead — relieving just enough for the next minutes
   * chases the ramp with one move per round and leaves the host near 100 % while it climbs
   * (office seed 2, first acting morning: 97 % forecast 96 %, then 104 % measured).
   */
  const reliefSpan = (h: number): number => (predictedOnly.has(h) ? args.lookaheadSec : leadOf[h]!);
  const relieve = (h: number): void => {
    stuck.delete(h);
    const host = s.hosts[h]!;
    const cap = s.capMips[h]!;
    const goal = args.targetUtil * cap;
    for (;;) {
      // Relief never picks a VM whose usage is a guess; maintenance moves every VM.
      // Per-VM daily cap: a VM that moved often today stays, except off a host in maintenance.
      const movable = s.vmsOn(h).filter((v) => s.vms[v]!.migratable && (host.maintenance || s.vms[v]!.usage !== 'unknown'));
      // A VM in cooldown moves for relief only when the host is saturated now: it has just come
      // here, and moving it on a forecast alone would undo a move within its cooldown.
      const saturatedNow = s.reqMips[h]! > cap;
      const vms = host.maintenance ? movable : movable.filter((v) => !vmCapped(v) && (saturatedNow || !inCooldown(v)));
      const done = host.maintenance ? s.isEmpty(h) : peak(h) <= goal && s.reqMips[h]! <= cap && aheadPeak(h, -1, reliefSpan(h)) <= goal;
      if (done || movable.length === 0) break;
      if (vms.length === 0 || budget < 1) {
        const v = vms[0] ?? movable[0]!;
        stuck.set(h, {
          vm: s.vms[v]!.id, host: host.id, code: budget < 1 || vmCapped(v) ? 'budget' : 'cooldown', by: label,
          reason: `${host.id} is ${host.maintenance ? 'in maintenance' : 'overloaded'} but no move is left: ${budget < 1 ? budgetReason() : vmCapped(v) ? `every movable VM is at its daily cap (${cappedReason(v)})` : `every movable VM moved less than cooldownSec ${fmt(args.cooldownSec)} s ago and the host is not saturated now`}`,
        });
        break;
      }
      // The VM whose removal alone brings the host under its goal with the least memory to
      // copy; failing that, the one removing the most forecast load per MiB moved.
      let pick = -1;
      let pickCost = Infinity;
      if (host.maintenance) {
        for (const v of vms) {
          if (s.vms[v]!.memMiB < pickCost) {
            pick = v;
            pickCost = s.vms[v]!.memMiB;
          }
        }
      }
      // Relief order: the VMs whose removal alone brings the host under its goal, least memory
      // to copy first; then the others, most forecast load removed per MiB first. The first of
      // them that a powered-on host can take moves; only when none can is a host woken (for
      // the first in that order): waking costs a boot and power, another VM may need neither.
      let onHost = -1;
      if (!host.maintenance) {
        const m = s.columnSum(MEAN, h);
        const q = s.columnSum(VAR, h);
        const worst = Math.max(peak(h), aheadPeak(h, -1, reliefSpan(h)));
        const ranked = vms.map((v) => {
          const after = Math.max(m - mean[v]! + z2 * Math.sqrt(Math.max(0, q - variance[v]!)), aheadPeak(h, v, reliefSpan(h), -1));
          const nowAfter = s.reqMips[h]! - s.vms[v]!.demand.cpuMips;
          const cost = s.vms[v]!.memMiB + (inCooldown(v) ? 1e6 : 0);
          const fixes = after <= goal && nowAfter <= cap;
          return { v, fixes, key: fixes ? cost : -(worst - after) / cost };
        });
        // A VM in cooldown (it may just have come here) only when no other VM is left to move.
        ranked.sort((a, b) => Number(inCooldown(a.v)) - Number(inCooldown(b.v)) || Number(b.fixes) - Number(a.fixes) || a.key - b.key || a.v - b.v);
        pick = ranked[0]?.v ?? -1;
        for (const { v } of ranked) {
          if (inCooldown(v)) continue;
          s.move(v, -1);
          const a = findHost(s, reliefOn, v, onSorted, false, bound);
          s.move(v, h);
          if (a.host >= 0) {
            pick = v;
            onHost = a.host;
            break;
          }
        }
      }
      if (pick < 0) break;
      s.move(pick, -1);
      const r = onHost >= 0 ? { host: onHost, rejections: [] } : place(pick);
      if (r.host < 0) {
        s.move(pick, h);
        stuck.set(h, {
          vm: s.vms[pick]!.id, host: host.id, code: 'no-host-fits',
          reason: `${host.id} is ${host.maintenance ? 'in maintenance' : 'overloaded'} but no host can take ${s.vms[pick]!.id} (forecast ${fmt(mean[pick]!)} ± ${fmt(Math.sqrt(variance[pick]!))} MIPS, ${fmt(s.vms[pick]!.memReservedMiB)} MiB)`,
          by: label, rejections: whyNot(pick, r.rejections),
        });
        // Leave this host as it is; the others may still be relieved.
        break;
      }
      const rampAt = predictedOnly.has(h) ? aheadWhen(h, leadOf[h]!) : NaN;
      if (predictedOnly.has(h)) aheadTargets.add(r.host);
      s.move(pick, r.host);
      budget--;
      raw.push({
        vm: pick, from: h, to: r.host, by: host.maintenance ? 'tide:maintenance' : 'tide:overload',
        reason: host.maintenance
          ? `${host.id} is in maintenance; ${s.hosts[r.host]!.id} has room (forecast ${fmt((100 * peak(r.host)) / s.capMips[r.host]!)} % after)`
          : `${host.id} ${predictedOnly.has(h) ? `will be overloaded (predicted ramp at t=${fmt(rampAt)})` : 'overloaded'}; ${s.vms[pick]!.id} (${fmt(s.vms[pick]!.memMiB)} MiB) is the cheapest fix; ${s.hosts[r.host]!.id} has room (forecast ${fmt((100 * peak(r.host)) / s.capMips[r.host]!)} % after)`,
      });
    }
  };
  for (const h of overloaded) relieve(h);

  // Relieved hosts are ordinary hosts again (consolidation may empty them); those still
  // overloaded and those in maintenance stay set aside.
  const release = (): void => {
    for (let h = 0; h < nh; h++) if (excluded[h] && !stuck.has(h) && !s.hosts[h]!.maintenance) excluded[h] = 0;
  };
  release();

  // 2. Consolidation: evacuate hosts while every VM fits on the remaining active hosts.
  //    Candidates are tried once each, best watts-saved-per-MiB-moved first. A host that
  //    cannot be evacuated stays so for the rest of the pass (receivers only get fuller and
  //    evacuated hosts take nothing).
  type Ordering = 'value' | 'memory' | 'cpu' | 'count';
  /**
   * One greedy consolidation pass in the given candidate order; returns the evacuations it
   * made (already applied to the working state and `excluded`).
   */
  /** stays[v] = 1: VM v is not moved by consolidation (not migratable, cooling down, capped, usage unknown). */
  let stays: Uint8Array | null = null;
  /** The smallest memory reservation (MiB) and forecast mean (MIPS) of a migratable VM (set with stays). */
  let minMigratableMem = Infinity;
  let minMigratableCpu = Infinity;
  const consolidate = (ordering: Ordering): { moves: typeof raw; evacuated: HostVerdict[]; held: { v: number; why: NotMoved }[] } => {
    const made: typeof raw = [];
    const evacuated: HostVerdict[] = [];
    const held: { v: number; why: NotMoved }[] = [];
    const consolidator = placer(args.consolidateUtil, false);
    // findHost(s, consolidator, …, false, ·).host with its filters and scorers unrolled (speed only)
    const search = compileSearch(consolidator);
    refresh();
    // Only hosts that already run VMs receive: moving onto an empty host saves nothing.
    // Receivers are kept in ascending order of forecast CPU headroom (stale between re-sorts:
    // headroom only shrinks while consolidating), so a VM's search starts at the first host
    // whose headroom covers its mean demand and scans towards roomier hosts: the tightest
    // fits come first, which is what packing wants, and hosts that cannot fit are never seen.
    // A receiver with less room than the smallest movable VM needs is dropped at each re-sort.
    if (!stays) {
      // First consolidation: which VMs keep their host, and the smallest migratable VM's
      // memory and forecast mean, cannot change during the pass (snapshot fields, ctx.now and
      // the forecast), so they are read from the VM objects once, in index order. (Locals,
      // assigned to the captured variables once: a captured variable holding a double is a
      // heap number, allocated anew on every assignment.)
      stays = new Uint8Array(s.vms.length);
      let mm = Infinity;
      let mc = Infinity;
      // (one pass over the VM objects for both)
      for (let v = 0; v < s.vms.length; v++) {
        const vm = s.vms[v]!;
        stays[v] = !vm.migratable || inCooldown(v) || vmCapped(v) || vm.usage === 'unknown' ? 1 : 0;
        if (!vm.migratable) continue;
        mm = Math.min(mm, vm.memReservedMiB);
        mc = Math.min(mc, mean[v]!);
      }
      minMigratableMem = mm;
      minMigratableCpu = mc;
    }
    const minMem = minMigratableMem;
    const minCpu = minMigratableCpu;
    const headroom = (h: number): number => args.consolidateUtil * s.capMips[h]! - peak(h);
    const full = (h: number): boolean => s.memReservedMiB[h]! + minMem > s.hostMemMiB[h]! || headroom(h) < minCpu;
    let receivers: number[] = onSorted.filter((h) => !excluded[h] && !s.isEmpty(h));
    let keys = new Float64Array(0);
    const keysBuf = new Float64Array(nh);
    const keptBuf = new Int32Array(nh);
    const changedBuf = new Int32Array(nh);
    // Speed only, the chosen host is the same: per receiver, by scan position, three rooms kept
    // exact through s.onHostChange in a MultiMaxTree — guard headroom (consolidateUtil ×
    // capacity − guard peak), free memory, and demand headroom (consolidateUtil × capacity −
    // demand now); -∞ for a host excluded this round. A receiver below VM v's guard mean, memory
    // reservation or current demand in one of them fails a filter of the consolidator (fitsBelow:
    // z ≥ 0, variances add; memoryFits; notIn), so the scan skips it without checking it.
    const guardRoom = (h: number): number => args.consolidateUtil * s.capMips[h]! - (s.columnSum(GUARD, h) + z2 * Math.sqrt(Math.max(0, s.columnSum(GUARD + 1, h))));
    const ROOM_GUARD = 0;
    const ROOM_MEM = 1;
    const ROOM_NOW = 2;
    let roomTree = new MultiMaxTree(0, 3);
    let roomBuf = new Float64Array(0);
    const posOf = new Int32Array(nh).fill(-1);
    /**
     * outAt[i] = 1: tree position i holds −∞ in every key (its host was excluded since). Every
     * move off a candidate being evacuated changes the candidate's sums; its rooms stay −∞,
     * so only the first of those ~20 updates writes (half of all tree updates otherwise).
     */
    const outAt = new Uint8Array(nh);
    const setRoom = (h: number): void => {
      const i = posOf[h]!;
      if (i < 0) return;
      const out = excluded[h] === 1;
      if (out && outAt[i]) return;
      outAt[i] = out ? 1 : 0;
      roomTree.set(i, ROOM_GUARD, out ? -Infinity : guardRoom(h));
      roomTree.set(i, ROOM_MEM, out ? -Infinity : s.hostMemMiB[h]! - s.memReservedMiB[h]!);
      roomTree.set(i, ROOM_NOW, out ? -Infinity : args.consolidateUtil * s.capMips[h]! - s.reqMips[h]!);
    };
    // Hosts whose sums or exclusion changed since the last re-sort: only they can change
    // place, key or filter verdict at the next one.
    const dirty = new Uint8Array(nh).fill(1);
    const touch = (h: number): void => {
      dirty[h] = 1;
    };
    s.onHostChange = (h) => {
      setRoom(h);
      touch(h);
    };
    /** Sets excluded[h] and the host's rooms with it. */
    const exclude = (h: number, x: 0 | 1): void => {
      excluded[h] = x;
      setRoom(h);
      touch(h);
    };
    /** Headroom of each receiver at the last re-sort (the scan order's key). */
    const keyOf = new Float64Array(nh);
    /**
     * guardRoom(h) of each receiver as of the last re-sort that found it dirty: a host no move
     * touched since keeps its sums, so its guard room is the same number (computed once, not
     * at every re-sort: a square root for each of ~6,000 receivers, ~130 times a pass).
     */
    const guardRoomOf = new Float64Array(nh);
    /**
     * Re-sort: the receivers that are neither excluded nor full, by headroom (then index).
     * Speed only, the order is that of sorting them all: a host no move touched since the last
     * re-sort keeps its key, verdict and relative order, so the touched ones are sorted alone
     * and merged in (the comparison is a total order unless a key is NaN: then all are sorted).
     */
    const resort = (): void => {
      // (kept and changed in buffers reused by every re-sort; receivers is rewritten in place)
      const kept = keptBuf;
      let nk = 0;
      let nc = 0;
      let nan = false;
      const list = receivers;
      for (let i = 0; i < list.length; i++) {
        const h = list[i]!;
        if (!dirty[h]) {
          kept[nk++] = h;
          continue;
        }
        if (excluded[h] || full(h)) continue;
        keyOf[h] = headroom(h);
        if (Number.isNaN(keyOf[h])) nan = true;
        guardRoomOf[h] = guardRoom(h);
        changedBuf[nc++] = h;
      }
      const byKey = (a: number, b: number): number => cmp(keyOf[a]!, keyOf[b]!) || a - b;
      if (nan) {
        receivers = receivers.filter((h) => !dirty[h] || (!excluded[h] && !full(h)));
        receivers.sort(byKey);
      } else {
        const changed = changedBuf.subarray(0, nc).sort(byKey);
        const total = nk + nc;
        list.length = total;
        let a = 0;
        let b = 0;
        for (let i = 0; i < total; i++) list[i] = b >= nc || (a < nk && byKey(kept[a]!, changed[b]!) < 0) ? kept[a++]! : changed[b++]!;
      }
      dirty.fill(0);
      const n = receivers.length;
      keys = keysBuf.subarray(0, n);
      posOf.fill(-1);
      // (every receiver is in, none excluded: see below)
      outAt.fill(0);
      // (receivers only get fewer: the first tree and buffer are reused)
      if (roomTree.capacity < n) roomTree = new MultiMaxTree(n, 3);
      else roomTree.setLength(n);
      if (roomBuf.length < 3 * n) roomBuf = new Float64Array(3 * n);
      // (rooms interleaved by position: room[3i + key])
      const room = roomBuf.subarray(0, 3 * n);
      // (no receiver is excluded here: the filter above dropped them)
      for (let i = 0; i < n; i++) {
        const h = receivers[i]!;
        keys[i] = keyOf[h]!;
        posOf[h] = i;
        room[3 * i + ROOM_GUARD] = guardRoomOf[h]!;
        room[3 * i + ROOM_MEM] = s.hostMemMiB[h]! - s.memReservedMiB[h]!;
        room[3 * i + ROOM_NOW] = args.consolidateUtil * s.capMips[h]! - s.reqMips[h]!;
      }
      roomTree.buildAll(room);
    };
    /** The scan of receiversFor, and a second one for makeRoom's searches. */
    const mainScan = new TreeScan(3);
    const roomScan = new TreeScan(3);
    /**
     * Receivers from scan position `from` on, in scan order, that the room tree does not rule
     * out for VM v; `skip` (a host index, or -1) is left out. Resets and returns `cursor`.
     */
    const scan = (v: number, from: number, skip = -1, cursor = mainScan): Iterable<number> => {
      // Thresholds below which a filter rejects v for sure (margins: rounding; a negative guard
      // variance, which cannot occur, would only lower the first).
      const gm = guardMean[v]!;
      const mem = s.vmMemReservedMiB[v]!;
      const now = s.vmCpuMips[v]!;
      const need = cursor.need;
      need[ROOM_GUARD] = gm - z2 * Math.sqrt(Math.max(0, -guardVariance[v]!)) - 1e-6 * (1 + Math.abs(gm));
      need[ROOM_MEM] = mem - 1e-6 * (1 + Math.abs(mem));
      need[ROOM_NOW] = now - 1e-6 * (1 + Math.abs(now));
      return cursor.reset(roomTree, receivers, from, skip);
    };
    resort();
    let sinceSort = 0;
    /**
     * When memory binds, free memory ends up in holes too small for the VM at hand. Before
     * giving a candidate up, try to make room: move one smaller VM w off a receiver r to another
     * receiver, so that v fits on r (one extra migration to empty a whole host). Bounded, and
     * only on clusters small enough to search exhaustively.
     */
    const makeRoom = wMem > wCpu && nh <= args.exhaustiveUpTo
      ? (v: number, cand: number, recv: readonly number[]): { w: number; r: number; wTo: number } | null => {
        const need = s.vms[v]!.memReservedMiB;
        let tries = 0;
        for (const r of recv) {
          if (excluded[r] || r === cand) continue;
          const free = s.hosts[r]!.memMiB - s.memReservedMiB[r]!;
          if (free >= need) continue;
          for (const w of s.vmsOn(r)) {
            const wm = s.vms[w]!.memReservedMiB;
            if (wm >= need || free + wm < need || !s.vms[w]!.migratable || inCooldown(w) || vmCapped(w) || s.vms[w]!.usage === 'unknown') continue;
            if (++tries > 256) return null;
            const mark = s.mark();
            s.move(w, -1);
            if (findHost(s, consolidator, v, [r]).host === r) {
              // (cand is excluded: the scan skips it)
              const to = findHost(s, consolidator, w, recv === receivers ? scan(w, 0, r, roomScan) : recv.filter((x) => x !== r && x !== cand), false, bound).host;
              if (to >= 0) {
                s.move(w, to);
                s.move(v, r);
                return { w, r, wTo: to };
              }
            }
            s.rollback(mark);
          }
        }
        return null;
      }
      : null;
    /** Receivers that might take VM v: from the first whose (stale) headroom covers its mean. */
    const receiversFor = (v: number): Iterable<number> => {
      // (spread or exhaustive: every receiver in order, less those the tree rules out)
      if (args.scorer === 'spread' || bound === Infinity) return scan(v, 0);
      // (the key array and the VM's mean in locals: read once, not once per step)
      const ks = keys;
      const m = mean[v]!;
      let lo = 0;
      let hi = ks.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (ks[mid]! < m) lo = mid + 1;
        else hi = mid;
      }
      return scan(v, lo);
    };
    const order: { h: number; value: number }[] = [];
    for (let h = 0; h < nh; h++) {
      if (excluded[h] || s.powerState(h) !== 'on' || s.isEmpty(h)) continue;
      const host = s.hosts[h]!;
      if (host.excluded || host.maintenance || blind.unmeasured[h]) continue;
      if (args.minOnSec > 0 && host.onSinceSec !== undefined && ctx.now - host.onSinceSec < args.minOnSec) continue;
      let mem = 0;
      const on = s.vmsOn(h);
      for (let i = 0; i < on.length; i++) mem += s.vmMemMiB[on[i]!]!;
      // value: watts the host draws now, weighted by how inefficient it is, per MiB that must
      // move; memory: emptiest host first; cpu: least utilised first (as PABFD does).
      const value = ordering === 'value'
        ? (powerAt(host.power, Math.min(1, s.reqMips[h]! / s.capMips[h]!)) * (wpm[h]! / bestWpm)) / (mem + 64 * s.vmsOn(h).length)
        : ordering === 'memory' ? -mem / host.memMiB : ordering === 'count' ? -s.vmsOn(h).length - mem / host.memMiB : -s.reqMips[h]! / s.capMips[h]!;
      order.push({ h, value });
    }
    order.sort((a, b) => cmp(b.value, a.value) || a.h - b.h);
    let failures = 0;
    // (indexed loops here and below: this function runs once or twice per plan, so its loops
    // start in the interpreter, where for-of allocates a result object per element)
    for (let oi = 0; oi < order.length; oi++) {
      const cand = order[oi]!.h;
      if (failures >= args.maxFailedEvacuations && nh > args.exhaustiveUpTo) break;
      if (s.isEmpty(cand)) continue;
      const vms = s.vmsOn(cand).slice();
      // Also a VM of unknown usage that an earlier move of this plan brought here.
      let staying = false;
      for (let i = 0; i < vms.length && !staying; i++) staying = stays![vms[i]!] === 1;
      if (staying) continue;
      if (vms.length > budget) {
        // Emptying it takes at least one migration per VM, more than the budget has left: not
        // even tried (building and rolling back evacuations the budget refuses anyway made the
        // plan stage take seconds once the budget was spent). All or nothing, as below.
        const why = `${s.hosts[cand]!.id} not evacuated: its ${vms.length} VM(s) need at least ${vms.length} migration(s) and ${budget} are left; ${budgetReason()}`;
        for (const v of vms) held.push({ v, why: { vm: s.vms[v]!.id, host: s.hosts[cand]!.id, code: 'budget', reason: why, by: label } });
        continue;
      }
      vms.sort((a, b) => cmp(sizeOf[b]!, sizeOf[a]!) || a - b);
      exclude(cand, 1);
      const mark = s.mark();
      const moves: typeof raw = [];
      let ok = true;
      for (let i = 0; i < vms.length; i++) {
        const v = vms[i]!;
        const to = search ? search(s, v, receiversFor(v), bound) : findHost(s, consolidator, v, receiversFor(v), false, bound).host;
        if (to >= 0) {
          s.move(v, to);
          moves.push({ vm: v, from: cand, to, by: 'tide:consolidate', reason: '' });
          continue;
        }
        const room = makeRoom ? makeRoom(v, cand, receivers) : null;
        if (!room) {
          ok = false;
          break;
        }
        moves.push({ vm: room.w, from: room.r, to: room.wTo, by: 'tide:consolidate', reason: '' });
        moves.push({ vm: v, from: cand, to: room.r, by: 'tide:consolidate', reason: '' });
      }
      if (ok) {
        // One sentence for the whole evacuation (each step names its own target).
        const why = `${s.hosts[cand]!.id} can be emptied and switched off (saves about ${fmt(powerAt(s.hosts[cand]!.power, Math.min(1, s.uNow[cand]!)))} W); every receiver stays below ${fmt(args.consolidateUtil * 100)} % on forecast`;
        for (let i = 0; i < moves.length; i++) moves[i]!.reason = why;
      }
      if (ok && moves.length > budget) {
        // All or nothing: half an evacuation saves no power and moves VMs for nothing.
        s.rollback(mark);
        exclude(cand, 0);
        const why = `${s.hosts[cand]!.id} could be emptied (${moves.length} move(s)) but ${budgetReason()}`;
        for (const v of vms) held.push({ v, why: { vm: s.vms[v]!.id, host: s.hosts[cand]!.id, code: 'budget', reason: why, by: label } });
        continue;
      }
      if (!ok) {
        s.rollback(mark);
        exclude(cand, 0);
        failures++;
        continue;
      }
      failures = 0;
      budget -= moves.length;
      for (let i = 0; i < moves.length; i++) made.push(moves[i]!);
      evacuated.push({ host: s.hosts[cand]!.id, class: 'underloaded', reason: `evacuated: ${moves.length} VM(s) fit on other active hosts`, by: label });
      if (++sinceSort >= 32) {
        resort();
        sinceSort = 0;
      }
    }
    s.onHostChange = null;
    return { moves: made, evacuated, held };
  };

  /**
   * When a hard resource (memory) binds, which hosts a greedy pass can empty depends on the
   * order it tries them; on clusters small enough, try three orders from the same state and
   * keep the one that empties the most hosts (then the fewest migrations). Deterministic, so
   * the fixed point below still holds.
   */
  const consolidateBest = (): void => {
    const orderings: Ordering[] = args.orderings > 1 && wMem > wCpu && nh <= args.exhaustiveUpTo ? (['value', 'memory', 'cpu', 'count'] as const).slice(0, args.orderings) : ['value'];
    let best: Ordering = 'value';
    if (orderings.length > 1) {
      let bestScore = -Infinity;
      for (const o of orderings) {
        const mark = s.mark();
        const saved = excluded.slice();
        const savedBudget = budget;
        const r = consolidate(o);
        const score = r.evacuated.length * 1e9 - r.moves.length;
        if (score > bestScore) {
          bestScore = score;
          best = o;
        }
        s.rollback(mark);
        excluded.set(saved);
        budget = savedBudget;
      }
    }
    const r = consolidate(best);
    for (let i = 0; i < r.moves.length; i++) raw.push(r.moves[i]!);
    for (const v of r.evacuated) verdicts.push(v);
    for (const { v, why } of r.held) budgetHeld.set(v, why);
  };

  // Repeat consolidation, relief of what was stuck and rule fixes until nothing changes: each
  // can make room for the others (a pinned VM may need exactly the host that was emptied).
  // At the fixed point, planning again on the result proposes nothing.
  for (let pass = 0; pass < 4; pass++) {
    const before = raw.length;
    if (args.consolidate) consolidateBest();
    release();
    // (the sorted lists serve only relief and rule fixes, which run below only with a stuck
    // host or a rule; consolidation refreshes them itself: no sort of every host for nothing)
    if (stuck.size > 0 || s.rules.length > 0) refresh();
    for (const h of [...stuck.keys()]) relieve(h);
    release();
    fixRules();
    if (raw.length === before) break;
  }
  // A VM the budget held back on one pass but that a later pass moved is not "not moved".
  if (budgetHeld.size > 0) for (const m of raw) budgetHeld.delete(m.vm);
  // (a loop, not push(...spread): a budget can hold back 100,000s of VMs, beyond a call's argument limit)
  for (const m of [stuck, unfixable, budgetHeld]) for (const x of m.values()) notMoved.push(x);

  // 3. Power: wake hosts that receive VMs; switch off empty ones beyond the spares.
  // compactMoves(raw), mapped to intended moves, without its per-VM objects: each VM's net move
  // (first move's source, last move's target and reason), in the order of each VM's first move,
  // less those that end where they started.
  const nv = s.vms.length;
  const firstFrom = new Int32Array(nv);
  const lastAt = new Int32Array(nv).fill(-1);
  const firstOrder: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i]!.vm;
    if (lastAt[v]! < 0) {
      firstFrom[v] = raw[i]!.from;
      firstOrder.push(v);
    }
    lastAt[v] = i;
  }
  const intended: IntendedMove[] = [];
  for (let i = 0; i < firstOrder.length; i++) {
    const v = firstOrder[i]!;
    const last = raw[lastAt[v]!]!;
    if (firstFrom[v] !== last.to) intended.push({ vm: v, to: last.to, reason: last.reason, by: last.by });
  }
  const powerOn: IntendedPower[] = [];
  // (the targets in order of first appearance, as a Set of them would list them)
  const targetSeen = new Uint8Array(nh);
  const targets: number[] = [];
  for (let i = 0; i < intended.length; i++) {
    const h = intended[i]!.to;
    if (targetSeen[h]) continue;
    targetSeen[h] = 1;
    targets.push(h);
  }
  for (const h of targets) {
    const was = snapshot.hosts[h]!.powerState;
    if (was !== 'on') {
      const early = wokenEarly.has(h) ? ` (off for only ${fmt(ctx.now - (s.hosts[h]!.offSinceSec ?? ctx.now))} s < minOffSec ${fmt(args.minOffSec)} s, but no powered-on or longer-off host can take them)` : '';
      const ahead = aheadTargets.has(h) ? ', woken ahead of a predicted ramp (boot + migration + margin before it)' : '';
      powerOn.push({ host: h, reason: `${s.hosts[h]!.id} is ${was}: needed for the VMs moving to it${ahead}${early}`, by: label });
    }
  }
  if (edge) {
    const planned = new Set(powerOn.map((p) => p.host));
    for (const id of edge.wake) {
      const h = s.hosts.findIndex((x) => x.id === id);
      if (h < 0 || planned.has(h)) continue;
      powerOn.push({ host: h, reason: `pre-wake: window ${input.window!.name} ends at t=${fmt(edge.edgeSec)}; boot ${fmt(edge.bootSec)} s + migrations ${fmt(edge.migrateSec)} s + margin ${fmt(args.prewakeMarginSec)} s must finish by then`, by: 'tide:prewake' });
    }
  }
  const powerOff: IntendedPower[] = [];
  if (args.powerOff) {
    const empty: number[] = [];
    /** Empty hosts that must not be powered off (Host.powerOffRefused): they stay on and count as spares. */
    const keptOn: number[] = [];
    for (let h = 0; h < nh; h++) {
      const host = s.hosts[h]!;
      // Only hosts that are on now: one woken tentatively while planning and emptied again
      // gets no power-on step, so it is still off (never plan to power off an off host).
      if (snapshot.hosts[h]!.powerState === 'on' && s.powerState(h) === 'on' && s.isEmpty(h) && !host.excluded) (host.powerOffRefused === undefined ? empty : keptOn).push(h);
    }
    // An overloaded host left unrelieved means capacity is short, not in surplus: no empty host
    // is powered off this round (the next round, with more samples, may relieve onto it, and
    // would have to wake it again — found by test/core/no-undo.property.test.ts).
    const short = [...stuck.values()][0];
    if (short !== undefined) {
      for (const h of empty) verdicts.push({ host: s.hosts[h]!.id, class: 'spare', reason: `kept on, empty: ${short.host} is overloaded and not relieved this round (${short.code}), so capacity is short`, by: label });
      empty.length = 0;
    }
    // Keep the most efficient empty hosts as spares.
    empty.sort((a, b) => cmp(wpm[a]!, wpm[b]!) || a - b);
    const spares = Math.max(0, args.spareHosts - keptOn.length);
    for (const h of empty.slice(spares)) {
      powerOff.push({ host: h, reason: `${s.hosts[h]!.id} is empty${args.spareHosts > 0 ? ` and ${args.spareHosts} spare host(s) stay on` : ''}`, by: label });
    }
    for (const h of empty.slice(0, spares)) verdicts.push({ host: s.hosts[h]!.id, class: 'spare', reason: 'kept on, empty, as a spare', by: label });
    for (const h of keptOn) verdicts.push({ host: s.hosts[h]!.id, class: 'spare', reason: `kept on, empty: not powered off because ${s.hosts[h]!.powerOffRefused}`, by: label });
  }
  const ordered = orderPlan(s, { moves: intended, powerOn, powerOff }, start);
  return { policy: label, time: snapshot.time, steps: ordered.steps, hosts: verdicts, notMoved: [...notMoved, ...ordered.deferred] };
}

export const tide: Strategy<TideArgs> = {
  name: 'tide',
  summary: "Tide's default: forecast-aware (mean + z·σ of summed demand), hysteresis, migration-cost-aware relief, efficiency-first consolidation, cooldown",
  args: tideArgs,
  plan: planTide,
};
