/**
 * The executor's scheduling work grows linearly with the plan (counted through
 * ExecutorDeps.counters, not timed), and many concurrent migrations sharing one AbortSignal
 * add one abort listener to it, not one each (no MaxListenersExceededWarning).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Plan, Step } from '../../src/core/plan/types.js';
import { DriverError } from '../../src/drivers/errors.js';
import type { HypervisorDriver, VmInfo } from '../../src/drivers/hypervisor.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { runPlan, type ExecutorLimits } from '../../src/executor/executor.js';

const mig = (id: number, vm: string, from: string, to: string, deps: number[] = []): Step => ({ id, kind: 'migrate', vm, from, to, memMiB: 0, deps, reason: 'test', by: 'test' });
const plan = (steps: Step[]): Plan => ({ policy: 'test', time: 0, steps, hosts: [], notMoved: [] });

/** A hypervisor that knows where each VM runs; a migration takes 10 s of the clock (sleeping on the run's signal). */
function fakeHypervisor(clock: VirtualClock, placement: Map<string, string>): HypervisorDriver {
  const domains = (host: string): VmInfo[] => [...placement].filter(([, h]) => h === host)
    .map(([name]) => ({ name, host, state: 'running', vcpus: 1, memMiB: 1024 }) as VmInfo);
  const h: Partial<HypervisorDriver> = {
    hostDomains: async (host: string) => domains(host),
    listVms: async () => [...placement].map(([name, host]) => ({ name, host, state: 'running', vcpus: 1, memMiB: 1024 }) as VmInfo),
    migrate: async (vm: string, to: string, _opts: unknown, signal?: AbortSignal) => {
      await clock.sleep(10_000, signal);
      if (!placement.has(vm)) throw new DriverError('TIDE_NO_SUCH_VM', vm);
      placement.set(vm, to);
      return { downtimeMs: 1, bytes: 0, totalMs: 10_000 } as never;
    },
  };
  return h as HypervisorDriver;
}

async function run(steps: Step[], placement: Map<string, string>, limits: ExecutorLimits, signal?: AbortSignal) {
  const clock = new VirtualClock(0);
  const counters = { examined: 0 };
  const r = await clock.drive(runPlan(plan(steps), { hypervisor: fakeHypervisor(clock, placement), clock, limits, migrate: { mode: 'live' }, counters }, signal));
  return { r, examined: counters.examined };
}

describe('executor scheduling', () => {
  it('examines each step a bounded number of times: N independent moves, one at a time (old scan: about N²/2)', async () => {
    for (const n of [50, 400]) {
      const placement = new Map<string, string>();
      const steps: Step[] = [];
      for (let i = 0; i < n; i++) {
        placement.set(`vm-${i}`, `src-${i}`);
        steps.push(mig(i + 1, `vm-${i}`, `src-${i}`, `dst-${i}`));
      }
      const { r, examined } = await run(steps, placement, { maxConcurrent: 1, maxPerHost: 1 });
      expect(r.succeeded).toBe(n);
      // each step: once when ready, once more when the slot it waited for frees
      expect(examined).toBeLessThanOrEqual(2 * n);
    }
  });

  it('moves waiting for a busy host are examined when that host frees, not on every step end', async () => {
    // 200 moves off one host (per-host limit 1) beside 200 independent moves: the first
    // group runs one at a time; the others must not rescan the waiting ones on every end.
    const n = 200;
    const placement = new Map<string, string>();
    const steps: Step[] = [];
    for (let i = 0; i < n; i++) {
      placement.set(`a-${i}`, 'busy');
      steps.push(mig(steps.length + 1, `a-${i}`, 'busy', `t-${i}`));
      placement.set(`b-${i}`, `s-${i}`);
      steps.push(mig(steps.length + 1, `b-${i}`, `s-${i}`, `u-${i}`));
    }
    const { r, examined } = await run(steps, placement, { maxConcurrent: 8, maxPerHost: 1 });
    expect(r.succeeded).toBe(2 * n);
    // the waiting moves off 'busy' are re-examined each time a move off it ends: n²/2 for that
    // host's own queue is inherent to a single-file host, but the other n moves add only O(n)
    expect(examined).toBeLessThanOrEqual(n * n / 2 + 6 * n);
    expect(examined).toBeGreaterThanOrEqual(2 * n);
  });

  it('a chain of dependent steps is examined once per step', async () => {
    const n = 300;
    const placement = new Map([['vm', 'h-0']]);
    const steps: Step[] = [];
    for (let i = 0; i < n; i++) steps.push(mig(i + 1, 'vm', `h-${i}`, `h-${i + 1}`, i > 0 ? [i] : []));
    const { r, examined } = await run(steps, placement, { maxConcurrent: 4, maxPerHost: 4 });
    expect(r.succeeded).toBe(n);
    expect(examined).toBe(n);
  });

  it('still starts steps in plan order, and skips the dependants of a failed step', async () => {
    const placement = new Map([['a', 'h1'], ['b', 'h2'], ['c', 'h3']]);
    const started: number[] = [];
    const clock = new VirtualClock(0);
    const r = await clock.drive(runPlan(plan([mig(1, 'a', 'h1', 'x1'), mig(2, 'gone', 'h9', 'x2'), mig(3, 'b', 'h2', 'x3', [2]), mig(4, 'c', 'h3', 'x4', [1])]), {
      hypervisor: fakeHypervisor(clock, placement), clock, limits: { maxConcurrent: 1, maxPerHost: 1 }, migrate: { mode: 'live' },
      observer: { onStepStart: (s) => started.push(s.step.id) },
    }));
    expect(started).toEqual([1, 2, 4]);
    expect(r.steps.map((s) => s.state)).toEqual(['succeeded', 'skipped', 'skipped', 'succeeded']);
    expect(r.steps[2]!.error!.message).toMatch(/step 2 \(migrate\) skipped/);
  });
});

describe('abort listeners', () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(w);
  };
  afterEach(() => {
    process.off('warning', onWarning);
  });

  it('more than 10 concurrent migrations on one signal add one abort listener and emit no MaxListenersExceededWarning', async () => {
    process.on('warning', onWarning);
    const n = 32;
    const placement = new Map<string, string>();
    const steps: Step[] = [];
    for (let i = 0; i < n; i++) {
      placement.set(`vm-${i}`, `src-${i}`);
      steps.push(mig(i + 1, `vm-${i}`, `src-${i}`, `dst-${i}`));
    }
    const ac = new AbortController();
    const clock = new VirtualClock(0);
    let inFlight = 0;
    let maxInFlight = 0;
    const work = runPlan(plan(steps), {
      hypervisor: fakeHypervisor(clock, placement), clock, limits: { maxConcurrent: n, maxPerHost: 1 }, migrate: { mode: 'live' },
      observer: {
        onStepStart: () => {
          maxInFlight = Math.max(maxInFlight, ++inFlight);
        },
        onStepEnd: () => {
          inFlight--;
        },
      },
    }, ac.signal);
    const r = await clock.drive(work);
    // the warning is emitted on the next tick
    await new Promise((res) => setImmediate(res));
    expect(r.succeeded).toBe(n);
    expect(maxInFlight).toBe(n);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('aborting wakes every concurrent sleeper once, and the sleeps that ended leave no listener behind', async () => {
    const clock = new VirtualClock(0);
    const ac = new AbortController();
    const fired: string[] = [];
    const add = ac.signal.addEventListener.bind(ac.signal);
    let added = 0;
    ac.signal.addEventListener = ((...a: Parameters<typeof add>) => {
      added++;
      return add(...a);
    }) as typeof ac.signal.addEventListener;
    const sleeps = Array.from({ length: 20 }, (_, i) => clock.sleep(1000 * (i + 1), ac.signal).then(() => fired.push(`woke ${i}`), () => fired.push(`aborted ${i}`)));
    expect(added).toBe(1);
    await clock.advance(5000);
    expect(fired).toEqual(['woke 0', 'woke 1', 'woke 2', 'woke 3', 'woke 4']);
    ac.abort(new Error('stop'));
    await Promise.all(sleeps);
    expect(fired.filter((f) => f.startsWith('aborted'))).toHaveLength(15);
    expect(clock.pending).toBe(0);
    // a sleep on a fresh signal that ends normally removes the one listener again
    const ac2 = new AbortController();
    let removed = 0;
    const rm = ac2.signal.removeEventListener.bind(ac2.signal);
    ac2.signal.removeEventListener = ((...a: Parameters<typeof rm>) => {
      removed++;
      return rm(...a);
    }) as typeof ac2.signal.removeEventListener;
    const p = clock.sleep(10, ac2.signal);
    await clock.advance(10);
    await p;
    expect(removed).toBe(1);
  });
});
