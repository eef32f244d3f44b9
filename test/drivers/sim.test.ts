// The contract suite against the simulator's datacenter driver, on a clock running 200× faster
// than the wall clock (the suite itself waits in real time).
import { describe, expect, it } from 'vitest';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { scaledClock, VirtualClock } from '../../src/executor/clock.js';
import { officeScenario } from '../../src/sim/office.js';
import { runDriverContract } from './contract.js';

runDriverContract('sim', async () => {
  const scenario = officeScenario({ hosts: 2, days: 1 });
  const placement = Object.fromEntries(scenario.vms.map((v) => [v.id, v.id === 'dns' ? 'srv-1' : v.id === 'monitoring' || v.id === 'files' ? 'srv-1' : 'srv-2']));
  const driver = new SimDriver({ ...scenario, vms: scenario.vms.filter((v) => ['dns', 'monitoring', 'files', 'mail'].includes(v.id)) }, scaledClock(200), { placement });
  return {
    driver,
    hosts: ['srv-1', 'srv-2'],
    vm: 'dns',
    teardown: () => driver.close(),
    slowBandwidthMiBps: 0.001,
    breakHost: async (host) => {
      driver.setReachable(host, false);
      return async () => driver.setReachable(host, true);
    },
    createVm: async (name, host) => driver.addVm(name, host),
    removeVm: async (name) => driver.removeVm(name),
  };
});

describe('SimDriver model', () => {
  it('meters energy by power state and load, and boots hosts in bootSec', async () => {
    const scenario = officeScenario({ hosts: 3, days: 1 });
    const clock = new VirtualClock(0);
    const d = new SimDriver(scenario, clock);
    // First fit on memory fills srv-1 and srv-2; srv-3 stays empty.
    expect(Object.values(d.placement())).not.toContain('srv-3');
    await clock.advance(3600_000);
    const allOn = d.energyKWh();
    await d.powerOff('srv-3');
    await clock.advance(3600_000);
    const second = d.energyKWh() - allOn;
    // Night-time load is flat: the second hour costs less by the empty host's idle minus standby.
    const idle = scenario.hosts[2]!.power.wattsAtLoad[0]!;
    expect(allOn - second).toBeCloseTo((idle - scenario.hosts[2]!.power.offW) / 1000, 1);
    await d.powerOn('srv-3');
    expect(await d.status('srv-3')).toBe('booting');
    await clock.advance(scenario.hosts[2]!.power.bootSec * 1000 - 1);
    expect(await d.status('srv-3')).toBe('booting');
    await clock.advance(1);
    expect(await d.status('srv-3')).toBe('on');
    await expect(d.powerOff('srv-1')).rejects.toMatchObject({ code: 'TIDE_POWER_FAILED' });
  });
});
