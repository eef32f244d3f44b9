/**
 * A simulated office day with a schedule: the snapshot carries the window in force, and tide
 * consolidates and powers hosts off only inside the consolidate window; in the balance window
 * it only relieves, spreads and wakes. Without a schedule the snapshot has no window at all.
 */
import { describe, expect, it } from 'vitest';
import type { SnapshotWindow } from '../../src/core/model/types.js';
import { compilePolicy, plan, policyDefinition } from '../../src/core/policy.js';
import type { Schedule } from '../../src/core/schedule.js';
import { Engine } from '../../src/sim/engine.js';
import { officeScenario } from '../../src/sim/office.js';
import { withRealisticPower } from '../../src/sim/run.js';
import type { SimScenario } from '../../src/sim/scenario.js';

const NIGHTS: Schedule = {
  windows: [
    { name: 'night', kind: 'consolidate', days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '18:00', to: '07:00', timeZone: 'UTC' },
    { name: 'weekend', kind: 'consolidate', days: ['sat', 'sun'], from: '00:00', to: '00:00', timeZone: 'UTC' },
  ],
};

interface Round { t: number; window: SnapshotWindow | undefined; consolidations: number; powerOffs: number; powerOns: number; steps: number }

function day(schedule: Schedule | undefined): Round[] {
  const base = withRealisticPower(officeScenario({ hosts: 4, days: 1 }));
  const sc: SimScenario = schedule ? { ...base, schedule } : base;
  const policy = compilePolicy('tide', policyDefinition('tide').sim.realisticArgs ?? {});
  const rounds: Round[] = [];
  new Engine(sc, { accounting: 'realistic', initialPlacement: policy.definition.sim.initialPlacement }).run((snap, now) => {
    const p = plan(snap, policy, now);
    rounds.push({
      t: snap.time, window: snap.window, steps: p.steps.length,
      consolidations: p.steps.filter((s) => s.kind === 'migrate' && s.by === 'tide:consolidate').length,
      powerOffs: p.steps.filter((s) => s.kind === 'powerOff').length,
      powerOns: p.steps.filter((s) => s.kind === 'powerOn').length,
    });
    return p;
  });
  return rounds;
}

describe('a simulated Monday with a schedule', () => {
  const withSchedule = day(NIGHTS);
  const hour = (t: number): number => (t % 86400) / 3600;

  it('every snapshot carries the window in force: consolidate before 07:00 and from 18:00, balance between', () => {
    expect(withSchedule.length).toBeGreaterThan(200);
    for (const r of withSchedule) {
      const h = hour(r.t);
      // Monday 00:00–07:00: neither Sunday's weekend nor a weekday night started on Sunday covers it.
      const expected = h >= 18 ? { kind: 'consolidate', name: 'night', untilSec: 86400 + 7 * 3600 } : { kind: 'balance', name: 'otherwise', untilSec: 18 * 3600 };
      expect(r.window, `t=${r.t}`).toEqual(expected);
    }
  });

  it('consolidates and powers off only inside the consolidate window, and does so there', () => {
    const outside = withSchedule.filter((r) => r.window?.kind !== 'consolidate');
    const inside = withSchedule.filter((r) => r.window?.kind === 'consolidate');
    expect(outside.reduce((a, r) => a + r.consolidations + r.powerOffs, 0)).toBe(0);
    expect(inside.reduce((a, r) => a + r.consolidations, 0)).toBeGreaterThan(0);
    expect(inside.reduce((a, r) => a + r.powerOffs, 0)).toBeGreaterThan(0);
  });

  it('without a schedule the snapshot has no window and tide consolidates in the daytime too', () => {
    const none = day(undefined);
    expect(none.every((r) => r.window === undefined)).toBe(true);
    const daytime = none.filter((r) => hour(r.t) < 18);
    expect(daytime.reduce((a, r) => a + r.consolidations + r.powerOffs, 0)).toBeGreaterThan(0);
  });
});
