/**
 * What the simulator runs: hosts, VMs with demand traces, and the sampling interval.
 * Builders for the CloudSim PlanetLab datacenter (docs/simulator.md, the CloudSim PlanetLab setup) live here too.
 */
import { HP_ML110_G4, HP_ML110_G5 } from '../core/model/power.js';
import type { PowerModel, Rule } from '../core/model/types.js';
import type { Schedule } from '../core/schedule.js';
import type { Trace } from './trace.js';

export interface SimHostSpec {
  readonly id: string;
  readonly cpuCores: number;
  readonly mipsPerCore: number;
  readonly memMiB: number;
  readonly netBytesPerSec: number;
  readonly diskBytesPerSec: number;
  readonly power: PowerModel;
  /** CloudSim's bandwidth units (1,000,000 = "1 Gbit/s"); when set, migration time is RAM ÷ (bw/16000) as in CloudSim. */
  readonly bwUnits?: number;
  readonly tags?: readonly string[];
}

export interface SimVmSpec {
  readonly id: string;
  readonly vcpus: number;
  readonly mipsPerVcpu: number;
  readonly memMiB: number;
  /** CloudSim bandwidth units the VM reserves at creation (100,000 in the PlanetLab setup). */
  readonly bwUnits?: number;
  /** CPU demand per sample, fraction of vcpus × mipsPerVcpu. */
  readonly cpu: Float64Array;
  /** Memory really used per sample, fraction of memMiB (default: all of it). */
  readonly mem?: Float64Array;
  readonly diskBytesPerSec?: Float64Array;
  readonly netBytesPerSec?: Float64Array;
  readonly tags?: readonly string[];
  /** False: the policy may never move it. */
  readonly migratable?: boolean;
}

export interface SimScenario {
  readonly name: string;
  readonly intervalSec: number;
  /** Samples per VM trace. The simulation covers samples × intervalSec seconds. */
  readonly samples: number;
  /** Wall-clock offset of t = 0, s since a midnight (for time-of-day policies and reports). */
  readonly startSec: number;
  readonly hosts: readonly SimHostSpec[];
  readonly vms: readonly SimVmSpec[];
  readonly rules: readonly Rule[];
  /**
   * CloudSim's initial placement: each VM asks for its full MIPS (and bandwidth units) when it
   * is created. Otherwise VMs are placed by memory only, as a real cluster would start.
   */
  readonly fullCpuAtCreation?: boolean;
  /**
   * Consolidate / balance / blackout windows; each snapshot carries the window in force, read
   * at epoch SIM_MONDAY_EPOCH_SEC + startSec + t (t = 0 is a Monday, startSec after midnight UTC).
   */
  readonly schedule?: Schedule;
}

/** CloudSim PlanetLab constants (PlanetLabConstants / Constants). */
export const CLOUDSIM = {
  hosts: 800,
  hostTypes: [
    { power: HP_ML110_G4, cores: 2, mipsPerCore: 1860, memMiB: 4096 },
    { power: HP_ML110_G5, cores: 2, mipsPerCore: 2660, memMiB: 4096 },
  ],
  hostBwUnits: 1_000_000,
  vmTypes: [
    { mips: 2500, memMiB: 870 },
    { mips: 2000, memMiB: 1740 },
    { mips: 1000, memMiB: 1740 },
    { mips: 500, memMiB: 613 },
  ],
  vmBwUnits: 100_000,
} as const;

/**
 * The CloudSim PlanetLab datacenter for a trace: 800 hosts alternating G4/G5 by index, one
 * 1-vCPU VM per trace file, VM type by contiguous quarters of the (sorted) file list (unless
 * the trace gives a VM's MIPS and memory).
 */
export function cloudsimScenario(trace: Trace, hosts: number = CLOUDSIM.hosts): SimScenario {
  const hostSpecs: SimHostSpec[] = Array.from({ length: hosts }, (_, i) => {
    const t = CLOUDSIM.hostTypes[i % 2]!;
    return {
      id: `host-${i}`,
      cpuCores: t.cores,
      mipsPerCore: t.mipsPerCore,
      memMiB: t.memMiB,
      netBytesPerSec: 125_000_000,
      diskBytesPerSec: 1e12,
      power: t.power,
      bwUnits: CLOUDSIM.hostBwUnits,
      tags: [i % 2 === 0 ? 'g4' : 'g5'],
    };
  });
  const n = trace.vms.length;
  const quarter = Math.ceil(n / CLOUDSIM.vmTypes.length);
  const vms: SimVmSpec[] = trace.vms.map((tv, i) => {
    const type = CLOUDSIM.vmTypes[Math.floor(i / quarter)]!;
    return {
      id: tv.id,
      vcpus: 1,
      mipsPerVcpu: tv.mips ?? type.mips,
      memMiB: tv.memMiB ?? type.memMiB,
      bwUnits: CLOUDSIM.vmBwUnits,
      cpu: tv.cpu,
      mem: tv.mem,
      diskBytesPerSec: tv.diskBytesPerSec,
      netBytesPerSec: tv.netBytesPerSec,
    };
  });
  return { name: trace.source, intervalSec: trace.intervalSec, samples: trace.samples, startSec: 0, hosts: hostSpecs, vms, rules: [], fullCpuAtCreation: true };
}
