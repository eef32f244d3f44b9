/**
 * Utilisation from cumulative counters: each sample is compared with the previous one of the
 * same host / VM (by host and UUID, so a VM that migrated away and back restarts cleanly).
 * A rate needs two readings: without a usable previous one — the first sample of a host or
 * VM, a VM's first sample on a new host (its counters restart with the target's QEMU), a
 * counter that went backwards (VM restarted) — the rate is null ("unknown"), never 0, so a
 * caller cannot mistake a VM it has not measured for an idle one. Memory is a level and is
 * reported from the first sample.
 *
 *   VM CPU %   = Δ cpu.time (ns) / (Δt (ns) × vCPUs) × 100, clamped to 0..100
 *   host CPU % = Δ busy / Δ total of the host's CPU time counters × 100
 *   bytes/s    = Δ bytes / Δt (s)
 */
import type { HostUsage, VmUsage } from '../hypervisor.js';
import type { HostCounters, VmCounters } from './backend.js';

interface VmPrev { monoMs: number; c: VmCounters }
interface HostPrev { monoMs: number; busy: number; total: number }

const KiB_PER_MiB = 1024;

/** Bytes/s between two readings; null when there is no interval or the counter went backwards. */
function rate(now: number, before: number, dtS: number): number | null {
  if (!(dtS > 0) || now < before) return null;
  return Math.round((now - before) / dtS);
}

const clampPct = (x: number): number => Math.min(100, Math.max(0, x));
const round1 = (x: number): number => Math.round(x * 10) / 10;

export class UsageTracker {
  private readonly vms = new Map<string, VmPrev>();
  private readonly hosts = new Map<string, HostPrev>();

  /** Usage of one host and its VMs from `c`, relative to the previous call for that host. */
  update(host: string, c: HostCounters): { host: HostUsage; vms: VmUsage[] } {
    const hp = this.hosts.get(host);
    const cpuPct = hp && c.cpuTotalNs > hp.total && c.cpuBusyNs >= hp.busy
      ? round1(clampPct(((c.cpuBusyNs - hp.busy) / (c.cpuTotalNs - hp.total)) * 100))
      : null;
    this.hosts.set(host, { monoMs: c.monoMs, busy: c.cpuBusyNs, total: c.cpuTotalNs });
    const hostUsage: HostUsage = {
      host,
      atMs: c.atMs,
      cpuPct,
      memUsedMiB: Math.round((c.memTotalKiB - c.memAvailableKiB) / KiB_PER_MiB),
      memTotalMiB: Math.round(c.memTotalKiB / KiB_PER_MiB),
    };
    const seen = new Set<string>();
    const vms = c.vms.map((v): VmUsage => {
      const key = `${host}\0${v.uuid}`;
      seen.add(key);
      const prev = this.vms.get(key);
      this.vms.set(key, { monoMs: c.monoMs, c: v });
      const dtS = prev ? (c.monoMs - prev.monoMs) / 1000 : 0;
      const cpu = prev && dtS > 0 && v.vcpus > 0 && v.cpuTimeNs >= prev.c.cpuTimeNs
        ? round1(clampPct(((v.cpuTimeNs - prev.c.cpuTimeNs) / (dtS * 1e9 * v.vcpus)) * 100))
        : null;
      return {
        vm: v.name,
        host,
        atMs: c.atMs,
        cpuPct: cpu,
        memUsedMiB: Math.round(v.memUsedKiB / KiB_PER_MiB),
        diskReadBytesPerSec: prev ? rate(v.blockRdBytes, prev.c.blockRdBytes, dtS) : null,
        diskWriteBytesPerSec: prev ? rate(v.blockWrBytes, prev.c.blockWrBytes, dtS) : null,
        netRxBytesPerSec: prev ? rate(v.netRxBytes, prev.c.netRxBytes, dtS) : null,
        netTxBytesPerSec: prev ? rate(v.netTxBytes, prev.c.netTxBytes, dtS) : null,
      };
    });
    // forget VMs that left this host, so a later return starts from fresh counters
    for (const key of this.vms.keys()) if (key.startsWith(`${host}\0`) && !seen.has(key)) this.vms.delete(key);
    return { host: hostUsage, vms };
  }

  forgetHost(host: string): void {
    this.hosts.delete(host);
    for (const key of this.vms.keys()) if (key.startsWith(`${host}\0`)) this.vms.delete(key);
  }
}

/**
 * VM counters from libvirt's bulk domain stats (GET_ALL_DOMAIN_STATS / `virsh domstats
 * --raw`), given as a flat record of numbers. Memory: the guest's own view when the balloon
 * driver reports it (available − unused), else QEMU's resident set, else the balloon size.
 */
export function vmCountersFromStats(name: string, uuid: string, p: Record<string, number>): VmCounters {
  const sum = (prefix: string, count: string, field: string): number => {
    const n = p[count] ?? 0;
    let s = 0;
    for (let i = 0; i < n; i++) s += p[`${prefix}.${i}.${field}`] ?? 0;
    return s;
  };
  const avail = p['balloon.available'];
  const unused = p['balloon.unused'];
  const memUsedKiB = avail !== undefined && unused !== undefined && avail >= unused
    ? avail - unused
    : p['balloon.rss'] ?? p['balloon.current'] ?? 0;
  return {
    name,
    uuid,
    vcpus: p['vcpu.current'] ?? p['vcpu.maximum'] ?? 1,
    cpuTimeNs: p['cpu.time'] ?? 0,
    memUsedKiB,
    blockRdBytes: sum('block', 'block.count', 'rd.bytes'),
    blockWrBytes: sum('block', 'block.count', 'wr.bytes'),
    netRxBytes: sum('net', 'net.count', 'rx.bytes'),
    netTxBytes: sum('net', 'net.count', 'tx.bytes'),
  };
}

/** Host CPU counters (ns) from NODE_GET_CPU_STATS / `virsh nodecpustats` fields. */
export function hostCpuFromStats(s: Record<string, number>): { busy: number; total: number } {
  const busy = (s.user ?? 0) + (s.kernel ?? s.system ?? 0);
  return { busy, total: busy + (s.idle ?? 0) + (s.iowait ?? 0) };
}

/** Host memory (KiB) from NODE_GET_MEMORY_STATS / `virsh nodememstats` fields. */
export function hostMemFromStats(s: Record<string, number>): { totalKiB: number; availableKiB: number } {
  const total = s.total ?? 0;
  return { totalKiB: total, availableKiB: Math.min(total, (s.free ?? 0) + (s.buffers ?? 0) + (s.cached ?? 0)) };
}
