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
  /**
   * Standby (several controllers of one cluster): while another live holder has the lock, wait
   * instead of failing with TIDE_LOCKED — retry every `retryMs` (default ttlMs / 4) until the
   * lock is acquired or `signal` aborts (then TIDE_ABORTED). `onWait` is told the refusal each
   * time the holder changes (and at the first one).
   */
  readonly standby?: {
    readonly retryMs?: number;
    readonly onWait?: (refusal: DriverError) => void;
    /** Ends the wait (default: `signal`); unlike `signal`, not handed on to `fn`. */
    readonly signal?: AbortSignal;
  };
  /** Told once the lock is held (after the takeover notice), before `fn` runs. */
  readonly onAcquired?: (lease: ClusterLease) => void;
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
  /** Wall-clock ms of the last successful renewal (the acquisition, then each heartbeat). */
  renewedMs: number;
  /** Set when a heartbeat failed: no new side effect until one succeeds again. */
  suspectSince: number | null;
}

const held = new WeakMap<Store, Held>();

/** The lease this process holds on `store` through withClusterLock (undefined: none). */
export function heldLease(store: Store): ClusterLease | undefined {
  return held.get(store)?.lease;
}

/**
 * The fence check before a side effect (ExecutorDeps.fence): throws DriverError('TIDE_FENCED')
 * unless this process holds the cluster lock on `store` and may still act — the lock was not
 * lost, the last heartbeat did not fail, the last renewal is younger than the TTL by this
 * process's clock (a process paused past its TTL, e.g. SIGSTOP, learns it here before any timer
 * runs), and the store itself still has the lease current (Store.fence, by the store's clock).
 */
export function checkFence(store: Store, what = 'a side effect'): void {
  const h = held.get(store);
  if (!h) throw new DriverError('TIDE_FENCED', `fenced: ${what} refused: this process does not hold the cluster lock`);
  if (h.controller.signal.aborted) throw new DriverError('TIDE_FENCED', `fenced: ${what} refused: the cluster lock was lost`, undefined, { cause: h.controller.signal.reason });
  if (h.suspectSince !== null) throw new DriverError('TIDE_FENCED', `fenced: ${what} refused: the last heartbeat of the cluster lock failed`);
  const ageMs = Date.now() - h.renewedMs;
  if (ageMs > h.lease.ttlMs) throw new DriverError('TIDE_FENCED', `fenced: ${what} refused: the cluster lock was last renewed ${ageMs} ms ago (TTL ${h.lease.ttlMs} ms)`);
  store.fence(h.lease);
}

/** Acquires, or (standby) waits until it can. */
async function acquireOrWait(store: Store, holder: LockHolder, ttlMs: number, opts: ClusterLockOptions): Promise<ClusterLease> {
  const standby = opts.standby;
  let lastHolder: string | null = null;
  for (;;) {
    try {
      return store.acquireClusterLock(holder, ttlMs);
    } catch (e) {
      // A standby also waits out a store it cannot reach (TIDE_STORE_UNAVAILABLE): it is partitioned, not the leader.
      if (!standby || !(e instanceof DriverError && (e.code === 'TIDE_LOCKED' || (e.code as string) === 'TIDE_STORE_UNAVAILABLE'))) throw e;
      const who = e.code === 'TIDE_LOCKED' ? JSON.stringify((e.detail as { holder?: unknown } | undefined)?.holder ?? e.message) : e.code;
      if (who !== lastHolder) {
        lastHolder = who;
        standby.onWait?.(e);
      }
    }
    const retryMs = Math.max(10, standby.retryMs ?? ttlMs / 4);
    await new Promise<void>((resolve, reject) => {
      const signal = standby.signal ?? opts.signal;
      if (signal?.aborted) {
        reject(new DriverError('TIDE_ABORTED', 'stopped while waiting as a standby for the cluster lock'));
        return;
      }
      const onAbort = (): void => {
        clearTimeout(t);
        reject(new DriverError('TIDE_ABORTED', 'stopped while waiting as a standby for the cluster lock'));
      };
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, retryMs);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

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
  const lease = await acquireOrWait(store, holder, ttlMs, opts);
  const controller = new AbortController();
  const me: Held = { lease, controller, depth: 1, renewedMs: Date.now(), suspectSince: null };
  held.set(store, me);
  // Every write through this Store object is fenced by the lease from now on (Store.setFence).
  store.setFence(lease);
  if (lease.tookOver) opts.onTakeover?.(lease);
  opts.onAcquired?.(lease);
  const lose = (e: unknown): void => {
    if (controller.signal.aborted) return;
    controller.abort(e instanceof DriverError && e.code === 'TIDE_LOCKED' ? e
      : new DriverError('TIDE_LOCKED', `could not renew the cluster lock: ${(e as Error)?.message ?? String(e)}`, undefined, { cause: e }));
  };
  // A heartbeat that finds the lock taken over aborts at once. One that fails for another
  // reason (the database busy or failing) is retried, but once half the TTL passed without a
  // renewal the work is aborted: before the TTL runs out, when another process may take over.
  // A failed heartbeat also marks the lease suspect at once: checkFence refuses new side effects
  // until a heartbeat succeeds again.
  const timer = setInterval(() => {
    try {
      store.heartbeatClusterLock(lease);
      me.renewedMs = Date.now();
      me.suspectSince = null;
    } catch (e) {
      me.suspectSince ??= Date.now();
      if ((e instanceof DriverError && e.code === 'TIDE_LOCKED') || Date.now() - me.renewedMs > ttlMs / 2) lose(e);
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
      store.setFence(undefined);
    } catch { /* a closed store */ }
    try {
      store.releaseClusterLock(lease);
    } catch { /* closed store: the lock goes stale and is taken over */ }
  }
}
