/**
 * Predictive DPM across restarts: a new controller's demand recorder (src/core/predict) is fed
 * the store's metrics history before its first forecast, so a restarted daemon forecasts from
 * its first round instead of relearning for days.
 *
 * The store keeps, per VM, CPU as a share of its vCPUs (0..100) and memory MiB in use, every
 * round for 24 h (`raw`) and hourly means for 56 days (`hour`); a value that was not measured
 * is null (journal.ts metricSamples). The recorder learns what Controller.collect records each
 * round: each freshly measured VM's CPU MIPS and memory MiB, and their sum as the cluster's
 * demand. So each stored round is replayed as one recorder round of the VMs measured in it,
 * with CPU MIPS = share × the VM's size now (vCPUs × the snapshot's MIPS per vCPU: the same
 * convention the controller's own history uses). An hourly mean of n rounds is replayed as n
 * rounds spread evenly over its hour, each at the mean (so it weighs as much as the rounds it
 * replaced, in the 15-min buckets they fell in). A VM not in the current snapshot has no known
 * size and is left out (the forecast is of the VMs that exist).
 *
 * At scale (200,000 VMs: 24 h of rounds and 56 days of hourly means are about 330 M points) the
 * history is read in pages by time, each at most about `pagePoints` points, and fed page by
 * page, so memory is bounded by a page, not by the history. Only what the recorder can still use
 * is read (DemandRecorder.historyNeededSec): VM profiles about three weeks, the cluster's
 * profile eight weeks at 5-min rounds (its time-of-week buckets keep 24 samples, 3 a week), so
 * with the default retention every stored hour; rounds older than the VM profiles can use are
 * replayed as the cluster's total only (recordTotal: the same sum in the same order).
 *
 * That takes about half an hour at 200,000 VMs, so the controller runs it cooperatively
 * (seedRecorderFromStoreAsync: one page per event-loop turn) beside its rounds, not inside one.
 */
import type { Vm } from '../core/model/types.js';
import type { DemandRecorder, VmDemandSample } from '../core/predict/forecast.js';
import type { MetricPoint, Store } from '../store/store.js';

const HOUR_MS = 3_600_000;

/** One replayed round: clock seconds and the VMs measured in it. */
export interface HistoryRound {
  readonly atSec: number;
  readonly vms: readonly VmDemandSample[];
}

/** Between two store reads of a seed: where the async seed yields to the event loop. */
const PAUSE: unique symbol = Symbol('seed page boundary');
type Pause = typeof PAUSE;

/**
 * Rounds of demand from stored VM metrics points (oldest first, as store.metricsHistory returns
 * them), for VMs whose size (MIPS at 100 %) is in `sizeMips`. Pure; reads `points` once, holding
 * one round at a time.
 */
export function* historyRounds(points: Iterable<MetricPoint>, sizeMips: ReadonlyMap<string, number>): Generator<HistoryRound> {
  for (const r of roundsOf(points, sizeMips)) if (r !== PAUSE) yield r;
}

/** historyRounds, passing each PAUSE of `points` through where it comes (possibly mid-round). */
function* roundsOf(points: Iterable<MetricPoint | Pause>, sizeMips: ReadonlyMap<string, number>): Generator<HistoryRound | Pause> {
  const it = points[Symbol.iterator]();
  let next = it.next();
  for (;;) {
    for (; !next.done && next.value === PAUSE; next = it.next()) yield PAUSE;
    if (next.done) return;
    const first = next.value as MetricPoint; // the loop above passed the pauses on
    const group: MetricPoint[] = [];
    for (; !next.done; next = it.next()) {
      const p = next.value;
      if (p === PAUSE) {
        yield PAUSE;
        continue;
      }
      if (p.atMs !== first.atMs || p.res !== first.res) break;
      group.push(p);
    }
    const vms: VmDemandSample[] = [];
    let n = 1;
    for (const p of group) {
      const size = sizeMips.get(p.name);
      if (p.kind !== 'vm' || p.cpuPct === null || p.memMiB === null || size === undefined) continue;
      vms.push({ id: p.name, cpuMips: (p.cpuPct / 100) * size, memMiB: p.memMiB });
      n = Math.max(n, p.samples);
    }
    if (vms.length === 0) continue;
    if (first.res === 'raw') {
      yield { atSec: first.atMs / 1000, vms };
      continue;
    }
    for (let k = 0; k < n; k++) yield { atSec: (first.atMs + ((k + 0.5) * HOUR_MS) / n) / 1000, vms };
  }
}

/** What a seed read and replayed. */
export interface SeedStats {
  /** Recorder rounds replayed (0: nothing stored). */
  rounds: number;
  /** Of which the cluster's total only (older than the VM profiles use). */
  totalOnlyRounds: number;
  /** Points read, and the pages (queries returning points) they came in. */
  points: number;
  pages: number;
  /** The largest page, points. */
  maxPagePoints: number;
  /** Oldest time read (ms; null: all) and where VM profiles start being fed (ms). */
  sinceMs: number | null;
  vmSinceMs: number;
}

export interface SeedOptions {
  /** The controller's round interval, s: how dense raw rounds are (page spans, historyNeededSec). */
  readonly intervalSec: number;
  /** Target points per page (default 200,000); a page spans at least one round or hour. */
  readonly pagePoints?: number;
  /** Read everything before nowSec, all VMs fed (the unbounded read; for comparison). */
  readonly full?: boolean;
}

type Reader = Pick<Store, 'metricsHistory'>;

/**
 * One resolution's VM points in [sinceMs, untilMs), oldest first, a page of at most `spanMs` at a
 * time, each read through metrics_res (res, at_ms). After an empty page (or with no start), a
 * probe (LIMIT 1) finds where the next points are, so gaps cost one query, not one per span.
 * A page holds whole rounds (one at_ms is never split).
 */
function* pages(store: Reader, res: 'raw' | 'hour', sinceMs: number | null, untilMs: number, spanMs: number, stats: SeedStats): Generator<MetricPoint | Pause> {
  let from = sinceMs;
  let probe = sinceMs === null;
  for (;;) {
    if (probe || from === null) {
      yield PAUSE;
      const first = store.metricsHistory({ kind: 'vm', res, ...(from === null ? {} : { sinceMs: from }), untilMs, limit: 1 })[0];
      if (!first) return;
      from = first.atMs;
    }
    const to = Math.min(untilMs, from + spanMs);
    yield PAUSE;
    const page = store.metricsHistory({ kind: 'vm', res, sinceMs: from, untilMs: to });
    probe = page.length === 0;
    if (page.length > 0) stats.pages++;
    stats.points += page.length;
    stats.maxPagePoints = Math.max(stats.maxPagePoints, page.length);
    yield* page;
    if (to >= untilMs) return;
    from = to;
  }
}

/**
 * Two oldest-first streams as one, in metricsHistory's order (an hourly mean before the raw points
 * of its time). A PAUSE is passed on as soon as it is met, before the read it announces.
 */
function* merge(hour: Iterator<MetricPoint | Pause>, raw: Iterator<MetricPoint | Pause>): Generator<MetricPoint | Pause> {
  let h = hour.next();
  let r = raw.next();
  while (!h.done || !r.done) {
    if (h.value === PAUSE) {
      yield PAUSE;
      h = hour.next();
    } else if (r.value === PAUSE) {
      yield PAUSE;
      r = raw.next();
    } else if (!h.done && (r.done || h.value.atMs <= r.value.atMs)) {
      yield h.value;
      h = hour.next();
    } else if (!r.done) {
      yield r.value;
      r = raw.next();
    }
  }
}

/**
 * Feeds `recorder` the store's VM metrics recorded before `nowSec` (clock seconds), with sizes
 * from the VMs of the current snapshot, page by page (see the module comment). Synchronous: at
 * scale it takes minutes (seedRecorderFromStoreAsync does the same work between event-loop turns).
 */
export function seedRecorderFromStore(recorder: DemandRecorder, store: Reader, vms: readonly Vm[], nowSec: number, opts: SeedOptions): SeedStats {
  const steps = seedSteps(recorder, store, vms, nowSec, opts);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
  }
}

export interface AsyncSeedOptions extends SeedOptions {
  /** Called between store reads with the figures so far (progress). */
  readonly onPage?: (stats: Readonly<SeedStats>) => void;
  /** Waits between reads; default one event-loop turn (setImmediate), so timers and I/O run. */
  readonly pause?: () => Promise<void>;
  /** Stops the seed between reads (the daemon stopping): it rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * seedRecorderFromStore, cooperatively: the same reads and the same recorder calls in the same
 * order (so the same recorder state), but it awaits `pause` before each store read, so the event
 * loop is held for at most one page's read and replay at a time (lease renewals, the HTTP API).
 * The caller must not feed `recorder` anything else until it resolves (time order).
 */
export async function seedRecorderFromStoreAsync(recorder: DemandRecorder, store: Reader, vms: readonly Vm[], nowSec: number, opts: AsyncSeedOptions): Promise<SeedStats> {
  const pause = opts.pause ?? nextTurn;
  const steps = seedSteps(recorder, store, vms, nowSec, opts);
  for (let reads = 0; ; reads++) {
    const s = steps.next();
    if (s.done) return s.value;
    if (reads > 0) opts.onPage?.(s.value);
    await pause();
    opts.signal?.throwIfAborted();
  }
}

/** The seed as steps: it yields its figures so far before each store read, and returns them. */
function* seedSteps(recorder: DemandRecorder, store: Reader, vms: readonly Vm[], nowSec: number, opts: SeedOptions): Generator<SeedStats, SeedStats> {
  const sizeMips = new Map(vms.map((v) => [v.id, v.vcpus * v.mipsPerVcpu]));
  const nowMs = nowSec * 1000;
  const need = opts.full ? { vmSec: Infinity, clusterSec: Infinity } : recorder.historyNeededSec(opts.intervalSec);
  // Whole hours: an hourly mean is replayed over its hour, so it is read whole or not at all.
  const since = (sec: number): number | null => (Number.isFinite(sec) ? Math.floor((nowMs - sec * 1000) / HOUR_MS) * HOUR_MS : null);
  const sinceMs = since(need.clusterSec);
  const vmSinceMs = since(need.vmSec) ?? -Infinity;
  const stats: SeedStats = { rounds: 0, totalOnlyRounds: 0, points: 0, pages: 0, maxPagePoints: 0, sinceMs, vmSinceMs };
  const perPage = Math.max(1, Math.floor((opts.pagePoints ?? 200_000) / Math.max(1, vms.length)));
  const intervalMs = Math.max(1, Math.round(opts.intervalSec * 1000));
  const points = opts.full
    ? store.metricsHistory({ kind: 'vm', untilMs: nowMs })
    : merge(pages(store, 'hour', sinceMs, nowMs, perPage * HOUR_MS, stats), pages(store, 'raw', sinceMs, nowMs, perPage * intervalMs, stats));
  if (opts.full) Object.assign(stats, { points: (points as MetricPoint[]).length, pages: 1, maxPagePoints: (points as MetricPoint[]).length });
  let summed: readonly VmDemandSample[] | null = null;
  let cpu = 0;
  let mem = 0;
  for (const r of roundsOf(points, sizeMips)) {
    if (r === PAUSE) {
      yield stats;
      continue;
    }
    stats.rounds++;
    if (r.atSec >= vmSinceMs / 1000) {
      recorder.record(r.atSec, r.vms);
      continue;
    }
    // as record() sums them: same order, from 0 (once for an hourly mean's n rounds: same array)
    if (r.vms !== summed) {
      summed = r.vms;
      cpu = 0;
      mem = 0;
      for (const v of r.vms) {
        cpu += v.cpuMips;
        mem += v.memMiB;
      }
    }
    recorder.recordTotal(r.atSec, cpu, mem);
    stats.totalOnlyRounds++;
  }
  return stats;
}
