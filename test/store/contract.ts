/**
 * The Store contract (src/store/store.ts), one suite run against every implementation: SQLite
 * (test/store/store.test.ts) and PostgreSQL (test/store/postgres.test.ts). Plans, steps, the
 * journal (power actions, decisions, unknown migrations, round errors), history (migrations,
 * metrics), operator state, tokens, config overrides, the cluster lock and fencing.
 *
 * A harness gives a fresh, empty store per test; `open()` opens another connection to that same
 * store (two controllers), `setVersion` writes the stored schema version behind its back.
 */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/core/plan/types.js';
import { DriverError } from '../../src/drivers/errors.js';
import { withClusterLock } from '../../src/store/lock.js';
import type { LockHolder, MetricPoint, MetricSample, Store } from '../../src/store/store.js';

export interface FreshStore {
  /** Opens a connection to this store (several may be open at once). */
  open(): Store;
  /** Writes the stored schema version (as a newer Tide would have). */
  setVersion(v: number): void;
}

export interface StoreHarness {
  /** A new empty store. */
  fresh(): FreshStore;
}

const plan: Plan = {
  policy: 'tide', time: 100,
  steps: [
    { id: 1, kind: 'migrate', vm: 'a', from: 'h0', to: 'h1', memMiB: 512, deps: [], reason: 'because', by: 'test' },
    { id: 2, kind: 'powerOff', host: 'h0', deps: [1], reason: 'empty', by: 'test' },
  ],
  hosts: [], notMoved: [],
};
const H = 3_600_000;
const holder = (command: string, over: Partial<LockHolder> = {}): LockHolder => ({ pid: process.pid, host: hostname(), command, startedMs: 1_700_000_000_000, ...over });

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof DriverError) return e.code;
    throw e;
  }
  return 'no error';
}
function driverError(f: () => unknown, code: string): DriverError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DriverError);
    expect((e as DriverError).code, (e as Error).message).toBe(code);
    return e as DriverError;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

/**
 * Every Store method, by kind. A method added to Store and not listed here fails the
 * "classifies every method" test: a new write must be fenced (setFence) like the others.
 */
const READS = [
  'wakePath', 'wakePaths', 'getPlan', 'listPlans', 'stepRuns', 'runningStepRuns', 'lastPowerSteps', 'powerActions', 'decisions', 'metricsHistory', 'migrations',
  'lastMigrations', 'clusterLock', 'roundErrors', 'unknownMigrations', 'hostStates', 'daemonStatus', 'apiTokens', 'apiTokenByHash', 'configOverride',
] as const;
const LOCK = ['acquireClusterLock', 'heartbeatClusterLock', 'releaseClusterLock', 'fence', 'setFence', 'close'] as const;
/** Each write, called once with valid arguments against a store holding plan `planId`, power action 1, unknown migration 1, token 1. */
const WRITES: Record<string, (s: Store, planId: number) => unknown> = {
  recordWakePath: (s) => s.recordWakePath({ host: 'hx', testedMs: 9, ok: false, reason: 'r', method: 'ipmi', key: 'k' }),
  clearWakePath: (s) => s.clearWakePath('h0'),
  savePlan: (s) => s.savePlan(plan, { createdMs: 9, mode: 'approve', status: 'proposed' }),
  setPlanStatus: (s, id) => s.setPlanStatus(id, 'rejected', 'x'),
  transitionPlan: (s, id) => s.transitionPlan(id, ['proposed'], 'approved'),
  setPlanMeta: (s, id) => s.setPlanMeta(id, { fingerprint: 'f2', confirmedMs: 9 }),
  discardPlan: (s) => s.discardPlan(999),
  saveStepRun: (s, id) => s.saveStepRun(id, { step: plan.steps[1]!, state: 'running', startedAt: 9 }),
  recordPowerIntent: (s) => s.recordPowerIntent({ planId: null, stepId: null, host: 'h9', action: 'powerOn', atMs: 9 }),
  recordPowerOutcome: (s) => s.recordPowerOutcome(1, { atMs: 9, outcome: 'succeeded' }),
  recordDecision: (s) => s.recordDecision({ atMs: 9, planId: null, mode: 'm', policy: 'p', window: null, summary: 's', steps: 0, notMoved: [] }),
  recordMetrics: (s) => s.recordMetrics(9, [{ kind: 'host', name: 'h9', host: null, cpuPct: 1, memMiB: 1 }]),
  recordMigration: (s) => s.recordMigration({ planId: null, vm: 'v9', from: 'a', to: 'b', mode: 'live', ok: true, startedMs: 9, totalMs: 1, downtimeMs: null, probeDowntimeMs: null, bytes: null, error: null }),
  recordRoundError: (s) => s.recordRoundError({ atMs: 9, code: 'X', message: 'm' }),
  recordUnknownMigration: (s) => s.recordUnknownMigration({ vm: 'v9', from: 'a', to: 'b', planId: null, sinceMs: 9, reason: 'r' }),
  recordReconcile: (s) => s.recordReconcile(1, { atMs: 9, outcome: 'none', reason: 'r', actions: [], vmOn: null }),
  setHostMaintenance: (s) => s.setHostMaintenance('h9', true, { atMs: 9, by: 'me' }),
  saveDaemonStatus: (s) => s.saveDaemonStatus({ ...daemonStatus, pid: 9 }),
  createApiToken: (s) => s.createApiToken({ name: 'n9', role: 'viewer', hash: 'h9', createdMs: 9, createdBy: 'me' }),
  revokeApiToken: (s) => s.revokeApiToken(1, 9),
  touchApiToken: (s) => s.touchApiToken(1, 9),
  setConfigOverride: (s) => s.setConfigOverride({ section: 'rules', valueJson: '[]', baseJson: '[]', setMs: 9, setBy: 'me' }),
  clearConfigOverride: (s) => s.clearConfigOverride('policy'),
  batch: (s) => s.batch(() => s.recordRoundError({ atMs: 9, code: 'B', message: 'batched' })),
};

const daemonStatus = {
  pid: 1, host: 'ctl', startedMs: 1, state: 'running' as const, heartbeatMs: 2, configFile: null, mode: 'approve', intervalSec: 60, nextRoundMs: null,
  lastRound: null, window: null, frozen: { frozen: false, reason: null }, configError: null,
};

/** Everything the store holds, through its reads (to show that a refused write changed nothing). */
function snapshot(s: Store, planId: number): unknown {
  return {
    wake: s.wakePaths(), plans: s.listPlans({ limit: 1000 }), steps: s.stepRuns(planId), power: s.powerActions({ limit: 1000 }), decisions: s.decisions({ limit: 1000 }),
    metrics: s.metricsHistory(), migrations: s.migrations({ limit: 1000 }), errors: s.roundErrors({ limit: 1000 }),
    unknown: s.unknownMigrations({ includeResolved: true }), hosts: s.hostStates(), daemon: s.daemonStatus(), tokens: s.apiTokens(),
    overrides: [s.configOverride('policy'), s.configOverride('rules')],
  };
}

/** A store holding one of everything WRITES refers to. */
function populate(s: Store): number {
  const id = s.savePlan(plan, { createdMs: 1, mode: 'approve', status: 'proposed' });
  s.recordPowerIntent({ planId: id, stepId: 2, host: 'h0', action: 'powerOff', atMs: 1 });
  s.recordUnknownMigration({ vm: 'v1', from: 'a', to: 'b', planId: id, sinceMs: 1, reason: 'r' });
  s.createApiToken({ name: 'n', role: 'admin', hash: 'h', createdMs: 1, createdBy: 'me' });
  s.recordWakePath({ host: 'h0', testedMs: 1, ok: true, reason: 'woke', method: 'ipmi', key: null });
  s.setConfigOverride({ section: 'policy', valueJson: '{}', baseJson: '{}', setMs: 1, setBy: 'me' });
  return id;
}

/** `skip`: why this store cannot be tested here (printed by the caller), or null. */
export function storeContract(label: string, harness: () => StoreHarness, skip: string | null = null): void {
  describe.skipIf(skip !== null)(`Store contract: ${label}`, () => {
    const open: Store[] = [];
    afterEach(() => {
      for (const s of open.splice(0)) {
        try {
          s.close();
        } catch { /* closed by the test */ }
      }
    });
    const fresh = (): FreshStore & { conn(): Store } => {
      const f = harness().fresh();
      return {
        ...f,
        conn() {
          const s = f.open();
          open.push(s);
          return s;
        },
      };
    };

    it('keeps plans, step runs and migrations across reopening', () => {
      const f = fresh();
      const s = f.conn();
      const id = s.savePlan(plan, { createdMs: 1000, mode: 'approve', status: 'proposed' });
      s.saveStepRun(id, { step: plan.steps[0]!, state: 'running', startedAt: 1000 });
      s.saveStepRun(id, { step: plan.steps[0]!, state: 'succeeded', startedAt: 1000, endedAt: 5000, note: 'a note' });
      s.saveStepRun(id, { step: plan.steps[1]!, state: 'failed', startedAt: 5000, endedAt: 5001.4, error: { code: 'TIDE_POWER_FAILED', message: 'no' } });
      s.recordMigration({ planId: id, vm: 'a', from: 'h0', to: 'h1', mode: 'live', ok: true, startedMs: 1000, totalMs: 4000, downtimeMs: 120, probeDowntimeMs: 300, bytes: 1e6, error: null });
      s.recordMigration({ planId: id, vm: 'a', from: 'h1', to: 'h0', mode: 'live', ok: false, startedMs: 9000, totalMs: 10, downtimeMs: null, probeDowntimeMs: null, bytes: null, error: 'TIDE_X: y' });
      s.setPlanStatus(id, 'done');
      s.close();

      const t = f.conn();
      expect(t.getPlan(id)).toMatchObject({ id, mode: 'approve', status: 'done', plan, createdMs: 1000, statusReason: null, fingerprint: null, confirmedMs: null });
      expect(t.listPlans({ status: 'done' }).map((p) => p.id)).toEqual([id]);
      expect(t.listPlans({ status: 'proposed' })).toEqual([]);
      expect(t.stepRuns(id)).toEqual([
        { planId: id, stepId: 1, kind: 'migrate', vm: 'a', from: 'h0', to: 'h1', state: 'succeeded', startedMs: 1000, endedMs: 5000, errorCode: null, errorMessage: null, note: 'a note' },
        { planId: id, stepId: 2, kind: 'powerOff', vm: null, from: null, to: 'h0', state: 'failed', startedMs: 5000, endedMs: 5001, errorCode: 'TIDE_POWER_FAILED', errorMessage: 'no', note: null },
      ]);
      expect(t.migrations({ vm: 'a' })).toEqual([
        { planId: id, vm: 'a', from: 'h1', to: 'h0', mode: 'live', ok: false, startedMs: 9000, totalMs: 10, downtimeMs: null, probeDowntimeMs: null, bytes: null, error: 'TIDE_X: y' },
        { planId: id, vm: 'a', from: 'h0', to: 'h1', mode: 'live', ok: true, startedMs: 1000, totalMs: 4000, downtimeMs: 120, probeDowntimeMs: 300, bytes: 1e6, error: null },
      ]);
      expect(t.migrations({ limit: 1 })).toHaveLength(1);
      // Only successful migrations count for cooldowns: the last one ended at 5000.
      expect([...t.lastMigrations()]).toEqual([['a', 5000]]);
    });

    it('batch: one commit — invisible to another connection until it returns; a throw out of it leaves nothing; a write that throws and is caught inside leaves the others; nested batches join', () => {
      const f = fresh();
      const s = f.conn();
      const other = f.conn();
      const id = s.batch(() => {
        const planId = s.savePlan(plan, { createdMs: 1, mode: 'automatic', status: 'running' });
        s.saveStepRun(planId, { step: plan.steps[0]!, state: 'running', startedAt: 2 });
        s.batch(() => s.recordRoundError({ atMs: 3, code: 'NESTED', message: 'joined' }));
        // not committed yet: the other connection sees nothing
        expect(other.listPlans()).toEqual([]);
        expect(other.roundErrors()).toEqual([]);
        // a failing write, caught: only it is undone
        expect(() => s.setPlanStatus(424242, 'done')).toThrow(/no plan with id 424242/);
        s.recordRoundError({ atMs: 4, code: 'AFTER', message: 'still in' });
        return planId;
      });
      expect(other.getPlan(id)).toMatchObject({ status: 'running', plan });
      expect(other.stepRuns(id).map((r) => r.state)).toEqual(['running']);
      expect(other.roundErrors().map((e) => e.code)).toEqual(['AFTER', 'NESTED']);
      expect(() => s.batch(() => {
        s.recordRoundError({ atMs: 5, code: 'LOST', message: 'rolled back' });
        s.setPlanStatus(id, 'done');
        throw new Error('the group fails');
      })).toThrow('the group fails');
      expect(other.roundErrors().map((e) => e.code)).toEqual(['AFTER', 'NESTED']);
      expect(other.getPlan(id)!.status).toBe('running');
      // a plan body and its status are independent rows: updating the status keeps the body
      s.setPlanStatus(id, 'done', 'ran');
      s.setPlanMeta(id, { fingerprint: 'fp' });
      expect(other.getPlan(id)).toMatchObject({ status: 'done', statusReason: 'ran', fingerprint: 'fp', plan });
      expect(other.listPlans({ status: 'done' })[0]!.plan).toEqual(plan);
    });

    it('plans: status with reason, compare-and-set transitions, metadata, discard only when nothing ran, newest first with limit', () => {
      const s = fresh().conn();
      expect(() => s.setPlanStatus(42, 'done')).toThrow(/no plan with id 42/);
      expect(() => s.setPlanMeta(42, { fingerprint: 'x' })).toThrow(/no plan with id 42/);
      const a = s.savePlan(plan, { createdMs: 1, mode: 'approve', status: 'proposed' });
      const b = s.savePlan(plan, { createdMs: 2, mode: 'approve', status: 'proposed' });
      expect(b).toBeGreaterThan(a);
      expect(s.transitionPlan(a, ['proposed'], 'approved', 'by alice')).toBe(true);
      expect(s.transitionPlan(a, ['proposed'], 'expired')).toBe(false);
      expect(s.transitionPlan(a, [], 'expired')).toBe(false);
      expect(s.getPlan(a)).toMatchObject({ status: 'approved', statusReason: 'by alice' });
      s.setPlanStatus(a, 'running');
      expect(s.getPlan(a)!.statusReason).toBeNull();
      s.setPlanMeta(b, { fingerprint: 'fp1' });
      s.setPlanMeta(b, { confirmedMs: 77.6 });
      expect(s.getPlan(b)).toMatchObject({ fingerprint: 'fp1', confirmedMs: 78 });
      expect(s.listPlans().map((p) => p.id)).toEqual([b, a]);
      expect(s.listPlans({ limit: 1 }).map((p) => p.id)).toEqual([b]);
      s.saveStepRun(a, { step: plan.steps[0]!, state: 'running', startedAt: 3 });
      expect(s.discardPlan(a)).toBe(false);
      expect(s.discardPlan(b)).toBe(true);
      expect(s.getPlan(b)).toBeUndefined();
      expect(s.getPlan(999)).toBeUndefined();
      expect(s.runningStepRuns()).toEqual([expect.objectContaining({ planId: a, stepId: 1, state: 'running' })]);
    });

    it('lastPowerSteps: per host its newest succeeded powerOn/powerOff of any plan (latest end; a tie: the later plan); failed, running and other steps left out', () => {
      const s = fresh().conn();
      expect(s.lastPowerSteps()).toEqual([]);
      const on = (id: number, host: string): Plan['steps'][number] => ({ id, kind: 'powerOn', host, deps: [], reason: 'r', by: 'test' });
      const off = (id: number, host: string): Plan['steps'][number] => ({ id, kind: 'powerOff', host, deps: [], reason: 'r', by: 'test' });
      const mig = (id: number, to: string): Plan['steps'][number] => ({ id, kind: 'migrate', vm: 'v', from: 'h9', to, memMiB: 1, deps: [], reason: 'r', by: 'test' });
      const run = (planId: number, step: Plan['steps'][number], state: 'succeeded' | 'failed' | 'running', endedAt?: number): void =>
        s.saveStepRun(planId, { step, state, startedAt: 1, ...(endedAt === undefined ? {} : { endedAt }) });
      const save = (steps: Plan['steps']): number => s.savePlan({ ...plan, steps }, { createdMs: 1, mode: 'automatic', status: 'done' });
      const a = save([off(1, 'h0'), on(2, 'h1'), off(3, 'h2'), mig(4, 'h5')]);
      const b = save([on(1, 'h0'), off(2, 'h1'), off(3, 'h2'), off(4, 'h3'), off(5, 'h4')]);
      const c = save([off(1, 'h3'), on(2, 'h4'), on(3, 'h1')]);
      run(a, off(1, 'h0'), 'succeeded', 100);
      run(a, on(2, 'h1'), 'succeeded', 50);
      run(a, off(3, 'h2'), 'failed', 200);
      run(a, mig(4, 'h5'), 'succeeded', 700);
      run(b, on(1, 'h0'), 'succeeded', 300.4);
      run(b, off(2, 'h1'), 'succeeded', 400);
      run(b, off(3, 'h2'), 'running');
      run(b, off(4, 'h3'), 'succeeded', 500);
      run(b, off(5, 'h4'), 'succeeded', 600);
      run(c, off(1, 'h3'), 'succeeded', 450); // a later plan whose step ended earlier (clock stepped back): not newer
      run(c, on(2, 'h4'), 'succeeded', 600); // same end as b's powerOff of h4: the later plan wins
      run(c, on(3, 'h1'), 'failed', 900); // failed: does not count
      const got = s.lastPowerSteps().map((r) => [r.to, r.kind, r.planId, r.stepId, r.endedMs, r.state]);
      expect(got).toEqual([
        ['h0', 'powerOn', b, 1, 300, 'succeeded'],
        ['h1', 'powerOff', b, 2, 400, 'succeeded'],
        ['h3', 'powerOff', b, 4, 500, 'succeeded'],
        ['h4', 'powerOn', c, 2, 600, 'succeeded'],
      ]);
      expect(s.lastPowerSteps()[0]).toEqual(s.stepRuns(b)[0]); // the whole record, as stepRuns gives it
      // a step's record is updated in place: h2's running powerOff succeeding makes it h2's newest
      run(b, off(3, 'h2'), 'succeeded', 800);
      expect(s.lastPowerSteps().find((r) => r.to === 'h2')).toMatchObject({ kind: 'powerOff', planId: b, stepId: 3, endedMs: 800 });
    });

    it('journals power intents before their outcome; filters by host, plan and pending', () => {
      const s = fresh().conn();
      const id = s.savePlan(plan, { createdMs: 1, mode: 'automatic', status: 'running' });
      const p1 = s.recordPowerIntent({ planId: id, stepId: 2, host: 'h0', action: 'powerOff', atMs: 10.2 });
      const p2 = s.recordPowerIntent({ planId: null, stepId: null, host: 'h1', action: 'powerOn', atMs: 20 });
      expect(s.powerActions({ pending: true }).map((p) => p.id)).toEqual([p2, p1]);
      s.recordPowerOutcome(p1, { atMs: 30, outcome: 'succeeded', note: 'off' });
      s.recordPowerOutcome(p2, { atMs: 40, outcome: 'failed', errorCode: 'TIDE_POWER_FAILED', errorMessage: 'bmc', by: 'recovery' });
      expect(() => s.recordPowerOutcome(999, { atMs: 1, outcome: 'x' })).toThrow(/no power action with id 999/);
      expect(s.powerActions({ pending: true })).toEqual([]);
      expect(s.powerActions({ host: 'h0' })).toEqual([{
        id: p1, planId: id, stepId: 2, host: 'h0', action: 'powerOff', requestedMs: 10, endedMs: 30, outcome: 'succeeded', errorCode: null, errorMessage: null, note: 'off', by: 'plan',
      }]);
      expect(s.powerActions({ planId: id }).map((p) => p.id)).toEqual([p1]);
      expect(s.powerActions({ limit: 1 }).map((p) => p.id)).toEqual([p2]);
      expect(s.powerActions({ host: 'h1' })[0]).toMatchObject({ outcome: 'failed', errorCode: 'TIDE_POWER_FAILED', by: 'recovery' });
    });

    it('decisions: compacted, newest first, pruned after keepMs', () => {
      const s = fresh().conn();
      const notMoved = Array.from({ length: 120 }, (_, i) => ({ vm: `v${i}`, code: 'C', reason: 'x'.repeat(300) }));
      s.recordDecision({ atMs: 1000, planId: 5, mode: 'approve', policy: 'tide', window: 'balance', summary: 'y'.repeat(600), steps: 3, notMoved });
      s.recordDecision({ atMs: 2000, planId: null, mode: 'approve', policy: 'tide', window: null, summary: 'nothing to do', steps: 0, notMoved: [] });
      const [newest, older] = s.decisions();
      expect(newest).toEqual({ atMs: 2000, planId: null, mode: 'approve', policy: 'tide', window: null, summary: 'nothing to do', steps: 0, notMoved: [] });
      expect(older!.notMoved).toHaveLength(100);
      expect(older!.notMoved[0]!.reason).toHaveLength(240);
      expect(older!.summary).toHaveLength(500);
      expect(s.decisions({ planId: 5 })).toHaveLength(1);
      expect(s.decisions({ limit: 1 })).toHaveLength(1);
      s.recordDecision({ atMs: 10_000, planId: null, mode: 'm', policy: 'p', window: null, summary: 's', steps: 0, notMoved: [] }, 8500);
      expect(s.decisions().map((d) => d.atMs)).toEqual([10_000, 2000]);
    });

    it('metrics: raw rounds merged into hourly means once whole hours pass the raw retention, hourly means dropped after theirs', () => {
      const s = fresh().conn();
      const keep = { rawKeepMs: 2 * H };
      s.recordMetrics(0, [{ kind: 'host', name: 'h1', host: null, cpuPct: 10, memMiB: 100 }, { kind: 'vm', name: 'v1', host: 'h1', cpuPct: 1, memMiB: 10 }], keep);
      s.recordMetrics(1_800_000, [{ kind: 'host', name: 'h1', host: null, cpuPct: 30, memMiB: null }, { kind: 'vm', name: 'v1', host: 'h2', cpuPct: 3, memMiB: 30 }], keep);
      expect(s.metricsHistory({ res: 'raw' })).toHaveLength(4);
      s.recordMetrics(3 * H + 1, [{ kind: 'host', name: 'h1', host: null, cpuPct: 99, memMiB: 99 }], keep);
      expect(s.metricsHistory({ res: 'hour' })).toEqual([
        { atMs: 0, kind: 'host', name: 'h1', host: null, cpuPct: 20, memMiB: 100, samples: 2, res: 'hour' },
        { atMs: 0, kind: 'vm', name: 'v1', host: 'h2', cpuPct: 2, memMiB: 20, samples: 2, res: 'hour' },
      ]);
      // A late raw point of an hour already merged is merged into the same mean later.
      s.recordMetrics(3_000_000, [{ kind: 'host', name: 'h1', host: null, cpuPct: 50, memMiB: null }], keep);
      s.recordMetrics(5 * H, [{ kind: 'host', name: 'h1', host: null, cpuPct: 5, memMiB: 5 }], keep);
      expect(s.metricsHistory({ kind: 'host', name: 'h1', res: 'hour' })).toEqual([
        { atMs: 0, kind: 'host', name: 'h1', host: null, cpuPct: 30, memMiB: 100, samples: 3, res: 'hour' },
      ]);
      expect(s.metricsHistory({ kind: 'host', sinceMs: 3 * H })).toEqual([
        { atMs: 3 * H + 1, kind: 'host', name: 'h1', host: null, cpuPct: 99, memMiB: 99, samples: 1, res: 'raw' },
        { atMs: 5 * H, kind: 'host', name: 'h1', host: null, cpuPct: 5, memMiB: 5, samples: 1, res: 'raw' },
      ]);
      s.recordMetrics(10 * H, [{ kind: 'vm', name: 'v2', host: 'h1', cpuPct: null, memMiB: null }], { rawKeepMs: 2 * H, hourKeepMs: H });
      expect(s.metricsHistory()).toEqual([{ atMs: 10 * H, kind: 'vm', name: 'v2', host: 'h1', cpuPct: null, memMiB: null, samples: 1, res: 'raw' }]);
    });

    it('metrics: a time range [sinceMs, untilMs) and a limit (the oldest first), as a paged reader uses them', () => {
      const s = fresh().conn();
      const vm = (name: string, cpuPct: number): MetricSample => ({ kind: 'vm', name, host: 'h1', cpuPct, memMiB: 10 });
      const keep = { rawKeepMs: 2 * H };
      s.recordMetrics(0, [vm('v2', 1), vm('v1', 2)], keep);
      s.recordMetrics(1_800_000, [vm('v1', 3)], keep);
      s.recordMetrics(3 * H + 1, [vm('v1', 4), { kind: 'host', name: 'h1', host: null, cpuPct: 5, memMiB: 5 }], keep); // hour 0 merged
      s.recordMetrics(4 * H, [vm('v1', 6)], keep);
      const at = (ps: readonly MetricPoint[]): [number, string, string][] => ps.map((p) => [p.atMs, p.res, p.name]);
      expect(at(s.metricsHistory({ kind: 'vm', untilMs: 4 * H }))).toEqual([[0, 'hour', 'v1'], [0, 'hour', 'v2'], [3 * H + 1, 'raw', 'v1']]);
      expect(at(s.metricsHistory({ kind: 'vm', sinceMs: 1, untilMs: 4 * H + 1 }))).toEqual([[3 * H + 1, 'raw', 'v1'], [4 * H, 'raw', 'v1']]);
      expect(at(s.metricsHistory({ kind: 'vm', sinceMs: 3 * H + 1, untilMs: 3 * H + 1 }))).toEqual([]);
      expect(at(s.metricsHistory({ kind: 'vm', res: 'raw', sinceMs: 0, untilMs: 5 * H, limit: 1 }))).toEqual([[3 * H + 1, 'raw', 'v1']]);
      expect(at(s.metricsHistory({ kind: 'vm', res: 'hour', limit: 1 }))).toEqual([[0, 'hour', 'v1']]);
      expect(at(s.metricsHistory({ res: 'raw', sinceMs: 3 * H + 2, limit: 5 }))).toEqual([[4 * H, 'raw', 'v1']]);
    });

    it('unknown migrations: one open record per VM, attempts counted, operator outcomes kept blocking, resolved ones hidden', () => {
      const f = fresh();
      const s = f.conn();
      const id = s.recordUnknownMigration({ vm: 'v1', from: 'a', to: 'b', planId: null, sinceMs: 1000, reason: 'TIDE_MIGRATION_UNKNOWN: b does not answer' });
      expect(s.recordUnknownMigration({ vm: 'v1', from: 'a', to: 'c', planId: 7, sinceMs: 2000, reason: 'again' })).toBe(id);
      expect(s.unknownMigrations()).toEqual([{
        id, vm: 'v1', from: 'a', to: 'c', planId: 7, sinceMs: 1000, reason: 'again', status: 'open', attempts: 0, lastAttemptMs: null,
        outcome: null, outcomeReason: null, actions: [], vmOn: null, resolvedMs: null,
      }]);
      expect(s.recordReconcile(id, { atMs: 3000, outcome: 'unknown', reason: 'b does not answer', actions: [], vmOn: null })).toMatchObject({ status: 'open', attempts: 1, lastAttemptMs: 3000 });
      const b = s.recordUnknownMigration({ vm: 'v2', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r' });
      expect(s.recordReconcile(b, { atMs: 1, outcome: 'both', reason: 'ran on both', actions: ['paused v2 on a'], vmOn: null }).status).toBe('operator');
      const t = f.conn();
      expect(t.recordReconcile(id, { atMs: 4000, outcome: 'target', reason: 'runs on c', actions: ['destroyed x'], vmOn: 'c' }))
        .toMatchObject({ status: 'resolved', attempts: 2, outcome: 'target', outcomeReason: 'runs on c', vmOn: 'c', actions: ['destroyed x'], resolvedMs: 4000 });
      expect(t.unknownMigrations().map((u) => u.vm)).toEqual(['v2']);
      expect(t.unknownMigrations({ vm: 'v1' })).toEqual([]);
      expect(t.unknownMigrations({ includeResolved: true })).toHaveLength(2);
      expect(t.recordUnknownMigration({ vm: 'v1', from: 'c', to: 'a', planId: null, sinceMs: 5000, reason: 'r' })).not.toBe(id);
      expect(() => t.recordReconcile(999, { atMs: 1, outcome: 'none', reason: 'r', actions: [], vmOn: null })).toThrow(/no unknown migration with id 999/);
    });

    it('operator state, daemon status, wake paths, round errors, config overrides', () => {
      const s = fresh().conn();
      expect(s.setHostMaintenance('h1', true, { atMs: 5, by: 'alice@ctl', reason: 'disk' })).toEqual({ host: 'h1', maintenance: true, sinceMs: 5, by: 'alice@ctl', reason: 'disk' });
      s.setHostMaintenance('h1', false, { atMs: 6, by: 'bob@ctl' });
      s.setHostMaintenance('h0', true, { atMs: 7, by: 'tide daemon' });
      expect(s.hostStates()).toEqual([
        { host: 'h0', maintenance: true, sinceMs: 7, by: 'tide daemon', reason: null },
        { host: 'h1', maintenance: false, sinceMs: 6, by: 'bob@ctl', reason: null },
      ]);
      expect(s.daemonStatus()).toBeUndefined();
      s.saveDaemonStatus(daemonStatus);
      s.saveDaemonStatus({ ...daemonStatus, heartbeatMs: 3, state: 'stopping' });
      expect(s.daemonStatus()).toEqual({ ...daemonStatus, heartbeatMs: 3, state: 'stopping' });
      expect(s.wakePath('h1')).toBeUndefined();
      s.recordWakePath({ host: 'h1', testedMs: 1, ok: false, reason: 'no answer', method: 'ipmi', key: 'k1' });
      s.recordWakePath({ host: 'h1', testedMs: 2, ok: true, reason: 'woke', method: 'ipmi', key: 'k2' });
      s.recordWakePath({ host: 'h0', testedMs: 3, ok: true, reason: 'woke', method: null, key: null });
      expect(s.wakePath('h1')).toEqual({ host: 'h1', testedMs: 2, ok: true, reason: 'woke', method: 'ipmi', key: 'k2' });
      expect(s.wakePaths().map((w) => w.host)).toEqual(['h0', 'h1']);
      expect(s.clearWakePath('h1')).toBe(true);
      expect(s.clearWakePath('h1')).toBe(false);
      s.recordRoundError({ atMs: 1, code: 'A', message: 'one' });
      s.recordRoundError({ atMs: 2, code: 'B', message: 'two' });
      expect(s.roundErrors()).toEqual([{ atMs: 2, code: 'B', message: 'two' }, { atMs: 1, code: 'A', message: 'one' }]);
      expect(s.roundErrors({ limit: 1 })).toHaveLength(1);
      expect(s.configOverride('rules')).toBeUndefined();
      s.setConfigOverride({ section: 'rules', valueJson: '[1]', baseJson: '[]', setMs: 1, setBy: 'api:a#1' });
      s.setConfigOverride({ section: 'rules', valueJson: '[2]', baseJson: '[]', setMs: 2, setBy: 'api:a#1' });
      expect(s.configOverride('rules')).toEqual({ section: 'rules', valueJson: '[2]', baseJson: '[]', setMs: 2, setBy: 'api:a#1' });
      expect(s.clearConfigOverride('rules')).toBe(true);
      expect(s.clearConfigOverride('rules')).toBe(false);
    });

    it('API tokens: only hashes, unique, revoked once, last use recorded', () => {
      const s = fresh().conn();
      const a = s.createApiToken({ name: 'ci', role: 'operator', hash: 'aa', createdMs: 1, createdBy: 'root@ctl' });
      const b = s.createApiToken({ name: 'view', role: 'viewer', hash: 'bb', createdMs: 2, createdBy: 'root@ctl' });
      expect(() => s.createApiToken({ name: 'dup', role: 'admin', hash: 'aa', createdMs: 3, createdBy: 'x' })).toThrow();
      s.touchApiToken(a, 10);
      expect(s.revokeApiToken(b, 11)).toBe(true);
      expect(s.revokeApiToken(b, 12)).toBe(false);
      expect(s.revokeApiToken(999, 12)).toBe(false);
      expect(s.apiTokenByHash('aa')).toEqual({ id: a, name: 'ci', role: 'operator', hash: 'aa', createdMs: 1, createdBy: 'root@ctl', lastUsedMs: 10, revokedMs: null });
      expect(s.apiTokens().map((t) => [t.id, t.revokedMs])).toEqual([[a, null], [b, 11]]);
      expect(s.apiTokenByHash('zz')).toBeUndefined();
    });

    it('cluster lock: refuses a second holder naming it; heartbeat keeps it; takes over past the TTL; only the holder releases', () => {
      const f = fresh();
      const a = f.conn();
      const b = f.conn();
      expect(codeOf(() => a.acquireClusterLock(holder('x'), 0))).toBe('TIDE_INVALID_ARGUMENT');
      const lease = a.acquireClusterLock(holder('tide evacuate srv-2'), 5_000, { nowMs: Date.UTC(2026, 0, 2, 3, 4, 5) });
      const t0 = Date.UTC(2026, 0, 2, 3, 4, 5);
      const e = driverError(() => b.acquireClusterLock(holder('tide controller'), 5_000, { nowMs: t0 + 1000 }), 'TIDE_LOCKED');
      expect(e.message).toBe(`cluster locked by tide evacuate srv-2 (pid ${process.pid} on ${hostname()}) since 2026-01-02T03:04:05.000Z`);
      expect(b.clusterLock()).toEqual({ token: lease.token, holder: holder('tide evacuate srv-2'), acquiredMs: t0, heartbeatMs: t0, ttlMs: 5_000 });
      a.heartbeatClusterLock(lease, t0 + 4_000);
      driverError(() => b.acquireClusterLock(holder('tide controller'), 5_000, { nowMs: t0 + 8_000 }), 'TIDE_LOCKED');
      const taken = b.acquireClusterLock(holder('tide controller'), 5_000, { nowMs: t0 + 9_001 });
      expect(taken.tookOver).toEqual({ holder: holder('tide evacuate srv-2'), why: 'no heartbeat for 5 s (its TTL is 5 s)' });
      expect(driverError(() => a.heartbeatClusterLock(lease, t0 + 9_002), 'TIDE_LOCKED').message).toMatch(/lost the cluster lock .*now held by tide controller/);
      expect(a.releaseClusterLock(lease)).toBe(false);
      expect(a.clusterLock()!.token).toBe(taken.token);
      expect(b.releaseClusterLock(taken)).toBe(true);
      expect(a.clusterLock()).toBeUndefined();
      expect(driverError(() => b.heartbeatClusterLock(taken), 'TIDE_LOCKED').message).toMatch(/it was released/);
      expect(a.acquireClusterLock(holder('tide daemon'), 5_000).tookOver).toBeUndefined();
    });

    it('cluster lock: taken over at once from a dead holder on this machine, not from one elsewhere', () => {
      const deadPid = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
      expect(deadPid).toBeGreaterThan(0);
      const f = fresh();
      const a = f.conn();
      const b = f.conn();
      a.acquireClusterLock(holder('tide evacuate', { pid: deadPid, host: 'ctl-elsewhere' }), 60_000);
      driverError(() => b.acquireClusterLock(holder('tide controller'), 60_000), 'TIDE_LOCKED');
      b.releaseClusterLock(b.clusterLock()!);
      a.acquireClusterLock(holder('tide evacuate', { pid: deadPid }), 60_000);
      expect(b.acquireClusterLock(holder('tide controller'), 60_000).tookOver!.why).toBe(`process ${deadPid} no longer runs on ${hostname()}`);
    });

    it('withClusterLock holds the lock while its work runs, re-entrant on the same store, released afterwards', async () => {
      const f = fresh();
      const a = f.conn();
      const b = f.conn();
      const inner = await withClusterLock(a, holder('tide evacuate'), async () => {
        driverError(() => b.acquireClusterLock(holder('tide controller'), 60_000), 'TIDE_LOCKED');
        return withClusterLock(a, holder('tide controller (nested)'), async () => a.clusterLock()!.holder.command);
      });
      expect(inner).toBe('tide evacuate');
      expect(b.clusterLock()).toBeUndefined();
    });

    it('withClusterLock aborts its work with TIDE_LOCKED once another holder took the lock over', async () => {
      const f = fresh();
      const a = f.conn();
      const b = f.conn();
      const reason = await withClusterLock(a, holder('tide daemon'), async (signal) => {
        // Another controller decides the lock is stale (this one stalled past the TTL, say).
        b.acquireClusterLock(holder('tide evacuate'), 60_000, { nowMs: Date.now() + 10 * 60_000 });
        await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
        return signal.reason as DriverError;
      }, { ttlMs: 60_000, heartbeatMs: 10 });
      expect(reason).toBeInstanceOf(DriverError);
      expect(reason.code).toBe('TIDE_LOCKED');
      expect(reason.message).toMatch(/now held by tide evacuate/);
      expect(b.clusterLock()!.holder.command).toBe('tide evacuate');
    });

    it('fence: passes for the current holder; TIDE_FENCED once taken over, released, or past its TTL by the store clock', () => {
      const f = fresh();
      const a = f.conn();
      const b = f.conn();
      const lease = a.acquireClusterLock(holder('tide daemon (a)'), 60_000);
      a.fence(lease);
      b.fence(lease); // any connection can check a lease
      const taken = b.acquireClusterLock(holder('tide daemon (b)'), 60_000, { nowMs: Date.now() + 120_000 });
      expect(driverError(() => a.fence(lease), 'TIDE_FENCED').message).toMatch(/no longer the cluster lock .*now held by tide daemon \(b\)/);
      b.fence(taken);
      b.releaseClusterLock(taken);
      expect(driverError(() => b.fence(taken), 'TIDE_FENCED').message).toMatch(/it was released/);
      // Its last heartbeat past the TTL by the store's clock, though nobody took over yet.
      const stale = b.acquireClusterLock(holder('tide daemon (b)'), 1_000, { nowMs: Date.now() - 120_000 });
      expect(driverError(() => b.fence(stale), 'TIDE_FENCED').message).toMatch(/no heartbeat of this lease for \d+ ms/);
      b.heartbeatClusterLock(stale);
      b.fence(stale);
    });

    it('setFence: a deposed holder\'s writes — every kind — are refused with TIDE_FENCED and change nothing; the holder\'s go through', () => {
      const f = fresh();
      const a = f.conn();
      const b = f.conn();
      const planId = populate(a);
      const lease = a.acquireClusterLock(holder('tide daemon (a)'), 60_000);
      a.setFence(lease);
      a.recordRoundError({ atMs: 1, code: 'OK', message: 'while leading' });
      // b takes over (a paused past its TTL, say); a, still believing it leads, writes on.
      const taken = b.acquireClusterLock(holder('tide daemon (b)'), 60_000, { nowMs: Date.now() + 120_000 });
      const before = snapshot(b, planId);
      for (const [name, call] of Object.entries(WRITES)) {
        expect(codeOf(() => call(a, planId)), name).toBe('TIDE_FENCED');
      }
      expect(snapshot(b, planId)).toEqual(before);
      // Reads never need the fence.
      expect(a.getPlan(planId)).toBeDefined();
      // The new holder's fenced writes go through; so do a's once unfenced (a tool, not a leader).
      b.setFence(taken);
      for (const [name, call] of Object.entries(WRITES)) expect(codeOf(() => call(b, planId)), name).toBe('no error');
      a.setFence(undefined);
      a.recordRoundError({ atMs: 2, code: 'OK', message: 'unfenced' });
      expect(a.roundErrors({ limit: 1 })[0]!.message).toBe('unfenced');
    });

    it('a fence whose TTL ran out refuses writes even while nobody took over', () => {
      const s = fresh().conn();
      const lease = s.acquireClusterLock(holder('tide daemon'), 1_000, { nowMs: Date.now() - 60_000 });
      s.setFence(lease);
      expect(codeOf(() => s.recordRoundError({ atMs: 1, code: 'X', message: 'late' }))).toBe('TIDE_FENCED');
      expect(s.roundErrors()).toEqual([]);
      s.heartbeatClusterLock(lease); // renewed in time again (nobody took over): writes resume
      s.recordRoundError({ atMs: 1, code: 'X', message: 'renewed' });
      expect(s.roundErrors()).toHaveLength(1);
    });

    it('classifies every method (a new write must be fenced: add it to WRITES)', () => {
      const s = fresh().conn();
      const known = new Set<string>([...READS, ...LOCK, ...Object.keys(WRITES)]);
      expect(Object.keys(s).filter((k) => typeof (s as unknown as Record<string, unknown>)[k] === 'function' && !known.has(k))).toEqual([]);
    });

    it('refuses a store whose schema is newer than this Tide, changing nothing; reopening a current one is idempotent', () => {
      const f = fresh();
      const s = f.conn();
      const id = s.savePlan(plan, { createdMs: 1, mode: 'approve', status: 'proposed' });
      s.close();
      f.conn().close();
      f.setVersion(99);
      expect(driverError(() => f.open(), 'TIDE_STORE_VERSION').message).toMatch(/store schema version 99, this Tide understands up to \d+/);
      f.setVersion(0);
      expect(driverError(() => f.open(), 'TIDE_STORE_VERSION').message).toMatch(/store schema version 0 is unknown/);
      f.setVersion(4);
      expect(f.conn().getPlan(id)).toBeDefined();
    });
  });
}

