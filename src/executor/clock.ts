import type { Clock } from '../core/clock.js';

/** Wall-clock time. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicMs: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        off();
        resolve();
      }, Math.max(0, ms));
      const off = onAbort(signal, () => {
        clearTimeout(t);
        reject(signal!.reason);
      });
    }),
};

/**
 * Sleepers waiting on each signal. One 'abort' listener per signal fans out to all of them
 * (however many migrations sleep on a plan's signal at once, the signal carries one listener,
 * so Node's MaxListenersExceededWarning at 11 never fires); a sleeper leaves the set when its
 * sleep ends, and the listener is removed with the last one.
 */
const abortWaiters = new WeakMap<AbortSignal, { readonly fns: Set<() => void>; readonly listener: () => void }>();

/**
 * Calls `fn` once when `signal` aborts; returns the function that unregisters it (call it when
 * the wait ends otherwise). No signal: nothing to register.
 */
export function onAbort(signal: AbortSignal | undefined, fn: () => void): () => void {
  if (!signal) return () => {};
  let entry = abortWaiters.get(signal);
  if (!entry) {
    const fns = new Set<() => void>();
    const listener = (): void => {
      abortWaiters.delete(signal);
      for (const f of [...fns]) f();
    };
    entry = { fns, listener };
    abortWaiters.set(signal, entry);
    signal.addEventListener('abort', listener, { once: true });
  }
  const { fns, listener } = entry;
  const once = (): void => {
    fns.delete(once);
    fn();
  };
  fns.add(once);
  return () => {
    if (!fns.delete(once) || fns.size > 0) return;
    signal.removeEventListener('abort', listener);
    if (abortWaiters.get(signal)?.fns === fns) abortWaiters.delete(signal);
  };
}

/**
 * Wall-clock time running `factor` times faster (for a simulated datacenter driven by
 * real-time code, e.g. the driver contract suite): sleep(60_000) takes 60 ms at factor 1000.
 */
export function scaledClock(factor: number, startMs = 0): Clock {
  // performance.now: sub-millisecond resolution, which matters once multiplied by `factor`.
  const realStart = performance.now();
  return {
    now: () => startMs + (performance.now() - realStart) * factor,
    sleep: (ms, signal) => systemClock.sleep(ms / factor, signal),
  };
}

interface Timer {
  at: number;
  seq: number;
  resolve: () => void;
}

/**
 * Virtual time for the simulator, the demo and tests. Nothing happens until someone drives
 * it: `advance(ms)` moves time forward, waking every sleeper due on the way in order (and
 * letting the promise chains they release run before moving on), `runUntil(t)` does the same
 * up to an absolute time. Sleepers never run "early" and never see time go backwards.
 */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers: Timer[] = [];

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer: Timer = { at: this.t + Math.max(0, ms), seq: this.seq++, resolve: () => {} };
      const off = onAbort(signal, () => {
        const i = this.timers.indexOf(timer);
        if (i >= 0) this.timers.splice(i, 1);
        reject(signal!.reason);
      });
      timer.resolve = () => {
        off();
        resolve();
      };
      this.timers.push(timer);
    });
  }

  /** Number of sleepers waiting. */
  get pending(): number {
    return this.timers.length;
  }

  /** Earliest wake-up time, or undefined. */
  nextAt(): number | undefined {
    let best: Timer | undefined;
    for (const x of this.timers) if (!best || x.at < best.at || (x.at === best.at && x.seq < best.seq)) best = x;
    return best?.at;
  }

  async advance(ms: number): Promise<void> {
    await this.runUntil(this.t + ms);
  }

  /**
   * Runs `work` to completion on virtual time: whenever it is waiting only on this clock's
   * sleepers, time jumps to the next wake-up. Fails if `work` waits on nothing this clock can
   * wake (it would never finish).
   */
  async drive<T>(work: Promise<T>): Promise<T> {
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
      await settle();
      if (done) break;
      const next = this.nextAt();
      if (next === undefined) {
        // Give I/O and other macrotasks one more chance before declaring a deadlock.
        await new Promise((r) => setTimeout(r, 0));
        await settle();
        if (done) break;
        if (this.nextAt() === undefined) throw new Error('VirtualClock.drive: the work waits on something the clock cannot wake');
        continue;
      }
      await this.runUntil(next);
    }
    if (failed) throw error;
    return value as T;
  }

  /** Moves time to `target`, waking sleepers in order; returns once everything due has run. */
  async runUntil(target: number): Promise<void> {
    for (;;) {
      await settle();
      const next = this.nextAt();
      if (next === undefined || next > target) break;
      this.t = Math.max(this.t, next);
      const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at || a.seq - b.seq);
      for (const x of due) this.timers.splice(this.timers.indexOf(x), 1);
      for (const x of due) x.resolve();
    }
    this.t = Math.max(this.t, target);
    await settle();
  }
}

/** Lets every queued promise continuation run (a macrotask turn). */
function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
