/**
 * Telemetry freeze (issue 7, item 4): when what Tide sees is stale, missing or implausible, it
 * moves nothing automatically until the telemetry has been healthy again for a while.
 *
 * Two pure parts:
 * - `detectFreeze(snapshot, health, previous, options)`: from the snapshot and a small
 *   telemetry-health record the controller keeps between rounds (how many rounds each host has
 *   been silent, how much wall and monotonic time passed since the previous round), the freeze
 *   state after this round, with hysteresis: once frozen, it thaws only after
 *   `healthyRoundsToThaw` consecutive healthy rounds.
 * - `freezePlan(plan, snapshot, freeze)`: what the planner returns for a snapshot that carries
 *   a freeze (`ClusterSnapshot.freeze`). Every step the strategy would have taken becomes a
 *   `notMoved` entry (VMs) or a host verdict (power actions) with code 'frozen' and the
 *   reasons; only an operator-requested maintenance evacuation that touches no host named by
 *   the freeze still runs (see docs/tide-policy.md, "Freeze").
 *
 * Times are seconds (the snapshot's time base).
 */
import { hostCpuMips, type ClusterSnapshot, type SnapshotFreeze } from './model/types.js';
import type { HostVerdict, NotMoved, Plan, Step } from './plan/types.js';

/** Why telemetry is not trusted. Stable codes: tests, `tide status` and logs key on them. */
export type FreezeCode =
  /** A host's hypervisor did not answer `silentRounds` rounds in a row and its power state is not known off. */
  | 'host-silent'
  /** A measured value above what the hardware can deliver (or not a finite number ≥ 0). */
  | 'usage-implausible'
  /** Time between rounds went backwards, jumped, or disagrees with the monotonic clock. */
  | 'clock-jump'
  /** Telemetry is healthy again, but not yet for `healthyRoundsToThaw` rounds. */
  | 'recovering'
  /** The metrics source (e.g. Prometheus) has no sample of a host's or VM's usage series (src/drivers/metrics). */
  | 'metrics-missing'
  /** The metrics source's newest sample of a host's or VM's usage series is older than its threshold. */
  | 'metrics-stale';

export interface FreezeReason {
  readonly code: FreezeCode;
  /** One sentence with the numbers. */
  readonly reason: string;
  /** The host it concerns, when it concerns one. */
  readonly host?: string;
}

/**
 * What the controller remembers between rounds, measured around this round's collect.
 * Missing fields mean "not known" (first round, no monotonic clock): no check on them.
 */
export interface TelemetryHealth {
  /** Consecutive rounds (this one included) each host's hypervisor did not answer while its power state was not known off; 0 or absent: it answered. */
  readonly silentRounds: Readonly<Record<string, number>>;
  /** Clock (wall or virtual) time from the end of the previous round to this round's snapshot, s; null: no previous round. */
  readonly sinceLastRoundSec: number | null;
  /** The same span on a monotonic clock, s; null: no monotonic clock (virtual time is its own). */
  readonly monotonicSinceLastRoundSec: number | null;
  /** Usage series the metrics source could not provide this round, one entry per host and outcome (src/drivers/metrics gapFreezeReasons); absent: none. */
  readonly metricsGaps?: readonly { readonly code: 'metrics-missing' | 'metrics-stale'; readonly host: string; readonly reason: string }[];
}

/**
 * The defaults of FreezeOptions (the configuration's `freeze` section defaults to these;
 * src/config/schema.ts). clockSkewSec has none: it follows the interval (max(10, interval/10)).
 */
export const DEFAULT_FREEZE_OPTIONS = {
  silentRounds: 3,
  capacityTolerance: 0.05,
  maxGapIntervals: 3,
  healthyRoundsToThaw: 2,
} as const satisfies FreezeOptions;

export interface FreezeOptions {
  /** Rounds a host may stay silent before the cluster freezes (default 3). */
  readonly silentRounds?: number;
  /** Share above capacity a measurement may show before it counts as implausible (default 0.05: rounding, counter skew). */
  readonly capacityTolerance?: number;
  /** Rounds between rounds (interval multiples) after which time counts as jumped (default 3). */
  readonly maxGapIntervals?: number;
  /** Largest disagreement between clock and monotonic elapsed time, s (default max(10, interval/10)). */
  readonly clockSkewSec?: number;
  /** Consecutive healthy rounds needed to unfreeze (default 2). */
  readonly healthyRoundsToThaw?: number;
}

/** The freeze state after a round; `frozen` false with no reasons: moves allowed. */
export interface FreezeState {
  readonly frozen: boolean;
  /** When the current freeze began (snapshot time, s); null when not frozen. */
  readonly sinceSec: number | null;
  /** Why it is frozen now (this round's causes, or 'recovering' during the thaw); empty when not frozen. */
  readonly reasons: readonly FreezeReason[];
  /** Consecutive healthy rounds so far during a thaw (0 while a cause persists or when not frozen). */
  readonly healthyRounds: number;
}

export const NOT_FROZEN: FreezeState = { frozen: false, sinceSec: null, reasons: [], healthyRounds: 0 };

const fmt = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const bad = (x: number | undefined): boolean => x !== undefined && !(Number.isFinite(x) && x >= 0);

/** This round's causes, without hysteresis. */
export function freezeCauses(snapshot: ClusterSnapshot, health: TelemetryHealth, options: FreezeOptions = {}): FreezeReason[] {
  const silentLimit = options.silentRounds ?? DEFAULT_FREEZE_OPTIONS.silentRounds;
  const tol = options.capacityTolerance ?? DEFAULT_FREEZE_OPTIONS.capacityTolerance;
  const interval = snapshot.sampleIntervalSec;
  const reasons: FreezeReason[] = [];
  const hosts = new Map(snapshot.hosts.map((h) => [h.id, h]));

  for (const h of snapshot.hosts) {
    const n = health.silentRounds[h.id] ?? 0;
    // A host the operator has in maintenance may be rebooted on purpose; it is not telemetry failing.
    if (n >= silentLimit && h.powerState !== 'off' && !h.maintenance) {
      reasons.push({ code: 'host-silent', host: h.id, reason: `${h.id} has not answered for ${n} rounds (${fmt(n * interval)} s) and is not known to be off${h.stateReason ? `: ${h.stateReason}` : ''}` });
    }
    if (h.cpuUsedMips !== undefined) {
      const cap = hostCpuMips(h);
      if (bad(h.cpuUsedMips) || h.cpuUsedMips > cap * (1 + tol)) {
        reasons.push({ code: 'usage-implausible', host: h.id, reason: `${h.id} reports ${fmt(h.cpuUsedMips)} MIPS of CPU in use, capacity ${fmt(cap)} MIPS` });
      }
    }
  }

  const memOn = new Map<string, number>();
  for (const v of snapshot.vms) {
    const size = v.vcpus * v.mipsPerVcpu;
    const d = v.demand;
    if (bad(d.cpuMips) || bad(d.memMiB) || bad(d.diskBytesPerSec) || bad(d.netBytesPerSec)) {
      reasons.push({ code: 'usage-implausible', ...(v.host !== null ? { host: v.host } : {}), reason: `${v.id} reports a usage that is not a number ≥ 0 (cpu ${d.cpuMips} MIPS, memory ${d.memMiB} MiB, disk ${d.diskBytesPerSec} B/s, network ${d.netBytesPerSec} B/s)` });
      continue;
    }
    if (v.usage !== 'unknown' && d.cpuMips > size * (1 + tol)) {
      reasons.push({ code: 'usage-implausible', ...(v.host !== null ? { host: v.host } : {}), reason: `${v.id} reports ${fmt(d.cpuMips)} MIPS of CPU in use, more than its ${v.vcpus} vCPU(s) can run (${fmt(size)} MIPS)` });
    }
    if (v.host !== null) memOn.set(v.host, (memOn.get(v.host) ?? 0) + d.memMiB);
  }
  for (const [id, used] of memOn) {
    const h = hosts.get(id);
    if (h && used > h.memMiB * (1 + tol)) {
      reasons.push({ code: 'usage-implausible', host: id, reason: `the VMs on ${id} report ${fmt(used)} MiB of memory in use, the host has ${fmt(h.memMiB)} MiB` });
    }
  }

  // A host or VM without a fresh sample has unknown usage: no move may rest on it.
  for (const g of health.metricsGaps ?? []) reasons.push({ code: g.code, host: g.host, reason: g.reason });

  const since = health.sinceLastRoundSec;
  if (since !== null) {
    const maxGapIntervals = options.maxGapIntervals ?? DEFAULT_FREEZE_OPTIONS.maxGapIntervals;
    const maxGap = maxGapIntervals * interval;
    const mono = health.monotonicSinceLastRoundSec;
    const limit = options.clockSkewSec ?? Math.max(10, interval / 10);
    if (since < 0) {
      reasons.push({ code: 'clock-jump', reason: `the clock went back ${fmt(-since, 1)} s since the previous round` });
    } else if (mono !== null && Math.abs(since - mono) > limit) {
      // The clock was stepped (NTP, an operator): the monotonic clock says how much time really passed.
      reasons.push({ code: 'clock-jump', reason: `the clock moved ${fmt(since, 1)} s since the previous round but ${fmt(mono, 1)} s really passed (jump of ${fmt(since - mono, 1)} s > ${fmt(limit)} s)` });
    } else if (since > maxGap) {
      // Real time passed without rounds (process stopped, host suspended, virtual clock raced ahead).
      reasons.push({ code: 'clock-jump', reason: `${fmt(since)} s passed since the previous round ended, more than ${maxGapIntervals} intervals (${fmt(maxGap)} s): history and samples are stale` });
    }
  }
  return reasons;
}

/**
 * The freeze state after this round. Frozen as soon as a cause appears (since: this snapshot's
 * time, or the freeze's start if it already was frozen); while frozen, a round without causes
 * counts towards the thaw, and `healthyRoundsToThaw` of them in a row unfreeze.
 */
export function detectFreeze(snapshot: ClusterSnapshot, health: TelemetryHealth, previous: FreezeState = NOT_FROZEN, options: FreezeOptions = {}): FreezeState {
  const causes = freezeCauses(snapshot, health, options);
  if (causes.length > 0) return { frozen: true, sinceSec: previous.frozen ? previous.sinceSec : snapshot.time, reasons: causes, healthyRounds: 0 };
  if (!previous.frozen) return NOT_FROZEN;
  const need = options.healthyRoundsToThaw ?? DEFAULT_FREEZE_OPTIONS.healthyRoundsToThaw;
  const healthy = previous.healthyRounds + 1;
  if (healthy >= need) return NOT_FROZEN;
  const before = previous.reasons.filter((r) => r.code !== 'recovering').map((r) => r.reason);
  const after = before.length > 0 ? before.join('; ') : previous.reasons.map((r) => r.reason).join('; ');
  return {
    frozen: true, sinceSec: previous.sinceSec, healthyRounds: healthy,
    reasons: [{ code: 'recovering', reason: `telemetry healthy for ${healthy} of ${need} rounds after: ${after}` }],
  };
}

/**
 * A round in which no host answered, so there is no snapshot: the hosts' silent counts alone
 * decide. Such a round never counts towards a thaw (it saw nothing healthy).
 */
export function freezeWithoutSnapshot(silentRounds: Readonly<Record<string, number>>, nowSec: number, intervalSec: number, previous: FreezeState = NOT_FROZEN, options: FreezeOptions = {}): FreezeState {
  const limit = options.silentRounds ?? DEFAULT_FREEZE_OPTIONS.silentRounds;
  const reasons: FreezeReason[] = Object.entries(silentRounds)
    .filter(([, n]) => n >= limit)
    .map(([host, n]) => ({ code: 'host-silent', host, reason: `${host} has not answered for ${n} rounds (${fmt(n * intervalSec)} s) and is not known to be off (no host answered)` }));
  if (reasons.length === 0) return previous.frozen ? { ...previous, healthyRounds: 0 } : previous;
  return { frozen: true, sinceSec: previous.frozen ? previous.sinceSec : nowSec, reasons, healthyRounds: 0 };
}

/** The freeze as it travels in the snapshot: the pure planner needs only this. */
export function snapshotFreeze(state: FreezeState): SnapshotFreeze | undefined {
  return state.frozen ? { sinceSec: state.sinceSec ?? 0, reasons: state.reasons } : undefined;
}

/** "frozen since t=… : reason; reason" (one line, for notMoved, verdicts and logs). */
export function describeFreeze(freeze: SnapshotFreeze): string {
  return `telemetry freeze since t=${freeze.sinceSec}: ${freeze.reasons.map((r) => r.reason).join('; ')}`;
}

/**
 * The plan under a freeze. Kept: the migrations off hosts in maintenance (an operator asked
 * for them) that touch no host a freeze reason names, with the power-on steps they depend on;
 * a kept step that depends on any other step is dropped too. Everything else becomes a
 * `notMoved` entry (migrations, placements) or a host verdict (power actions) with code
 * 'frozen', and each host gets a verdict saying the cluster is frozen.
 */
export function freezePlan(plan: Plan, snapshot: ClusterSnapshot, freeze: SnapshotFreeze): Plan {
  const why = describeFreeze(freeze);
  const by = `${plan.policy}:freeze`;
  const named = new Set(freeze.reasons.flatMap((r) => (r.host !== undefined ? [r.host] : [])));
  const maintenance = new Set(snapshot.hosts.filter((h) => h.maintenance).map((h) => h.id));
  const byId = new Map(plan.steps.map((s) => [s.id, s]));
  const keep = new Set<number>();
  for (const s of plan.steps) {
    if (s.kind === 'migrate' && maintenance.has(s.from) && !named.has(s.from) && !named.has(s.to)) keep.add(s.id);
  }
  for (const s of plan.steps) {
    if (s.kind === 'powerOn' && !named.has(s.host) && plan.steps.some((m) => keep.has(m.id) && m.deps.includes(s.id))) keep.add(s.id);
  }
  // Fixed point: a kept step whose dependency is not kept cannot run.
  for (let changed = true; changed;) {
    changed = false;
    for (const id of [...keep]) {
      const s = byId.get(id)!;
      if (s.deps.some((d) => !keep.has(d))) {
        keep.delete(id);
        changed = true;
      }
    }
  }
  const steps: Step[] = plan.steps.filter((s) => keep.has(s.id));
  const notMoved: NotMoved[] = [...plan.notMoved];
  const powerHeld = new Map<string, string>();
  for (const s of plan.steps) {
    if (keep.has(s.id)) continue;
    if (s.kind === 'migrate') notMoved.push({ vm: s.vm, host: s.from, code: 'frozen', reason: `would move to ${s.to} (${s.reason}), but ${why}`, by });
    else if (s.kind === 'place') notMoved.push({ vm: s.vm, host: null, code: 'frozen', reason: `would be placed on ${s.to} (${s.reason}), but ${why}`, by });
    else powerHeld.set(s.host, `would ${s.kind === 'powerOn' ? 'power on' : 'power off'} (${s.reason}), but ${why}`);
  }
  // One verdict per host: the planner's class (what it saw), the freeze as the reason.
  const seen = new Map(plan.hosts.map((v) => [v.host, v]));
  const hosts: HostVerdict[] = snapshot.hosts.map((h) => {
    const v = seen.get(h.id);
    const cls = v?.class ?? (h.powerState === 'unknown' ? 'unknown' : h.maintenance ? 'maintenance' : h.powerState === 'off' ? 'off' : 'normal');
    return { host: h.id, class: cls, reason: `${powerHeld.get(h.id) ?? why}${v ? ` (planner: ${v.reason})` : ''}`, by };
  });
  return { ...plan, steps, hosts, notMoved };
}
