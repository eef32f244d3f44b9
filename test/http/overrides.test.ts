/**
 * Policy and rules edited through the API are kept in the store (config_overrides) and survive
 * a restart (the same store, a new daemon: createDaemon twice); they win over the configuration
 * file's section while that section is unchanged, the file wins once it changed, a revert goes
 * back to the file's; GET shows where the section in force comes from (file or api, when, by
 * which token). Rules are validated with the configuration's schema and take effect at the next
 * round.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeStatus } from '../../src/cli/commands/status.js';
import { statusReport } from '../../src/daemon/ops.js';
import { createHttpApp } from '../../src/http/app.js';
import { EventBus } from '../../src/http/events.js';
import { effectiveConfig, withEffectiveSections } from '../../src/http/overrides.js';
import { createToken } from '../../src/http/tokens.js';
import { openSqliteStore } from '../../src/store/store.js';
import { apiDaemon, apiFixture, configFor, storeDigest } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type RulesView = { rules: { id: string; kind: string }[]; pinnedVms: string[]; source: string; setBy: string | null; setMs: number | null; ignored?: { reason: string }; file: { rules: unknown[]; pinnedVms: string[] } };

describe('rules through the API', () => {
  it('GET shows the file\'s rules (source file); an admin replaces them: validated, stored, in force at the next round; revert goes back to the file\'s', async () => {
    const f = await apiFixture();
    const r0 = (await (await f.req('viewer', 'GET', '/api/v1/rules')).json()) as RulesView;
    expect(r0).toMatchObject({ source: 'file', setBy: null, pinnedVms: [] });
    expect(r0.rules.length).toBe(f.config.rules.length);
    const vm = f.tick.snapshot.vms.find((v) => v.migratable)!.id;
    const host = f.config.hosts[1]!.name;
    const before = storeDigest(f.d.store);
    // Refused (400, nothing stored, the daemon unchanged): the configuration's schema and the configured hosts.
    const bad: [unknown, RegExp][] = [
      [{ rules: [{ kind: 'near', id: 'x', vms: ['a', 'b'] }], pinnedVms: [] }, /body\.rules\.0\.kind/],
      [{ rules: [{ kind: 'affinity', id: 'x', vms: ['a'] }], pinnedVms: [] }, /body\.rules\.0\.vms/],
      [{ rules: [{ kind: 'pin', id: 'p', vm: vm, hosts: ['no-such-host'] }], pinnedVms: [] }, /body\.rules\.0\.hosts: 'no-such-host' is not a configured host/],
      [{ rules: [{ kind: 'pin', id: 'p', vm: vm, hosts: [host] }, { kind: 'pin', id: 'p', vm: 'dns', hosts: [host] }], pinnedVms: [] }, /used twice/],
      [{ rules: [] }, /body\.pinnedVms/],
      [{ rules: [], pinnedVms: [], extra: 1 }, /extra/],
    ];
    for (const [body, msg] of bad) {
      const res = await f.req('admin', 'POST', '/api/v1/rules', body);
      const e = ((await res.json()) as { error: { code: string; message: string } }).error;
      expect({ status: res.status, code: e.code }).toEqual({ status: 400, code: 'TIDE_BAD_REQUEST' });
      expect(e.message).toMatch(msg);
    }
    expect(storeDigest(f.d.store)).toBe(before);
    expect((await f.req('operator', 'POST', '/api/v1/rules', { rules: [], pinnedVms: [vm] })).status).toBe(403);

    const rules = [{ kind: 'pin', id: 'home', vm, hosts: [host], strength: 'hard' }];
    const ok = await f.req('admin', 'POST', '/api/v1/rules', { rules, pinnedVms: ['dns'] });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ source: 'api', setBy: 'api:a#3', rules, pinnedVms: ['dns'] });
    expect(f.d.daemon.settings.rules).toEqual(rules);
    expect(f.d.daemon.settings.pinnedVms).toEqual(['dns']);
    const r1 = (await (await f.req('viewer', 'GET', '/api/v1/rules')).json()) as RulesView;
    expect(r1).toMatchObject({ source: 'api', setBy: 'api:a#3', rules, pinnedVms: ['dns'] });
    expect(r1.file.rules.length).toBe(f.config.rules.length);
    // The next round plans with them: dns is not migratable, the pin rule is in the snapshot.
    const round = await f.d.round();
    expect(round.tick!.snapshot.rules).toEqual(rules);
    expect(round.tick!.snapshot.vms.find((v) => v.id === 'dns')!.migratable).toBe(false);

    const rev = await f.req('admin', 'POST', '/api/v1/rules/revert');
    expect(rev.status).toBe(200);
    expect(await rev.json()).toMatchObject({ reverted: true, source: 'file', pinnedVms: [] });
    expect(f.d.daemon.settings.rules).toEqual(f.config.rules);
    expect(f.d.daemon.settings.pinnedVms).toEqual([]);
    expect(await (await f.req('admin', 'POST', '/api/v1/rules/revert')).json()).toMatchObject({ reverted: false, source: 'file' });
    const none = await apiFixture({ applyConfig: undefined });
    const d0 = storeDigest(none.d.store);
    expect((await none.req('admin', 'POST', '/api/v1/rules', { rules: [], pinnedVms: [] })).status).toBe(501);
    expect(storeDigest(none.d.store)).toBe(d0);
  });
});

describe('policy and rules across a daemon restart', () => {
  it('applied through the API, kept in the store: a new daemon on the same store starts with them; GET shows source api, when and by whom; a changed file wins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-overrides-'));
    dirs.push(dir);
    const path = join(dir, 'tide.sqlite');
    const f = await apiFixture({}, { store: openSqliteStore(path) });
    const at = f.d.clock.now();
    expect((await f.req('admin', 'POST', '/api/v1/policy', { name: 'lr-mmt', args: {} })).status).toBe(200);
    expect((await f.req('admin', 'POST', '/api/v1/rules', { rules: [], pinnedVms: ['dns'] })).status).toBe(200);
    expect(f.d.daemon.settings.policy.label).toMatch(/^lr-mmt/);
    f.d.store.close();

    // Restart: the same file configuration, the same store, a new daemon and API.
    const store = openSqliteStore(path);
    const bus = new EventBus();
    const { d, config } = apiDaemon(bus, { store });
    expect(d.daemon.settings.policy.label).toMatch(/^lr-mmt/);
    expect(d.daemon.settings.pinnedVms).toEqual(['dns']);
    expect(d.daemon.settings.rules).toEqual([]);
    const r = await d.round();
    expect(r.result).toBe('ok');
    expect(r.tick!.plan.policy).toMatch(/^lr\(.*\)\/mmt/);
    const admin = createToken(store, { role: 'viewer', name: 'after-restart', by: 'test' }).token;
    const app = createHttpApp({ store, config, bus, nowMs: () => d.clock.now(), applyConfig: (e) => d.daemon.reload(withEffectiveSections(d.daemon.settings, e)) });
    const get = async (path_: string): Promise<unknown> => (await app.request(path_, { headers: { authorization: `Bearer ${admin}` } })).json();
    expect(await get('/api/v1/policy')).toMatchObject({ name: 'lr-mmt', args: {}, source: 'api', setBy: 'api:a#3', setMs: at, file: { name: 'tide', args: {} } });
    expect(await get('/api/v1/rules')).toMatchObject({ source: 'api', setBy: 'api:a#3', pinnedVms: ['dns'], rules: [] });
    // tide status says where the policy in force comes from.
    const st = statusReport(store, config, d.clock.now());
    expect(st.policy).toMatchObject({ name: 'lr-mmt', source: 'api', setBy: 'api:a#3', setMs: at });
    expect(st.rules).toMatchObject({ source: 'api', setBy: 'api:a#3' });
    expect(describeStatus(st)).toMatch(/^policy: {3}lr-mmt — set through the API by api:a#3 at /m);
    expect(describeStatus(statusReport(openSqliteStore(':memory:'), config))).toMatch(/^policy: {3}tide — from the configuration file$/m);

    // The configuration file's policy changed since the edit: the file wins, the stored edit is shown as ignored.
    const edited = { ...config, policy: { name: 'thr-mmt', args: {} } };
    const e = effectiveConfig(edited, store);
    expect(e.config.policy.name).toBe('thr-mmt');
    expect(e.policy).toMatchObject({ source: 'file', ignored: { setBy: 'api:a#3', reason: expect.stringMatching(/file's policy changed/) } });
    // …while the rules edit still holds (the file's rules are as they were).
    expect(e.rules.source).toBe('api');
    const app2 = createHttpApp({ store, config: edited, bus });
    expect(await (await app2.request('/api/v1/policy', { headers: { authorization: `Bearer ${admin}` } })).json()).toMatchObject({ name: 'thr-mmt', source: 'file', ignored: { setBy: 'api:a#3' } });
    // Key order in the file does not matter.
    const reordered = { ...config, rules: config.rules.map((x) => Object.fromEntries(Object.entries(x).reverse()) as typeof x) };
    expect(effectiveConfig(reordered, store).rules.source).toBe('api');
    store.close();
  });

  it('a daemon without API edits runs the file\'s sections (source file)', () => {
    const store = openSqliteStore(':memory:');
    const { d, config } = apiDaemon(new EventBus(), { store });
    expect(d.daemon.settings.policy.label).toMatch(/^tide/);
    expect(effectiveConfig(config, store)).toMatchObject({ policy: { source: 'file', setBy: null }, rules: { source: 'file' } });
    expect(configFor(d).rules).toEqual(config.rules);
  });
});
