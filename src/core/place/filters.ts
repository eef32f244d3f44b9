/** Hard placement filters. Codes are stable strings; explanations carry the numbers. */
import type { OverloadDetector } from '../detect/detector.js';
import type { HostFilter } from './placement.js';
import type { RuleIndex } from './rules.js';

const fmt = (x: number, digits = 0): string => x.toFixed(digits);

/**
 * Maintenance, excluded and (unless waking is allowed) powered-off hosts take no VMs; a host
 * whose state is unknown (it did not answer) never does, waking or not, nor does an off host
 * that must not be woken (Host.wakeRefused: its wake failed recently).
 */
export function hostUsable(opts: { allowWake: boolean }): HostFilter {
  return {
    name: 'host-usable',
    check: (s, _v, h) => {
      const host = s.hosts[h]!;
      const p = s.powerState(h);
      if (p === 'unknown') return 'host-unknown';
      if (host.maintenance) return 'host-maintenance';
      if (host.excluded) return 'host-excluded';
      if (!opts.allowWake && p !== 'on') return 'host-off';
      // An off host whose wake failed recently is never woken (Host.wakeRefused).
      if (p !== 'on' && host.wakeRefused !== undefined) return 'host-wake-refused';
      return null;
    },
    explain: (s, _v, h, code) =>
      code === 'host-unknown' ? `${s.hosts[h]!.id} did not answer (state unknown${s.hosts[h]!.stateReason ? `: ${s.hosts[h]!.stateReason}` : ''}), so it takes no VMs`
        : code === 'host-maintenance' ? `${s.hosts[h]!.id} is in maintenance`
          : code === 'host-excluded' ? `${s.hosts[h]!.id} is excluded from balancing`
            : code === 'host-wake-refused' ? `${s.hosts[h]!.id} is ${s.powerState(h)} and is not woken: ${s.hosts[h]!.wakeRefused}`
              : `${s.hosts[h]!.id} is ${s.powerState(h)} and this policy does not wake hosts here`,
  };
}

/** Hosts a strategy set aside for this decision (e.g. the overloaded ones). */
export function notIn(excluded: Uint8Array, code: string, why: string): HostFilter {
  return {
    name: 'strategy-exclusion',
    check: (_s, _v, h) => (excluded[h] ? code : null),
    explain: (s, _v, h) => `${s.hosts[h]!.id}: ${why}`,
  };
}

/**
 * CPU as CloudSim checks it: each vCPU's demand must fit one host core, and the VM's whole
 * current demand must fit the host's unallocated MIPS.
 */
export const cpuAvailable: HostFilter = {
  name: 'cpu',
  check: (s, v, h) => {
    // (the state's typed copies of vms[v].demand.cpuMips, .vcpus and hosts[h].mipsPerCore)
    const cpuMips = s.vmCpuMips[v]!;
    if (cpuMips / s.vmVcpus[v]! > s.hostMipsPerCore[h]!) return 'cpu-core-too-small';
    return s.availableMips(h) < cpuMips ? 'insufficient-cpu' : null;
  },
  explain: (s, v, h, code) => {
    const vm = s.vms[v]!;
    return code === 'cpu-core-too-small'
      ? `${s.hosts[h]!.id}: a core gives ${fmt(s.hosts[h]!.mipsPerCore)} MIPS, ${vm.id} needs ${fmt(vm.demand.cpuMips / vm.vcpus)} per vCPU`
      : `${s.hosts[h]!.id}: ${fmt(s.availableMips(h))} MIPS free, ${vm.id} needs ${fmt(vm.demand.cpuMips)}`;
  },
};

/** Memory reservations must fit the host's RAM (a hard limit: hosts do not overcommit RAM here). */
export const memoryFits: HostFilter = {
  name: 'memory',
  check: (s, v, h) => (s.memReservedMiB[h]! + s.vmMemReservedMiB[v]! > s.hostMemMiB[h]! ? 'insufficient-memory' : null),
  explain: (s, v, h) =>
    `${s.hosts[h]!.id}: ${fmt(s.hosts[h]!.memMiB - s.memReservedMiB[h]!)} MiB free, ${s.vms[v]!.id} holds ${fmt(s.vms[v]!.memReservedMiB)} MiB`,
};

/** Disk and network throughput stay under `fraction` of the host's capacity. */
export function ioFits(fraction: number): HostFilter {
  return {
    name: 'io',
    check: (s, v, h) => {
      // (the state's typed copies of the VM's demand and the host's capacities)
      const disk = s.vmDiskBps[v]!;
      if (disk > 0 && s.diskBytesPerSec[h]! + disk > fraction * s.hostDiskBps[h]!) return 'insufficient-disk-bandwidth';
      const net = s.vmNetBps[v]!;
      if (net > 0 && s.netBytesPerSec[h]! + net > fraction * s.hostNetBps[h]!) return 'insufficient-network-bandwidth';
      return null;
    },
    explain: (s, v, h, code) => {
      const vm = s.vms[v]!;
      const host = s.hosts[h]!;
      const [used, cap, need] = code === 'insufficient-disk-bandwidth'
        ? [s.diskBytesPerSec[h]!, host.diskBytesPerSec, vm.demand.diskBytesPerSec]
        : [s.netBytesPerSec[h]!, host.netBytesPerSec, vm.demand.netBytesPerSec];
      return `${host.id}: ${code.slice(13)} at ${fmt(used / 1e6, 1)} of ${fmt((fraction * cap) / 1e6, 1)} MB/s allowed, ${vm.id} adds ${fmt(need / 1e6, 1)}`;
    },
  };
}

/**
 * PABFD's guard: a non-empty host (allocated MIPS ≠ 0 in the tentative state) that the
 * detector would find overloaded after taking the VM is skipped.
 */
export function notOverloadedAfter(detector: OverloadDetector): HostFilter {
  return {
    name: `not-overloaded-after(${detector.name})`,
    expensive: true,
    check: (s, v, h) => {
      if (s.allocatedMips(h) === 0) return null;
      const m = s.mark();
      s.move(v, h);
      const over = detector.isOverloaded(s, h);
      s.rollback(m);
      return over ? 'would-overload' : null;
    },
    explain: (s, v, h) => {
      const m = s.mark();
      s.move(v, h);
      const a = detector.assess(s, h);
      s.rollback(m);
      return `${s.hosts[h]!.id} would be overloaded with ${s.vms[v]!.id}: ${a.by} ${fmt(a.value, 3)} vs ${fmt(a.threshold, 3)}`;
    },
  };
}

/** Hard affinity, anti-affinity and pinning rules. */
export function hardRules(rules: RuleIndex): HostFilter {
  return {
    name: 'rules',
    check: (s, v, h) => {
      const r = rules.violated(s, v, h, 'hard');
      return r === null ? null : r.kind === 'pin' ? 'pinned-elsewhere' : r.kind === 'antiAffinity' ? 'anti-affinity' : 'affinity';
    },
    explain: (s, v, h) => {
      const r = rules.violated(s, v, h, 'hard')!;
      return r.kind === 'pin'
        ? `${s.vms[v]!.id} is pinned to ${r.hosts.join(', ')} (rule ${r.id})`
        : r.kind === 'antiAffinity'
          ? `${s.hosts[h]!.id} already runs a VM that must stay apart from ${s.vms[v]!.id} (rule ${r.id})`
          : `${s.vms[v]!.id} must run with ${r.vms.filter((x) => x !== s.vms[v]!.id).join(', ')} (rule ${r.id})`;
    },
  };
}

/** The VM's own host is never a destination. */
export const notCurrentHost: HostFilter = {
  name: 'not-current-host',
  check: (s, v, h) => (s.hostOf[v] === h ? 'same-host' : null),
  explain: (s, v, h) => `${s.vms[v]!.id} already runs on ${s.hosts[h]!.id}`,
};
