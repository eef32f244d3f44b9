/**
 * The one place a configuration's store is opened: SQLite (store.path, relative to the
 * configuration file) or PostgreSQL (store.kind: postgres). The PostgreSQL password is read
 * here, from store.passwordFile (relative to the configuration file) or store.passwordEnv, at
 * open time; it is never logged and never part of an error message.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { StoreConfig } from '../config/schema.js';
import { DriverError } from '../drivers/errors.js';
import { storePathFor } from './lock.js';
import { openPgStore, type PgStoreOptions } from './pg/store.js';
import { openSqliteStore, type MetricsRetention, type Store } from './store.js';

/** The PostgreSQL connection a `kind: postgres` store section names, password read. */
export function pgOptionsFor(config: StoreConfig, configFile: string, env: NodeJS.ProcessEnv = process.env): PgStoreOptions {
  if (config.kind !== 'postgres' || !config.host || !config.database || !config.user) {
    throw new DriverError('TIDE_INVALID_ARGUMENT', `${configFile}: store: kind postgres needs host, database and user`);
  }
  let password: string;
  if (config.passwordFile !== undefined) {
    const file = isAbsolute(config.passwordFile) ? config.passwordFile : resolve(dirname(resolve(configFile)), config.passwordFile);
    try {
      password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new DriverError('TIDE_INVALID_ARGUMENT', `${configFile}: store.passwordFile ${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { path: file });
    }
  } else if (config.passwordEnv !== undefined) {
    const v = env[config.passwordEnv];
    if (v === undefined || v === '') throw new DriverError('TIDE_INVALID_ARGUMENT', `${configFile}: store.passwordEnv: the environment variable ${config.passwordEnv} is not set`);
    password = v;
  } else {
    throw new DriverError('TIDE_INVALID_ARGUMENT', `${configFile}: store: give passwordFile or passwordEnv for kind postgres`);
  }
  return {
    host: config.host, port: config.port, database: config.database, user: config.user, password, ssl: config.ssl, schema: config.schema, timeoutMs: config.timeoutMs,
  };
}

/** "SQLite /etc/tide/.tide/tide.sqlite" or "PostgreSQL db1:5432/tide (schema tide)": for status lines and logs (no secret). */
export function describeStore(config: StoreConfig, configFile: string): string {
  return config.kind === 'postgres'
    ? `PostgreSQL ${config.host}:${config.port}/${config.database} (schema ${config.schema})`
    : `SQLite ${storePathFor(config.path, configFile)}`;
}

/** The metrics retention a store section gives (store.metricsRawKeepHours, store.metricsHourKeepDays). */
export function metricsRetentionOf(config: Pick<StoreConfig, 'metricsRawKeepHours' | 'metricsHourKeepDays'>): Required<MetricsRetention> {
  return { rawKeepMs: Math.round(config.metricsRawKeepHours * 3_600_000), hourKeepMs: Math.round(config.metricsHourKeepDays * 86_400_000) };
}

/** Opens the store a configuration names (see the module comment). */
export function openStore(config: StoreConfig, configFile: string): Store {
  const metrics = metricsRetentionOf(config);
  return config.kind === 'postgres' ? openPgStore({ ...pgOptionsFor(config, configFile), metrics }) : openSqliteStore(storePathFor(config.path, configFile), { metrics });
}
