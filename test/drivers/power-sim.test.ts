/** The simulator's power side under the PowerDriver contract (virtual time: boots take no real time). */
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { officeScenario } from '../../src/sim/office.js';
import { runPowerContract } from './power-contract.js';

runPowerContract('sim', async () => {
  const scenario = officeScenario();
  const clock = new VirtualClock(0);
  // Two VMs on the first host: the last two hosts are empty, so the sim lets them power off.
  const vms = scenario.vms.slice(0, 2);
  const placement = Object.fromEntries(vms.map((v) => [v.id, scenario.hosts[0]!.id]));
  const driver = new SimDriver({ ...scenario, vms }, clock, { placement });
  const ids = scenario.hosts.map((x) => x.id);
  const hosts = [ids[ids.length - 2]!, ids[ids.length - 1]!] as const;
  const bootMs = (host: string): number => scenario.hosts.find((x) => x.id === host)!.power.bootSec * 1000;
  return {
    driver, hosts, booting: true,
    settle: async (host) => { await clock.advance(bootMs(host) + 1); },
    teardown: async () => {},
  };
});
