/**
 * Tide's own domain types. Units are in the names: MIPS for CPU work rate (for real hosts
 * 1 MIPS = 1 MHz of one core), MiB for memory, bytes/s for I/O, seconds for time, watts.
 * Everything here is plain data: snapshots are built by drivers or the simulator and fed to
 * the pure planner.
 */

export type HostId = string;
export type VmId = string;

/**
 * on: serving; off: powered down; standby: suspended to RAM (fast wake); waking: powering on;
 * unknown: did not answer, so Tide cannot tell (it may be running VMs it cannot see). The
 * planner fails closed on unknown: never a target, never powered on or off, never "empty",
 * nothing moved from it; the host is left out of the plan with a verdict saying why.
 */
export type PowerState = 'on' | 'off' | 'standby' | 'waking' | 'unknown';

/**
 * Host power draw. `wattsAtLoad` gives the draw at 0 %, 10 %, …, 100 % CPU utilisation (a
 * SPECpower-style table, 11 points), linearly interpolated in between.
 */
export interface PowerModel {
  readonly wattsAtLoad: readonly number[];
  /** Draw while off or in standby (BMC, standby rail), W. */
  readonly offW: number;
  /** Time from power-on until the hypervisor accepts VMs, s. */
  readonly bootSec: number;
  /** Average draw while booting, W (energy of a wake = bootSec × bootW). */
  readonly bootW: number;
}

export interface Host {
  readonly id: HostId;
  readonly cpuCores: number;
  /** Capacity of one core (a VM's vCPU can never get more than this). */
  readonly mipsPerCore: number;
  readonly memMiB: number;
  readonly diskBytesPerSec: number;
  readonly netBytesPerSec: number;
  readonly power: PowerModel;
  readonly powerState: PowerState;
  /** In maintenance: no VM may be placed here; its VMs must be evacuated. */
  readonly maintenance: boolean;
  /** Excluded: Tide must not move VMs to or from it (but counts its load). */
  readonly excluded: boolean;
  readonly tags: readonly string[];
  /**
   * Measured CPU use at snapshot time, MIPS (what the host really delivers, including
   * capping). Undefined: the planner uses the VMs' demand.
   */
  readonly cpuUsedMips?: number;
  /** When the host last came on (powered on, or became active), s; undefined: long ago. */
  readonly onSinceSec?: number;
  /**
   * When the host last went off (powered off or went to standby), s; undefined: not known (no
   * DPM hysteresis on it). The controller/simulator must fill it for tide's `minOffSec`.
   */
  readonly offSinceSec?: number;
  /** Why the host's state is what it is, when that is not plain observation (e.g. why it is 'unknown'). */
  readonly stateReason?: string;
  /**
   * Set when the host must not be powered off, with why (its DPM wake-path test or a real wake
   * failed: the executor would refuse with TIDE_POWER_REFUSED). The planner never proposes
   * powering it off; it stays on (and may serve as a spare). Filled by the controller.
   */
  readonly powerOffRefused?: string;
  /**
   * Set when the host is off and must not be woken, with why: a wake of it failed (or its
   * wake-path test did) recently, and retrying would cost boot timeouts every round. The
   * planner never proposes to power it on (no placement filter takes it) and says so in its
   * host verdict and in the why-not of a VM that needed it. Filled by the controller until a
   * passing `tide wake-test` or the retry window ends (docs/drivers.md, DPM safety rules).
   */
  readonly wakeRefused?: string;
}

/**
 * How current a VM's `demand` is. fresh: measured this round. stale: not measured this round;
 * demand is its last measured value (`usageAgeSec` old), and its history has no new sample.
 * unknown: never measured (first round after Tide started, or history lost): demand CPU is
 * the VM's full size (pessimistic, for capacity checks) and the planner neither judges its
 * host overloaded nor consolidates it or its host on that guess.
 */
export type UsageQuality = 'fresh' | 'stale' | 'unknown';

export interface VmDemand {
  /** CPU work the VM asks for now (uncapped), MIPS. */
  readonly cpuMips: number;
  /** Memory the guest really uses, MiB (≤ memMiB). */
  readonly memMiB: number;
  readonly diskBytesPerSec: number;
  readonly netBytesPerSec: number;
}

export interface Vm {
  readonly id: VmId;
  /** Host it runs on; null = not placed (to be placed by the planner). */
  readonly host: HostId | null;
  readonly vcpus: number;
  /** Most one vCPU can use (its configured speed), MIPS. */
  readonly mipsPerVcpu: number;
  /** Configured memory, MiB: what a migration has to copy. */
  readonly memMiB: number;
  /**
   * Memory the VM holds on its host, MiB. Normally memMiB; CloudSim-compatible accounting sets
   * 0 because CloudSim stops reserving RAM after t = 0 (docs/simulator.md, CloudSim's quirks).
   */
  readonly memReservedMiB: number;
  readonly demand: VmDemand;
  /**
   * CPU demand samples, MIPS, oldest → newest, `snapshot.sampleIntervalSec` apart; the last
   * entry is the current demand. May be shorter than the detectors' windows.
   */
  readonly cpuHistoryMips: ArrayLike<number>;
  /** Memory really used, disk and network throughput, same spacing and order, when known. */
  readonly memHistoryMiB?: ArrayLike<number>;
  readonly diskHistoryBytesPerSec?: ArrayLike<number>;
  readonly netHistoryBytesPerSec?: ArrayLike<number>;
  /** Measured page dirty rate, bytes/s (from past migrations or job stats), if known. */
  readonly dirtyBytesPerSec?: number;
  readonly tags: readonly string[];
  /** Time of the last completed migration, s since epoch, if any. */
  readonly lastMigratedAt?: number;
  /**
   * Migrations of this VM that started in the last 24 h (rolling), for tide's
   * `maxMovesPerVmPerDay`. The controller/simulator must fill it; undefined: the planner only
   * knows `lastMigratedAt` (at least one move when it lies within 24 h).
   */
  readonly movesToday?: number;
  /** False: the planner never moves this VM (pinned in place, or excluded by the operator). */
  readonly migratable: boolean;
  /** How current `demand` is; absent = 'fresh' (simulator, tests). */
  readonly usage?: UsageQuality;
  /** Age of the newest measurement behind `demand`, s (for 'stale'). */
  readonly usageAgeSec?: number;
}

export type RuleStrength = 'hard' | 'soft';

export type Rule =
  /** VMs that must (hard) / should (soft) run on the same host. */
  | { readonly kind: 'affinity'; readonly id: string; readonly vms: readonly VmId[]; readonly strength: RuleStrength }
  /** VMs that must / should run on pairwise different hosts. */
  | { readonly kind: 'antiAffinity'; readonly id: string; readonly vms: readonly VmId[]; readonly strength: RuleStrength }
  /** VM that must / should run on one of these hosts. */
  | { readonly kind: 'pin'; readonly id: string; readonly vm: VmId; readonly hosts: readonly HostId[]; readonly strength: RuleStrength };

export interface ClusterSnapshot {
  /** Time of the snapshot, s since the epoch (or since the start of a simulation). */
  readonly time: number;
  /** Spacing of the VMs' cpuHistoryMips samples, s. */
  readonly sampleIntervalSec: number;
  readonly hosts: readonly Host[];
  /**
   * VMs. Their order matters: VMs on one host appear in the host's own list order (tie-breaks
   * of the selection policies follow it, as CloudSim's do).
   */
  readonly vms: readonly Vm[];
  readonly rules: readonly Rule[];
  /**
   * The schedule window in force (src/core/schedule.ts activeWindow), with `untilSec` in the
   * same seconds as `time`. Absent: no schedule, the strategy's own arguments decide.
   */
  readonly window?: SnapshotWindow;
  /**
   * Migrations the cluster started in the last hour (rolling), for tide's `maxMovesPerHour`.
   * The controller/simulator must fill it; undefined: the planner counts the VMs whose
   * `lastMigratedAt` lies within the last hour (exact when no VM moves twice in an hour).
   */
  readonly movesLastHour?: number;
  /**
   * Demand expected over the next hours, learned from recorded history (src/core/predict/):
   * tide keeps or wakes hosts ahead of a predicted ramp. Absent: no prediction, the planner
   * looks at the recent samples only.
   */
  readonly forecast?: DemandForecast;
  /**
   * Telemetry freeze in force (src/core/freeze.ts): the controller sets it when what it sees is
   * stale, missing or implausible. Present: the planner proposes no automatic step; every move
   * it would have made is listed in `notMoved` with code 'frozen' (see docs/tide-policy.md).
   */
  readonly freeze?: SnapshotFreeze;
}

/** A telemetry freeze as the planner sees it (src/core/freeze.ts FreezeState, when frozen). */
export interface SnapshotFreeze {
  /** When the freeze began, s (same base as `time`). */
  readonly sinceSec: number;
  /** Why, with stable codes ('host-silent', 'usage-implausible', 'clock-jump', 'recovering'). */
  readonly reasons: readonly { readonly code: string; readonly reason: string; readonly host?: string }[];
}

/** consolidate: pack and power off; balance: spread, never power off; blackout: no moves at all. */
export interface SnapshotWindow {
  readonly kind: 'consolidate' | 'balance' | 'blackout';
  readonly name: string;
  /** When the window ends, s (null: never). */
  readonly untilSec: number | null;
}

export function hostCpuMips(h: Pick<Host, 'cpuCores' | 'mipsPerCore'>): number {
  return h.cpuCores * h.mipsPerCore;
}

/**
 * Predicted demand at future instants (same seconds as `ClusterSnapshot.time`), from a learned
 * time-of-week profile (src/core/predict/profile.ts). `cpuMips`/`memMiB`: expected;
 * `cpuMipsHigh`: a high quantile of what was seen in that time slot. Points in time order.
 */
export interface DemandForecast {
  /** Quantile that the `…High` values estimate (0..1). */
  readonly quantile: number;
  /** Cluster totals at each point. */
  readonly points: readonly ForecastPoint[];
  /**
   * Per-VM CPU forecasts at the same instants as `points` (index-aligned), for the VMs with
   * enough history; a VM missing here has no prediction.
   */
  readonly vms?: Readonly<Record<VmId, VmForecast>>;
}

export interface ForecastPoint {
  readonly atSec: number;
  readonly cpuMips: number;
  readonly cpuMipsHigh: number;
  readonly memMiB: number;
}

/** One VM's expected and high-quantile CPU demand at the forecast's points, MIPS. */
export interface VmForecast {
  readonly cpuMips: readonly number[];
  readonly cpuMipsHigh: readonly number[];
}
