/**
 * Programmatic API of a real cluster (the CLI's `hosts`, `vms`, `migrate`, `evacuate`, `place`
 * and `bench migrate` are thin shells over it): inventory with utilisation (and the hosts that
 * could not be asked, with why), one migration with an optional service probe, host evacuation
 * and initial placement. Evacuation and placement take the one path that changes a cluster:
 * a snapshot from the controller's collect(), a plan from the pure core (planEvacuation /
 * planPlacement), the executor (runPlan) under the configured limits, all under the store's
 * cluster lock.
 *
 *   const cluster = Cluster.open(loadConfig('tide.json'));
 *   try { const r = await cluster.migrate({ vm: 'vm1', to: 'lab-b', probe: 'auto' }); }
 *   finally { await cluster.close(); }
 *
 * Migration settings come from the configuration (`migration.*`) unless overridden per call.
 */
import { join } from 'node:path';
import { Controller } from '../app/controller.js';
import { blocksOf, reconcileUnknown, recordUnknownStep, type ReconcileReport } from '../app/reconcile.js';
import { compileSchedule } from '../config/schedule.js';
import type { TideConfig } from '../config/schema.js';
import type { ClusterSnapshot, Vm } from '../core/model/types.js';
import { planEvacuation as planEvacuationCore, planPlacement, type DirectPlanOptions, type HostAssessment } from '../core/plan/evacuate.js';
import type { MigrateStep, PlaceStep, Plan } from '../core/plan/types.js';
import { compilePolicy, type CompiledPolicy } from '../core/policy.js';
import { createDriver } from '../drivers/index.js';
import { createMetricsSource, type MetricsSource, type SeriesGap } from '../drivers/metrics/index.js';
import { DriverError, isDriverError } from '../drivers/errors.js';
import type {
  HostInfo, HostUsage, HypervisorDriver, MigrateOptions, MigrationMode, MigrationProgress, MigrationResult, PreflightCheck, VmInfo, VmUsage,
} from '../drivers/hypervisor.js';
import { systemClock } from '../executor/clock.js';
import { runPlan, type StepRun } from '../executor/executor.js';
import { currentHolder, withClusterLock } from '../store/lock.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';
import { parseProbeTarget, startProbe, type ProbeReport } from '../probe/index.js';

export interface HostReport extends HostInfo {
  maintenance: boolean;
  excluded: boolean;
  tags: string[];
  /** VMs active on the host. */
  vms: number;
  usage: HostUsage | null;
  /** Why `usage` is null although usage was asked for (the metrics source's gap: missing or stale series). */
  usageGap?: string;
}

export interface VmReport extends VmInfo {
  pinned: boolean;
  usage: VmUsage | null;
  /** Why `usage` is null although usage was asked for (the metrics source's gap). */
  usageGap?: string;
}

/** Usage as the configured metrics source read it, with the series it could not provide. */
export interface UsageReading {
  hosts: HostUsage[];
  vms: VmUsage[];
  gaps: SeriesGap[];
}

/** Per-call migration settings; unset fields come from config.migration. */
export type MigrationSettings = Partial<Omit<MigrateOptions, 'onProgress'>>;

export interface MigrateRequest {
  vm: string;
  to: string;
  mode?: MigrationMode;
  settings?: MigrationSettings;
  /**
   * Service probe during the migration: 'auto' = the config's vms[vm].probe (run in
   * vms[vm].probeNetns), a tcp://HOST:PORT or http://HOST[:PORT]/PATH target, or 'none'
   * (default). Explicit targets also run in vms[vm].probeNetns when the config gives one.
   */
  probe?: string;
  /** Only run the pre-flight checks. */
  dryRun?: boolean;
  onProgress?: (p: MigrationProgress) => void;
  signal?: AbortSignal;
}

/** The service probe's view of a migration. */
export interface ProbeSummary {
  target: string;
  netns: string | null;
  sent: number;
  ok: number;
  failed: number;
  /** Longest time without a successful reply (ms); null when the service never answered. */
  downtimeMs: number | null;
  maxGapMs: number;
  sameBoot: boolean | null;
  errors: Record<string, number>;
  /** Set when the service did not answer before the migration started. */
  warning?: string;
}

/** What `tide migrate --json` prints (stable field names). */
export interface MigrateReport {
  vm: string;
  from: string;
  to: string;
  mode: MigrationMode;
  ok: boolean;
  dryRun: boolean;
  totalMs: number | null;
  /** libvirt's downtime (live), or the time the VM was paused/off (suspend, offline). */
  downtimeMs: number | null;
  /** The longest gap the service probe saw (null without a probe). */
  probeDowntimeMs: number | null;
  bytes: number | null;
  iterations: number | null;
  postCopy: boolean;
  probe: ProbeSummary | null;
  /** Dry run: every check; otherwise only present when the migration was refused. */
  checks?: PreflightCheck[];
  error?: { code: string; message: string };
}

export interface EvacuateRequest {
  host: string;
  mode?: MigrationMode;
  settings?: MigrationSettings;
  /** Candidate targets (default: every other host that is up, not in maintenance, not excluded). */
  to?: string[];
  /** Migrations at once (default config.migration.maxConcurrent). */
  concurrency?: number;
  /** Migrations touching one host at once, as source or target (default config.migration.maxPerHost). */
  maxPerHost?: number;
  /** Also move the definitions of shut-off persistent VMs (offline). */
  includeStopped?: boolean;
  /** Also move VMs marked pinned in the config. */
  includePinned?: boolean;
  probe?: 'auto' | 'none';
  dryRun?: boolean;
  /** Between the two utilisation readings the plan is made from, ms (default 1000). */
  intervalMs?: number;
  onEvent?: (e: EvacuateEvent) => void;
  signal?: AbortSignal;
}

/** One move of an evacuation plan, with the planner's reason (which host, and why not the others). */
export interface PlannedMove { vm: string; from: string; to: string; mode: MigrationMode; memMiB: number; reason: string; by: string }

/** How one host fared for one VM: passed every filter (score 0..100) or which filter rejected it and why. */
export interface HostVerdictReport { host: string; fits: boolean; score: number | null; by?: string; code?: string; reason: string }

/** A VM the evacuation leaves where it is, with a stable code and every host's verdict. */
export interface NotMovedReport {
  vm: string;
  /** 'pinned', 'no-host-fits', 'not-migratable'. */
  code: string;
  reason: string;
  hosts: HostVerdictReport[];
}

export interface EvacuationPlan {
  host: string;
  moves: PlannedMove[];
  notMoved: NotMovedReport[];
  /** notMoved in one line each (kept for callers of the first report format). */
  skipped: { vm: string; reason: string }[];
  /** Hosts that did not answer (never targets), with why. */
  unreachable: { host: string; reason: string }[];
  assessments: Readonly<Record<string, readonly HostAssessment[]>>;
}

export type EvacuateEvent =
  | { type: 'plan'; moves: PlannedMove[]; skipped: { vm: string; reason: string }[]; notMoved: NotMovedReport[]; unreachable: { host: string; reason: string }[] }
  | { type: 'start'; move: PlannedMove }
  | { type: 'progress'; move: PlannedMove; progress: MigrationProgress }
  | { type: 'done'; move: PlannedMove; report: MigrateReport };

/** What `tide evacuate --json` prints (stable field names). */
export interface EvacuateReport {
  host: string;
  dryRun: boolean;
  /** The plan: each move with its reason. */
  moves: PlannedMove[];
  /** Moves that succeeded (dry run: whose pre-flight passed). */
  moved: MigrateReport[];
  /** Moves that failed, were skipped by the executor (the world changed: TIDE_STALE_PLAN) or cancelled. */
  failed: MigrateReport[];
  /** VMs the plan leaves on the host, one line each. */
  skipped: { vm: string; reason: string }[];
  /** The same VMs with a code and every host's verdict. */
  notMoved: NotMovedReport[];
  /** Hosts that did not answer, with why. */
  unreachable: { host: string; reason: string }[];
  /** VMs still active (or, with includeStopped, defined) on the host afterwards. */
  remaining: string[];
  totalMs: number;
}

export interface PlaceRequest {
  vm: string;
  /** Candidate hosts (default: every usable host). */
  to?: string[];
  /** Settings for moving the definition (offline) when the chosen host does not hold it. */
  settings?: MigrationSettings;
  dryRun?: boolean;
  /** Between the two utilisation readings, ms (default 1000). */
  intervalMs?: number;
  signal?: AbortSignal;
}

export interface PlacePlan {
  vm: string;
  /** The host that holds the VM's definition now. */
  definedOn: string;
  /** The chosen host; null when no host fits. */
  to: string | null;
  reason: string;
  /** Every host: chosen first, then the others that fit (best first), then why not the rest. */
  hosts: HostVerdictReport[];
  unreachable: { host: string; reason: string }[];
}

/** What `tide place --json` prints (stable field names). */
export interface PlaceReport extends PlacePlan {
  dryRun: boolean;
  /** Started (dry run: a host fits). */
  ok: boolean;
  totalMs: number;
  note?: string;
  error?: { code: string; message: string };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Cluster {
  private openedStore: Store | null = null;
  /** The configured metrics source, made on first use (createMetricsSource, as the daemon's openDaemon does). */
  private openedMetrics: MetricsSource | null = null;
  private givenMetrics: MetricsSource | null = null;

  /**
   * `store`: where history goes and where the cluster lock lives — a Store, or a function
   * opening it on first use (the default opens config.store.path, resolved against the
   * configuration file's directory, so every tide process of one cluster shares one lock).
   */
  constructor(readonly config: TideConfig, readonly driver: HypervisorDriver, private readonly storeSource: Store | (() => Store) = () => openStore(config.store, join(process.cwd(), 'tide.json'))) {}

  /**
   * A cluster over the driver the configuration asks for (or `driver`, e.g. a FakeDriver).
   * `configFile`: the configuration's path, against which a relative store.path is resolved.
   */
  static open(config: TideConfig, opts: { driver?: HypervisorDriver; store?: Store; configFile?: string; metrics?: MetricsSource } = {}): Cluster {
    const file = opts.configFile;
    const c = new Cluster(config, opts.driver ?? createDriver(config), opts.store ?? (() => openStore(config.store, file ?? join(process.cwd(), 'tide.json'))));
    if (opts.metrics) c.givenMetrics = opts.metrics;
    return c;
  }

  /**
   * Where utilisation comes from: the configuration's `metrics` section through the one factory
   * the daemon uses (createMetricsSource: libvirt polling through this cluster's driver by
   * default, or Prometheus), so a one-shot command reads the same numbers as the daemon.
   * Inventory and actions still go through the driver.
   */
  metrics(): MetricsSource {
    if (this.givenMetrics) return this.givenMetrics;
    this.openedMetrics ??= createMetricsSource(this.config, this.driver);
    return this.openedMetrics;
  }

  /** The store (opened on first use). */
  store(): Store {
    if (typeof this.storeSource !== 'function') return this.storeSource;
    this.openedStore ??= this.storeSource();
    return this.openedStore;
  }

  async close(): Promise<void> {
    this.openedStore?.close();
    this.openedStore = null;
    try {
      await this.openedMetrics?.close();
    } finally {
      this.openedMetrics = null;
      await this.driver.close();
    }
  }

  /**
   * Usage from the configured metrics source (metrics()) for `inventory` (default: the driver's
   * hosts and VMs now). The polling source computes rates from counters, so it is read twice
   * `intervalMs` apart and the second reading returned (the driver remembers counters between
   * calls); Prometheus computes rates itself, so one reading is current.
   */
  async usage(intervalMs = 1000, inventory?: { hosts: HostInfo[]; vms: VmInfo[] }): Promise<UsageReading> {
    const src = this.metrics();
    const inv = inventory ?? await this.listInventory();
    if (src.kind === 'libvirt') {
      await src.read(inv);
      await sleep(intervalMs);
    }
    const r = await src.read(inv);
    return { hosts: r.hosts, vms: r.vms, gaps: [...r.gaps] };
  }

  private async listInventory(): Promise<{ hosts: HostInfo[]; vms: VmInfo[] }> {
    const [hosts, vms] = await Promise.all([this.driver.listHosts(), this.driver.listVms()]);
    return { hosts, vms };
  }

  async hosts(opts: { usage?: boolean; intervalMs?: number } = {}): Promise<HostReport[]> {
    const inv = await this.listInventory();
    const { hosts, vms } = inv;
    const usage = opts.usage === false ? null : await this.usage(opts.intervalMs, inv);
    return hosts.map((h) => {
      const cfg = this.config.hosts.find((c) => c.name === h.name);
      const u = usage?.hosts.find((x) => x.host === h.name) ?? null;
      const gap = usage && !u ? usage.gaps.find((g) => g.kind === 'host' && g.host === h.name) : undefined;
      return {
        ...h,
        maintenance: cfg?.maintenance ?? false,
        excluded: cfg?.excluded ?? false,
        tags: cfg?.tags ?? [],
        vms: vms.filter((v) => v.host === h.name && v.state !== 'shutoff').length,
        usage: u,
        ...(gap ? { usageGap: gap.reason } : {}),
      };
    });
  }

  async vms(opts: { usage?: boolean; intervalMs?: number; host?: string } = {}): Promise<VmReport[]> {
    const inv = await this.listInventory();
    const usage = opts.usage === false ? null : await this.usage(opts.intervalMs, inv);
    return inv.vms.filter((v) => opts.host === undefined || v.host === opts.host).map((v) => {
      const u = usage?.vms.find((x) => x.vm === v.name && x.host === v.host) ?? null;
      const gap = usage && !u ? usage.gaps.find((g) => (g.kind === 'vm' && g.vm === v.name && g.host === v.host) || (g.kind === 'host' && g.host === v.host)) : undefined;
      return {
        ...v,
        pinned: this.config.vms[v.name]?.pinned ?? false,
        usage: u,
        ...(gap ? { usageGap: gap.reason } : {}),
      };
    });
  }

  /**
   * The VMs (as vms()) and the hosts that could not be asked, with why: their VMs are missing
   * from the list, so a caller must not read it as the whole cluster.
   */
  async inventory(opts: { usage?: boolean; intervalMs?: number; host?: string } = {}): Promise<{ vms: VmReport[]; unreachable: { host: string; reason: string }[] }> {
    const [vms, hosts] = await Promise.all([this.vms(opts), this.driver.listHosts()]);
    return { vms, unreachable: unreachableOf(hosts.filter((h) => opts.host === undefined || h.name === opts.host)) };
  }

  /** MigrateOptions from the configuration's defaults, overridden by `s`. */
  migrateOptions(mode?: MigrationMode, s: MigrationSettings = {}): MigrateOptions {
    const m = this.config.migration;
    const o: MigrateOptions = {
      mode: mode ?? s.mode ?? m.mode,
      autoConverge: m.autoConverge,
      postCopyAfterIterations: m.postCopyAfterIterations,
      copyStorage: m.copyStorage,
      unsafe: m.unsafe,
      timeoutSec: m.timeoutSec,
    };
    if (m.bandwidthMiBps !== undefined) o.bandwidthMiBps = m.bandwidthMiBps;
    if (m.maxDowntimeMs !== undefined) o.maxDowntimeMs = m.maxDowntimeMs;
    for (const [k, v] of Object.entries(s)) if (v !== undefined && k !== 'mode') (o as unknown as Record<string, unknown>)[k] = v;
    return o;
  }

  /** The probe target and namespace for `vm` ('auto' → config; null → no probe). */
  probeFor(vm: string, probe: string | undefined): { target: string; netns: string | null } | null {
    if (probe === undefined || probe === 'none') return null;
    const cfg = this.config.vms[vm];
    if (probe === 'auto') {
      if (!cfg?.probe) throw new DriverError('TIDE_INVALID_ARGUMENT', `--probe auto: the configuration has no probe for ${vm} (vms.${vm}.probe)`, { vm });
      return { target: cfg.probe, netns: cfg.probeNetns ?? null };
    }
    try {
      parseProbeTarget(probe);
    } catch (e) {
      throw new DriverError('TIDE_INVALID_ARGUMENT', (e as Error).message, { vm });
    }
    if (!/^(tcp|http):\/\//.test(probe)) throw new DriverError('TIDE_INVALID_ARGUMENT', `probe target must be tcp://host:port or http://host[:port]/path (got '${probe}')`);
    return { target: probe, netns: cfg?.probeNetns ?? null };
  }

  /**
   * Migrates one VM (or only checks, with dryRun). Failures of the migration itself come back
   * as a report with `ok: false` and `error` (so the probe's view is kept); invalid requests
   * (bad probe) throw.
   */
  async migrate(req: MigrateRequest): Promise<MigrateReport> {
    const opts = this.migrateOptions(req.mode, req.settings);
    const probeSpec = this.probeFor(req.vm, req.probe);
    if (req.dryRun) {
      const checks = await this.driver.preflight(req.vm, req.to, opts);
      const from = checks.find((c) => c.check === 'vm-exists' && c.ok) ? (await this.driver.listVms()).find((v) => v.name === req.vm)?.host ?? '' : '';
      return {
        vm: req.vm, from, to: req.to, mode: opts.mode, ok: checks.every((c) => c.ok), dryRun: true, totalMs: null, downtimeMs: null,
        probeDowntimeMs: null, bytes: null, iterations: null, postCopy: false, probe: null, checks,
      };
    }
    const attempt = async (): Promise<{ result: MigrationResult | null; error: DriverError | null }> => {
      try {
        return { result: await this.driver.migrate(req.vm, req.to, { ...opts, onProgress: req.onProgress }, req.signal), error: null };
      } catch (e) {
        if (!isDriverError(e)) throw e;
        return { result: null, error: e };
      }
    };
    const { value: { result, error }, summary } = probeSpec ? await this.withProbe(probeSpec, attempt) : { value: await attempt(), summary: null };
    const from = result?.from ?? (error?.detail?.from as string | undefined) ?? '';
    const report: MigrateReport = {
      vm: req.vm,
      from,
      to: req.to,
      mode: opts.mode,
      ok: result !== null,
      dryRun: false,
      totalMs: result?.totalMs ?? null,
      downtimeMs: result?.downtimeMs ?? null,
      probeDowntimeMs: summary?.downtimeMs ?? null,
      bytes: result?.bytes ?? null,
      iterations: result?.iterations ?? null,
      postCopy: result?.postCopy ?? false,
      probe: summary,
    };
    if (error) {
      report.error = { code: error.code, message: error.message };
      const checks = error.detail?.checks;
      if (Array.isArray(checks)) report.checks = checks as PreflightCheck[];
      if (error.code === 'TIDE_MIGRATION_UNKNOWN') {
        // the controller and `tide reconcile` finish it; until then the VM and both hosts are
        // blocked. The source comes from the error (every HostBackendDriver names it), else
        // from where the inventory lists the VM, other than the target.
        const src = from || (await this.driver.listVms().catch(() => [])).find((v) => v.name === req.vm && v.host !== req.to)?.host;
        try {
          if (!src) throw new Error('the source host is not known');
          this.store().recordUnknownMigration({ vm: req.vm, from: src, to: req.to, planId: null, sinceMs: Date.now(), reason: `${error.code}: ${error.message}` });
        } catch (e) {
          report.error.message += ` (could not record it in the store: ${(e as Error)?.message ?? String(e)}; run tide reconcile ${req.vm} --from SOURCE --to ${req.to})`;
        }
      }
    }
    return report;
  }

  /**
   * Reconciles unknown migrations (src/app/reconcile.ts) under the cluster lock: every open one
   * in the store, or `vm` alone (`from`/`to` needed when the store has no record of it; records
   * waiting for an operator only with `operatorDone`). Host names must be configured hosts.
   */
  async reconcile(req: { vm?: string; from?: string; to?: string; settleMs?: number; operatorDone?: boolean; signal?: AbortSignal } = {}): Promise<ReconcileReport[]> {
    for (const h of [req.from, req.to]) {
      if (h !== undefined && !this.config.hosts.some((c) => c.name === h)) {
        throw new DriverError('TIDE_INVALID_ARGUMENT', `no host named '${h}' in the configuration (hosts: ${this.config.hosts.map((c) => c.name).join(', ')})`, { host: h });
      }
    }
    const store = this.store();
    if (req.vm !== undefined && (req.from === undefined || req.to === undefined) && store.unknownMigrations({ vm: req.vm }).length === 0) {
      throw new DriverError('TIDE_INVALID_ARGUMENT', `no unknown migration of ${req.vm} is recorded: name its source and target (--from H --to H)`, { vm: req.vm });
    }
    const { vm, from, to, settleMs, operatorDone } = req;
    return this.locked(`tide reconcile${vm ? ` ${vm}` : ''}`, req.signal, () => reconcileUnknown(store, this.driver, systemClock, { vm, from, to, settleMs, operatorDone }));
  }

  /**
   * The cluster as the planner sees it (the controller's own collect(), so evacuation, place
   * and the control loop judge the same numbers): two readings `intervalMs` apart, since rates
   * need an interval; the second is returned, with the inventory it was built from.
   */
  async snapshot(intervalMs = 1000): Promise<{ snapshot: ClusterSnapshot; hosts: HostInfo[]; vms: VmInfo[] }> {
    const seen: { hosts: HostInfo[]; vms: VmInfo[] } = { hosts: [], vms: [] };
    const d = this.driver;
    // The controller reads the inventory through this view, so the caller gets exactly the
    // hosts and VMs the snapshot was built from (VM states, why a host did not answer).
    const view: HypervisorDriver = {
      kind: d.kind,
      listHosts: async () => (seen.hosts = await d.listHosts()),
      listVms: async () => (seen.vms = await d.listVms()),
      hostDomains: (h) => d.hostDomains(h),
      sample: () => d.sample(),
      preflight: (vm, to, o) => d.preflight(vm, to, o),
      migrate: (vm, to, o, sig) => d.migrate(vm, to, o, sig),
      start: (vm) => d.start(vm),
      stop: (vm, o) => d.stop(vm, o),
      suspend: (vm) => d.suspend(vm),
      resume: (vm) => d.resume(vm),
      close: () => Promise.resolve(),
    };
    const metrics = this.metrics();
    const ctl = new Controller({
      // usage from the configured metrics source, as the daemon's controller reads it
      hypervisor: view, metrics, clock: systemClock, policy: this.policy(), mode: 'recommend',
      limits: { maxConcurrent: this.config.migration.maxConcurrent, maxPerHost: this.config.migration.maxPerHost },
      migrate: this.migrateOptions(), intervalSec: Math.max(intervalMs / 1000, 1),
      hosts: Object.fromEntries(this.config.hosts.map((h) => [h.name, { maintenance: h.maintenance, excluded: h.excluded, tags: h.tags }])),
      pinnedVms: Object.entries(this.config.vms).filter(([, v]) => v.pinned).map(([k]) => k),
      rules: this.config.rules,
      schedule: this.config.schedule ? compileSchedule(this.config.schedule) : undefined,
    });
    await ctl.collect();
    // counters need an interval between readings; Prometheus gives rates at once
    if (intervalMs > 0 && metrics.kind === 'libvirt') await sleep(intervalMs);
    const snapshot = await ctl.collect();
    return { snapshot, hosts: seen.hosts, vms: seen.vms };
  }

  /** The configured policy, compiled (its arguments tune evacuation and placement). */
  policy(): CompiledPolicy {
    return compilePolicy(this.config.policy.name, this.config.policy.args);
  }

  /** Planning options the configured policy implies: tide's targetUtil bounds a target's CPU. */
  private directOptions(unreachable: { host: string; reason: string }[]): DirectPlanOptions {
    const args = this.policy().args as { targetUtil?: unknown };
    return {
      cpuLimit: typeof args.targetUtil === 'number' ? args.targetUtil : 0.9,
      scorer: 'spread',
      unavailable: Object.fromEntries(unreachable.map((u) => [u.host, `does not answer (${u.reason})`])),
    };
  }

  /**
   * Which VMs an evacuation of `host` moves where, and why (no side effects): the core's
   * planEvacuation over a fresh snapshot with the host in maintenance. Running and paused VMs
   * move live (or in `req.mode`); with includeStopped, persistent shut-off ones move offline.
   */
  async planEvacuation(req: EvacuateRequest): Promise<EvacuationPlan> {
    const cfgHost = this.config.hosts.find((h) => h.name === req.host);
    if (!cfgHost) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${req.host}' in the configuration`, { host: req.host });
    const unknownTarget = (req.to ?? []).find((t) => !this.config.hosts.some((h) => h.name === t));
    if (unknownTarget !== undefined) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${unknownTarget}' in the configuration`, { host: unknownTarget });
    const { snapshot, hosts, vms } = await this.snapshot(req.intervalMs);
    const unreachable = unreachableOf(hosts);
    const src = hosts.find((h) => h.name === req.host);
    if (!src?.up) {
      throw new DriverError('TIDE_HOST_UNREACHABLE', `${req.host} does not answer${src?.reason ? ` (${src.reason})` : ''}: cannot tell what runs there`, { host: req.host, unreachable });
    }
    const state = new Map(vms.map((v) => [v.name, v]));
    // An unresolved unknown migration (src/app/reconcile.ts): its VM stays where it is and its
    // hosts take no VM until reconcile settles it.
    const blocks = blocksOf(this.store().unknownMigrations());
    const pinned = (vm: string): boolean => this.config.vms[vm]?.pinned ?? false;
    const stopped = (vm: string): boolean => {
      const st = state.get(vm)?.state;
      return st === 'shutoff' || st === 'crashed';
    };
    // Shut-off VMs hold no memory or CPU anywhere; on the host being emptied they move (offline)
    // only when asked, and only persistent ones (a transient shut-off VM has no definition).
    const snap: ClusterSnapshot = {
      ...snapshot,
      vms: snapshot.vms.map((v): Vm => {
        const info = state.get(v.id);
        const off = stopped(v.id);
        const movable = v.host === req.host && (!pinned(v.id) || Boolean(req.includePinned)) && !blocks.vms.has(v.id)
          && (off ? Boolean(req.includeStopped) && info?.persistent === true : info !== undefined);
        return off
          ? { ...v, memReservedMiB: 0, demand: { cpuMips: 0, memMiB: 0, diskBytesPerSec: 0, netBytesPerSec: 0 }, migratable: movable }
          : { ...v, migratable: movable };
      }),
    };
    const direct = this.directOptions(unreachable);
    const blockedTargets = Object.fromEntries([...blocks.hosts].filter(([h]) => h !== req.host && direct.unavailable?.[h] === undefined));
    const core = planEvacuationCore(snap, { ...direct, unavailable: { ...direct.unavailable, ...blockedTargets }, host: req.host, targets: req.to });
    const liveMode = req.mode ?? this.config.migration.mode;
    const moves: PlannedMove[] = core.steps.filter((s): s is MigrateStep => s.kind === 'migrate').map((s) => ({
      vm: s.vm, from: s.from, to: s.to, mode: stopped(s.vm) ? 'offline' : liveMode, memMiB: s.memMiB, reason: s.reason, by: s.by,
    }));
    const notMoved: NotMovedReport[] = [];
    for (const n of core.notMoved) {
      if (n.code === 'not-migratable' && stopped(n.vm) && !(req.includeStopped && state.get(n.vm)?.persistent === true && pinned(n.vm))) continue;
      const blocked = n.code === 'not-migratable' ? blocks.vms.get(n.vm) : undefined;
      const reason = blocked ?? (n.code === 'not-migratable' && pinned(n.vm) ? `pinned (vms.${n.vm}.pinned)` : n.reason);
      notMoved.push({
        vm: n.vm, code: blocked !== undefined ? 'migration-unknown' : n.code === 'not-migratable' && pinned(n.vm) ? 'pinned' : n.code, reason,
        hosts: (core.assessments[n.vm] ?? []).map(rejectionOf),
      });
    }
    return {
      host: req.host, moves, notMoved, unreachable,
      skipped: notMoved.map((n) => ({ vm: n.vm, reason: n.hosts.length ? `${n.reason}: ${n.hosts.map((h) => h.reason).join('; ')}` : n.reason })),
      assessments: core.assessments,
    };
  }

  /**
   * Maintenance: moves every VM off `host` through the executor (runPlan), at most
   * `concurrency` migrations at once and `maxPerHost` touching any one host. Each step checks
   * that the world still matches it; a failed or skipped move is reported and the others go on.
   * Takes the cluster lock unless dryRun.
   */
  async evacuate(req: EvacuateRequest): Promise<EvacuateReport> {
    const t0 = performance.now();
    if (req.dryRun) return this.evacuateUnlocked(req, t0, req.signal);
    return this.locked(`tide evacuate ${req.host}`, req.signal, (signal) => this.evacuateUnlocked(req, t0, signal));
  }

  private async evacuateUnlocked(req: EvacuateRequest, t0: number, signal: AbortSignal | undefined): Promise<EvacuateReport> {
    const p = await this.planEvacuation(req);
    req.onEvent?.({ type: 'plan', moves: p.moves, skipped: p.skipped, notMoved: p.notMoved, unreachable: p.unreachable });
    const report: EvacuateReport = {
      host: req.host, dryRun: req.dryRun ?? false, moves: p.moves, moved: [], failed: [], skipped: p.skipped, notMoved: p.notMoved,
      unreachable: p.unreachable, remaining: [], totalMs: 0,
    };
    if (req.dryRun) {
      for (const m of p.moves) {
        const r = await this.migrate({ vm: m.vm, to: m.to, mode: m.mode, settings: req.settings, dryRun: true });
        (r.ok ? report.moved : report.failed).push(r);
      }
    } else {
      // One run per migration mode (the executor applies one set of migration settings per run):
      // live (or the requested mode) first, then shut-off definitions offline.
      const limits = {
        maxConcurrent: Math.max(1, req.concurrency ?? this.config.migration.maxConcurrent),
        maxPerHost: Math.max(1, req.maxPerHost ?? this.config.migration.maxPerHost),
      };
      const probes = new Map<string, ProbeSummary>();
      const hypervisor = req.probe === 'auto' ? this.probing(probes) : this.driver;
      for (const mode of [...new Set(p.moves.map((m) => m.mode))]) {
        const group = p.moves.filter((m) => m.mode === mode);
        const plan: Plan = {
          policy: 'evacuate', time: Date.now() / 1000, hosts: [], notMoved: [],
          steps: group.map((m, i): MigrateStep => ({ kind: 'migrate', id: i + 1, deps: [], vm: m.vm, from: m.from, to: m.to, memMiB: m.memMiB, reason: m.reason, by: m.by })),
        };
        const moveOf = (r: StepRun): PlannedMove => group[r.step.id - 1]!;
        const store = this.store();
        const planId = store.savePlan(plan, { createdMs: Date.now(), mode: 'evacuate', status: 'running' });
        const run = await runPlan(plan, {
          hypervisor, clock: systemClock, limits, migrate: this.migrateOptions(mode, req.settings),
          observer: {
            onStepStart: (r) => {
              store.saveStepRun(planId, r);
              req.onEvent?.({ type: 'start', move: moveOf(r) });
            },
            onProgress: (r, pr) => req.onEvent?.({ type: 'progress', move: moveOf(r), progress: pr }),
            onStepEnd: (r) => {
              store.saveStepRun(planId, r);
              recordUnknownStep(store, planId, r, Date.now());
              const rep = stepReport(r, moveOf(r), probes.get(moveOf(r).vm) ?? null);
              if (r.state === 'succeeded' || r.state === 'failed') {
                store.recordMigration({
                  planId, vm: rep.vm, from: rep.from, to: rep.to, mode: rep.mode, ok: rep.ok, startedMs: r.startedAt ?? 0,
                  totalMs: (r.endedAt ?? 0) - (r.startedAt ?? 0), downtimeMs: rep.downtimeMs, probeDowntimeMs: rep.probeDowntimeMs,
                  bytes: rep.bytes, error: rep.error ? `${rep.error.code}: ${rep.error.message}` : null,
                });
              }
              req.onEvent?.({ type: 'done', move: moveOf(r), report: rep });
            },
          },
        }, signal);
        store.setPlanStatus(planId, run.succeeded === run.steps.length ? 'done' : 'failed');
        for (const r of run.steps) {
          const rep = stepReport(r, moveOf(r), probes.get(moveOf(r).vm) ?? null);
          (rep.ok ? report.moved : report.failed).push(rep);
        }
      }
    }
    report.remaining = await this.remainingOn(req.host, req.includeStopped ?? false);
    report.totalMs = Math.round(performance.now() - t0);
    return report;
  }

  /** The driver with a service probe around each migration of a VM that has one configured. */
  private probing(out: Map<string, ProbeSummary>): HypervisorDriver {
    const d = this.driver;
    return {
      kind: d.kind,
      listHosts: () => d.listHosts(),
      listVms: () => d.listVms(),
      hostDomains: (h) => d.hostDomains(h),
      sample: () => d.sample(),
      preflight: (vm, to, o) => d.preflight(vm, to, o),
      migrate: async (vm, to, o, sig) => {
        const spec = this.config.vms[vm]?.probe ? this.probeFor(vm, 'auto') : null;
        if (!spec) return d.migrate(vm, to, o, sig);
        const r = await this.withProbe(spec, async () => {
          try {
            return { ok: await d.migrate(vm, to, o, sig) };
          } catch (e) {
            return { error: e };
          }
        });
        if (r.summary) out.set(vm, r.summary);
        if ('error' in r.value) throw r.value.error;
        return r.value.ok;
      },
      start: (vm) => d.start(vm),
      stop: (vm, o) => d.stop(vm, o),
      suspend: (vm) => d.suspend(vm),
      resume: (vm) => d.resume(vm),
      close: () => d.close(),
    };
  }

  /**
   * Where a defined, shut-off VM would best start, and why (no side effects): the core's
   * planPlacement over a fresh snapshot. A VM not running has no measured demand, so it is
   * assumed to use all its vCPUs (starting it must not overload its host).
   */
  async planPlace(req: PlaceRequest): Promise<PlacePlan> {
    const unknownTarget = (req.to ?? []).find((t) => !this.config.hosts.some((h) => h.name === t));
    if (unknownTarget !== undefined) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${unknownTarget}' in the configuration`, { host: unknownTarget });
    const { snapshot, hosts, vms } = await this.snapshot(req.intervalMs);
    const unreachable = unreachableOf(hosts);
    const info = vms.find((v) => v.name === req.vm);
    if (!info) {
      throw new DriverError('TIDE_NO_SUCH_VM', `no VM named '${req.vm}' on the hosts that answered${unreachable.length ? ` (${unreachable.map((u) => u.host).join(', ')} did not)` : ''}`, { vm: req.vm, unreachable });
    }
    if (info.state !== 'shutoff') throw new DriverError('TIDE_VM_STATE', `${req.vm} is ${info.state} on ${info.host}: only a shut-off VM is placed`, { vm: req.vm, host: info.host, state: info.state });
    // an unresolved unknown migration (src/app/reconcile.ts): its VM may run elsewhere, its hosts take no VM
    const blocks = blocksOf(this.store().unknownMigrations());
    const blockedVm = blocks.vms.get(req.vm);
    if (blockedVm !== undefined) throw new DriverError('TIDE_MIGRATION_UNKNOWN', `will not place ${req.vm}: ${blockedVm}; run tide reconcile ${req.vm}`, { vm: req.vm, vmOn: null });
    const snap: ClusterSnapshot = {
      ...snapshot,
      vms: snapshot.vms.map((v): Vm => {
        if (v.id === req.vm) {
          return { ...v, host: null, migratable: true, memReservedMiB: v.memMiB, demand: { ...v.demand, cpuMips: v.vcpus * v.mipsPerVcpu, memMiB: v.memMiB } };
        }
        const st = vms.find((x) => x.name === v.id)?.state;
        return st === 'shutoff' || st === 'crashed' ? { ...v, memReservedMiB: 0, demand: { cpuMips: 0, memMiB: 0, diskBytesPerSec: 0, netBytesPerSec: 0 } } : v;
      }),
    };
    const direct = this.directOptions(unreachable);
    const blockedTargets = Object.fromEntries([...blocks.hosts].filter(([h]) => direct.unavailable?.[h] === undefined));
    const core = planPlacement(snap, req.vm, { ...direct, unavailable: { ...direct.unavailable, ...blockedTargets }, targets: req.to });
    const step = core.steps.find((s): s is PlaceStep => s.kind === 'place') ?? null;
    const miss = core.notMoved[0];
    return {
      vm: req.vm, definedOn: info.host, to: step?.to ?? null, reason: step?.reason ?? miss?.reason ?? '',
      hosts: (core.assessments[req.vm] ?? []).map(rejectionOf), unreachable,
    };
  }

  /**
   * Starts a defined, shut-off VM on the host the planner picks (moving its definition there
   * first when it is elsewhere), through the executor; takes the cluster lock unless dryRun.
   */
  async place(req: PlaceRequest): Promise<PlaceReport> {
    const t0 = performance.now();
    const go = async (signal: AbortSignal | undefined): Promise<PlaceReport> => {
      const p = await this.planPlace(req);
      const report: PlaceReport = { ...p, dryRun: req.dryRun ?? false, ok: p.to !== null && Boolean(req.dryRun), totalMs: 0 };
      if (p.to === null) report.error = { code: 'TIDE_NO_HOST_FITS', message: p.reason };
      if (p.to !== null && !req.dryRun) {
        const plan: Plan = { policy: 'place', time: Date.now() / 1000, hosts: [], notMoved: [], steps: [{ kind: 'place', id: 1, deps: [], vm: req.vm, to: p.to, reason: p.reason, by: 'place' }] };
        const store = this.store();
        const planId = store.savePlan(plan, { createdMs: Date.now(), mode: 'place', status: 'running' });
        const run = await runPlan(plan, {
          hypervisor: this.driver, clock: systemClock, migrate: this.migrateOptions('offline', req.settings),
          limits: { maxConcurrent: 1, maxPerHost: 1 },
          observer: { onStepStart: (r) => store.saveStepRun(planId, r), onStepEnd: (r) => store.saveStepRun(planId, r) },
        }, signal);
        store.setPlanStatus(planId, run.succeeded === 1 ? 'done' : 'failed');
        const r = run.steps[0]!;
        report.ok = r.state === 'succeeded';
        if (r.error) report.error = r.error;
        if (r.note) report.note = r.note;
      }
      report.totalMs = Math.round(performance.now() - t0);
      return report;
    };
    return req.dryRun ? go(req.signal) : this.locked(`tide place ${req.vm}`, req.signal, go);
  }

  /**
   * Runs `fn` holding the cluster lock (one actor per cluster, in the store): refused with
   * TIDE_LOCKED naming the holder while another live tide process has it. `fn` gets a signal
   * that aborts when the lock is lost or `signal` aborts; it hands it to runPlan.
   */
  private async locked<T>(command: string, signal: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return withClusterLock(this.store(), currentHolder(command), fn, signal ? { signal } : {});
  }

  private async remainingOn(host: string, includeStopped: boolean): Promise<string[]> {
    return (await this.driver.listVms())
      .filter((v) => v.host === host && (includeStopped || (v.state !== 'shutoff' && v.state !== 'crashed')))
      .map((v) => v.name);
  }

  /**
   * Runs `fn` with the service probe `spec` around it: waits (up to 10 s) for the service to
   * answer first, and after `fn` for a few more answers, then reports what the probe saw.
   */
  private async withProbe<T>(spec: { target: string; netns: string | null }, fn: () => Promise<T>): Promise<{ value: T; summary: ProbeSummary | null }> {
    let warning: string | undefined;
    const probe = await startProbe({ target: spec.target, netns: spec.netns ?? undefined, intervalMs: 20, reportMs: 100, infoPath: undefined });
    if (!(await waitFor(() => (probe.latest()?.ok ?? 0) > 0, 10_000))) warning = 'the service did not answer before the migration started';
    let value: T;
    try {
      value = await fn();
    } catch (e) {
      await probe.stop().catch(() => null);
      throw e;
    }
    // let the window close: wait until the service answered a few times after the move
    const okAtEnd = probe.latest()?.ok ?? 0;
    const back = await waitFor(() => (probe.latest()?.ok ?? 0) >= okAtEnd + 3, 10_000);
    const rep = await probe.stop();
    if (!back && rep.ok <= okAtEnd) warning = [warning, 'the service did not answer within 10 s after the migration'].filter(Boolean).join('; ');
    return { value, summary: probeSummary(spec, rep, warning) };
  }
}

/** Hosts that did not answer, with the transport's reason. */
export function unreachableOf(hosts: readonly HostInfo[]): { host: string; reason: string }[] {
  return hosts.filter((h) => !h.up).map((h) => ({ host: h.name, reason: h.reason ?? 'does not answer' }));
}

function rejectionOf(a: HostAssessment): HostVerdictReport {
  const r: HostVerdictReport = { host: a.host, fits: a.fits, score: a.score, reason: a.reason };
  if (a.by !== undefined) r.by = a.by;
  if (a.code !== undefined) r.code = a.code;
  return r;
}

/** The `tide migrate`-style report of one executed evacuation step. */
function stepReport(r: StepRun, m: PlannedMove, probe: ProbeSummary | null): MigrateReport {
  const rep: MigrateReport = {
    vm: m.vm, from: m.from, to: m.to, mode: m.mode, ok: r.state === 'succeeded', dryRun: false,
    totalMs: r.result?.totalMs ?? null, downtimeMs: r.result?.downtimeMs ?? null, probeDowntimeMs: probe?.downtimeMs ?? null,
    bytes: r.result?.bytes ?? null, iterations: r.result?.iterations ?? null, postCopy: r.result?.postCopy ?? false, probe,
  };
  if (r.state !== 'succeeded') rep.error = r.error ?? { code: 'TIDE_ABORTED', message: `step ${r.state}` };
  return rep;
}

function probeSummary(spec: { target: string; netns: string | null }, r: ProbeReport, warning?: string): ProbeSummary {
  const s: ProbeSummary = {
    target: spec.target,
    netns: spec.netns,
    sent: r.sent,
    ok: r.ok,
    failed: r.failed,
    downtimeMs: r.ok > 0 ? Math.round(r.downtimeMs) : null,
    maxGapMs: Math.round(r.maxGapMs),
    sameBoot: r.sameBoot,
    errors: r.errors,
  };
  if (warning) s.warning = warning;
  return s;
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}

