/**
 * A controller's node id: which of several controllers of one cluster a lease row, a log line,
 * a metric or `tide status` talks about.
 *
 * `daemon.nodeId` in the configuration, else `<hostname>-<6 hex digits of sha-256 of the
 * configuration file's absolute path>`. Why derived from the configuration file rather than
 * from the process or a random id kept in a file:
 * - stable across restarts of the same controller (same machine, same file), with no state to
 *   write or lose (a PostgreSQL controller has no local store to keep it beside);
 * - distinct for two controllers on one machine, each started with its own file (one systemd
 *   unit per controller: tide-daemon@a.yaml, tide-daemon@b.yaml);
 * - computable by `tide status --config FILE` in another process: the id "this node" is matched
 *   by is the one the daemon of that file has. A per-process or random id could not be.
 * Where the derivation is not enough — two controllers sharing one file on one machine, or
 * containers with the same hostname and the same configuration path — set daemon.nodeId
 * (docs/configuration.md).
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { TideConfig } from '../config/schema.js';

/** The node id (see above); `configFile` null: a controller without a file (demo, tests) gets `<hostname>-pid<pid>`. */
export function nodeIdOf(config: Pick<TideConfig, 'daemon'>, configFile: string | null, host = hostname()): string {
  const given = config.daemon?.nodeId;
  if (given !== undefined) return given;
  if (configFile === null) return `${host}-pid${process.pid}`;
  const suffix = createHash('sha256').update(resolve(configFile)).digest('hex').slice(0, 6);
  return `${host}-${suffix}`;
}

/**
 * The cluster a controller belongs to, as a metric label: controllers of one cluster share its
 * store, so the store names it — `postgres://HOST:PORT/DATABASE/SCHEMA`, or the SQLite file's
 * absolute path (resolved against the configuration file's directory).
 */
export function clusterLabelOf(config: Pick<TideConfig, 'store'>, configFile: string | null): string {
  const s = config.store;
  if (s.kind === 'postgres') return `postgres://${s.host ?? ''}:${s.port}/${s.database ?? ''}/${s.schema}`;
  if (s.path === ':memory:' || configFile === null) return s.path;
  return resolve(configFile, '..', s.path);
}
