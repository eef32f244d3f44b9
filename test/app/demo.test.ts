import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/api/demo.js';
import { Controller } from '../../src/app/controller.js';
import { compilePolicy } from '../../src/core/policy.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { officeScenario } from '../../src/sim/office.js';
import { openSqliteStore } from '../../src/store/store.js';

describe('the control loop on the simulated office', () => {
  it('saves energy against the datacenter left alone, powers hosts off at night and wakes them by day', async () => {
    const events: string[] = [];
    const s = await runDemo({ hours: 48, onEvent: (e) => events.push(`${e.kind}@${Math.floor(e.atSec / 3600)}h`) });
    expect(s.energyKWh).toBeLessThan(s.baselineEnergyKWh * 0.85);
    expect(s.powerOffs).toBeGreaterThan(0);
    expect(s.powerOns).toBeGreaterThan(0);
    expect(s.failedSteps).toBe(0);
    // Saturation is the price of consolidating; it must stay far below the hosts' sample count.
    expect(s.saturatedIntervals).toBeLessThan(0.01 * 4 * 576);
    // Hosts come back during working hours (07:00–18:00) on a weekday.
    expect(events.some((e) => /^powerOn@(7|8|9|1[0-7])h$/.test(e) || /^powerOn@(3[1-9]|4[01])h$/.test(e))).toBe(true);
  });

  it('in recommend mode only proposes: nothing moves, plans are stored', async () => {
    const scenario = officeScenario({ hosts: 4, days: 1 });
    const clock = new VirtualClock(0);
    const driver = new SimDriver(scenario, clock);
    const store = openSqliteStore(':memory:');
    const before = driver.placement();
    const c = new Controller({
      hypervisor: driver, power: driver, clock, store, policy: compilePolicy('tide'), mode: 'recommend',
      limits: { maxConcurrent: 2, maxPerHost: 1 }, migrate: { mode: 'live' }, intervalSec: 300,
      hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])), rules: scenario.rules,
    });
    const r = await clock.drive(c.tick());
    expect(r.plan.steps.length).toBeGreaterThan(0);
    expect(r.run).toBeNull();
    expect(driver.placement()).toEqual(before);
    expect(store.listPlans({ status: 'proposed' })).toHaveLength(1);
    // Approving it later executes exactly the stored plan.
    const stored = store.listPlans({ status: 'proposed' })[0]!;
    const run = await clock.drive(c.execute(stored.plan, stored.id));
    expect(run.failed).toBe(0);
    expect(store.getPlan(stored.id)!.status).toBe('done');
    store.close();
  });
});
