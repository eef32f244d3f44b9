/**
 * The lease row's node id (LockHolder.node, config daemon.nodeId) in both stores: it round-trips
 * through acquire → clusterLock(), a holder without one reads back without one, and a store
 * whose cluster_lock predates the column gets it when opened (guarded ALTER; SQLite, and
 * PostgreSQL on a real server started for this file — skipped with the reason outside CI when
 * the binaries are missing).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgStore } from '../../src/store/pg/store.js';
import { openSqliteStore, type LockHolder, type Store } from '../../src/store/store.js';
import { postgresSkipReason, startPostgres, type PgServer } from '../helpers/postgres.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-lease-node-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const holder = (node?: string): LockHolder => ({ pid: 4242, host: 'ctl', command: 'tide daemon', startedMs: 1, ...(node ? { node } : {}) });

function roundTrip(s: Store): void {
  const a = s.acquireClusterLock(holder('ctl-a1b2c3'), 10_000);
  expect(s.clusterLock()?.holder).toEqual(holder('ctl-a1b2c3'));
  expect(s.releaseClusterLock(a)).toBe(true);
  const b = s.acquireClusterLock(holder(), 10_000);
  expect(s.clusterLock()?.holder).toEqual(holder());
  expect(s.clusterLock()?.holder.node).toBeUndefined();
  s.releaseClusterLock(b);
}

describe('lease row node id: SQLite', () => {
  it('round-trips; a store from before the column gets it on open', () => {
    const file = join(tmp, 'old.sqlite');
    openSqliteStore(file).close();
    const db = new Database(file);
    db.exec('ALTER TABLE cluster_lock DROP COLUMN node');
    expect((db.prepare('PRAGMA table_info(cluster_lock)').all() as { name: string }[]).some((c) => c.name === 'node')).toBe(false);
    db.close();
    const s = openSqliteStore(file);
    try {
      roundTrip(s);
    } finally {
      s.close();
    }
  });
});

const skip = postgresSkipReason();
if (skip !== null) console.warn(`skipping the PostgreSQL lease-node test: ${skip}`);
describe.skipIf(skip !== null)('lease row node id: PostgreSQL', () => {
  let server: PgServer;
  let database = '';
  beforeAll(async () => {
    const s = await startPostgres();
    if ('skip' in s) throw new Error(s.skip);
    server = s;
    database = s.createDatabase('tide_lease_node');
  }, 120_000);
  afterAll(async () => { await server?.stop(); });

  it('round-trips; a store from before the column gets it on open', () => {
    const opts = { host: server.host, port: server.port, database, user: server.user, password: server.password, ssl: false, schema: 'lease_node', timeoutMs: 5_000 };
    openPgStore(opts).close();
    // As a version-4 store (before the column) was: migration V5 adds it.
    server.psql(database, 'ALTER TABLE lease_node.cluster_lock DROP COLUMN node; UPDATE lease_node.schema_version SET version = 4');
    const s = openPgStore(opts);
    try {
      roundTrip(s);
    } finally {
      s.close();
    }
  });
});
