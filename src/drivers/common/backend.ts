/**
 * What the libvirt and virsh drivers have in common: both talk to one libvirt daemon per
 * configured host. A HostBackend is that per-host access (RPC connection or virsh processes);
 * `HostBackendDriver` (engine.ts) implements the whole HypervisorDriver contract on top of it
 * once, so migration modes, pre-flight checks, verification and recovery behave identically
 * for both transports.
 *
 * Every method rejects with a DriverError (never a raw LibvirtError or exec error). Numbers
 * use the units in their names; counters are cumulative since the VM (or host) started.
 */
import type { HostConfig } from '../../config/schema.js';
import type { VmState } from '../hypervisor.js';
import type { StoragePoolFacts, StorageVolumeFacts, VolumeRef } from './storage.js';

export interface HostFacts {
  uuid: string;
  hostname: string;
  cpuCores: number;
  cpuMhz: number;
  memKiB: number;
  cpuModel: string;
  arch: string;
}

export interface DomainFacts {
  name: string;
  uuid: string;
  state: VmState;
  /** VIR_DOMAIN_STATE and its reason, as libvirt reports them. */
  stateCode: number;
  reason: number;
  /** Running, paused or otherwise alive (has a QEMU process). */
  active: boolean;
  persistent: boolean;
  vcpus: number;
  /** Maximum memory (the definition's <memory>), KiB. */
  memKiB: number;
}

export interface VmCounters {
  name: string;
  uuid: string;
  vcpus: number;
  /** cpu.time: CPU time used by the whole QEMU process, ns. */
  cpuTimeNs: number;
  /** Guest's used memory (balloon available − unused), else QEMU's RSS, else current; KiB. */
  memUsedKiB: number;
  blockRdBytes: number;
  blockWrBytes: number;
  netRxBytes: number;
  netTxBytes: number;
}

export interface HostCounters {
  /** Collector's wall clock (ms since the epoch) and monotonic clock (ms) at the sample. */
  atMs: number;
  monoMs: number;
  /** Host CPU time counters, ns (busy = user + kernel; total = busy + idle + iowait). */
  cpuBusyNs: number;
  cpuTotalNs: number;
  memTotalKiB: number;
  /** free + buffers + cached: memory the host can hand out without swapping, KiB. */
  memAvailableKiB: number;
  /** Active VMs only. */
  vms: VmCounters[];
}

/** A job's statistics (virDomainGetJobStats): numeric fields by libvirt name. */
export interface JobFacts {
  /** VIR_DOMAIN_JOB_* (0 = none, 1 bounded, 2 unbounded, 3 completed, 4 failed, 5 cancelled). */
  type: number;
  /** data_total, data_processed, data_remaining, memory_iteration, downtime, operation… */
  fields: Record<string, number>;
}

export type CpuCompare = { result: 'compatible' | 'incompatible' | 'unknown'; reason: string };

/** One P2P migration call: VIR_MIGRATE_* flags and VIR_MIGRATE_PARAM_* parameters. */
export interface MigrateCall {
  dest: HostConfig;
  flags: number;
  /** migrate_uri, listen_address (strings); bandwidth, bandwidth.postcopy (MiB/s). */
  params: { migrate_uri?: string; listen_address?: string; bandwidth?: number; 'bandwidth.postcopy'?: number };
}

export interface MigrationWatch {
  /** migration-iteration event: pre-copy pass `n` (1-based) started. */
  iteration(n: number): void;
  /** job-completed event: the final job statistics. */
  completed(job: JobFacts): void;
}

export interface HostBackend {
  readonly config: HostConfig;
  /** Last known reachability (false after a failed connect or a lost connection). */
  readonly up: boolean;
  /** Connects if needed; rejects with TIDE_HOST_UNREACHABLE when the daemon cannot be reached. */
  ensure(): Promise<void>;
  hostFacts(): Promise<HostFacts>;
  /** Every domain defined or running on the host. */
  domains(): Promise<DomainFacts[]>;
  /** One domain, or null when the host does not know it. */
  domain(vm: string): Promise<DomainFacts | null>;
  counters(): Promise<HostCounters>;
  memory(): Promise<{ totalKiB: number; availableKiB: number }>;
  /** Live XML (the resolved CPU model) of an active domain, the definition otherwise. */
  domainXml(vm: string): Promise<string>;
  /** Current job (`completed`: the last completed one, kept for later readers); null when none. */
  jobStats(vm: string, completed?: boolean): Promise<JobFacts | null>;
  /** Can this host run a guest CPU defined by `cpuXml` (virConnectCompareHypervisorCPU)? */
  compareCpu(cpuXml: string, o: { virttype: string | null; arch: string | null; machine: string | null }): Promise<CpuCompare>;
  /** Managed peer-to-peer migration; resolves when libvirt reports it finished. */
  migrate(vm: string, call: MigrateCall): Promise<void>;
  startPostCopy(vm: string): Promise<void>;
  setMaxDowntime(vm: string, ms: number): Promise<void>;
  abortJob(vm: string): Promise<void>;
  /** Push notifications during a migration (RPC only); absent: the engine polls job stats. */
  watchMigration?(vm: string, w: MigrationWatch): Promise<() => Promise<void>>;
  /**
   * Storage pre-flight (storage.ts). Optional: a backend without them makes the storage check
   * report "cannot tell". Every storage pool of the host (active or not) with its type,
   * target path and network source.
   */
  storagePools?(): Promise<StoragePoolFacts[]>;
  /**
   * One volume, by pool and name or by path; null when libvirt has no such volume (or pool).
   * `refreshPool`: when the volume is not known, rescan that pool and look again (a file created
   * since the pool's last refresh is not a volume until then).
   */
  storageVolume?(ref: VolumeRef, o?: { refreshPool?: string }): Promise<StorageVolumeFacts | null>;
  start(vm: string): Promise<void>;
  shutdown(vm: string): Promise<void>;
  destroy(vm: string): Promise<void>;
  /**
   * Removes the persistent definition of `vm` (virDomainUndefineFlags, flags 0): an inactive
   * domain disappears; an active one becomes transient. Recovery uses it only on a shut-off
   * stale copy whose VM runs persistently on another host.
   */
  undefine(vm: string): Promise<void>;
  suspend(vm: string): Promise<void>;
  resume(vm: string): Promise<void>;
  close(): Promise<void>;
}

/** VIR_DOMAIN_STATE number → VmState. */
export function vmStateOf(code: number): VmState {
  switch (code) {
    case 1: case 2: return 'running'; // RUNNING, BLOCKED (running, waiting for I/O)
    case 3: return 'paused';
    case 4: return 'running'; // SHUTDOWN: being shut down, still alive
    case 5: return 'shutoff';
    case 6: return 'crashed';
    case 7: return 'suspended'; // PMSUSPENDED
    default: return 'other';
  }
}

/** Does a domain in this VIR_DOMAIN_STATE have a live QEMU? */
export function isActiveState(code: number): boolean {
  return code === 1 || code === 2 || code === 3 || code === 4 || code === 7;
}

/** VIR_DOMAIN_JOB_OPERATION values found in job stats' `operation` field. */
export const JOB_OPERATION = { MIGRATION_IN: 4, MIGRATION_OUT: 5 } as const;

/** The IP literal of a tcp://ADDR[:PORT] migration address, for listen_address; else null. */
export function listenAddressOf(migrationAddress: string | undefined): string | null {
  if (!migrationAddress) return null;
  try {
    const u = new URL(migrationAddress);
    const h = u.hostname.replace(/^\[(.*)\]$/, '$1');
    return /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || h.includes(':') ? h : null;
  } catch {
    return null;
  }
}
