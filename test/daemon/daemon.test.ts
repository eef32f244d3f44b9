/**
 * The daemon loop on the simulated office (SimDriver + VirtualClock, as `tide demo` runs it):
 * each mode, the approve workflow (approve → executed; cluster changed → expired, not executed;
 * reject), one pending plan at a time, store-kept maintenance, the status row, stop.
 */
import { describe, expect, it } from 'vitest';
import { createDaemon } from '../../src/daemon/daemon.js';
import { describeChange, fingerprintOf } from '../../src/daemon/fingerprint.js';
import { simDaemon } from './helpers.js';

describe('daemon modes', () => {
  it('automatic: the first round (Monday 00:00, quiet) executes its plan at once', async () => {
    const d = simDaemon('automatic');
    const before = d.driver.placement();
    const r = await d.round();
    expect(r.result).toBe('ok');
    expect(r.tick!.plan.steps.length).toBeGreaterThan(0);
    expect(r.tick!.run).not.toBeNull();
    expect(r.tick!.run!.failed).toBe(0);
    expect(d.driver.placement()).not.toEqual(before);
    expect(d.store.getPlan(r.planId!)!.status).toBe('done');
    expect(d.store.getPlan(r.planId!)!.fingerprint).toBeTruthy();
  });

  it('recommend: plans are stored and shown, never executed, not even when approved', async () => {
    const d = simDaemon('recommend');
    const before = d.driver.placement();
    const r1 = await d.round();
    expect(r1.planId).not.toBeNull();
    expect(d.store.getPlan(r1.planId!)!.status).toBe('proposed');
    // The same cluster, the same plan: the pending one is kept (its id stays valid), no new row.
    await d.clock.advance(300_000);
    const r2 = await d.round();
    expect(r2.planId).toBe(r1.planId);
    expect(d.store.listPlans()).toHaveLength(1);
    expect(d.store.getPlan(r1.planId!)!.confirmedMs).toBe(300_000);
    d.store.setPlanStatus(r1.planId!, 'approved');
    await d.clock.advance(300_000);
    await d.round();
    expect(d.driver.placement()).toEqual(before);
  });

  it('approve: a proposed plan runs only once approved, at the next round', async () => {
    const d = simDaemon('approve');
    const before = d.driver.placement();
    const r1 = await d.round();
    const id = r1.planId!;
    expect(d.store.getPlan(id)!.status).toBe('proposed');
    await d.clock.advance(300_000);
    await d.round();
    expect(d.driver.placement()).toEqual(before);
    expect(d.store.transitionPlan(id, ['proposed'], 'approved', 'by test')).toBe(true);
    await d.clock.advance(300_000);
    const r3 = await d.round();
    expect(r3.executed.map((e) => e.planId)).toEqual([id]);
    expect(r3.executed[0]!.run.failed).toBe(0);
    expect(d.store.getPlan(id)!.status).toBe('done');
    expect(d.driver.placement()).not.toEqual(before);
    expect(d.store.stepRuns(id).every((s) => s.state === 'succeeded')).toBe(true);
  });

  it('approve: wake() executes an approved plan without waiting for the round', async () => {
    const d = simDaemon('approve');
    const r1 = await d.round();
    d.store.transitionPlan(r1.planId!, ['proposed'], 'approved');
    const executed = await d.clock.drive(d.daemon.executeApproved());
    expect(executed.map((e) => e.planId)).toEqual([r1.planId]);
    expect(d.store.getPlan(r1.planId!)!.status).toBe('done');
  });

  it('approve: while idle the daemon polls the store and executes a plan approved by another process within a poll', async () => {
    const d = simDaemon('approve');
    let id = 0;
    let approvedAt = 0;
    const polled = createDaemon({
      clock: d.clock, hypervisor: d.driver, power: d.driver, store: d.store, settings: d.settings, pollMs: 1000,
      observer: {
        onRound: (r) => {
          if (id !== 0) return;
          id = r.planId!;
          void d.clock.sleep(5000).then(() => {
            approvedAt = d.clock.now();
            d.store.transitionPlan(id, ['proposed'], 'approved', 'by another process');
          });
        },
      },
    });
    await d.clock.drive(polled.run(300_001));
    expect(d.store.getPlan(id)!.status).toBe('done');
    const started = Math.min(...d.store.stepRuns(id).map((r) => r.startedMs!));
    expect(approvedAt).toBe(5000);
    expect(started).toBeGreaterThanOrEqual(5000);
    expect(started).toBeLessThanOrEqual(6000);
  });

  it('approve: a plan whose cluster changed under it expires with the change named, and is not executed', async () => {
    const d = simDaemon('approve');
    const r1 = await d.round();
    const id = r1.planId!;
    const plan = d.store.getPlan(id)!.plan;
    d.store.transitionPlan(id, ['proposed'], 'approved');
    // Someone moves a VM by hand that the plan does not touch.
    const moved = plan.steps.filter((s) => s.kind === 'migrate').map((s) => (s as { vm: string }).vm);
    const placement = d.driver.placement();
    const vm = Object.keys(placement).find((v) => !moved.includes(v))!;
    const to = Object.values(placement).find((h) => h !== placement[vm])!;
    await d.clock.drive(d.driver.migrate(vm, to, { mode: 'live' }));
    const after = d.driver.placement();
    await d.clock.advance(300_000);
    const r2 = await d.round();
    expect(r2.executed).toEqual([]);
    const p = d.store.getPlan(id)!;
    expect(p.status).toBe('expired');
    expect(p.statusReason).toContain(`${vm} moved`);
    expect(d.store.stepRuns(id)).toEqual([]);
    // Nothing the expired plan said ran (the round's new plan is only proposed).
    expect(d.driver.placement()).toEqual(after);
    expect(d.store.getPlan(r2.planId!)!.status).toBe('proposed');
  });

  it('approve: an approved plan not re-confirmed for more than 3 intervals expires', async () => {
    const d = simDaemon('approve');
    const r1 = await d.round();
    d.store.transitionPlan(r1.planId!, ['proposed'], 'approved');
    await d.clock.advance(4 * 300_000);
    const before = d.driver.placement();
    const r2 = await d.round();
    expect(r2.executed).toEqual([]);
    expect(d.store.getPlan(r1.planId!)!.status).toBe('expired');
    expect(d.store.getPlan(r1.planId!)!.statusReason).toMatch(/not re-confirmed for 1200 s/);
    expect(d.driver.placement()).toEqual(before);
  });

  it('approve: while moves are frozen (telemetry) an approved plan waits, unexecuted', async () => {
    const d = simDaemon('approve');
    const r1 = await d.round();
    const id = r1.planId!;
    d.store.transitionPlan(id, ['proposed'], 'approved');
    const before = d.driver.placement();
    const silent = Object.values(before).find((h) => !d.store.getPlan(id)!.plan.steps.some((s) => s.kind === 'migrate' && (s.from === h || s.to === h)))
      ?? Object.values(before)[0]!;
    d.driver.setReachable(silent, false);
    for (let i = 0; i < 4; i++) {
      await d.clock.advance(60_000);
      await d.clock.drive(d.daemon.controller.tick());
    }
    expect(d.daemon.controller.freezeState.frozen).toBe(true);
    expect(await d.clock.drive(d.daemon.executeApproved())).toEqual([]);
    expect(d.store.getPlan(id)!.status).toBe('approved');
    expect(d.driver.placement()).toEqual(before);
    expect(d.lines.some((l) => /"event":"plan-wait"/.test(l))).toBe(true);
  });

  it('a rejected plan is never executed and a later round proposes afresh', async () => {
    const d = simDaemon('approve');
    const r1 = await d.round();
    expect(d.store.transitionPlan(r1.planId!, ['proposed'], 'rejected', 'not tonight')).toBe(true);
    const before = d.driver.placement();
    await d.clock.advance(300_000);
    const r2 = await d.round();
    expect(r2.planId).not.toBe(r1.planId);
    expect(d.store.getPlan(r1.planId!)!.status).toBe('rejected');
    expect(d.driver.placement()).toEqual(before);
  });
});

describe('fingerprint', () => {
  it('names what changed', () => {
    const h = (id: string, powerState: 'on' | 'off') => ({ id, powerState, maintenance: false, excluded: false }) as never;
    const v = (id: string, host: string) => ({ id, host }) as never;
    const a = fingerprintOf({ hosts: [h('a', 'on'), h('b', 'on')], vms: [v('x', 'a'), v('y', 'b')] });
    const b = fingerprintOf({ hosts: [h('b', 'off'), h('a', 'on')], vms: [v('y', 'a'), v('z', 'a')] });
    expect(describeChange(a, a)).toBeNull();
    expect(describeChange(a, b)).toBe('y moved b → a; z appeared on a; x is gone from a; host b on → off');
  });
});
