// The journal's store side: power actions (intent before, outcome after), round decisions
// (compact, pruned), the downsampled metrics history (raw for 24 h, hourly means beyond, hourly
// means dropped after their retention: bounded), steps left 'running' by a crash; and the
// controller writing them: a power step's intent is in the store before the power driver is
// called, and every round leaves a decision and samples.
import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/app/controller.js';
import { journalRound, metricSamples, planSummary } from '../../src/app/journal.js';
import type { Plan } from '../../src/core/plan/types.js';
import { compilePolicy } from '../../src/core/policy.js';
import { FakeDriver, ManualClock } from '../../src/drivers/fake/index.js';
import type { PowerDriver } from '../../src/drivers/power.js';
import { openSqliteStore } from '../../src/store/store.js';

const HOUR = 3_600_000;

describe('store journal tables', () => {
  it('power actions: pending until the outcome is recorded; filters by host, plan, pending', () => {
    const s = openSqliteStore(':memory:');
    const a = s.recordPowerIntent({ planId: 7, stepId: 3, host: 'h1', action: 'powerOff', atMs: 1000 });
    const b = s.recordPowerIntent({ planId: 8, stepId: 1, host: 'h2', action: 'powerOn', atMs: 2000 });
    expect(s.powerActions({ pending: true }).map((p) => p.id)).toEqual([b, a]);
    s.recordPowerOutcome(a, { atMs: 1500, outcome: 'succeeded', note: 'off' });
    expect(s.powerActions({ pending: true }).map((p) => p.id)).toEqual([b]);
    expect(s.powerActions({ host: 'h1' })).toEqual([{
      id: a, planId: 7, stepId: 3, host: 'h1', action: 'powerOff', requestedMs: 1000, endedMs: 1500, outcome: 'succeeded',
      errorCode: null, errorMessage: null, note: 'off', by: 'plan',
    }]);
    expect(s.powerActions({ planId: 8 })[0]).toMatchObject({ outcome: 'pending', endedMs: null });
    expect(() => s.recordPowerOutcome(999, { atMs: 0, outcome: 'failed' })).toThrow(/no power action/);
    s.close();
  });

  it('decisions are compact (100 entries, reasons cut) and pruned after keepMs', () => {
    const s = openSqliteStore(':memory:');
    const notMoved = Array.from({ length: 150 }, (_, i) => ({ vm: `vm${i}`, code: 'cooldown', reason: 'x'.repeat(1000) }));
    s.recordDecision({ atMs: 0, planId: null, mode: 'automatic', policy: 'tide', window: 'balance', summary: 'nothing', steps: 0, notMoved });
    const d = s.decisions()[0]!;
    expect(d.notMoved).toHaveLength(100);
    expect(d.notMoved[0]!.reason.length).toBe(240);
    s.recordDecision({ atMs: 10 * HOUR, planId: 3, mode: 'automatic', policy: 'tide', window: null, summary: '1 move', steps: 1, notMoved: [] }, 5 * HOUR);
    expect(s.decisions().map((x) => x.atMs)).toEqual([10 * HOUR]); // the first was older than 5 h
    expect(s.decisions({ planId: 3 })).toHaveLength(1);
    s.close();
  });

  it('metrics: raw for rawKeepMs, then hourly means weighted by samples; hourly means dropped after hourKeepMs; bounded', () => {
    const s = openSqliteStore(':memory:');
    const ret = { rawKeepMs: 2 * HOUR, hourKeepMs: 5 * HOUR };
    const step = 15 * 60_000; // rounds every 15 min: 4 per hour
    let max = 0;
    for (let t = 0; t <= 20 * HOUR; t += step) {
      const i = t / step;
      // cpu: 10 in even hours' rounds, then 30; the VM's memory unknown every other round
      s.recordMetrics(t, [
        { kind: 'host', name: 'h1', host: null, cpuPct: Math.floor(t / HOUR) % 2 === 0 ? 10 : 30, memMiB: 1000 },
        { kind: 'vm', name: 'vm1', host: i < 40 ? 'h1' : 'h2', cpuPct: i, memMiB: i % 2 === 0 ? 512 : null },
      ], ret);
      max = Math.max(max, s.metricsHistory().length);
    }
    const all = s.metricsHistory({ kind: 'host', name: 'h1' });
    const raw = all.filter((p) => p.res === 'raw');
    const hour = all.filter((p) => p.res === 'hour');
    // whole hours are merged once the oldest raw point is an hour past the cut (20 h − 2 h):
    // the last merge (at 19:15, cut 17:15) took everything before 17:00
    expect(raw[0]!.atMs).toBe(17 * HOUR);
    expect(raw.length).toBe(13); // 17:00 … 20:00 every 15 min
    // hourly means from 15:00 (20 h − 5 h) up to the raw points
    expect(hour.map((p) => p.atMs / HOUR)).toEqual([15, 16]);
    expect(hour.map((p) => p.cpuPct)).toEqual([30, 10]);
    expect(hour.every((p) => p.samples === 4)).toBe(true);
    const vmHours = s.metricsHistory({ kind: 'vm', name: 'vm1', res: 'hour' });
    // hour 16: rounds 64..67 → mean 65.5; memory only from the even rounds (512)
    expect(vmHours.find((p) => p.atMs === 16 * HOUR)).toMatchObject({ cpuPct: 65.5, memMiB: 512, samples: 4, host: 'h2' });
    // bounded: 2 entities × (raw for at most rawKeep + 2 h, 4 a hour, + hourly means for hourKeep) at most
    expect(max).toBeLessThanOrEqual(2 * (4 * 4 + 1 + 6));
    s.close();
  });

  it('runningStepRuns lists the steps a crash left started, across plans', () => {
    const s = openSqliteStore(':memory:');
    const plan: Plan = { policy: 't', time: 0, hosts: [], notMoved: [], steps: [
      { id: 1, kind: 'migrate', vm: 'v', from: 'a', to: 'b', memMiB: 1, deps: [], reason: '', by: '' },
      { id: 2, kind: 'powerOff', host: 'a', deps: [1], reason: '', by: '' },
    ] };
    const p1 = s.savePlan(plan, { createdMs: 0, mode: 'automatic', status: 'running' });
    const p2 = s.savePlan(plan, { createdMs: 0, mode: 'automatic', status: 'running' });
    s.saveStepRun(p1, { step: plan.steps[0]!, state: 'succeeded', startedAt: 1, endedAt: 2 });
    s.saveStepRun(p1, { step: plan.steps[1]!, state: 'running', startedAt: 3 });
    s.saveStepRun(p2, { step: plan.steps[0]!, state: 'running', startedAt: 4 });
    expect(s.runningStepRuns().map((r) => [r.planId, r.stepId, r.kind])).toEqual([[p1, 2, 'powerOff'], [p2, 1, 'migrate']]);
    s.close();
  });
});

describe('the controller journals power steps and rounds', () => {
  it('a power-off step: its intent is stored (pending, step running) when the power driver is called; its outcome after', async () => {
    const clock = new ManualClock();
    const d = new FakeDriver({ clock, hosts: [{ name: 'a', memMiB: 8192 }, { name: 'b', memMiB: 8192 }], vms: [{ name: 'vm1', host: 'a', cpuPct: 1, memMiB: 512 }] });
    const store = openSqliteStore(':memory:');
    const seen: unknown[] = [];
    const power: PowerDriver = {
      kind: 'test',
      status: async () => 'on',
      powerOn: async () => { /* not used */ },
      powerOff: async (h) => {
        // what the store says at the moment of the side effect
        seen.push({ actions: store.powerActions({ host: h }).map((p) => p.outcome), steps: store.runningStepRuns().map((r) => r.kind) });
        d.setHostUp(h, false);
      },
    };
    const c = new Controller({
      hypervisor: d, power, clock, store, policy: compilePolicy('tide'), mode: 'automatic', limits: { maxConcurrent: 1, maxPerHost: 1 },
      migrate: { mode: 'live' }, intervalSec: 300,
    });
    const plan: Plan = { policy: 'test', time: 0, hosts: [], notMoved: [], steps: [{ id: 1, kind: 'powerOff', host: 'b', deps: [], reason: 'empty', by: 'test' }] };
    const planId = store.savePlan(plan, { createdMs: 0, mode: 'automatic', status: 'running' });
    const run = await c.execute(plan, planId);
    expect(run.succeeded).toBe(1);
    expect(seen).toEqual([{ actions: ['pending'], steps: ['powerOff'] }]);
    expect(store.powerActions({ host: 'b' })).toMatchObject([{ planId, stepId: 1, action: 'powerOff', outcome: 'succeeded', by: 'plan' }]);
    store.close();
  });

  it('each round records a decision (summary, notMoved) and a metrics sample per host and VM', async () => {
    const clock = new ManualClock();
    const d = new FakeDriver({ clock, hosts: [{ name: 'a', memMiB: 8192 }, { name: 'b', memMiB: 8192 }], vms: [{ name: 'vm1', host: 'a', cpuPct: 20, memMiB: 512 }] });
    const store = openSqliteStore(':memory:');
    const c = new Controller({
      hypervisor: d, clock, store, policy: compilePolicy('tide'), mode: 'recommend', limits: { maxConcurrent: 1, maxPerHost: 1 },
      migrate: { mode: 'live' }, intervalSec: 300,
    });
    const r1 = await c.tick();
    await clock.advance(300_000);
    const r2 = await c.tick();
    const ds = store.decisions();
    expect(ds.map((x) => x.atMs)).toEqual([r2.at, r1.at]);
    expect(ds[0]).toMatchObject({ mode: 'recommend', policy: r2.plan.policy, steps: r2.plan.steps.length, summary: planSummary(r2.plan), planId: r2.planId });
    const m = store.metricsHistory({ sinceMs: r2.at });
    expect(m.map((x) => `${x.kind}:${x.name}`).sort()).toEqual(['host:a', 'host:b', 'vm:vm1']);
    expect(m.find((x) => x.name === 'vm1')).toMatchObject({ host: 'a', res: 'raw', samples: 1 });
    expect(metricSamples(r2.snapshot)).toHaveLength(3);
    store.close();
  });

  it('journalRound without a store does nothing', () => {
    const plan: Plan = { policy: 'p', time: 0, hosts: [], notMoved: [], steps: [] };
    expect(() => journalRound(undefined, { atMs: 0, snapshot: { time: 0, sampleIntervalSec: 300, hosts: [], vms: [], rules: [] }, plan, planId: null, mode: 'recommend' })).not.toThrow();
    expect(planSummary(plan)).toBe('nothing to do');
  });
});
