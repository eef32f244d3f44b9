// The CLI on a store it cannot use: a store written by a newer Tide (schema version above what
// this one understands) is a classified error (TIDE_STORE_VERSION, exit 1), not an internal one.
import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
