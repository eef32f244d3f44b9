/**
 * The forecaster's memory at scale (issue 9): a VM profile is bounded (CPU only, 16-bit values,
 * time-of-day storage freed once a week is known), the recorder forgets VMs gone for longer than
 * vmForgetAfterSec, and recordVms records straight from a snapshot's VM list.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Vm } from '../../src/core/model/types.js';
import { CPU_ABS_ERROR, CPU_REL_ERROR, CpuProfile, decodeCpu, encodeCpu } from '../../src/core/predict/cpu-profile.js';
import { DemandRecorder } from '../../src/core/predict/forecast.js';
import { DAY_SEC, ProfileLearner, WEEK_SEC } from '../../src/core/predict/profile.js';

const STEP = 300;

/** A VM profile with the recorder's defaults, fed `days` of 5-min rounds of a daily pattern. */
function learned(days: number): { p: CpuProfile; at: (t: number) => ReturnType<ProfileLearner['bucketOf']> } {
  const buckets = new ProfileLearner();
  const p = new CpuProfile({ bucketSec: 900, quantile: 0.9, capWeekly: 6, capDaily: 12 });
  for (let t = 0; t <= days * DAY_SEC; t += STEP) p.add(t, buckets.bucketOf(t), 500 + 400 * Math.sin((2 * Math.PI * t) / DAY_SEC) + (t % 7));
  return { p, at: (t) => buckets.bucketOf(t) };
}

describe('CPU values in 16 bits', () => {
  it('round to within CPU_REL_ERROR (CPU_ABS_ERROR near 0), monotone; what cannot be held is −1', () => {
    const x = fc.oneof(fc.double({ min: 0, max: 8e6, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 100_000 }));
    fc.assert(
      fc.property(x, x, (a, b) => {
        const ca = encodeCpu(a);
        expect(ca).toBeGreaterThanOrEqual(0);
        expect(Math.abs(decodeCpu(ca) - a)).toBeLessThanOrEqual(Math.max(CPU_REL_ERROR * a, CPU_ABS_ERROR));
        if (a <= b) expect(ca).toBeLessThanOrEqual(encodeCpu(b));
      }),
      { numRuns: 2000 },
    );
    for (const p of [1, 2, 4, 1024, 2 ** -8, 2 ** 20]) for (const y of [p, p * (1 - 1e-15), p * (1 + 1e-15)]) expect(Math.abs(decodeCpu(encodeCpu(y)) - y)).toBeLessThanOrEqual(Math.max(CPU_REL_ERROR * y, CPU_ABS_ERROR));
    for (const bad of [-1, -0, 9e6, Infinity, Number.NaN]) expect(encodeCpu(bad)).toBe(-1);
    expect(decodeCpu(encodeCpu(0))).toBe(0);
  });

  it('a sample the encoding cannot hold switches the profile to exact doubles', () => {
    const l = new ProfileLearner();
    const p = new CpuProfile({ bucketSec: 900, quantile: 0.9, capWeekly: 6, capDaily: 12 });
    p.add(0, l.bucketOf(0), 1.1);
    p.add(300, l.bucketOf(300), 5e7);
    const out = new Float64Array(2);
    expect(p.predictCpu(l.bucketOf(600), out)).toBe(true);
    // 1.1 was rounded before the switch; 5e7 is exact
    expect(Math.abs(out[0]! - (1.1 + 5e7) / 2)).toBeLessThanOrEqual(CPU_REL_ERROR * 1.1);
    expect(Math.abs(out[1]! - (1.1 + 0.9 * (5e7 - 1.1)))).toBeLessThanOrEqual(CPU_REL_ERROR * 1.1);
    p.add(600, l.bucketOf(600), 2.5e7);
    expect(p.predictCpu(l.bucketOf(600), out)).toBe(true);
    expect(out[0]).toBe((decodeCpu(encodeCpu(1.1)) + 5e7 + 2.5e7) / 3);
  });
});

describe('a VM profile is bounded', () => {
  it('≤ 10 KiB of values after two weeks of 5-min rounds; time-of-day storage freed after the first week', () => {
    const week = learned(6);
    expect(week.p.holdsDaily).toBe(true); // before a week: time-of-day buckets are what it predicts from
    const two = learned(14);
    expect(two.p.holdsDaily).toBe(false);
    // 84 chunks of 8 time-of-week buckets (8 count bytes, 8 × 6 values × 2 B) and a header of
    // 132 chunk entries + 192 bits, in 2-B words
    expect(two.p.storedBytes).toBe(84 * (8 + 8 * 6 * 2) + (132 + 12) * 2);
    expect(two.p.storedBytes).toBeLessThanOrEqual(10 * 1024);
    const out = new Float64Array(2);
    for (let t = 14 * DAY_SEC; t < 15 * DAY_SEC; t += 900) expect(two.p.predictCpu(two.at(t), out)).toBe(true);
    // eight weeks later it holds no more
    expect(learned(70).p.storedBytes).toBe(two.p.storedBytes);
  });

  it('a recorder with 1 round holds little per VM (profiles grow with what they see)', () => {
    const r = new DemandRecorder({ stepSec: STEP });
    r.record(0, Array.from({ length: 100 }, (_, i) => ({ id: `vm${i}`, cpuMips: i, memMiB: 1 })));
    // the header and one chunk of each table it saw (time of week, time of day)
    expect(r.vmStoredBytes() / 100).toBe((132 + 12) * 2 + 2 * 104);
  });
});

describe('the recorder forgets VMs that are gone', () => {
  const round = (r: DemandRecorder, t: number, ids: readonly string[]): void => r.record(t, ids.map((id) => ({ id, cpuMips: 100, memMiB: 1 })));

  it('by default after two weeks without a sample; a VM still seen is kept', () => {
    const r = new DemandRecorder({ stepSec: 3600 });
    let t = 0;
    for (; t <= DAY_SEC; t += 3600) round(r, t, ['gone', 'stays']);
    expect(r.vmCount).toBe(2);
    expect(Object.keys(r.forecast(t - 3600)?.vms ?? {}).sort()).toEqual(['gone', 'stays']);
    const lastGone = t - 3600;
    for (; t <= lastGone + 2 * WEEK_SEC; t += 3600) round(r, t, ['stays']);
    expect(r.vmCount).toBe(2); // exactly two weeks: not yet
    round(r, t, ['stays']);
    expect(r.vmCount).toBe(1);
    expect(r.knowsVm('gone')).toBe(false);
    expect(Object.keys(r.forecast(t)?.vms ?? {})).toEqual(['stays']);
    // back after that: a new profile, from its new samples
    round(r, t + 3600, ['gone', 'stays']);
    expect(r.vmCount).toBe(2);
  });

  it('vmForgetAfterSec sets the period; Infinity never forgets', () => {
    const short = new DemandRecorder({ vmForgetAfterSec: 3 * 3600 });
    const never = new DemandRecorder({ vmForgetAfterSec: Infinity });
    for (const r of [short, never]) {
      round(r, 0, ['a', 'b']);
      for (let t = 900; t <= 10 * DAY_SEC; t += 900) round(r, t, ['b']);
    }
    expect(short.vmCount).toBe(1);
    expect(never.vmCount).toBe(2);
  });

  it('time going back (a clock step) forgets nothing, and forgetting goes on from the new time', () => {
    const r = new DemandRecorder({ vmForgetAfterSec: DAY_SEC });
    round(r, 30 * DAY_SEC, ['a']);
    round(r, 0, ['b']);
    expect(r.vmCount).toBe(2);
    for (let t = 3600; t <= 2 * DAY_SEC; t += 3600) round(r, t, ['c']);
    // 'b' is gone for more than a day; 'a' was last seen "in the future": kept
    expect(['a', 'b', 'c'].map((id) => r.knowsVm(id))).toEqual([true, false, true]);
  });
});

describe('recordVms', () => {
  it('records the VM list as record() does its fresh VMs (stale and unknown left out)', () => {
    const vm = (id: string, cpuMips: number, usage?: Vm['usage']): Vm => ({
      id, host: 'h1', vcpus: 2, mipsPerVcpu: 1000, memMiB: 1024, memReservedMiB: 1024,
      demand: { cpuMips, memMiB: 512, diskBytesPerSec: 0, netBytesPerSec: 0 }, cpuHistoryMips: [], tags: [], migratable: true,
      ...(usage ? { usage } : {}),
    });
    const a = new DemandRecorder({ stepSec: 900 });
    const b = new DemandRecorder({ stepSec: 900 });
    for (let t = 0; t <= 2 * DAY_SEC; t += 900) {
      const vms = [vm('x', 100 + (t % 1000)), vm('y', 300, t >= DAY_SEC && t < DAY_SEC + 6 * 3600 ? 'stale' : undefined), vm('z', 2000, 'unknown')];
      a.recordVms(t, vms);
      b.record(t, vms.filter((v) => v.usage === undefined).map((v) => ({ id: v.id, cpuMips: v.demand.cpuMips, memMiB: v.demand.memMiB })));
    }
    const f = a.forecast(2 * DAY_SEC);
    expect(f).toEqual(b.forecast(2 * DAY_SEC));
    expect(Object.keys(f?.vms ?? {}).sort()).toEqual(['x', 'y']);
  });
});
