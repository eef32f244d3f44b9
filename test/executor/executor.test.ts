import { describe, expect, it } from 'vitest';
import type { Plan, Step } from '../../src/core/plan/types.js';
import { DriverError } from '../../src/drivers/errors.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { runPlan, type StepRun } from '../../src/executor/executor.js';
import { officeScenario } from '../../src/sim/office.js';

const T = 0;
function setup(placement?: Record<string, string>) {
  const scenario = officeScenario({ hosts: 4, days: 1 });
  const clock = new VirtualClock(T);
  const driver = new SimDriver(scenario, clock, { placement });
  return { scenario, clock, driver };
}
const mig = (id: number, vm: string, from: string, to: string, deps: number[] = []): Step => ({ id, kind: 'migrate', vm, from, to, memMiB: 0, deps, reason: 'test', by: 'test' });
const plan = (steps: Step[]): Plan => ({ policy: 'test', time: 0, steps, hosts: [], notMoved: [] });
const limits = { maxConcurrent: 2, maxPerHost: 1 };

describe('executor', () => {
  it('runs steps in dependency order under the per-host limit, recording times', async () => {
    const { clock, driver } = setup({ mail: 'srv-1', ftp: 'srv-1', dns: 'srv-2', vpn: 'srv-1', 'web-1': 'srv-1', 'web-2': 'srv-2', 'web-3': 'srv-2', db: 'srv-2', files: 'srv-1', backup: 'srv-1', intranet: 'srv-2', erp: 'srv-2', build: 'srv-3', monitoring: 'srv-3' });
    const concurrentOnHost = new Map<string, number>();
    let maxSeen = 0;
    const run = await clock.drive(runPlan(plan([mig(1, 'mail', 'srv-1', 'srv-4'), mig(2, 'ftp', 'srv-1', 'srv-4'), mig(3, 'dns', 'srv-2', 'srv-3')]), {
      hypervisor: driver, power: driver, clock, limits, migrate: { mode: 'live' },
      observer: {
        onStepStart: (r) => {
          if (r.step.kind !== 'migrate') return;
          for (const h of [r.step.from, r.step.to]) {
            concurrentOnHost.set(h, (concurrentOnHost.get(h) ?? 0) + 1);
            maxSeen = Math.max(maxSeen, concurrentOnHost.get(h)!);
          }
        },
        onStepEnd: (r) => {
          if (r.step.kind !== 'migrate') return;
          for (const h of [r.step.from, r.step.to]) concurrentOnHost.set(h, concurrentOnHost.get(h)! - 1);
        },
      },
    }));
    expect(run.succeeded).toBe(3);
    expect(maxSeen).toBe(1);
    const byVm = Object.fromEntries(run.steps.map((r) => [(r.step as { vm: string }).vm, r]));
    // mail and ftp share srv-1: the second waits for the first; dns runs alongside.
    expect(byVm.ftp!.startedAt).toBeGreaterThanOrEqual(byVm.mail!.endedAt!);
    expect(byVm.dns!.startedAt).toBe(byVm.mail!.startedAt);
    expect(driver.placement()).toMatchObject({ mail: 'srv-4', ftp: 'srv-4', dns: 'srv-3' });
  });

  it('skips dependants of a failed step and never powers off a host that still has VMs', async () => {
    const { clock, driver } = setup();
    const where = driver.placement();
    const host = where.mail!;
    const others = Object.entries(where).filter(([vm, h]) => h === host && vm !== 'mail').map(([vm]) => vm);
    const steps: Step[] = [
      mig(1, 'mail', host, 'no-such-host'),
      ...others.map((vm, i) => mig(2 + i, vm, host, 'srv-4')),
      { id: 100, kind: 'powerOff', host, deps: [1, ...others.map((_, i) => 2 + i)], reason: 'empty', by: 'test' },
    ];
    const run = await clock.drive(runPlan(plan(steps), { hypervisor: driver, power: driver, clock, limits: { maxConcurrent: 4, maxPerHost: 4 }, migrate: { mode: 'live' } }));
    const off = run.steps.find((r) => r.step.id === 100)!;
    expect(run.steps.find((r) => r.step.id === 1)).toMatchObject({ state: 'failed', error: { code: 'TIDE_NO_SUCH_HOST' } });
    expect(off.state).toBe('skipped');
    expect(off.error!.message).toMatch(/step 1 \(migrate\) failed/);
    expect(await driver.status(host)).toBe('on');
    expect(driver.placement().mail).toBe(host);
  });

  it('wakes a host and waits until its hypervisor answers before moving onto it', async () => {
    const { clock, driver, scenario } = setup();
    await driver.powerOff('srv-4');
    const vm = Object.keys(driver.placement())[0]!;
    const from = driver.placement()[vm]!;
    const started: StepRun[] = [];
    const run = await clock.drive(runPlan(plan([
      { id: 1, kind: 'powerOn', host: 'srv-4', deps: [], reason: 'wake', by: 'test' },
      mig(2, vm, from, 'srv-4', [1]),
    ]), { hypervisor: driver, power: driver, clock, limits, migrate: { mode: 'live' }, observer: { onStepStart: (r) => started.push(r) } }));
    expect(run.succeeded).toBe(2);
    const [on, move] = run.steps;
    expect(move!.startedAt! - on!.startedAt!).toBeGreaterThanOrEqual(scenario.hosts[3]!.power.bootSec * 1000);
    expect(driver.placement()[vm]).toBe('srv-4');
  });

  it('cancels what has not started and aborts what runs when the signal fires', async () => {
    const { clock, driver } = setup();
    const where = Object.entries(driver.placement()).filter(([, h]) => h === 'srv-1').map(([vm]) => vm);
    const ac = new AbortController();
    void clock.sleep(1000).then(() => ac.abort(new DriverError('TIDE_ABORTED', 'operator abort')));
    const run = await clock.drive(runPlan(plan(where.map((vm, i) => mig(i + 1, vm, 'srv-1', 'srv-4'))), {
      hypervisor: driver, power: driver, clock, limits, migrate: { mode: 'live' },
    }, ac.signal));
    expect(run.succeeded).toBe(0);
    expect(run.cancelled).toBe(where.length);
    for (const vm of where) expect(driver.placement()[vm]).toBe('srv-1');
  });
});
