// Unknown migrations in the control loop (src/app/reconcile.ts, Controller.tick): a migrate step
// that ends with TIDE_MIGRATION_UNKNOWN is recorded in the store; every round reconciles it
// first, and while it stays unknown the planner neither moves that VM nor powers either host
// off (nor moves anything to or from them); once reconcile resolves it, the next round plans
// as usual. FakeDriver on virtual time, with a scripted reconcile.
import { describe, expect, it } from 'vitest';
import { Controller, type ControllerDeps } from '../../src/app/controller.js';
import { guardPlan, blocksOf } from '../../src/app/reconcile.js';
import type { Plan, Step } from '../../src/core/plan/types.js';
import { compilePolicy } from '../../src/core/policy.js';
import { FakeDriver, ManualClock } from '../../src/drivers/fake/index.js';
import type { ReconcileResult, RecoveryOutcome } from '../../src/drivers/hypervisor.js';
import type { PowerDriver } from '../../src/drivers/power.js';
import { openSqliteStore, type Store } from '../../src/store/store.js';

const INTERVAL = 300;

interface Setup { c: Controller; d: FakeDriver; clock: ManualClock; store: Store; reconciles: string[]; powerOffs: string[]; outcome: { next: RecoveryOutcome } }

/** Three idle hosts with one idle VM each: the tide policy consolidates them and powers hosts off. */
function setup(extra: Partial<ControllerDeps> = {}, reconcile = true): Setup {
  const clock = new ManualClock();
  const d = new FakeDriver({
    clock,
    hosts: [{ name: 'a', memMiB: 8192 }, { name: 'b', memMiB: 8192 }, { name: 'c', memMiB: 8192 }],
    vms: [{ name: 'vm1', host: 'a', cpuPct: 1, memMiB: 512 }, { name: 'vm2', host: 'b', cpuPct: 1, memMiB: 512 }, { name: 'vm3', host: 'c', cpuPct: 1, memMiB: 512 }],
  });
  const reconciles: string[] = [];
  const outcome = { next: 'unknown' as RecoveryOutcome };
  if (reconcile) {
    // the scripted hypervisor's answer: unknown until the test says otherwise
    (d as FakeDriver & { reconcile: (vm: string, o?: { from?: string; to?: string }) => Promise<ReconcileResult> }).reconcile = async (vm, o = {}) => {
      reconciles.push(`${vm} ${o.from}→${o.to}`);
      const on = outcome.next === 'source' ? o.from! : outcome.next === 'target' ? o.to! : null;
      return { vm, from: o.from!, to: o.to!, outcome: outcome.next, actions: [], reason: `scripted ${outcome.next}`, vmOn: on };
    };
  }
  const off = new Set<string>();
  const powerOffs: string[] = [];
  const power: PowerDriver = {
    kind: 'test',
    status: async (h) => (off.has(h) ? 'off' : 'on'),
    powerOn: async (h) => { off.delete(h); d.setHostUp(h, true); },
    powerOff: async (h) => { powerOffs.push(h); off.add(h); d.setHostUp(h, false); },
  };
  const store = openSqliteStore(':memory:');
  const c = new Controller({
    hypervisor: d, power, clock, store, policy: compilePolicy('tide'), mode: 'recommend', limits: { maxConcurrent: 1, maxPerHost: 1 },
    migrate: { mode: 'live' }, intervalSec: INTERVAL, ...extra,
  });
  return { c, d, clock, store, reconciles, powerOffs, outcome };
}

const touches = (s: Step, vm: string, hosts: string[]): boolean =>
  s.kind === 'migrate' ? s.vm === vm || hosts.includes(s.from) || hosts.includes(s.to)
    : s.kind === 'place' ? s.vm === vm || hosts.includes(s.to) : hosts.includes(s.host);

/** Two rounds: the first only measures (usage unknown before), the second plans on fresh usage. */
async function twoRounds(e: Setup): Promise<Awaited<ReturnType<Controller['tick']>>> {
  await e.c.tick();
  await e.clock.advance(INTERVAL * 1000);
  return e.c.tick();
}

describe('unknown migrations block the planner until reconcile resolves them', () => {
  it('control: without an unknown migration the same cluster is consolidated and hosts powered off', async () => {
    const e = setup();
    const r = await twoRounds(e);
    expect(r.plan.steps.some((s) => s.kind === 'powerOff')).toBe(true);
    expect(r.reconciled).toEqual([]);
    expect(e.reconciles).toEqual([]);
  });

  it('an open record: reconciled each round before collect; VM not migratable, both hosts excluded with the reason, no step touches them; resolved → the next round proceeds', async () => {
    const e = setup();
    e.store.recordUnknownMigration({ vm: 'vm1', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'TIDE_MIGRATION_UNKNOWN: b does not answer' });
    const r = await twoRounds(e);
    expect(e.reconciles).toEqual(['vm1 a→b', 'vm1 a→b']);
    expect(r.reconciled).toMatchObject([{ vm: 'vm1', outcome: 'unknown', status: 'open', attempts: 2 }]);
    expect(r.snapshot.vms.find((v) => v.id === 'vm1')!.migratable).toBe(false);
    for (const h of ['a', 'b']) {
      const host = r.snapshot.hosts.find((x) => x.id === h)!;
      expect(host.excluded).toBe(true);
      expect(host.stateReason).toMatch(/migration of vm1 from a to b has an unknown outcome/);
    }
    expect(r.snapshot.hosts.find((x) => x.id === 'c')!.excluded).toBe(false);
    for (const s of r.plan.steps) expect(touches(s, 'vm1', ['a', 'b']), JSON.stringify(s)).toBe(false);
    expect(r.plan.notMoved).toContainEqual(expect.objectContaining({ vm: 'vm1', code: 'migration-unknown' }));
    expect(e.store.unknownMigrations()[0]).toMatchObject({ status: 'open', attempts: 2, outcome: 'unknown' });

    // the target answers: reconcile resolves it, and the same round plans as usual again
    e.outcome.next = 'source';
    await e.clock.advance(INTERVAL * 1000);
    const r3 = await e.c.tick();
    expect(r3.reconciled).toMatchObject([{ vm: 'vm1', outcome: 'source', status: 'resolved', vmOn: 'a' }]);
    expect(e.store.unknownMigrations()).toEqual([]);
    expect(r3.snapshot.hosts.every((h) => !h.excluded)).toBe(true);
    expect(r3.plan.steps.some((s) => touches(s, 'vm1', ['a', 'b']))).toBe(true);
    // and it is not reconciled again
    await e.clock.advance(INTERVAL * 1000);
    await e.c.tick();
    expect(e.reconciles).toHaveLength(3);
  });

  it('automatic mode: a migrate step that ends with TIDE_MIGRATION_UNKNOWN is recorded; no host of it is powered off while it stays unknown', async () => {
    const e = setup({ mode: 'automatic' });
    await e.c.tick();
    await e.clock.advance(INTERVAL * 1000);
    // the first migration of the consolidation ends unknown
    e.d.inject({ method: 'migrate', code: 'TIDE_MIGRATION_UNKNOWN', message: 'target does not answer', times: 1 });
    const r2 = await e.c.tick();
    const failed = r2.run!.steps.find((s) => s.error?.code === 'TIDE_MIGRATION_UNKNOWN')!;
    expect(failed.step.kind).toBe('migrate');
    const m = failed.step as Extract<Step, { kind: 'migrate' }>;
    expect(e.store.unknownMigrations()).toMatchObject([{ vm: m.vm, from: m.from, to: m.to, status: 'open', attempts: 0 }]);
    // its powerOff (which depended on the move) did not run, nor any later one on either host
    expect(e.powerOffs).not.toContain(m.from);
    expect(e.powerOffs).not.toContain(m.to);
    for (let i = 0; i < 3; i++) {
      await e.clock.advance(INTERVAL * 1000);
      const r = await e.c.tick();
      for (const s of r.plan.steps) expect(touches(s, m.vm, [m.from, m.to]), JSON.stringify(s)).toBe(false);
    }
    expect(e.powerOffs).not.toContain(m.from);
    expect(e.powerOffs).not.toContain(m.to);
    expect(e.reconciles).toEqual(Array(3).fill(`${m.vm} ${m.from}→${m.to}`));
    // resolved: the next rounds act on those hosts again
    e.outcome.next = 'source';
    for (let i = 0; i < 3; i++) {
      await e.clock.advance(INTERVAL * 1000);
      await e.c.tick();
    }
    expect(e.store.unknownMigrations()).toEqual([]);
    expect(e.powerOffs.some((h) => h === m.from || h === m.to)).toBe(true);
  });

  it('a driver without reconcile, or the cluster lock held by another process: the record stays open and keeps blocking', async () => {
    const e = setup({}, false);
    e.store.recordUnknownMigration({ vm: 'vm1', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r' });
    const r = await twoRounds(e);
    expect(r.reconciled[0]).toMatchObject({ outcome: 'unknown', status: 'open' });
    expect(r.reconciled[0]!.reason).toMatch(/cannot reconcile/);
    for (const s of r.plan.steps) expect(touches(s, 'vm1', ['a', 'b'])).toBe(false);

    const f = setup();
    f.store.recordUnknownMigration({ vm: 'vm1', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r' });
    f.outcome.next = 'source';
    f.store.acquireClusterLock({ pid: 1, host: 'elsewhere', command: 'tide evacuate a', startedMs: 0 }, 3_600_000, { isAlive: () => true });
    const r2 = await twoRounds(f);
    expect(f.reconciles).toEqual([]);
    expect(r2.reconciled).toEqual([]);
    expect(f.store.unknownMigrations()).toHaveLength(1);
    for (const s of r2.plan.steps) expect(touches(s, 'vm1', ['a', 'b'])).toBe(false);
  });

  it("an outcome for an operator ('both') keeps blocking and is not reconciled again by the loop", async () => {
    const e = setup();
    e.store.recordUnknownMigration({ vm: 'vm1', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r' });
    e.outcome.next = 'both';
    const r = await twoRounds(e);
    expect(e.reconciles).toEqual(['vm1 a→b']);
    expect(e.store.unknownMigrations()[0]).toMatchObject({ status: 'operator', outcome: 'both' });
    expect(r.snapshot.hosts.find((h) => h.id === 'a')!.stateReason).toMatch(/needs an operator/);
    for (const s of r.plan.steps) expect(touches(s, 'vm1', ['a', 'b'])).toBe(false);
  });
});

describe('guardPlan', () => {
  it('drops steps that touch a blocked VM or host and every step depending on them, whatever the policy planned', () => {
    const plan: Plan = {
      policy: 'x', time: 0, hosts: [], notMoved: [],
      steps: [
        { id: 1, kind: 'migrate', vm: 'vm2', from: 'c', to: 'd', memMiB: 1, deps: [], reason: '', by: '' },
        { id: 2, kind: 'powerOff', host: 'c', deps: [1], reason: '', by: '' },
        { id: 3, kind: 'powerOff', host: 'a', deps: [], reason: '', by: '' },
        { id: 4, kind: 'migrate', vm: 'vm3', from: 'd', to: 'b', memMiB: 1, deps: [], reason: '', by: '' },
        { id: 5, kind: 'powerOff', host: 'd', deps: [4], reason: '', by: '' },
        { id: 6, kind: 'migrate', vm: 'vm1', from: 'e', to: 'c', memMiB: 1, deps: [], reason: '', by: '' },
      ],
    };
    const blocks = blocksOf([{ id: 1, vm: 'vm1', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r', status: 'open', attempts: 0, lastAttemptMs: null, outcome: null, outcomeReason: null, actions: [], vmOn: null, resolvedMs: null }]);
    const g = guardPlan(plan, blocks, new Map([['vm1', 'e']]));
    expect(g.steps.map((s) => s.id)).toEqual([1, 2]);
    expect(g.notMoved).toEqual([expect.objectContaining({ vm: 'vm1', host: 'e', code: 'migration-unknown', by: 'reconcile' })]);
  });
});
