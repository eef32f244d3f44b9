/**
 * Synthetic clusters for planner benchmarks: N hosts of three hardware generations, M VMs of
 * mixed sizes placed by first fit on memory, with a seeded mix of busy and idle VMs so that a
 * planning pass has real work: a few percent of hosts overloaded, many lightly loaded.
 */
import { linearPower } from '../core/model/power.js';
import type { ClusterSnapshot, Host, Vm } from '../core/model/types.js';
import { seededRng } from '../core/util/rng.js';

export interface SyntheticOptions {
  readonly hosts: number;
  readonly vms: number;
  readonly seed?: number;
  /** History samples per VM. */
  readonly historySamples?: number;
}

const HOST_TYPES = [
  { cores: 32, mhz: 2600, memGiB: 384, power: linearPower(160, 420) },
  { cores: 48, mhz: 2400, memGiB: 512, power: linearPower(190, 520) },
  { cores: 24, mhz: 3000, memGiB: 256, power: linearPower(140, 360) },
] as const;

/** vCPU speed of every VM: the slowest host generation's core, so any VM may run anywhere. */
const BASELINE_MHZ = 2400;

const VM_SIZES = [
  { vcpus: 1, memGiB: 2 },
  { vcpus: 2, memGiB: 4 },
  { vcpus: 2, memGiB: 8 },
  { vcpus: 4, memGiB: 8 },
  { vcpus: 4, memGiB: 16 },
  { vcpus: 8, memGiB: 32 },
] as const;

export class SyntheticError extends Error {
  readonly code = 'TIDE_USAGE';
}

export function syntheticCluster(opts: SyntheticOptions): ClusterSnapshot {
  const { hosts: nh, vms: nv } = opts;
  if (!Number.isInteger(nh) || nh < 1) throw new SyntheticError(`hosts must be a positive integer (got ${nh})`);
  if (!Number.isInteger(nv) || nv < 0) throw new SyntheticError(`vms must be a non-negative integer (got ${nv})`);
  const samples = opts.historySamples ?? 12;
  const rng = seededRng(opts.seed ?? 1);
  const hosts: Host[] = [];
  for (let i = 0; i < nh; i++) {
    const t = HOST_TYPES[i % HOST_TYPES.length]!;
    hosts.push({
      id: `host-${i}`, cpuCores: t.cores, mipsPerCore: t.mhz, memMiB: t.memGiB * 1024,
      diskBytesPerSec: 2e9, netBytesPerSec: 3.125e9, power: t.power, powerState: 'on',
      maintenance: false, excluded: false, tags: [],
    });
  }
  const memFree = hosts.map((h) => h.memMiB);
  const vms: Vm[] = [];
  let h = 0;
  for (let i = 0; i < nv; i++) {
    const size = VM_SIZES[Math.floor(rng.next() * VM_SIZES.length)]!;
    const memMiB = size.memGiB * 1024;
    // First fit from a rotating start: spreads VMs over all hosts like a long-lived cluster.
    let tries = 0;
    while (memFree[h]! < memMiB && tries < nh) {
      h = (h + 1) % nh;
      tries++;
    }
    if (tries >= nh) throw new SyntheticError(`${nv} VMs do not fit in the memory of ${nh} hosts`);
    memFree[h]! -= memMiB;
    const host = hosts[h]!;
    const capacity = size.vcpus * BASELINE_MHZ;
    // 70 % mostly idle, 25 % moderate, 5 % busy; each with its own noise level.
    const r = rng.next();
    const level = r < 0.7 ? 0.05 + 0.1 * rng.next() : r < 0.95 ? 0.2 + 0.3 * rng.next() : 0.6 + 0.4 * rng.next();
    const noise = 0.05 + 0.2 * rng.next();
    const history = new Float64Array(samples);
    for (let k = 0; k < samples; k++) history[k] = capacity * Math.min(1, Math.max(0, level + noise * (rng.next() - 0.5)));
    vms.push({
      id: `vm-${i}`, host: host.id, vcpus: size.vcpus, mipsPerVcpu: BASELINE_MHZ, memMiB, memReservedMiB: memMiB,
      demand: { cpuMips: history[samples - 1]!, memMiB: memMiB * 0.6, diskBytesPerSec: 1e5 * rng.next(), netBytesPerSec: 1e5 * rng.next() },
      cpuHistoryMips: history, tags: [], migratable: true,
    });
    h = (h + 1) % nh;
  }
  return { time: 1_000_000, sampleIntervalSec: 300, hosts, vms, rules: [] };
}
