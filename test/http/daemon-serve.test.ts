/**
 * `tide daemon` with an `http` section, in-process over a FakeDriver: it serves the API on
 * 127.0.0.1 (port 0: the URL is logged), 401 without a token; the hosts show the daemon's round;
 * with b in maintenance, an approval through the API is executed by the running daemon at once
 * (onChange → wake; the interval is an hour): the evacuation's move runs; SIGTERM stops both.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dashboardDir } from '../../src/api/dashboard.js';
import { main } from '../../src/cli/main.js';
import type { CliIo } from '../../src/cli/io.js';
import { FakeDriver } from '../../src/drivers/fake/index.js';
import { setDriverFactory } from '../../src/drivers/index.js';
import { runCli } from '../helpers/cli.js';

afterEach(() => setDriverFactory(null));

describe('tide daemon serves the HTTP API', () => {
  it('on 127.0.0.1 from the http section; 401 without a token; approve through the API runs the plan; SIGTERM closes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-daemon-http-'));
    const file = join(dir, 'tide.json');
    writeFileSync(file, JSON.stringify({
      hosts: [{ name: 'a', uri: 'test:///a' }, { name: 'b', uri: 'test:///b' }],
      migration: { maxConcurrent: 2, maxPerHost: 2 }, mode: 'approve', intervalSec: 3600, http: { port: 0 },
    }));
    const fake = new FakeDriver({
      hosts: [{ name: 'a', memMiB: 16384 }, { name: 'b', memMiB: 16384 }],
      vms: [{ name: 'vm1', host: 'a', memMiB: 1024, cpuPct: 10 }, { name: 'vm2', host: 'a', memMiB: 2048, cpuPct: 10 }, { name: 'vm3', host: 'b', cpuPct: 10 }],
      migrationMiBps: 65536,
    });
    setDriverFactory(() => fake);
    const created = await runCli(['--config', file, 'token', 'create', '--role', 'operator']);
    expect(created.code).toBe(0);
    const token = created.out.trim();
    expect((await runCli(['--config', file, 'host', 'maintenance', 'on', 'b'])).code).toBe(0);
    let out = '';
    const io: CliIo = { out: (t) => void (out += t), err: (t) => void (out += t), isTty: false, env: process.env, cwd: process.cwd() };
    const saved = process.listeners('SIGTERM');
    process.removeAllListeners('SIGTERM');
    try {
      const run = main(['--config', file, 'daemon', '--log-format', 'json', '--poll-ms', '0'], io);
      await expect.poll(() => /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1] ?? null, { timeout: 15_000 }).not.toBeNull();
      const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)![1]!;
      const h = { authorization: `Bearer ${token}` };
      expect((await fetch(`${url}/api/v1/hosts`)).status).toBe(401);
      // The dashboard (dist/web, when built: npm run build:web) is served under / by the daemon too.
      if (dashboardDir()) expect(await (await fetch(`${url}/`)).text()).toContain('<div id="app">');
      // The first round proposes a plan (approve mode) and the hosts show what it saw.
      await expect.poll(async () => ((await (await fetch(`${url}/api/v1/plans?status=proposed`, { headers: h })).json()) as { plans: unknown[] }).plans.length, { timeout: 15_000 }).toBe(1);
      const hosts = (await (await fetch(`${url}/api/v1/hosts`, { headers: h })).json()) as { hosts: { name: string; powerState: string; source: string; maintenance: boolean }[] };
      expect(hosts.hosts.map((x) => [x.name, x.powerState, x.source, x.maintenance])).toEqual([['a', 'on', 'round', false], ['b', 'on', 'round', true]]);
      const plans = (await (await fetch(`${url}/api/v1/plans?status=proposed`, { headers: h })).json()) as { plans: { id: number }[] };
      const id = plans.plans[0]!.id;
      const ok = await fetch(`${url}/api/v1/plans/${id}/approve`, { method: 'POST', headers: h });
      expect(ok.status).toBe(200);
      // woken at once (the interval is an hour): the plan runs
      type Detail = { status: string; stepDetails: { kind: string; vm: string | null; state: string; error: { code: string } | null }[] };
      const detail = async (): Promise<Detail> => (await (await fetch(`${url}/api/v1/plans/${id}`, { headers: h })).json()) as Detail;
      await expect.poll(async () => (await detail()).status, { timeout: 15_000 }).toMatch(/^(done|failed)$/);
      // The move ran; a power-off of the emptied host, if planned at all, is refused (no power method: fail closed).
      const d = await detail();
      expect(d.stepDetails[0]).toMatchObject({ kind: 'migrate', vm: 'vm3', state: 'succeeded', error: null });
      for (const x of d.stepDetails.slice(1)) expect([x.kind, x.state, x.error?.code]).toEqual(['powerOff', 'failed', 'TIDE_POWER_REFUSED']);
      process.emit('SIGTERM');
      expect(await run).toBe(0);
      await expect(fetch(`${url}/api/v1/hosts`)).rejects.toThrow();
      expect(fake.vm('vm3')!.host).toBe('a');
    } finally {
      for (const l of saved) process.on('SIGTERM', l as () => void);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a policy and rules set through the API survive a restart of tide daemon: it starts with them (logged), GET and tide status say api, by whom', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-daemon-overrides-'));
    const file = join(dir, 'tide.json');
    writeFileSync(file, JSON.stringify({ hosts: [{ name: 'a', uri: 'test:///a' }, { name: 'b', uri: 'test:///b' }], mode: 'approve', intervalSec: 3600, http: { port: 0 } }));
    const fake = new FakeDriver({ hosts: [{ name: 'a', memMiB: 16384 }, { name: 'b', memMiB: 16384 }], vms: [{ name: 'vm1', host: 'a', cpuPct: 10 }, { name: 'vm2', host: 'b', cpuPct: 10 }] });
    setDriverFactory(() => fake);
    const created = await runCli(['--config', file, 'token', 'create', '--role', 'admin', '--name', 'ops']);
    const h = { authorization: `Bearer ${created.out.trim()}`, 'content-type': 'application/json' };
    const saved = process.listeners('SIGTERM');
    process.removeAllListeners('SIGTERM');
    const start = async (): Promise<{ url: string; log: () => string; run: Promise<number> }> => {
      let out = '';
      const io: CliIo = { out: (t) => void (out += t), err: (t) => void (out += t), isTty: false, env: process.env, cwd: process.cwd() };
      const run = main(['--config', file, 'daemon', '--log-format', 'json', '--poll-ms', '0'], io);
      await expect.poll(() => /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1] ?? null, { timeout: 15_000 }).not.toBeNull();
      return { url: /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)![1]!, log: () => out, run };
    };
    try {
      const first = await start();
      expect(await (await fetch(`${first.url}/api/v1/policy`, { headers: h })).json()).toMatchObject({ name: 'tide', source: 'file' });
      expect((await fetch(`${first.url}/api/v1/policy`, { method: 'POST', headers: h, body: JSON.stringify({ name: 'lr-mmt' }) })).status).toBe(200);
      expect((await fetch(`${first.url}/api/v1/rules`, { method: 'POST', headers: h, body: JSON.stringify({ rules: [], pinnedVms: ['vm1'] }) })).status).toBe(200);
      process.emit('SIGTERM');
      expect(await first.run).toBe(0);

      const second = await start();
      expect(second.log()).toMatch(/in force from the store \(set through the HTTP API\): policy lr-mmt \(api:ops#1\), rules \(api:ops#1\)/);
      expect(await (await fetch(`${second.url}/api/v1/policy`, { headers: h })).json()).toMatchObject({ name: 'lr-mmt', source: 'api', setBy: 'api:ops#1', file: { name: 'tide' } });
      expect(await (await fetch(`${second.url}/api/v1/rules`, { headers: h })).json()).toMatchObject({ pinnedVms: ['vm1'], source: 'api' });
      // The daemon started with the stored policy.
      expect(second.log()).toMatch(/"event":"start"[^\n]*"policy":"lr-mmt/);
      process.emit('SIGTERM');
      expect(await second.run).toBe(0);
      const status = await runCli(['--config', file, 'status']);
      expect(status.out).toMatch(/^policy: {3}lr-mmt — set through the API by api:ops#1 at /m);
      expect(status.out).toMatch(/^rules: {4}set through the API by api:ops#1 at /m);
    } finally {
      for (const l of saved) process.on('SIGTERM', l as () => void);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
