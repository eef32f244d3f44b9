/**
 * The store section of the configuration and the one factory that opens it (src/store/open.ts):
 * `store.path` alone is still SQLite; `kind: postgres` needs host, database, user and exactly one
 * of passwordFile / passwordEnv; a password written inline is refused naming the field; the
 * password is read from the file (relative to the configuration) or the variable, never echoed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { DriverError } from '../../src/drivers/errors.js';
import { describeStore, openStore, pgOptionsFor } from '../../src/store/open.js';

const dir = mkdtempSync(join(tmpdir(), 'tide-open-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hosts = [{ name: 'h1', uri: 'qemu:///system' }];
const parse = (store: unknown) => parseConfig({ hosts, store }, 'tide.yaml');
const pg = { kind: 'postgres', host: 'db1', database: 'tide', user: 'tide' };

function configError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('store configuration', () => {
  it('store.path alone (or nothing) is SQLite, as before', () => {
    expect(parseConfig({ hosts }).store).toMatchObject({ kind: 'sqlite', path: '.tide/tide.sqlite' });
    expect(parse({ path: 'state/t.db' }).store).toMatchObject({ kind: 'sqlite', path: 'state/t.db' });
    expect(describeStore(parse({ path: 'state/t.db' }).store, '/etc/tide/tide.yaml')).toBe('SQLite /etc/tide/state/t.db');
  });

  it('postgres: defaults, and what it requires', () => {
    expect(parse({ ...pg, passwordEnv: 'TIDE_PG_PW' }).store).toMatchObject({ kind: 'postgres', port: 5432, ssl: false, schema: 'tide', timeoutMs: 10_000 });
    expect(configError(() => parse({ kind: 'postgres', host: 'db1', passwordEnv: 'X' }))).toMatch(/store\.database: required for kind: postgres/);
    expect(configError(() => parse(pg))).toMatch(/store\.passwordFile: give exactly one of passwordFile or passwordEnv/);
    expect(configError(() => parse({ ...pg, passwordFile: 'a', passwordEnv: 'B' }))).toMatch(/exactly one of passwordFile or passwordEnv/);
    expect(configError(() => parse({ path: 'x.db', host: 'db1' }))).toMatch(/store\.host: only for kind: postgres/);
    expect(configError(() => parse({ ...pg, passwordEnv: 'X', schema: 'Drop Table' }))).toMatch(/store\.schema/);
  });

  it('refuses a password written in the configuration, naming the field and not echoing it', () => {
    const msg = configError(() => parse({ ...pg, password: 'hunter2-secret' }));
    expect(msg).toMatch(/store\.password: a password is never written in the configuration: give passwordFile .* or passwordEnv/);
    expect(msg).not.toContain('hunter2-secret');
  });

  it('reads the password from a file relative to the configuration, or from the environment', () => {
    writeFileSync(join(dir, 'pg.pw'), 's3cret\n', { mode: 0o600 });
    const cfgFile = join(dir, 'tide.yaml');
    expect(pgOptionsFor(parse({ ...pg, passwordFile: 'pg.pw' }).store, cfgFile)).toEqual({
      host: 'db1', port: 5432, database: 'tide', user: 'tide', password: 's3cret', ssl: false, schema: 'tide', timeoutMs: 10_000,
    });
    expect(pgOptionsFor(parse({ ...pg, passwordEnv: 'TIDE_PG_PW' }).store, cfgFile, { TIDE_PG_PW: 'from-env' }).password).toBe('from-env');
    const missing = (): unknown => pgOptionsFor(parse({ ...pg, passwordFile: 'nope.pw' }).store, cfgFile);
    expect(missing).toThrow(DriverError);
    expect(missing).toThrow(`store.passwordFile ${join(dir, 'nope.pw')}: cannot read: ENOENT`);
    expect(() => pgOptionsFor(parse({ ...pg, passwordEnv: 'TIDE_PG_PW' }).store, cfgFile, {})).toThrow(/store\.passwordEnv: the environment variable TIDE_PG_PW is not set/);
    expect(describeStore(parse({ ...pg, passwordFile: 'pg.pw' }).store, cfgFile)).toBe('PostgreSQL db1:5432/tide (schema tide)');
  });

  it('openStore opens the SQLite store a configuration names', () => {
    const s = openStore(parse({ path: 'sub/t.sqlite' }).store, join(dir, 'tide.yaml'));
    expect(s.savePlan({ policy: 'p', time: 0, steps: [], hosts: [], notMoved: [] }, { createdMs: 1, mode: 'approve', status: 'proposed' })).toBe(1);
    s.close();
  });
});
