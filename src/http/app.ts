/**
 * The HTTP API (/api/v1), a Hono app value built over the programmatic API (src/daemon/ops.ts,
 * the store) — tested in-process with `app.request(...)`, served by src/http/serve.ts.
 *
 * Request pipeline, in this order (each refusal changes nothing):
 *   1. rate limit: a client address with `maxAuthFailures` failed authentications in the last
 *      minute gets 429 TIDE_RATE_LIMITED for everything until the minute is over;
 *   2. authentication: `Authorization: Bearer <token>` (GET /events also takes `?access_token=`,
 *      EventSource cannot send headers) → 401 TIDE_UNAUTHENTICATED; the OpenAPI document is public;
 *   3. body: POST bodies must be JSON (415) of at most `maxBodyBytes` (413);
 *   4. role: viewer < operator < admin (src/http/tokens.ts) → 403 TIDE_FORBIDDEN;
 *   5. validation: the route's zod schemas (strict: unknown keys refused) → 400 TIDE_BAD_REQUEST
 *      with the path of the offending field.
 * Errors are `{ error: { code, message } }`, mapped from the Tide code in one place
 * (src/http/errors.ts); never a stack trace. The OpenAPI 3.1 document at /api/v1/openapi.json
 * is generated from the same schemas.
 *
 * Extension: `extraRoutes(app, { requireRole })` adds routes (metrics, webhooks admin), and
 * `staticDir` serves the dashboard's files under / (index.html for unknown non-API paths).
 */
import { OpenAPIHono, createRoute, z, type RouteConfig } from '@hono/zod-openapi';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import { streamSSE } from 'hono/streaming';
import { compileSchedule } from '../config/schedule.js';
import type { TideConfig } from '../config/schema.js';
import { compilePolicy } from '../core/policy.js';
import { activeWindow } from '../core/schedule.js';
import { approvePlan, listPlanRows, planDetail, planRow, rejectPlan, setMaintenance, statusReport } from '../daemon/ops.js';
import type { ApiRole, ApiTokenRecord, ConfigSection, PlanStatus, Store } from '../store/store.js';
import { DriverError } from '../drivers/errors.js';
import { HttpError, httpErrorOf } from './errors.js';
import type { MigrationControl } from './abort.js';
import { requestMigration, requestPower } from './migrate.js';
import { effectiveConfig, rulesSectionOf, rulesSectionSchema, saveOverride, withRules, type Effective } from './overrides.js';
import { EventBus, type TideEvent } from './events.js';
import { hostsNow, vmsNow } from './views.js';
import { whatIf } from './whatif.js';
import { createToken, roleAllows, verifyToken } from './tokens.js';

export interface HttpAppDeps {
  readonly store: Store;
  /**
   * The configuration file's content (hosts, rules, policy, schedule); a getter so a reload
   * shows. The API shows and uses it with the policy and rules edits stored through the API
   * (src/http/overrides.ts: effectiveConfig), which win while the file's section is unchanged.
   */
  readonly config: TideConfig | (() => TideConfig);
  /** Fed by the daemon's observer (EventBus.observer); absent: a private one (no live events). */
  readonly bus?: EventBus;
  /** Called after an approval or a maintenance change so the daemon acts at once (daemon.wake). */
  readonly onChange?: (what: 'approve' | 'reject' | 'maintenance' | 'migrate' | 'power', detail?: { readonly planId?: number; readonly by?: string }) => void;
  /**
   * Applies the effective configuration (the file's with the stored API edits, after an edit of
   * `section` through POST /api/v1/policy or /rules, or a revert) to the running daemon from its
   * next round (withEffectiveSections + daemon.reload). Absent: those routes answer 501 and
   * store nothing. The edit itself is kept in the store (Store.setConfigOverride), so a restart
   * keeps it: the daemon starts with effectiveConfig(file, store).
   */
  readonly applyConfig?: (effective: TideConfig, section: ConfigSection) => void;
  /** The daemon's running migrations (its hypervisor wrapped by MigrationControl): progress, abort. Absent: abort answers 501. */
  readonly migrations?: MigrationControl;
  /** Wall clock, ms. */
  readonly nowMs?: () => number;
  /** POST body limit, bytes (default 64 KiB). */
  readonly maxBodyBytes?: number;
  /** Failed authentications per client address per minute before 429 (default 10). */
  readonly maxAuthFailures?: number;
  /** Dashboard files served under / (index.html for unknown non-API paths). */
  readonly staticDir?: string;
  /** More routes (I2: /metrics, webhooks); they run after authentication only if under /api/. */
  readonly extraRoutes?: (app: OpenAPIHono<ApiEnv>, helpers: { requireRole: typeof requireRole; bus: EventBus }) => void;
  /** Where internal errors go (the daemon's logger); default: nowhere. */
  readonly logError?: (e: unknown, where: string) => void;
  /** Event streams open at once (default 64); one more is refused with 429. */
  readonly maxEventStreams?: number;
  /** SSE keep-alive comment interval, ms (default 15000). */
  readonly sseKeepAliveMs?: number;
  /**
   * Several controllers (docs/operations.md): while this daemon is a standby, says who leads;
   * then every change (any method but GET/HEAD) is refused 503 TIDE_NOT_LEADER with that text,
   * after authentication. Reads are served. Absent or undefined: this daemon may act.
   */
  readonly notLeader?: () => string | undefined;
  /** This daemon's node id (daemon.nodeId, src/daemon/node-id.ts): GET /status says whether this node leads. */
  readonly nodeId?: string;
}

export interface ApiEnv {
  Variables: { token: ApiTokenRecord | null };
}

export const API_PREFIX = '/api/v1';
const PUBLIC_PATHS = new Set([`${API_PREFIX}/openapi.json`]);
const WINDOW_MS = 60_000;

/** Route middleware: the authenticated token's role must allow `need` (else 403). */
export function requireRole(need: ApiRole): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const t = c.get('token');
    if (!t) throw new HttpError('TIDE_UNAUTHENTICATED', 'a valid API token is required (Authorization: Bearer <token>; tide token create)');
    if (!roleAllows(t.role, need)) throw new HttpError('TIDE_FORBIDDEN', `this needs the ${need} role; token '${t.name}' (#${t.id}) has ${t.role}`);
    await next();
  };
}

/** The peer address of a request served by @hono/node-server; 'local' in-process. */
function clientAddress(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress ?? 'local';
}

/** zod issues → one line naming each offending path: "body.on: expected boolean, received string". */
function zodMessage(where: string, error: z.ZodError): string {
  return error.issues.slice(0, 5).map((i) => {
    const path = [where, ...i.path.map(String)].join('.');
    const keys = i.code === 'unrecognized_keys' ? ` (${(i as { keys?: string[] }).keys?.join(', ')})` : '';
    return `${path}: ${i.message}${keys}`;
  }).join('; ');
}

const ErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('Error');
const errors = (...codes: number[]): RouteConfig['responses'] => Object.fromEntries(codes.map((s) => [s, { description: {
  400: 'invalid request (TIDE_BAD_REQUEST)', 401: 'no valid token (TIDE_UNAUTHENTICATED)', 403: 'role too low (TIDE_FORBIDDEN)', 404: 'no such object',
  409: 'state does not allow it (TIDE_PLAN_STATE)', 413: 'body too large', 415: 'body is not JSON', 429: 'too many failed authentications',
}[s] ?? 'error', content: { 'application/json': { schema: ErrorSchema } } }]));
const READ_ERRORS = [401, 403, 429];
const WRITE_ERRORS = [400, 401, 403, 404, 409, 413, 415, 429];
const anyJson = (description: string): RouteConfig['responses'][string] => ({ description, content: { 'application/json': { schema: z.any() } } });

const PlanId = z.string().regex(/^[1-9]\d{0,9}$/, 'a plan id (a positive integer)').openapi({ param: { name: 'id', in: 'path' }, example: '12' });
const HostParam = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, 'a host name').openapi({ param: { name: 'host', in: 'path' }, example: 'srv-1' });
const VmParam = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._+:@-]{0,255}$/, 'a VM name').openapi({ param: { name: 'vm', in: 'path' }, example: 'dns' });
const Limit = z.string().regex(/^[1-9]\d{0,3}$/, 'a count 1..9999').optional();
const PLAN_STATUSES = ['proposed', 'approved', 'running', 'done', 'failed', 'rejected', 'superseded', 'expired'] as const;

const ApproveBody = z.object({}).strict().openapi('ApproveRequest');
const RejectBody = z.object({ reason: z.string().max(500).optional() }).strict().openapi('RejectRequest');
const MaintenanceBody = z.object({ on: z.boolean(), reason: z.string().max(500).optional() }).strict().openapi('MaintenanceRequest');
const MigrateBody = z.object({
  vm: z.string().min(1).max(256),
  to: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, "a host name, or 'best'"),
}).strict().openapi('MigrateRequest');
const PowerBody = z.object({ on: z.boolean() }).strict().openapi('PowerRequest');
const WhatIfBody = z.object({
  hours: z.number().int().min(1).max(168).optional(),
  policies: z.array(z.object({ name: z.string().min(1).max(200), args: z.record(z.string(), z.unknown()).optional() }).strict()).min(1).max(4),
}).strict().openapi('WhatIfRequest');
const AbortBody = z.object({ reason: z.string().max(500).optional() }).strict().openapi('AbortRequest');
// The same shape as the stored section (src/http/overrides.ts), built with this module's zod so that it carries OpenAPI metadata.
const RulesBody = z.object(rulesSectionSchema.shape).strict().openapi('RulesSection');
const TokenBody = z.object({ role: z.enum(['viewer', 'operator', 'admin']), name: z.string().min(1).max(100).optional() }).strict().openapi('TokenRequest');
const PolicyBody = z.object({ name: z.string().min(1).max(200), args: z.record(z.string(), z.unknown()).optional() }).strict().openapi('PolicySpec');

/** Builds the API app. Pure value: no socket, no timer until an SSE client connects. */
export function createHttpApp(deps: HttpAppDeps): OpenAPIHono<ApiEnv> {
  const { store } = deps;
  const nowMs = deps.nowMs ?? Date.now;
  const fileCfg = (): TideConfig => (typeof deps.config === 'function' ? deps.config() : deps.config);
  const eff = (): Effective => effectiveConfig(fileCfg(), store);
  const cfg = (): TideConfig => eff().config;
  const bus = deps.bus ?? new EventBus(nowMs);
  const maxBody = deps.maxBodyBytes ?? 64 * 1024;
  const maxFailures = deps.maxAuthFailures ?? 10;
  const failures = new Map<string, { startMs: number; count: number }>();
  let openStreams = 0;

  const app = new OpenAPIHono<ApiEnv>({
    defaultHook: (result) => {
      if (!result.success) throw new HttpError('TIDE_BAD_REQUEST', zodMessage(result.target === 'json' ? 'body' : result.target, result.error));
    },
  });

  app.onError((e, c) => {
    if (e instanceof HTTPException) {
      const code = e.status === 413 ? 'TIDE_BODY_TOO_LARGE' : e.status === 415 ? 'TIDE_UNSUPPORTED_MEDIA_TYPE' : e.status === 404 ? 'TIDE_NOT_FOUND' : e.status < 500 ? 'TIDE_BAD_REQUEST' : 'TIDE_INTERNAL';
      const message = e.status < 500 ? (e.message || 'bad request') : 'internal error';
      return c.json({ error: { code, message } }, e.status < 500 ? e.status : 500);
    }
    const { status, body } = httpErrorOf(e);
    if (status >= 500) deps.logError?.(e, `${c.req.method} ${c.req.path}`);
    return c.json(body, status as 400);
  });
  app.notFound((c) => c.json({ error: { code: 'TIDE_NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` } }, 404));

  app.use('*', secureHeaders());

  // 1–3: rate limit, authentication, body checks — for the whole API.
  app.use(`${API_PREFIX}/*`, async (c, next) => {
    c.set('token', null);
    if (PUBLIC_PATHS.has(c.req.path)) return next();
    const addr = clientAddress(c);
    const now = nowMs();
    const f = failures.get(addr);
    if (f && now - f.startMs >= WINDOW_MS) failures.delete(addr);
    const cur = failures.get(addr);
    if (cur && cur.count >= maxFailures) {
      c.header('Retry-After', String(Math.max(1, Math.ceil((cur.startMs + WINDOW_MS - now) / 1000))));
      throw new HttpError('TIDE_RATE_LIMITED', `too many failed authentications from ${addr}; try again in a minute`);
    }
    const auth = c.req.header('authorization');
    let presented: string | undefined;
    if (auth !== undefined) {
      const m = /^Bearer ([A-Za-z0-9._~+/=-]{1,256})$/.exec(auth);
      presented = m?.[1] ?? '';
    } else if (c.req.path === `${API_PREFIX}/events` && c.req.method === 'GET') {
      presented = c.req.query('access_token');
    }
    const token = presented === undefined ? null : verifyToken(store, presented);
    if (!token) {
      // Only presented-and-wrong tokens count as failed logins (a bare request is not a guess).
      if (presented !== undefined) {
        const g = failures.get(addr) ?? { startMs: now, count: 0 };
        g.count++;
        failures.set(addr, g);
        if (failures.size > 10_000) failures.delete(failures.keys().next().value!);
      }
      throw new HttpError('TIDE_UNAUTHENTICATED', presented === undefined
        ? 'a valid API token is required (Authorization: Bearer <token>; tide token create)'
        : 'the API token is not valid (unknown or revoked)');
    }
    c.set('token', token);
    store.touchApiToken(token.id, now);
    const notLeader = c.req.method !== 'GET' && c.req.method !== 'HEAD' ? deps.notLeader?.() : undefined;
    if (notLeader !== undefined) throw new DriverError('TIDE_NOT_LEADER', notLeader);
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const len = c.req.header('content-length');
      if (len !== undefined && !(Number(len) <= maxBody)) throw new HttpError('TIDE_BODY_TOO_LARGE', `request body over ${maxBody} bytes`);
      const text = await readLimited(c.req.raw, maxBody);
      // The validators read the body through Hono's cache (the stream is consumed now).
      (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve(text);
      if (text.length > 0 && !/^application\/json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) {
        throw new HttpError('TIDE_UNSUPPORTED_MEDIA_TYPE', 'a request body must be JSON (Content-Type: application/json)');
      }
      if (text.length > 0) {
        try {
          JSON.parse(text);
        } catch {
          throw new HttpError('TIDE_BAD_REQUEST', 'the request body is not valid JSON');
        }
      }
    }
    return next();
  });

  const who = (c: Context<ApiEnv>): string => {
    const t = c.get('token')!;
    return `api:${t.name}#${t.id}`;
  };

  // ---- read routes (viewer) ----
  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/status`, summary: "The daemon's mode, window, freeze, last round, pending plans, lock, maintenance",
    middleware: [requireRole('viewer')] as const, responses: { 200: anyJson('status report'), ...errors(...READ_ERRORS) },
  }), (c) => c.json(statusReport(store, cfg(), nowMs(), deps.nodeId ?? null), 200));

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/whoami`, summary: "The presented token: id, name, role (the dashboard's login)",
    middleware: [requireRole('viewer')] as const, responses: { 200: anyJson('{ id, name, role }'), ...errors(...READ_ERRORS) },
  }), (c) => {
    const t = c.get('token')!;
    return c.json({ id: t.id, name: t.name, role: t.role }, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/clusters`, summary: 'The clusters this daemon manages (one)',
    middleware: [requireRole('viewer')] as const, responses: { 200: anyJson('clusters'), ...errors(...READ_ERRORS) },
  }), (c) => {
    const config = cfg();
    const st = statusReport(store, config, nowMs());
    const tick = bus.lastTick();
    return c.json({ clusters: [{
      name: 'default', hosts: config.hosts.length, vms: tick?.snapshot.vms.length ?? null, mode: st.mode, policy: config.policy.name,
      daemonAlive: st.daemon?.alive ?? false, frozen: st.frozen.frozen, window: st.window,
    }] }, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/hosts`, summary: 'Hosts: state, power, maintenance, utilisation now (the last round, else the stored metrics)',
    middleware: [requireRole('viewer')] as const, responses: { 200: anyJson('hosts'), ...errors(...READ_ERRORS) },
  }), (c) => c.json({ hosts: hostsNow(store, cfg(), bus.lastTick(), nowMs()) }, 200));

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/hosts/{host}`, summary: "One host now, with its recent utilisation (stored metrics, default the last 24 h)",
    middleware: [requireRole('viewer')] as const,
    request: { params: z.object({ host: HostParam }), query: z.object({ hours: z.string().regex(/^[1-9]\d{0,3}$/, 'hours 1..9999').optional() }).strict() },
    responses: { 200: anyJson('host'), ...errors(...READ_ERRORS, 400, 404) },
  }), (c) => {
    const { host } = c.req.valid('param');
    const h = hostsNow(store, cfg(), bus.lastTick(), nowMs()).find((x) => x.name === host);
    if (!h) throw new HttpError('TIDE_NOT_FOUND', `no host named '${host}' in the configuration`);
    const hours = Number(c.req.valid('query').hours ?? 24);
    const recent = store.metricsHistory({ kind: 'host', name: host, sinceMs: nowMs() - hours * 3_600_000 })
      .map((p) => ({ atMs: p.atMs, cpuPct: p.cpuPct, memMiB: p.memMiB, res: p.res }));
    return c.json({ host: h, recent }, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/vms`, summary: "VMs as the daemon's last round saw them: host, size, CPU now",
    middleware: [requireRole('viewer')] as const, responses: { 200: anyJson('vms'), ...errors(...READ_ERRORS) },
  }), (c) => c.json({ vms: vmsNow(cfg(), bus.lastTick()), roundAtMs: bus.lastTick()?.at ?? null }, 200));

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/plans`, summary: 'Plans, newest first',
    middleware: [requireRole('viewer')] as const,
    request: { query: z.object({ status: z.enum(PLAN_STATUSES).optional(), limit: Limit }).strict() },
    responses: { 200: anyJson('plans'), ...errors(...READ_ERRORS, 400) },
  }), (c) => {
    const q = c.req.valid('query');
    return c.json({ plans: listPlanRows(store, { ...(q.status ? { status: q.status as PlanStatus } : {}), limit: Number(q.limit ?? 100) }) }, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/plans/{id}`, summary: 'One plan: steps with reasons and run states, what was not moved and why, host verdicts',
    middleware: [requireRole('viewer')] as const, request: { params: z.object({ id: PlanId }) },
    responses: { 200: anyJson('plan detail'), ...errors(...READ_ERRORS, 400, 404) },
  }), (c) => c.json(planDetail(store, Number(c.req.valid('param').id)), 200));

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/migrations`, summary: 'Migrations running now (with progress) and the history with timings, downtime and whether aborted, newest first',
    middleware: [requireRole('viewer')] as const,
    request: { query: z.object({ vm: z.string().min(1).max(256).optional(), limit: Limit }).strict() },
    responses: { 200: anyJson('migrations'), ...errors(...READ_ERRORS, 400) },
  }), (c) => {
    const q = c.req.valid('query');
    // aborted: ended by an abort (the API's, or a daemon stop): the guest stayed on its source.
    const migrations = store.migrations({ ...(q.vm ? { vm: q.vm } : {}), limit: Number(q.limit ?? 100) })
      .map((m) => ({ ...m, aborted: !m.ok && (m.error ?? '').startsWith('TIDE_ABORTED') }));
    const running = (deps.migrations?.list() ?? []).filter((r) => !q.vm || r.vm === q.vm);
    return c.json({ running, migrations }, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/schedule`, summary: 'The schedule windows and the one in force now',
    middleware: [requireRole('viewer')] as const, responses: { 200: anyJson('schedule'), ...errors(...READ_ERRORS) },
  }), (c) => {
    const config = cfg();
    const now = nowMs();
    let current: { kind: string; name: string; untilMs: number | null } | null = null;
    if (config.schedule) {
      const w = activeWindow(compileSchedule(config.schedule), now / 1000);
      current = { kind: w.kind, name: w.name, untilMs: w.untilSec === null ? null : w.untilSec * 1000 };
    }
    return c.json({ schedule: config.schedule ?? null, current, nowMs: now }, 200);
  });

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/freeze`, summary: 'Whether moves are frozen (telemetry freeze) and why',
    middleware: [requireRole('viewer')] as const, responses: { 200: anyJson('freeze'), ...errors(...READ_ERRORS) },
  }), (c) => {
    const t = bus.lastTick();
    const f = t ? { frozen: t.freeze.frozen, reason: t.freeze.reason, sinceMs: t.freeze.sinceMs } : statusReport(store, cfg(), nowMs()).frozen;
    return c.json(f, 200);
  });

  const rulesView = (): Record<string, unknown> => {
    const e = eff();
    return { ...rulesSectionOf(e.config), ...e.rules, file: rulesSectionOf(fileCfg()) };
  };
  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/rules`,
    summary: 'Placement rules in force (affinity, antiAffinity, pin: VM–host must/should) and the VMs opted out of moves (pinnedVms); source file or api, when, by whom; the file\'s own',
    middleware: [requireRole('viewer')] as const, responses: { 200: anyJson('{ rules, pinnedVms, source, setMs, setBy, ignored?, file }'), ...errors(...READ_ERRORS) },
  }), (c) => c.json(rulesView(), 200));

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/policy`, summary: 'The policy in force: name, arguments as given and with defaults applied; source file or api, when, by whom; the file\'s own',
    middleware: [requireRole('viewer')] as const, responses: { 200: anyJson('policy'), ...errors(...READ_ERRORS) },
  }), (c) => {
    const e = eff();
    const p = e.config.policy;
    const compiled = compilePolicy(p.name, p.args);
    return c.json({ name: p.name, args: p.args, label: compiled.label, effectiveArgs: compiled.args, ...e.policy, file: fileCfg().policy }, 200);
  });

  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/policy/validate`, summary: 'Check a policy spec (changes nothing): valid, or the path-named error',
    middleware: [requireRole('viewer')] as const, request: { body: { required: true, content: { 'application/json': { schema: PolicyBody } } } },
    responses: { 200: anyJson('{ valid: true, label, effectiveArgs }'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    const b = c.req.valid('json');
    const compiled = compilePolicy(b.name, b.args ?? {});
    return c.json({ valid: true, label: compiled.label, effectiveArgs: compiled.args }, 200);
  });

  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/policy`,
    summary: "Apply a policy from the daemon's next round (validated first); kept in the store, so it survives a restart, until the file's policy changes or it is reverted (docs/api.md)",
    middleware: [requireRole('admin')] as const, request: { body: { required: true, content: { 'application/json': { schema: PolicyBody } } } },
    responses: { 200: anyJson('{ applied: true, name, args, label, effectiveArgs, persistent: true, source, setMs, setBy }'), 501: anyJson('this server cannot apply a policy'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    const b = c.req.valid('json');
    const compiled = compilePolicy(b.name, b.args ?? {});
    const apply = deps.applyConfig;
    if (!apply) throw new DriverError('TIDE_UNSUPPORTED', 'this server has no daemon to apply a policy to');
    saveOverride(store, fileCfg(), 'policy', { name: b.name, args: b.args ?? {} }, { setMs: nowMs(), setBy: who(c) });
    const e = eff();
    apply(e.config, 'policy');
    bus.emit('policy', { name: b.name, label: compiled.label, by: who(c) });
    return c.json({ applied: true, name: b.name, args: b.args ?? {}, label: compiled.label, effectiveArgs: compiled.args, persistent: true, ...e.policy }, 200);
  });

  const revert = (section: ConfigSection, c: Context<ApiEnv>): Record<string, unknown> => {
    const apply = deps.applyConfig;
    if (!apply) throw new DriverError('TIDE_UNSUPPORTED', `this server has no daemon to apply ${section} to`);
    const reverted = store.clearConfigOverride(section);
    const e = eff();
    if (reverted) {
      apply(e.config, section);
      bus.emit(section, { source: 'file', by: who(c), reverted: true });
    }
    return { reverted, ...(section === 'policy' ? { name: e.config.policy.name, args: e.config.policy.args } : rulesSectionOf(e.config)), ...e[section] };
  };
  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/policy/revert`, summary: "Forget the policy applied through the API: the configuration file's is in force from the next round",
    middleware: [requireRole('admin')] as const, request: { body: { required: false, content: { 'application/json': { schema: ApproveBody } } } },
    responses: { 200: anyJson('{ reverted, name, args, source }'), 501: anyJson('this server cannot apply a policy'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    c.req.valid('json');
    return c.json(revert('policy', c), 200);
  });

  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/rules`,
    summary: "Replace the placement rules and the opted-out VMs (validated with the configuration's schema; pin hosts must be configured) from the daemon's next round; kept in the store across restarts until the file's rules change or it is reverted",
    middleware: [requireRole('admin')] as const, request: { body: { required: true, content: { 'application/json': { schema: RulesBody } } } },
    responses: { 200: anyJson('{ rules, pinnedVms, source, setMs, setBy, file }'), 501: anyJson('this server cannot apply rules'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    const b = c.req.valid('json');
    const file = fileCfg();
    const hosts = new Set(file.hosts.map((h) => h.name));
    const ids = new Set<string>();
    b.rules.forEach((r, i) => {
      if (ids.has(r.id)) throw new HttpError('TIDE_BAD_REQUEST', `body.rules.${i}.id: rule id '${r.id}' is used twice`);
      ids.add(r.id);
      if (r.kind === 'pin') {
        const bad = r.hosts.find((h) => !hosts.has(h));
        if (bad !== undefined) throw new HttpError('TIDE_BAD_REQUEST', `body.rules.${i}.hosts: '${bad}' is not a configured host`);
      }
    });
    const apply = deps.applyConfig;
    if (!apply) throw new DriverError('TIDE_UNSUPPORTED', 'this server has no daemon to apply rules to');
    // The daemon's settings must accept the result before anything is stored.
    withRules(file, b);
    saveOverride(store, file, 'rules', { rules: b.rules, pinnedVms: [...new Set(b.pinnedVms)].sort() }, { setMs: nowMs(), setBy: who(c) });
    apply(eff().config, 'rules');
    bus.emit('rules', { source: 'api', rules: b.rules.length, pinnedVms: b.pinnedVms.length, by: who(c) });
    return c.json(rulesView(), 200);
  });

  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/rules/revert`, summary: "Forget the rules edited through the API: the configuration file's are in force from the next round",
    middleware: [requireRole('admin')] as const, request: { body: { required: false, content: { 'application/json': { schema: ApproveBody } } } },
    responses: { 200: anyJson('{ reverted, rules, pinnedVms, source }'), 501: anyJson('this server cannot apply rules'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    c.req.valid('json');
    return c.json(revert('rules', c), 200);
  });

  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/whatif`,
    summary: "What-if: replay this cluster's recorded history through other policies; energy, SLA and migrations side by side with the configured policy and always-on (changes nothing)",
    middleware: [requireRole('viewer')] as const, request: { body: { required: true, content: { 'application/json': { schema: WhatIfBody } } } },
    responses: { 200: anyJson('{ fromMs, toMs, samples, intervalSec, alwaysOnKWh, results: [{ policy, label, configured, energyKWh, savedVsAlwaysOnPct, migrations, slaViolationPct, … }] }'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    const b = c.req.valid('json');
    return c.json(whatIf(store, cfg(), bus.lastTick(), { hours: b.hours ?? 24, policies: b.policies }), 200);
  });

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/events`, summary: 'Live daemon events (Server-Sent Events): round, plan, plan-status, step-start, step-end, progress, freeze, round-error, maintenance',
    middleware: [requireRole('viewer')] as const, responses: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: z.string() } } }, ...errors(...READ_ERRORS) },
  }), (c) => {
    if (openStreams >= (deps.maxEventStreams ?? 64)) throw new HttpError('TIDE_RATE_LIMITED', `too many event streams open (${openStreams}); close one first`);
    openStreams++;
    return streamSSE(c, async (stream) => {
      const queue: TideEvent[] = [];
      let wakeUp: (() => void) | null = null;
      const unsubscribe = bus.subscribe((e) => {
        if (queue.length < 1000) queue.push(e);
        wakeUp?.();
      });
      let open = true;
      stream.onAbort(() => {
        open = false;
        wakeUp?.();
      });
      try {
        await stream.writeSSE({ event: 'hello', data: JSON.stringify({ atMs: nowMs() }) });
        const keepAliveMs = deps.sseKeepAliveMs ?? 15_000;
        while (open) {
          while (queue.length) {
            const e = queue.shift()!;
            await stream.writeSSE({ event: e.type, id: String(e.id), data: JSON.stringify({ atMs: e.atMs, ...e.data }) });
          }
          if (!open) break;
          await new Promise<void>((resolve) => {
            wakeUp = resolve;
            const t = setTimeout(resolve, keepAliveMs);
            t.unref?.();
          });
          wakeUp = null;
          if (open && queue.length === 0) await stream.write(': keep-alive\n\n');
        }
      } finally {
        unsubscribe();
        openStreams--;
      }
    });
  });

  // ---- operator routes ----
  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/plans/{id}/approve`, summary: 'Approve a proposed plan; the daemon executes it if the cluster still matches',
    middleware: [requireRole('operator')] as const, request: { params: z.object({ id: PlanId }), body: { required: false, content: { 'application/json': { schema: ApproveBody } } } },
    responses: { 200: anyJson('the plan row after approval'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    c.req.valid('json');
    const p = approvePlan(store, Number(c.req.valid('param').id), who(c));
    bus.emit('plan-status', { planId: p.id, status: p.status, reason: p.statusReason ?? null });
    deps.onChange?.('approve', { planId: p.id, by: who(c) });
    return c.json(planRow(p), 200);
  });

  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/plans/{id}/reject`, summary: 'Reject a proposed or approved plan (never executed)',
    middleware: [requireRole('operator')] as const, request: { params: z.object({ id: PlanId }), body: { required: false, content: { 'application/json': { schema: RejectBody } } } },
    responses: { 200: anyJson('the plan row after rejection'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    const b = c.req.valid('json');
    const p = rejectPlan(store, Number(c.req.valid('param').id), who(c), b.reason);
    bus.emit('plan-status', { planId: p.id, status: p.status, reason: p.statusReason ?? null });
    deps.onChange?.('reject');
    return c.json(planRow(p), 200);
  });

  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/hosts/{host}/maintenance`, summary: 'Put a host in or out of maintenance (the daemon evacuates a host in maintenance)',
    middleware: [requireRole('operator')] as const, request: { params: z.object({ host: HostParam }), body: { required: true, content: { 'application/json': { schema: MaintenanceBody } } } },
    responses: { 200: anyJson('the host state'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    const b = c.req.valid('json');
    const st = setMaintenance(store, cfg(), c.req.valid('param').host, b.on, who(c), b.reason, nowMs());
    bus.emit('maintenance', { host: st.host, maintenance: st.maintenance, by: st.by, reason: st.reason });
    deps.onChange?.('maintenance');
    return c.json(st, 200);
  });

  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/migrations`,
    summary: "Migrate a VM to a host or the best one: a one-step plan, approved, that the daemon executes at once if the cluster still matches its last round",
    middleware: [requireRole('operator')] as const, request: { body: { required: true, content: { 'application/json': { schema: MigrateBody } } } },
    responses: { 202: anyJson('{ planId, vm, from, to, reason, assessments }: follow it at /plans/{planId} or /events'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    const b = c.req.valid('json');
    if (cfg().mode === 'recommend') throw new DriverError('TIDE_PLAN_STATE', 'the daemon runs in recommend mode, which never executes; set mode: approve (or automatic) in the configuration');
    const tick = bus.lastTick();
    if (!tick) throw new DriverError('TIDE_STALE_PLAN', 'the daemon has not finished a round yet: nothing to plan the move from; try again after its first round');
    const m = requestMigration(store, tick.snapshot, { vm: b.vm, to: b.to, by: who(c), nowMs: nowMs() });
    bus.emit('plan-status', { planId: m.planId, status: 'approved', reason: m.reason });
    deps.onChange?.('migrate', { planId: m.planId, by: who(c) });
    return c.json(m, 202);
  });

  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/migrations/{vm}/abort`,
    summary: "Abort the VM's running migration through the driver's abort path: the guest keeps running on its source; the step ends failed (TIDE_ABORTED), the history records it aborted. 409 TIDE_NO_MIGRATION when none runs",
    middleware: [requireRole('operator')] as const, request: { params: z.object({ vm: VmParam }), body: { required: false, content: { 'application/json': { schema: AbortBody } } } },
    responses: { 202: anyJson('{ vm, to, startedMs, progressPct, abortedBy }: the outcome follows in /migrations and /events'), 501: anyJson('this server runs no migrations'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    const b = c.req.valid('json');
    const { vm } = c.req.valid('param');
    if (!deps.migrations) throw new DriverError('TIDE_UNSUPPORTED', 'this server runs no daemon: no migration to abort');
    const by = `${who(c)}${b.reason ? ` (${b.reason})` : ''}`;
    const r = deps.migrations.abort(vm, by);
    if (!r) throw new HttpError('TIDE_NO_MIGRATION', `no migration of '${vm}' is running: nothing to abort`);
    bus.emit('migration-abort', { vm, to: r.to, by });
    return c.json(r, 202);
  });

  // ---- admin routes ----
  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/hosts/{host}/power`,
    summary: "Power a host on or off: a one-step plan, approved, that the daemon executes at once (the power-off guard applies: empty, wake path tested)",
    middleware: [requireRole('admin')] as const, request: { params: z.object({ host: HostParam }), body: { required: true, content: { 'application/json': { schema: PowerBody } } } },
    responses: { 202: anyJson('{ planId, host, action, reason }'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    const b = c.req.valid('json');
    const { host } = c.req.valid('param');
    if (cfg().mode === 'recommend') throw new DriverError('TIDE_PLAN_STATE', 'the daemon runs in recommend mode, which never executes; set mode: approve (or automatic) in the configuration');
    const tick = bus.lastTick();
    if (!tick) throw new DriverError('TIDE_STALE_PLAN', "the daemon has not finished a round yet: the host's state is not known; try again after its first round");
    const r = requestPower(store, tick.snapshot, { host, on: b.on, by: who(c), nowMs: nowMs() });
    bus.emit('plan-status', { planId: r.planId, status: 'approved', reason: r.reason });
    deps.onChange?.('power', { planId: r.planId, by: who(c) });
    return c.json(r, 202);
  });

  app.openapi(createRoute({
    method: 'get', path: `${API_PREFIX}/tokens`, summary: 'API tokens (never their secret nor hash)',
    middleware: [requireRole('admin')] as const, responses: { 200: anyJson('tokens'), ...errors(...READ_ERRORS) },
  }), (c) => c.json({ tokens: store.apiTokens().map(({ hash: _hash, ...t }) => t) }, 200));

  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/tokens`, summary: 'Create a token; the answer holds the secret, shown only this once',
    middleware: [requireRole('admin')] as const, request: { body: { required: true, content: { 'application/json': { schema: TokenBody } } } },
    responses: { 201: anyJson('{ id, name, role, token }'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    const b = c.req.valid('json');
    const { id, token, record } = createToken(store, { role: b.role, ...(b.name ? { name: b.name } : {}), by: who(c), nowMs: nowMs() });
    return c.json({ id, name: record.name, role: record.role, token }, 201);
  });

  app.openapi(createRoute({
    method: 'post', path: `${API_PREFIX}/tokens/{id}/revoke`, summary: 'Revoke a token (refused from the next request on)',
    middleware: [requireRole('admin')] as const, request: { params: z.object({ id: PlanId.openapi({ param: { name: 'id', in: 'path' }, example: '3' }) }), body: { required: false, content: { 'application/json': { schema: ApproveBody } } } },
    responses: { 200: anyJson('{ id, revoked }'), ...errors(...WRITE_ERRORS) },
  }), (c) => {
    c.req.valid('json');
    const id = Number(c.req.valid('param').id);
    const rec = store.apiTokens().find((t) => t.id === id);
    if (!rec) throw new HttpError('TIDE_NOT_FOUND', `no API token with id ${id}`);
    const revoked = store.revokeApiToken(id, nowMs());
    return c.json({ id, revoked, alreadyRevoked: !revoked }, 200);
  });

  app.doc31(`${API_PREFIX}/openapi.json`, {
    openapi: '3.1.0',
    info: { title: 'Tide API', version: '1', description: 'Tide daemon HTTP API. Authorization: Bearer <token> (tide token create --role viewer|operator|admin).' },
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });

  deps.extraRoutes?.(app, { requireRole, bus });

  if (deps.staticDir) {
    const root = deps.staticDir;
    app.use('/*', async (c, next) => (c.req.path.startsWith('/api/') ? next() : serveStatic({ root })(c, next)));
    app.get('/*', async (c, next) => (c.req.path.startsWith('/api/') ? next() : serveStatic({ root, path: 'index.html' })(c, next)));
  }
  return app;
}

/** Reads a request body as text, refusing (413) past `max` bytes even without Content-Length. */
async function readLimited(req: Request, max: number): Promise<string> {
  if (!req.body) return '';
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      void reader.cancel().catch(() => {});
      throw new HttpError('TIDE_BODY_TOO_LARGE', `request body over ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
