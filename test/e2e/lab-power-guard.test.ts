/**
 * The power-off guard on real libvirt: a host whose libvirtd is stopped while its guest keeps
 * running must never be powered off, whatever the plan says and whatever the power driver
 * reports. The guard asks that host alone (hostDomains) and a host that does not answer is
 * never "empty". The power driver here only records calls: the point is that the executor
 * never reaches it (no real BMC is touched).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Cluster } from '../../src/api/cluster.js';
import type { Plan } from '../../src/core/plan/types.js';
import type { HostPower, PowerDriver } from '../../src/drivers/power.js';
import { systemClock } from '../../src/executor/clock.js';
import { runPlan } from '../../src/executor/executor.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, migrate, sharedLab, type TestLab } from '../helpers/lab.js';

const VM = 'tguard';
const HOST = 'lab-b';

/** Records every call; reports every host 'on' (the worst case: only the hypervisor check stands between the plan and the power-off). */
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

const powerOffPlan = (host: string): Plan => ({
  policy: 'test', time: 0, hosts: [], notMoved: [],
  steps: [{ id: 1, kind: 'powerOff', host, deps: [], reason: `${host} looks empty`, by: 'test' }],
});

describeLab('power-off guard on the lab', () => {
  let lab: TestLab | undefined;
  const L = (): TestLab => lab!;

  beforeAll(async () => {
    lab = await sharedLab({ vms: 0 });
    const at = await lab.locate(VM);
    if (at === null) await lab.bootGuest({ name: VM, host: HOST, memMiB: 128 });
    else if (at !== HOST) expect((await migrate(lab, VM, HOST)).code).toBe(0);
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.resetFaults().catch(() => { /* down() reports */ });
    await lab?.down();
  }, LAB_HOOK_TIMEOUT_MS);

  it('a host whose libvirtd is stopped while a guest runs on it is never powered off', async () => {
    const cluster = Cluster.open(L().config());
    const power = new RecordingPower();
    try {
      // While libvirtd answers, the guard sees the guest and refuses for that reason.
      const busy = await runPlan(powerOffPlan(HOST), { hypervisor: cluster.driver, power, clock: systemClock, limits: { maxConcurrent: 1, maxPerHost: 1 }, migrate: { mode: 'live' } });
      expect(busy.steps[0]!.state).toBe('failed');
      expect(busy.steps[0]!.error?.code).toBe('TIDE_POWER_REFUSED');
      expect(busy.steps[0]!.error?.message).toContain(VM);

      // libvirtd stopped: QEMU (the guest) keeps running, but nobody can say so.
      const pid = await L().killLibvirtd(HOST);
      expect(pid).not.toBeNull();
      const hosts = await cluster.driver.listHosts();
      expect(hosts.find((h) => h.name === HOST)?.up).toBe(false);
      expect((await cluster.driver.listVms()).some((v) => v.name === VM)).toBe(false); // invisible, not gone
      await expect(cluster.driver.hostDomains(HOST)).rejects.toMatchObject({ code: 'TIDE_HOST_UNREACHABLE' });

      const run = await runPlan(powerOffPlan(HOST), { hypervisor: cluster.driver, power, clock: systemClock, limits: { maxConcurrent: 1, maxPerHost: 1 }, migrate: { mode: 'live' } });
      expect(run.steps[0]!.state).toBe('failed');
      expect(run.steps[0]!.error?.code).toBe('TIDE_POWER_REFUSED');
      expect(run.steps[0]!.error?.message).toContain(HOST);
      expect(power.calls.filter((c) => c.startsWith('powerOff'))).toEqual([]);
    } finally {
      await cluster.close();
      await L().startLibvirtd(HOST);
    }
    // The guest ran on throughout, exactly once, where it was.
    expect(await L().locate(VM)).toBe(HOST);
    expect(await L().virshOk(HOST, ['domstate', '--domain', VM])).toBe('running');
  }, 180_000);
});
