/**
 * The controller puts the window in force into the snapshot it collects (read at clock time +
 * scheduleOffsetSec, untilSec reported in clock seconds); without a schedule there is none. A
 * blackout window reaches the plan: the round proposes nothing.
 */
import { describe, expect, it } from 'vitest';
import { runDemo, type DemoEvent } from '../../src/api/demo.js';
import { Controller, type ControllerDeps } from '../../src/app/controller.js';
import { compilePolicy } from '../../src/core/policy.js';
import { SIM_MONDAY_EPOCH_SEC, type Schedule } from '../../src/core/schedule.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { officeScenario } from '../../src/sim/office.js';

const ALL = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

function controller(over: Partial<ControllerDeps>): { c: Controller; clock: VirtualClock } {
  const scenario = officeScenario({ hosts: 4, days: 1 });
  const clock = new VirtualClock(0);
  const driver = new SimDriver(scenario, clock);
  const c = new Controller({
    hypervisor: driver, power: driver, clock, policy: compilePolicy('tide'), mode: 'recommend',
    limits: { maxConcurrent: 2, maxPerHost: 1 }, migrate: { mode: 'live' }, intervalSec: 300,
    hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])), rules: scenario.rules,
    ...over,
  });
  return { c, clock };
}

describe('controller: schedule window in the snapshot', () => {
  it('carries the window in force, in clock seconds', async () => {
    const schedule: Schedule = { windows: [{ name: 'night', kind: 'consolidate', days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '18:00', to: '07:00', timeZone: 'UTC' }] };
    const { c, clock } = controller({ schedule, scheduleOffsetSec: SIM_MONDAY_EPOCH_SEC });
    // t = 0 is Monday 00:00 UTC: no night started on Sunday, so balance until 18:00.
    expect((await c.collect()).window).toEqual({ kind: 'balance', name: 'otherwise', untilSec: 18 * 3600 });
    await clock.runUntil(19 * 3600 * 1000);
    expect((await c.collect()).window).toEqual({ kind: 'consolidate', name: 'night', untilSec: 31 * 3600 });
  });

  it('without a schedule the snapshot has no window', async () => {
    const { c } = controller({});
    expect('window' in (await c.collect())).toBe(false);
  });

  it('a blackout round plans nothing, with the reason on every host', async () => {
    const schedule: Schedule = { windows: [{ name: 'backup', kind: 'blackout', days: [...ALL], from: '00:00', to: '00:00', timeZone: 'UTC' }] };
    const plain = controller({});
    // The same cluster without a schedule has work to do at t = 0 (consolidation of the quiet night).
    expect((await plain.c.tick()).plan.steps.length).toBeGreaterThan(0);
    const { c } = controller({ schedule });
    const r = await c.tick();
    expect(r.plan.steps).toEqual([]);
    expect(r.plan.hosts.length).toBe(4);
    for (const h of r.plan.hosts) expect(h.reason).toMatch(/^blackout window backup until further notice/);
  });
});

describe('demo: the same controller with a schedule', () => {
  it('powers hosts off only in the consolidate window (Monday from 18:00), and the default demo has no window', async () => {
    const schedule: Schedule = { windows: [{ name: 'night', kind: 'consolidate', days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '18:00', to: '07:00', timeZone: 'UTC' }] };
    const events: DemoEvent[] = [];
    const r = await runDemo({ hours: 24, schedule, onEvent: (e) => events.push(e) });
    expect(r.powerOffs).toBeGreaterThan(0);
    const off = events.filter((e) => e.kind === 'powerOff' || (e.kind === 'migrate' && /can be emptied/.test(e.text)));
    expect(off.length).toBeGreaterThan(0);
    for (const e of off) expect(e.atSec, e.text).toBeGreaterThanOrEqual(18 * 3600);
    const plain: DemoEvent[] = [];
    await runDemo({ hours: 24, onEvent: (e) => plain.push(e) });
    expect(plain.some((e) => e.kind === 'powerOff' && e.atSec < 18 * 3600)).toBe(true);
  });
});
