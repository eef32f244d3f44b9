/**
 * A restarted controller learns since when each off host is off (Host.offSinceSec) from one
 * narrow store query (Store.lastPowerSteps), not by reading plans: at 10,000 hosts a plan is
 * tens of MB, and the old way read up to 200 of them with all their step runs at start-up.
 * Also: a power-off older than the 200 newest plans is still found.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Controller, type ControllerDeps } from '../../src/app/controller.js';
import { compilePolicy } from '../../src/core/policy.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { officeScenario } from '../../src/sim/office.js';
import { openSqliteStore, type Store } from '../../src/store/store.js';

const INTERVAL = 300;
const stores: Store[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

/** `store` with its plan reads counted (by method name). */
function counting(store: Store): { store: Store; reads: Map<string, number> } {
  const reads = new Map<string, number>();
  const watched = new Set(['listPlans', 'getPlan', 'stepRuns']);
  const proxy = new Proxy(store, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver) as unknown;
      if (typeof key !== 'string' || !watched.has(key) || typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        reads.set(key, (reads.get(key) ?? 0) + 1);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, reads };
}

describe('controller start-up: since when each host is off', () => {
  it('comes from Store.lastPowerSteps, reads no plan, and finds a power-off older than 250 later plans', async () => {
    const store = openSqliteStore(':memory:');
    stores.push(store);
    const scenario = officeScenario({ hosts: 4, days: 2 });
    const clock = new VirtualClock(0);
    const driver = new SimDriver(scenario, clock);
    const deps: ControllerDeps = {
      hypervisor: driver, power: driver, clock, policy: compilePolicy('tide'), mode: 'automatic',
      limits: { maxConcurrent: 2, maxPerHost: 1 }, migrate: { mode: 'live' }, intervalSec: INTERVAL,
      hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])), rules: scenario.rules, bootTimeoutSec: 900,
      store,
    };
    // The quiet office at t = 0 consolidates: migrations, then power-offs (recorded as step runs).
    const r = await clock.drive(new Controller(deps).tick());
    const offAt = new Map(r.run!.steps.filter((x) => x.step.kind === 'powerOff' && x.state === 'succeeded')
      .map((x) => [(x.step as { host: string }).host, x.endedAt! / 1000]));
    expect(offAt.size).toBeGreaterThan(0);
    // 250 later plans that power nothing (the old start-up read only the newest 200 plans).
    for (let i = 0; i < 250; i++) store.savePlan({ policy: 'tide', time: i, steps: [], hosts: [], notMoved: [] }, { createdMs: 1000 + i, mode: 'automatic', status: 'done' });
    await clock.advance(INTERVAL * 1000);

    const { store: watched, reads } = counting(store);
    const again = new Controller({ ...deps, store: watched });
    expect(Object.fromEntries(reads), 'plans read while starting').toEqual({});
    const s = await again.collect();
    const off = s.hosts.filter((h) => h.powerState === 'off');
    expect(off.map((h) => h.id).sort()).toEqual([...offAt.keys()].sort());
    for (const h of off) expect(h.offSinceSec, h.id).toBe(offAt.get(h.id));
  });
});
