/**
 * Aborting a running migration through the API (POST /api/v1/migrations/{vm}/abort; operator),
 * in-process on the simulated office (SimDriver on a VirtualClock): the abort goes through the
 * driver's abort path (the migration's signal), the guest stays on its source, the step and
 * the plan end failed with TIDE_ABORTED, the history records it aborted; nothing running → 409.
 */
import { describe, expect, it } from 'vitest';
import { apiFixture, storeDigest, type ApiFixture } from './helpers.js';

/** Requests a migration through the API and lets the daemon start it: returns once it is in flight with progress. */
async function startMigration(f: ApiFixture): Promise<{ vm: string; from: string; to: string; planId: number; run: Promise<unknown> }> {
  const vm = f.tick.snapshot.vms.find((v) => v.host !== null && v.migratable && v.memMiB >= 2048)!;
  const res = await f.req('operator', 'POST', '/api/v1/migrations', { vm: vm.id, to: 'best' });
  expect(res.status).toBe(202);
  const m = (await res.json()) as { planId: number; to: string };
  const run = f.d.daemon.executeApproved();
  for (let i = 0; i < 200 && !(f.migrations.list()[0]?.progressPct ?? 0); i++) await f.d.clock.advance(250);
  expect(f.migrations.list()).toMatchObject([{ vm: vm.id, to: m.to, abortedBy: null }]);
  return { vm: vm.id, from: vm.host!, to: m.to, planId: m.planId, run };
}

describe('abort a running migration through the API', () => {
  it('the running migration (with progress) is listed; abort: 202, the guest stays on its source, step and plan failed TIDE_ABORTED, history says aborted', async () => {
    const f = await apiFixture();
    const { vm, from, to, planId, run } = await startMigration(f);
    const list = (await (await f.req('viewer', 'GET', '/api/v1/migrations')).json()) as { running: { vm: string; to: string; progressPct: number }[] };
    expect(list.running).toHaveLength(1);
    expect(list.running[0]).toMatchObject({ vm, to });
    expect(list.running[0]!.progressPct).toBeGreaterThan(0);
    expect(list.running[0]!.progressPct).toBeLessThan(100);

    const res = await f.req('operator', 'POST', `/api/v1/migrations/${vm}/abort`, { reason: 'wrong window' });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ vm, to, abortedBy: 'api:o#2 (wrong window)' });
    await f.d.clock.drive(run);

    expect(f.d.driver.placement()[vm]).toBe(from);
    expect(f.d.store.getPlan(planId)!.status).toBe('failed');
    const steps = f.d.store.stepRuns(planId);
    expect(steps).toMatchObject([{ state: 'failed', errorCode: 'TIDE_ABORTED' }]);
    expect(steps[0]!.errorMessage).toMatch(new RegExp(`keeps running on ${from}`));
    const hist = (await (await f.req('viewer', 'GET', `/api/v1/migrations?vm=${vm}`)).json()) as { running: unknown[]; migrations: { vm: string; ok: boolean; aborted: boolean; error: string }[] };
    expect(hist.running).toEqual([]);
    expect(hist.migrations[0]).toMatchObject({ vm, from, to, ok: false, aborted: true });
    expect(hist.migrations[0]!.error).toMatch(/^TIDE_ABORTED: /);

    // Nothing runs any more: 409 with a Tide code, nothing changed.
    const before = storeDigest(f.d.store);
    const again = await f.req('operator', 'POST', `/api/v1/migrations/${vm}/abort`);
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'TIDE_NO_MIGRATION', message: expect.stringMatching(/nothing to abort/) });
    expect(storeDigest(f.d.store)).toBe(before);
  });

  it('a viewer cannot abort (403) and the migration completes; a bad VM name is 400; another VM is 409; no daemon: 501', async () => {
    const f = await apiFixture();
    const { vm, to, planId, run } = await startMigration(f);
    const v = await f.req('viewer', 'POST', `/api/v1/migrations/${vm}/abort`);
    expect(v.status).toBe(403);
    expect((await f.req('none', 'POST', `/api/v1/migrations/${vm}/abort`)).status).toBe(401);
    expect((await f.req('operator', 'POST', `/api/v1/migrations/${encodeURIComponent('../x')}/abort`)).status).toBe(400);
    expect((await f.req('operator', 'POST', `/api/v1/migrations/${vm}/abort`, { force: true })).status).toBe(400);
    const other = f.tick.snapshot.vms.find((x) => x.id !== vm)!.id;
    expect((await f.req('operator', 'POST', `/api/v1/migrations/${other}/abort`)).status).toBe(409);
    expect(f.migrations.list()[0]!.abortedBy).toBeNull();
    await f.d.clock.drive(run);
    expect(f.d.store.getPlan(planId)!.status).toBe('done');
    expect(f.d.driver.placement()[vm]).toBe(to);
    expect(f.d.store.migrations({ vm })[0]).toMatchObject({ ok: true });
    const none = await apiFixture({ migrations: undefined });
    const r = await none.req('operator', 'POST', `/api/v1/migrations/${vm}/abort`);
    expect(r.status).toBe(501);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('TIDE_UNSUPPORTED');
  });
});

describe("tide demo --serve's slow motion while a migration runs", () => {
  it('the paced wall clock runs at the rate while migrations are in flight, at real time otherwise', async () => {
    const { slowMotion } = await import('../../src/api/demo-serve.js');
    const { MigrationControl } = await import('../../src/http/abort.js');
    let realMs = 0;
    const slept: number[] = [];
    const real = { now: () => realMs, sleep: async (ms: number) => { slept.push(ms); realMs += ms; } };
    const control = new MigrationControl();
    let inFlight = 0;
    const wall = slowMotion(real, () => (inFlight > 0 ? 0.25 : 1), control);
    realMs = 1000;
    expect(wall.now()).toBe(1000);
    inFlight = 1;
    await wall.sleep(100);
    // a sleep begun in slow motion lasts 1/rate as long in real time; the scaled clock advances by the asked time
    expect(slept).toEqual([400]);
    expect(wall.now()).toBe(1100);
    inFlight = 0;
    realMs += 500;
    expect(wall.now()).toBe(1100 + 500 * 0.25);
    realMs += 500;
    expect(wall.now()).toBe(1100 + 125 + 500);
  });
});

describe('slow motion when the paced run lags behind', () => {
  it('a migration that starts late sets the clock back to its due time: it is paced, not run at once to catch up', async () => {
    const { slowMotion } = await import('../../src/api/demo-serve.js');
    const { MigrationControl } = await import('../../src/http/abort.js');
    const { SimDriver } = await import('../../src/drivers/sim/sim-driver.js');
    const { VirtualClock } = await import('../../src/executor/clock.js');
    const { officeScenario } = await import('../../src/sim/office.js');
    let realMs = 0;
    const real = { now: () => realMs, sleep: async (ms: number) => { realMs += ms; } };
    const control = new MigrationControl();
    const wall = slowMotion(real, () => (control.inFlight > 0 ? 0.5 : 1), control, () => 1000);
    realMs = 5000; // 4 s behind: virtual "now" was due at 1000
    expect(wall.now()).toBe(5000);
    const clock = new VirtualClock(0);
    const scenario = officeScenario({ hosts: 4, days: 1 });
    const sim = new SimDriver(scenario, clock);
    const driver = control.wrap(sim);
    const vm = scenario.vms.find((v) => v.memMiB >= 2048)!;
    const to = scenario.hosts.find((h) => h.id !== sim.placement()[vm.id])!.id;
    const run = driver.migrate(vm.id, to, { mode: 'live' });
    expect(control.inFlight).toBe(1);
    expect(wall.now()).toBe(1000);
    await clock.drive(run);
  });
});
