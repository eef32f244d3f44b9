/**
 * The forecaster's seed after a restart (src/app/forecast-seed.ts) reads the store's metrics
 * history in pages by time and only as far back as the recorder can still use: its forecast must
 * equal the one from reading everything at once (the history here fits in memory), each page
 * must stay within the page size, and older history must be left unread.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { seedRecorderFromStore, seedRecorderFromStoreAsync, type SeedStats } from '../../src/app/forecast-seed.js';
import type { Vm } from '../../src/core/model/types.js';
import { DemandRecorder, type RecorderOptions } from '../../src/core/predict/forecast.js';
import { openSqliteStore, type MetricSample, type MetricsRetention, type Store } from '../../src/store/store.js';

const H = 3_600_000;
const DAY = 24 * H;

const stores: Store[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

const vm = (id: string, vcpus: number): Vm => ({ id, vcpus, mipsPerVcpu: 1000 } as unknown as Vm);

/**
 * A store with `days` of rounds every `intervalSec` ending just before `endMs`: VMs with a daily
 * and weekly shape that grows week by week (so older weeks weigh differently), a deterministic
 * noise, a VM measured only in the last 5 days, one gone 20 days before the end (still listed),
 * and a VM not in the snapshot.
 */
function history(days: number, intervalSec: number, endMs: number, retention: MetricsRetention): Store {
  const store = openSqliteStore(':memory:', { metrics: retention });
  stores.push(store);
  let seed = 12345;
  const noise = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 10;
  const step = intervalSec * 1000;
  for (let t = endMs - days * DAY; t < endMs; t += step) {
    const week = Math.floor((endMs - t) / (7 * DAY));
    const hour = (t / H) % 24;
    const weekend = Math.floor(t / DAY) % 7 >= 5;
    const shape = (weekend ? 10 : 20 + 30 * Math.max(0, Math.sin(((hour - 6) / 12) * Math.PI))) + 5 * (4 - week);
    const s: MetricSample[] = ['a', 'b', 'c', 'd'].map((id, i) => ({ kind: 'vm', name: id, host: 'h1', cpuPct: Math.min(100, shape + i * 3 + noise()), memMiB: 500 + i * 100 + noise() }));
    if (t >= endMs - 5 * DAY) s.push({ kind: 'vm', name: 'late', host: 'h1', cpuPct: 40 + noise(), memMiB: 100 });
    if (t < endMs - 20 * DAY) s.push({ kind: 'vm', name: 'gone', host: 'h1', cpuPct: 70 + noise(), memMiB: 300 });
    s.push({ kind: 'vm', name: 'unlisted', host: 'h1', cpuPct: 50, memMiB: 50 });
    s.push({ kind: 'host', name: 'h1', host: null, cpuPct: 50, memMiB: 5000 });
    store.recordMetrics(t, s);
  }
  return store;
}

const VMS = [vm('a', 2), vm('b', 4), vm('c', 1), vm('d', 8), vm('late', 2), vm('gone', 2)];

function seeded(store: Store, nowSec: number, intervalSec: number, opts: RecorderOptions, how: { full?: boolean; pagePoints?: number }): { r: DemandRecorder; stats: SeedStats } {
  const r = new DemandRecorder({ stepSec: intervalSec, ...opts });
  const stats = seedRecorderFromStore(r, store, VMS, nowSec, { intervalSec, ...how });
  return { r, stats };
}

describe('seeding the forecaster from the store: paged, bounded, the same forecast as the full read', () => {
  it('defaults (5-min rounds, 22 days): VM profiles fed from 3 weeks back, the cluster from all; same forecast; pages within their size', () => {
    const nowMs = 400 * DAY + 7 * H + 2 * 60_000; // a Tuesday-like morning, mid-bucket
    const store = history(22, 300, nowMs, { rawKeepMs: DAY, hourKeepMs: 56 * DAY });
    const nowSec = nowMs / 1000;
    const full = seeded(store, nowSec, 300, {}, { full: true });
    const paged = seeded(store, nowSec, 300, {}, { pagePoints: 60 });
    expect(paged.stats.sinceMs, 'the cluster profile can use 8 weeks: more than the store keeps').toBeLessThanOrEqual(nowMs - 56 * DAY);
    expect(paged.stats.vmSinceMs).toBe(Math.floor((nowMs - (3 * 7 * DAY + 2 * 900_000)) / H) * H);
    expect(paged.stats.totalOnlyRounds, 'the oldest day is replayed as cluster totals only').toBeGreaterThan(0);
    expect(paged.stats.rounds).toBe(full.stats.rounds);
    expect(paged.stats.points).toBe(full.stats.points);
    expect(paged.stats.maxPagePoints, 'a page holds at most pagePoints (10 rounds or hours of 6 VMs)').toBeLessThanOrEqual(60);
    expect(paged.stats.pages).toBeGreaterThan(full.stats.points / 60);
    const f = full.r.forecast(nowSec);
    expect(f?.points.length).toBe(48);
    expect(Object.keys(f?.vms ?? {}).sort()).toEqual(['a', 'b', 'c', 'd', 'late']); // 'gone' forgotten, 'unlisted' has no size
    expect(paged.r.forecast(nowSec)).toEqual(f);
    expect(paged.r.vmCount).toBe(full.r.vmCount);
    // and the next round after the restart too
    const next = VMS.map((v) => ({ ...v, demand: { cpuMips: 1000, memMiB: 100 } } as unknown as Vm));
    full.r.recordVms(nowSec + 300, next);
    paged.r.recordVms(nowSec + 300, next);
    expect(paged.r.forecast(nowSec + 300)).toEqual(full.r.forecast(nowSec + 300));
  });

  it('short-memory options (15-min rounds, 4 weeks): neither the cluster\'s nor the VMs\' older history is read; same forecast; the old history did matter', () => {
    const nowMs = 300 * DAY + 15 * H + 7 * 60_000;
    const store = history(28, 900, nowMs, { rawKeepMs: DAY, hourKeepMs: 60 * DAY });
    const nowSec = nowMs / 1000;
    // k = 1 sample per bucket a week: cluster 2 weeks (keepWeekly 2, keepDaily 4), VMs 2 days + 1 week (forgetting)
    const opts: RecorderOptions = { keepWeekly: 2, keepDaily: 4, vmKeepWeekly: 1, vmKeepDaily: 2, vmForgetAfterSec: 2 * 86_400 };
    const full = seeded(store, nowSec, 900, opts, { full: true });
    const paged = seeded(store, nowSec, 900, opts, {});
    expect(paged.stats.sinceMs).toBe(Math.floor((nowMs - (14 * DAY + 1800_000)) / H) * H);
    expect(paged.stats.vmSinceMs).toBe(Math.floor((nowMs - (9 * DAY + 1800_000)) / H) * H);
    expect(paged.stats.points, 'about half the history read').toBeLessThan(0.6 * full.stats.points);
    expect(paged.stats.totalOnlyRounds).toBeGreaterThan(0);
    const f = full.r.forecast(nowSec);
    expect(f?.points.length).toBe(16);
    expect(Object.keys(f?.vms ?? {}).sort()).toEqual(['a', 'b', 'c', 'd', 'late']);
    expect(paged.r.forecast(nowSec)).toEqual(f);
    // a read of only the last week would not do: the cut is where it is for a reason
    const week = new DemandRecorder({ stepSec: 900, ...opts });
    seedRecorderFromStore(week, { metricsHistory: (o) => store.metricsHistory({ ...o, sinceMs: Math.max(o?.sinceMs ?? 0, nowMs - 7 * DAY) }) }, VMS, nowSec, { intervalSec: 900 });
    expect(week.forecast(nowSec)).not.toEqual(f);
  });

  it('historyNeededSec: how far back the recorder can use history, from its options and the round interval', () => {
    const W = 7 * 86_400;
    expect(new DemandRecorder().historyNeededSec(300)).toEqual({ vmSec: 3 * W + 1800, clusterSec: 8 * W + 1800 }); // k = 3 a week: 24/3, 42/6
    expect(new DemandRecorder().historyNeededSec(60)).toEqual({ vmSec: 3 * W + 1800, clusterSec: 2 * W + 1800 }); // k = 15: ⌈24/15⌉, ⌈42/30⌉
    expect(new DemandRecorder().historyNeededSec(3600)).toEqual({ vmSec: 6 * W + 1800, clusterSec: 24 * W + 1800 }); // k = 1 (a sample in one bucket of four): ⌈6/1⌉, ⌈24/1⌉
    expect(new DemandRecorder({ perVm: false }).historyNeededSec(300).vmSec).toBe(0);
    expect(new DemandRecorder({ keepWeekly: Infinity, vmForgetAfterSec: Infinity }).historyNeededSec(300)).toEqual({ vmSec: Infinity, clusterSec: Infinity });
  });

  it('the cooperative seed (the controller\'s) reads one page per event-loop turn and ends with the synchronous seed\'s forecast', async () => {
    const nowMs = 400 * DAY + 7 * H + 2 * 60_000;
    const store = history(22, 300, nowMs, { rawKeepMs: DAY, hourKeepMs: 56 * DAY });
    const nowSec = nowMs / 1000;
    const sync = seeded(store, nowSec, 300, {}, { pagePoints: 60 });
    // a ticker on the same queue as the seed's pause (setImmediate): it counts event-loop turns
    let ticks = 0;
    let ticking = true;
    const tick = (): void => {
      ticks++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const readAtTick: number[] = [];
    const reader = { metricsHistory: (o?: Parameters<Store['metricsHistory']>[0]) => (readAtTick.push(ticks), store.metricsHistory(o)) };
    const progress: number[] = [];
    const r = new DemandRecorder({ stepSec: 300 });
    const stats = await seedRecorderFromStoreAsync(r, reader, VMS, nowSec, { intervalSec: 300, pagePoints: 60, onPage: (s) => progress.push(s.rounds) });
    ticking = false;
    expect(stats).toEqual(sync.stats);
    expect(readAtTick.length, 'many reads (pages and probes)').toBeGreaterThan(50);
    // never two reads in one turn: the event loop (timers, I/O, lease renewals) runs between pages
    for (let k = 1; k < readAtTick.length; k++) expect(readAtTick[k]!, `read ${k}`).toBeGreaterThan(readAtTick[k - 1]!);
    expect(progress.length).toBe(readAtTick.length - 1);
    expect(progress.at(-1)).toBeLessThanOrEqual(stats.rounds);
    // the same recorder state: the same forecast, and after the next round too
    expect(r.forecast(nowSec)).toEqual(sync.r.forecast(nowSec));
    expect(r.vmCount).toBe(sync.r.vmCount);
    const next = VMS.map((v) => ({ ...v, demand: { cpuMips: 1000, memMiB: 100 } } as unknown as Vm));
    r.recordVms(nowSec + 300, next);
    sync.r.recordVms(nowSec + 300, next);
    expect(r.forecast(nowSec + 300)).toEqual(sync.r.forecast(nowSec + 300));
  });

  it('the cooperative seed stops between reads when its signal aborts (the daemon stopping)', async () => {
    const nowMs = 400 * DAY + 7 * H;
    const store = history(3, 300, nowMs, { rawKeepMs: DAY, hourKeepMs: 56 * DAY });
    let reads = 0;
    const reader = { metricsHistory: (o?: Parameters<Store['metricsHistory']>[0]) => (reads++, store.metricsHistory(o)) };
    const ac = new AbortController();
    const seed = seedRecorderFromStoreAsync(new DemandRecorder({ stepSec: 300 }), reader, VMS, nowMs / 1000, {
      intervalSec: 300, pagePoints: 60, signal: ac.signal, onPage: () => { if (reads === 5) ac.abort(new Error('stopping')); },
    });
    await expect(seed).rejects.toThrow('stopping');
    expect(reads).toBe(5);
  });

  it('an empty store: nothing replayed, no forecast', () => {
    const store = openSqliteStore(':memory:');
    stores.push(store);
    const { r, stats } = seeded(store, 1000, 300, {}, {});
    expect(stats).toMatchObject({ rounds: 0, points: 0, pages: 0 });
    expect(r.forecast(1000)).toBeUndefined();
  });
});
