/**
 * The dashboard's "saved vs always-on" figures (web/src/saving.ts): over the whole run, and over
 * the acting period of a demo that observed days first (from the cumulative energy at
 * actingFromMs, read from the per-round history).
 */
import { describe, expect, it } from 'vitest';
import { demoSavings, energyAt, savingOf } from '../../web/src/saving.js';

const H = 3_600_000;
/** Cumulative history: all on (10 kWh/h each) while observing 24 h, then Tide spends 4 kWh/h of always-on's 10. */
const points = Array.from({ length: 49 }, (_, i) => ({
  tMs: i * H, energyKWh: i <= 24 ? 10 * i : 240 + 4 * (i - 24), alwaysOnKWh: 10 * i,
}));

describe('dashboard energy savings', () => {
  it('savingOf: the share saved; unknown or zero always-on gives no figure', () => {
    expect(savingOf(25, 100)).toEqual({ energyKWh: 25, alwaysOnKWh: 100, pct: 75 });
    expect(savingOf(null, 100)).toBeNull();
    expect(savingOf(1, 0)).toBeNull();
    expect(savingOf(1, undefined)).toBeNull();
  });

  it('energyAt: the newest point at or before the instant, once the history has reached it', () => {
    expect(energyAt(points, 24 * H)).toEqual({ energyKWh: 240, alwaysOnKWh: 240 });
    expect(energyAt(points, 25.5 * H)).toEqual({ energyKWh: 244, alwaysOnKWh: 250 }); // between rounds: the round before
    // the history stops a round short of the instant: not known yet (would be a round early)
    expect(energyAt(points.slice(0, 24), 24 * H)).toBeNull();
    expect(energyAt(points, -1)).toBeNull();
    expect(energyAt([], 0)).toBeNull();
  });

  it('demoSavings: with observed days the acting figure excludes them and differs from the whole run; without, both are the same', () => {
    const end = points.at(-1)!;
    const observed = demoSavings({ energyKWh: end.energyKWh, alwaysOnKWh: end.alwaysOnKWh, observeDays: 1, actingStart: energyAt(points, 24 * H) });
    expect(observed.acting).toEqual({ energyKWh: 96, alwaysOnKWh: 240, pct: 60 });
    expect(observed.all!.pct).toBeCloseTo(30, 10); // 336 of 480: the observed day halves it
    expect(demoSavings({ energyKWh: 336, alwaysOnKWh: 480, observeDays: 1, actingStart: null })).toEqual({ all: observed.all, acting: null });
    const cold = demoSavings({ energyKWh: 336, alwaysOnKWh: 480, observeDays: 0, actingStart: null });
    expect(cold.acting).toEqual(cold.all);
    expect(demoSavings(null)).toEqual({ all: null, acting: null });
  });
});
