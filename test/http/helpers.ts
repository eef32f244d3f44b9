/** An API app over an in-process daemon on the simulated office (approve mode), with one token per role. */
import { createHash } from 'node:crypto';
import type { TickResult } from '../../src/app/controller.js';
import { tideConfigSchema, type TideConfig } from '../../src/config/schema.js';
import { createDaemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/daemon/log.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { MigrationControl } from '../../src/http/abort.js';
import { createHttpApp, type HttpAppDeps } from '../../src/http/app.js';
import { EventBus } from '../../src/http/events.js';
import { effectiveConfig, withEffectiveSections } from '../../src/http/overrides.js';
import { createToken } from '../../src/http/tokens.js';
import { officeScenario } from '../../src/sim/office.js';
import { openSqliteStore, type ApiRole, type Store } from '../../src/store/store.js';
import { simSettings, type SimDaemon } from '../daemon/helpers.js';

export type Who = 'none' | ApiRole;

export function configFor(d: SimDaemon): TideConfig {
  return tideConfigSchema.parse({
    hosts: Object.keys(d.settings.hosts ?? {}).map((name) => ({ name, uri: 'test:///default' })),
    // the office's rules (the daemon's settings), as a configuration file would give them
    mode: 'approve', rules: (d.settings.rules ?? []).map((r) => ({ ...r })), policy: { name: 'tide', args: {} },
    schedule: { timeZone: 'UTC', windows: [{ name: 'night', kind: 'consolidate', days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '19:00', to: '07:00' }] },
  });
}

export function tokens(store: Store): Record<ApiRole, string> {
  return {
    viewer: createToken(store, { role: 'viewer', name: 'v', by: 'test' }).token,
    operator: createToken(store, { role: 'operator', name: 'o', by: 'test' }).token,
    admin: createToken(store, { role: 'admin', name: 'a', by: 'test' }).token,
  };
}

/** A digest of everything an API request could change (token use times excepted). */
export function storeDigest(store: Store): string {
  const state = {
    plans: store.listPlans({ limit: 10_000 }).map((p) => [p.id, p.status, p.statusReason ?? null, p.confirmedMs ?? null]),
    hosts: store.hostStates(),
    migrations: store.migrations({ limit: 10_000 }),
    tokens: store.apiTokens().map(({ lastUsedMs: _u, ...t }) => t),
    status: store.daemonStatus() ?? null,
    overrides: [store.configOverride('policy') ?? null, store.configOverride('rules') ?? null],
  };
  return createHash('sha256').update(JSON.stringify(state)).digest('hex');
}

export interface ApiFixture {
  readonly d: SimDaemon;
  readonly bus: EventBus;
  readonly config: TideConfig;
  readonly tok: Record<ApiRole, string>;
  readonly app: ReturnType<typeof createHttpApp>;
  /** The plan the first round proposed. */
  readonly planId: number;
  readonly tick: TickResult;
  readonly migrations: MigrationControl;
  req(who: Who, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
}

/**
 * The simulated office's daemon (as test/daemon/helpers.ts simDaemon) with its driver wrapped by
 * a MigrationControl (abort, progress), started as tide daemon starts: with the configuration
 * file's sections plus the API edits kept in `store` (a restart: the same store again).
 */
export function apiDaemon(bus: EventBus, opts: { store?: Store; config?: (d: SimDaemon) => TideConfig } = {}): { d: SimDaemon; migrations: MigrationControl; config: TideConfig } {
  const scenario = officeScenario({ hosts: 4, days: 2 });
  const clock = new VirtualClock(0);
  const driver = new SimDriver(scenario, clock);
  const migrations = new MigrationControl(() => clock.now());
  const store = opts.store ?? openSqliteStore(':memory:');
  const lines: string[] = [];
  const log = createLogger({ write: (l) => void lines.push(l), tty: false, clock, level: 'debug' });
  const base = simSettings('approve');
  const stub = { settings: base } as SimDaemon;
  const config = (opts.config ?? configFor)(stub);
  const settings = withEffectiveSections(base, effectiveConfig(config, store).config);
  const daemon = createDaemon({ clock, hypervisor: migrations.wrap(driver), power: driver, store, settings, log, pollMs: 0, stopGraceMs: 60_000, observer: bus.observer() });
  const d: SimDaemon = { daemon, clock, driver, store, settings, lines, round: () => clock.drive(daemon.round()) };
  return { d, migrations, config };
}

export async function apiFixture(over: Partial<HttpAppDeps> = {}, opts: { store?: Store } = {}): Promise<ApiFixture> {
  const bus = new EventBus();
  const { d, migrations, config } = apiDaemon(bus, opts);
  const r = await d.round();
  if (r.planId === null || !r.tick) throw new Error('the first round proposed no plan');
  const tok = tokens(d.store);
  const app = createHttpApp({
    store: d.store, config, bus, nowMs: () => d.clock.now(), onChange: () => d.daemon.wake(), migrations,
    // as tide daemon does it: the running daemon's settings with the effective sections
    applyConfig: (effective) => d.daemon.reload(withEffectiveSections(d.daemon.settings, effective)),
    ...over,
  });
  const req = (who: Who, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> => {
    const h: Record<string, string> = { ...(who === 'none' ? {} : { authorization: `Bearer ${tok[who]}` }), ...headers };
    let b: string | undefined;
    if (body !== undefined) {
      b = typeof body === 'string' ? body : JSON.stringify(body);
      h['content-type'] ??= 'application/json';
    }
    return Promise.resolve(app.request(path, { method, headers: h, ...(b !== undefined ? { body: b } : {}) }));
  };
  return { d, bus, config, tok, app, planId: r.planId, tick: r.tick, req, migrations };
}
