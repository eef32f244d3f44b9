/**
 * The demand forecaster's lazy, compact storage (src/core/predict) gives exactly the values of
 * the implementation it replaced (kept verbatim in ./predict-reference.ts): random sample series
 * — random options, VM sets, irregular times (gaps, spans beyond a week, negative times),
 * non-finite values — recorded into both, and every forecast and prediction compared with
 * toEqual (Object.is on numbers: −0 ≠ 0, NaN = NaN).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DemandRecorder, type RecorderOptions, type VmDemandSample } from '../../src/core/predict/forecast.js';
import { DAY_SEC, learnProfile, type DemandSample, type ProfileOptions } from '../../src/core/predict/profile.js';
import { RefDemandRecorder, RefProfileLearner } from './predict-reference.js';

const value = fc.oneof(
  { weight: 20, arbitrary: fc.double({ min: -10, max: 5000, noNaN: true }) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 4000 }) },
  { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Infinity, -Infinity, 0, -0) },
);
const keep = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 8 }) }, { weight: 1, arbitrary: fc.constantFrom(2.5, -1, Infinity, Number.NaN) });
const bucketSec = fc.constantFrom(300, 900, 3600, 7200, DAY_SEC);
const profileOpts: fc.Arbitrary<ProfileOptions> = fc.record(
  { bucketSec, quantile: fc.double({ min: -0.2, max: 1.2, noNaN: true }), keepWeekly: keep, keepDaily: keep },
  { requiredKeys: [] },
);
const recorderOpts: fc.Arbitrary<RecorderOptions> = fc.record(
  {
    bucketSec, quantile: fc.double({ min: 0, max: 1, noNaN: true }), keepWeekly: keep, keepDaily: keep, vmKeepWeekly: keep, vmKeepDaily: keep,
    horizonSec: fc.integer({ min: 0, max: 2 * DAY_SEC }), stepSec: fc.constantFrom(60, 300, 900, 1000, 3600),
    perVm: fc.boolean(), offsetSec: fc.oneof(fc.constant(0), fc.integer({ min: -DAY_SEC, max: 7 * DAY_SEC }), fc.double({ min: -1e6, max: 1e6, noNaN: true })),
  },
  { requiredKeys: [] },
);
/** Time advances: mostly one interval, sometimes hours or days (a profile spanning > 1 week). */
const dt = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(60, 300, 900) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: 3 * DAY_SEC }) }, { weight: 1, arbitrary: fc.double({ min: 0, max: 5000, noNaN: true }) });
const round = fc.record({
  dt,
  vms: fc.array(fc.record({ id: fc.constantFrom('a', 'b', 'c', 'vm-1', '7'), cpuMips: value, memMiB: value }), { maxLength: 5 }),
  /** Forecasts asked after this round (the same instant twice: the memo). */
  asks: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: -3600, max: 3600 })), { maxLength: 2 }),
});

describe('predict: the compact forecaster gives the old values', () => {
  it('DemandRecorder.forecast equals the reference after every round', () => {
    fc.assert(
      fc.property(recorderOpts, fc.integer({ min: -2 * DAY_SEC, max: 30 * DAY_SEC }), fc.array(round, { minLength: 1, maxLength: 60 }), (opts, t0, rounds) => {
        const now = new DemandRecorder(opts);
        const ref = new RefDemandRecorder(opts);
        let t = t0;
        for (const r of rounds) {
          t += r.dt;
          now.record(t, r.vms);
          ref.record(t, r.vms);
          for (const a of [0, ...r.asks, 0]) expect(now.forecast(t + a)).toEqual(ref.forecast(t + a));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a VM whose profile covers the whole horizon gets the same arrays (long regular series)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 8, max: 16 }), fc.array(fc.double({ min: 0, max: 3000, noNaN: true }), { minLength: 1, maxLength: 50 }), (days, levels) => {
        const opts: RecorderOptions = { stepSec: 300, horizonSec: 6 * 3600 };
        const now = new DemandRecorder(opts);
        const ref = new RefDemandRecorder(opts);
        let seen = 0;
        for (let t = 0, i = 0; t <= days * DAY_SEC; t += 3600, i++) {
          const vms: VmDemandSample[] = [{ id: 'x', cpuMips: levels[i % levels.length]!, memMiB: 1 }, { id: 'y', cpuMips: levels[(i * 7) % levels.length]! / 3, memMiB: 2 }];
          now.record(t, vms);
          ref.record(t, vms);
          if (i % 24 !== 0) continue;
          const f = now.forecast(t);
          expect(f).toEqual(ref.forecast(t));
          seen += Object.keys(f?.vms ?? {}).length;
        }
        // the property is not vacuous: per-VM arrays were compared
        expect(seen).toBeGreaterThan(0);
      }),
      { numRuns: 20 },
    );
  });

  it('ProfileLearner.predict and ahead equal the reference (source, samples, memory too)', () => {
    const sample: fc.Arbitrary<DemandSample> = fc.record({ timeSec: fc.oneof(fc.integer({ min: -DAY_SEC, max: 20 * DAY_SEC }), fc.double({ min: -1e7, max: 1e7, noNaN: true }), fc.constant(Number.NaN)), cpuMips: value, memMiB: value });
    fc.assert(
      fc.property(profileOpts, fc.array(sample, { maxLength: 200 }), fc.array(fc.double({ min: -1e7, max: 1e7, noNaN: true }), { minLength: 1, maxLength: 20 }), (opts, samples, at) => {
        const now = learnProfile(samples, opts);
        const ref = new RefProfileLearner(opts);
        for (const s of samples) ref.add(s);
        expect(now.spanSec).toBe(ref.spanSec);
        for (const a of at) expect(now.predict(a)).toEqual(ref.predict(a));
        expect(now.ahead(at[0]!, DAY_SEC, 1800)).toEqual(ref.ahead(at[0]!, DAY_SEC, 1800));
      }),
      { numRuns: 300 },
    );
  });
});
