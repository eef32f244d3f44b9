// The control loop against the simulator's datacenter, on virtual time, with one host whose
// hypervisor stops answering while it is on and its guests keep running: Tide must leave that
// host alone (no VM to or from it, never powered off or on) for a whole day of automatic mode.
import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/app/controller.js';
import { compilePolicy } from '../../src/core/policy.js';
import type { Plan } from '../../src/core/plan/types.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { officeScenario } from '../../src/sim/office.js';

describe('automatic mode with a host whose hypervisor went silent', () => {
  it('a day of rounds never touches the silent host, whose guests keep running there', async () => {
    const scenario = officeScenario({ hosts: 4, days: 1 });
    const clock = new VirtualClock(0);
    const driver = new SimDriver(scenario, clock);
    const dark = 'srv-2';
    const guests = Object.entries(driver.placement()).filter(([, h]) => h === dark).map(([vm]) => vm);
    expect(guests.length).toBeGreaterThan(0);
    driver.setReachable(dark, false);
    const plans: Plan[] = [];
    const controller = new Controller({
      hypervisor: driver, power: driver, clock, policy: compilePolicy('tide'), mode: 'automatic',
      limits: { maxConcurrent: 2, maxPerHost: 1 }, migrate: { mode: 'live', autoConverge: true, timeoutSec: 600 },
      intervalSec: scenario.intervalSec, hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])),
      bootTimeoutSec: 900, observer: { onPlan: (p) => plans.push(p) },
    });
    const stepMs = scenario.intervalSec * 1000;
    for (let t = 0; t < 24 * 3600 * 1000; t += stepMs) {
      await clock.runUntil(t);
      const res = await clock.drive(controller.tick());
      expect(res.snapshot.hosts.find((h) => h.id === dark)!.powerState).toBe('unknown');
      while (clock.pending > 0 && (clock.nextAt() ?? Infinity) < t + stepMs) await clock.runUntil(clock.nextAt()!);
    }
    const steps = plans.flatMap((p) => p.steps);
    // the loop did act on the others (so this test can tell a planner that does nothing)
    expect(steps.some((s) => s.kind === 'powerOff')).toBe(true);
    for (const s of steps) {
      if (s.kind === 'migrate') expect([s.from, s.to]).not.toContain(dark);
      else if (s.kind === 'place') expect(s.to).not.toBe(dark);
      else expect(s.host).not.toBe(dark);
    }
    for (const p of plans) expect(p.hosts.some((v) => v.host === dark && v.class === 'unknown')).toBe(true);
    expect(await driver.status(dark)).toBe('on');
    const placement = driver.placement();
    for (const vm of guests) expect(placement[vm]).toBe(dark);
  });
});
