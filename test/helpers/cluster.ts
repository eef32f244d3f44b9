/**
 * Builders for small hand-made clusters: host('h1', {cpuCores: 2}) and vm('a', 'h1', {cpu: 500})
 * with overridable defaults, in the style of descheduler's BuildTestNode/BuildTestPod.
 */
import { linearPower } from '../../src/core/model/power.js';
import type { ClusterSnapshot, Host, Rule, Vm } from '../../src/core/model/types.js';

export function host(id: string, o: Partial<Host> = {}): Host {
  return {
    id,
    cpuCores: 2,
    mipsPerCore: 1000,
    memMiB: 4096,
    diskBytesPerSec: 1e9,
    netBytesPerSec: 125e6,
    power: linearPower(100, 200),
    powerState: 'on',
    maintenance: false,
    excluded: false,
    tags: [],
    ...o,
  };
}

export interface VmOpts extends Partial<Omit<Vm, 'demand'>> {
  /** Current CPU demand, MIPS (also the history's last value unless history is given). */
  cpu?: number;
  /** Whole CPU history, MIPS, oldest first. */
  history?: number[];
  mem?: number;
}

export function vm(id: string, hostId: string | null, o: VmOpts = {}): Vm {
  const cpu = o.cpu ?? o.history?.[o.history.length - 1] ?? 100;
  const memMiB = o.memMiB ?? 1024;
  const { cpu: _c, history: _h, mem: _m, ...rest } = o;
  return {
    id,
    host: hostId,
    vcpus: 1,
    mipsPerVcpu: 1000,
    memMiB,
    memReservedMiB: memMiB,
    demand: { cpuMips: cpu, memMiB: o.mem ?? memMiB, diskBytesPerSec: 0, netBytesPerSec: 0 },
    cpuHistoryMips: o.history ?? [cpu],
    tags: [],
    migratable: true,
    ...rest,
  };
}

export function cluster(hosts: Host[], vms: Vm[], rules: Rule[] = [], time = 1_000_000): ClusterSnapshot {
  return { time, sampleIntervalSec: 300, hosts, vms, rules };
}
