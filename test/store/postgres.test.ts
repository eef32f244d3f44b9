/**
 * The PostgreSQL store: the Store contract (test/store/contract.ts) against a private
 * PostgreSQL server started for this file (test/helpers/postgres.ts: initdb, 127.0.0.1, a free
 * port, password authentication), each test in a schema of its own; then what only a networked
 * store has: calls that time out or find the server gone fail with TIDE_STORE_UNAVAILABLE naming
 * host:port, a dropped connection is replaced, an old schema is migrated in place.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DriverError } from '../../src/drivers/errors.js';
import { MIGRATIONS, PG_SCHEMA_VERSION } from '../../src/store/pg/schema.js';
import { openPgStore, type PgStoreOptions } from '../../src/store/pg/store.js';
import type { Store } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { postgresSkipReason, startPostgres, type PgServer } from '../helpers/postgres.js';
import { storeContract } from './contract.js';

// Outside CI, no PostgreSQL binaries: every test here is skipped, and says why.
const skip = postgresSkipReason();
if (skip !== null) console.warn(`skipping the PostgreSQL store tests: ${skip}`);
let server: PgServer | null = null;
let database = '';
let schemas = 0;
beforeAll(async () => {
  if (skip !== null) return;
  const s = await startPostgres();
  if ('skip' in s) throw new Error(s.skip); // binaries found, yet unusable: a failure
  server = s;
  database = s.createDatabase('tide_test');
});
afterAll(async () => {
  await server?.stop();
});

const options = (schema: string, over: Partial<PgStoreOptions> = {}): PgStoreOptions => ({
  host: server!.host, port: server!.port, database, user: server!.user, password: server!.password, ssl: false, schema, timeoutMs: 5_000, ...over,
});

storeContract('PostgreSQL', () => {
  if (!server) throw new Error(`no PostgreSQL server: ${skip}`);
  return {
    fresh() {
      const schema = `contract_${++schemas}`;
      return {
        open: () => openPgStore(options(schema)),
        setVersion: (v) => void server!.psql(database, `UPDATE "${schema}".schema_version SET version = ${v}`),
      };
    },
  };
}, skip);

function unavailable(f: () => unknown): DriverError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DriverError);
    expect((e as DriverError).code, (e as Error).message).toBe('TIDE_STORE_UNAVAILABLE');
    return e as DriverError;
  }
  throw new Error('expected TIDE_STORE_UNAVAILABLE, nothing was thrown');
}

describe.skipIf(skip !== null)('PostgreSQL store: connection', () => {
  it('a closed port is TIDE_STORE_UNAVAILABLE naming host:port, never the password', async () => {
    const port = await new Promise<number>((res) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    const e = unavailable(() => openPgStore({ ...options('x'), port, password: 'sekrit-pw' }));
    expect(e.message).toContain(`127.0.0.1:${port}`);
    expect(e.message).not.toContain('sekrit-pw');
    expect(e.detail).toMatchObject({ host: '127.0.0.1', port });
  });

  it('a wrong password is TIDE_STORE_UNAVAILABLE and does not print the password', () => {
    if (!server) throw new Error(`no PostgreSQL server: ${skip}`);
    const e = unavailable(() => openPgStore(options('x', { password: 'wrong-pw-123' })));
    expect(e.message).toMatch(/password authentication failed/);
    expect(e.message).not.toContain('wrong-pw-123');
  });

  it('a server that accepts and never answers: the call gives up after its timeout with TIDE_STORE_UNAVAILABLE', async () => {
    const sockets: Socket[] = [];
    const mute: Server = createServer((sock) => void sockets.push(sock));
    const port = await new Promise<number>((res) => mute.listen(0, '127.0.0.1', () => res((mute.address() as { port: number }).port)));
    try {
      const e = unavailable(() => openPgStore({ ...options('x'), port, timeoutMs: 300 }));
      expect(e.message).toContain(`127.0.0.1:${port}`);
    } finally {
      sockets.forEach((s) => s.destroy());
      await new Promise((r) => mute.close(r));
    }
  });

  it('a connection cut by the server is replaced: at most the call in flight fails, the next succeeds', () => {
    if (!server) throw new Error(`no PostgreSQL server: ${skip}`);
    const s: Store = openPgStore(options('reconnect'));
    try {
      s.recordRoundError({ atMs: 1, code: 'A', message: 'before' });
      server.psql(database, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tide' AND pid <> pg_backend_pid()");
      let failures = 0;
      let got: unknown;
      for (let i = 0; i < 2 && got === undefined; i++) {
        try {
          got = s.roundErrors();
        } catch (e) {
          expect((e as DriverError).code).toBe('TIDE_STORE_UNAVAILABLE');
          failures++;
        }
      }
      expect(failures).toBeLessThanOrEqual(1);
      expect(got).toEqual([{ atMs: 1, code: 'A', message: 'before' }]);
      s.recordRoundError({ atMs: 2, code: 'B', message: 'after' });
      expect(s.roundErrors()).toHaveLength(2);
    } finally {
      s.close();
    }
  });
});

describe.skipIf(skip !== null)('PostgreSQL store: a call stuck behind a lock', () => {
  it('gives up after timeoutMs with TIDE_STORE_UNAVAILABLE, the server cancels it (nothing written), and the next call works', async () => {
    if (!server) throw new Error(`no PostgreSQL server: ${skip}`);
    const s = openPgStore(options('stuck', { timeoutMs: 400 }));
    const blocker = new pg.Client({ host: server.host, port: server.port, database, user: server.user, password: server.password });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE stuck.round_errors IN ACCESS EXCLUSIVE MODE');
      const e = unavailable(() => s.recordRoundError({ atMs: 1, code: 'A', message: 'stuck' }));
      expect(e.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${server.port}.*no answer within 400 ms`));
      await blocker.query('ROLLBACK');
      expect(s.roundErrors()).toEqual([]); // the stuck insert died with its connection
      s.recordRoundError({ atMs: 2, code: 'B', message: 'after' });
      expect(s.roundErrors().map((r) => r.code)).toEqual(['B']);
    } finally {
      await blocker.end();
      s.close();
    }
  });
});

describe.skipIf(skip !== null)('PostgreSQL store: the CLI through the configuration', () => {
  it('tide host maintenance and tide status use the store a `kind: postgres` configuration names (password from a file)', async () => {
    if (!server) throw new Error(`no PostgreSQL server: ${skip}`);
    const dir = mkdtempSync(join(tmpdir(), 'tide-pgcli-'));
    try {
      const cfg = join(dir, 'tide.yaml');
      writeFileSync(cfg, `hosts:\n  - { name: a, uri: 'test:///default' }\nstore:\n  kind: postgres\n  host: 127.0.0.1\n  port: ${server.port}\n  database: ${database}\n  user: ${server.user}\n  passwordFile: ${server.passwordFile}\n  schema: cli\n`);
      const on = await runCli(['--config', cfg, 'host', 'maintenance', 'on', 'a', '--reason', 'new DIMMs']);
      expect(on.code, on.err).toBe(0);
      const direct = openPgStore(options('cli'));
      try {
        expect(direct.hostStates()).toEqual([expect.objectContaining({ host: 'a', maintenance: true, reason: 'new DIMMs' })]);
        direct.acquireClusterLock({ pid: 4242, host: 'ctl-9', command: 'tide daemon', startedMs: 0 }, 60_000);
      } finally {
        direct.close();
      }
      const st = await runCli(['--config', cfg, 'status', '--json']);
      expect(st.code, st.err).toBe(0);
      expect(JSON.parse(st.out)).toMatchObject({ lock: { holder: { pid: 4242, host: 'ctl-9' } } });
      expect(st.out + st.err).not.toContain(server.password);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(skip !== null)('PostgreSQL store: schema migrations', () => {
  it('migrates a version-1 store in place, keeping its rows; a second open is a no-op', () => {
    if (!server) throw new Error(`no PostgreSQL server: ${skip}`);
    const schema = 'old_v1';
    server.psql(database, `CREATE SCHEMA ${schema}; SET search_path TO ${schema}; CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);
      ${MIGRATIONS[0]}
      INSERT INTO plans (created_ms, policy, mode, status, steps, plan_json) VALUES (5, 'tide', 'approve', 'done', 0, '{"policy":"tide","time":0,"steps":[],"hosts":[],"notMoved":[]}');
      INSERT INTO step_runs (plan_id, step_id, kind, state) VALUES (1, 1, 'powerOn', 'succeeded');`);
    const s = openPgStore(options(schema));
    try {
      expect(s.getPlan(1)).toMatchObject({ id: 1, status: 'done', fingerprint: null });
      expect(s.stepRuns(1)).toEqual([expect.objectContaining({ stepId: 1, note: null })]);
      // new rows get fresh ids after the old ones; the later tables exist
      expect(s.savePlan({ policy: 'p', time: 0, steps: [], hosts: [], notMoved: [] }, { createdMs: 6, mode: 'approve', status: 'proposed' })).toBe(2);
      expect(s.acquireClusterLock({ pid: 1, host: 'h', command: 'c', startedMs: 0 }, 1000).token).toBeTruthy();
      expect(s.recordUnknownMigration({ vm: 'v', from: 'a', to: 'b', planId: 1, sinceMs: 1, reason: 'r' })).toBe(1);
    } finally {
      s.close();
    }
    expect(server.psql(database, `SELECT version FROM ${schema}.schema_version`).trim()).toBe(String(PG_SCHEMA_VERSION));
    openPgStore(options(schema)).close();
    expect(server.psql(database, `SELECT count(*) FROM ${schema}.schema_version`).trim()).toBe('1');
  });

  it('a second controller opening a store another just created finds it current: one version row', () => {
    if (!server) throw new Error(`no PostgreSQL server: ${skip}`);
    const a = openPgStore(options('race'));
    const b = openPgStore(options('race'));
    a.close();
    b.close();
    expect(server.psql(database, 'SELECT count(*) FROM race.schema_version').trim()).toBe('1');
  });
});
