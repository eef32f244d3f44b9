/**
 * SIGKILL, modelled in-process, for crash tests on the simulator.
 *
 * A "process" is a Controller that reaches the world (SimDriver, the VirtualClock) only through
 * the wrappers made here. `proc.kill()` is the SIGKILL: from then on nothing the process awaited
 * ever settles (no continuation of it runs again: no step outcome is saved, no further step
 * starts) and nothing it calls reaches the world. The world goes on: a migration the process
 * started keeps running in the SimDriver on the world clock and completes as a libvirt
 * peer-to-peer job would; an abort the process signalled after its death never reaches it.
 *
 * Kill points: `killAfter(method, args)` is asked when a driver call the process made returns,
 * before the process sees the result (a migration done, a power-off done, outcome not saved).
 */
import type { Clock } from '../../src/core/clock.js';

export class SimProcess {
  dead = false;
  /** Asked when a driver call made by this process returns (true: die before seeing the result). */
  killAfter: ((method: string, args: readonly unknown[]) => boolean) | null = null;

  kill(): void {
    this.dead = true;
  }

  /** `p`, unless the process died before it settled: then a promise that never settles. */
  gate<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      p.then((v) => { if (!this.dead) resolve(v); }, (e: unknown) => { if (!this.dead) reject(e); });
    });
  }

  private never<T>(): Promise<T> {
    return new Promise<T>(() => { /* a dead process waits forever */ });
  }

  /** The world's clock as this process sees it: its sleeps never end once it is dead. */
  clock(world: Clock): Clock {
    return {
      now: () => world.now(),
      sleep: (ms, signal) => (this.dead ? this.never() : this.gate(world.sleep(ms, signal))),
    };
  }

  /**
   * A driver as this process sees it. An AbortSignal argument is replaced by one that follows
   * it only while the process lives (a dead process aborts nothing); progress callbacks stop.
   */
  driver<T extends object>(inner: T): T {
    return new Proxy(inner, {
      get: (target, prop, receiver) => {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]): unknown => {
          if (this.dead) return this.never();
          const mapped = args.map((a) => {
            if (a instanceof AbortSignal) {
              const ac = new AbortController();
              a.addEventListener('abort', () => { if (!this.dead) ac.abort(a.reason); }, { once: true });
              return ac.signal;
            }
            if (a && typeof a === 'object' && 'onProgress' in a && typeof (a as { onProgress: unknown }).onProgress === 'function') {
              const f = (a as { onProgress: (p: unknown) => void }).onProgress;
              return { ...a, onProgress: (p: unknown) => { if (!this.dead) f(p); } };
            }
            return a;
          });
          const r = (v as (...x: unknown[]) => unknown).apply(target, mapped);
          if (!(r instanceof Promise)) return r;
          return this.gate(r.then((x: unknown) => {
            if (!this.dead && this.killAfter?.(String(prop), args)) this.kill();
            return x;
          }));
        };
      },
    });
  }
}
