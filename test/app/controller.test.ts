/**
 * The control loop's robustness: a round that throws is recorded and the loop goes on; only
 * the abort signal ends it. Executing a plan takes the cluster lock and records each step's
 * start before its side effect.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Controller, type ControllerDeps } from '../../src/app/controller.js';
import { compilePolicy } from '../../src/core/policy.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { officeScenario } from '../../src/sim/office.js';
import { openSqliteStore, type Store } from '../../src/store/store.js';

const INTERVAL = 300;
const dirs: string[] = [];
const stores: Store[] = [];
afterEach(() => {
  stores.splice(0).forEach((s) => s.close());
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function setup(store: Store | undefined, over: Partial<ControllerDeps> = {}) {
  const scenario = officeScenario({ hosts: 4, days: 1 });
  const clock = new VirtualClock(0);
  const driver = new SimDriver(scenario, clock);
  const c = new Controller({
    hypervisor: driver, power: driver, clock, store, policy: compilePolicy('tide'), mode: 'automatic',
    limits: { maxConcurrent: 2, maxPerHost: 1 }, migrate: { mode: 'live' }, intervalSec: INTERVAL,
    hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])), rules: scenario.rules, bootTimeoutSec: 900,
    ...over,
  });
  return { scenario, clock, driver, c };
}
function fileStore(): { path: string; store: Store } {
  const dir = mkdtempSync(join(tmpdir(), 'tide-ctl-'));
  dirs.push(dir);
  const path = join(dir, 'tide.sqlite');
  const store = openSqliteStore(path);
  stores.push(store);
  return { path, store };
}

describe('Controller.run', () => {
  it('records a throwing round and goes on to the next interval', async () => {
    const store = openSqliteStore(':memory:');
    stores.push(store);
    const errors: { code: string; message: string; at: number }[] = [];
    const plans: number[] = [];
    const { clock, driver, c } = setup(store, {
      mode: 'recommend',
      observer: { onRoundError: (e, at) => errors.push({ ...e, at }), onPlan: (_p, at) => plans.push(at) },
    });
    // Round 1: the inventory fails (I/O). Round 2: a bug (TypeError). Round 3: works.
    const listHosts = driver.listHosts.bind(driver);
    let calls = 0;
    driver.listHosts = async () => {
      calls++;
      if (calls === 1) throw Object.assign(new Error('every host timed out'), { code: 'TIDE_HOST_UNREACHABLE' });
      if (calls === 2) throw new TypeError("Cannot read properties of undefined (reading 'up')");
      return listHosts();
    };
    await clock.drive(c.run(3 * INTERVAL * 1000));
    expect(errors).toEqual([
      { code: 'TIDE_HOST_UNREACHABLE', message: 'every host timed out', at: 0 },
      { code: 'TIDE_INTERNAL', message: "Cannot read properties of undefined (reading 'up')", at: INTERVAL * 1000 },
    ]);
    expect(plans).toEqual([2 * INTERVAL * 1000]);
    expect(store.roundErrors().map((e) => [e.atMs, e.code])).toEqual([[INTERVAL * 1000, 'TIDE_INTERNAL'], [0, 'TIDE_HOST_UNREACHABLE']]);
  });

  it('keeps going when recording the failure fails too, and ends (resolving) only on abort', async () => {
    const { clock, driver, c } = setup(undefined, { observer: { onRoundError: () => { throw new Error('observer broken'); } } });
    let rounds = 0;
    driver.listHosts = async () => {
      rounds++;
      throw new Error('down');
    };
    const ac = new AbortController();
    void clock.sleep(10 * INTERVAL * 1000 + 1).then(() => ac.abort());
    await clock.drive(c.run(Infinity, ac.signal));
    expect(rounds).toBe(11);
    expect(clock.now()).toBe(10 * INTERVAL * 1000 + 1);
  });
});

describe('Controller.execute', () => {
  it('records each step as running before its side effect, under the cluster lock', async () => {
    const { store } = fileStore();
    const { clock, driver, c } = setup(store, { mode: 'recommend', lockHolder: { pid: process.pid, host: hostname(), command: 'tide daemon (test)', startedMs: 0 } });
    const { plan, planId } = await clock.drive(c.tick());
    const first = plan.steps.find((s) => s.kind === 'migrate' && s.deps.length === 0)!;
    expect(first).toBeDefined();
    // What the database holds at the moment the side effect is issued (a crash right then would leave this).
    let atSideEffect: unknown;
    const migrate = driver.migrate.bind(driver);
    driver.migrate = (vm, to, opts, signal) => {
      if (vm === (first as { vm: string }).vm) {
        atSideEffect = { step: store.stepRuns(planId!).find((r) => r.stepId === first.id), lock: store.clusterLock()?.holder.command };
      }
      return migrate(vm, to, opts, signal);
    };
    const run = await clock.drive(c.execute(plan, planId));
    expect(run.failed).toBe(0);
    expect(atSideEffect).toEqual({ step: expect.objectContaining({ state: 'running', endedMs: null, vm: (first as { vm: string }).vm }), lock: 'tide daemon (test)' });
    expect(store.stepRuns(planId!).map((r) => r.state)).toEqual(plan.steps.map(() => 'succeeded'));
    expect(store.clusterLock()).toBeUndefined();
  });

  it('is refused while another process holds the lock: nothing moves and the plan is marked failed', async () => {
    const { path, store } = fileStore();
    const other = openSqliteStore(path);
    stores.push(other);
    other.acquireClusterLock({ pid: process.pid, host: hostname(), command: 'tide evacuate srv-3', startedMs: 0 }, 60_000);
    const { clock, driver, c } = setup(store, { mode: 'recommend' });
    const before = driver.placement();
    const { plan, planId } = await clock.drive(c.tick());
    expect(plan.steps.length).toBeGreaterThan(0);
    await expect(clock.drive(c.execute(plan, planId))).rejects.toMatchObject({ code: 'TIDE_LOCKED', message: expect.stringMatching(/^cluster locked by tide evacuate srv-3 \(pid \d+ on .+\) since /) });
    expect(driver.placement()).toEqual(before);
    expect(store.getPlan(planId!)!.status).toBe('failed');
  });

  it('in the loop, a locked cluster is a recorded round error; rounds act again once the lock is released', async () => {
    const { path, store } = fileStore();
    const other = openSqliteStore(path);
    stores.push(other);
    const lease = other.acquireClusterLock({ pid: process.pid, host: hostname(), command: 'tide evacuate srv-3', startedMs: 0 }, 3_600_000);
    const errors: string[] = [];
    const ran: number[] = [];
    const { clock, driver, c } = setup(store, { observer: { onRoundError: (e) => errors.push(e.code), onRunEnd: (r) => ran.push(r.succeeded) } });
    const before = driver.placement();
    // The other actor finishes between the first and the second round.
    void clock.sleep(INTERVAL * 1000 - 1).then(() => other.releaseClusterLock(lease));
    await clock.drive(c.run(2 * INTERVAL * 1000));
    expect(errors).toEqual(['TIDE_LOCKED']);
    expect(store.roundErrors()[0]).toMatchObject({ code: 'TIDE_LOCKED', atMs: 0 });
    expect(ran.length).toBe(1);
    expect(ran[0]).toBeGreaterThan(0);
    expect(driver.placement()).not.toEqual(before);
  });
});
