/**
 * The SQLite store against the Store contract (test/store/contract.ts): a file in a temp
 * directory per test, several connections on it as several processes would have.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openSqliteStore } from '../../src/store/store.js';
import { storeContract } from './contract.js';

const dirs: string[] = [];
afterAll(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

storeContract('SQLite', () => ({
  fresh() {
    const dir = mkdtempSync(join(tmpdir(), 'tide-store-'));
    dirs.push(dir);
    const path = join(dir, 'sub', 'tide.sqlite'); // a missing directory is created
    return {
      open: () => openSqliteStore(path),
      setVersion(v) {
        const db = new Database(path);
        db.prepare('UPDATE schema_version SET version = ?').run(v);
        db.close();
      },
    };
  },
}));
