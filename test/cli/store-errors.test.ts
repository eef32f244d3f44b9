// The CLI on a store it cannot use: a store written by a newer Tide (schema version above what
// this one understands) is a classified error (TIDE_STORE_VERSION, exit 1), not an internal one.
// `tide status` with an invalid configuration still reports from the store it can find.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-cli-store-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** A configuration file in a fresh directory, and its default store path (.tide/tide.sqlite next to it). */
function config(text?: string): { file: string; store: string } {
  const dir = join(tmp, `c${n++}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'tide.json');
  writeFileSync(file, text ?? JSON.stringify({ hosts: [{ name: 'a', uri: 'test:///a' }], mode: 'approve', intervalSec: 60 }));
  return { file, store: join(dir, '.tide', 'tide.sqlite') };
}

/** Creates the store, then stamps it with a schema version from the future. */
function futureStore(path: string, version = 99): void {
  openSqliteStore(path).close();
  const db = new Database(path);
  db.prepare('UPDATE schema_version SET version = ?').run(version);
  db.close();
}

describe('store schema version newer than this Tide', () => {
  it.each([['status'], ['plans']])('tide %s: exit 1, TIDE_STORE_VERSION, no internal error', async (cmd) => {
    const { file, store } = config();
    futureStore(store);
    const r = await runCli(['--config', file, cmd]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`store schema version 99, this Tide understands up to`);
    expect(r.err).toContain('[TIDE_STORE_VERSION]');
    expect(r.err).not.toMatch(/internal error|bug/);
    expect(r.out).toBe('');
  });
});

describe('tide status with an invalid configuration', () => {
  const broken = JSON.stringify({ hosts: [{ name: 'a', uri: 'test:///a' }], mode: 'sometimes' });

  it('reports from the default store next to it, warning with the configuration error: exit 0', async () => {
    const { file, store } = config(broken);
    openSqliteStore(store).close(); // the store exists (a daemon ran here before the file broke)
    const r = await runCli(['--config', file, 'status']);
    expect(r.code).toBe(0);
    expect(r.err).toContain(`tide status: warning: the configuration ${file} is invalid [TIDE_CONFIG]; reporting from ${store}`);
    expect(r.err).toMatch(/mode/);
    expect(r.out).toContain('daemon:   never ran on this store');
    const j = await runCli(['--config', file, 'status', '--json']);
    expect(j.code).toBe(0);
    const report = JSON.parse(j.out) as { configError: { code: string; message: string }; daemon: unknown };
    expect(report.configError.code).toBe('TIDE_CONFIG');
    expect(report.configError.message).toMatch(/mode/);
    expect(report.daemon).toBeNull();
  });

  it('with no store to fall back to: the configuration error, exit 2, and no store is created', async () => {
    const { file, store } = config(broken);
    const r = await runCli(['--config', file, 'status']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('[TIDE_CONFIG]');
    expect(r.err).not.toContain('warning');
    expect(r.out).toBe('');
    expect(existsSync(store)).toBe(false);
  });

  it('--store FILE: reads that store (exit 0 with the warning); a missing one is refused (exit 2), not created', async () => {
    const { file } = config(broken);
    const other = join(tmp, `other-${n++}.sqlite`);
    openSqliteStore(other).close();
    const r = await runCli(['--config', file, 'status', '--store', other]);
    expect(r.code).toBe(0);
    expect(r.err).toContain(`reporting from ${other}`);
    expect(r.out).toContain('daemon:   never ran on this store');
    const missing = join(tmp, 'nope', 'x.sqlite');
    const m = await runCli(['--config', file, 'status', '--store', missing]);
    expect(m.code).toBe(2);
    expect(m.err).toContain('does not exist');
    expect(existsSync(missing)).toBe(false);
  });

  it('a valid configuration: no warning, its own store (unchanged behaviour)', async () => {
    const { file, store } = config();
    const r = await runCli(['--config', file, 'status']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toContain('mode:     approve, every 60 s');
    expect(existsSync(store)).toBe(true);
  });
});
