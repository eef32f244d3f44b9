/**
 * Prometheus metrics of one daemon (prom-client), fed by a DaemonObserver:
 *
 *   const metrics = createMetrics({ store, migrationMode: () => daemon.settings.migrate.mode });
 *   createDaemon({ …, observer: metrics.observer });       // or chain it (chainObservers)
 *   app.get('/metrics', metricsHandler(metrics));           // text/plain; version=0.0.4
 *
 * Each createMetrics() has its own Registry (never prom-client's global one), so several daemons
 * and tests in one process do not collide. Gauges describe the cluster as of the last round's
 * collect (utilisation, power state, estimated power), corrected by the power steps that ended
 * after it (a host powered off in this round's plan reads 'off' at once). Counters and histograms
 * grow with what the executor did. Plans by status are read from the store at scrape time.
 *
 * Units are in the names (Prometheus style): _ratio (0..1), _mib, _bytes_per_second, _seconds,
 * _watts, _kwh_total. See docs/metrics.md for every family.
 */
import type { Context } from 'hono';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TickResult } from '../app/controller.js';
import { powerAt } from '../core/model/power.js';
import type { ClusterSnapshot, Host, PowerModel } from '../core/model/types.js';
import type { DaemonObserver } from '../daemon/daemon.js';
import type { StepRun } from '../executor/executor.js';
import type { ClusterLease, PlanStatus, Store } from '../store/store.js';

/** Every host power state a gauge is exported for (exactly one is 1 per host). */
export const POWER_STATES = ['on', 'off', 'standby', 'waking', 'booting', 'unknown'] as const;
export type MetricsPowerState = (typeof POWER_STATES)[number];

const PLAN_STATUSES: readonly PlanStatus[] = ['proposed', 'approved', 'running', 'done', 'failed', 'rejected', 'superseded', 'expired'];

/** Migration wall time, s: live migrations of small VMs take seconds, large ones minutes. */
const DURATION_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800];
/** Switch-over downtime, s: a live migration aims at tens of ms; offline/suspend takes seconds. */
const DOWNTIME_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** The planner call, s: ms for an office, up to seconds for thousands of VMs. */
const PLANNER_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Gaps between rounds longer than this many intervals are not integrated into energy (the daemon was stalled: power unknown). */
const MAX_GAP_INTERVALS = 3;
/** Plans read per status at scrape time (the gauge saturates there; a store keeps far fewer active ones). */
const PLANS_READ = 100_000;

export interface MetricsOptions {
  /** The daemon's store: plans by status are counted from it at each scrape. Absent: no tide_plans gauge values. */
  readonly store?: Store | (() => Store | undefined);
  /** The migration mode a failed migration (which has no result) is counted under (default 'live'). */
  readonly migrationMode?: () => string;
  /** Metric name prefix (default 'tide_'). */
  readonly prefix?: string;
  /**
   * Leader election (several controllers): this controller's identity and role, read at each
   * scrape. Absent: no tide_leader, tide_fencing_token, tide_lease_renew_age_seconds series.
   */
  readonly leader?: () => LeaderView | undefined;
}

/** What the leader gauges say of one controller. */
export interface LeaderView {
  /** The cluster (its store: src/daemon/node-id.ts clusterLabelOf). */
  readonly cluster: string;
  /** This controller's node id (daemon.nodeId). */
  readonly node: string;
  /** The daemon's role (Daemon.role()): only 'leader' counts as leading. */
  readonly role: 'starting' | 'standby' | 'leader' | 'stopped';
  /** The lease it holds when it leads. */
  readonly lease: ClusterLease | null;
}

export interface Metrics {
  readonly registry: Registry;
  /** Give it to createDaemon (or chain it with others: chainObservers). */
  readonly observer: DaemonObserver;
  /** The exposition text (Prometheus text format 0.0.4). */
  render(): Promise<string>;
  /** 'text/plain; version=0.0.4; charset=utf-8' */
  readonly contentType: string;
}

/** One observer that calls each of several in turn (a throwing one does not stop the others). */
export function chainObservers(...observers: readonly (DaemonObserver | undefined)[]): DaemonObserver {
  const list = observers.filter((o): o is DaemonObserver => o !== undefined);
  const call = <K extends keyof DaemonObserver>(k: K) => (...args: unknown[]): void => {
    for (const o of list) {
      const f = o[k] as ((...a: unknown[]) => void) | undefined;
      try {
        f?.apply(o, args);
      } catch { /* an observer must not break the daemon nor the other observers */ }
    }
  };
  const keys: (keyof DaemonObserver)[] = ['onStepStart', 'onStepEnd', 'onProgress', 'onPlan', 'onRunEnd', 'onRoundError', 'onReconcile', 'onTick', 'onFreeze', 'onRound', 'onPlanStatus'];
  return Object.fromEntries(keys.map((k) => [k, call(k)])) as DaemonObserver;
}

/** A host's estimated draw, W, in a power state at CPU ratio u (unknown counts as idle: it is most likely on). */
export function estimatedWatts(model: PowerModel, state: MetricsPowerState, u: number): number {
  switch (state) {
    case 'on': return powerAt(model, Math.min(1, Math.max(0, u)));
    case 'off':
    case 'standby': return model.offW;
    case 'waking':
    case 'booting': return model.bootW > 0 ? model.bootW : model.wattsAtLoad[0]!;
    case 'unknown': return model.wattsAtLoad[0]!;
  }
}

interface HostView {
  readonly host: Host;
  /** CPU used / capacity, 0..1. */
  readonly cpuRatio: number;
}

/** Per-host utilisation from a snapshot: measured host CPU when known, else the sum of its VMs' demand. */
function hostViews(s: ClusterSnapshot): Map<string, HostView & { memMiB: number; diskBps: number; netBps: number }> {
  const out = new Map<string, HostView & { memMiB: number; diskBps: number; netBps: number }>();
  const demand = new Map<string, { cpu: number; mem: number; disk: number; net: number }>();
  for (const v of s.vms) {
    if (v.host === null) continue;
    const d = demand.get(v.host) ?? { cpu: 0, mem: 0, disk: 0, net: 0 };
    d.cpu += v.demand.cpuMips;
    d.mem += v.demand.memMiB;
    d.disk += v.demand.diskBytesPerSec;
    d.net += v.demand.netBytesPerSec;
    demand.set(v.host, d);
  }
  for (const h of s.hosts) {
    const d = demand.get(h.id) ?? { cpu: 0, mem: 0, disk: 0, net: 0 };
    const cap = h.cpuCores * h.mipsPerCore;
    const used = h.cpuUsedMips ?? d.cpu;
    out.set(h.id, { host: h, cpuRatio: cap > 0 ? Math.min(1, used / cap) : 0, memMiB: d.mem, diskBps: d.disk, netBps: d.net });
  }
  return out;
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const p = opts.prefix ?? 'tide_';
  const registry = new Registry();
  const reg = [registry];
  const hostCpu = new Gauge({ name: `${p}host_cpu_ratio`, help: 'Host CPU used / capacity (0..1), as of the last round', labelNames: ['host'], registers: reg });
  const hostMem = new Gauge({ name: `${p}host_memory_used_mib`, help: 'Memory the host\'s VMs use, MiB', labelNames: ['host'], registers: reg });
  const hostMemTotal = new Gauge({ name: `${p}host_memory_total_mib`, help: 'Host memory, MiB', labelNames: ['host'], registers: reg });
  const hostDisk = new Gauge({ name: `${p}host_disk_bytes_per_second`, help: 'Disk throughput of the host\'s VMs, bytes/s', labelNames: ['host'], registers: reg });
  const hostNet = new Gauge({ name: `${p}host_net_bytes_per_second`, help: 'Network throughput of the host\'s VMs, bytes/s', labelNames: ['host'], registers: reg });
  const vmCpu = new Gauge({ name: `${p}vm_cpu_ratio`, help: 'VM CPU demand / its vCPUs\' capacity (0..1)', labelNames: ['vm', 'host'], registers: reg });
  const vmMem = new Gauge({ name: `${p}vm_memory_used_mib`, help: 'Memory the guest uses, MiB', labelNames: ['vm', 'host'], registers: reg });
  const vmDisk = new Gauge({ name: `${p}vm_disk_bytes_per_second`, help: 'VM disk throughput (read + write), bytes/s', labelNames: ['vm', 'host'], registers: reg });
  const vmNet = new Gauge({ name: `${p}vm_net_bytes_per_second`, help: 'VM network throughput (rx + tx), bytes/s', labelNames: ['vm', 'host'], registers: reg });
  const powerState = new Gauge({ name: `${p}host_power_state`, help: `Host power state: 1 for the current state, 0 for the others (${POWER_STATES.join(', ')})`, labelNames: ['host', 'state'], registers: reg });
  const watts = new Gauge({ name: `${p}host_power_watts`, help: 'Estimated host draw from its power model and CPU utilisation, W', labelNames: ['host'], registers: reg });
  const clusterWatts = new Gauge({ name: `${p}power_watts`, help: 'Estimated draw of all hosts, W', registers: reg });
  const energy = new Counter({ name: `${p}energy_kwh_total`, help: 'Estimated energy of each host since the daemon started, kWh (round-by-round integral of the estimated draw)', labelNames: ['host'], registers: reg });
  const migrations = new Counter({ name: `${p}migrations_total`, help: 'Migrations that ended (succeeded or failed), by mode', labelNames: ['mode'], registers: reg });
  const migrationsFailed = new Counter({ name: `${p}migrations_failed_total`, help: 'Migrations that failed, by mode', labelNames: ['mode'], registers: reg });
  const duration = new Histogram({ name: `${p}migration_duration_seconds`, help: 'Wall time of a finished migration, s', labelNames: ['mode'], buckets: DURATION_BUCKETS, registers: reg });
  const downtime = new Histogram({ name: `${p}migration_downtime_seconds`, help: 'Guest downtime of a successful migration (switch-over), s', labelNames: ['mode'], buckets: DOWNTIME_BUCKETS, registers: reg });
  const planner = new Histogram({ name: `${p}planner_latency_seconds`, help: 'Wall time of the planner call (plan + guard) in a round, s', buckets: PLANNER_BUCKETS, registers: reg });
  const plansCreated = new Counter({ name: `${p}plans_created_total`, help: 'Plans with at least one step that rounds stored', registers: reg });
  const powerActions = new Counter({ name: `${p}power_actions_total`, help: 'Power steps that ended, by action and outcome', labelNames: ['action', 'state'], registers: reg });
  const rounds = new Counter({ name: `${p}rounds_total`, help: 'Daemon rounds, by result', labelNames: ['result'], registers: reg });
  const roundErrors = new Counter({ name: `${p}round_errors_total`, help: 'Failed rounds, by Tide error code', labelNames: ['code'], registers: reg });
  const frozen = new Gauge({ name: `${p}frozen`, help: 'Telemetry freeze: 1 while moves are frozen, with the reason codes (sorted, comma-separated); 0 with reason ""', labelNames: ['reason'], registers: reg });
  frozen.set({ reason: '' }, 0);
  const storeOf = (): Store | undefined => (typeof opts.store === 'function' ? opts.store() : opts.store);
  new Gauge({
    name: `${p}plans`, help: 'Plans in the store by status', labelNames: ['status'], registers: reg,
    collect() {
      const store = storeOf();
      if (!store) return;
      for (const s of PLAN_STATUSES) {
        try {
          this.set({ status: s }, store.listPlans({ status: s, limit: PLANS_READ }).length);
        } catch { /* a failing store: the last values stand */ }
      }
    },
  });

  // Leader election, read at scrape time: the daemon's own role and lease, and the store's lease row.
  const leaderOf = (): LeaderView | undefined => {
    try {
      return opts.leader?.();
    } catch {
      return undefined;
    }
  };
  const leaseRow = (): ReturnType<Store['clusterLock']> => {
    try {
      return storeOf()?.clusterLock();
    } catch {
      return undefined; // a store that does not answer: no lease series this scrape
    }
  };
  new Gauge({
    name: `${p}leader`, help: 'Leader election: 1 while this controller leads the cluster (holds the lease), 0 on a standby (or starting, stopped)', labelNames: ['cluster', 'node'], registers: reg,
    collect() {
      this.reset();
      const l = leaderOf();
      if (l) this.set({ cluster: l.cluster, node: l.node }, l.role === 'leader' && l.lease !== null ? 1 : 0);
    },
  });
  new Gauge({
    name: `${p}fencing_token`,
    help: 'The fencing token in force, as label `token` (an opaque id checked on every journal write and side effect); value: when that lease was acquired, s since the epoch (a newer lease has a larger value). On the leader its own lease; on a standby the lease row in the store',
    labelNames: ['cluster', 'node', 'token'], registers: reg,
    collect() {
      this.reset();
      const l = leaderOf();
      if (!l) return;
      const own = l.role === 'leader' ? l.lease : null;
      const cur = own ?? leaseRow() ?? null;
      if (cur) this.set({ cluster: l.cluster, node: l.node, token: cur.token }, cur.acquiredMs / 1000);
    },
  });
  new Gauge({
    name: `${p}lease_renew_age_seconds`,
    help: 'Seconds since the cluster lease in the store was last renewed (by whichever controller leads), as this controller reads it; above the lease TTL a standby takes over. No series while no controller holds the lease',
    labelNames: ['cluster', 'node'], registers: reg,
    collect() {
      this.reset();
      const l = leaderOf();
      const row = l ? leaseRow() : undefined;
      if (l && row) this.set({ cluster: l.cluster, node: l.node }, Math.max(0, Date.now() - row.heartbeatMs) / 1000);
    },
  });

  /** Per host: the state the last round saw, and power steps that ended after it (they win). */
  const models = new Map<string, PowerModel>();
  const seenState = new Map<string, MetricsPowerState>();
  const cpuOf = new Map<string, number>();
  const stepState = new Map<string, { state: MetricsPowerState; atMs: number }>();
  let lastAt: number | null = null;
  let lastSnapshotMs = -Infinity;
  let intervalSec = 300;
  let lastWatts = new Map<string, number>();

  /** Energy: the draw published last, from then until atMs (clock ms); gaps over MAX_GAP_INTERVALS intervals count only that long. */
  const accumulate = (atMs: number): void => {
    if (lastAt !== null && atMs > lastAt) {
      const dtSec = Math.min((atMs - lastAt) / 1000, MAX_GAP_INTERVALS * intervalSec);
      for (const [host, w] of lastWatts) if (w > 0) energy.inc({ host }, (w * dtSec) / 3.6e6);
    }
    if (lastAt === null || atMs > lastAt) lastAt = atMs;
  };

  const stateOf = (host: string): MetricsPowerState => {
    const st = stepState.get(host);
    if (st && st.atMs >= lastSnapshotMs) return st.state;
    return seenState.get(host) ?? 'unknown';
  };

  /** Writes the power-state and power gauges from what is known now. */
  const publishPower = (): void => {
    let total = 0;
    const next = new Map<string, number>();
    for (const [host, model] of models) {
      const st = stateOf(host);
      for (const s of POWER_STATES) powerState.set({ host, state: s }, s === st ? 1 : 0);
      const w = estimatedWatts(model, st, cpuOf.get(host) ?? 0);
      watts.set({ host }, w);
      next.set(host, w);
      total += w;
    }
    clusterWatts.set(total);
    lastWatts = next;
  };

  const onTick = (t: TickResult): void => {
    const s = t.snapshot;
    intervalSec = s.sampleIntervalSec;
    accumulate(t.at);
    lastSnapshotMs = s.time * 1000;
    const views = hostViews(s);
    for (const g of [hostCpu, hostMem, hostMemTotal, hostDisk, hostNet, vmCpu, vmMem, vmDisk, vmNet, powerState, watts]) g.reset();
    models.clear();
    for (const [id, v] of views) {
      const h = v.host;
      models.set(id, h.power);
      seenState.set(id, h.powerState);
      cpuOf.set(id, h.powerState === 'on' ? v.cpuRatio : 0);
      hostCpu.set({ host: id }, h.powerState === 'on' ? v.cpuRatio : 0);
      hostMem.set({ host: id }, v.memMiB);
      hostMemTotal.set({ host: id }, h.memMiB);
      hostDisk.set({ host: id }, v.diskBps);
      hostNet.set({ host: id }, v.netBps);
    }
    for (const vm of s.vms) {
      const labels = { vm: vm.id, host: vm.host ?? '' };
      const cap = vm.vcpus * vm.mipsPerVcpu;
      vmCpu.set(labels, cap > 0 ? Math.min(1, vm.demand.cpuMips / cap) : 0);
      vmMem.set(labels, vm.demand.memMiB);
      vmDisk.set(labels, vm.demand.diskBytesPerSec);
      vmNet.set(labels, vm.demand.netBytesPerSec);
    }
    publishPower();
  };

  const onStepStart = (r: StepRun): void => {
    const s = r.step;
    if (s.kind === 'powerOn') {
      accumulate(r.startedAt ?? lastSnapshotMs);
      stepState.set(s.host, { state: 'booting', atMs: r.startedAt ?? lastSnapshotMs });
      if (models.has(s.host)) publishPower();
    }
  };

  const onStepEnd = (r: StepRun): void => {
    const s = r.step;
    if (s.kind === 'migrate' && (r.state === 'succeeded' || r.state === 'failed')) {
      const mode = r.result?.mode ?? opts.migrationMode?.() ?? 'live';
      migrations.inc({ mode });
      if (r.state === 'failed') migrationsFailed.inc({ mode });
      if (r.startedAt !== undefined && r.endedAt !== undefined) duration.observe({ mode }, Math.max(0, (r.endedAt - r.startedAt) / 1000));
      if (r.state === 'succeeded' && r.result?.downtimeMs != null) downtime.observe({ mode }, r.result.downtimeMs / 1000);
    }
    if (s.kind === 'powerOn' || s.kind === 'powerOff') {
      powerActions.inc({ action: s.kind, state: r.state });
      const at = r.endedAt ?? lastSnapshotMs;
      accumulate(at);
      if (r.state === 'succeeded') stepState.set(s.host, { state: s.kind === 'powerOn' ? 'on' : 'off', atMs: at });
      else if (s.kind === 'powerOn') stepState.delete(s.host); // the booting overlay ends; the next round tells
      if (s.kind === 'powerOff' && r.state === 'succeeded') cpuOf.set(s.host, 0);
      if (models.has(s.host)) publishPower();
    }
  };

  const observer: DaemonObserver = {
    onTick,
    onStepStart,
    onStepEnd,
    onPlan: (plan, _at, planId, planMs) => {
      if (planMs !== undefined) planner.observe(planMs / 1000);
      if (planId !== null && plan.steps.length > 0) plansCreated.inc();
    },
    onFreeze: (f) => {
      frozen.reset();
      const codes = [...new Set(f.reasons.map((r) => r.code))].sort().join(',');
      if (f.frozen) frozen.set({ reason: codes || 'frozen' }, 1);
      else frozen.set({ reason: '' }, 0);
    },
    onRound: (r) => {
      rounds.inc({ result: r.result });
      if (r.error) roundErrors.inc({ code: r.error.code });
    },
  };

  return { registry, observer, render: () => registry.metrics(), contentType: registry.contentType };
}

/** A Hono handler for GET /metrics. */
export function metricsHandler(metrics: Pick<Metrics, 'render' | 'contentType'>): (c: Context) => Promise<Response> {
  return async (c: Context) => {
    const text = await metrics.render();
    return c.body(text, 200, { 'Content-Type': metrics.contentType });
  };
}
