/**
 * The daemon over a configuration file: its settings (mode, interval, policy, limits, hosts,
 * rules, schedule) and its dependencies (hypervisor driver, power driver per host, store) built
 * the way the other commands build them. `tide daemon` is a thin shell over openDaemon.
 */
import { recoverAtDaemonStart } from '../app/journal.js';
import { compileSchedule } from '../config/schedule.js';
import type { TideConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { compilePolicy } from '../core/policy.js';
import { createDriver } from '../drivers/index.js';
import type { HypervisorDriver, MigrateOptions } from '../drivers/hypervisor.js';
import { createMetricsSource } from '../drivers/metrics/index.js';
import type { PowerDriver } from '../drivers/power.js';
import { createPowerDriver } from '../drivers/power/index.js';
import { systemClock } from '../executor/clock.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';
import { currentHolder } from '../store/lock.js';
import { createDaemon, type Daemon, type DaemonDeps, type DaemonSettings, type StartContext } from './daemon.js';
import { nodeIdOf } from './node-id.js';

/** MigrateOptions from the configuration's `migration` section. */
export function migrateOptionsOf(config: TideConfig): Omit<MigrateOptions, 'onProgress'> {
  const m = config.migration;
  return {
    mode: m.mode, autoConverge: m.autoConverge, postCopyAfterIterations: m.postCopyAfterIterations, copyStorage: m.copyStorage,
    unsafe: m.unsafe, timeoutSec: m.timeoutSec,
    ...(m.bandwidthMiBps !== undefined ? { bandwidthMiBps: m.bandwidthMiBps } : {}),
    ...(m.maxDowntimeMs !== undefined ? { maxDowntimeMs: m.maxDowntimeMs } : {}),
  };
}

/** The daemon's settings as a validated configuration gives them (compilePolicy may throw TIDE_CONFIG-like input errors). */
export function settingsFromConfig(config: TideConfig): DaemonSettings {
  const bootTimeoutSec = Math.max(60, ...config.hosts.map((h) => 2 * h.bootSec));
  return {
    mode: config.mode,
    intervalSec: config.intervalSec,
    policy: compilePolicy(config.policy.name, config.policy.args),
    limits: { maxConcurrent: config.migration.maxConcurrent, maxPerHost: config.migration.maxPerHost },
    migrate: migrateOptionsOf(config),
    hosts: Object.fromEntries(config.hosts.map((h) => [h.name, { maintenance: h.maintenance, excluded: h.excluded, tags: h.tags }])),
    pinnedVms: Object.entries(config.vms).filter(([, v]) => v.pinned).map(([k]) => k),
    rules: config.rules,
    ...(config.schedule ? { schedule: compileSchedule(config.schedule) } : {}),
    bootTimeoutSec,
    freeze: config.freeze,
    wakeRetrySec: config.wakeRetrySec,
  };
}

/** The store a configuration names (src/store/open.ts: SQLite at store.path, relative to the configuration file, or PostgreSQL). */
export function openConfigStore(config: TideConfig, configFile: string): Store {
  return openStore(config.store, configFile);
}

export interface OpenDaemonOptions extends Partial<Omit<DaemonDeps, 'settings' | 'store' | 'hypervisor' | 'power' | 'clock'>> {
  readonly clock?: Clock;
  /** Replace the configured drivers / store (tests). */
  readonly hypervisor?: HypervisorDriver;
  readonly power?: PowerDriver;
  readonly store?: Store;
}

/** A daemon over the configuration's hosts and store; close() closes what it opened. */
export function openDaemon(config: TideConfig, configFile: string, opts: OpenDaemonOptions = {}): { daemon: Daemon; store: Store; close(): Promise<void> } {
  const clock = opts.clock ?? systemClock;
  const settings = settingsFromConfig(config);
  const store = opts.store ?? openConfigStore(config, configFile);
  const hypervisor = opts.hypervisor ?? createDriver(config);
  const power = opts.power ?? createPowerDriver(config.hosts, { clock });
  // usage from the configured metrics source (libvirt polling through `hypervisor`, or Prometheus)
  const metrics = opts.metrics ?? createMetricsSource(config, hypervisor);
  // crash recovery before the first round (src/app/journal.ts); opts.onStart replaces it
  const onStart = async (ctx: StartContext): Promise<void> => { await recoverAtDaemonStart(ctx); };
  // the lease row names this controller's node id (daemon.nodeId, src/daemon/node-id.ts)
  const lockHolder = opts.lockHolder ?? { ...currentHolder('tide daemon'), node: nodeIdOf(config, configFile) };
  const daemon = createDaemon({ onStart, ...opts, clock, store, hypervisor, power, metrics, settings, configFile, lockHolder });
  return {
    daemon,
    store,
    async close() {
      try {
        if (!opts.metrics) await metrics.close();
        if (!opts.hypervisor) await hypervisor.close();
      } finally {
        if (!opts.store) store.close();
      }
    },
  };
}
