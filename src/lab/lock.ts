/**
 * A PID lock file: created with O_EXCL, holds the owner's PID; a lock whose owner is no longer
 * live is stale and taken over. Used to serialise `up`/`down` on one lab directory and, in
 * tests, to hand the lab from one test file to the next.
 */
import { openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { LabError, sleep } from './exec.js';
import { isLive } from './proc.js';

export interface LockOptions {
  /** Give up after this many ms (default 10 min). */
  timeoutMs?: number;
  /** Label for the error message. */
  what?: string;
  /** Called once when the lock is busy and we start waiting. */
  onWait?: (ownerPid: number) => void;
}

function owner(file: string): number | null {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * Acquires `file` and returns the release function. A lock already held by this very process
 * is taken over (a previous user in the same process forgot to release it).
 */
export async function acquireLock(file: string, opts: LockOptions = {}): Promise<() => void> {
  const end = Date.now() + (opts.timeoutMs ?? 600_000);
  let announced = false;
  for (;;) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = owner(file);
    if (pid === null || pid === process.pid || !isLive(pid)) {
      // stale (or ours): remove and retry; O_EXCL arbitrates if several processes race here
      rmSync(file, { force: true });
      continue;
    }
    if (!announced) { opts.onWait?.(pid); announced = true; }
    if (Date.now() > end) throw new LabError(`${opts.what ?? file} is held by pid ${pid}; gave up waiting`);
    await sleep(100);
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (owner(file) === process.pid) rmSync(file, { force: true });
  };
}

export async function withLock<T>(file: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const release = await acquireLock(file, opts);
  try {
    return await fn();
  } finally {
    release();
  }
}
