/**
 * The power-off guard against real libvirt on the lab: a host whose libvirtd was stopped while
 * its guest keeps running is never powered off (the real LibvirtDriver's listVms leaves it out,
 * so a guard trusting listVms would see it empty); a host whose libvirtd answers is powered off
 * exactly when virsh lists no active domain on it. The power driver is a recorder (nothing is
 * really switched off), so the test counts the powerOff calls the executor issued.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { Plan } from '../../src/core/plan/types.js';
import { createDriver } from '../../src/drivers/index.js';
import type { HypervisorDriver } from '../../src/drivers/hypervisor.js';
import type { HostPower, PowerDriver } from '../../src/drivers/power.js';
import { systemClock } from '../../src/executor/clock.js';
import { runPlan } from '../../src/executor/executor.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, sharedLab, type TestLab } from '../helpers/lab.js';

const VM = 'tpwrguard';

class RecordingPower implements PowerDriver {
  readonly kind = 'recording';
  readonly calls: string[] = [];
  async status(host: string): Promise<HostPower> {
    this.calls.push(`status ${host}`);
    return 'on';
  }
  async powerOn(host: string): Promise<void> {
    this.calls.push(`powerOn ${host}`);
  }
  async powerOff(host: string): Promise<void> {
    this.calls.push(`powerOff ${host}`);
  }
}

const offPlan = (host: string): Plan => ({
  policy: 'test', time: 0, hosts: [], notMoved: [],
  steps: [{ id: 1, kind: 'powerOff', host, deps: [], reason: 'test', by: 'test' }],
});

describeLab('power-off guard on real libvirt', () => {
  let lab: TestLab | undefined;
  const L = (): TestLab => lab!;
  let driver: HypervisorDriver | undefined;

  beforeAll(async () => {
    lab = await sharedLab({ vms: 0 });
    if (!lab.vms.some((v) => v.name === VM)) await lab.bootGuest({ name: VM, host: 'lab-a', memMiB: 128 });
  }, LAB_HOOK_TIMEOUT_MS);

  afterEach(async () => {
    await driver?.close();
    driver = undefined;
    await L().resetFaults();
  }, 120_000);

  afterAll(async () => {
    await lab?.down();
  }, LAB_HOOK_TIMEOUT_MS);

  const exec = (host: string, power: PowerDriver) =>
    runPlan(offPlan(host), { hypervisor: driver!, power, clock: systemClock, limits: { maxConcurrent: 1, maxPerHost: 1 }, migrate: { mode: 'live' } });

  it('never powers off a host whose libvirtd is stopped while its guest runs', async () => {
    const host = (await L().locate(VM))!;
    expect(host).not.toBeNull();
    driver = createDriver(L().config());
    await L().killLibvirtd(host);
    // The evidence an unsafe guard would have used: the guest is gone from the inventory.
    expect((await driver.listVms()).some((v) => v.name === VM)).toBe(false);
    const power = new RecordingPower();
    const r = await exec(host, power);
    expect(r.steps[0]).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
    expect(r.steps[0]!.error!.message).toMatch(new RegExp(`^not powering off ${host}: its hypervisor did not answer`));
    expect(power.calls.filter((c) => c.startsWith('powerOff'))).toEqual([]);
    // The guest ran on throughout.
    await L().startLibvirtd(host);
    expect(await L().virshOk(host, ['domstate', '--domain', VM])).toBe('running');
  }, 120_000);

  it('decides on each answering host exactly as virsh sees its active domains', async () => {
    driver = createDriver(L().config());
    for (const host of L().hostNames) {
      const active = (await L().virshOk(host, ['list', '--name'])).split('\n').map((s) => s.trim()).filter(Boolean);
      const power = new RecordingPower();
      const r = await exec(host, power);
      if (active.length === 0) {
        expect(r.steps[0]!.state).toBe('succeeded');
        expect(power.calls).toEqual([`status ${host}`, `powerOff ${host}`]);
      } else {
        expect(r.steps[0]).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
        for (const vm of active) expect(r.steps[0]!.error!.message).toContain(`${vm} (running)`);
        expect(power.calls).toEqual([]);
      }
    }
    // The guest's host always holds it: at least one refusal happened above.
    expect(await L().locate(VM)).not.toBeNull();
  }, 120_000);
});
