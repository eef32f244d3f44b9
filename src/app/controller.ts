/**
 * The control loop shared by the daemon, the CLI and the demo: collect → snapshot → plan →
 * (depending on the mode) record, wait for approval, or execute. Everything it touches comes
 * in as dependencies (drivers, clock, store), so the same loop runs against real hosts or the
 * simulator's datacenter.
 */
import type { Clock } from '../core/clock.js';
import { detectFreeze, freezeWithoutSnapshot, NOT_FROZEN, snapshotFreeze, type FreezeOptions, type FreezeState } from '../core/freeze.js';
import { linearPower } from '../core/model/power.js';
import type { ClusterSnapshot, Host, PowerModel, PowerState, Rule, UsageQuality, Vm } from '../core/model/types.js';
import { plan as makePlan, type CompiledPolicy } from '../core/policy.js';
import type { Plan } from '../core/plan/types.js';
import { activeWindow, SIM_MONDAY_EPOCH_SEC, type Schedule } from '../core/schedule.js';
import { DemandRecorder, type RecorderOptions, type VmDemandSample } from '../core/predict/forecast.js';
import { seedRecorderFromStoreAsync, type SeedStats } from './forecast-seed.js';
import { wakeRefusal } from './wake-refused.js';
import { DriverError } from '../drivers/errors.js';
import type { HypervisorDriver, MigrateOptions } from '../drivers/hypervisor.js';
import type { PowerDriver } from '../drivers/power.js';
import { DriverPollingSource, gapFreezeReasons, type MetricsSource } from '../drivers/metrics/source.js';
import { runPlan, wakePathRefusal, type ExecutorLimits, type ExecutorObserver, type PlanRun } from '../executor/executor.js';
import { checkFence, currentHolder, withClusterLock } from '../store/lock.js';
import type { LockHolder, Store } from '../store/store.js';
import { journalPowerEnd, journalPowerStart, journalRound } from './journal.js';
import { NO_BLOCKS, blocksOf, guardPlan, reconcileUnknown, recordUnknownStep, type Blocks, type ReconcileReport } from './reconcile.js';

export type Mode = 'recommend' | 'approve' | 'automatic';

/** What Tide knows about a host beyond what the hypervisor reports. */
export interface HostSettings {
  readonly power?: PowerModel;
  readonly maintenance?: boolean;
  readonly excluded?: boolean;
  readonly tags?: readonly string[];
}

export interface ControllerDeps {
  readonly hypervisor: HypervisorDriver;
  readonly power?: PowerDriver;
  readonly clock: Clock;
  readonly store?: Store;
  readonly policy: CompiledPolicy;
  readonly mode: Mode;
  readonly limits: ExecutorLimits;
  readonly migrate: Omit<MigrateOptions, 'onProgress'>;
  /** Seconds between rounds (also the spacing of the history samples). */
  readonly intervalSec: number;
  readonly hosts?: Readonly<Record<string, HostSettings>>;
  /** VMs the operator pinned in place (never moved automatically). */
  readonly pinnedVms?: readonly string[];
  readonly rules?: readonly Rule[];
  /** Consolidate / balance / blackout windows; the window in force goes into each snapshot. */
  readonly schedule?: Schedule;
  /**
   * Added to the clock's seconds to get the epoch seconds the schedule is read at (default 0;
   * a simulation whose t = 0 is a Monday midnight passes SIM_MONDAY_EPOCH_SEC); the window's
   * untilSec comes back in clock seconds.
   */
  readonly scheduleOffsetSec?: number;
  readonly bootTimeoutSec?: number;
  readonly observer?: ControllerObserver;
  /** Who this controller is for the cluster lock (default: this process, as 'tide controller'). */
  readonly lockHolder?: LockHolder;
  /** Cluster lock TTL, ms (default: src/store/lock.ts DEFAULT_LOCK_TTL_MS). */
  readonly lockTtlMs?: number;
  /** Graceful stop (the daemon's SIGTERM): no new step starts once aborted; see ExecutorDeps.drain. */
  readonly drain?: AbortSignal;
  /** Telemetry-freeze thresholds (src/core/freeze.ts FreezeOptions; defaults: 3 silent rounds, 5 %, 3 intervals, 2 healthy rounds to thaw). */
  readonly freeze?: FreezeOptions;
  /**
   * Predictive DPM (src/core/predict): every round's demand is recorded into learned
   * time-of-week profiles and the forecast of the next hours goes into the snapshot
   * (`ClusterSnapshot.forecast`). Time of week is read at clock + scheduleOffsetSec (epoch s,
   * UTC). Default on; false: no forecast.
   */
  readonly forecast?: false | RecorderOptions;
  /**
   * After a failed wake (TIDE_WAKE_TIMEOUT or a failed wake-path test, recorded in the store),
   * an off host is not proposed for power-on for this long, s, unless `tide wake-test HOST`
   * passes first (Host.wakeRefused; src/app/wake-refused.ts; default 6 h).
   */
  readonly wakeRetrySec?: number;
  /**
   * Where host and VM utilisation is read (src/drivers/metrics; configuration `metrics`).
   * Default: polling the hypervisor driver (its sample()). A source whose gaps freeze
   * (Prometheus) turns every missing or stale series into a freeze reason (metrics-missing,
   * metrics-stale) naming the host; its VMs' usage is unknown, never 0.
   */
  readonly metrics?: MetricsSource;
  /** Progress of the forecast's restart seed (a pino Logger fits; the daemon passes its own). */
  readonly log?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  /** How the restart seed waits between store pages (default one event-loop turn; tests hold it). */
  readonly seedPause?: () => Promise<void>;
}

export interface ControllerObserver extends ExecutorObserver {
  /** planMs: wall time of the planner call (plan + guard), ms, from performance.now (the metrics' planner latency). */
  onPlan?(plan: Plan, at: number, planId: number | null, planMs?: number): void;
  onRunEnd?(run: PlanRun, at: number): void;
  /** A round threw (Controller.run recorded it and goes on at the next interval). */
  onRoundError?(error: { code: string; message: string }, at: number): void;
  /** The start of a round reconciled the store's unknown migrations (only when there were any). */
  onReconcile?(reports: readonly ReconcileReport[], at: number): void;
  /** A round finished (after its plan ran, in automatic mode): what it saw, planned and did. */
  onTick?(result: TickResult): void;
  /** The telemetry freeze began, changed its reasons, or ended (see TickResult.freeze). */
  onFreeze?(freeze: TickFreeze, at: number): void;
}

/**
 * The telemetry freeze after a round (src/core/freeze.ts). While frozen the round's plan has no
 * automatic step (every would-be move is in plan.notMoved with code 'frozen'), and nothing runs.
 */
export interface TickFreeze extends FreezeState {
  /** When the freeze began, on the controller's clock, ms; null: not frozen. */
  readonly sinceMs: number | null;
  /** The reasons in one line ('; '-joined), null when not frozen: `tide status` shows "frozen since sinceMs because reason". */
  readonly reason: string | null;
}

export interface TickResult {
  readonly at: number;
  readonly snapshot: ClusterSnapshot;
  readonly plan: Plan;
  readonly planId: number | null;
  readonly run: PlanRun | null;
  /** This round's reconcile of unknown migrations (empty: none was open). */
  readonly reconciled: readonly ReconcileReport[];
  /** The telemetry freeze after this round (frozen: false when moves are allowed). */
  readonly freeze: TickFreeze;
  /**
   * Wall time of this round's stages, ms (performance.now; `tide bench loop` reports them):
   * collect (drivers + snapshot + freeze), plan (planner + guard), journal (plan, decision and
   * metrics rows), execute (the executor with its per-step journal writes; 0 when nothing ran).
   */
  readonly stageMs?: { readonly collectMs: number; readonly planMs: number; readonly journalMs: number; readonly executeMs: number };
  /** The process's CPU time (user + system, all threads) in the same stages, ms: on a shared machine wall times also count waiting for a core. */
  readonly stageCpuMs?: { readonly collectMs: number; readonly planMs: number; readonly journalMs: number; readonly executeMs: number };
}

/** This process's CPU time so far (user + system), ms. */
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** A host's power model when the configuration gives none: a typical 2-socket server. */
const DEFAULT_POWER = linearPower(120, 320, { offW: 10, bootSec: 240, bootW: 180 });
const HISTORY = 30;
/** Rounds a VM's last measured usage may stand in for a missing sample before it counts as unknown. */
const STALE_ROUNDS = 5;
const DAY_SEC = 86_400;
const HOUR_SEC = 3600;
/** Migrations read back from the store for the per-VM and per-hour counts (the last 24 h fit easily). */
const MIGRATIONS_READ = 10_000;

/** What makes a freeze "change" for observer.onFreeze: frozen or not, and which causes on which hosts. */
function freezeKey(st: FreezeState): string {
  return `${st.frozen}|${st.reasons.map((r) => `${r.code}@${r.host ?? ''}`).join(',')}`;
}

function tickFreeze(st: FreezeState): TickFreeze {
  return { ...st, sinceMs: st.sinceSec === null ? null : st.sinceSec * 1000, reason: st.frozen ? st.reasons.map((r) => r.reason).join('; ') : null };
}

/**
 * Why the power driver cannot do `what` to `host` (undefined: it can, or it does not say:
 * PowerDriver.canPower is optional). Powering off is refused too when the host could not be
 * powered on again (DPM: never switch off what Tide cannot wake).
 */
function powerCapabilityRefusal(power: PowerDriver | undefined, host: string, what: 'off' | 'on'): string | undefined {
  const cap = power?.canPower?.(host);
  if (!cap) return undefined;
  const why = cap.reason ?? `its power driver (${power!.kind}) cannot power it ${cap[what] ? 'on again' : what}`;
  if (what === 'on') return cap.on ? undefined : `it cannot be powered on: ${why}`;
  if (!cap.off) return `it cannot be powered off: ${why}`;
  return cap.on ? undefined : `it could not be powered on again: ${why}`;
}

/** The policy's `spareHosts` argument (tide's), else 0: empty hosts the executor keeps on. */
function spareHostsOf(policy: CompiledPolicy): number {
  const n = (policy.args as { spareHosts?: unknown } | null | undefined)?.spareHosts;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : 0;
}

export class Controller {
  /**
   * Fresh samples per VM name, oldest first (at most HISTORY each): CPU as a share of the VM's
   * size (0..1, so a change of the vCPU baseline does not distort the past), memory MiB, disk
   * and network bytes/s; atSec: time of the newest; seenSec: when the VM was last listed.
   */
  private readonly history = new Map<string, { cpu: number[]; mem: number[]; disk: number[]; net: number[]; atSec: number; seenSec: number }>();
  private readonly lastMigrated = new Map<string, number>();
  /** When each host was last seen coming up, s (absent: up since before Tide looked). */
  private readonly onSince = new Map<string, number>();
  private readonly wasUp = new Map<string, boolean>();
  /** Anti-flap memory: when each host went off, s (only while it is off; from executed power-offs and observed transitions). */
  private readonly offSince = new Map<string, number>();
  /** The power state each host had at the previous collect. */
  private readonly lastPower = new Map<string, PowerState>();
  /** Migrations this controller started, per VM, start times in ms (kept 24 h): counted with the store's. */
  private readonly started = new Map<string, number[]>();
  /** Telemetry health between rounds: consecutive silent rounds per host, and when the previous round ended. */
  private readonly silent = new Map<string, number>();
  private lastRoundEnd: { clockMs: number; monoMs: number | null } | null = null;
  private freeze: FreezeState = NOT_FROZEN;
  /** The last collect's metrics gaps as freeze causes (empty: none, or a source whose gaps do not freeze). */
  private metricsGaps: ReturnType<typeof gapFreezeReasons> = [];
  /** Learned demand profiles (created on first use; null: forecasting off). */
  private demandRecorder: DemandRecorder | null | undefined;
  /**
   * While the restart seed runs (src/app/forecast-seed.ts): the fresh samples of the rounds
   * since, oldest first, recorded after the seed's (the recorder sees samples in time order);
   * null: no seed running.
   */
  private seedBacklog: { atSec: number; vms: VmDemandSample[] }[] | null = null;
  private seeded: Promise<void> = Promise.resolve();

  constructor(private readonly deps: ControllerDeps) {
    for (const [vm, at] of deps.store?.lastMigrations() ?? []) this.lastMigrated.set(vm, at / 1000);
    this.seedOffSince();
    // A daemon that stopped while frozen starts in the thaw: 2 healthy rounds before any move.
    const last = deps.store?.daemonStatus();
    if (last?.frozen.frozen) {
      this.freeze = {
        frozen: true, sinceSec: deps.clock.now() / 1000, healthyRounds: 0,
        reasons: [{ code: 'recovering', reason: `frozen when the previous daemon last reported (${last.frozen.reason ?? 'no reason recorded'})` }],
      };
    }
  }

  /** The freeze as of the last round (not frozen before the first). */
  get freezeState(): TickFreeze {
    return tickFreeze(this.freeze);
  }

  /**
   * After a restart: since when each host is off, from the plans' power steps (a host whose
   * newest successful power step is a powerOff is off since it ended). Used only for a host
   * that is off when first seen. One narrow store query (Store.lastPowerSteps: a row per
   * host), never the plans themselves (tens of MB each at 10,000 hosts).
   */
  private seedOffSince(): void {
    for (const r of this.deps.store?.lastPowerSteps() ?? []) {
      if (r.kind === 'powerOff' && r.to !== null && r.endedMs !== null) this.offSince.set(r.to, r.endedMs / 1000);
    }
  }

  /**
   * Start times (ms) of each VM's migrations in the last 24 h: the store's records (any
   * process's, succeeded or failed) and the ones this controller started (also those still
   * running, not yet recorded).
   */
  private migrationStarts(nowMs: number): Map<string, number[]> {
    const from = nowMs - DAY_SEC * 1000;
    const keys = new Set<string>();
    const out = new Map<string, number[]>();
    const add = (vm: string, atMs: number): void => {
      const k = `${vm}@${Math.round(atMs)}`;
      if (atMs < from || atMs > nowMs || keys.has(k)) return;
      keys.add(k);
      const l = out.get(vm) ?? [];
      l.push(atMs);
      out.set(vm, l);
    };
    for (const m of this.deps.store?.migrations({ limit: MIGRATIONS_READ }) ?? []) add(m.vm, m.startedMs);
    for (const [vm, l] of this.started) {
      const keep = l.filter((t) => t >= from);
      if (keep.length === 0) this.started.delete(vm);
      else this.started.set(vm, keep);
      for (const t of keep) add(vm, t);
    }
    return out;
  }

  /**
   * Reads hosts, VMs and their utilisation and builds the snapshot the planner sees.
   *
   * Telemetry truth: a host that did not answer is 'unknown' (or 'off'/'waking' when the
   * power driver says so), never assumed off or empty. The vCPU baseline comes only from hosts
   * that answered; with none, there is nothing to plan on and this throws
   * TIDE_HOST_UNREACHABLE. A VM without a fresh CPU sample this round (first round, first
   * round after it moved, its sample missing) carries its last measured value, marked stale,
   * for up to STALE_ROUNDS rounds; one never measured is 'unknown' at its full size (see
   * Vm.usage). Only fresh samples enter a VM's history, which is kept by name, so usage after
   * a migration continues from it.
   *
   * `record: false` (a re-check, e.g. the daemon's fingerprint before executing an approved
   * plan): the samples are read but neither enter the VMs' usage history nor the forecast's
   * demand recorder, so each round adds exactly one sample (default true).
   */
  async collect(opts: { readonly record?: boolean } = {}): Promise<ClusterSnapshot> {
    const record = opts.record ?? true;
    const { hypervisor } = this.deps;
    const blocks = this.blocks();
    const [hostInfos, vmInfos] = await Promise.all([hypervisor.listHosts(), hypervisor.listVms()]);
    // Usage from the metrics source, given the inventory (default: the driver's own counters).
    const metrics = this.deps.metrics ?? new DriverPollingSource(hypervisor);
    const usage = await metrics.read({ hosts: hostInfos, vms: vmInfos });
    this.metricsGaps = metrics.freezeOnGaps ? gapFreezeReasons(usage.gaps) : [];
    const now = this.deps.clock.now();
    const nowSec = now / 1000;
    const hostUsage = new Map(usage.hosts.map((u) => [u.host, u]));
    const vmUsage = new Map(usage.vms.map((u) => [u.vm, u]));
    // vCPU speed is the slowest core among the hosts that answered, so any VM may run on any
    // of them; a host that did not answer says nothing (one never reached reports 0 MHz).
    const answered = hostInfos.filter((h) => h.up && h.cpuMhz > 0);
    if (answered.length === 0) {
      const why = hostInfos.map((h) => `${h.name}: ${h.up ? 'reports no CPU speed' : h.reason ?? 'does not answer'}`).join('; ');
      throw new DriverError('TIDE_HOST_UNREACHABLE', `no host answered, nothing to plan on (${why || 'no hosts configured'})`, { hosts: hostInfos.map((h) => h.name) });
    }
    const baseline = Math.min(...answered.map((h) => h.cpuMhz));
    const downState = new Map(await Promise.all(hostInfos.filter((h) => !h.up).map(async (h) => [h.name, await this.downState(h.name)] as const)));
    const starts = this.migrationStarts(now);
    let movesLastHour = 0;
    for (const l of starts.values()) for (const t of l) if (t > now - HOUR_SEC * 1000) movesLastHour++;
    const hosts: Host[] = hostInfos.map((h) => {
      const cfg = this.deps.hosts?.[h.name] ?? {};
      const u = hostUsage.get(h.name);
      if (h.up && this.wasUp.get(h.name) === false) this.onSince.set(h.name, nowSec);
      this.wasUp.set(h.name, h.up);
      const powerState: PowerState = h.up ? 'on' : downState.get(h.name) ?? 'unknown';
      // Off since: an executed power-off (execute) or the transition seen now; forgotten once it is not off.
      const before = this.lastPower.get(h.name);
      if (powerState === 'off') {
        if (!this.offSince.has(h.name) && before !== undefined && before !== 'off') this.offSince.set(h.name, nowSec);
      } else if (powerState !== 'unknown') this.offSince.delete(h.name);
      this.lastPower.set(h.name, powerState);
      const offSinceSec = powerState === 'off' ? this.offSince.get(h.name) : undefined;
      // A host of an unresolved unknown migration may hold a copy of its VM: no move to or
      // from it and no power action until reconcile settles it (excluded, with why).
      const blocked = blocks.hosts.get(h.name);
      return {
        id: h.name, cpuCores: h.cpuCores, mipsPerCore: h.cpuMhz, memMiB: h.memMiB,
        diskBytesPerSec: 1e9, netBytesPerSec: 1.25e9, power: cfg.power ?? DEFAULT_POWER,
        powerState, maintenance: cfg.maintenance ?? false, excluded: (cfg.excluded ?? false) || blocked !== undefined,
        tags: cfg.tags ?? [], cpuUsedMips: h.up && u && u.cpuPct !== null ? (u.cpuPct / 100) * h.cpuCores * h.cpuMhz : undefined,
        onSinceSec: this.onSince.get(h.name),
        ...(offSinceSec !== undefined ? { offSinceSec } : {}),
        ...(powerState === 'unknown' ? { stateReason: h.reason ?? 'the hypervisor does not answer' } : blocked !== undefined ? { stateReason: blocked } : {}),
        // DPM wake-path rule (H4): a host whose wake path failed is never planned off.
        // A host the power driver cannot power off (or on again) is never planned off (canPower).
        ...((): { powerOffRefused?: string } => {
          const why = wakePathRefusal(this.deps.store, this.deps.power, h.name) ?? powerCapabilityRefusal(this.deps.power, h.name, 'off');
          return why === undefined ? {} : { powerOffRefused: why };
        })(),
        // A host whose wake failed recently is not woken every round (src/app/wake-refused.ts),
        // nor one its power driver cannot power on.
        ...((): { wakeRefused?: string } => {
          const why = wakeRefusal(this.deps.store, this.deps.power, h.name, powerState, now, this.deps.wakeRetrySec)
            ?? (powerState === 'off' || powerState === 'standby' ? powerCapabilityRefusal(this.deps.power, h.name, 'on') : undefined);
          return why === undefined ? {} : { wakeRefused: why };
        })(),
      };
    });
    const pinned = new Set(this.deps.pinnedVms ?? []);
    const vms: Vm[] = [];
    for (const v of vmInfos) {
      // A sample counts only from the host the VM is listed on (not one taken mid-move).
      const sample = vmUsage.get(v.name);
      const u = sample && sample.host === v.host ? sample : undefined;
      const hist = this.history.get(v.name) ?? { cpu: [], mem: [], disk: [], net: [], atSec: -Infinity, seenSec: nowSec };
      hist.seenSec = nowSec;
      this.history.set(v.name, hist);
      const size = v.vcpus * baseline;
      const last = (series: number[]): number | undefined => series[series.length - 1];
      const pair = (a: number | null | undefined, b: number | null | undefined): number | null => (a == null || b == null ? null : a + b);
      let quality: UsageQuality;
      let disk: number;
      let net: number;
      let share: number;
      if (u?.cpuPct != null) {
        quality = 'fresh';
        share = u.cpuPct / 100;
        // A single rate unknown (its counter restarted) carries its last value.
        disk = pair(u.diskReadBytesPerSec, u.diskWriteBytesPerSec) ?? last(hist.disk) ?? 0;
        net = pair(u.netRxBytesPerSec, u.netTxBytesPerSec) ?? last(hist.net) ?? 0;
      } else if (v.state !== 'running' && v.state !== 'paused') {
        // Not running: it uses no CPU or I/O, and that is known without a sample.
        quality = 'fresh';
        share = 0;
        disk = 0;
        net = 0;
      } else if (hist.cpu.length > 0 && nowSec - hist.atSec <= STALE_ROUNDS * this.deps.intervalSec) {
        quality = 'stale';
        share = last(hist.cpu)!;
        disk = last(hist.disk) ?? 0;
        net = last(hist.net) ?? 0;
      } else {
        // Never measured (or too long ago): pessimistic CPU for capacity checks; I/O has no
        // natural bound and counts as 0 (the planner does not consolidate such a VM anyway).
        quality = 'unknown';
        share = 1;
        disk = 0;
        net = 0;
      }
      const cpuMips = share * size;
      // Memory in use is a level, known from any sample; else the last known, else all of it.
      const memMiB = u?.memUsedMiB ?? (quality === 'stale' ? last(hist.mem) : undefined) ?? v.memMiB;
      if (quality === 'fresh' && record) {
        for (const [series, x] of [[hist.cpu, share], [hist.mem, memMiB], [hist.disk, disk], [hist.net, net]] as const) {
          series.push(x);
          if (series.length > HISTORY) series.shift();
        }
        hist.atSec = nowSec;
      }
      vms.push({
        id: v.name, host: v.host, vcpus: v.vcpus, mipsPerVcpu: baseline, memMiB: v.memMiB, memReservedMiB: v.memMiB,
        demand: { cpuMips, memMiB, diskBytesPerSec: disk, netBytesPerSec: net },
        cpuHistoryMips: hist.cpu.map((x) => x * size), memHistoryMiB: [...hist.mem], diskHistoryBytesPerSec: [...hist.disk], netHistoryBytesPerSec: [...hist.net],
        tags: [], lastMigratedAt: this.lastMigrated.get(v.name), movesToday: starts.get(v.name)?.length ?? 0,
        migratable: v.state === 'running' && !pinned.has(v.name) && !blocks.vms.has(v.name),
        ...(quality === 'fresh' ? {} : { usage: quality }),
        ...(quality === 'stale' ? { usageAgeSec: nowSec - hist.atSec } : {}),
      });
    }
    // A VM not listed (its host did not answer, or it is gone) keeps its history for a while,
    // so usage continues from it if its host comes back.
    for (const [name, h] of [...this.history]) if (nowSec - h.seenSec > HISTORY * this.deps.intervalSec) this.history.delete(name);
    const forecast = this.recordDemand(nowSec, vms, record);
    const snapshot: ClusterSnapshot = { time: nowSec, sampleIntervalSec: this.deps.intervalSec, hosts, vms, rules: this.deps.rules ?? [], movesLastHour, ...(forecast ? { forecast } : {}) };
    if (!this.deps.schedule) return snapshot;
    const off = this.deps.scheduleOffsetSec ?? 0;
    const w = activeWindow(this.deps.schedule, nowSec + off);
    return { ...snapshot, window: { ...w, untilSec: w.untilSec === null ? null : w.untilSec - off } };
  }

  /**
   * Predictive DPM: records this round's measured demand (fresh samples only: a guess is no
   * history) and returns the forecast of the next hours for the snapshot.
   */
  private recordDemand(nowSec: number, vms: readonly Vm[], record: boolean): ClusterSnapshot['forecast'] {
    if (this.demandRecorder === undefined) {
      this.demandRecorder = this.newRecorder();
      // After a restart the learned profiles continue from the store's metrics history (src/app/forecast-seed.ts).
      if (this.demandRecorder && this.deps.store) this.startSeed(this.deps.store, vms, nowSec);
    }
    const r = this.demandRecorder;
    if (!r) return undefined;
    if (this.seedBacklog) {
      // Still seeding: plan as a cold start does (no forecast); this round's samples wait for the seed.
      if (record) this.seedBacklog.push({ atSec: nowSec, vms: vms.filter((v) => v.usage === undefined).map((v) => ({ id: v.id, cpuMips: v.demand.cpuMips, memMiB: v.demand.memMiB })) });
      return undefined;
    }
    if (record) r.recordVms(nowSec, vms); // the fresh ones, straight from the list (no per-round sample objects)
    return r.forecast(nowSec);
  }

  private newRecorder(): DemandRecorder | null {
    const opts = this.deps.forecast;
    return opts === false ? null : new DemandRecorder({ stepSec: this.deps.intervalSec, ...opts, offsetSec: (this.deps.scheduleOffsetSec ?? 0) - SIM_MONDAY_EPOCH_SEC });
  }

  /**
   * Starts the restart seed beside the rounds: one store page per event-loop turn (at 200,000
   * VMs about half an hour; inside a round it would stall lease renewals and the API). When it
   * ends the waiting rounds' samples are recorded, in order, so the recorder ends as a seed
   * inside the first round followed by the same rounds would leave it. A seed that fails (store
   * I/O) is dropped: the recorder starts empty (a cold start) with the waiting rounds.
   */
  private startSeed(store: Store, vms: readonly Vm[], nowSec: number): void {
    const backlog: { atSec: number; vms: VmDemandSample[] }[] = [];
    this.seedBacklog = backlog;
    const log = this.deps.log;
    const clock = this.deps.clock;
    let loggedMs = clock.now();
    const fields = (s: Readonly<SeedStats>) => ({ event: 'forecast-seed', rounds: s.rounds, points: s.points, pages: s.pages, waitingRounds: backlog.length });
    log?.info({ event: 'forecast-seed' }, 'forecast: replaying the stored metrics history; rounds plan without the learned forecast until it is done');
    this.seeded = seedRecorderFromStoreAsync(this.demandRecorder!, store, vms, nowSec, {
      intervalSec: this.deps.intervalSec,
      ...(this.deps.seedPause ? { pause: this.deps.seedPause } : {}),
      ...(this.deps.drain ? { signal: this.deps.drain } : {}),
      onPage: (s) => {
        if (clock.now() - loggedMs < 60_000) return;
        loggedMs = clock.now();
        log?.info(fields(s), `forecast seed: ${s.rounds} rounds replayed so far`);
      },
    }).then(
      (s) => log?.info(fields(s), `forecast seed done: ${s.rounds} rounds replayed; the forecast is back`),
      (e: unknown) => {
        this.demandRecorder = this.newRecorder();
        if (this.deps.drain?.aborted) log?.info({ event: 'forecast-seed' }, 'forecast seed stopped: the daemon is stopping');
        else log?.warn({ event: 'forecast-seed', error: e instanceof Error ? e.message : String(e) }, 'forecast seed failed: learning from the rounds since the restart only');
      },
    ).finally(() => {
      for (const b of backlog) this.demandRecorder?.record(b.atSec, b.vms);
      this.seedBacklog = null;
    });
  }

  /** Resolves once the restart seed (if any) has fed the forecast's recorder; never rejects. */
  whenSeeded(): Promise<void> {
    return this.seeded;
  }

  /** Power state of a host whose hypervisor did not answer: only the power driver can tell. */
  private async downState(host: string): Promise<PowerState> {
    const power = this.deps.power;
    if (!power) return 'unknown';
    const st = await power.status(host).catch(() => 'unknown' as const);
    // 'on' with a silent hypervisor may run guests Tide cannot see: unknown, not empty.
    return st === 'off' ? 'off' : st === 'booting' ? 'waking' : 'unknown';
  }

  /** What the store's unresolved unknown migrations block (none without a store). */
  private blocks(): Blocks {
    const store = this.deps.store;
    return store ? blocksOf(store.unknownMigrations()) : NO_BLOCKS;
  }

  /**
   * Reconciles the store's open unknown migrations (src/app/reconcile.ts), under the cluster
   * lock, since reconcile may resume, pause, destroy or undefine a copy. Fails closed: when the
   * lock is held by another process the records stay open (and blocking) until a later round.
   */
  async reconcileOpen(signal?: AbortSignal): Promise<ReconcileReport[]> {
    const { store, hypervisor, clock } = this.deps;
    if (!store || !store.unknownMigrations().some((u) => u.status === 'open')) return [];
    const go = (): Promise<ReconcileReport[]> => reconcileUnknown(store, hypervisor, clock);
    const reports = await withClusterLock(store, this.deps.lockHolder ?? currentHolder('tide controller'), go, { ttlMs: this.deps.lockTtlMs, signal });
    this.deps.observer?.onReconcile?.(reports, clock.now());
    return reports;
  }

  /**
   * One round: reconcile unknown migrations, collect, plan, and (in automatic mode) execute.
   * While a migration's outcome stays unknown, its VM is not migratable and both its hosts are
   * excluded in the snapshot (with the reason), and the plan is guarded against any step that
   * touches them (guardPlan).
   */
  async tick(signal?: AbortSignal): Promise<TickResult> {
    try {
      return await this.round(signal);
    } finally {
      // Also after a round that threw: the next round's clock check measures from here.
      const mono = this.deps.clock.monotonicMs?.() ?? null;
      this.lastRoundEnd = { clockMs: this.deps.clock.now(), monoMs: mono };
    }
  }

  /**
   * The telemetry freeze for this round's snapshot (src/core/freeze.ts): counts the hosts'
   * silent rounds (hypervisor silent, power state not known off: 'unknown'), measures the time
   * since the previous round ended on the clock and, when the clock has one, the monotonic
   * clock; returns the snapshot carrying the freeze when frozen.
   */
  private applyFreeze(collected: ClusterSnapshot): ClusterSnapshot {
    const { clock, observer } = this.deps;
    const nowMs = clock.now();
    const mono = clock.monotonicMs?.() ?? null;
    for (const h of collected.hosts) {
      if (h.powerState === 'unknown') this.silent.set(h.id, (this.silent.get(h.id) ?? 0) + 1);
      else this.silent.delete(h.id);
    }
    const prev = this.lastRoundEnd;
    const health = {
      silentRounds: Object.fromEntries(this.silent),
      sinceLastRoundSec: prev ? (nowMs - prev.clockMs) / 1000 : null,
      monotonicSinceLastRoundSec: prev && prev.monoMs !== null && mono !== null ? (mono - prev.monoMs) / 1000 : null,
      metricsGaps: this.metricsGaps,
    };
    const before = this.freeze;
    this.freeze = detectFreeze(collected, health, before, this.deps.freeze);
    if (freezeKey(before) !== freezeKey(this.freeze)) observer?.onFreeze?.(tickFreeze(this.freeze), nowMs);
    const freeze = snapshotFreeze(this.freeze);
    return freeze ? { ...collected, freeze } : collected;
  }

  /**
   * A round in which no host answered (collect threw TIDE_HOST_UNREACHABLE): every host not
   * last seen off counts one more silent round, and the freeze follows (freezeWithoutSnapshot).
   */
  private silentRound(): void {
    const { clock, observer } = this.deps;
    for (const [host, st] of this.lastPower) {
      if (st !== 'off') this.silent.set(host, (this.silent.get(host) ?? 0) + 1);
    }
    const before = this.freeze;
    this.freeze = freezeWithoutSnapshot(Object.fromEntries(this.silent), clock.now() / 1000, this.deps.intervalSec, before, this.deps.freeze);
    if (freezeKey(before) !== freezeKey(this.freeze)) observer?.onFreeze?.(tickFreeze(this.freeze), clock.now());
  }

  private async round(signal?: AbortSignal): Promise<TickResult> {
    let reconciled: ReconcileReport[] = [];
    try {
      reconciled = await this.reconcileOpen(signal);
    } catch (e) {
      // the lock is held elsewhere or the store failed: the records stay open and keep blocking
      if (!(e instanceof DriverError && e.code === 'TIDE_LOCKED')) throw e;
    }
    let collected: ClusterSnapshot;
    const collectT0 = performance.now();
    const cpu0 = cpuMs();
    try {
      collected = await this.collect();
    } catch (e) {
      if (e instanceof DriverError && e.code === 'TIDE_HOST_UNREACHABLE') this.silentRound();
      throw e;
    }
    const snapshot = this.applyFreeze(collected);
    const collectMs = performance.now() - collectT0;
    const cpu1 = cpuMs();
    const at = this.deps.clock.now();
    const blocks = this.blocks();
    const planT0 = performance.now();
    const plan = guardPlan(makePlan(snapshot, this.deps.policy, snapshot.time), blocks, new Map(snapshot.vms.map((v) => [v.id, v.host])));
    const planMs = performance.now() - planT0;
    const cpu2 = cpuMs();
    const store = this.deps.store;
    const status = plan.steps.length === 0 ? 'done' : this.deps.mode === 'automatic' ? 'running' : 'proposed';
    // The round's journal (plan, decision, metrics) in one commit: nothing has acted on it yet.
    const journal = (): number | null => {
      const id = store && plan.steps.length > 0 ? store.savePlan(plan, { createdMs: at, mode: this.deps.mode, status }) : null;
      journalRound(store, { atMs: at, snapshot, plan, planId: id, mode: this.deps.mode });
      return id;
    };
    const planId = store ? store.batch(journal) : journal();
    const journalMs = performance.now() - planT0 - planMs;
    const cpu3 = cpuMs();
    this.deps.observer?.onPlan?.(plan, at, planId, planMs);
    let run: PlanRun | null = null;
    const executeT0 = performance.now();
    if (this.deps.mode === 'automatic' && plan.steps.length > 0) run = await this.execute(plan, planId, signal);
    const stageMs = { collectMs, planMs, journalMs, executeMs: run ? performance.now() - executeT0 : 0 };
    const stageCpuMs = { collectMs: cpu1 - cpu0, planMs: cpu2 - cpu1, journalMs: cpu3 - cpu2, executeMs: run ? cpuMs() - cpu3 : 0 };
    const result: TickResult = { at, snapshot, plan, planId, run, reconciled, freeze: tickFreeze(this.freeze), stageMs, stageCpuMs };
    this.deps.observer?.onTick?.(result);
    return result;
  }

  /**
   * Executes a plan (automatic mode, or an approved plan) and records the outcome. With a
   * store, the plan runs under the cluster lock (withClusterLock: a second Tide process acting
   * on the same store is refused with TIDE_LOCKED naming the holder; losing the lock aborts
   * the run) and every step is saved as it starts (intent, before any side effect) and as it
   * ends (outcome). Without a store (simulations, tests) there is no lock. A plan that could
   * not run (lock refused, store failing) is marked failed and the error propagates.
   */
  async execute(plan: Plan, planId: number | null, signal?: AbortSignal): Promise<PlanRun> {
    const { store, observer } = this.deps;
    /** Power steps' journal ids (intent saved before the request, outcome after): src/app/journal.ts. */
    const powerJournal = new Map<number, number | null>();
    const go = (sig?: AbortSignal): Promise<PlanRun> => runPlan(plan, {
      hypervisor: this.deps.hypervisor, power: this.deps.power, clock: this.deps.clock, limits: this.deps.limits,
      migrate: this.deps.migrate, bootTimeoutSec: this.deps.bootTimeoutSec, drain: this.deps.drain,
      // DPM rules (H4): wake paths remembered in the store; the policy's spareHosts kept on.
      wakePaths: this.deps.store, spareHosts: spareHostsOf(this.deps.policy),
      // Fencing: with a store the plan runs under the cluster lock; before each side effect the
      // lease is checked (src/store/lock.ts checkFence): a deposed or paused leader does nothing.
      ...(store ? { fence: (what: string) => checkFence(store, what) } : {}),
      // The intents of the steps a scheduling pass starts, in one commit before any of them acts.
      ...(store ? { journalGroup: (pass: () => void) => store.batch(pass) } : {}),
      observer: {
        onStepStart: (r) => {
          if (planId !== null) store?.saveStepRun(planId, r);
          powerJournal.set(r.step.id, journalPowerStart(store, planId, r));
          if (r.step.kind === 'migrate') {
            const l = this.started.get(r.step.vm) ?? [];
            l.push(r.startedAt ?? this.deps.clock.now());
            this.started.set(r.step.vm, l);
          }
          observer?.onStepStart?.(r);
        },
        onProgress: (r, p) => observer?.onProgress?.(r, p),
        onStepEnd: (r) => {
          // The step's outcome records (step, power action, unknown migration, migration) in one commit, after its effect.
          const record = (): void => {
            if (planId !== null) store?.saveStepRun(planId, r);
            journalPowerEnd(store, powerJournal.get(r.step.id), r);
            recordUnknownStep(store, planId, r, this.deps.clock.now());
            const s = r.step;
            if (s.kind === 'migrate' && (r.state === 'succeeded' || r.state === 'failed')) {
              store?.recordMigration({
                planId, vm: s.vm, from: s.from, to: s.to, mode: this.deps.migrate.mode, ok: r.state === 'succeeded',
                startedMs: r.startedAt ?? 0, totalMs: (r.endedAt ?? 0) - (r.startedAt ?? 0), downtimeMs: r.result?.downtimeMs ?? null,
                probeDowntimeMs: null, bytes: r.result?.bytes ?? null, error: r.error ? `${r.error.code}: ${r.error.message}` : null,
              });
            }
          };
          if (store) store.batch(record);
          else record();
          const s = r.step;
          if (s.kind === 'powerOff' && r.state === 'succeeded') this.offSince.set(s.host, (r.endedAt ?? this.deps.clock.now()) / 1000);
          if (s.kind === 'migrate' && r.state === 'succeeded') this.lastMigrated.set(s.vm, (r.endedAt ?? this.deps.clock.now()) / 1000);
          observer?.onStepEnd?.(r);
        },
      },
    }, sig);
    let run: PlanRun;
    try {
      run = store
        ? await withClusterLock(store, this.deps.lockHolder ?? currentHolder('tide controller'), go, { ttlMs: this.deps.lockTtlMs, signal })
        : await go(signal);
    } catch (e) {
      try {
        if (planId !== null) store?.setPlanStatus(planId, 'failed');
      } catch { /* the store may be what failed; the original error says more */ }
      throw e;
    }
    if (planId !== null) store?.setPlanStatus(planId, run.failed + run.skipped + run.cancelled > 0 ? 'failed' : 'done');
    observer?.onRunEnd?.(run, this.deps.clock.now());
    return run;
  }

  /**
   * Runs rounds every intervalSec until `untilMs` (clock time) or the signal aborts (then it
   * resolves). A round that throws — no host answered, the cluster lock is held by another
   * process, the store failed, a bug — does not end the loop: it is recorded
   * (store.recordRoundError, observer.onRoundError, code TIDE_INTERNAL for non-Tide errors)
   * and the next round runs at the next interval. Intervals missed while a round overran are
   * skipped, not run back to back. Each executed plan takes the cluster lock (see execute).
   */
  async run(untilMs: number, signal?: AbortSignal): Promise<void> {
    const { clock, store, observer } = this.deps;
    const step = this.deps.intervalSec * 1000;
    let next = clock.now();
    while (next < untilMs && !signal?.aborted) {
      try {
        await this.tick(signal);
      } catch (e) {
        if (signal?.aborted) break;
        const at = clock.now();
        const c = (e as { code?: unknown } | null)?.code;
        const err = { code: typeof c === 'string' ? c : 'TIDE_INTERNAL', message: e instanceof Error ? e.message : String(e) };
        try {
          store?.recordRoundError({ atMs: at, ...err });
        } catch { /* a failing store must not stop the loop; the observer still hears */ }
        try {
          observer?.onRoundError?.(err, at);
        } catch { /* likewise */ }
      }
      next += step;
      const now = clock.now();
      if (now > next) next += Math.ceil((now - next) / step) * step;
      if (next >= untilMs) break;
      try {
        await clock.sleep(next - now, signal);
      } catch (e) {
        if (signal?.aborted) break;
        throw e;
      }
    }
  }
}
