/**
 * Predictive DPM survives a restart: a controller on the simulated office (virtual clock) with a
 * store runs 8 days and 5 hours; a new controller on the same store, once its seed (run beside
 * the rounds: its first round has no forecast) is done, forecasts what the old one forecasts at that moment (the seed replays the store's metrics
 * history: hourly means beyond 24 h, so the forecast agrees per clock hour, not per 5-min
 * point); a new controller without the store knows nothing beyond its current 15-min bucket. The horizon (Tuesday 05:00–09:00) holds the morning ramp,
 * so a flat or wrong seed fails the comparison.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Controller, type ControllerDeps } from '../../src/app/controller.js';
import { historyRounds, seedRecorderFromStore } from '../../src/app/forecast-seed.js';
import { DemandRecorder } from '../../src/core/predict/forecast.js';
import { SIM_MONDAY_EPOCH_SEC } from '../../src/core/schedule.js';
import { compilePolicy } from '../../src/core/policy.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { officeScenario } from '../../src/sim/office.js';
import { openSqliteStore, type MetricPoint, type Store } from '../../src/store/store.js';

const stores: Store[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

describe('learned demand profiles survive a restart (seeded from the store)', () => {
  it('a new controller on the same store forecasts once seeded (not in its first round: the seed runs beside it), as the old one would; without the store it has none beyond its current bucket', async () => {
    const scenario = officeScenario({ hosts: 4, days: 9 });
    const clock = new VirtualClock(0);
    const driver = new SimDriver(scenario, clock);
    const store = openSqliteStore(':memory:');
    stores.push(store);
    const deps = (withStore: boolean): ControllerDeps => ({
      hypervisor: driver, power: driver, clock, policy: compilePolicy('tide'), mode: 'recommend',
      limits: { maxConcurrent: 2, maxPerHost: 1 }, migrate: { mode: 'live' }, intervalSec: scenario.intervalSec,
      hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])), bootTimeoutSec: 900,
      ...(withStore ? { store } : {}),
    });
    const old = new Controller(deps(true));
    const stepMs = scenario.intervalSec * 1000;
    const restartMs = (8 * 24 + 5) * 3600 * 1000;
    for (let t = 0; t < restartMs; t += stepMs) {
      await clock.runUntil(t);
      await clock.drive(old.tick());
    }
    await clock.runUntil(restartMs);
    // the store holds both resolutions: hourly means (older than a day) and raw rounds
    const stored = store.metricsHistory({ kind: 'vm' });
    expect(stored.some((p) => p.res === 'hour')).toBe(true);
    expect(stored.some((p) => p.res === 'raw')).toBe(true);

    const before = (await clock.drive(old.collect())).forecast;
    expect(before, 'the old controller forecasts after 8 days').toBeDefined();
    // The seed runs beside the rounds (one store page per event-loop turn): the first round plans
    // without the learned forecast (as a cold start); once seeded, the same moment forecasts.
    let release = (): void => {};
    const gate = new Promise<void>((r) => (release = r));
    const restarted = new Controller({ ...deps(true), seedPause: () => gate });
    const first = await clock.drive(restarted.collect());
    expect(first.forecast, 'no forecast while the seed runs').toBeUndefined();
    release();
    await restarted.whenSeeded();
    const after = (await clock.drive(restarted.collect({ record: false }))).forecast;
    expect(after, 'the restarted controller forecasts once seeded').toBeDefined();
    // the same forecast, exactly, as the seed run inside the first round (the synchronous path) and that round's samples
    const sync = new DemandRecorder({ stepSec: scenario.intervalSec, offsetSec: -SIM_MONDAY_EPOCH_SEC });
    seedRecorderFromStore(sync, store, first.vms, restartMs / 1000, { intervalSec: scenario.intervalSec });
    sync.recordVms(restartMs / 1000, first.vms);
    expect(after).toEqual(sync.forecast(restartMs / 1000));
    const blank = await clock.drive(new Controller(deps(false)).collect());
    // without the store it knows only this round's sample: at most the rest of the current 15-min bucket
    const blankPoints = blank.forecast?.points ?? [];
    expect(blankPoints.length).toBeLessThanOrEqual(2);
    for (const p of blankPoints) expect(p.atSec).toBeLessThan(restartMs / 1000 + 900);

    // same instants; the horizon holds the morning ramp (a flat or missing seed cannot pass)
    expect(after!.points.map((p) => p.atSec)).toEqual(before!.points.map((p) => p.atSec));
    expect(after!.points.length).toBe((4 * 3600) / scenario.intervalSec);
    const peak = Math.max(...before!.points.map((p) => p.cpuMips));
    const low = Math.min(...before!.points.map((p) => p.cpuMips));
    expect(peak, 'the horizon holds the morning ramp').toBeGreaterThan(2 * low);
    // The seed is the store's history: the days before the last one are hourly means, so the
    // seeded forecast equals the old one at the store's resolution: per clock hour, the means
    // agree within 3 % (CPU) and 1 % (memory); each point within 20 % of the horizon's peak.
    const hourly = (pts: readonly { atSec: number; cpuMips: number; memMiB: number }[]) => {
      const by = new Map<number, { cpu: number; mem: number; n: number }>();
      for (const p of pts) {
        const h = Math.floor(p.atSec / 3600);
        const a = by.get(h) ?? { cpu: 0, mem: 0, n: 0 };
        by.set(h, { cpu: a.cpu + p.cpuMips, mem: a.mem + p.memMiB, n: a.n + 1 });
      }
      // hours the horizon covers (nearly) whole: 05:05–05:55, 06–07, 07–08, 08–09 (not the 09:00 point alone)
      return [...by].filter(([, a]) => a.n >= 6).map(([h, a]) => ({ h, cpu: a.cpu / a.n, mem: a.mem / a.n }));
    };
    const hb = hourly(before!.points);
    const ha = hourly(after!.points);
    expect(ha.map((x) => x.h)).toEqual(hb.map((x) => x.h));
    expect(hb.length).toBe(4);
    hb.forEach((b, k) => {
      expect(Math.abs(ha[k]!.cpu - b.cpu), `cpu in hour ${b.h}`).toBeLessThanOrEqual(0.03 * b.cpu);
      expect(Math.abs(ha[k]!.mem - b.mem), `mem in hour ${b.h}`).toBeLessThanOrEqual(0.01 * b.mem);
    });
    before!.points.forEach((p, k) => {
      expect(Math.abs(after!.points[k]!.cpuMips - p.cpuMips), `cpu at ${p.atSec}`).toBeLessThanOrEqual(0.2 * peak);
    });
    // the mean over the horizon agrees closely, and the per-VM forecasts cover the same VMs
    const mean = (xs: readonly { cpuMips: number }[]) => xs.reduce((a, p) => a + p.cpuMips, 0) / xs.length;
    expect(Math.abs(mean(after!.points) - mean(before!.points))).toBeLessThanOrEqual(0.05 * mean(before!.points));
    expect(Object.keys(after!.vms ?? {}).sort()).toEqual(Object.keys(before!.vms ?? {}).sort());

    // Several rounds while the seed runs: each plans without the learned forecast (as a cold
    // start), and their samples are recorded after the seed's, in order: the recorder then holds
    // exactly what the synchronous seed followed by the same rounds gives.
    let release2 = (): void => {};
    const gate2 = new Promise<void>((r) => (release2 = r));
    const slow = new Controller({ ...deps(true), seedPause: () => gate2 });
    const during: { atSec: number; vms: (typeof first)['vms'] }[] = [];
    for (let k = 0; k < 3; k++) {
      if (k > 0) await clock.advance(stepMs);
      const t = await clock.drive(slow.tick());
      expect(t.snapshot.forecast, `round ${k} while seeding`).toBeUndefined();
      expect(t.plan).toBeDefined();
      during.push({ atSec: t.snapshot.time, vms: t.snapshot.vms });
    }
    release2();
    await slow.whenSeeded();
    const lastSec = during.at(-1)!.atSec;
    const caughtUp = (await clock.drive(slow.collect({ record: false }))).forecast;
    const ref = new DemandRecorder({ stepSec: scenario.intervalSec, offsetSec: -SIM_MONDAY_EPOCH_SEC });
    seedRecorderFromStore(ref, store, during[0]!.vms, during[0]!.atSec, { intervalSec: scenario.intervalSec });
    for (const d of during) ref.recordVms(d.atSec, d.vms);
    expect(caughtUp).toBeDefined();
    expect(caughtUp).toEqual(ref.forecast(lastSec));
    // a week on, the horizon holds this time of week: there the rounds' samples count (leaving them out differs)
    const rec = (slow as unknown as { demandRecorder: DemandRecorder }).demandRecorder;
    const weekOn = lastSec + 7 * 86_400 - 3600;
    expect(rec.forecast(weekOn)).toEqual(ref.forecast(weekOn));
    const without = new DemandRecorder({ stepSec: scenario.intervalSec, offsetSec: -SIM_MONDAY_EPOCH_SEC });
    seedRecorderFromStore(without, store, during[0]!.vms, during[0]!.atSec, { intervalSec: scenario.intervalSec });
    expect(rec.forecast(weekOn)).not.toEqual(without.forecast(weekOn));
  });
});

describe('historyRounds (stored metrics → recorder rounds)', () => {
  const pt = (o: Partial<MetricPoint>): MetricPoint => ({ kind: 'vm', name: 'a', host: 'h', cpuPct: 50, memMiB: 100, atMs: 0, res: 'raw', samples: 1, ...o });
  it('raw rounds as they are; an hourly mean of n rounds as n rounds spread over its hour; unmeasured and unknown-size VMs left out', () => {
    const size = new Map([['a', 1000], ['b', 2000]]);
    const rounds = [...historyRounds([
      pt({ atMs: 0, res: 'hour', samples: 4 }), pt({ atMs: 0, res: 'hour', name: 'b', cpuPct: 10, samples: 2 }),
      pt({ atMs: 3_600_000 }), pt({ atMs: 3_600_000, name: 'b', cpuPct: null }), pt({ atMs: 3_600_000, name: 'gone' }),
      pt({ atMs: 3_900_000, name: 'b', memMiB: null }),
    ], size)];
    expect(rounds.map((r) => r.atSec)).toEqual([450, 1350, 2250, 3150, 3600]);
    expect(rounds[0]!.vms).toEqual([{ id: 'a', cpuMips: 500, memMiB: 100 }, { id: 'b', cpuMips: 200, memMiB: 100 }]);
    expect(rounds[4]!.vms).toEqual([{ id: 'a', cpuMips: 500, memMiB: 100 }]);
  });
});
