/**
 * Pacing: a VirtualClock driven against wall time, so a simulated run can be watched. At
 * `speed` S, virtual time T (ms) is due at wall time wallStart + (T − virtualStart) / S: a
 * sleeper on the virtual clock wakes no earlier than that, and work that does not sleep runs at
 * once (as fast as it can). speed Infinity is the unpaced `VirtualClock.drive`.
 *
 * The wall clock is injected (WallClock), so the pacing math is tested without waiting.
 */
import type { VirtualClock } from '../executor/clock.js';

export interface WallClock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realWall: WallClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms))),
};

/** Virtual seconds per wall second that show a week in about a minute (7 × 86 400 / 60). */
export const WEEK_PER_MINUTE = (7 * 86_400) / 60;

/** Wall time (ms, on the WallClock) at which virtual time `virtualMs` is due. */
export function wallDueMs(virtualMs: number, origin: { readonly wallMs: number; readonly virtualMs: number }, speed: number): number {
  if (!(speed > 0)) throw new RangeError(`speed must be > 0 (got ${speed})`);
  return origin.wallMs + (virtualMs - origin.virtualMs) / speed;
}

/**
 * Runs `work` to completion on `clock`, waking its sleepers in order, each no earlier than its
 * wall due time (wallDueMs). Fails, as VirtualClock.drive does, if `work` waits on nothing the
 * clock can wake.
 */
export async function drivePaced<T>(clock: VirtualClock, work: Promise<T>, speed: number, wall: WallClock = realWall): Promise<T> {
  if (speed === Infinity) return clock.drive(work);
  const origin = { wallMs: wall.now(), virtualMs: clock.now() };
  let done = false;
  let failed = false;
  let error: unknown;
  let value: T | undefined;
  work.then((v) => {
    done = true;
    value = v;
  }, (e) => {
    done = failed = true;
    error = e;
  });
  for (;;) {
    await macrotask();
    if (done) break;
    const next = clock.nextAt();
    if (next === undefined) {
      await macrotask();
      if (done) break;
      if (clock.nextAt() === undefined) throw new Error('drivePaced: the work waits on something the clock cannot wake');
      continue;
    }
    const wait = wallDueMs(next, origin, speed) - wall.now();
    if (wait > 0) {
      await wall.sleep(wait);
      // A sleeper added during the wait (a migration an API call started) and due before
      // `next` is paced too, not run at once up to `next`: go round again.
      if ((clock.nextAt() ?? next) < next) continue;
    }
    await clock.runUntil(next);
  }
  if (failed) throw error;
  return value as T;
}

function macrotask(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
