/**
 * The store's daemon additions: plan status compare-and-set, fingerprint and re-confirmation,
 * discarding a plan that never ran, maintenance kept per host, the status row, and the guarded
 * ALTER that gives a store written before them the new plan columns.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/core/plan/types.js';
import { openSqliteStore } from '../../src/store/store.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-daemon-store-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const plan: Plan = {
  policy: 'tide', time: 0, hosts: [], notMoved: [],
  steps: [{ id: 1, kind: 'migrate', vm: 'v', from: 'a', to: 'b', memMiB: 1, deps: [], reason: 'r', by: 'x' }],
};

describe('store: daemon additions', () => {
  it('transitionPlan changes the status only from the given ones, with a reason', () => {
    const s = openSqliteStore(':memory:');
    const id = s.savePlan(plan, { createdMs: 1, mode: 'approve', status: 'proposed' });
    expect(s.transitionPlan(id, ['approved'], 'running')).toBe(false);
    expect(s.transitionPlan(id, ['proposed'], 'approved', 'approved by me')).toBe(true);
    expect(s.getPlan(id)).toMatchObject({ status: 'approved', statusReason: 'approved by me' });
    expect(s.transitionPlan(id, ['proposed'], 'rejected')).toBe(false);
    expect(s.transitionPlan(id, [], 'rejected')).toBe(false);
    s.setPlanStatus(id, 'expired', 'the cluster changed');
    expect(s.listPlans({ status: 'expired' }).map((p) => [p.id, p.statusReason])).toEqual([[id, 'the cluster changed']]);
    s.close();
  });

  it('setPlanMeta keeps what it is not given; discardPlan deletes only a plan that never ran', () => {
    const s = openSqliteStore(':memory:');
    const id = s.savePlan(plan, { createdMs: 1, mode: 'approve', status: 'proposed' });
    s.setPlanMeta(id, { fingerprint: 'fp', confirmedMs: 10 });
    s.setPlanMeta(id, { confirmedMs: 20 });
    expect(s.getPlan(id)).toMatchObject({ fingerprint: 'fp', confirmedMs: 20 });
    expect(() => s.setPlanMeta(999, { confirmedMs: 1 })).toThrow(/no plan with id 999/);
    const ran = s.savePlan(plan, { createdMs: 2, mode: 'automatic', status: 'running' });
    s.saveStepRun(ran, { step: plan.steps[0]!, state: 'running', startedAt: 3 });
    expect(s.discardPlan(ran)).toBe(false);
    expect(s.getPlan(ran)).toBeDefined();
    expect(s.discardPlan(id)).toBe(true);
    expect(s.getPlan(id)).toBeUndefined();
    s.close();
  });

  it('host maintenance and the daemon status row', () => {
    const s = openSqliteStore(':memory:');
    expect(s.hostStates()).toEqual([]);
    s.setHostMaintenance('b', true, { atMs: 5, by: 'op@x', reason: 'disk' });
    s.setHostMaintenance('a', true, { atMs: 6, by: 'op@x' });
    expect(s.setHostMaintenance('a', false, { atMs: 7, by: 'op@y' })).toEqual({ host: 'a', maintenance: false, sinceMs: 7, by: 'op@y', reason: null });
    expect(s.hostStates().map((h) => [h.host, h.maintenance, h.reason])).toEqual([['a', false, null], ['b', true, 'disk']]);
    expect(s.daemonStatus()).toBeUndefined();
    const row = {
      pid: 1, host: 'h', startedMs: 0, state: 'running' as const, heartbeatMs: 9, configFile: null, mode: 'approve', intervalSec: 60, nextRoundMs: 60_000,
      lastRound: null, window: null, frozen: { frozen: false, reason: null }, configError: null,
    };
    s.saveDaemonStatus(row);
    s.saveDaemonStatus({ ...row, heartbeatMs: 10 });
    expect(s.daemonStatus()).toEqual({ ...row, heartbeatMs: 10 });
    s.close();
  });

  it('a store written before the daemon columns gets them on open, its plans intact', () => {
    const path = join(tmp, 'old.sqlite');
    const s = openSqliteStore(path);
    const id = s.savePlan(plan, { createdMs: 1, mode: 'recommend', status: 'proposed' });
    s.close();
    // As an older Tide left it: the plans table without the new columns.
    const db = new Database(path);
    db.exec('ALTER TABLE plans DROP COLUMN fingerprint; ALTER TABLE plans DROP COLUMN status_reason; ALTER TABLE plans DROP COLUMN confirmed_ms');
    db.close();
    const t = openSqliteStore(path);
    expect(t.getPlan(id)).toMatchObject({ status: 'proposed', fingerprint: null, statusReason: null, confirmedMs: null });
    t.setPlanMeta(id, { fingerprint: 'x' });
    expect(t.getPlan(id)!.fingerprint).toBe('x');
    t.close();
  });
});
