/**
 * The executor's safety checks: the power-off guard fails closed (an unreachable host is never
 * empty, the power driver must report 'on'), steps whose premise changed are skipped with
 * TIDE_STALE_PLAN, place steps start a shut-off VM on their target, and a step whose start
 * cannot be recorded never acts. Every "no power-off" claim counts the power driver's calls.
 */
import { describe, expect, it } from 'vitest';
import type { Plan, Step } from '../../src/core/plan/types.js';
import { FakeDriver, type FakeVmSpec } from '../../src/drivers/fake/index.js';
import type { HostPower, PowerDriver } from '../../src/drivers/power.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { runPlan, type ExecutorObserver, type PlanRun, type StepRun } from '../../src/executor/executor.js';
import { officeScenario } from '../../src/sim/office.js';

/** A power driver that records every call; status per host is scriptable ('on' by default). */
class CountingPower implements PowerDriver {
  readonly kind = 'counting';
  readonly calls: string[] = [];
  readonly state = new Map<string, HostPower | Error>();
  /** Called after a power-on request was accepted (e.g. to let a fake host "boot"). */
  onPowerOn?: (host: string) => void;
  constructor(private readonly inner?: PowerDriver) {}
  async status(host: string): Promise<HostPower> {
    this.calls.push(`status ${host}`);
    const s = this.state.get(host);
    if (s instanceof Error) throw s;
    return s ?? (this.inner ? this.inner.status(host) : 'on');
  }
  async powerOn(host: string): Promise<void> {
    this.calls.push(`powerOn ${host}`);
    if (this.inner) await this.inner.powerOn(host);
    else this.state.set(host, 'on');
    this.onPowerOn?.(host);
  }
  async powerOff(host: string): Promise<void> {
    this.calls.push(`powerOff ${host}`);
    if (this.inner) await this.inner.powerOff(host);
    else this.state.set(host, 'off');
  }
  count(op: string): number {
    return this.calls.filter((c) => c.startsWith(`${op} `)).length;
  }
}

const mig = (id: number, vm: string, from: string, to: string, deps: number[] = []): Step => ({ id, kind: 'migrate', vm, from, to, memMiB: 0, deps, reason: 'test', by: 'test' });
const off = (id: number, host: string, deps: number[] = []): Step => ({ id, kind: 'powerOff', host, deps, reason: 'test', by: 'test' });
const on = (id: number, host: string, deps: number[] = []): Step => ({ id, kind: 'powerOn', host, deps, reason: 'test', by: 'test' });
const place = (id: number, vm: string, to: string, deps: number[] = []): Step => ({ id, kind: 'place', vm, to, deps, reason: 'test', by: 'test' });
const plan = (steps: Step[]): Plan => ({ policy: 'test', time: 0, steps, hosts: [], notMoved: [] });
const limits = { maxConcurrent: 4, maxPerHost: 2 };
const byId = (r: PlanRun, id: number): StepRun => r.steps.find((s) => s.step.id === id)!;

function fake(vms: FakeVmSpec[]) {
  const driver = new FakeDriver({ hosts: [{ name: 'h1' }, { name: 'h2' }, { name: 'h3' }], vms });
  const power = new CountingPower();
  const clock = new VirtualClock(0);
  const exec = (steps: Step[], observer?: ExecutorObserver) =>
    clock.drive(runPlan(plan(steps), { hypervisor: driver, power, clock, limits, migrate: { mode: 'live' }, bootTimeoutSec: 60, observer }));
  return { driver, power, clock, exec };
}

describe('power-off fails closed', () => {
  it('never powers off a host whose libvirtd stopped while a guest still runs on it (fake driver)', async () => {
    const { driver, power, exec } = fake([{ name: 'a', host: 'h1' }, { name: 'b', host: 'h2' }]);
    driver.setHostUp('h1', false);
    // The old guard's evidence: listVms leaves the unreachable host out, so h1 "looks empty".
    expect((await driver.listVms()).map((v) => v.name)).toEqual(['b']);
    const r = await exec([off(1, 'h1')]);
    expect(byId(r, 1)).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
    expect(byId(r, 1).error!.message).toMatch(/not powering off h1: its hypervisor did not answer .*may still run guests/);
    expect(power.count('powerOff')).toBe(0);
    expect(driver.vm('a')).toMatchObject({ host: 'h1', state: 'running' });
  });

  it('refuses after the evacuation "succeeded" when the host stopped answering meanwhile (fake driver)', async () => {
    const { driver, power, exec } = fake([{ name: 'a', host: 'h1' }, { name: 'late', host: 'h3' }]);
    const r = await exec([mig(1, 'a', 'h1', 'h2'), off(2, 'h1', [1])], {
      onStepEnd: (run) => {
        if (run.step.id !== 1) return;
        // Someone started a guest on h1 behind Tide's back, then h1's libvirtd died.
        driver.updateVm('late', { host: 'h1' });
        driver.setHostUp('h1', false);
      },
    });
    expect(byId(r, 1).state).toBe('succeeded');
    expect(byId(r, 2)).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
    expect(power.count('powerOff')).toBe(0);
  });

  it('never powers off a simulated host that stopped answering after its evacuation, though listVms omits its guest', async () => {
    const scenario = officeScenario({ hosts: 4, days: 1 });
    const clock = new VirtualClock(0);
    const sim = new SimDriver(scenario, clock);
    const power = new CountingPower(sim);
    const host = 'srv-1';
    const evac = Object.entries(sim.placement()).filter(([, h]) => h === host).map(([vm]) => vm);
    expect(evac.length).toBeGreaterThan(0);
    const steps = [...evac.map((vm, i) => mig(i + 1, vm, host, 'srv-4')), off(100, host, evac.map((_, i) => i + 1))];
    let n = 0;
    const r = await clock.drive(runPlan(plan(steps), {
      hypervisor: sim, power, clock, limits: { maxConcurrent: 2, maxPerHost: 2 }, migrate: { mode: 'live' },
      observer: {
        onStepEnd: (run) => {
          if (run.step.kind !== 'migrate' || ++n < evac.length) return;
          sim.addVm('stray', host, { memMiB: 512 });
          sim.setReachable(host, false);
        },
      },
    }));
    expect(r.steps.filter((s) => s.step.kind === 'migrate').every((s) => s.state === 'succeeded')).toBe(true);
    expect((await sim.listVms()).some((v) => v.name === 'stray')).toBe(false);
    expect(byId(r, 100)).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
    expect(byId(r, 100).error!.message).toContain(host);
    expect(power.count('powerOff')).toBe(0);
    expect(sim.hostPower()[host]).toBe('on');
  });

  it('refuses a host that answers with a paused or crashed domain, and names it', async () => {
    for (const state of ['paused', 'crashed'] as const) {
      const { power, exec } = fake([{ name: 'p', host: 'h1', state }]);
      const r = await exec([off(1, 'h1')]);
      expect(byId(r, 1)).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
      expect(byId(r, 1).error!.message).toContain(`p (${state})`);
      expect(power.count('powerOff')).toBe(0);
    }
  });

  it('powers off a host holding only shut-off definitions, and says they stay there', async () => {
    const { power, exec } = fake([{ name: 'def', host: 'h1', state: 'shutoff' }]);
    const r = await exec([off(1, 'h1')]);
    expect(byId(r, 1).state).toBe('succeeded');
    expect(byId(r, 1).note).toMatch(/shut-off definitions stay on h1.*def/);
    expect(power.calls).toEqual(['status h1', 'powerOff h1']);
  });

  it("issues no powerOff unless the power driver reports 'on'", async () => {
    for (const s of ['unknown', 'off', 'booting', new Error('BMC timed out')] as const) {
      const { power, exec } = fake([]);
      power.state.set('h1', s);
      const r = await exec([off(1, 'h1')]);
      expect(byId(r, 1)).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
      expect(byId(r, 1).error!.message).toContain(s instanceof Error ? 'BMC timed out' : `'${s}'`);
      expect(power.count('powerOff')).toBe(0);
    }
  });

  it('skips the power-off when an evacuation it depends on was skipped as stale', async () => {
    const { driver, power, exec } = fake([{ name: 'a', host: 'h1' }]);
    driver.setHostUp('h2', false);
    const r = await exec([mig(1, 'a', 'h1', 'h2'), off(2, 'h1', [1])]);
    expect(byId(r, 1)).toMatchObject({ state: 'skipped', error: { code: 'TIDE_STALE_PLAN' } });
    expect(byId(r, 2).state).toBe('skipped');
    expect(power.calls).toEqual([]);
  });

  it('refuses a power-off while a migration onto the same host is in flight', async () => {
    const { power, exec, driver } = fake([{ name: 'a', host: 'h2' }]);
    const r = await exec([mig(1, 'a', 'h2', 'h1'), off(2, 'h1')]);
    expect(byId(r, 2)).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
    expect(power.count('powerOff')).toBe(0);
    expect(driver.vm('a')!.host).toBe('h1');
  });
});

describe('steps check that the world still matches them', () => {
  it('skips a migration whose VM left its source, and everything depending on it', async () => {
    const { driver, power, exec } = fake([{ name: 'a', host: 'h3' }]);
    const r = await exec([mig(1, 'a', 'h1', 'h2'), off(2, 'h1', [1])]);
    expect(byId(r, 1)).toMatchObject({ state: 'skipped', error: { code: 'TIDE_STALE_PLAN' } });
    expect(byId(r, 1).error!.message).toMatch(/a is no longer on h1/);
    expect(byId(r, 2).state).toBe('skipped');
    expect(driver.callsOf('migrate')).toHaveLength(0);
    expect(power.calls).toEqual([]);
  });

  it('skips a migration whose VM is already on the target, was shut off, or whose source or target stopped answering', async () => {
    const cases: { vms: FakeVmSpec[]; down?: string; msg: RegExp }[] = [
      { vms: [{ name: 'a', host: 'h2' }], msg: /a is already on h2 \(running\)/ },
      { vms: [{ name: 'a', host: 'h1', state: 'shutoff' }], msg: /a is shutoff on h1, the plan expected running or paused/ },
      { vms: [{ name: 'a', host: 'h1' }], down: 'h1', msg: /h1, which does not answer/ },
      { vms: [{ name: 'a', host: 'h1' }], down: 'h2', msg: /target h2 does not answer/ },
    ];
    for (const c of cases) {
      const { driver, exec } = fake(c.vms);
      if (c.down) driver.setHostUp(c.down, false);
      const r = await exec([mig(1, 'a', 'h1', 'h2')]);
      expect(byId(r, 1)).toMatchObject({ state: 'skipped', error: { code: 'TIDE_STALE_PLAN' } });
      expect(byId(r, 1).error!.message).toMatch(c.msg);
      expect(driver.callsOf('migrate')).toHaveLength(0);
    }
  });

  it('wakes a host only when it is not already on; a host already on succeeds without a request', async () => {
    const { driver, power, exec } = fake([]);
    const r1 = await exec([on(1, 'h1')]);
    expect(byId(r1, 1).state).toBe('succeeded');
    expect(byId(r1, 1).note).toMatch(/h1 was already on: no power-on request sent/);
    expect(power.count('powerOn')).toBe(0);

    driver.setHostUp('h2', false);
    power.state.set('h2', 'off');
    // The fake host's hypervisor answers once the request arrived.
    power.onPowerOn = (h) => driver.setHostUp(h, true);
    const r2 = await exec([on(2, 'h2')]);
    expect(byId(r2, 2).state).toBe('succeeded');
    expect(byId(r2, 2).note).toBeUndefined();
    expect(power.calls.filter((c) => c.endsWith('h2'))).toEqual(['status h2', 'powerOn h2']);
  });
});

describe('place steps', () => {
  it('starts a shut-off VM whose definition is on the target', async () => {
    const { driver, exec } = fake([{ name: 'new', host: 'h2', state: 'shutoff' }]);
    const r = await exec([place(1, 'new', 'h2')]);
    expect(byId(r, 1).state).toBe('succeeded');
    expect(driver.vm('new')).toMatchObject({ host: 'h2', state: 'running' });
    expect(driver.callsOf('migrate')).toHaveLength(0);
  });

  it('moves a definition held by another host offline to the target, then starts it there', async () => {
    const { driver, exec } = fake([{ name: 'new', host: 'h1', state: 'shutoff' }]);
    const r = await exec([place(1, 'new', 'h3')]);
    expect(byId(r, 1).state).toBe('succeeded');
    expect(byId(r, 1).note).toMatch(/moved the definition of new from h1 to h3/);
    expect(driver.vm('new')).toMatchObject({ host: 'h3', state: 'running' });
    const acts = driver.calls.filter((c) => c.method === 'migrate' || c.method === 'start');
    expect(acts.map((c) => c.method)).toEqual(['migrate', 'start']);
    expect(acts[0]!.args[2]).toMatchObject({ mode: 'offline' });
  });

  it('skips a place step whose VM already runs, has no definition, or whose target does not answer', async () => {
    const cases: { vms: FakeVmSpec[]; down?: string; msg: RegExp }[] = [
      { vms: [{ name: 'new', host: 'h1' }], msg: /new is already running on h1/ },
      { vms: [], msg: /no host that answered holds a definition of new/ },
      { vms: [{ name: 'new', host: 'h2', state: 'shutoff' }], down: 'h2', msg: /target h2 does not answer/ },
    ];
    for (const c of cases) {
      const { driver, exec } = fake(c.vms);
      if (c.down) driver.setHostUp(c.down, false);
      const r = await exec([place(1, 'new', 'h2')]);
      expect(byId(r, 1)).toMatchObject({ state: 'skipped', error: { code: 'TIDE_STALE_PLAN' } });
      expect(byId(r, 1).error!.message).toMatch(c.msg);
      expect(driver.callsOf('start')).toHaveLength(0);
    }
  });

  it('reports a start that fails after the definition moved, saying where the VM is', async () => {
    const { driver, exec } = fake([{ name: 'new', host: 'h1', state: 'shutoff' }]);
    driver.inject({ method: 'start', code: 'TIDE_VM_STATE', message: 'qemu refused' });
    const r = await exec([place(1, 'new', 'h3')]);
    expect(byId(r, 1)).toMatchObject({ state: 'failed', error: { code: 'TIDE_VM_STATE' } });
    expect(byId(r, 1).error!.message).toMatch(/qemu refused \(its definition was moved from h1 to h3; it is shut off there\)/);
    expect(driver.vm('new')).toMatchObject({ host: 'h3', state: 'shutoff' });
  });
});

describe('intent before effect', () => {
  it('does nothing when the start of a step cannot be recorded, and rejects with the cause', async () => {
    const { driver, power, exec } = fake([{ name: 'a', host: 'h1' }]);
    const seen: string[] = [];
    const failing = exec([mig(1, 'a', 'h1', 'h2'), off(2, 'h3')], {
      onStepStart: () => { throw new Error('disk full'); },
      onStepEnd: (r) => seen.push(`${r.step.id}:${r.state}`),
    });
    await expect(failing).rejects.toThrow('disk full');
    expect(driver.callsOf('migrate')).toHaveLength(0);
    expect(driver.callsOf('hostDomains')).toHaveLength(0);
    expect(power.calls).toEqual([]);
    expect(seen.sort()).toEqual(['1:failed', '2:cancelled']);
  });

  it('records the start before the side effect', async () => {
    const { driver, exec } = fake([{ name: 'a', host: 'h1' }]);
    const order: string[] = [];
    const orig = driver.migrate.bind(driver);
    driver.migrate = (...args) => {
      order.push('migrate');
      return orig(...args);
    };
    await exec([mig(1, 'a', 'h1', 'h2')], { onStepStart: () => order.push('start recorded'), onStepEnd: () => order.push('end recorded') });
    expect(order).toEqual(['start recorded', 'migrate', 'end recorded']);
  });
});
