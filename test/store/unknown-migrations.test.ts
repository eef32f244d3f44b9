// Unknown migrations in the store (schema 3): recorded once per VM while open, each reconcile
// attempt counted, 'both'/'split' handed to an operator, the rest resolved; a version-2 store
// (as a Tide before this table wrote it) is upgraded in place and keeps its rows.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/store.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempPath = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'tide-unknown-'));
  dirs.push(d);
  return join(d, 'tide.sqlite');
};

describe('unknown migrations in the store', () => {
  it('records one open entry per VM, counts attempts, resolves on a known outcome and keeps it across reopening', () => {
    const path = tempPath();
    const s = openSqliteStore(path);
    const id = s.recordUnknownMigration({ vm: 'v1', from: 'a', to: 'b', planId: null, sinceMs: 1000, reason: 'TIDE_MIGRATION_UNKNOWN: b does not answer' });
    // the same VM again (a second unknown before a reconcile settled it): one record
    expect(s.recordUnknownMigration({ vm: 'v1', from: 'a', to: 'b', planId: 7, sinceMs: 2000, reason: 'again' })).toBe(id);
    expect(s.unknownMigrations()).toHaveLength(1);
    let r = s.recordReconcile(id, { atMs: 3000, outcome: 'unknown', reason: 'b does not answer', actions: [], vmOn: null });
    expect(r).toMatchObject({ status: 'open', attempts: 1, lastAttemptMs: 3000, sinceMs: 1000, planId: 7, resolvedMs: null });
    s.close();
    const t = openSqliteStore(path);
    expect(t.unknownMigrations({ vm: 'v1' })).toHaveLength(1);
    expect(t.unknownMigrations({ vm: 'other' })).toHaveLength(0);
    r = t.recordReconcile(id, { atMs: 4000, outcome: 'target', reason: 'runs on b', actions: ['destroyed x'], vmOn: 'b' });
    expect(r).toMatchObject({ status: 'resolved', attempts: 2, outcome: 'target', vmOn: 'b', actions: ['destroyed x'], resolvedMs: 4000 });
    expect(t.unknownMigrations()).toEqual([]);
    expect(t.unknownMigrations({ includeResolved: true })).toHaveLength(1);
    // a later unknown of the same VM is a new record
    expect(t.recordUnknownMigration({ vm: 'v1', from: 'b', to: 'a', planId: null, sinceMs: 5000, reason: 'r' })).not.toBe(id);
    t.close();
  });

  it("'both' and 'split' stay blocking for an operator; 'none' resolves", () => {
    const s = openSqliteStore(':memory:');
    const a = s.recordUnknownMigration({ vm: 'v1', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r' });
    const b = s.recordUnknownMigration({ vm: 'v2', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r' });
    const c = s.recordUnknownMigration({ vm: 'v3', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r' });
    expect(s.recordReconcile(a, { atMs: 1, outcome: 'both', reason: 'ran on both', actions: ['paused v1 on a'], vmOn: null }).status).toBe('operator');
    expect(s.recordReconcile(b, { atMs: 1, outcome: 'split', reason: 'post-copy', actions: [], vmOn: null }).status).toBe('operator');
    expect(s.recordReconcile(c, { atMs: 1, outcome: 'none', reason: 'active nowhere', actions: [], vmOn: null }).status).toBe('resolved');
    expect(s.unknownMigrations().map((u) => u.vm)).toEqual(['v1', 'v2']);
    expect(() => s.recordReconcile(999, { atMs: 1, outcome: 'none', reason: '', actions: [], vmOn: null })).toThrow(/no unknown migration/);
    s.close();
  });

  it('upgrades a version-2 store in place (its plans kept) and refuses a newer one', () => {
    const path = tempPath();
    const s = openSqliteStore(path);
    s.savePlan({ policy: 'p', time: 0, steps: [], hosts: [], notMoved: [] }, { createdMs: 0, mode: 'automatic', status: 'done' });
    s.close();
    const db = new Database(path);
    db.exec('DROP TABLE unknown_migrations; UPDATE schema_version SET version = 2');
    db.close();
    const up = openSqliteStore(path);
    expect(up.listPlans()).toHaveLength(1);
    expect(up.recordUnknownMigration({ vm: 'v', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r' })).toBeGreaterThan(0);
    up.close();
    const v = new Database(path);
    expect((v.prepare('SELECT version FROM schema_version').all() as { version: number }[])).toEqual([{ version: 4 }]);
    v.exec('UPDATE schema_version SET version = 5');
    v.close();
    expect(() => openSqliteStore(path)).toThrow(/schema version 5, this Tide understands up to 4/);
  });

  it('upgrades a version-3 store to 4 in place: plans kept, the daemon and journal tables and plan columns added', () => {
    const path = tempPath();
    const s = openSqliteStore(path);
    const id = s.savePlan({ policy: 'p', time: 0, steps: [], hosts: [], notMoved: [] }, { createdMs: 0, mode: 'approve', status: 'proposed' });
    s.close();
    const db = new Database(path);
    db.exec(`DROP TABLE host_state; DROP TABLE daemon_status; DROP TABLE api_tokens; DROP TABLE wake_path; DROP TABLE power_actions; DROP TABLE decisions; DROP TABLE metrics;
      ALTER TABLE plans DROP COLUMN fingerprint; ALTER TABLE plans DROP COLUMN status_reason; ALTER TABLE plans DROP COLUMN confirmed_ms;
      UPDATE schema_version SET version = 3`);
    db.close();
    const up = openSqliteStore(path);
    expect(up.getPlan(id)?.status).toBe('proposed');
    up.setPlanMeta(id, { fingerprint: 'f', confirmedMs: 5 });
    expect(up.setHostMaintenance('h1', true, { atMs: 1, by: 'test' }).maintenance).toBe(true);
    expect(up.hostStates().map((h) => h.host)).toEqual(['h1']);
    expect(up.wakePaths()).toEqual([]);
    expect(up.apiTokens()).toEqual([]);
    up.close();
    const v = new Database(path);
    expect((v.prepare('SELECT version FROM schema_version').all() as { version: number }[])).toEqual([{ version: 4 }]);
    v.close();
  });
});
