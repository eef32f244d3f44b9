/**
 * Programmatic API of a real cluster (the CLI's `hosts`, `vms`, `migrate`, `evacuate` and
 * `bench migrate` are thin shells over it): inventory with utilisation, one migration with an
 * optional service probe, and host evacuation under the configured concurrency limits.
 *
 *   const cluster = Cluster.open(loadConfig('tide.json'));
 *   try { const r = await cluster.migrate({ vm: 'vm1', to: 'lab-b', probe: 'auto' }); }
 *   finally { await cluster.close(); }
 *
 * Migration settings come from the configuration (`migration.*`) unless overridden per call.
 */
import type { TideConfig } from '../config/schema.js';
import { createDriver } from '../drivers/index.js';
import { DriverError, isDriverError } from '../drivers/errors.js';
import type {
  HostInfo, HostUsage, HypervisorDriver, MigrateOptions, MigrationMode, MigrationProgress, MigrationResult, PreflightCheck, VmInfo, VmUsage,
} from '../drivers/hypervisor.js';
import { parseProbeTarget, startProbe, type ProbeReport, type RunningProbe } from '../probe/index.js';

export interface HostReport extends HostInfo {
  maintenance: boolean;
  excluded: boolean;
  tags: string[];
  /** VMs active on the host. */
  vms: number;
  usage: HostUsage | null;
}

export interface VmReport extends VmInfo {
  pinned: boolean;
  usage: VmUsage | null;
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
  onEvent?: (e: EvacuateEvent) => void;
  signal?: AbortSignal;
}

export interface PlannedMove { vm: string; from: string; to: string; mode: MigrationMode; memMiB: number }

export type EvacuateEvent =
  | { type: 'plan'; moves: PlannedMove[]; skipped: { vm: string; reason: string }[] }
  | { type: 'start'; move: PlannedMove }
  | { type: 'progress'; move: PlannedMove; progress: MigrationProgress }
  | { type: 'done'; move: PlannedMove; report: MigrateReport };

export interface EvacuateReport {
  host: string;
  dryRun: boolean;
  moves: PlannedMove[];
  moved: MigrateReport[];
  failed: MigrateReport[];
  skipped: { vm: string; reason: string }[];
  /** VMs still active (or, with includeStopped, defined) on the host afterwards. */
  remaining: string[];
  totalMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Cluster {
  constructor(readonly config: TideConfig, readonly driver: HypervisorDriver) {}

  /** A cluster over the driver the configuration asks for (or `driver`, e.g. a FakeDriver). */
  static open(config: TideConfig, opts: { driver?: HypervisorDriver } = {}): Cluster {
    return new Cluster(config, opts.driver ?? createDriver(config));
  }

  async close(): Promise<void> {
    await this.driver.close();
  }

  /**
   * Two samples `intervalMs` apart (rates need an interval): the second is returned. The
   * driver remembers counters between calls, so a long-lived caller can just call sample().
   */
  async usage(intervalMs = 1000): Promise<{ hosts: HostUsage[]; vms: VmUsage[] }> {
    await this.driver.sample();
    await sleep(intervalMs);
    return this.driver.sample();
  }

  async hosts(opts: { usage?: boolean; intervalMs?: number } = {}): Promise<HostReport[]> {
    const [hosts, vms, usage] = await Promise.all([
      this.driver.listHosts(),
      this.driver.listVms(),
      opts.usage === false ? Promise.resolve(null) : this.usage(opts.intervalMs),
    ]);
    return hosts.map((h) => {
      const cfg = this.config.hosts.find((c) => c.name === h.name);
      return {
        ...h,
        maintenance: cfg?.maintenance ?? false,
        excluded: cfg?.excluded ?? false,
        tags: cfg?.tags ?? [],
        vms: vms.filter((v) => v.host === h.name && v.state !== 'shutoff').length,
        usage: usage?.hosts.find((u) => u.host === h.name) ?? null,
      };
    });
  }

  async vms(opts: { usage?: boolean; intervalMs?: number; host?: string } = {}): Promise<VmReport[]> {
    const [vms, usage] = await Promise.all([
      this.driver.listVms(),
      opts.usage === false ? Promise.resolve(null) : this.usage(opts.intervalMs),
    ]);
    return vms.filter((v) => opts.host === undefined || v.host === opts.host).map((v) => ({
      ...v,
      pinned: this.config.vms[v.name]?.pinned ?? false,
      usage: usage?.vms.find((u) => u.vm === v.name && u.host === v.host) ?? null,
    }));
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
    let probe: RunningProbe | null = null;
    let warning: string | undefined;
    if (probeSpec) {
      probe = await startProbe({ target: probeSpec.target, netns: probeSpec.netns ?? undefined, intervalMs: 20, reportMs: 100, infoPath: undefined });
      if (!(await waitFor(() => (probe!.latest()?.ok ?? 0) > 0, 10_000))) warning = 'the service did not answer before the migration started';
    }
    let result: MigrationResult | null = null;
    let error: DriverError | null = null;
    try {
      result = await this.driver.migrate(req.vm, req.to, { ...opts, onProgress: req.onProgress }, req.signal);
    } catch (e) {
      if (!isDriverError(e)) {
        await probe?.stop().catch(() => null);
        throw e;
      }
      error = e;
    }
    let summary: ProbeSummary | null = null;
    if (probe && probeSpec) {
      // let the window close: wait until the service answered a few times after the move
      const okAtEnd = probe.latest()?.ok ?? 0;
      const back = await waitFor(() => (probe!.latest()?.ok ?? 0) >= okAtEnd + 3, 10_000);
      const rep = await probe.stop();
      if (!back && rep.ok <= okAtEnd) warning = [warning, 'the service did not answer within 10 s after the migration'].filter(Boolean).join('; ');
      summary = probeSummary(probeSpec, rep, warning);
    }
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
    }
    return report;
  }

  /** Which VMs an evacuation of `host` moves where (no side effects). */
  async planEvacuation(req: EvacuateRequest): Promise<{ moves: PlannedMove[]; skipped: { vm: string; reason: string }[] }> {
    const cfgHost = this.config.hosts.find((h) => h.name === req.host);
    if (!cfgHost) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${req.host}' in the configuration`, { host: req.host });
    const [hosts, vms] = await Promise.all([this.driver.listHosts(), this.driver.listVms()]);
    const src = hosts.find((h) => h.name === req.host);
    if (!src?.up) throw new DriverError('TIDE_HOST_UNREACHABLE', `${req.host} does not answer`, { host: req.host });
    const unknown = (req.to ?? []).filter((t) => !this.config.hosts.some((h) => h.name === t));
    if (unknown.length) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${unknown[0]}' in the configuration`, { host: unknown[0] });
    const targets = hosts.filter((h) => {
      const c = this.config.hosts.find((x) => x.name === h.name);
      if (h.name === req.host || !h.up || !c) return false;
      if (req.to) return req.to.includes(h.name);
      return !c.maintenance && !c.excluded;
    });
    // memory committed on each target (active VMs), then largest VMs first onto the emptiest host
    const committed = new Map(targets.map((t) => [t.name, vms.filter((v) => v.host === t.name && v.state !== 'shutoff').reduce((s, v) => s + v.memMiB, 0)]));
    const skipped: { vm: string; reason: string }[] = [];
    const moves: PlannedMove[] = [];
    const mine = vms.filter((v) => v.host === req.host).sort((a, b) => b.memMiB - a.memMiB || a.name.localeCompare(b.name));
    for (const v of mine) {
      const stopped = v.state === 'shutoff' || v.state === 'crashed';
      if (stopped && !req.includeStopped) continue;
      if (stopped && !v.persistent) continue;
      if (this.config.vms[v.name]?.pinned && !req.includePinned) {
        skipped.push({ vm: v.name, reason: `pinned (vms.${v.name}.pinned)` });
        continue;
      }
      const best = targets
        .map((t) => ({ t, free: t.memMiB - (committed.get(t.name) ?? 0) }))
        .filter((x) => stopped || x.free >= v.memMiB)
        .sort((a, b) => b.free - a.free || a.t.name.localeCompare(b.t.name))[0];
      if (!best) {
        skipped.push({ vm: v.name, reason: targets.length ? `no target has ${v.memMiB} MiB free` : 'no target host (all down, in maintenance or excluded)' });
        continue;
      }
      if (!stopped) committed.set(best.t.name, (committed.get(best.t.name) ?? 0) + v.memMiB);
      moves.push({ vm: v.name, from: req.host, to: best.t.name, mode: stopped ? 'offline' : req.mode ?? this.config.migration.mode, memMiB: v.memMiB });
    }
    return { moves, skipped };
  }

  /**
   * Maintenance: moves every VM off `host`, at most `concurrency` migrations at once and
   * `maxPerHost` touching any one host. A failed move is reported and the others go on.
   */
  async evacuate(req: EvacuateRequest): Promise<EvacuateReport> {
    const t0 = performance.now();
    const { moves, skipped } = await this.planEvacuation(req);
    req.onEvent?.({ type: 'plan', moves, skipped });
    const report: EvacuateReport = { host: req.host, dryRun: req.dryRun ?? false, moves, moved: [], failed: [], skipped, remaining: [], totalMs: 0 };
    if (req.dryRun) {
      for (const m of moves) {
        const r = await this.migrate({ vm: m.vm, to: m.to, mode: m.mode, settings: req.settings, dryRun: true });
        (r.ok ? report.moved : report.failed).push(r);
      }
      report.remaining = await this.remainingOn(req.host, req.includeStopped ?? false);
      report.totalMs = Math.round(performance.now() - t0);
      return report;
    }
    const limit = Math.max(1, req.concurrency ?? this.config.migration.maxConcurrent);
    const perHost = Math.max(1, req.maxPerHost ?? this.config.migration.maxPerHost);
    const busy = new Map<string, number>();
    const queue = [...moves];
    const running = new Set<Promise<void>>();
    const fits = (m: PlannedMove): boolean => (busy.get(m.from) ?? 0) < perHost && (busy.get(m.to) ?? 0) < perHost;
    const runOne = async (m: PlannedMove): Promise<void> => {
      for (const h of [m.from, m.to]) busy.set(h, (busy.get(h) ?? 0) + 1);
      req.onEvent?.({ type: 'start', move: m });
      try {
        const probe = req.probe === 'auto' && this.config.vms[m.vm]?.probe ? 'auto' : undefined;
        const r = await this.migrate({
          vm: m.vm, to: m.to, mode: m.mode, settings: req.settings, probe, signal: req.signal,
          onProgress: (p) => req.onEvent?.({ type: 'progress', move: m, progress: p }),
        });
        (r.ok ? report.moved : report.failed).push(r);
        req.onEvent?.({ type: 'done', move: m, report: r });
      } finally {
        for (const h of [m.from, m.to]) busy.set(h, (busy.get(h) ?? 1) - 1);
      }
    };
    while (queue.length > 0 || running.size > 0) {
      if (req.signal?.aborted) queue.length = 0;
      let started = false;
      while (running.size < limit) {
        const i = queue.findIndex(fits);
        if (i < 0) break;
        const m = queue.splice(i, 1)[0]!;
        const p: Promise<void> = runOne(m).finally(() => running.delete(p));
        running.add(p);
        started = true;
      }
      if (running.size === 0 && !started) break; // nothing can start (cannot happen with limits ≥ 1)
      if (running.size > 0) await Promise.race(running);
    }
    report.remaining = await this.remainingOn(req.host, req.includeStopped ?? false);
    report.totalMs = Math.round(performance.now() - t0);
    return report;
  }

  private async remainingOn(host: string, includeStopped: boolean): Promise<string[]> {
    return (await this.driver.listVms())
      .filter((v) => v.host === host && (includeStopped || (v.state !== 'shutoff' && v.state !== 'crashed')))
      .map((v) => v.name);
  }
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
