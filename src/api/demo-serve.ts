/**
 * `tide demo --serve`: the demo daemon (src/daemon) on the simulated office, paced at a
 * watchable speed (default: a day in 10 minutes), with the HTTP API (src/http/app.ts) and the
 * dashboard (dist/web) served on 127.0.0.1. An admin token is created in the run's store and
 * handed back once (printed, or written to a file by the CLI).
 *
 * Time: the daemon runs on a VirtualClock from t = 0 (Monday 00:00 of the simulated week); the
 * API's clock is that time on the schedule's epoch (SIM_MONDAY_EPOCH_SEC), so the schedule
 * route and the dashboard read "Mon 19:00", not wall time. Besides the API, the demo serves
 * GET /metrics (Prometheus, no token) and one viewer route, GET /api/v1/demo: simulated time,
 * speed, energy with Tide vs the same datacenter left always on; with ?history=1 the per-round
 * history (hosts on, energy, migrations, CPU per host).
 *
 * Observation first (observeDays > 0, `tide demo --serve --observe-days N`): as `tide demo`
 * does, the daemon first runs N days in recommend mode — plans stored, nothing executed, metrics
 * history recorded, demand profile learned — as fast as it can, before serveDemo resolves; then
 * its configuration is reloaded in `mode` (as with SIGHUP) and the acting `hours` are served
 * paced. The dashboard's history (GET /api/v1/demo?history=1) and its always-on baseline start
 * at the observation's first round; `actingFromMs` says where acting began.
 *
 * Migrations are watchable: while one runs, the pacing slows to `migrationSpeed` virtual seconds
 * per wall second (default 10: the office's 8 GiB VM moves in about 1.5 s on screen, its 32 GiB database in about 6 s),
 * so its progress bar shows; the API can abort it (POST /api/v1/migrations/{vm}/abort). Policy
 * and rules edited through the API are kept in the run's store, as with tide daemon.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import type { Mode, TickResult } from '../app/controller.js';
import { parseConfig } from '../config/load.js';
import { compileSchedule } from '../config/schedule.js';
import type { TideConfig } from '../config/schema.js';
import { compilePolicy } from '../core/policy.js';
import { SIM_MONDAY_EPOCH_SEC } from '../core/schedule.js';
import { createDaemon, type Daemon } from '../daemon/daemon.js';
import { SimDriver } from '../drivers/sim/sim-driver.js';
import { DriverError } from '../drivers/errors.js';
import { VirtualClock } from '../executor/clock.js';
import { MigrationControl } from '../http/abort.js';
import { createHttpApp, requireRole } from '../http/app.js';
import { withEffectiveSections } from '../http/overrides.js';
import { chainObservers, createMetrics, metricsHandler } from '../metrics/prometheus.js';
import { EventBus } from '../http/events.js';
import { serveHttp } from '../http/serve.js';
import { createToken } from '../http/tokens.js';
import { officeScenario } from '../sim/office.js';
import { openSqliteStore, type ApiRole, type Store } from '../store/store.js';
import { dashboardDir, dashboardDirPath } from './dashboard.js';
import { drivePaced, realWall, type WallClock } from './pacing.js';

/** Virtual seconds per wall second that show a day in about ten minutes. */
export const DAY_PER_TEN_MINUTES = 86_400 / 600;

/** Virtual seconds per wall second while a migration runs: progress bars stay on screen for seconds. */
export const MIGRATION_SPEED = 10;
/** Speeds above this (virtual s per wall s) are runs not meant to be watched: no slow motion by default. */
export const WATCHABLE_SPEED = 3600;

/** The office's schedule in the demo: consolidate every night and all weekend, balance by day. */
export const DEMO_SCHEDULE = {
  timeZone: 'UTC',
  otherwise: 'balance' as const,
  windows: [
    { name: 'nights', kind: 'consolidate' as const, days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri'] as ('sun' | 'mon' | 'tue' | 'wed' | 'thu' | 'fri')[], from: '19:00', to: '07:00' },
    { name: 'weekend', kind: 'consolidate' as const, days: ['sat'] as 'sat'[], from: '00:00', to: '00:00' },
  ],
};

export interface DemoServeOptions {
  /** TCP port on 127.0.0.1 (0: any free one; the real one is in the result's url). */
  readonly port?: number;
  /** Virtual seconds per wall second (default DAY_PER_TEN_MINUTES). */
  readonly speed?: number;
  /**
   * Virtual seconds per wall second while a migration runs (never faster than speed). Default
   * MIGRATION_SPEED when speed is watchable (≤ WATCHABLE_SPEED); faster runs are not slowed.
   */
  readonly migrationSpeed?: number;
  /** Simulated hours to run (default 168, a week); the API keeps serving after the run ends. */
  readonly hours?: number;
  /**
   * Days observed in recommend mode before the acting hours (default 0: a cold start), run as
   * fast as possible before serveDemo resolves; then the configuration is reloaded in `mode`.
   */
  readonly observeDays?: number;
  /** Called once the observation is over, before the paced run starts (the CLI says so). */
  readonly onObserved?: (info: { readonly observeDays: number; readonly recommendedPlans: number; readonly wallMs: number }) => void;
  readonly hosts?: number;
  readonly mode?: Mode;
  readonly policy?: string;
  readonly seed?: number;
  /** SQLite file for the run (default: in memory). */
  readonly storePath?: string;
  /** The dashboard's built files (default: dist/web next to this module's package). */
  readonly staticDir?: string;
  readonly wall?: WallClock;
}

export interface HistoryPoint {
  readonly tMs: number;
  readonly hostsOn: number;
  readonly energyKWh: number;
  readonly alwaysOnKWh: number;
  readonly migrations: number;
  /** Per host: CPU busy, % of capacity (0 when off). */
  readonly hostCpuPct: Readonly<Record<string, number>>;
}

export interface DemoServer {
  /** http://127.0.0.1:PORT/ */
  readonly url: string;
  readonly port: number;
  /** Whether the dashboard's files were found (else the API alone is served). */
  readonly dashboard: boolean;
  /** The admin token created for this run (the only copy). */
  readonly adminToken: string;
  readonly store: Store;
  readonly daemon: Daemon;
  /** A further token of `role` in this run's store (tests: a viewer). */
  createToken(role: ApiRole): string;
  /** Settles when the simulated run is over (the server keeps serving). */
  readonly done: Promise<void>;
  /** Stops the daemon and the server, closes the store. */
  close(): Promise<void>;
}


/** The demo's configuration, as a config file would give it (the API reads hosts, rules, schedule from it). */
function demoConfig(scenario: ReturnType<typeof officeScenario>, mode: Mode, policy: string, intervalSec: number): TideConfig {
  return parseConfig({
    hosts: scenario.hosts.map((h) => ({ name: h.id, uri: `sim:///${h.id}` })),
    rules: scenario.rules.map((r) => ({ ...r })),
    policy: { name: policy, args: {} },
    mode, intervalSec,
    schedule: DEMO_SCHEDULE,
  }, '<demo>');
}

export async function serveDemo(opts: DemoServeOptions = {}): Promise<DemoServer> {
  const hours = opts.hours ?? 168;
  const speed = opts.speed ?? DAY_PER_TEN_MINUTES;
  if (!(speed > 0)) throw new RangeError(`speed must be > 0 (got ${speed})`);
  const observeDays = opts.observeDays ?? 0;
  if (!Number.isInteger(observeDays) || observeDays < 0) throw new RangeError(`observeDays must be an integer ≥ 0 (got ${observeDays})`);
  /** Virtual ms observed in recommend mode before acting (0: act from the first round). */
  const observeMs = observeDays * 86_400_000;
  const mode = opts.mode ?? 'automatic';
  const policyName = opts.policy ?? 'tide';
  // the scenario's traces cover the observation and the acting hours
  const scenario = officeScenario({ hosts: opts.hosts ?? 4, days: Math.max(1, Math.ceil((observeDays * 24 + hours) / 24)), seed: opts.seed });
  const config = demoConfig(scenario, mode, policyName, scenario.intervalSec);
  const policy = compilePolicy(policyName, config.policy.args);
  const clock = new VirtualClock(0);
  const driver = new SimDriver(scenario, clock);
  const baselineClock = new VirtualClock(0);
  const baseline = new SimDriver(scenario, baselineClock);
  const store = openSqliteStore(opts.storePath ?? ':memory:');
  const epochMs = SIM_MONDAY_EPOCH_SEC * 1000;
  const nowMs = (): number => epochMs + clock.now();
  const bus = new EventBus(nowMs);
  // Prometheus metrics (src/metrics/prometheus.ts) at GET /metrics, no token (127.0.0.1 only).
  const metrics = createMetrics({ store, migrationMode: () => 'live' });

  // Per-round history: hosts on, energy with Tide and left alone (the baseline driver is
  // advanced to the same instant, in order, off the daemon's path).
  const history: HistoryPoint[] = [];
  let migrations = 0;
  let baseChain: Promise<void> = Promise.resolve();
  let lastAlwaysOn = 0;
  let recommendedPlans = 0;
  let flipped = false;
  const onTick = (t: TickResult): void => {
    const atMs = t.snapshot.time * 1000;
    // The operator's flip after the observation (as tide demo does): `mode` in the configuration,
    // then a reload, effective from the next round — the first of the acting period.
    if (!flipped && atMs < observeMs && atMs + scenario.intervalSec * 1000 >= observeMs) {
      flipped = true;
      daemon.reload({ ...daemon.settings, mode });
    }
    const hostsOn = t.snapshot.hosts.filter((h) => h.powerState === 'on').length;
    const energyKWh = driver.energyKWh();
    const m = migrations;
    const hostCpuPct: Record<string, number> = {};
    for (const h of t.snapshot.hosts) {
      const capMips = h.cpuCores * h.mipsPerCore;
      const used = t.snapshot.vms.filter((v) => v.host === h.id).reduce((a, v) => a + v.demand.cpuMips, 0);
      hostCpuPct[h.id] = h.powerState === 'on' && capMips > 0 ? Math.round((1000 * Math.min(used, capMips)) / capMips) / 10 : 0;
    }
    baseChain = baseChain.then(async () => {
      await baselineClock.runUntil(atMs);
      lastAlwaysOn = baseline.energyKWh();
      if (history.length >= 20_000) history.splice(0, history.length - 19_999);
      history.push({ tMs: epochMs + atMs, hostsOn, energyKWh, alwaysOnKWh: lastAlwaysOn, migrations: m, hostCpuPct });
    });
  };

  // Running migrations: progress and abort for the API, and the pacing's slow motion.
  const migrationControl = new MigrationControl(nowMs);
  const daemon = createDaemon({
    clock, store, hypervisor: migrationControl.wrap(driver), power: driver, holdLock: false,
    // Approved plans are picked up within a simulated minute (and at once via wake()).
    pollMs: 60_000,
    settings: {
      policy, mode: observeMs > 0 ? 'recommend' : mode,
      limits: { maxConcurrent: 2, maxPerHost: 1 },
      migrate: { mode: 'live', autoConverge: true, timeoutSec: 600 },
      intervalSec: scenario.intervalSec,
      hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])),
      rules: scenario.rules,
      schedule: compileSchedule(config.schedule!),
      scheduleOffsetSec: SIM_MONDAY_EPOCH_SEC,
      bootTimeoutSec: 900,
    },
    observer: bus.observer(chainObservers(metrics.observer, {
      onTick,
      onPlan: (p, atMs) => {
        if (atMs < observeMs && p.steps.length > 0) recommendedPlans++;
      },
      onStepEnd: (r) => {
        if (r.step.kind === 'migrate' && r.state === 'succeeded') migrations++;
      },
    })),
  });

  const staticDir = dashboardDir(opts.staticDir ?? dashboardDirPath());
  const haveDashboard = staticDir !== undefined;
  const app = createHttpApp({
    store, config, bus, nowMs,
    staticDir,
    onChange: () => daemon.wake(),
    migrations: migrationControl,
    applyConfig: (effective) => daemon.reload(withEffectiveSections(daemon.settings, effective)),
    extraRoutes: (api) => {
      api.get('/metrics', metricsHandler(metrics));
      api.get('/api/v1/demo', requireRole('viewer'), (c) => c.json({
        simMs: nowMs(), epochMs, speed, mode, hours, scenario: scenario.name,
        // the observation in recommend mode (its rounds are in the history too) and where acting began
        observeDays, actingFromMs: epochMs + observeMs, recommendedPlans,
        energyKWh: driver.energyKWh(), alwaysOnKWh: lastAlwaysOn, migrations,
        // The per-round history (up to a week of 5-minute rounds) only when asked: ?history=1.
        ...(c.req.query('history') === '1' ? { history } : {}),
      }, 200));
    },
  });

  let server: Awaited<ReturnType<typeof serveHttp>>;
  try {
    server = await serveHttp(app, { host: '127.0.0.1', port: opts.port ?? 0 });
  } catch (e) {
    store.close();
    const code = (e as { code?: string }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      throw new DriverError('TIDE_INVALID_ARGUMENT', `cannot listen on 127.0.0.1:${opts.port}: ${code === 'EADDRINUSE' ? 'the port is in use' : 'not allowed'} (--port 0 picks a free one)`);
    }
    throw e;
  }
  const port = server.port;
  const admin = createToken(store, { role: 'admin', name: 'demo admin', by: 'tide demo --serve' });

  // The daemon's whole run: the observation (if any) and the acting hours after it.
  const running = daemon.run(observeMs + hours * 3_600_000);
  if (observeMs > 0) {
    running.catch(() => {}); // awaited through `done` below; only not left unhandled meanwhile
    const t0 = performance.now();
    try {
      // nothing to watch while observing: as fast as it can go
      await clock.drive(Promise.race([clock.sleep(observeMs), running.then(() => undefined)]));
      await baseChain;
    } catch (e) {
      daemon.stop({ graceMs: 0, reason: 'observation failed' });
      await server.close();
      store.close();
      throw e;
    }
    opts.onObserved?.({ observeDays, recommendedPlans, wallMs: Math.round(performance.now() - t0) });
  }

  let stopped = false;
  // The real wall clock, except that close() cuts a pending pacing sleep short (a round at
  // 144× is 2 s of wall time) and later ones are not waited for: the run ends at once.
  const sleepers = new Set<() => void>();
  const real: WallClock = opts.wall ?? {
    now: realWall.now,
    sleep: (ms) => new Promise<void>((resolve) => {
      if (stopped) return resolve();
      const wake = (): void => {
        clearTimeout(t);
        sleepers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, Math.max(0, ms));
      sleepers.add(wake);
    }),
  };
  // (drivePaced's origin: virtual 0 is due at the wall clock's start; a migration that starts
  // while the run lags behind its schedule drops the lag, so it is still paced in slow motion)
  let startWall = 0;
  const migrationSpeed = opts.migrationSpeed ?? (speed <= WATCHABLE_SPEED ? MIGRATION_SPEED : speed);
  const wall = slowMotion(real, () => (migrationControl.inFlight > 0 ? Math.min(1, migrationSpeed / speed) : 1), migrationControl,
    () => startWall + (clock.now() - observeMs) / speed);
  startWall = wall.now();
  const done = drivePaced(clock, running, speed, wall).then(async () => {
    await baseChain;
  }, (e: unknown) => {
    if (!stopped) throw e;
  });
  // The run's failure surfaces through `done`; never as an unhandled rejection.
  done.catch(() => {});

  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    dashboard: haveDashboard,
    adminToken: admin.token,
    store,
    daemon,
    done,
    createToken: (role) => createToken(store, { role, name: `demo ${role}`, by: 'tide demo --serve' }).token,
    async close() {
      stopped = true;
      daemon.stop({ graceMs: 0, reason: 'demo closed' });
      for (const wake of [...sleepers]) wake();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
      await server.close();
      store.close();
    },
  };
}

/**
 * A WallClock for drivePaced whose time runs at `rate()` of the real one (1: real time; 0.1:
 * ten times slower, so the paced virtual clock runs ten times slower too). The rate is read at
 * each call and whenever `control` reports a change, so a slow stretch starts and ends with the
 * migrations; a sleep is stretched by the rate in force when it begins. `dueNow` (the wall time,
 * on this clock, at which the paced run's current virtual time is due): when a migration starts
 * while the run lags behind (a busy machine: the due time has passed), the clock is set back to
 * it, so the migration is paced from now instead of being run at once to catch up.
 */
export function slowMotion(real: WallClock, rate: () => number, control?: MigrationControl, dueNow?: () => number): WallClock {
  let lastReal = real.now();
  let scaled = lastReal;
  let r = rate();
  const advance = (): number => {
    const now = real.now();
    scaled += (now - lastReal) * r;
    lastReal = now;
    r = rate();
    return scaled;
  };
  control?.onChange((inFlight) => {
    advance();
    if (inFlight > 0 && dueNow) scaled = Math.min(scaled, dueNow());
  });
  return {
    now: advance,
    sleep: (ms) => {
      advance();
      return real.sleep(r > 0 ? ms / r : ms);
    },
  };
}

/** How `tide demo --serve` talks to its terminal (src/cli/io.ts CliIo fits). */
export interface ServeIo {
  out(text: string): void;
  err(text: string): void;
}

/**
 * `tide demo --serve`: starts serveDemo, prints the URL, hands the admin token over (written to
 * `tokenFile` with mode 0600, or printed once), and serves until SIGINT/SIGTERM (or `signal`).
 * Resolves with the exit status (0; 1 when the simulated run failed).
 */
export async function runDemoServe(io: ServeIo, opts: DemoServeOptions & { tokenFile?: string; signal?: AbortSignal }): Promise<number> {
  const demo = await serveDemo(opts);
  let failed = false;
  try {
    if (opts.tokenFile) {
      writeFileSync(opts.tokenFile, `${demo.adminToken}\n`, { mode: 0o600 });
      chmodSync(opts.tokenFile, 0o600);
    }
    const speed = opts.speed ?? DAY_PER_TEN_MINUTES;
    io.out(`Tide demo: ${opts.observeDays ? `after ${opts.observeDays} observed day(s) (in the history), ` : ''}${opts.hours ?? 168} simulated hours at ${Math.round(speed)}× (a day in ${(86_400 / speed / 60).toFixed(1)} min), mode ${opts.mode ?? 'automatic'}\n`);
    io.out(`dashboard and API: ${demo.url}\n`);
    if (!demo.dashboard) io.err('tide demo: the dashboard is not built (npm run build:web); serving the API only\n');
    io.out(opts.tokenFile ? `admin token written to ${opts.tokenFile}\n` : `admin token (shown once): ${demo.adminToken}\n`);
    io.out('Ctrl-C to stop.\n');
    let stopping = false;
    demo.done.then(() => {
      if (!stopping) io.out('the simulated run is over; still serving (Ctrl-C to stop)\n');
    }, (e: unknown) => {
      failed = true;
      io.err(`tide demo: the simulated run failed: ${e instanceof Error ? e.message : String(e)}\n`);
    });
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        stopping = true;
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      if (opts.signal?.aborted) stop();
      opts.signal?.addEventListener('abort', stop, { once: true });
    });
  } finally {
    await demo.close();
  }
  return failed ? 1 : 0;
}
