// Within one plan: after a migration ends with TIDE_MIGRATION_UNKNOWN (either host may run the
// VM), no later step touching that VM or either host starts — above all no power-off of the
// target, which the power guard alone would allow (the VM is listed on its source). Each such
// step is skipped with the reason; steps elsewhere go on.
import { describe, expect, it } from 'vitest';
import type { Plan, Step } from '../../src/core/plan/types.js';
import { FakeDriver } from '../../src/drivers/fake/index.js';
import type { PowerDriver } from '../../src/drivers/power.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { runPlan, type PlanRun, type StepRun } from '../../src/executor/executor.js';

const mig = (id: number, vm: string, from: string, to: string, deps: number[] = []): Step => ({ id, kind: 'migrate', vm, from, to, memMiB: 0, deps, reason: 'test', by: 'test' });
const off = (id: number, host: string, deps: number[] = []): Step => ({ id, kind: 'powerOff', host, deps, reason: 'test', by: 'test' });
const byId = (r: PlanRun, id: number): StepRun => r.steps.find((s) => s.step.id === id)!;

function run(steps: Step[]): Promise<{ r: PlanRun; powerOffs: string[] }> {
  const driver = new FakeDriver({
    hosts: [{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd' }],
    vms: [{ name: 'vm1', host: 'a' }, { name: 'vm2', host: 'c' }, { name: 'vm3', host: 'c' }],
  });
  driver.inject({ method: 'migrate', vm: 'vm1', code: 'TIDE_MIGRATION_UNKNOWN', message: 'b does not answer' });
  const powerOffs: string[] = [];
  const power: PowerDriver = { kind: 't', status: async () => 'on', powerOn: async () => undefined, powerOff: async (h) => { powerOffs.push(h); } };
  const clock = new VirtualClock(0);
  const plan: Plan = { policy: 'test', time: 0, steps, hosts: [], notMoved: [] };
  // one migration at a time, so the later steps start after the unknown one ended
  return clock.drive(runPlan(plan, { hypervisor: driver, power, clock, limits: { maxConcurrent: 1, maxPerHost: 1 }, migrate: { mode: 'live' } }))
    .then((r) => ({ r, powerOffs }));
}

describe('a migration with an unknown outcome within a plan', () => {
  it('skips later steps on either host (a move there, the target power-off), runs the others', async () => {
    const { r, powerOffs } = await run([
      mig(1, 'vm1', 'a', 'b'),
      mig(2, 'vm2', 'c', 'b'),
      mig(3, 'vm3', 'c', 'd'),
      off(4, 'b', [3]),
    ]);
    expect(byId(r, 1)).toMatchObject({ state: 'failed', error: { code: 'TIDE_MIGRATION_UNKNOWN' } });
    expect(byId(r, 2)).toMatchObject({ state: 'skipped', error: { code: 'TIDE_STALE_PLAN' } });
    expect(byId(r, 2).error!.message).toMatch(/migration of vm1 \(step 1\) has an unknown outcome: it may run on a or b/);
    expect(byId(r, 3).state).toBe('succeeded');
    expect(byId(r, 4)).toMatchObject({ state: 'skipped', error: { code: 'TIDE_STALE_PLAN' } });
    expect(powerOffs).toEqual([]);
  });

  it('control: with a plain failure instead, the same power-off of b runs (so the test above can fail)', async () => {
    const driver = new FakeDriver({ hosts: [{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd' }], vms: [{ name: 'vm1', host: 'a' }, { name: 'vm3', host: 'c' }] });
    driver.inject({ method: 'migrate', vm: 'vm1', code: 'TIDE_MIGRATION_FAILED' });
    const powerOffs: string[] = [];
    const power: PowerDriver = { kind: 't', status: async () => 'on', powerOn: async () => undefined, powerOff: async (h) => { powerOffs.push(h); } };
    const clock = new VirtualClock(0);
    const r = await clock.drive(runPlan({ policy: 'test', time: 0, steps: [mig(1, 'vm1', 'a', 'b'), mig(3, 'vm3', 'c', 'd'), off(4, 'b', [3])], hosts: [], notMoved: [] },
      { hypervisor: driver, power, clock, limits: { maxConcurrent: 1, maxPerHost: 1 }, migrate: { mode: 'live' } }));
    expect(byId(r, 4).state).toBe('succeeded');
    expect(powerOffs).toEqual(['b']);
  });
});
