import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { dashboardDir } from '../../api/dashboard.js';
import { loadConfig } from '../../config/load.js';
import type { TideConfig } from '../../config/schema.js';
import { openDaemon, settingsFromConfig } from '../../daemon/config.js';
import { configSecrets, createLogger } from '../../daemon/log.js';
import { clusterLabelOf, nodeIdOf } from '../../daemon/node-id.js';
import { describeHolder, holderAlive } from '../../store/store.js';
import { createDriver } from '../../drivers/index.js';
import { systemClock } from '../../executor/clock.js';
import { createHttpApp } from '../../http/app.js';
import { MigrationControl } from '../../http/abort.js';
import { EventBus } from '../../http/events.js';
import { effectiveConfig, withEffectiveSections } from '../../http/overrides.js';
import { serveHttp, type HttpServer } from '../../http/serve.js';
import { daemonAddons, webhookSecrets } from '../../metrics/addons.js';
import { webhookTargetsFromConfig } from '../../webhooks/webhooks.js';
import { num, parse } from '../args.js';
import { clusterConfig } from '../cluster.js';
import { processIo, UsageError, type Command } from '../io.js';

const usage = `tide [--config FILE] daemon [--once] [--log-format auto|json|text] [--log-level LEVEL]
             [--stop-grace SEC] [--poll-ms MS]

  Runs Tide unattended: every intervalSec (configuration) a round collects the cluster, plans,
  and — by the configuration's mode — stores the plan (recommend), stores it for an operator to
  approve (approve: tide plans, tide plan show ID, tide approve ID), or executes it (automatic).
  Hosts put in maintenance with \`tide host maintenance on HOST\` are evacuated by a round's plan.
  Holds the cluster lock while it runs; \`tide status\` shows what it does.
  With an \`http\` section in the configuration it also serves the HTTP API on 127.0.0.1 (unless
  http.listen says otherwise; tokens: tide token create; see docs/api.md).

  Logs go to stdout: one JSON object per line when stdout is not a terminal, readable lines on a
  terminal. BMC passwords never appear in them.

  Several controllers of one cluster (one shared store): while another one holds the cluster
  lock this one waits as a standby (its HTTP API serves reads; changes answer 503
  TIDE_NOT_LEADER naming the leader) and takes over when the leader's lease (one interval,
  2-60 s) expires or its process ends. A leader that loses its lease stops acting at once and
  exits 1 (systemd restarts it as a standby). See docs/operations.md, "Several controllers".

  Exit status 0 after a stop; 1 when it could not start (--once while the cluster lock is held
  by another process: TIDE_LOCKED) or lost its lock while running.

  Signals: SIGTERM / SIGINT stop it (no new step starts, running migrations finish; after
  --stop-grace they are aborted safely), release the lock, exit 0; a second SIGINT aborts at once.
  SIGHUP reloads and re-validates the configuration, webhooks included (on error — an unreadable
  webhook secret too — the old one stays in force and the error is logged). SIGUSR1 executes approved plans now.
  See docs/operations.md.

  --once               run one round and exit
  --log-format F       auto (default: JSON unless stdout is a terminal), json or text
  --log-level LEVEL    trace, debug, info (default), warn or error
  --stop-grace SEC     how long a stop waits for running steps (default 900)
  --poll-ms MS         while idle, look for approved plans this often (default 2000; 0: never)`;

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error']);

export const daemonCommand: Command = {
  summary: 'run the control loop unattended (collect → plan → approve → execute), with signals, logs and status',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      once: { type: 'boolean' }, 'log-format': { type: 'string' }, 'log-level': { type: 'string' }, 'stop-grace': { type: 'string' }, 'poll-ms': { type: 'string' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const format = (values['log-format'] as string | undefined) ?? 'auto';
    if (!['auto', 'json', 'text'].includes(format)) throw new UsageError('--log-format is auto, json or text');
    const level = (values['log-level'] as string | undefined) ?? 'info';
    if (!LEVELS.has(level)) throw new UsageError('--log-level is trace, debug, info, warn or error');
    const graceMs = num(values['stop-grace'] as string | undefined, '--stop-grace', 900, { min: 0, max: 86_400 }) * 1000;
    const pollMs = num(values['poll-ms'] as string | undefined, '--poll-ms', 2000, { min: 0, max: 3_600_000, int: true });
    const { config, file } = clusterConfig(values, io);
    // auto: text on a terminal (the process's stdout; in-process callers say with io.isTty).
    const tty = format === 'text' || (format === 'auto' && (io === processIo ? Boolean(process.stdout.isTTY) : io.isTty));
    // (a reload adds the new configuration's secrets; old ones stay redacted)
    const secrets = [...configSecrets(config, file, io.env), ...webhookSecrets(config, file, io.env)];
    const log = createLogger({ write: (l) => io.out(l), tty, level, clock: systemClock, secrets: () => secrets });
    // The HTTP API (config section http): its event bus is fed by the daemon's observer.
    const bus = config.http ? new EventBus() : undefined;
    // Prometheus metrics (GET /metrics on the HTTP server) and webhooks (config section webhooks): src/metrics/addons.ts.
    // (the getters are read only once the daemon runs: opened and current exist by then)
    // (leader gauges: this controller's node id, daemon.nodeId; the cluster named by its store)
    const nodeId = nodeIdOf(config, file);
    const clusterLabel = clusterLabelOf(config, file);
    const addons = daemonAddons({
      config, configFile: file, env: io.env, log, store: () => opened.store, migrationMode: () => current.migration.mode,
      leader: () => ({ cluster: clusterLabel, node: nodeId, ...opened.daemon.role() }),
    });
    // Running migrations, their progress and abort for the HTTP API (POST /api/v1/migrations/{vm}/abort).
    // (the daemon's driver wrapped; closed here, openDaemon closes only the drivers it made)
    const migrations = config.http ? new MigrationControl() : undefined;
    const ownDriver = migrations ? createDriver(config) : undefined;
    const opened = openDaemon(config, file, { standby: !values.once,
      log, stopGraceMs: graceMs, pollMs, observer: bus ? bus.observer(addons.observer) : addons.observer,
      ...(migrations && ownDriver ? { hypervisor: migrations.wrap(ownDriver) } : {}),
    });
    const { daemon } = opened;
    {
      // Two controllers with one node id (a shared configuration file on one machine, or
      // containers with the same hostname and path) would be indistinguishable in tide status
      // and the metrics: say so. Leader election itself is unaffected (the lease token decides).
      const cur = opened.store.clusterLock();
      const other = cur && cur.holder.node === nodeId && !(cur.holder.pid === process.pid && cur.holder.host === hostname()) && holderAlive(cur.holder) && Date.now() - cur.heartbeatMs <= cur.ttlMs;
      if (other) {
        log.warn({ event: 'node-id', node: nodeId, holder: describeHolder(cur.holder) },
          `node id ${nodeId} is also used by ${describeHolder(cur.holder)}, which holds the cluster lease: give each controller its own daemon.nodeId`);
      }
    }
    // current: the configuration file's content; the policy and rules edited through the API
    // (kept in the store) are in force over it while the file's section is unchanged (src/http/overrides.ts).
    let current: TideConfig = config;
    const effective = (file_: TideConfig): ReturnType<typeof settingsFromConfig> => withEffectiveSections(settingsFromConfig(file_), effectiveConfig(file_, opened.store).config);
    {
      const e = effectiveConfig(config, opened.store);
      if (e.policy.source === 'api' || e.rules.source === 'api') {
        daemon.reload(effective(config));
        log.info({ event: 'overrides', policy: e.policy, rules: e.rules }, `in force from the store (set through the HTTP API): ${[e.policy.source === 'api' ? `policy ${e.config.policy.name} (${e.policy.setBy})` : '', e.rules.source === 'api' ? `rules (${e.rules.setBy})` : ''].filter(Boolean).join(', ')}`);
      }
    }
    let http: HttpServer | undefined;
    if (config.http && bus && !values.once) {
      const h = config.http;
      const rel = (f: string): string => resolve(dirname(file), f);
      const app = createHttpApp({
        store: opened.store, config: () => current, bus, notLeader: () => daemon.notLeader(), nodeId, extraRoutes: (a) => addons.routes(a), staticDir: dashboardDir(), ...(migrations ? { migrations } : {}),
        onChange: (what, d) => {
          // webhooks: an approval through the API is announced at once (plan.approved, by the token)
          if (what === 'approve' && d?.planId !== undefined) addons.webhooks?.planApproved(d.planId, d.by ?? 'api');
          daemon.wake();
        },
        // POST /api/v1/policy, /rules (admin), kept in the store: in force from the next round, and after a restart
        applyConfig: (eff, section) => {
          daemon.reload(withEffectiveSections(settingsFromConfig(current), eff));
          log.info({ event: section, policy: eff.policy.name }, `${section} applied through the HTTP API (kept in the store, not written to ${file})`);
        },
        logError: (e, where) => log.error({ event: 'http-error', where, message: e instanceof Error ? e.message : String(e) }, `HTTP ${where}: internal error`),
      });
      try {
        http = await serveHttp(app, { host: h.listen, port: h.port, ...(h.tlsCertFile && h.tlsKeyFile ? { tls: { certFile: rel(h.tlsCertFile), keyFile: rel(h.tlsKeyFile) } } : {}) });
      } catch (e) {
        await addons.close(0);
        await opened.close();
        await ownDriver?.close();
        throw e;
      }
      log.info({ event: 'http', url: http.url }, `HTTP API on ${http.url}/api/v1 (tokens: tide token create --role viewer|operator|admin)`);
    }
    const onStop = (sig: string) => (): void => {
      log.info({ event: 'signal', signal: sig }, `${sig}: stopping`);
      daemon.stop({ reason: sig });
    };
    let interrupts = 0;
    const onInt = (): void => {
      interrupts++;
      log.info({ event: 'signal', signal: 'SIGINT' }, interrupts > 1 ? 'SIGINT again: aborting running steps' : 'SIGINT: stopping (again to abort running steps)');
      daemon.stop(interrupts > 1 ? { graceMs: 0, reason: 'second SIGINT' } : { reason: 'SIGINT' });
    };
    const onTerm = onStop('SIGTERM');
    const onHup = (): void => {
      log.info({ event: 'signal', signal: 'SIGHUP' }, `SIGHUP: reloading ${file}`);
      try {
        const next = loadConfig(file);
        const settings = effective(next);
        const restart = restartNeeded(current, next);
        // The webhooks' secrets are read before anything changes: an unreadable one keeps the old configuration whole.
        secrets.push(...configSecrets(next, file, io.env), ...webhookSecrets(next, file, io.env));
        const targets = webhookTargetsFromConfig(next, file, io.env);
        daemon.reload(settings);
        addons.setWebhookTargets(targets);
        current = next;
        if (restart.length) log.warn({ event: 'reload', restartNeeded: restart }, `changed but applied only at a restart: ${restart.join(', ')}`);
      } catch (e) {
        daemon.reloadFailed(e instanceof Error ? e.message : String(e));
      }
    };
    const onUsr1 = (): void => daemon.wake();
    if (!values.once) {
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
      process.on('SIGHUP', onHup);
      process.on('SIGUSR1', onUsr1);
    }
    try {
      if (values.once) {
        // One round under the lock: run() stops itself after the first round.
        await daemon.run(Infinity, undefined, { maxRounds: 1 });
        return daemon.status().lastRound?.result === 'ok' ? 0 : 1;
      }
      const exit = await daemon.run();
      return exit.reason === 'lock-lost' ? 1 : 0;
    } finally {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      process.off('SIGHUP', onHup);
      process.off('SIGUSR1', onUsr1);
      await http?.close();
      await addons.close();
      await opened.close();
      await ownDriver?.close();
    }
  },
};

/** Sections a reload cannot apply to a running daemon (its drivers and store were built from them). */
function restartNeeded(before: TideConfig, after: TideConfig): string[] {
  const out: string[] = [];
  const hostsKey = (c: TideConfig): string => JSON.stringify(c.hosts.map((h) => [h.name, h.uri, h.peerUri, h.migrationAddress, h.power, h.bootSec]));
  if (hostsKey(before) !== hostsKey(after)) out.push('hosts (URIs, power)');
  if (before.store.path !== after.store.path) out.push('store.path');
  if (before.driver !== after.driver) out.push('driver');
  return out;
}
