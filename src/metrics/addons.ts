/**
 * The daemon's metrics and webhooks in one value, for `tide daemon` and `tide demo --serve`:
 *
 *   const addons = daemonAddons({ config, configFile, env: process.env, log, store: () => opened?.store, migrationMode: () => config.migration.mode });
 *   openDaemon(config, file, { observer: bus.observer(addons.observer), … });
 *   createHttpApp({ …, extraRoutes: (app) => addons.routes(app) });   // GET /metrics
 *   …; await addons.close();                                            // drops queued webhooks
 *
 * The logger must know the webhook secrets to redact them: createLogger({ secrets: [...configSecrets(…), ...webhookSecrets(config, file, env)] }).
 */
import type { Env, Hono } from 'hono';
import type { TideConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { DaemonLog, DaemonObserver } from '../daemon/daemon.js';
import { systemClock } from '../executor/clock.js';
import type { Store } from '../store/store.js';
import { createWebhooks, webhookTargetsFromConfig, type WebhookTarget, type Webhooks } from '../webhooks/webhooks.js';
import { chainObservers, createMetrics, metricsHandler, type LeaderView, type Metrics } from './prometheus.js';

export { webhookSecrets } from '../webhooks/webhooks.js';

export interface DaemonAddonsOptions {
  readonly config: Pick<TideConfig, 'webhooks'>;
  readonly configFile: string | null;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log?: DaemonLog;
  /** The daemon's store (a getter: it may be opened after the observer is made). */
  readonly store?: Store | (() => Store | undefined);
  /** The configured migration mode (failed migrations are counted under it). */
  readonly migrationMode?: () => string;
  /** Webhook retry backoff (default: the system clock — a virtual clock would stall retries unless driven). */
  readonly webhookClock?: Clock;
  /** Leader election gauges (tide_leader, tide_fencing_token, tide_lease_renew_age_seconds): this controller's identity and role. */
  readonly leader?: () => LeaderView | undefined;
}

export interface DaemonAddons {
  readonly metrics: Metrics;
  /** null: no webhooks configured (now: a reload may add or remove them). */
  readonly webhooks: Webhooks | null;
  /**
   * A reloaded configuration's webhooks (SIGHUP; read them with webhookTargetsFromConfig, which
   * throws before anything changes when a secret cannot be read): Webhooks.setTargets.
   */
  setWebhookTargets(targets: readonly WebhookTarget[]): void;
  /** Metrics and webhooks; chain it with the HTTP event bus (bus.observer(addons.observer)). */
  readonly observer: DaemonObserver;
  /** Adds GET /metrics (outside /api/v1: no token; the server binds to 127.0.0.1 by default). */
  routes<E extends Env>(app: Hono<E>): void;
  /** Gives queued webhooks up to flushMs (wall ms, default 5000) to go out, then drops the rest. */
  close(flushMs?: number): Promise<void>;
}

/** Throws ConfigError when a webhook's secret cannot be read. */
export function daemonAddons(opts: DaemonAddonsOptions): DaemonAddons {
  const metrics = createMetrics({
    ...(opts.store ? { store: opts.store } : {}), ...(opts.migrationMode ? { migrationMode: opts.migrationMode } : {}), ...(opts.leader ? { leader: opts.leader } : {}),
  });
  const targets = webhookTargetsFromConfig(opts.config, opts.configFile, opts.env);
  // Always made (with no target it sends nothing), so that a reload can add targets.
  const webhooks = createWebhooks(targets, {
    clock: opts.webhookClock ?? systemClock, ...(opts.log ? { log: opts.log } : {}), ...(opts.store ? { store: opts.store } : {}),
  });
  const handler = metricsHandler(metrics);
  return {
    metrics,
    get webhooks() { return webhooks.targets.length === 0 ? null : webhooks; },
    setWebhookTargets: (targets) => webhooks.setTargets(targets),
    observer: chainObservers(metrics.observer, webhooks.observer),
    routes: (app) => {
      app.get('/metrics', handler);
    },
    close: async (flushMs = 5000) => {
      await webhooks.close(flushMs);
    },
  };
}
