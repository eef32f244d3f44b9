/**
 * One actor per cluster: every command that changes a cluster (the control loop's execute,
 * `tide evacuate`, `tide place`, an approved plan) runs inside withClusterLock on the store the
 * cluster's configuration names (see storePathFor). A second process is refused with
 * TIDE_LOCKED naming the holder; a holder that died is taken over (see Store.acquireClusterLock).
 *
 * While `fn` runs, a heartbeat (wall-clock timer, unref'd: it never keeps the process alive)
 * renews the lock every ttl/3. If the lock is lost (taken over after a stall longer than the
 * TTL, or the store fails), the signal handed to `fn` aborts with TIDE_LOCKED: pass it on to
 * runPlan so nothing new starts once another actor may be acting.
 *
 * Re-entrant within a process: a nested call on the same Store object (e.g. `tide evacuate`
 * calling Controller.execute) runs under the lock already held.
 */
import { hostname } from 'node:os';
import { isAbsolute, join, dirname, resolve } from 'node:path';
import { DriverError } from '../drivers/errors.js';
import type { ClusterLease, LockHolder, Store } from './store.js';

export interface ClusterLockOptions {
  /** How long the lock stays valid without a heartbeat, ms (default 60 000). */
  readonly ttlMs?: number;
  /** Heartbeat period, ms (default ttlMs / 3). */
  readonly heartbeatMs?: number;
  /** Aborts `fn` too (e.g. the operator's Ctrl-C); combined with the lock's own signal. */
  readonly signal?: AbortSignal;
  /** Told when a stale lock was taken over (worth a log line: someone died holding it). */
  readonly onTakeover?: (lease: ClusterLease) => void;
}

export const DEFAULT_LOCK_TTL_MS = 60_000;

/** This process as a lock holder. */
export function currentHolder(command: string): LockHolder {
  return { pid: process.pid, host: hostname(), command, startedMs: Math.round(Date.now() - process.uptime() * 1000) };
}

/**
 * Where a configuration's store lives: `store.path` (default '.tide/tide.sqlite') resolved
 * against the configuration file's directory, not the working directory, so that every tide
 * process using the same configuration shares one store, hence one lock.
 */
export function storePathFor(storePath: string, configFile: string): string {
  if (storePath === ':memory:') return storePath;
  return isAbsolute(storePath) ? storePath : resolve(join(dirname(resolve(configFile)), storePath));
}

interface Held {
  readonly lease: ClusterLease;
  readonly controller: AbortController;
  depth: number;
}

const held = new WeakMap<Store, Held>();

export async function withClusterLock<T>(store: Store, holder: LockHolder, fn: (signal: AbortSignal) => Promise<T>, opts: ClusterLockOptions = {}): Promise<T> {
  const outer = held.get(store);
  if (outer) {
    outer.depth++;
    try {
      return await fn(opts.signal ? AbortSignal.any([outer.controller.signal, opts.signal]) : outer.controller.signal);
    } finally {
      outer.depth--;
    }
  }
  const ttlMs = opts.ttlMs ?? DEFAULT_LOCK_TTL_MS;
  const lease = store.acquireClusterLock(holder, ttlMs);
  if (lease.tookOver) opts.onTakeover?.(lease);
  const controller = new AbortController();
  const me: Held = { lease, controller, depth: 1 };
  held.set(store, me);
  const lose = (e: unknown): void => {
    if (controller.signal.aborted) return;
    controller.abort(e instanceof DriverError && e.code === 'TIDE_LOCKED' ? e
      : new DriverError('TIDE_LOCKED', `could not renew the cluster lock: ${(e as Error)?.message ?? String(e)}`, undefined, { cause: e }));
  };
  // A heartbeat that finds the lock taken over aborts at once. One that fails for another
  // reason (the database busy or failing) is retried, but once half the TTL passed without a
  // renewal the work is aborted: before the TTL runs out, when another process may take over.
  let renewedMs = Date.now();
  const timer = setInterval(() => {
    try {
      store.heartbeatClusterLock(lease);
      renewedMs = Date.now();
    } catch (e) {
      if ((e instanceof DriverError && e.code === 'TIDE_LOCKED') || Date.now() - renewedMs > ttlMs / 2) lose(e);
    }
  }, Math.max(10, opts.heartbeatMs ?? ttlMs / 3));
  timer.unref();
  // A normal exit releases the lock at once (better-sqlite3 is synchronous, so this works in an
  // 'exit' handler); a kill leaves it to be taken over as stale.
  const onExit = (): void => {
    try {
      store.releaseClusterLock(lease);
    } catch { /* the store may be closed already */ }
  };
  process.once('exit', onExit);
  try {
    return await fn(opts.signal ? AbortSignal.any([controller.signal, opts.signal]) : controller.signal);
  } finally {
    clearInterval(timer);
    process.removeListener('exit', onExit);
    held.delete(store);
    try {
      store.releaseClusterLock(lease);
    } catch { /* closed store: the lock goes stale and is taken over */ }
  }
}
