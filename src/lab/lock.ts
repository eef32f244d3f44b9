/**
 * A PID lock file: created with O_EXCL, holds the owner's PID (first line); a lock whose owner
 * is no longer live is stale and taken over. Used to serialise `up`/`down` on one lab directory
 * (lab.lock) and, as the lab *lease* (lease.lock, acquireLabLease), to give the lab to one user
 * at a time: a lab test file (test/helpers/lab.ts sharedLab) from its beforeAll to its
 * lab.down(), or one `tide lab up|down|demo` command. The lease file also names its holder,
 * so whoever is refused is told who has the lab.
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
    const n = Number(readFileSync(file, 'utf8').split('\n')[0]!.trim());
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

/** Who holds a lab lease. */
export interface LeaseHolder {
  readonly pid: number;
  /** What the holder said it is ('tide lab up', 'lab test test/e2e/lab-crash.test.ts', …); null: not said (an older lease). */
  readonly holder: string | null;
  /** When it took the lease (ISO time); null: not said. */
  readonly since: string | null;
}

/** "pid 1234 (tide lab up, since 2026-12-02T01:02:03Z)". */
export function describeLeaseHolder(h: LeaseHolder): string {
  const what = [h.holder, h.since ? `since ${h.since}` : null].filter(Boolean).join(', ');
  return `pid ${h.pid}${what ? ` (${what})` : ''}`;
}

/** The live holder of the lease `file` (null: free, or held by a process that is gone). */
export function leaseHolder(file: string): LeaseHolder | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const [pidLine, holder, since] = text.split('\n');
  const pid = Number(pidLine?.trim());
  if (!Number.isInteger(pid) || pid <= 0 || !isLive(pid)) return null;
  return { pid, holder: holder?.trim() || null, since: since?.trim() || null };
}

export interface LeaseOptions {
  /** Who takes it, for the message another user gets (e.g. 'tide lab up', 'lab test FILE'). */
  readonly holder: string;
  /** How long to wait while another process holds it, ms (0, the default: refuse at once). */
  readonly waitMs?: number;
  /** Called once when the lease is busy and we start waiting. */
  readonly onWait?: (h: LeaseHolder) => void;
}

/** Leases this process holds, with how many nested holds (a lab test running `tide lab demo` in-process). */
const heldHere = new Map<string, number>();

/**
 * Takes the lab lease `file` (layout.leaseFile) and returns its release function. Another live
 * process's lease is waited for up to `waitMs`, then refused with a LabError naming the holder
 * (pid, what it is, since when). A lease this process already holds through acquireLabLease is
 * taken again (nested: only the outermost release frees it); a lease file with this process's
 * pid that it does not hold (forgotten) or a dead process's is stale and taken over.
 */
export async function acquireLabLease(file: string, opts: LeaseOptions): Promise<() => void> {
  const depth = heldHere.get(file);
  if (depth !== undefined && owner(file) === process.pid) {
    heldHere.set(file, depth + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const d = heldHere.get(file);
      if (d !== undefined && d > 1) heldHere.set(file, d - 1);
    };
  }
  heldHere.delete(file);
  const end = Date.now() + (opts.waitMs ?? 0);
  let announced = false;
  for (;;) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, `${process.pid}\n${opts.holder.replace(/\s+/g, ' ')}\n${new Date().toISOString()}\n`);
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = owner(file);
    const h = pid === null || pid === process.pid ? null : leaseHolder(file);
    if (h === null) {
      // stale (a dead process's, or this process's forgotten one): O_EXCL arbitrates a race here
      rmSync(file, { force: true });
      continue;
    }
    if (Date.now() >= end) {
      throw new LabError(`the lab is in use: its lease (${file}) is held by ${describeLeaseHolder(h)}${opts.waitMs ? `; gave up after waiting ${Math.round(opts.waitMs / 1000)} s` : ''}. `
        + 'Lab tests and `tide lab up|down|demo` take turns: retry when it is done (`tide lab … --wait SEC` waits for it).');
    }
    if (!announced) {
      opts.onWait?.(h);
      announced = true;
    }
    await sleep(100);
  }
  heldHere.set(file, 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    heldHere.delete(file);
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
