/**
 * The hypervisor driver: the one narrow interface through which Tide sees and changes VMs.
 * Implementations: fake (tests), sim (the simulator's datacenter), libvirt (own RPC client),
 * virsh (fallback). All of them run the same contract suite (test/drivers/contract.ts).
 *
 * Names, not UUIDs, identify hosts and VMs across the interface: host names come from the
 * configuration, VM names are libvirt domain names (unique in a cluster Tide manages).
 */

export interface HostInfo {
  name: string;
  /** libvirt host UUID (sysinfo/host_uuid); distinct per host, used to refuse "migrate to self". */
  uuid: string;
  /** Hostname the hypervisor reports. */
  hostname: string;
  cpuCores: number;
  cpuMhz: number;
  memMiB: number;
  /** CPU model name from capabilities, for the compatibility check. */
  cpuModel: string;
  /** False when the host's hypervisor does not answer (powered off, unreachable). */
  up: boolean;
  /** When `up` is false: why the hypervisor could not be asked (the transport's error). */
  reason?: string;
}

export type VmState = 'running' | 'paused' | 'shutoff' | 'crashed' | 'suspended' | 'other';

export interface VmInfo {
  name: string;
  uuid: string;
  host: string;
  state: VmState;
  vcpus: number;
  memMiB: number;
  persistent: boolean;
}

/**
 * Host utilisation over the interval since the previous sample() call. Rates need two
 * counter readings: null means "not known yet" (the first reading of this host), never 0.
 */
export interface HostUsage {
  host: string;
  /** Milliseconds since the epoch (wall clock of the collector) when the sample was taken. */
  atMs: number;
  /** Share of all cores busy, 0..100; null: no previous reading to compare with. */
  cpuPct: number | null;
  memUsedMiB: number;
  memTotalMiB: number;
}

/**
 * VM utilisation over the interval since the previous sample() call. CPU and I/O rates are
 * deltas of cumulative counters: they are null (unknown, never 0) when there is no previous
 * reading of this VM on this host — its first sample, and the first one after it migrated
 * (counters restart with the target's QEMU). Memory is a level, known from the first sample.
 */
export interface VmUsage {
  vm: string;
  host: string;
  atMs: number;
  /** Share of the VM's vCPUs busy, 0..100 (from cpu.time deltas); null: not known yet. */
  cpuPct: number | null;
  /** Memory the guest really uses (balloon rss / current), MiB. */
  memUsedMiB: number;
  /** Bytes/s; null: not known yet (as cpuPct). */
  diskReadBytesPerSec: number | null;
  diskWriteBytesPerSec: number | null;
  netRxBytesPerSec: number | null;
  netTxBytesPerSec: number | null;
}

export type MigrationMode = 'live' | 'offline' | 'suspend';

export interface MigrateOptions {
  mode: MigrationMode;
  /** Throttle the guest's vCPUs when pre-copy does not converge (live only). */
  autoConverge?: boolean;
  /** Switch to post-copy after this many pre-copy iterations (live only; 0/undefined = never). */
  postCopyAfterIterations?: number;
  bandwidthMiBps?: number;
  maxDowntimeMs?: number;
  /** Copy non-shared disks to the target (libvirt copy-storage-all). */
  copyStorage?: boolean;
  /** Accept storage libvirt considers unsafe for migration. */
  unsafe?: boolean;
  /** Abort after this long (seconds); undefined = no limit. Callers pass the configured default. */
  timeoutSec?: number;
  /**
   * Offline mode: seconds to wait for the guest to shut down after the ACPI request
   * (default 120). On expiry the migration fails and the VM stays where it is, unless
   * `forceOff`, which then powers it off hard (like pulling the plug).
   */
  shutdownTimeoutSec?: number;
  forceOff?: boolean;
  onProgress?: (p: MigrationProgress) => void;
}

export interface MigrationProgress {
  vm: string;
  phase: 'preparing' | 'precopy' | 'postcopy' | 'completing';
  iteration: number;
  dataTotalBytes: number;
  dataProcessedBytes: number;
  dataRemainingBytes: number;
  elapsedMs: number;
}

export interface MigrationResult {
  vm: string;
  from: string;
  to: string;
  mode: MigrationMode;
  /** Wall time of the whole operation as Tide measured it. */
  totalMs: number;
  /** Downtime libvirt reports for the switch-over (live), or the time the VM was stopped/suspended. */
  downtimeMs: number | null;
  /** Bytes transferred (memory + disk), when the hypervisor reports it. */
  bytes: number | null;
  /** Pre-copy memory passes (live/suspend), when the hypervisor reports it. */
  iterations: number | null;
  /** True when the migration switched to post-copy. */
  postCopy: boolean;
}

/** One pre-flight check result: `ok: false` results carry a stable code and a reason. */
export interface PreflightCheck {
  check: 'vm-exists' | 'target-exists' | 'target-reachable' | 'not-same-host' | 'cpu-compatible' | 'storage' | 'memory' | 'name-clash' | 'vm-state';
  ok: boolean;
  code?: string;
  reason: string;
  /** Passed without proof either way (e.g. storage: cannot tell whether it is shared); the reason says who decides. */
  verdict?: 'unknown';
}

/**
 * Contract of every implementation (checked by test/drivers/contract.ts):
 * - Every failure is a DriverError (src/drivers/errors.ts) with a stable code.
 * - `migrate` runs `preflight` first and fails fast with the first failing check's code
 *   (vm-exists → TIDE_NO_SUCH_VM, target-exists → TIDE_NO_SUCH_HOST, target-reachable →
 *   TIDE_HOST_UNREACHABLE, anything else → TIDE_PREFLIGHT_FAILED; `detail.checks` has them all).
 * - An aborted signal rejects with TIDE_ABORTED, an expired `timeoutSec` with TIDE_TIMEOUT.
 * - After any failure the VM runs exactly once, on its source, in the state it had (nothing is
 *   left paused), unless the error says otherwise (e.g. a failed post-copy). Never twice: when
 *   the target cannot be asked whether it runs the VM, a paused source stays paused and
 *   `migrate` rejects with TIDE_MIGRATION_UNKNOWN (`detail.vmOn` null, naming both hosts);
 *   `reconcile` finishes it once the target answers (docs/drivers.md, "Recovery").
 */
export interface HypervisorDriver {
  /** 'fake' | 'sim' | 'libvirt' | 'virsh' */
  readonly kind: string;
  listHosts(): Promise<HostInfo[]>;
  /** Every VM on every reachable host (running or defined). Unreachable hosts are left out: see listHosts(). */
  listVms(): Promise<VmInfo[]>;
  /**
   * Every domain `host`'s hypervisor reports right now, in any state (running, paused, shut
   * off), asked of that host alone. Rejects with TIDE_HOST_UNREACHABLE when the host cannot be
   * asked (never an empty list for a host that did not answer), TIDE_NO_SUCH_HOST for an
   * unknown name. The power-off guard rests on this.
   */
  hostDomains(host: string): Promise<VmInfo[]>;
  /**
   * Utilisation since the previous call, of every reachable host and its active VMs (an
   * unreachable host and its VMs are absent: unknown). Rates without a previous reading (the
   * first call; a VM's first call on a new host) are null, never 0: see HostUsage, VmUsage.
   */
  sample(): Promise<{ hosts: HostUsage[]; vms: VmUsage[] }>;
  /** Checks that must pass before a migration; never changes anything. */
  preflight(vm: string, to: string, opts: MigrateOptions): Promise<PreflightCheck[]>;
  /**
   * Moves `vm` to host `to`. Resolves once the VM runs on `to` and no longer on its source;
   * rejects with a DriverError otherwise, leaving the VM running on the source (or, with
   * TIDE_MIGRATION_UNKNOWN, paused there: see the contract above).
   */
  migrate(vm: string, to: string, opts: MigrateOptions, signal?: AbortSignal): Promise<MigrationResult>;
  /** Starts a defined, shut-off VM on the host that holds its definition. */
  start(vm: string): Promise<void>;
  /**
   * Graceful shutdown: resolves once the guest accepted the request (it stops by itself,
   * or never, if it ignores ACPI). `force`: hard power-off; resolves once the VM is off.
   */
  stop(vm: string, opts?: { force?: boolean }): Promise<void>;
  suspend(vm: string): Promise<void>;
  resume(vm: string): Promise<void>;
  /**
   * Finishes a migration that ended with TIDE_MIGRATION_UNKNOWN (libvirt and virsh drivers):
   * the same decision table as the recovery after a failure. `from`/`to` default to the
   * migration this driver reported; `settleMs` (default 0) lets running jobs settle.
   * `wasState`: the VM's state before the migration, when the caller knows it and the driver
   * has no record of its own (a new process after a crash: the journal's plan only moves
   * running VMs); null/absent: unknown, a paused source is resumed only when libvirt paused it.
   */
  reconcile?(vm: string, o?: { from?: string; to?: string; settleMs?: number; wasState?: VmState | null }): Promise<ReconcileResult>;
  close(): Promise<void>;
}

/**
 * Where a VM is after recovery or reconcile: on the source or target alone; unknown (a host
 * did not answer or a job did not end: nothing was done); both (ran on both; the source copy
 * was paused); split (a failed post-copy: memory on both hosts); none (active on neither).
 */
export type RecoveryOutcome = 'source' | 'target' | 'unknown' | 'both' | 'split' | 'none';

/** What HypervisorDriver.reconcile reports; an outcome is a value, never an exception. */
export interface ReconcileResult {
  vm: string;
  from: string;
  to: string;
  outcome: RecoveryOutcome;
  /** What was done, in order (e.g. "destroyed the paused copy of vm1 on lab-b"); may be empty. */
  actions: string[];
  reason: string;
  /** The one host the VM is on now; null when unknown or not exactly one. */
  vmOn: string | null;
}
