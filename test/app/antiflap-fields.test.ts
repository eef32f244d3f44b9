/**
 * The anti-flap snapshot fields the controller fills for tide (issue 7, item 4; see
 * docs/tide-policy.md): Vm.movesToday (migrations started in the last 24 h),
 * ClusterSnapshot.movesLastHour, Host.offSinceSec — from the controller's own memory, the
 * store's migrations and plan step runs (so they survive a restart), and the power
 * transitions it observes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Controller, type ControllerDeps } from '../../src/app/controller.js';
import { compilePolicy } from '../../src/core/policy.js';
import { migrations } from '../../src/core/plan/types.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { officeScenario } from '../../src/sim/office.js';
import { openSqliteStore, type Store } from '../../src/store/store.js';

const INTERVAL = 300;
const stores: Store[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

function setup(over: Partial<ControllerDeps> = {}) {
  const scenario = officeScenario({ hosts: 4, days: 2 });
  const clock = new VirtualClock(0);
  const driver = new SimDriver(scenario, clock);
  const deps: ControllerDeps = {
    hypervisor: driver, power: driver, clock, policy: compilePolicy('tide'), mode: 'automatic',
    limits: { maxConcurrent: 2, maxPerHost: 1 }, migrate: { mode: 'live' }, intervalSec: INTERVAL,
    hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])), rules: scenario.rules, bootTimeoutSec: 900,
    ...over,
  };
  return { clock, driver, deps, c: new Controller(deps) };
}

describe('controller: anti-flap snapshot fields', () => {
  it('counts the moves of the last hour and of each VM in 24 h, and when each host went off', async () => {
    const store = openSqliteStore(':memory:');
    stores.push(store);
    const { clock, c, deps } = setup({ store });
    // Before anything moved: zero everywhere, no host known off.
    const s0 = await c.collect();
    expect(s0.movesLastHour).toBe(0);
    expect(s0.vms.every((v) => v.movesToday === 0)).toBe(true);
    // t = 0: the quiet office consolidates (migrations, then power-offs).
    const r = await clock.drive(c.tick());
    const moved = migrations(r.plan).map((m) => m.vm);
    const offs = r.plan.steps.flatMap((s) => (s.kind === 'powerOff' ? [s.host] : []));
    expect(moved.length).toBeGreaterThan(0);
    expect(offs.length).toBeGreaterThan(0);
    expect(r.run!.failed).toBe(0);
    const offAt = new Map(r.run!.steps.filter((x) => x.step.kind === 'powerOff').map((x) => [(x.step as { host: string }).host, x.endedAt! / 1000]));

    await clock.advance(INTERVAL * 1000);
    const s1 = await c.collect();
    expect(s1.movesLastHour).toBe(moved.length);
    for (const v of s1.vms) expect(v.movesToday).toBe(moved.includes(v.id) ? 1 : 0);
    for (const h of s1.hosts) {
      if (offs.includes(h.id)) {
        expect(h.powerState).toBe('off');
        expect(h.offSinceSec).toBe(offAt.get(h.id));
      } else expect(h.offSinceSec).toBeUndefined();
    }

    // An hour later the hourly count is spent; the daily one stays.
    await clock.advance(3600 * 1000);
    const s2 = await c.collect();
    expect(s2.movesLastHour).toBe(0);
    expect(s2.vms.filter((v) => v.movesToday === 1).map((v) => v.id).sort()).toEqual([...moved].sort());

    // A restarted controller on the same store knows the same (migrations and power steps are in the store).
    const again = new Controller(deps);
    const s3 = await again.collect();
    expect(s3.vms.filter((v) => v.movesToday === 1).map((v) => v.id).sort()).toEqual([...moved].sort());
    for (const h of s3.hosts) if (offs.includes(h.id)) expect(h.offSinceSec).toBe(offAt.get(h.id));

    // After 24 h nothing counts any more.
    await clock.advance(86_400 * 1000);
    const s4 = await again.collect();
    expect(s4.vms.every((v) => v.movesToday === 0)).toBe(true);
  });

  it('without a store: a host seen going off is off since the round that first saw it, forgotten once it is on again', async () => {
    const { clock, driver, c } = setup({ mode: 'recommend' });
    const s0 = await c.collect();
    expect(s0.hosts.every((h) => h.offSinceSec === undefined)).toBe(true);
    // srv-4 goes off outside Tide (its VMs moved away first, by hand).
    const plan = await clock.drive(c.tick());
    const evac = migrations(plan.plan).filter((m) => m.from === 'srv-4');
    for (const m of evac) await clock.drive(driver.migrate(m.vm, m.to, { mode: 'live' }));
    if ((await driver.hostDomains('srv-4')).length === 0) {
      await driver.powerOff('srv-4');
      await clock.advance(INTERVAL * 1000);
      const seen = await c.collect();
      expect(seen.hosts.find((h) => h.id === 'srv-4')).toMatchObject({ powerState: 'off', offSinceSec: clock.now() / 1000 });
      await clock.advance(INTERVAL * 1000);
      // It stays the time it was first seen off.
      expect((await c.collect()).hosts.find((h) => h.id === 'srv-4')!.offSinceSec).toBe(clock.now() / 1000 - INTERVAL);
      await driver.powerOn('srv-4');
      await clock.advance(3600 * 1000);
      const back = (await c.collect()).hosts.find((h) => h.id === 'srv-4')!;
      expect(back.powerState).toBe('on');
      expect(back.offSinceSec).toBeUndefined();
    } else {
      throw new Error('srv-4 was not emptied by the plan of the quiet office: the scenario changed, adjust the test');
    }
  });

  it('a host already off when Tide starts (no record) has no offSinceSec: no hysteresis on a guess', async () => {
    const { driver, c } = setup();
    for (const vm of await driver.hostDomains('srv-4')) driver.removeVm(vm.name);
    await driver.powerOff('srv-4');
    const s = await c.collect();
    expect(s.hosts.find((h) => h.id === 'srv-4')).toMatchObject({ powerState: 'off' });
    expect(s.hosts.find((h) => h.id === 'srv-4')!.offSinceSec).toBeUndefined();
  });

  it('tide honours the filled fields: with maxMovesPerVmPerDay=1 no VM moves twice in a simulated day', async () => {
    const { clock, c } = setup({ policy: compilePolicy('tide:maxMovesPerVmPerDay=1,maxMovesPerHour=4') });
    const count = new Map<string, number>();
    const perHour: number[] = [];
    for (let t = 0; t < 86_400; t += INTERVAL) {
      const r = await clock.drive(c.tick());
      const ms = r.run ? r.run.steps.filter((x) => x.step.kind === 'migrate' && x.state === 'succeeded') : [];
      for (const x of ms) count.set((x.step as { vm: string }).vm, (count.get((x.step as { vm: string }).vm) ?? 0) + 1);
      perHour.push(ms.length);
      await clock.runUntil(t * 1000 + INTERVAL * 1000);
    }
    expect(count.size).toBeGreaterThan(0);
    expect(Math.max(...count.values())).toBe(1);
    // Any 12 consecutive rounds (an hour) start at most 4 migrations.
    for (let i = 0; i + 12 <= perHour.length; i++) expect(perHour.slice(i, i + 12).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(4);
  });
});
