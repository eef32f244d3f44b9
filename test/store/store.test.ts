import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/core/plan/types.js';
import { openSqliteStore } from '../../src/store/store.js';

const plan: Plan = {
  policy: 'tide', time: 100,
  steps: [{ id: 1, kind: 'migrate', vm: 'a', from: 'h0', to: 'h1', memMiB: 512, deps: [], reason: 'because', by: 'test' }],
  hosts: [], notMoved: [],
};

describe('SQLite store', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('keeps plans, step runs and migrations across reopening', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-store-'));
    dirs.push(dir);
    const path = join(dir, 'sub', 'tide.sqlite');
    const s = openSqliteStore(path);
    const id = s.savePlan(plan, { createdMs: 1000, mode: 'approve', status: 'proposed' });
    s.saveStepRun(id, { step: plan.steps[0]!, state: 'running', startedAt: 1000 });
    s.saveStepRun(id, { step: plan.steps[0]!, state: 'succeeded', startedAt: 1000, endedAt: 5000, note: 'a note' });
    s.recordMigration({ planId: id, vm: 'a', from: 'h0', to: 'h1', mode: 'live', ok: true, startedMs: 1000, totalMs: 4000, downtimeMs: 120, probeDowntimeMs: 300, bytes: 1e6, error: null });
    s.recordMigration({ planId: id, vm: 'a', from: 'h1', to: 'h0', mode: 'live', ok: false, startedMs: 9000, totalMs: 10, downtimeMs: null, probeDowntimeMs: null, bytes: null, error: 'TIDE_X: y' });
    s.setPlanStatus(id, 'done');
    s.close();

    const t = openSqliteStore(path);
    expect(t.getPlan(id)).toMatchObject({ id, mode: 'approve', status: 'done', plan });
    expect(t.listPlans({ status: 'done' }).map((p) => p.id)).toEqual([id]);
    expect(t.listPlans({ status: 'proposed' })).toEqual([]);
    expect(t.stepRuns(id)).toEqual([{
      planId: id, stepId: 1, kind: 'migrate', vm: 'a', from: 'h0', to: 'h1', state: 'succeeded', startedMs: 1000, endedMs: 5000, errorCode: null, errorMessage: null, note: 'a note',
    }]);
    expect(t.migrations({ vm: 'a' }).map((m) => m.ok)).toEqual([false, true]);
    // Only successful migrations count for cooldowns: the last one ended at 5000.
    expect([...t.lastMigrations()]).toEqual([['a', 5000]]);
    t.close();
  });

  it('refuses unknown plan ids', () => {
    const s = openSqliteStore(':memory:');
    expect(() => s.setPlanStatus(42, 'done')).toThrow(/no plan with id 42/);
    s.close();
  });
});
