/**
 * Fuzzing the mutating routes (approve, reject, maintenance, migrations, migration abort, rules,
 * policy and their reverts) with fast-check: 10,000 random
 * methods, paths, headers and bodies. Every answer is a 4xx with a JSON `{error:{code,message}}`
 * (a TIDE_ code, a non-empty message, no stack trace), never a 5xx, and the store is unchanged
 * (digest before/after). The fixture's plan is `done` and the generators never form a valid
 * maintenance request for a configured host, a migration of an existing VM, valid rules nor a valid policy (nothing
 * runs, so an abort finds nothing; a revert finds no API edit), so no request here may legitimately change state.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../src/core/policy.js';
import { rulesSectionSchema } from '../../src/http/overrides.js';
import { apiFixture, storeDigest } from './helpers.js';

const printable = (max: number): fc.Arbitrary<string> => fc.string({ maxLength: max, unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) });

describe('fuzzing the mutating routes', () => {
  it('10,000 random requests: always 4xx with a clear JSON error, never 5xx, never a changed store', async () => {
    const f = await apiFixture({ maxAuthFailures: Number.POSITIVE_INFINITY, maxBodyBytes: 64 * 1024 });
    f.d.store.setPlanStatus(f.planId, 'done', 'fuzz fixture');
    const hosts = f.config.hosts.map((h) => h.name);
    const vms = f.tick.snapshot.vms.map((v) => v.id);
    const digest = storeDigest(f.d.store);
    const statuses = new Map<number, number>();
    const byRoute = new Map<string, number>();

    const planSeg = fc.oneof(fc.constant(String(f.planId)), fc.nat().map(String), printable(12), fc.constantFrom('0', '-1', '1e3', '99999999999', '%00', '..'));
    const hostSeg = fc.oneof(fc.constantFrom(...hosts), printable(20), fc.constantFrom('..', '%2e%2e', 'srv-1%00', '-x'));
    const path = fc.oneof(
      planSeg.map((id) => `/api/v1/plans/${encodeURIComponent(id)}/approve`),
      planSeg.map((id) => `/api/v1/plans/${encodeURIComponent(id)}/reject`),
      hostSeg.map((h) => `/api/v1/hosts/${encodeURIComponent(h)}/maintenance`),
      printable(30).map((p) => `/api/v1/plans/${p.replace(/[?#]/g, '')}`),
      fc.constant('/api/v1/migrations'),
      fc.oneof(fc.constantFrom(...vms), printable(20), fc.constantFrom('..', '%00', '-')).map((v) => `/api/v1/migrations/${encodeURIComponent(v)}/abort`),
      fc.constantFrom('/api/v1/rules', '/api/v1/policy', '/api/v1/rules/revert', '/api/v1/policy/revert'),
    );
    const ruleLike = fc.record({
      kind: fc.oneof(fc.constantFrom('affinity', 'antiAffinity', 'pin', 'near'), fc.string()), id: fc.oneof(fc.string({ maxLength: 5 }), fc.nat()),
      vms: fc.oneof(fc.array(fc.constantFrom(...vms), { maxLength: 3 }), fc.jsonValue()), vm: fc.oneof(fc.constantFrom(...vms), fc.nat()),
      hosts: fc.oneof(fc.array(fc.oneof(fc.constantFrom(...hosts), printable(8)), { maxLength: 3 }), fc.string()), strength: fc.oneof(fc.constantFrom('hard', 'soft', 'HARD'), fc.nat()),
    }, { requiredKeys: [] });
    const body = fc.oneof(
      fc.constant(undefined),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.record({ on: fc.oneof(fc.jsonValue(), fc.constant('true')), reason: fc.oneof(fc.string(), fc.nat()) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
      fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })).map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 200 }),
      fc.nat({ max: 3 }).map((n) => `{"reason":"${'x'.repeat(70_000 + n)}"}`),
      fc.record({ vm: fc.oneof(fc.string(), fc.constantFrom('', 'x'.repeat(300)), fc.nat()), to: fc.oneof(fc.constantFrom('best', '-x', '..', ''), fc.string()) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
      // rules bodies: rule-like objects (valid kinds, the real VMs and hosts mixed with wrong fields) and opt-out lists
      fc.record({ rules: fc.oneof(fc.array(ruleLike, { maxLength: 3 }), fc.jsonValue()), pinnedVms: fc.oneof(fc.array(fc.oneof(fc.constantFrom(...vms), fc.nat()), { maxLength: 3 }), fc.string()) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
      // policy bodies: real policy names with random arguments, random names
      fc.record({ name: fc.oneof(fc.constantFrom('tide', 'lr-mmt', 'npa', 'thr-mmt', ''), fc.string()), args: fc.oneof(fc.dictionary(fc.constantFrom('targetUtil', 'safety', 'x', 'spareHosts'), fc.jsonValue({ maxDepth: 1 })), fc.jsonValue()) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
    );
    // Mostly tokens that pass authentication, so that most bodies reach the role check and validation.
    const auth = fc.oneof(
      { arbitrary: fc.constantFrom(`Bearer ${f.tok.operator}`, `Bearer ${f.tok.admin}`), weight: 12 },
      { arbitrary: fc.constant(`Bearer ${f.tok.viewer}`), weight: 1 },
      { arbitrary: fc.constant(undefined), weight: 1 },
      { arbitrary: fc.constantFrom(`bearer ${f.tok.admin}`, `Bearer ${f.tok.admin}x`, 'Basic YWRtaW46YWRtaW4='), weight: 1 },
      { arbitrary: printable(80).map((s) => `Bearer ${s}`), weight: 1 },
      { arbitrary: printable(60), weight: 1 },
    );
    const contentType = fc.oneof(
      { arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8'), weight: 8 },
      { arbitrary: fc.constant(undefined), weight: 1 },
      { arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'), weight: 1 },
      { arbitrary: printable(40), weight: 1 },
    );
    const method = fc.oneof({ arbitrary: fc.constant('POST'), weight: 12 }, { arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'GET'), weight: 1 });

    await fc.assert(fc.asyncProperty(method, path, body, auth, contentType, async (m, p, b, a, ct) => {
      // The one request that may change state (a valid maintenance body for a configured host) is never generated.
      if (p.endsWith('/maintenance') && hosts.some((h) => p === `/api/v1/hosts/${h}/maintenance`) && b !== undefined) {
        let v: unknown;
        try {
          v = JSON.parse(b);
        } catch {
          v = undefined;
        }
        fc.pre(!(v !== null && typeof v === 'object' && typeof (v as { on?: unknown }).on === 'boolean'));
      }
      // Nor a valid migration request (an existing VM): the generators use random names only.
      if (p === '/api/v1/migrations' && b !== undefined) fc.pre(!vms.some((v) => b.includes(`"${v}"`)));
      // Nor valid rules, nor a valid policy (either would be applied and stored).
      const json = ((): unknown => {
        try {
          return b === undefined ? undefined : JSON.parse(b);
        } catch {
          return undefined;
        }
      })();
      if (p === '/api/v1/rules') fc.pre(!rulesSectionSchema.safeParse(json).success);
      if (p === '/api/v1/policy' && json !== null && typeof json === 'object') {
        const { name, args } = json as { name?: unknown; args?: unknown };
        let valid: boolean;
        try {
          compilePolicy(name as string, (args ?? {}) as Record<string, unknown>);
          valid = typeof name === 'string' && (args === undefined || (args !== null && typeof args === 'object' && !Array.isArray(args))) && Object.keys(json).every((k) => k === 'name' || k === 'args');
        } catch {
          valid = false;
        }
        fc.pre(!valid);
      }
      const headers: Record<string, string> = {};
      if (a !== undefined) headers.authorization = a;
      if (ct !== undefined) headers['content-type'] = ct;
      const sendBody = m !== 'GET' && b !== undefined;
      const res = await f.app.request(p, { method: m, headers, ...(sendBody ? { body: b } : {}) });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const route = p.endsWith('/abort') ? 'abort' : p.endsWith('/revert') ? 'revert' : p === '/api/v1/rules' ? 'rules' : p === '/api/v1/policy' ? 'policy' : null;
      if (route) byRoute.set(`${route} ${res.status}`, (byRoute.get(`${route} ${res.status}`) ?? 0) + 1);
      const text = await res.text();
      if (res.status === 200) {
        // A GET of a plan or of the rules (reads are allowed), or a revert that found no API edit: nothing changed.
        expect(m === 'GET' || p.endsWith('/revert')).toBe(true);
      } else {
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        const e = (JSON.parse(text) as { error: { code: string; message: string } }).error;
        expect(e.code).toMatch(/^TIDE_[A-Z_]+$/);
        expect(e.message.length).toBeGreaterThan(3);
        expect(text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
      }
      expect(storeDigest(f.d.store)).toBe(digest);
    }), { numRuns: 10_000, seed: 8 });
    // Most requests got past authentication to the role check and the validators.
    expect(statuses.get(401) ?? 0).toBeLessThan(3000);
    // The generators reached every refusal: 400, 401, 403, 404, 409, 413, 415.
    for (const s of [400, 401, 403, 404, 409, 413, 415]) expect(statuses.get(s) ?? 0, `status ${s}: ${JSON.stringify([...statuses])}`).toBeGreaterThan(0);
    // The new routes were reached past authentication: abort found nothing running (409), rules and policy bodies were refused by validation (400).
    for (const k of ['abort 409', 'abort 400', 'rules 400', 'policy 400', 'revert 200']) expect(byRoute.get(k) ?? 0, `${k}: ${JSON.stringify([...byRoute])}`).toBeGreaterThan(10);
  }, 300_000);
});
