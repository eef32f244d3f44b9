/**
 * The demand profile learner (src/core/predict/profile.ts) and the forecast it feeds into the
 * snapshot (src/core/predict/forecast.ts): time-of-week buckets once a week is known, a daily
 * fallback (same kind of day first) before, high quantiles, and nothing invented for a slot
 * never seen.
 */
import { describe, expect, it } from 'vitest';
import { DemandRecorder } from '../../src/core/predict/forecast.js';
import { DAY_SEC, isWeekend, learnProfile, ProfileLearner, quantile, WEEK_SEC, type DemandSample } from '../../src/core/predict/profile.js';

const HOUR = 3600;
/** Samples every 5 min over `days` days from Monday 00:00, demand = f(t). */
function series(days: number, f: (t: number) => number): DemandSample[] {
  const out: DemandSample[] = [];
  for (let t = 0; t < days * DAY_SEC; t += 300) out.push({ timeSec: t, cpuMips: f(t), memMiB: 1000 });
  return out;
}
/** 1000 MIPS from 08:00 to 18:00 on weekdays, 100 otherwise; 500 at weekend daytime. */
const office = (t: number): number => {
  const h = (t % DAY_SEC) / HOUR;
  const day = h >= 8 && h < 18;
  if (isWeekend(t)) return day ? 500 : 100;
  return day ? 1000 : 100;
};

describe('quantile', () => {
  it('interpolates between order statistics and handles the edges', () => {
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4, 5], 0.9)).toBeCloseTo(4.6);
    expect(quantile([5, 1], 1)).toBe(5);
    expect(quantile([7], 0.9)).toBe(7);
    expect(Number.isNaN(quantile([], 0.9))).toBe(true);
  });
});

describe('profile learner', () => {
  it('predicts nothing for a time slot it has never seen', () => {
    const l = learnProfile(series(0.25, office)); // Monday 00:00–06:00
    expect(l.predict(2 * HOUR)).not.toBeNull();
    expect(l.predict(10 * HOUR)).toBeNull();
  });

  it('before a full week: the time-of-day profile of the same kind of day', () => {
    const l = learnProfile(series(3, office)); // Mon–Wed
    const thu10 = 3 * DAY_SEC + 10 * HOUR;
    const p = l.predict(thu10)!;
    expect(p.source).toBe('daily-same-kind');
    expect(p.cpuMips).toBe(1000);
    expect(l.predict(3 * DAY_SEC + 3 * HOUR)!.cpuMips).toBe(100);
    // A Saturday with no weekend seen yet: any day's profile (the weekday one here).
    const sat = l.predict(5 * DAY_SEC + 10 * HOUR)!;
    expect(sat.source).toBe('daily');
    expect(sat.cpuMips).toBe(1000);
  });

  it('after a full week: the time-of-week profile tells Saturday from Monday', () => {
    const l = learnProfile(series(8, office));
    expect(l.spanSec).toBeGreaterThanOrEqual(WEEK_SEC);
    const nextSat10 = WEEK_SEC + 5 * DAY_SEC + 10 * HOUR;
    const nextMon10 = 2 * WEEK_SEC + 10 * HOUR;
    expect(l.predict(nextSat10)).toMatchObject({ source: 'weekly', cpuMips: 500 });
    expect(l.predict(nextMon10)).toMatchObject({ source: 'weekly', cpuMips: 1000 });
  });

  it('the high quantile sits above the mean when a slot varies from week to week', () => {
    // Monday 10:00–10:15 saw 900, 1000, 1100 (one 5-min sample each) over three weeks... and the
    // same in each sample of the bucket: 9 samples.
    const l = new ProfileLearner({ quantile: 0.9 });
    for (let w = 0; w < 3; w++) {
      for (let k = 0; k < 3; k++) l.add({ timeSec: w * WEEK_SEC + 10 * HOUR + k * 300, cpuMips: 900 + 100 * w, memMiB: 10 });
    }
    l.add({ timeSec: 3 * WEEK_SEC, cpuMips: 0, memMiB: 10 }); // span ≥ a week
    const p = l.predict(3 * WEEK_SEC + 10 * HOUR + 60)!;
    expect(p.source).toBe('weekly');
    expect(p.cpuMips).toBeCloseTo(1000);
    expect(p.cpuMipsHigh).toBeCloseTo(1100);
    expect(p.samples).toBe(9);
  });

  it('keeps only the most recent samples of a bucket, so the profile follows a change', () => {
    const l = new ProfileLearner({ keepDaily: 3 });
    for (let d = 0; d < 4; d++) l.add({ timeSec: d * DAY_SEC + 10 * HOUR, cpuMips: d < 1 ? 5000 : 100, memMiB: 1 });
    expect(l.predict(4 * DAY_SEC + 10 * HOUR)!.cpuMips).toBe(100);
  });

  it('ignores non-finite samples and rejects a bucket width that does not divide a day', () => {
    const l = new ProfileLearner();
    l.add({ timeSec: 10, cpuMips: NaN, memMiB: 1 });
    expect(l.predict(10)).toBeNull();
    expect(() => new ProfileLearner({ bucketSec: 7 * 60 })).toThrow(RangeError);
  });
});

describe('demand recorder → snapshot forecast', () => {
  it('forecasts the cluster total and each VM at the same instants, shifted by the time-of-week origin', () => {
    // The caller's t = 0 is a Wednesday: offset 2 days to Monday-based time of week.
    const r = new DemandRecorder({ horizonSec: 2 * HOUR, stepSec: 900, offsetSec: 2 * DAY_SEC });
    for (let t = 0; t < 2 * DAY_SEC; t += 300) {
      const h = (t % DAY_SEC) / HOUR;
      r.record(t, [{ id: 'a', cpuMips: h >= 9 && h < 17 ? 800 : 50, memMiB: 100 }, { id: 'b', cpuMips: 200, memMiB: 300 }]);
    }
    const now = 2 * DAY_SEC + 7.5 * HOUR; // Friday 07:30 in the caller's terms
    const f = r.forecast(now)!;
    expect(f.points.map((p) => p.atSec - now)).toEqual([900, 1800, 2700, 3600, 4500, 5400, 6300, 7200]);
    // 09:00 onwards the ramp is predicted: cluster 1000, a 800.
    const at9 = f.points.findIndex((p) => p.atSec === 2 * DAY_SEC + 9 * HOUR);
    expect(f.points[at9]!.cpuMips).toBe(1000);
    expect(f.points[at9 - 1]!.cpuMips).toBe(250);
    expect(f.vms!.a!.cpuMips[at9]).toBe(800);
    expect(f.vms!.b!.cpuMips.every((x) => x === 200)).toBe(true);
    expect(f.points[0]!.memMiB).toBe(400);
  });

  it('gives no forecast before anything ahead was seen', () => {
    const r = new DemandRecorder();
    r.record(0, [{ id: 'a', cpuMips: 1, memMiB: 1 }]);
    expect(r.forecast(0)).toBeUndefined();
  });
});
