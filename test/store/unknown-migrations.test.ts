// Unknown migrations in the SQLite store (schema 3): a version-2 store (as a Tide before this
// table wrote it) is upgraded in place and keeps its rows; so is a version-3 one to 4.
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
  // Recording, reconcile attempts and outcomes are in the Store contract (test/store/contract.ts),
  // run on SQLite and PostgreSQL; here SQLite's in-place upgrades.
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
    expect((v.prepare('SELECT version FROM schema_version').all() as { version: number }[])).toEqual([{ version: 6 }]);
    v.exec('UPDATE schema_version SET version = 7');
    v.close();
    expect(() => openSqliteStore(path)).toThrow(/schema version 7, this Tide understands up to 6/);
  });

  it('upgrades a version-3 store to 6 in place: plans kept, the daemon and journal tables and plan columns added', () => {
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
    expect((v.prepare('SELECT version FROM schema_version').all() as { version: number }[])).toEqual([{ version: 6 }]);
    v.close();
  });

  it('upgrades a version-4 store to 6 in place: plans kept, the API overrides table added', () => {
    const path = tempPath();
    const s = openSqliteStore(path);
    const id = s.savePlan({ policy: 'p', time: 0, steps: [], hosts: [], notMoved: [] }, { createdMs: 0, mode: 'approve', status: 'proposed' });
    s.close();
    const db = new Database(path);
    db.exec('DROP TABLE config_overrides; UPDATE schema_version SET version = 4');
    db.close();
    const up = openSqliteStore(path);
    expect(up.getPlan(id)?.status).toBe('proposed');
    expect(up.configOverride('policy')).toBeUndefined();
    up.setConfigOverride({ section: 'policy', valueJson: '"tide"', baseJson: '"npa"', setMs: 1, setBy: 'test' });
    expect(up.configOverride('policy')?.setBy).toBe('test');
    up.close();
    const v = new Database(path);
    expect((v.prepare('SELECT version FROM schema_version').all() as { version: number }[])).toEqual([{ version: 6 }]);
    v.close();
  });

  it('upgrades a version-5 store to 6 in place: a plan kept in plans.plan_json still reads whole, the lease row gains its node', () => {
    const path = tempPath();
    const s = openSqliteStore(path);
    const id = s.savePlan({ policy: 'p', time: 7, steps: [{ id: 1, kind: 'powerOff', host: 'h1', deps: [], reason: 'r', by: 'b' }], hosts: [], notMoved: [] },
      { createdMs: 0, mode: 'approve', status: 'proposed' });
    s.close();
    // As a version-5 Tide wrote it: the body in the plan row, no plan_bodies, no lease node.
    const db = new Database(path);
    db.exec(`UPDATE plans SET plan_json = (SELECT plan_json FROM plan_bodies b WHERE b.plan_id = plans.id);
      DROP TABLE plan_bodies; ALTER TABLE cluster_lock DROP COLUMN node; UPDATE schema_version SET version = 5`);
    db.close();
    const up = openSqliteStore(path);
    expect(up.getPlan(id)?.plan.steps.map((st) => st.kind)).toEqual(['powerOff']);
    const id2 = up.savePlan({ policy: 'q', time: 8, steps: [], hosts: [], notMoved: [] }, { createdMs: 1, mode: 'approve', status: 'proposed' });
    expect(up.getPlan(id2)?.plan.policy).toBe('q');
    up.close();
    const v = new Database(path);
    expect((v.prepare('SELECT version FROM schema_version').all() as { version: number }[])).toEqual([{ version: 6 }]);
    expect((v.prepare('PRAGMA table_info(cluster_lock)').all() as { name: string }[]).map((c) => c.name)).toContain('node');
    expect((v.prepare('SELECT plan_json FROM plan_bodies WHERE plan_id = ?').get(id2) as { plan_json: string }).plan_json).toContain('"q"');
    v.close();
  });
});
