/**
 * Webhooks (src/webhooks/webhooks.ts) against a real receiver on 127.0.0.1 (node:http): HMAC
 * signatures verify (and fail with a wrong secret), each event arrives once per delivery on
 * success, 500 → 200 is retried with the same delivery id, 400 is not retried, a full queue
 * drops the oldest with a warning, the secret never appears in logs; the daemon on the
 * simulator emits plan, power and freeze events; the config refuses an inline secret.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tideConfigSchema } from '../../src/config/schema.js';
import type { DaemonLog } from '../../src/daemon/daemon.js';
import { systemClock } from '../../src/executor/clock.js';
import { openSqliteStore } from '../../src/store/store.js';
import { createWebhooks, safeUrl, signBody, verifySignature, webhookTargetsFromConfig, type WebhookDelivery, type Webhooks } from '../../src/webhooks/webhooks.js';
import { simDaemon } from '../daemon/helpers.js';
import { apiFixture } from '../http/helpers.js';

const SECRET = 'test-webhook-secret-9f2c1a';

interface Received { readonly headers: IncomingHttpHeaders; readonly body: string; readonly path: string }

/** A receiver answering each request with the next status of `statuses` (then the last one); `hold` delays answers until release(). */
async function receiver(statuses: number[] = [200], opts: { hold?: boolean } = {}): Promise<{ url: string; got: Received[]; release(): void; close(): Promise<void> }> {
  const got: Received[] = [];
  let n = 0;
  const held: (() => void)[] = [];
  let holding = opts.hold ?? false;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), path: req.url ?? '' });
      const status = statuses[Math.min(n++, statuses.length - 1)]!;
      const answer = (): void => void res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
      if (holding) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    release: () => {
      holding = false;
      for (const a of held.splice(0)) a();
    },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** A logger keeping every object and message it is given, as text. */
function captureLog(): { log: DaemonLog; text: () => string; warnings: string[] } {
  const lines: string[] = [];
  const warnings: string[] = [];
  const put = (level: string) => (o: object, m?: string): void => {
    lines.push(`${level} ${JSON.stringify(o)} ${m ?? ''}`);
    if (level === 'warn') warnings.push(m ?? '');
  };
  return { log: { info: put('info'), warn: put('warn'), error: put('error'), debug: put('debug') }, text: () => lines.join('\n'), warnings };
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setup(statuses: number[], opts: { hold?: boolean; queueSize?: number; maxAttempts?: number; events?: ('plan.created' | 'freeze.frozen')[] } = {}): Promise<{ rx: Awaited<ReturnType<typeof receiver>>; hooks: Webhooks; deliveries: WebhookDelivery[]; logs: ReturnType<typeof captureLog> }> {
  const rx = await receiver(statuses, opts);
  const deliveries: WebhookDelivery[] = [];
  const logs = captureLog();
  const hooks = createWebhooks([{ url: rx.url, secret: SECRET, maxAttempts: opts.maxAttempts ?? 3, timeoutMs: 5000, ...(opts.events ? { events: opts.events } : {}) }], {
    clock: systemClock, log: logs.log, baseDelayMs: 20, queueSize: opts.queueSize, onDelivery: (d) => void deliveries.push(d),
  });
  cleanup.push(() => rx.close(), () => hooks.close());
  return { rx, hooks, deliveries, logs };
}

describe('webhook signatures', () => {
  it('sha256=<hex HMAC-SHA256 of the raw body>; a wrong secret or a changed body fails', () => {
    const body = '{"a":1}';
    const sig = signBody(SECRET, body);
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, body, sig)).toBe(true);
    expect(verifySignature('another-secret', body, sig)).toBe(false);
    expect(verifySignature(SECRET, '{"a":2}', sig)).toBe(false);
    expect(verifySignature(SECRET, body, undefined)).toBe(false);
    expect(verifySignature(SECRET, body, 'sha256=00')).toBe(false);
  });

  it('log URLs drop user info and query', () => {
    expect(safeUrl('https://u:p@example.test:8443/x/y?token=abc#f')).toBe('https://example.test:8443/x/y');
  });
});

describe('webhook deliveries to a real receiver on 127.0.0.1', () => {
  it('delivers each event once, signed, with event and delivery headers', async () => {
    const { rx, hooks, deliveries, logs } = await setup([200]);
    hooks.emit('plan.created', { planId: 1 });
    hooks.emit('host.powered_off', { host: 'h2' });
    await hooks.idle();
    expect(rx.got).toHaveLength(2);
    const ids = new Set<string>();
    for (const r of rx.got) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(verifySignature(SECRET, r.body, r.headers['x-tide-signature'] as string)).toBe(true);
      expect(verifySignature('wrong-secret', r.body, r.headers['x-tide-signature'] as string)).toBe(false);
      const p = JSON.parse(r.body) as { id: string; event: string; atMs: number; data: unknown };
      expect(p.id).toBe(r.headers['x-tide-delivery']);
      expect(p.event).toBe(r.headers['x-tide-event']);
      ids.add(p.id);
    }
    expect(rx.got.map((r) => r.headers['x-tide-event'])).toEqual(['plan.created', 'host.powered_off']);
    expect(JSON.parse(rx.got[1]!.body).data).toEqual({ host: 'h2' });
    expect(ids.size).toBe(2);
    expect(deliveries.map((d) => [d.outcome, d.attempts])).toEqual([['delivered', 1], ['delivered', 1]]);
    expect(logs.text()).not.toContain(SECRET);
  });

  it('500 then 200: retried once, with the same delivery id and a valid signature', async () => {
    const { rx, hooks, deliveries, logs } = await setup([500, 200]);
    hooks.emit('plan.failed', { planId: 7 });
    await hooks.idle();
    expect(rx.got).toHaveLength(2);
    expect(rx.got[0]!.headers['x-tide-delivery']).toBe(rx.got[1]!.headers['x-tide-delivery']);
    expect(rx.got[0]!.body).toBe(rx.got[1]!.body);
    for (const r of rx.got) expect(verifySignature(SECRET, r.body, r.headers['x-tide-signature'] as string)).toBe(true);
    expect(deliveries).toEqual([expect.objectContaining({ outcome: 'delivered', attempts: 2, status: 200 })]);
    expect(logs.warnings.join('\n')).toMatch(/HTTP 500.*retry 2\/3/);
    expect(logs.text()).not.toContain(SECRET);
    expect(logs.text()).not.toContain(rx.got[0]!.headers['x-tide-signature'] as string);
  });

  it('always 503: exactly maxAttempts attempts, then failed', async () => {
    const { rx, hooks, deliveries } = await setup([503], { maxAttempts: 3 });
    hooks.emit('migration.failed', { vm: 'v1' });
    await hooks.idle();
    expect(rx.got).toHaveLength(3);
    expect(new Set(rx.got.map((r) => r.headers['x-tide-delivery'])).size).toBe(1);
    expect(deliveries).toEqual([expect.objectContaining({ outcome: 'failed', attempts: 3, status: 503 })]);
  });

  it('400: not retried', async () => {
    const { rx, hooks, deliveries, logs } = await setup([400, 200]);
    hooks.emit('freeze.frozen', { reason: 'x' });
    await hooks.idle();
    expect(rx.got).toHaveLength(1);
    expect(deliveries).toEqual([expect.objectContaining({ outcome: 'failed', attempts: 1, status: 400 })]);
    expect(logs.text()).toMatch(/not delivered: HTTP 400/);
    expect(logs.text()).not.toContain(SECRET);
  });

  it('a target gets only the events it subscribed to', async () => {
    const { rx, hooks } = await setup([200], { events: ['freeze.frozen'] });
    hooks.emit('plan.created', { planId: 1 });
    hooks.emit('freeze.frozen', { reason: 'r' });
    await hooks.idle();
    expect(rx.got.map((r) => r.headers['x-tide-event'])).toEqual(['freeze.frozen']);
  });

  it('never blocks: a full queue drops the oldest queued delivery with a warning', async () => {
    const { rx, hooks, deliveries, logs } = await setup([200], { hold: true, queueSize: 2 });
    hooks.emit('plan.created', { n: 1 }); // in flight (held)
    while (rx.got.length < 1) await new Promise((r) => setTimeout(r, 5)); // the first is at the receiver
    for (let n = 2; n <= 5; n++) hooks.emit('plan.created', { n }); // queue of 2: 2 and 3 dropped
    expect(deliveries.filter((d) => d.outcome === 'dropped')).toHaveLength(2);
    expect(logs.warnings.filter((w) => /queue .* full/.test(w))).toHaveLength(2);
    rx.release();
    await hooks.idle();
    expect(rx.got.map((r) => (JSON.parse(r.body) as { data: { n: number } }).data.n)).toEqual([1, 4, 5]);
  });
});

describe('webhooks close', () => {
  it('close(flushMs) lets queued deliveries go out first; close() drops them', async () => {
    const a = await setup([200], { hold: true });
    a.hooks.emit('plan.created', { n: 1 });
    a.hooks.emit('plan.created', { n: 2 });
    while (a.rx.got.length < 1) await new Promise((r) => setTimeout(r, 5));
    const closing = a.hooks.close(10_000);
    a.rx.release();
    await closing;
    expect(a.deliveries.map((d) => d.outcome)).toEqual(['delivered', 'delivered']);

    const b = await setup([200], { hold: true });
    b.hooks.emit('plan.created', { n: 1 });
    b.hooks.emit('plan.created', { n: 2 });
    while (b.rx.got.length < 1) await new Promise((r) => setTimeout(r, 5));
    await b.hooks.close();
    expect(b.deliveries.map((d) => d.outcome).sort()).toEqual(['dropped', 'failed']);
  });
});

describe('webhooks fed by the daemon on the simulator', () => {
  it('automatic consolidation: plan.created, plan.started, host.powered_off, plan.finished — each once, signed', async () => {
    const rx = await receiver([200]);
    const logs = captureLog();
    const store = openSqliteStore(':memory:');
    const hooks = createWebhooks([{ url: rx.url, secret: SECRET }], { clock: systemClock, log: logs.log, store, baseDelayMs: 20 });
    cleanup.push(() => rx.close(), () => hooks.close());
    const d = simDaemon('automatic', { store, deps: { observer: hooks.observer } });
    const r = await d.round();
    expect(r.result).toBe('ok');
    await hooks.idle();
    const events = rx.got.map((x) => x.headers['x-tide-event']);
    const offs = (await d.driver.listHosts()).filter((h) => !h.up).length;
    expect(offs).toBeGreaterThan(0);
    expect(events[0]).toBe('plan.created');
    expect(events[1]).toBe('plan.started');
    expect(events.filter((e) => e === 'host.powered_off')).toHaveLength(offs);
    expect(events[events.length - 1]).toBe(r.tick!.run!.failed === 0 ? 'plan.finished' : 'plan.failed');
    expect(new Set(rx.got.map((x) => x.headers['x-tide-delivery'])).size).toBe(rx.got.length);
    for (const x of rx.got) {
      expect(verifySignature(SECRET, x.body, x.headers['x-tide-signature'] as string)).toBe(true);
      expect((JSON.parse(x.body) as { data: { planId?: number } }).data.planId).toBe(r.planId);
    }
    expect(logs.text()).toContain('delivered');
    expect(logs.text()).not.toContain(SECRET);
  });

  it('approve mode: a plan approved in the store is announced once (plan.approved), then started and finished', async () => {
    const rx = await receiver([200]);
    const store = openSqliteStore(':memory:');
    const hooks = createWebhooks([{ url: rx.url, secret: SECRET }], { clock: systemClock, store, baseDelayMs: 20 });
    cleanup.push(() => rx.close(), () => hooks.close());
    const d = simDaemon('approve', { store, deps: { observer: hooks.observer } });
    const r1 = await d.round();
    d.store.transitionPlan(r1.planId!, ['proposed'], 'approved', 'approved by alice@test');
    hooks.planApproved(r1.planId!, 'alice@test');
    await d.clock.advance(300_000);
    await d.round();
    await hooks.idle();
    const events = rx.got.map((x) => x.headers['x-tide-event']);
    expect(events.filter((e) => e === 'plan.approved')).toHaveLength(1);
    expect(events.indexOf('plan.approved')).toBeLessThan(events.indexOf('plan.started'));
    expect(events).toContain('plan.finished');
    const approved = JSON.parse(rx.got.find((x) => x.headers['x-tide-event'] === 'plan.approved')!.body) as { data: { planId: number; by: string } };
    expect(approved.data).toEqual({ planId: r1.planId, by: 'alice@test' });
  });

  it('an approval through the HTTP API is announced at once, by the token, once', async () => {
    const rx = await receiver([200]);
    const hooks = createWebhooks([{ url: rx.url, secret: SECRET }], { clock: systemClock, baseDelayMs: 20 });
    cleanup.push(() => rx.close(), () => hooks.close());
    const f = await apiFixture({ onChange: (what, d) => { if (what === 'approve' && d?.planId !== undefined) hooks.planApproved(d.planId, d.by ?? 'api'); } });
    expect((await f.req('operator', 'POST', `/api/v1/plans/${f.planId}/approve`)).status).toBe(200);
    expect((await f.req('operator', 'POST', `/api/v1/plans/${f.planId}/approve`)).status).toBe(200); // a no-op: not announced again
    await hooks.idle();
    expect(rx.got.map((x) => x.headers['x-tide-event'])).toEqual(['plan.approved']);
    expect((JSON.parse(rx.got[0]!.body) as { data: unknown }).data).toEqual({ planId: f.planId, by: expect.stringMatching(/^api:o#\d+$/) });
  });

  it('freeze and thaw become freeze.frozen / freeze.thawed', async () => {
    const rx = await receiver([200]);
    const hooks = createWebhooks([{ url: rx.url, secret: SECRET }], { clock: systemClock, baseDelayMs: 20 });
    cleanup.push(() => rx.close(), () => hooks.close());
    hooks.observer.onFreeze!({ frozen: true, sinceSec: 1, sinceMs: 1000, healthyRounds: 0, reason: 'h1 silent', reasons: [{ code: 'silent', reason: 'h1 silent', host: 'h1' }] } as never, 1000);
    hooks.observer.onFreeze!({ frozen: false, sinceSec: null, sinceMs: null, healthyRounds: 2, reason: null, reasons: [] } as never, 2000);
    await hooks.idle();
    expect(rx.got.map((x) => x.headers['x-tide-event'])).toEqual(['freeze.frozen', 'freeze.thawed']);
    expect((JSON.parse(rx.got[0]!.body) as { data: unknown }).data).toEqual({ reason: 'h1 silent', reasons: [{ code: 'silent', host: 'h1', reason: 'h1 silent' }], sinceMs: 1000 });
  });
});

describe('webhooks configuration', () => {
  const base = { hosts: [{ name: 'h1', uri: 'qemu:///system' }] };

  it('an inline secret is refused without echoing it; exactly one of secretFile / secretEnv', () => {
    const r = tideConfigSchema.safeParse({ ...base, webhooks: [{ url: 'https://x.test/h', secret: 'inline-s3cret-value' }] });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error!.issues)).toMatch(/inline webhook secret is refused/);
    expect(JSON.stringify(r.error!.issues)).not.toContain('inline-s3cret-value');
    expect(tideConfigSchema.safeParse({ ...base, webhooks: [{ url: 'https://x.test/h' }] }).success).toBe(false);
    expect(tideConfigSchema.safeParse({ ...base, webhooks: [{ url: 'https://x.test/h', secretEnv: 'A', secretFile: 'f' }] }).success).toBe(false);
    expect(tideConfigSchema.safeParse({ ...base, webhooks: [{ url: 'ftp://x.test/h', secretEnv: 'A' }] }).success).toBe(false);
    expect(tideConfigSchema.safeParse({ ...base, webhooks: [{ url: 'https://x.test/h', secretEnv: 'A', events: ['nope'] }] }).success).toBe(false);
  });

  it('reads the secret from a file (relative to the configuration) or the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-wh-'));
    writeFileSync(join(dir, 'hook.secret'), `${SECRET}\nignored\n`, { mode: 0o600 });
    const cfg = tideConfigSchema.parse({ ...base, webhooks: [{ url: 'https://a.test/h', secretFile: 'hook.secret', events: ['plan.failed'] }, { url: 'https://b.test/h', secretEnv: 'HOOK_SECRET' }] });
    const targets = webhookTargetsFromConfig(cfg, join(dir, 'tide.yaml'), { HOOK_SECRET: 'from-env-secret' });
    expect(targets.map((t) => [t.url, t.secret, t.events, t.timeoutMs, t.maxAttempts])).toEqual([
      ['https://a.test/h', SECRET, ['plan.failed'], 10_000, 3], ['https://b.test/h', 'from-env-secret', undefined, 10_000, 3],
    ]);
    expect(() => webhookTargetsFromConfig(cfg, join(dir, 'tide.yaml'), {})).toThrow(/HOOK_SECRET is not set/);
  });
});
