/**
 * The HTTP API in-process (app.request): every route × {no token, viewer, operator, admin} →
 * the expected status, and nothing changes on a refusal; approve through the API and the
 * daemon executes the plan; SSE delivers the daemon's events; the OpenAPI document lists every
 * route; body limit, strict validation, rate limit on failed logins; tokens revoked; the
 * server binds 127.0.0.1 by default; `tide token create|list|revoke`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createHttpApp } from '../../src/http/app.js';
import { serveHttp } from '../../src/http/serve.js';
import { hashToken } from '../../src/http/tokens.js';
import { openSqliteStore, type ApiRole } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { apiFixture, storeDigest, type ApiFixture, type Who } from './helpers.js';

interface RouteCase {
  readonly method: 'GET' | 'POST';
  /** With {id} (the proposed plan) and {host} (the first host). */
  readonly path: string;
  readonly body?: unknown;
  readonly role: ApiRole;
  /** Status when allowed (default 200). */
  readonly ok?: number;
  readonly prepare?: (f: ApiFixture) => void;
}

/** Every route of the API (the OpenAPI test checks this list is complete). */
export const ROUTES: readonly RouteCase[] = [
  { method: 'GET', path: '/api/v1/status', role: 'viewer' },
  { method: 'GET', path: '/api/v1/whoami', role: 'viewer' },
  { method: 'GET', path: '/api/v1/clusters', role: 'viewer' },
  { method: 'GET', path: '/api/v1/hosts', role: 'viewer' },
  { method: 'GET', path: '/api/v1/hosts/{host}', role: 'viewer' },
  { method: 'GET', path: '/api/v1/vms', role: 'viewer' },
  { method: 'GET', path: '/api/v1/plans', role: 'viewer' },
  { method: 'GET', path: '/api/v1/plans/{id}', role: 'viewer' },
  { method: 'GET', path: '/api/v1/migrations', role: 'viewer' },
  { method: 'GET', path: '/api/v1/schedule', role: 'viewer' },
  { method: 'GET', path: '/api/v1/freeze', role: 'viewer' },
  { method: 'GET', path: '/api/v1/rules', role: 'viewer' },
  { method: 'GET', path: '/api/v1/policy', role: 'viewer' },
  { method: 'POST', path: '/api/v1/policy/validate', body: { name: 'tide', args: { targetUtil: 0.7 } }, role: 'viewer' },
  { method: 'GET', path: '/api/v1/events', role: 'viewer' },
  { method: 'POST', path: '/api/v1/plans/{id}/approve', role: 'operator' },
  { method: 'POST', path: '/api/v1/plans/{id}/reject', body: { reason: 'not now' }, role: 'operator' },
  { method: 'POST', path: '/api/v1/hosts/{host}/maintenance', body: { on: true, reason: 'disk swap' }, role: 'operator' },
  { method: 'POST', path: '/api/v1/migrations', body: { vm: '{vm}', to: 'best' }, role: 'operator', ok: 202 },
  // nothing runs: 409 TIDE_NO_MIGRATION (test/http/abort.test.ts aborts a running one: 202)
  { method: 'POST', path: '/api/v1/migrations/{vm}/abort', body: { reason: 'wrong target' }, role: 'operator', ok: 409 },
  {
    method: 'POST', path: '/api/v1/hosts/{host}/power', body: { on: true }, role: 'admin', ok: 202,
    // The last round saw the first host off and empty.
    prepare: (f) => f.bus.setLastTick({ ...f.tick, snapshot: { ...f.tick.snapshot,
      hosts: f.tick.snapshot.hosts.map((h, i) => (i === 0 ? { ...h, powerState: 'off' as const } : h)),
      vms: f.tick.snapshot.vms.filter((v) => v.host !== f.tick.snapshot.hosts[0]!.id) } }),
  },
  { method: 'POST', path: '/api/v1/policy', body: { name: 'tide', args: { targetUtil: 0.7 } }, role: 'admin' },
  { method: 'POST', path: '/api/v1/policy/revert', role: 'admin' },
  { method: 'POST', path: '/api/v1/rules', body: { rules: [{ kind: 'pin', id: 'dns-home', vm: 'dns', hosts: ['{host}'], strength: 'soft' }], pinnedVms: ['{vm}'] }, role: 'admin' },
  { method: 'POST', path: '/api/v1/rules/revert', role: 'admin' },
  // one round of history only: 409 "nothing to replay yet" (the what-if test replays four hours)
  { method: 'POST', path: '/api/v1/whatif', body: { hours: 1, policies: [{ name: 'npa' }] }, role: 'viewer', ok: 409 },
  { method: 'GET', path: '/api/v1/tokens', role: 'admin' },
  { method: 'POST', path: '/api/v1/tokens', body: { role: 'viewer', name: 'grafana' }, role: 'admin', ok: 201 },
  { method: 'POST', path: '/api/v1/tokens/{token}/revoke', role: 'admin' },
];

const RANK: Record<Who, number> = { none: -1, viewer: 0, operator: 1, admin: 2 };

const fill = (f: ApiFixture, p: string): string => p.replace('{id}', String(f.planId)).replace('{host}', f.config.hosts[0]!.name)
  .replace('{token}', String(f.d.store.apiTokenByHash(hashToken(f.tok.viewer))!.id)).replace('{vm}', f.tick.snapshot.vms[0]!.id);

describe('every route × every role', () => {
  for (const r of ROUTES) {
    it(`${r.method} ${r.path}: none → 401, below ${r.role} → 403 (nothing changes), ${r.role} and above → ${r.ok ?? 200}`, async () => {
      const f = await apiFixture();
      r.prepare?.(f);
      for (const who of ['none', 'viewer', 'operator', 'admin'] as const) {
        const before = storeDigest(f.d.store);
        const res = await f.req(who, r.method, fill(f, r.path), r.body === undefined ? undefined : JSON.parse(fill(f, JSON.stringify(r.body))));
        const allowed = RANK[who] >= RANK[r.role];
        const want = who === 'none' ? 401 : allowed ? r.ok ?? 200 : 403;
        if (res.headers.get('content-type')?.startsWith('text/event-stream')) await res.body?.cancel();
        else {
          const body = await res.json() as { error?: { code: string; message: string } };
          if (!allowed) {
            expect(body.error?.code).toBe(want === 401 ? 'TIDE_UNAUTHENTICATED' : 'TIDE_FORBIDDEN');
            expect(body.error?.message).toMatch(/token|role/);
          }
        }
        expect({ who, status: res.status }).toEqual({ who, status: want });
        if (!allowed || r.method === 'GET' || r.path.endsWith('validate') || r.path.endsWith('whatif')) expect(storeDigest(f.d.store)).toBe(before);
      }
    });
  }
});

describe('reads show the daemon', () => {
  it('hosts: power, maintenance and utilisation from the last round; vms with their host; plan detail with reasons and why-not', async () => {
    const f = await apiFixture();
    const hosts = (await (await f.req('viewer', 'GET', '/api/v1/hosts')).json()) as { hosts: { name: string; powerState: string; cpuPct: number; vms: number; source: string }[] };
    expect(hosts.hosts.map((h) => h.name)).toEqual(f.tick.snapshot.hosts.map((h) => h.id));
    expect(hosts.hosts.every((h) => h.source === 'round' && h.powerState === 'on' && h.cpuPct >= 0)).toBe(true);
    expect(hosts.hosts.reduce((s, h) => s + h.vms, 0)).toBe(f.tick.snapshot.vms.length);
    const vms = (await (await f.req('viewer', 'GET', '/api/v1/vms')).json()) as { vms: { name: string; host: string }[] };
    expect(vms.vms).toHaveLength(f.tick.snapshot.vms.length);
    const plan = (await (await f.req('viewer', 'GET', `/api/v1/plans/${f.planId}`)).json()) as { status: string; stepDetails: { reason: string; state: string }[]; notMoved: unknown[] };
    expect(plan.status).toBe('proposed');
    expect(plan.stepDetails.length).toBeGreaterThan(0);
    expect(plan.stepDetails.every((s) => s.reason.length > 0 && s.state === 'pending')).toBe(true);
    expect(Array.isArray(plan.notMoved)).toBe(true);
    const list = (await (await f.req('viewer', 'GET', '/api/v1/plans?status=proposed')).json()) as { plans: { id: number }[] };
    expect(list.plans.map((p) => p.id)).toEqual([f.planId]);
    const missing = await f.req('viewer', 'GET', '/api/v1/plans/999999');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('TIDE_NO_SUCH_PLAN');
  });
});

describe('writes', () => {
  it('approve through the API: the plan is approved by the token, and the daemon executes it', async () => {
    const f = await apiFixture();
    const res = await f.req('operator', 'POST', `/api/v1/plans/${f.planId}/approve`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe('approved');
    expect(f.d.store.getPlan(f.planId)!.statusReason).toMatch(/approved by api:o#2/);
    await f.d.clock.drive(f.d.daemon.executeApproved());
    expect(f.d.store.getPlan(f.planId)!.status).toBe('done');
    const again = await f.req('operator', 'POST', `/api/v1/plans/${f.planId}/reject`);
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'TIDE_PLAN_STATE' });
  });

  it('maintenance on/off through the API is kept in the store; an unknown host is 404 and changes nothing', async () => {
    const f = await apiFixture();
    const host = f.config.hosts[1]!.name;
    expect((await f.req('operator', 'POST', `/api/v1/hosts/${host}/maintenance`, { on: true })).status).toBe(200);
    expect(f.d.store.hostStates().find((h) => h.host === host)).toMatchObject({ maintenance: true, by: 'api:o#2' });
    const before = storeDigest(f.d.store);
    const res = await f.req('operator', 'POST', '/api/v1/hosts/nope/maintenance', { on: true });
    expect(res.status).toBe(404);
    expect(storeDigest(f.d.store)).toBe(before);
    expect((await f.req('admin', 'POST', `/api/v1/hosts/${host}/maintenance`, { on: false })).status).toBe(200);
    expect(f.d.store.hostStates().find((h) => h.host === host)!.maintenance).toBe(false);
  });

  it('strict validation: unknown keys, wrong types, malformed JSON, non-JSON bodies, bodies over the limit — 4xx with a path-named message, nothing changed', async () => {
    const f = await apiFixture({ maxBodyBytes: 1024 });
    const m = `/api/v1/hosts/${f.config.hosts[0]!.name}/maintenance`;
    const before = storeDigest(f.d.store);
    const cases: [string, unknown, Record<string, string>, number, string, RegExp][] = [
      [m, { on: true, force: 1 }, {}, 400, 'TIDE_BAD_REQUEST', /body.*force/],
      [m, { on: 'yes' }, {}, 400, 'TIDE_BAD_REQUEST', /body\.on/],
      [m, {}, {}, 400, 'TIDE_BAD_REQUEST', /body\.on/],
      [m, '{"on": tru', {}, 400, 'TIDE_BAD_REQUEST', /JSON/],
      [m, 'on=true', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'TIDE_UNSUPPORTED_MEDIA_TYPE', /JSON/],
      [m, { on: true, reason: 'x'.repeat(2000) }, {}, 413, 'TIDE_BODY_TOO_LARGE', /1024 bytes/],
      [`/api/v1/plans/${f.planId}/approve`, { now: true }, {}, 400, 'TIDE_BAD_REQUEST', /now/],
      [`/api/v1/plans/0/approve`, undefined, {}, 400, 'TIDE_BAD_REQUEST', /param\.id/],
      [`/api/v1/plans/${f.planId}/reject`, { reason: 5 }, {}, 400, 'TIDE_BAD_REQUEST', /body\.reason/],
      ['/api/v1/policy/validate', { name: 'tide', args: { targetUtil: 'high' } }, {}, 400, 'TIDE_POLICY', /targetUtil/],
      ['/api/v1/policy/validate', { name: 'no-such-policy' }, {}, 400, 'TIDE_POLICY', /no-such-policy/],
    ];
    for (const [path, body, headers, status, code, msg] of cases) {
      const res = await f.req('admin', 'POST', path, body, headers);
      const b = (await res.json()) as { error: { code: string; message: string } };
      expect({ path, status: res.status, code: b.error.code }).toEqual({ path, status, code });
      expect(b.error.message).toMatch(msg);
      expect(b.error.message).not.toMatch(/\n\s+at /);
    }
    expect(storeDigest(f.d.store)).toBe(before);
    const q = await f.req('viewer', 'GET', '/api/v1/plans?limit=0&extra=1');
    expect(q.status).toBe(400);
  });

  it('a revoked token is refused (401); an unknown route is 404 JSON', async () => {
    const f = await apiFixture();
    const id = f.d.store.apiTokenByHash(hashToken(f.tok.viewer))!.id;
    expect((await f.req('viewer', 'GET', '/api/v1/status')).status).toBe(200);
    f.d.store.revokeApiToken(id, 1);
    expect((await f.req('viewer', 'GET', '/api/v1/status')).status).toBe(401);
    const nf = await f.req('admin', 'GET', '/api/v1/nothing');
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as { error: { code: string } }).error.code).toBe('TIDE_NOT_FOUND');
  });

  it('rate limit: after 10 failed logins from one address in a minute every request from it is 429 (even with a good token) until the minute is over', async () => {
    let now = 1_000_000;
    const f = await apiFixture({ nowMs: () => now });
    for (let i = 0; i < 10; i++) expect((await f.req('none', 'GET', '/api/v1/status', undefined, { authorization: `Bearer wrong${i}` })).status).toBe(401);
    const limited = await f.req('admin', 'POST', `/api/v1/plans/${f.planId}/approve`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(f.d.store.getPlan(f.planId)!.status).toBe('proposed');
    now += 60_000;
    expect((await f.req('viewer', 'GET', '/api/v1/status')).status).toBe(200);
  });
});

describe('migrations through the API', () => {
  it('to the best host: a one-step plan, approved, with every host\'s verdict; the daemon executes it and the VM moves', async () => {
    const f = await apiFixture();
    const vm = f.tick.snapshot.vms.find((v) => v.host !== null && v.migratable)!;
    const res = await f.req('operator', 'POST', '/api/v1/migrations', { vm: vm.id, to: 'best' });
    expect(res.status).toBe(202);
    const m = (await res.json()) as { planId: number; from: string; to: string; reason: string; assessments: { host: string; fits: boolean }[] };
    expect(m.from).toBe(vm.host);
    expect(m.to).not.toBe(vm.host);
    expect(m.reason).toMatch(/requested by api:o#2/);
    expect(m.assessments.map((a) => a.host).sort()).toEqual(f.tick.snapshot.hosts.map((h) => h.id).sort());
    const p = f.d.store.getPlan(m.planId)!;
    expect(p.status).toBe('approved');
    expect(p.plan.steps).toMatchObject([{ kind: 'migrate', vm: vm.id, from: vm.host, to: m.to, by: 'operator' }]);
    await f.d.clock.drive(f.d.daemon.executeApproved());
    expect(f.d.store.getPlan(m.planId)!.status).toBe('done');
    expect(f.d.driver.placement()[vm.id]).toBe(m.to);
    const hist = (await (await f.req('viewer', 'GET', `/api/v1/migrations?vm=${vm.id}`)).json()) as { migrations: { vm: string; to: string; ok: boolean; totalMs: number }[] };
    expect(hist.migrations[0]).toMatchObject({ vm: vm.id, to: m.to, ok: true });
  });

  it('to a chosen host; refusals change nothing: unknown VM 404, unknown host 404, its own host 400, a host it does not fit 409 with the reason, recommend mode 409', async () => {
    const f = await apiFixture();
    const vm = f.tick.snapshot.vms.find((v) => v.host !== null && v.migratable)!;
    const other = f.tick.snapshot.hosts.find((h) => h.id !== vm.host)!.id;
    const before = storeDigest(f.d.store);
    const cases: [unknown, number, string][] = [
      [{ vm: 'no-such-vm', to: 'best' }, 404, 'TIDE_NO_SUCH_VM'],
      [{ vm: vm.id, to: 'no-such-host' }, 404, 'TIDE_NO_SUCH_HOST'],
      [{ vm: vm.id, to: vm.host }, 400, 'TIDE_INVALID_ARGUMENT'],
      [{ vm: vm.id }, 400, 'TIDE_BAD_REQUEST'],
      [{ vm: vm.id, to: other, now: true }, 400, 'TIDE_BAD_REQUEST'],
    ];
    for (const [body, status, code] of cases) {
      const res = await f.req('operator', 'POST', '/api/v1/migrations', body);
      expect({ body, status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code }).toEqual({ body, status, code });
    }
    expect(storeDigest(f.d.store)).toBe(before);
    const ok = await f.req('operator', 'POST', '/api/v1/migrations', { vm: vm.id, to: other });
    expect(ok.status).toBe(202);
    expect(((await ok.json()) as { to: string }).to).toBe(other);
    const rec = await apiFixture({ config: { ...f.config, mode: 'recommend' } });
    const r = await rec.req('operator', 'POST', '/api/v1/migrations', { vm: vm.id, to: 'best' });
    expect(r.status).toBe(409);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/recommend mode/);
  });

  it('a host the VM does not fit on: 409 TIDE_NO_HOST_FITS with the filter\'s reason, nothing stored', async () => {
    const f = await apiFixture();
    const snap = f.tick.snapshot;
    const vm = snap.vms.find((v) => v.host !== null && v.migratable)!;
    const tiny = snap.hosts.find((h) => h.id !== vm.host)!;
    // The last round saw a target too small for the VM.
    f.bus.setLastTick({ ...f.tick, snapshot: { ...snap, hosts: snap.hosts.map((h) => (h.id === tiny.id ? { ...h, memMiB: 1 } : h)) } });
    const before = storeDigest(f.d.store);
    const res = await f.req('operator', 'POST', '/api/v1/migrations', { vm: vm.id, to: tiny.id });
    expect(res.status).toBe(409);
    const e = ((await res.json()) as { error: { code: string; message: string } }).error;
    expect(e.code).toBe('TIDE_NO_HOST_FITS');
    expect(e.message).toMatch(new RegExp(`^no host can take ${vm.id} on ${tiny.id} — ${tiny.id}: -?\\d+ MiB free, ${vm.id} holds \\d+ MiB$`));
    expect(storeDigest(f.d.store)).toBe(before);
  });
});

describe('power through the API (admin)', () => {
  it('off: refused while the host holds VMs (nothing stored); once evacuated (and powered off by the plan), on and off again through the API', async () => {
    const f = await apiFixture();
    const host = f.tick.snapshot.hosts[0]!.id;
    const before = storeDigest(f.d.store);
    const busy = await f.req('admin', 'POST', `/api/v1/hosts/${host}/power`, { on: false });
    expect(busy.status).toBe(409);
    expect(((await busy.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'TIDE_POWER_REFUSED', message: expect.stringMatching(/holds \d+ VM\(s\).*move them first/) });
    expect((await f.req('admin', 'POST', `/api/v1/hosts/${host}/power`, { on: true })).status).toBe(409);
    expect((await f.req('admin', 'POST', '/api/v1/hosts/nope/power', { on: true })).status).toBe(404);
    expect((await f.req('admin', 'POST', `/api/v1/hosts/${host}/power`, { on: 'off' })).status).toBe(400);
    expect(storeDigest(f.d.store)).toBe(before);
    // Empty the host: maintenance on, the daemon's evacuation plan, approved and executed.
    expect((await f.req('operator', 'POST', `/api/v1/hosts/${host}/maintenance`, { on: true })).status).toBe(200);
    const r = await f.d.round();
    expect(r.planId).not.toBeNull();
    expect((await f.req('operator', 'POST', `/api/v1/plans/${r.planId}/approve`)).status).toBe(200);
    await f.d.clock.drive(f.d.daemon.executeApproved());
    await f.d.round();
    const empty = f.bus.lastTick()!.snapshot;
    expect(empty.vms.filter((v) => v.host === host)).toEqual([]);
    // The evacuation plan powered the emptied host off (DPM); power it on through the API…
    expect(empty.hosts.find((h) => h.id === host)!.powerState).toBe('off');
    const on = await f.req('admin', 'POST', `/api/v1/hosts/${host}/power`, { on: true });
    expect(on.status).toBe(202);
    const onPlan = ((await on.json()) as { planId: number }).planId;
    await f.d.clock.drive(f.d.daemon.executeApproved());
    expect(f.d.store.getPlan(onPlan)!.status).toBe('done');
    expect(f.d.driver.hostPower()[host]).toBe('on');
    // …and off again: the daemon's round now sees it on and empty.
    await f.d.round();
    const off = await f.req('admin', 'POST', `/api/v1/hosts/${host}/power`, { on: false });
    expect(off.status).toBe(202);
    const offPlan = ((await off.json()) as { planId: number }).planId;
    await f.d.clock.drive(f.d.daemon.executeApproved());
    expect(f.d.store.getPlan(offPlan)!.status).toBe('done');
    expect(f.d.driver.hostPower()[host]).toBe('off');
  });
});

describe('policy apply (admin)', () => {
  it('a valid policy is in force from the next round and GET /policy shows it; an invalid one is 400 and nothing changes; no daemon: 501', async () => {
    const f = await apiFixture();
    const before = f.d.daemon.settings.policy.label;
    const bad = await f.req('admin', 'POST', '/api/v1/policy', { name: 'tide', args: { targetUtil: 7 } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'TIDE_POLICY', message: expect.stringMatching(/targetUtil/) });
    expect(f.d.daemon.settings.policy.label).toBe(before);
    const ok = await f.req('admin', 'POST', '/api/v1/policy', { name: 'lr-mmt', args: {} });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ applied: true, name: 'lr-mmt', persistent: true, source: 'api', setBy: 'api:a#3' });
    expect(f.d.daemon.settings.policy.label).toMatch(/^lr-mmt/);
    expect(await (await f.req('viewer', 'GET', '/api/v1/policy')).json()).toMatchObject({ name: 'lr-mmt', source: 'api', setBy: 'api:a#3', file: { name: 'tide' } });
    const r = await f.d.round();
    expect(r.result).toBe('ok');
    expect(r.tick!.plan.policy).toMatch(/^lr\(.*\)\/mmt/);
    const none = await apiFixture({ applyConfig: undefined });
    expect((await none.req('admin', 'POST', '/api/v1/policy', { name: 'tide' })).status).toBe(501);
  });
});

describe('what-if', () => {
  it("replays the recorded history on this cluster through other policies: energy, SLA, migrations side by side with the configured one and always-on; changes nothing", async () => {
    const f = await apiFixture();
    // Four hours of daemon rounds (every 5 min, virtual time) record the history.
    await f.d.clock.drive(f.d.daemon.run(f.d.clock.now() + 4 * 3_600_000));
    const before = storeDigest(f.d.store);
    const res = await f.req('viewer', 'POST', '/api/v1/whatif', { hours: 24, policies: [{ name: 'npa' }, { name: 'tide', args: { targetUtil: 0.6 } }] });
    expect(res.status).toBe(200);
    const w = (await res.json()) as { samples: number; intervalSec: number; vms: number; alwaysOnKWh: number; results: { policy: string; configured: boolean; energyKWh: number; migrations: number; slaViolationPct: number; savedVsAlwaysOnPct: number }[] };
    expect(w.samples).toBeGreaterThanOrEqual(48);
    expect(w.intervalSec).toBe(300);
    expect(w.vms).toBe(f.tick.snapshot.vms.length);
    expect(w.results.map((r) => [r.policy, r.configured])).toEqual([['tide', true], ['npa', false], ['tide', false]]);
    expect(w.alwaysOnKWh).toBeGreaterThan(0);
    for (const r of w.results) {
      expect(r.energyKWh).toBeGreaterThan(0);
      expect(Number.isFinite(r.slaViolationPct)).toBe(true);
    }
    // npa never moves a VM nor powers a host off: no migration, no saving beyond always-on's.
    expect(w.results[1]!.migrations).toBe(0);
    expect(storeDigest(f.d.store)).toBe(before);
    const bad = await f.req('viewer', 'POST', '/api/v1/whatif', { policies: [{ name: 'tide', args: { nope: 1 } }] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('TIDE_POLICY');
    expect((await f.req('viewer', 'POST', '/api/v1/whatif', { policies: [] })).status).toBe(400);
    expect((await f.req('viewer', 'POST', '/api/v1/whatif', { hours: 1000, policies: [{ name: 'npa' }] })).status).toBe(400);
  }, 120_000);
});

describe('tokens through the API (admin)', () => {
  it('create returns the secret once and it works; the list never shows secrets or hashes; revoke ends it', async () => {
    const f = await apiFixture();
    const res = await f.req('admin', 'POST', '/api/v1/tokens', { role: 'operator', name: 'bot' });
    expect(res.status).toBe(201);
    const t = (await res.json()) as { id: number; token: string; role: string };
    expect(t.role).toBe('operator');
    const h = { authorization: `Bearer ${t.token}` };
    expect((await f.app.request('/api/v1/status', { headers: h })).status).toBe(200);
    const list = await (await f.req('admin', 'GET', '/api/v1/tokens')).text();
    expect(list).not.toContain(t.token);
    expect(list).not.toContain(hashToken(t.token));
    expect((await f.req('admin', 'POST', `/api/v1/tokens/${t.id}/revoke`)).status).toBe(200);
    expect((await f.app.request('/api/v1/status', { headers: h })).status).toBe(401);
    expect((await f.req('admin', 'POST', '/api/v1/tokens', { role: 'root' })).status).toBe(400);
    expect((await f.req('admin', 'POST', '/api/v1/tokens/999/revoke')).status).toBe(404);
  });
});

describe('events (SSE)', () => {
  it("streams the daemon's events: an approval through the API and a daemon round", async () => {
    const f = await apiFixture();
    const res = await f.req('viewer', 'GET', '/api/v1/events');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (re: RegExp): Promise<void> => {
      while (!re.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${re}`);
        text += new TextDecoder().decode(value);
      }
    };
    await readUntil(/event: hello/);
    expect((await f.req('operator', 'POST', `/api/v1/plans/${f.planId}/approve`)).status).toBe(200);
    await readUntil(/event: plan-status\ndata: .*"status":"approved"/);
    await f.d.round();
    // progress names the step's VM, source and target (a dashboard opened mid-migration shows it)
    await readUntil(/event: progress\ndata: \{[^\n]*"vm":"[^"]+","from":"[^"]+","to":"[^"]+"[^\n]*"dataTotalBytes":\d+/);
    await readUntil(/event: step-end\n/);
    await readUntil(/event: round\n/);
    await reader.cancel();
    // the subscription ends with the stream
    await new Promise((r) => setTimeout(r, 10));
    expect(f.bus.listenerCount).toBe(0);
  });

  it('at most maxEventStreams open at once (429 beyond); a closed one frees its place', async () => {
    const f = await apiFixture({ maxEventStreams: 2 });
    const a = await f.req('viewer', 'GET', '/api/v1/events');
    const b = await f.req('viewer', 'GET', '/api/v1/events');
    expect([a.status, b.status]).toEqual([200, 200]);
    const c = await f.req('viewer', 'GET', '/api/v1/events');
    expect(c.status).toBe(429);
    expect(((await c.json()) as { error: { code: string } }).error.code).toBe('TIDE_RATE_LIMITED');
    await a.body!.cancel();
    await expect.poll(async () => {
      const d = await f.req('viewer', 'GET', '/api/v1/events');
      if (d.status === 200) await d.body!.cancel();
      return d.status;
    }).toBe(200);
    await b.body!.cancel();
  });

  it('EventSource style: ?access_token= works for /events only', async () => {
    const f = await apiFixture();
    const res = await f.req('none', 'GET', `/api/v1/events?access_token=${f.tok.viewer}`);
    expect(res.status).toBe(200);
    await res.body!.cancel();
    expect((await f.req('none', 'GET', `/api/v1/status?access_token=${f.tok.viewer}`)).status).toBe(401);
  });
});

describe('OpenAPI', () => {
  it('the document (public) lists every route with its method, and the request schemas are the validating ones', async () => {
    const f = await apiFixture();
    const res = await f.req('none', 'GET', '/api/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>> };
    expect(doc.openapi).toBe('3.1.0');
    const listed = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort();
    expect(listed).toEqual(ROUTES.map((r) => `${r.method} ${r.path.replace('{token}', '{id}')}`).sort());
    const maint = doc.paths['/api/v1/hosts/{host}/maintenance']!.post!.requestBody!.content['application/json']!.schema;
    const schemas = (doc as unknown as { components: { schemas: Record<string, { additionalProperties?: unknown; required?: string[] }> } }).components.schemas;
    expect(schemas.MaintenanceRequest).toMatchObject({ additionalProperties: false, required: ['on'] });
    expect(maint).toEqual({ $ref: '#/components/schemas/MaintenanceRequest' });
  });
});

describe('serving', () => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of closers) await c();
  });

  it('binds 127.0.0.1 by default (a real listen on port 0); /hosts without a token is 401', async () => {
    const store = openSqliteStore(':memory:');
    const app = createHttpApp({ store, config: { hosts: [{ name: 'a' }], rules: [], vms: {}, policy: { name: 'tide', args: {} } } as never });
    const srv = await serveHttp(app, { port: 0 });
    closers.push(() => srv.close());
    expect(srv.host).toBe('127.0.0.1');
    expect(srv.url).toBe(`http://127.0.0.1:${srv.port}`);
    const res = await fetch(`${srv.url}/api/v1/hosts`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TIDE_UNAUTHENTICATED');
  });
});

describe('tide token', () => {
  it('create prints the token once (only its hash is stored), list shows it without secret, revoke ends it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-token-'));
    const cfg = join(dir, 'tide.yaml');
    writeFileSync(cfg, 'hosts:\n  - name: a\n    uri: test:///default\n');
    const c = await runCli(['--config', cfg, 'token', 'create', '--role', 'operator', '--name', 'ci']);
    expect(c.code).toBe(0);
    const token = c.out.trim();
    expect(token).toMatch(/^tide_[A-Za-z0-9_-]{43}$/);
    expect(c.err).toMatch(/shown only now/);
    const l = await runCli(['--config', cfg, 'token', 'list', '--json']);
    const rows = JSON.parse(l.out) as { id: number; name: string; role: string; hash?: string }[];
    expect(rows).toMatchObject([{ id: 1, name: 'ci', role: 'operator' }]);
    expect(l.out).not.toContain(token);
    expect(rows[0]!.hash).toBeUndefined();
    const store = openSqliteStore(join(dir, '.tide/tide.sqlite'));
    expect(store.apiTokens()[0]!.hash).toBe(hashToken(token));
    store.close();
    expect((await runCli(['--config', cfg, 'token', 'revoke', '1'])).out).toMatch(/revoked/);
    const s2 = openSqliteStore(join(dir, '.tide/tide.sqlite'));
    expect(s2.apiTokens()[0]!.revokedMs).not.toBeNull();
    s2.close();
    expect((await runCli(['--config', cfg, 'token', 'create', '--role', 'root'])).code).toBe(2);
  });
});
