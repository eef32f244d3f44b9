/**
 * The cluster lock: one actor per cluster. Two Store connections on one SQLite file in a temp
 * directory, and real second processes (node running the store and lock modules, transpiled
 * from src into a temp directory; no build needed) that are refused, or that die holding the
 * lock and are taken over.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DriverError } from '../../src/drivers/errors.js';
import { transpiledCopy } from '../../src/probe/transpile.js';
import { currentHolder, storePathFor, withClusterLock } from '../../src/store/lock.js';
import { openSqliteStore, type LockHolder, type Store } from '../../src/store/store.js';

const ROOT = resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
const stores: Store[] = [];
const children: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of stores.splice(0)) {
    try {
      s.close();
    } catch { /* closed by the test */ }
  }
});

afterAll(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tide-lock-'));
  dirs.push(d);
  return d;
}
function open(path: string): Store {
  const s = openSqliteStore(path);
  stores.push(s);
  return s;
}
const holder = (command: string, over: Partial<LockHolder> = {}): LockHolder => ({ pid: process.pid, host: hostname(), command, startedMs: 1_700_000_000_000, ...over });

function lockedError(f: () => unknown): DriverError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DriverError);
    expect((e as DriverError).code).toBe('TIDE_LOCKED');
    return e as DriverError;
  }
  throw new Error('expected TIDE_LOCKED, nothing was thrown');
}

describe('cluster lock, SQLite', () => {
  // The lock's semantics on two connections (refusal, heartbeat, takeover, release, re-entrant
  // withClusterLock, abort on takeover) are in the Store contract (test/store/contract.ts), run
  // on SQLite and PostgreSQL; here what is SQLite's own or needs real processes.
  it('withClusterLock retries a failing heartbeat, and aborts its work once half the TTL passed without renewal', async () => {
    const a = open(join(tempDir(), 'tide.sqlite'));
    let failures = 0;
    const flaky: Store = { ...a, heartbeatClusterLock: () => { failures++; throw new Error('database is locked'); } };
    const reason = await withClusterLock(flaky, holder('tide daemon'), async (signal) => {
      await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
      return signal.reason as DriverError;
    }, { ttlMs: 400, heartbeatMs: 20 });
    expect(reason).toMatchObject({ code: 'TIDE_LOCKED', message: 'could not renew the cluster lock: database is locked' });
    // Not on the first failure: it kept trying for half the TTL.
    expect(failures).toBeGreaterThan(1);
    expect(a.clusterLock()).toBeUndefined();
  });

  it('upgrades a version-1 store in place and refuses a store newer than it understands', () => {
    const dir = tempDir();
    const path = join(dir, 'old.sqlite');
    const s = open(path);
    s.close();
    // Downgrade to what a version-1 Tide wrote: no note column, no lock table.
    const child = spawnSync(process.execPath, ['-e', `
      const D = require('better-sqlite3'); const db = new D(process.argv[1]);
      db.exec('DROP TABLE cluster_lock; DROP TABLE round_errors; DROP TABLE unknown_migrations; ALTER TABLE step_runs DROP COLUMN note; UPDATE schema_version SET version = 1');
      db.close();`, path], { cwd: ROOT });
    expect(child.status, child.stderr.toString()).toBe(0);
    const up = open(path);
    const id = up.savePlan({ policy: 'p', time: 0, steps: [], hosts: [], notMoved: [] }, { createdMs: 0, mode: 'automatic', status: 'running' });
    up.saveStepRun(id, { step: { id: 1, kind: 'powerOff', host: 'h', deps: [], reason: 'r', by: 'b' }, state: 'succeeded', note: 'kept def' });
    expect(up.acquireClusterLock(holder('t'), 1000).token).toBeTruthy();
    expect(up.recordUnknownMigration({ vm: 'v', from: 'a', to: 'b', planId: id, sinceMs: 1, reason: 'r' })).toBeGreaterThan(0);
    up.close();
    const bump = spawnSync(process.execPath, ['-e', `const D = require('better-sqlite3'); const db = new D(process.argv[1]); db.exec('UPDATE schema_version SET version = 7'); db.close();`, path], { cwd: ROOT });
    expect(bump.status).toBe(0);
    expect(() => openSqliteStore(path)).toThrow(/store schema version 7, this Tide understands up to 6/);
  });

  it("resolves the configuration's store path against the configuration file, not the working directory", () => {
    expect(storePathFor('.tide/tide.sqlite', '/etc/tide/tide.json')).toBe('/etc/tide/.tide/tide.sqlite');
    expect(storePathFor('/var/lib/tide/s.db', '/etc/tide/tide.json')).toBe('/var/lib/tide/s.db');
    expect(storePathFor(':memory:', '/etc/tide/tide.json')).toBe(':memory:');
  });
});

describe('cluster lock across real processes', () => {
  let dir: string;
  /** Transpiles the modules the child needs (store, its row mapping, lock, errors) and the child itself (transpiledCopy). */
  beforeAll(async () => {
    // Inside the repository (node_modules/.cache), so that better-sqlite3 resolves.
    dir = await transpiledCopy(ROOT, ['src/store/store.ts', 'src/store/rows.ts', 'src/store/lock.ts', 'src/drivers/errors.ts'], 'tide-lock-test', {
      parentDir: join(ROOT, 'node_modules/.cache'),
      extraFiles: { 'child.js': `
      import { openSqliteStore } from './src/store/store.js';
      import { currentHolder, withClusterLock } from './src/store/lock.js';
      const [path, mode] = process.argv.slice(2);
      const store = openSqliteStore(path);
      try {
        await withClusterLock(store, currentHolder('tide evacuate srv-1'), async () => {
          process.stdout.write(JSON.stringify({ held: true, pid: process.pid }) + '\\n');
          if (mode === 'hold') await new Promise(() => setInterval(() => {}, 1000));
        });
      } catch (e) {
        process.stdout.write(JSON.stringify({ held: false, code: e.code, message: e.message }) + '\\n');
      }
    ` },
    });
  });

  /** Starts the child; resolves with its first line of output. */
  function child(path: string, mode: 'try' | 'hold'): Promise<{ proc: ChildProcessWithoutNullStreams; out: { held: boolean; pid?: number; code?: string; message?: string } }> {
    const proc = spawn(process.execPath, [join(dir, 'child.js'), path, mode], { cwd: dir });
    children.push(proc);
    return new Promise((res, rej) => {
      let buf = '';
      let err = '';
      proc.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      proc.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const nl = buf.indexOf('\n');
        if (nl >= 0) res({ proc, out: JSON.parse(buf.slice(0, nl)) });
      });
      proc.on('exit', (code) => rej(new Error(`child exited (${code}) before answering: ${err}`)));
    });
  }
  const exited = (p: ChildProcessWithoutNullStreams): Promise<void> => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.on('exit', () => r())));

  it('a second tide process is refused with who holds the lock', async () => {
    const path = join(tempDir(), 'tide.sqlite');
    const me = open(path);
    await withClusterLock(me, currentHolder('tide controller (test)'), async () => {
      const { out } = await child(path, 'try');
      expect(out.held).toBe(false);
      expect(out.code).toBe('TIDE_LOCKED');
      expect(out.message).toMatch(new RegExp(`^cluster locked by tide controller \\(test\\) \\(pid ${process.pid} on ${hostname()}\\) since \\d{4}-\\d\\d-\\d\\dT`));
    });
    // Released: the next process gets it.
    const { proc, out } = await child(path, 'try');
    expect(out.held).toBe(true);
    await exited(proc);
    expect(me.clusterLock()).toBeUndefined();
  });

  it('refuses this process while a child holds the lock; takes over once the child is killed', async () => {
    const path = join(tempDir(), 'tide.sqlite');
    const me = open(path);
    const { proc, out } = await child(path, 'hold');
    expect(out).toMatchObject({ held: true, pid: proc.pid });
    const e = lockedError(() => me.acquireClusterLock(currentHolder('tide controller'), 60_000));
    expect(e.message).toContain(`tide evacuate srv-1 (pid ${proc.pid} on ${hostname()})`);
    proc.kill('SIGKILL');
    await exited(proc);
    const lease = me.acquireClusterLock(currentHolder('tide controller'), 60_000);
    expect(lease.tookOver).toEqual({ holder: expect.objectContaining({ pid: proc.pid, command: 'tide evacuate srv-1' }), why: `process ${proc.pid} no longer runs on ${hostname()}` });
  });
});
