import { describe, expect, it } from 'vitest';
import { officeScenario } from '../../src/sim/office.js';
import { alwaysOnEnergyKWh, simulate } from '../../src/sim/run.js';
import { timelineFigures, type TimelineEntry } from '../../src/sim/timeline.js';

const mig = (t: number, vm: string): TimelineEntry => ({ t, kind: 'migrate', vm, from: 'a', to: 'b', reason: 'r' });
const off = (t: number, host: string): TimelineEntry => ({ t, kind: 'powerOff', host, reason: 'r' });
const on = (t: number, host: string): TimelineEntry => ({ t, kind: 'powerOn', host, reason: 'r' });

describe('timelineFigures', () => {
  it('counts the most moves of one VM within one calendar day', () => {
    // vm1: twice on day 0, once on day 1 (86400 s is day 1); vm2: three times on day 1.
    const f = timelineFigures([mig(100, 'vm1'), mig(86399, 'vm1'), mig(86400, 'vm1'), mig(90000, 'vm2'), mig(90001, 'vm2'), mig(99999, 'vm2')]);
    expect(f.maxMovesPerVmPerDay).toBe(3);
    expect(timelineFigures([mig(100, 'vm1'), mig(86500, 'vm1')]).maxMovesPerVmPerDay).toBe(1);
  });

  it('pairs each power-off with the same host’s next power-on, in time order, and ignores periods cut by the end', () => {
    // Out of order on purpose: h1 off 1000→8000 (7000 s), h2 off 2000→2600 (600 s), h1 off again at 9000 and never back.
    const f = timelineFigures([on(8000, 'h1'), off(1000, 'h1'), off(2000, 'h2'), on(2600, 'h2'), off(9000, 'h1')]);
    expect(f.shortestOffSec).toBe(600);
    expect(timelineFigures([off(10, 'h1')]).shortestOffSec).toBeNull();
    // A power-on without an earlier power-off (a host that started off) is no off period.
    expect(timelineFigures([on(10, 'h1')]).shortestOffSec).toBeNull();
    expect(timelineFigures([]).maxMovesPerVmPerDay).toBe(0);
  });
});

describe('simulator metrics on the office (one day, realistic accounting)', () => {
  const scenario = officeScenario({ hosts: 4, days: 1 });
  const r = simulate({ scenario, policy: 'tide', accounting: 'realistic', alwaysOn: true });

  it('the timeline holds exactly the migrations and power actions, in time order, with reasons', () => {
    expect(r.timeline.length).toBe(r.migrations + r.powerOns + r.powerOffs);
    expect(r.timeline.filter((e) => e.kind === 'migrate').length).toBe(r.migrations);
    expect(r.timeline.filter((e) => e.kind === 'powerOn').length).toBe(r.powerOns);
    expect(r.timeline.filter((e) => e.kind === 'powerOff').length).toBe(r.powerOffs);
    expect(r.powerOffs).toBeGreaterThan(0);
    for (let i = 1; i < r.timeline.length; i++) expect(r.timeline[i]!.t).toBeGreaterThanOrEqual(r.timeline[i - 1]!.t);
    const hosts = new Set(scenario.hosts.map((h) => h.id));
    const vms = new Set(scenario.vms.map((v) => v.id));
    for (const e of r.timeline) {
      expect(e.reason.length).toBeGreaterThan(0);
      if (e.kind === 'migrate') {
        expect(vms.has(e.vm!)).toBe(true);
        expect(hosts.has(e.to!)).toBe(true);
        expect(e.from).not.toBe(e.to);
      } else expect(hosts.has(e.host!)).toBe(true);
    }
  });

  it('energy lies between the lower bound and the always-on reference', () => {
    expect(r.alwaysOnKWh).toBeDefined();
    expect(r.lowerBoundKWh).toBeGreaterThan(0);
    expect(r.lowerBoundKWh).toBeLessThanOrEqual(r.energyKWh);
    expect(r.alwaysOnKWh!).toBeGreaterThanOrEqual(r.energyKWh);
    expect(alwaysOnEnergyKWh(scenario, 'realistic')).toBe(r.alwaysOnKWh);
  });

  it('the always-on reference never drops below the power of every host idle for the whole day', () => {
    // 4 hosts on for the integrated span, each drawing at least its idle power.
    const idleKWh = scenario.hosts.reduce((a, h) => a + h.power.wattsAtLoad[0]!, 0) * ((scenario.samples * scenario.intervalSec - 300.1) / 3600) / 1000;
    expect(r.alwaysOnKWh!).toBeGreaterThanOrEqual(idleKWh * 0.999);
  });

  it('saturated host-intervals and failed steps are counted, non-negative integers', () => {
    expect(Number.isInteger(r.saturatedHostIntervals)).toBe(true);
    expect(r.saturatedHostIntervals).toBeGreaterThanOrEqual(0);
    expect(r.saturatedHostIntervals).toBeLessThanOrEqual(r.rounds * scenario.hosts.length);
    expect(Number.isInteger(r.stepsFailed)).toBe(true);
    expect(r.stepsFailed).toBeLessThanOrEqual(r.stepsDropped);
  });
});
