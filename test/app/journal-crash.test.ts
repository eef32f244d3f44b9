// Crash safety on the simulator: the process executing a multi-VM plan (4 live migrations, then a
// power-off of the emptied host) is killed at each step — right after the step's intent was
// saved, in the middle of a migration, and right after the driver call returned but before the
// outcome was saved — while the simulated world goes on (a migration in flight completes, as a
// libvirt peer-to-peer job does). A new process over the same store file and the same world
// runs recoverOnStart and then more automatic rounds. Checked against the world itself (the
// SimDriver's placement and VM states), not against Tide's own report: no VM lost, none twice,
// none paused; the interrupted plan superseded; every step's stored state true; no 'running'
// step and no pending power intent left.
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Controller, type ControllerDeps } from '../../src/app/controller.js';
import { recoverOnStart, type RecoverReport } from '../../src/app/journal.js';
import { linearPower } from '../../src/core/model/power.js';
import type { Plan, Step } from '../../src/core/plan/types.js';
import { compilePolicy } from '../../src/core/policy.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import type { SimHostSpec, SimScenario, SimVmSpec } from '../../src/sim/scenario.js';
import { openSqliteStore, type LockHolder, type Store } from '../../src/store/store.js';
import { SimProcess } from '../helpers/crash-sim.js';

// each killed process leaves an 'exit' listener behind (withClusterLock's release), as a killed process would leave its lock
process.setMaxListeners(100);
const dir = mkdtempSync(join(tmpdir(), 'tide-journal-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const INTERVAL_SEC = 300;
const SAMPLES = 288;
const host = (id: string): SimHostSpec => ({
  id, cpuCores: 8, mipsPerCore: 2000, memMiB: 65536, netBytesPerSec: 1.25e9, diskBytesPerSec: 1e9,
  power: linearPower(100, 250, { offW: 5, bootSec: 120, bootW: 150 }),
});
const vm = (id: string, memMiB: number): SimVmSpec => ({ id, vcpus: 1, mipsPerVcpu: 2000, memMiB, cpu: new Float64Array(SAMPLES).fill(0.02) });
const VMS = ['v1', 'v2', 'v3', 'v4', 'w1', 'w2'];
const scenario: SimScenario = {
  name: 'crash', intervalSec: INTERVAL_SEC, samples: SAMPLES, startSec: 0, rules: [],
  hosts: [host('a'), host('b'), host('c')],
  vms: [vm('v1', 8192), vm('v2', 8192), vm('v3', 8192), vm('v4', 8192), vm('w1', 2048), vm('w2', 2048)],
};
const PLACEMENT = { v1: 'c', v2: 'c', v3: 'c', v4: 'c', w1: 'a', w2: 'b' };

/** Evacuate c (4 live migrations, one at a time), then power it off. */
const PLAN: Plan = {
  policy: 'crash-test', time: 0, hosts: [], notMoved: [],
  steps: [
    { id: 1, kind: 'migrate', vm: 'v1', from: 'c', to: 'a', memMiB: 8192, deps: [], reason: 'evacuate c', by: 'test' },
    { id: 2, kind: 'migrate', vm: 'v2', from: 'c', to: 'b', memMiB: 8192, deps: [], reason: 'evacuate c', by: 'test' },
    { id: 3, kind: 'migrate', vm: 'v3', from: 'c', to: 'a', memMiB: 8192, deps: [], reason: 'evacuate c', by: 'test' },
    { id: 4, kind: 'migrate', vm: 'v4', from: 'c', to: 'b', memMiB: 8192, deps: [], reason: 'evacuate c', by: 'test' },
    { id: 5, kind: 'powerOff', host: 'c', deps: [1, 2, 3, 4], reason: 'c is empty', by: 'test' },
  ],
};

/** A holder whose pid is dead (above pid_max): the killed process's lock is taken over at once. */
const DEAD_HOLDER: LockHolder = { pid: 4_194_304 + 4242, host: hostname(), command: 'tide daemon (killed)', startedMs: 0 };

function deps(store: Store, world: { driver: SimDriver; clock: VirtualClock }, proc: SimProcess | null, extra: Partial<ControllerDeps> = {}): ControllerDeps {
  const hv = proc ? proc.driver(world.driver) : world.driver;
  return {
    hypervisor: hv, power: hv, clock: proc ? proc.clock(world.clock) : world.clock, store, policy: compilePolicy('tide'), mode: 'automatic',
    limits: { maxConcurrent: 1, maxPerHost: 1 }, migrate: { mode: 'live', timeoutSec: 600 }, intervalSec: INTERVAL_SEC,
    hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])), bootTimeoutSec: 900, ...extra,
  };
}

type KillAt = 'intent' | 'mid' | 'effect';

interface Crash {
  world: { driver: SimDriver; clock: VirtualClock };
  storeFile: string;
  planId: number;
}

/** Runs PLAN in a process killed at step `stepId` (`at`), then lets the world run on for `worldMs`. */
async function crashAt(stepId: number, at: KillAt, name: string, worldMs = 120_000): Promise<Crash> {
  const clock = new VirtualClock(0);
  const driver = new SimDriver(scenario, clock, { placement: PLACEMENT });
  const world = { driver, clock };
  const storeFile = join(dir, `${name}.sqlite`);
  const store = openSqliteStore(storeFile);
  const proc = new SimProcess();
  let startedAt: number | null = null;
  const step = PLAN.steps.find((s) => s.id === stepId)!;
  if (at === 'effect') {
    proc.killAfter = (method, args) => (step.kind === 'migrate' ? method === 'migrate' && args[0] === step.vm : method === 'powerOff' && args[0] === ('host' in step ? step.host : null));
  }
  const c = new Controller(deps(store, world, proc, {
    lockHolder: DEAD_HOLDER,
    observer: {
      onStepStart: (r) => {
        if (r.step.id !== stepId) return;
        startedAt = clock.now();
        if (at === 'intent') proc.kill();
      },
    },
  }));
  const planId = store.savePlan(PLAN, { createdMs: clock.now(), mode: 'automatic', status: 'running' });
  let settled = false;
  c.execute(PLAN, planId).then(() => { settled = true; }, () => { settled = true; });
  while (!proc.dead) {
    if (settled) throw new Error(`the plan ended before the kill at step ${stepId} (${at})`);
    await clock.advance(250);
    if (at === 'mid' && startedAt !== null && clock.now() >= startedAt + 3000) proc.kill();
  }
  // the intent was saved before the process died, and nothing after it
  expect(store.stepRuns(planId).find((r) => r.stepId === stepId)?.state).toBe('running');
  await clock.advance(worldMs);
  store.close();
  return { world, storeFile, planId };
}

/** Where each VM is and in which state, as the world says. */
async function truth(driver: SimDriver): Promise<Map<string, { host: string; state: string }[]>> {
  const m = new Map<string, { host: string; state: string }[]>();
  for (const v of await driver.listVms()) m.set(v.name, [...(m.get(v.name) ?? []), { host: v.host, state: v.state }]);
  return m;
}

async function expectAllRunningOnce(driver: SimDriver): Promise<Map<string, string>> {
  const t = await truth(driver);
  expect([...t.keys()].sort()).toEqual([...VMS].sort()); // none lost
  const at = new Map<string, string>();
  for (const [name, copies] of t) {
    expect(copies, `${name} runs exactly once`).toHaveLength(1);
    expect(copies[0]!.state, `${name} is running`).toBe('running');
    at.set(name, copies[0]!.host);
  }
  return at;
}

/** Every stored step of the plan agrees with the world as it was right after recovery. */
async function expectTruthful(store: Store, planId: number, where: Map<string, string>, driver: SimDriver): Promise<void> {
  const rows = store.stepRuns(planId);
  expect(rows.map((r) => r.stepId)).toEqual(PLAN.steps.map((s) => s.id)); // every step has a record
  for (const r of rows) {
    const s = PLAN.steps.find((x) => x.id === r.stepId)! as Step;
    expect(r.state, `step ${r.stepId}`).not.toBe('running');
    if (s.kind === 'migrate') {
      if (r.state === 'succeeded') expect(where.get(s.vm), `step ${r.stepId} succeeded: ${s.vm} on ${s.to}`).toBe(s.to);
      else expect(where.get(s.vm), `step ${r.stepId} ${r.state}: ${s.vm} still on ${s.from}`).toBe(s.from);
      if (r.state === 'cancelled') expect(r.startedMs).toBeNull();
    } else if (s.kind === 'powerOff') {
      const p = await driver.status(s.host);
      if (r.state === 'succeeded') expect(p).toBe('off');
      else expect(p).toBe('on');
    }
  }
}

async function restart(c: Crash, settleMs = 120_000): Promise<{ store: Store; report: RecoverReport; where: Map<string, string> }> {
  const { world } = c;
  const store = openSqliteStore(c.storeFile);
  const report = await world.clock.drive(recoverOnStart({ store, hypervisor: world.driver, power: world.driver, clock: world.clock, settleMs, pollMs: 1000 }));
  const where = await expectAllRunningOnce(world.driver);
  return { store, report, where };
}

/** More rounds of the new process (automatic mode), as a daemon would run them. */
async function rounds(c: Crash, store: Store, n: number): Promise<void> {
  const ctl = new Controller(deps(store, c.world, null));
  for (let i = 0; i < n; i++) {
    await c.world.clock.drive(ctl.tick());
    await c.world.clock.advance(INTERVAL_SEC * 1000);
  }
}

const POINTS: { step: number; at: KillAt }[] = PLAN.steps.flatMap((s) => (s.kind === 'migrate' ? (['intent', 'mid', 'effect'] as const) : (['intent', 'effect'] as const)).map((at) => ({ step: s.id, at })));

describe('SIGKILL at each step of a 4-migration + power-off plan, then recoverOnStart and more rounds', () => {
  it.each(POINTS)('killed at step $step ($at)', async ({ step, at }) => {
    const c = await crashAt(step, at, `s${step}-${at}`);
    const { store, report, where } = await restart(c);
    try {
      expect(report.code).toBe('recovered');
      const s = PLAN.steps.find((x) => x.id === step)!;
      const rec = report.steps.find((x) => x.stepId === step)!;
      expect(rec).toBeDefined();
      if (s.kind === 'migrate') {
        // killed before the driver call: nothing moved; mid or after: the world finished the job
        expect(rec.code).toBe(at === 'intent' ? 'stayed-on-source' : 'migrated');
        expect(where.get(s.vm)).toBe(at === 'intent' ? s.from : s.to);
      } else {
        expect(rec.code).toBe(at === 'intent' ? 'power-off-not-done' : 'powered-off');
        expect(await c.world.driver.status('c')).toBe(at === 'intent' ? 'on' : 'off');
      }
      const plan = store.getPlan(c.planId)!;
      expect(plan.status).toBe('superseded');
      expect(plan.statusReason).toMatch(/interrupted: the process running it died/);
      await expectTruthful(store, c.planId, where, c.world.driver);
      // steps after the killed one never started: cancelled
      expect(report.plans[0]!.cancelled).toEqual(PLAN.steps.filter((x) => x.id > step).map((x) => x.id));
      expect(store.runningStepRuns()).toEqual([]);
      expect(store.powerActions({ pending: true })).toEqual([]);
      expect(store.unknownMigrations()).toEqual([]);
      if (s.kind === 'powerOff') {
        const pa = store.powerActions({ planId: c.planId });
        expect(pa).toHaveLength(1);
        expect(pa[0]).toMatchObject({ host: 'c', action: 'powerOff', outcome: at === 'intent' ? 'failed' : 'succeeded', by: 'recovery' });
      }
      // a second start finds nothing to recover
      expect((await c.world.clock.drive(recoverOnStart({ store, hypervisor: c.world.driver, power: c.world.driver, clock: c.world.clock }))).code).toBe('clean');
      // the next rounds plan afresh and run: still every VM once, running, nothing left 'running'
      await rounds(c, store, 4);
      await expectAllRunningOnce(c.world.driver);
      expect(store.runningStepRuns()).toEqual([]);
      expect(store.decisions({ limit: 10 }).length).toBeGreaterThanOrEqual(4);
    } finally {
      store.close();
    }
  });

  it('a VM still migrating when recovery gives up waiting is blocked, never migrated a second time, and settled once its job ended', async () => {
    // killed 3 s into v1's 8 GiB move (about 14 s): the world has not finished it at restart
    const c = await crashAt(1, 'mid', 'still-migrating', 0);
    const { world } = c;
    const store = openSqliteStore(c.storeFile);
    try {
      const report = await world.clock.drive(recoverOnStart({ store, hypervisor: world.driver, power: world.driver, clock: world.clock, settleMs: 1000, pollMs: 500 }));
      expect(report.steps[0]).toMatchObject({ stepId: 1, code: 'migration-unknown', state: 'failed', outcome: 'unknown' });
      expect(report.steps[0]!.reason).toMatch(/migration job of v1 .* still runs/);
      expect(store.unknownMigrations()).toMatchObject([{ vm: 'v1', from: 'c', to: 'a', status: 'open' }]);
      expect(store.stepRuns(c.planId)[0]).toMatchObject({ state: 'failed', errorCode: 'TIDE_MIGRATION_UNKNOWN' });
      // a round while the job still runs: v1 not migratable, c and a excluded, no step touches them
      const migrations: string[] = [];
      const orig = world.driver.migrate.bind(world.driver);
      world.driver.migrate = async (...a: Parameters<SimDriver['migrate']>) => { migrations.push(a[0]); return orig(...a); };
      const ctl = new Controller(deps(store, world, null));
      const r1 = await world.clock.drive(ctl.tick());
      expect(r1.reconciled).toMatchObject([{ vm: 'v1', outcome: 'unknown', status: 'open' }]);
      expect(r1.snapshot.vms.find((v) => v.id === 'v1')!.migratable).toBe(false);
      for (const s of r1.plan.steps) {
        if (s.kind === 'migrate') expect([s.vm, s.from, s.to]).not.toContain('v1');
        if (s.kind === 'migrate') expect([s.from, s.to].some((h) => h === 'c' || h === 'a')).toBe(false);
        if (s.kind === 'powerOff' || s.kind === 'powerOn') expect(['a', 'c']).not.toContain(s.host);
      }
      expect(migrations).not.toContain('v1');
      // the world finishes the job; the next round's reconcile settles it on the target
      await world.clock.advance(60_000);
      expect(world.driver.placement().v1).toBe('a');
      const r2 = await world.clock.drive(ctl.tick());
      expect(r2.reconciled).toMatchObject([{ vm: 'v1', outcome: 'target', status: 'resolved', vmOn: 'a' }]);
      expect(store.unknownMigrations()).toEqual([]);
      await expectAllRunningOnce(world.driver);
    } finally {
      store.close();
    }
  });
});
