// recoverOnStart's decisions, case by case, on a FakeDriver whose reconcile answer is scripted
// (what the decision table of src/drivers/common/recovery.ts would report): a VM an interrupted
// move left shut off is started on exactly one host, never when a host is silent or it is
// defined twice; both/split go to an operator, unknown stays blocked; a driver without reconcile
// settles only a VM already on its target; place and power steps; a live lock holder means
// nothing is touched; a plan whose steps had all ended gets the status it would have had.
import { describe, expect, it } from 'vitest';
import { recoverAtDaemonStart, recoverOnStart } from '../../src/app/journal.js';
import type { Plan, Step } from '../../src/core/plan/types.js';
import { FakeDriver, ManualClock } from '../../src/drivers/fake/index.js';
import type { ReconcileResult, RecoveryOutcome, VmInfo } from '../../src/drivers/hypervisor.js';
import type { HostPower, PowerDriver } from '../../src/drivers/power.js';
import { openSqliteStore, type Store } from '../../src/store/store.js';

const DEAD = { pid: 4_194_304 + 77, host: 'x', command: 'dead', startedMs: 0 };

interface Env { d: FakeDriver; clock: ManualClock; store: Store; planId: number; calls: string[] }

/** One plan with `steps`; the first `running` of them saved as started (the crash), the others before it as succeeded. */
function setup(steps: Step[], running: number[], vms: { name: string; host: string; state?: 'running' | 'paused' | 'shutoff' }[], reconcile?: (vm: string, o: { from?: string; to?: string; wasState?: unknown }) => Omit<ReconcileResult, 'vm' | 'from' | 'to'>): Env {
  const clock = new ManualClock();
  const d = new FakeDriver({ clock, hosts: [{ name: 'a', memMiB: 8192 }, { name: 'b', memMiB: 8192 }, { name: 'c', memMiB: 8192 }], vms: vms.map((v) => ({ ...v, memMiB: 256 })) });
  const calls: string[] = [];
  if (reconcile) {
    (d as FakeDriver & { reconcile: (vm: string, o?: { from?: string; to?: string }) => Promise<ReconcileResult> }).reconcile = async (vm, o = {}) => {
      calls.push(`reconcile ${vm} ${o.from}→${o.to} wasState=${String((o as { wasState?: unknown }).wasState)}`);
      return { vm, from: o.from!, to: o.to!, ...reconcile(vm, o) };
    };
  }
  const store = openSqliteStore(':memory:');
  const plan: Plan = { policy: 't', time: 0, hosts: [], notMoved: [], steps };
  const planId = store.savePlan(plan, { createdMs: 0, mode: 'automatic', status: 'running' });
  for (const s of steps) {
    if (running.includes(s.id)) store.saveStepRun(planId, { step: s, state: 'running', startedAt: 5 });
  }
  return { d, clock, store, planId, calls };
}

const mig = (id: number, vm: string, from: string, to: string): Step => ({ id, kind: 'migrate', vm, from, to, memMiB: 256, deps: [], reason: '', by: 't' });
const scripted = (outcome: RecoveryOutcome, reason = `scripted ${outcome}`) => (): Omit<ReconcileResult, 'vm' | 'from' | 'to'> => ({ outcome, reason, actions: [], vmOn: null });

describe('recoverOnStart, case by case', () => {
  it('nothing interrupted: clean, nothing asked', async () => {
    const e = setup([mig(1, 'v', 'a', 'b')], [], [{ name: 'v', host: 'a' }], scripted('target'));
    e.store.setPlanStatus(e.planId, 'done');
    const r = await recoverOnStart({ store: e.store, hypervisor: e.d, clock: e.clock });
    expect(r.code).toBe('clean');
    expect(e.calls).toEqual([]);
  });

  it('passes the settle time and wasState running (the plan only moves running VMs) to the driver reconcile', async () => {
    const e = setup([mig(1, 'v', 'a', 'b')], [1], [{ name: 'v', host: 'b' }], scripted('target'));
    const r = await recoverOnStart({ store: e.store, hypervisor: e.d, clock: e.clock, lockHolder: DEAD });
    expect(e.calls).toEqual(['reconcile v a→b wasState=running']);
    expect(r.steps[0]).toMatchObject({ code: 'migrated', state: 'succeeded', outcome: 'target' });
    expect(e.store.migrations({ vm: 'v' })[0]).toMatchObject({ ok: true, mode: 'interrupted', from: 'a', to: 'b' });
  });

  it('active on neither (an offline move left it shut off): started where its one definition is; the step is true to where', async () => {
    const onTarget = setup([mig(1, 'v', 'a', 'b')], [1], [{ name: 'v', host: 'b', state: 'shutoff' }], scripted('none'));
    const r1 = await recoverOnStart({ store: onTarget.store, hypervisor: onTarget.d, clock: onTarget.clock, lockHolder: DEAD });
    expect(r1.steps[0]).toMatchObject({ code: 'restarted', state: 'succeeded', actions: ['started v on b'] });
    expect(onTarget.d.vm('v')).toMatchObject({ host: 'b', state: 'running' });
    const onSource = setup([mig(1, 'v', 'a', 'b')], [1], [{ name: 'v', host: 'a', state: 'shutoff' }], scripted('none'));
    const r2 = await recoverOnStart({ store: onSource.store, hypervisor: onSource.d, clock: onSource.clock, lockHolder: DEAD });
    expect(r2.steps[0]).toMatchObject({ code: 'restarted', state: 'failed', outcome: 'source' });
    expect(onSource.d.vm('v')).toMatchObject({ host: 'a', state: 'running' });
    expect(onSource.store.stepRuns(onSource.planId)[0]).toMatchObject({ state: 'failed', errorCode: 'TIDE_ABORTED' });
  });

  it('never starts it while a host is silent (it may run there): unknown, blocked', async () => {
    const e = setup([mig(1, 'v', 'a', 'b')], [1], [{ name: 'v', host: 'b', state: 'shutoff' }], scripted('none'));
    e.d.setHostUp('c', false);
    const r = await recoverOnStart({ store: e.store, hypervisor: e.d, clock: e.clock, lockHolder: DEAD });
    expect(r.steps[0]).toMatchObject({ code: 'migration-unknown', state: 'failed' });
    expect(r.steps[0]!.reason).toMatch(/c did not answer and may run v/);
    expect(e.d.vm('v')!.state).toBe('shutoff');
    expect(e.store.unknownMigrations()).toMatchObject([{ vm: 'v', from: 'a', to: 'b', status: 'open' }]);
    // a host the power driver reports off holds nothing that runs: then it is started
    const e2 = setup([mig(1, 'v', 'a', 'b')], [1], [{ name: 'v', host: 'b', state: 'shutoff' }], scripted('none'));
    e2.d.setHostUp('c', false);
    const power: PowerDriver = { kind: 't', status: async (h): Promise<HostPower> => (h === 'c' ? 'off' : 'on'), powerOn: async () => {}, powerOff: async () => {} };
    const r2 = await recoverOnStart({ store: e2.store, hypervisor: e2.d, power, clock: e2.clock, lockHolder: DEAD });
    expect(r2.steps[0]).toMatchObject({ code: 'restarted', state: 'succeeded' });
  });

  it('never starts a VM defined on two hosts: left down for an operator', async () => {
    const e = setup([mig(1, 'v', 'a', 'b')], [1], [{ name: 'v', host: 'b', state: 'shutoff' }], scripted('none'));
    const list = e.d.listVms.bind(e.d);
    e.d.listVms = async (): Promise<VmInfo[]> => {
      const l = await list();
      const v = l.find((x) => x.name === 'v')!;
      return [...l, { ...v, host: 'a' }];
    };
    const r = await recoverOnStart({ store: e.store, hypervisor: e.d, clock: e.clock, lockHolder: DEAD });
    expect(r.steps[0]).toMatchObject({ code: 'left-down', state: 'failed' });
    expect(r.steps[0]!.reason).toMatch(/defined on b and a/);
    expect(e.d.vm('v')!.state).toBe('shutoff');
  });

  it('both / split: recorded for an operator (blocked); unknown: open (blocked, reconciled each round)', async () => {
    for (const [outcome, status] of [['both', 'operator'], ['split', 'operator'], ['unknown', 'open']] as const) {
      const e = setup([mig(1, 'v', 'a', 'b'), { id: 2, kind: 'powerOff', host: 'a', deps: [1], reason: '', by: 't' }], [1], [{ name: 'v', host: 'a' }], scripted(outcome));
      const r = await recoverOnStart({ store: e.store, hypervisor: e.d, clock: e.clock, lockHolder: DEAD });
      expect(r.steps[0]).toMatchObject({ code: outcome === 'unknown' ? 'migration-unknown' : 'needs-operator', state: 'failed' });
      expect(e.store.unknownMigrations()).toMatchObject([{ vm: 'v', status }]);
      expect(e.store.stepRuns(e.planId).map((x) => [x.stepId, x.state, x.errorCode])).toEqual([[1, 'failed', 'TIDE_MIGRATION_UNKNOWN'], [2, 'cancelled', 'TIDE_ABORTED']]);
      expect(e.store.getPlan(e.planId)!.status).toBe('superseded');
    }
  });

  it('a driver without reconcile: on its target alone → succeeded; still on its source → unknown (it may be mid-move), blocked', async () => {
    const there = setup([mig(1, 'v', 'a', 'b')], [1], [{ name: 'v', host: 'b' }]);
    expect((await recoverOnStart({ store: there.store, hypervisor: there.d, clock: there.clock, lockHolder: DEAD })).steps[0]).toMatchObject({ code: 'migrated', state: 'succeeded' });
    const here = setup([mig(1, 'v', 'a', 'b')], [1], [{ name: 'v', host: 'a' }]);
    const r = await recoverOnStart({ store: here.store, hypervisor: here.d, clock: here.clock, lockHolder: DEAD });
    expect(r.steps[0]).toMatchObject({ code: 'migration-unknown', state: 'failed' });
    expect(here.store.unknownMigrations()).toHaveLength(1);
  });

  it('place and power steps, from what the hosts and the power driver say', async () => {
    const steps: Step[] = [
      { id: 1, kind: 'place', vm: 'p', to: 'b', deps: [], reason: '', by: 't' },
      { id: 2, kind: 'powerOn', host: 'c', deps: [], reason: '', by: 't' },
      { id: 3, kind: 'powerOff', host: 'a', deps: [], reason: '', by: 't' },
    ];
    const e = setup(steps, [1, 2, 3], [{ name: 'p', host: 'b' }]);
    e.d.setHostUp('c', false);
    const state: Record<string, HostPower> = { a: 'on', b: 'on', c: 'off' };
    const power: PowerDriver = { kind: 't', status: async (h) => state[h]!, powerOn: async () => {}, powerOff: async () => {} };
    for (const s of steps) if (s.kind === 'powerOn' || s.kind === 'powerOff') e.store.recordPowerIntent({ planId: e.planId, stepId: s.id, host: s.host, action: s.kind, atMs: 5 });
    const r = await recoverOnStart({ store: e.store, hypervisor: e.d, power, clock: e.clock, lockHolder: DEAD, powerSettleMs: 0 });
    expect(r.steps.map((s) => [s.stepId, s.code, s.state])).toEqual([[1, 'placed', 'succeeded'], [2, 'power-on-not-done', 'failed'], [3, 'power-off-not-done', 'failed']]);
    expect(e.store.powerActions({ pending: true })).toEqual([]);
    expect(e.store.powerActions().map((p) => [p.host, p.outcome, p.by])).toEqual([['a', 'failed', 'recovery'], ['c', 'failed', 'recovery']]);
  });

  it('a live holder of the cluster lock: nothing is touched (the steps may still run there)', async () => {
    const e = setup([mig(1, 'v', 'a', 'b')], [1], [{ name: 'v', host: 'a' }], scripted('source'));
    const lease = e.store.acquireClusterLock({ pid: process.pid, host: 'here', command: 'tide daemon', startedMs: 0 }, 60_000, { isAlive: () => true });
    const r = await recoverOnStart({ store: e.store, hypervisor: e.d, clock: e.clock });
    expect(r.code).toBe('locked');
    expect(r.reason).toMatch(/cluster locked by tide daemon/);
    expect(e.calls).toEqual([]);
    expect(e.store.runningStepRuns()).toHaveLength(1);
    e.store.releaseClusterLock(lease);
  });

  it('a plan whose steps had all ended (the process died before saving its status) gets done/failed, not superseded', async () => {
    const e = setup([mig(1, 'v', 'a', 'b')], [], [{ name: 'v', host: 'b' }]);
    e.store.saveStepRun(e.planId, { step: mig(1, 'v', 'a', 'b'), state: 'succeeded', startedAt: 1, endedAt: 2 });
    const r = await recoverOnStart({ store: e.store, hypervisor: e.d, clock: e.clock, lockHolder: DEAD });
    expect(r.plans).toMatchObject([{ planId: e.planId, status: 'done' }]);
    expect(e.store.getPlan(e.planId)!.status).toBe('done');
  });

  it('the daemon hook logs each settled step (unknown ones as warnings)', async () => {
    const e = setup([mig(1, 'v', 'a', 'b'), mig(2, 'w', 'a', 'b')], [1, 2], [{ name: 'v', host: 'b' }, { name: 'w', host: 'a' }], (vm) => (vm === 'v' ? scripted('target')() : scripted('unknown')()));
    const lines: [string, string][] = [];
    const log = { info: (_o: object, m?: string) => { lines.push(['info', m ?? '']); }, warn: (_o: object, m?: string) => { lines.push(['warn', m ?? '']); } };
    await recoverAtDaemonStart({ store: e.store, hypervisor: e.d, clock: e.clock, log }, { lockHolder: DEAD });
    expect(lines.map(([l]) => l)).toEqual(['info', 'info', 'warn']);
    expect(lines[1]![1]).toMatch(/step 1 migrate v: migrated → succeeded/);
    expect(lines[2]![1]).toMatch(/step 2 migrate w: migration-unknown → failed/);
  });
});
