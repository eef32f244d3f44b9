/** An API app over an in-process daemon on the simulated office (approve mode), with one token per role. */
import { createHash } from 'node:crypto';
import type { TickResult } from '../../src/app/controller.js';
import { tideConfigSchema, type TideConfig } from '../../src/config/schema.js';
import { compilePolicy } from '../../src/core/policy.js';
import { createHttpApp, type HttpAppDeps } from '../../src/http/app.js';
import { EventBus } from '../../src/http/events.js';
import { createToken } from '../../src/http/tokens.js';
import type { ApiRole, Store } from '../../src/store/store.js';
import { simDaemon, type SimDaemon } from '../daemon/helpers.js';

export type Who = 'none' | ApiRole;

export function configFor(d: SimDaemon): TideConfig {
  return tideConfigSchema.parse({
    hosts: Object.keys(d.settings.hosts ?? {}).map((name) => ({ name, uri: 'test:///default' })),
    mode: 'approve', rules: [], policy: { name: 'tide', args: {} },
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
  req(who: Who, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
}

export async function apiFixture(over: Partial<HttpAppDeps> = {}): Promise<ApiFixture> {
  const bus = new EventBus();
  const d = simDaemon('approve', { deps: { observer: bus.observer() } });
  const r = await d.round();
  if (r.planId === null || !r.tick) throw new Error('the first round proposed no plan');
  const config = configFor(d);
  let current = config;
  const tok = tokens(d.store);
  const app = createHttpApp({
    store: d.store, config: () => current, bus, nowMs: () => d.clock.now(), onChange: () => d.daemon.wake(),
    // as tide daemon does it: the running daemon's settings, and the configuration the API shows
    applyPolicy: (p) => {
      d.daemon.reload({ ...d.daemon.settings, policy: compilePolicy(p.name, p.args) });
      current = { ...current, policy: { name: p.name, args: { ...p.args } } };
    },
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
  return { d, bus, config, tok, app, planId: r.planId, tick: r.tick, req };
}
