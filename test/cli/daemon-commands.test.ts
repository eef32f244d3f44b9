// The operator commands around the daemon (host maintenance, daemon --once, plans, plan show,
// approve, reject, status) in-process over a FakeDriver put under the CLI with setDriverFactory,
// sharing one store file as separate `tide` processes would.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeDriver } from '../../src/drivers/fake/index.js';
import { setDriverFactory } from '../../src/drivers/index.js';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-cli-daemon-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function config(mode: string): string {
  const dir = join(tmp, `c${n++}`);
  const file = join(dir, 'tide.json');
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify({
    hosts: [{ name: 'a', uri: 'test:///a' }, { name: 'b', uri: 'test:///b' }],
    migration: { maxConcurrent: 2, maxPerHost: 2 }, mode, intervalSec: 60,
  }));
  return file;
}

let fake: FakeDriver;
beforeEach(() => {
  fake = new FakeDriver({
    hosts: [{ name: 'a', memMiB: 16384 }, { name: 'b', memMiB: 16384 }],
    vms: [{ name: 'vm1', host: 'a', memMiB: 1024, cpuPct: 10 }, { name: 'vm2', host: 'a', memMiB: 2048, cpuPct: 10 }, { name: 'vm3', host: 'b', cpuPct: 10 }],
    migrationMiBps: 65536,
  });
  setDriverFactory(() => fake);
});
afterEach(() => setDriverFactory(null));

const jsonLines = (out: string): Record<string, unknown>[] => out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('approve workflow through the CLI', () => {
  it('maintenance on → the daemon proposes the evacuation → approve → the next round executes it → maintenance off', async () => {
    const cfg = config('approve');
    const on = await runCli(['--config', cfg, 'host', 'maintenance', 'on', 'a', '--reason', 'new DIMMs']);
    expect(on.code).toBe(0);
    expect(on.out).toMatch(/^a: maintenance on since .* new DIMMs\); the daemon's next round plans moving its VMs off/);

    const r1 = await runCli(['--config', cfg, 'daemon', '--once']);
    expect(r1.code).toBe(0);
    const logs = jsonLines(r1.out);
    expect(logs.every((l) => typeof l.level === 'number' && typeof l.time === 'number' && typeof l.msg === 'string')).toBe(true);
    const round = logs.find((l) => l.event === 'round')!;
    expect(round.mode).toBe('approve');
    const id = round.planId as number;
    expect(id).toBeGreaterThan(0);
    expect(logs.filter((l) => l.event === 'plan').map((l) => [l.vm, l.from, l.to])).toEqual(expect.arrayContaining([['vm1', 'a', 'b'], ['vm2', 'a', 'b']]));
    expect(fake.vm('vm1')!.host).toBe('a');

    const plans = await runCli(['--config', cfg, 'plans', '--json']);
    expect(JSON.parse(plans.out)).toMatchObject([{ id, status: 'proposed', mode: 'approve' }]);
    const show = await runCli(['--config', cfg, 'plan', 'show', String(id)]);
    expect(show.code).toBe(0);
    expect(show.out).toMatch(new RegExp(`^plan ${id}: proposed`));
    expect(show.out).toMatch(/migrate vm\d a → b .*\[pending\]/);
    expect(show.out).toMatch(/why: /);

    const st = await runCli(['--config', cfg, 'status', '--json']);
    const status = JSON.parse(st.out) as { mode: string; pendingApproval: { id: number }[]; maintenance: { host: string }[]; lock: unknown; daemon: { state: string; lastRound: { result: string } } };
    expect(status.mode).toBe('approve');
    expect(status.pendingApproval.map((p) => p.id)).toEqual([id]);
    expect(status.maintenance.map((h) => h.host)).toEqual(['a']);
    expect(status.lock).toBeNull();
    expect(status.daemon.state).toBe('stopped');
    expect(status.daemon.lastRound.result).toBe('ok');
    const text = await runCli(['--config', cfg, 'status']);
    expect(text.out).toMatch(/^mode: +approve, every 60 s$/m);
    expect(text.out).toMatch(new RegExp(`^pending approval: plan ${id} \\(2 migrations`, 'm'));
    expect(text.out).toMatch(/^frozen: +not frozen$/m);
    expect(text.out).toMatch(/^cluster lock: free$/m);

    const ok = await runCli(['--config', cfg, 'approve', String(id)]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(new RegExp(`^plan ${id} approved \\(approved by .+@.+\\)`));
    expect((await runCli(['--config', cfg, 'approve', String(id)])).code).toBe(0);

    const r2 = await runCli(['--config', cfg, 'daemon', '--once']);
    expect(r2.code).toBe(0);
    expect(fake.vm('vm1')!.host).toBe('b');
    expect(fake.vm('vm2')!.host).toBe('b');
    const after = await runCli(['--config', cfg, 'plan', 'show', String(id), '--json']);
    const d = JSON.parse(after.out) as { status: string; stepDetails: { kind: string; state: string; error: { code: string } | null }[] };
    expect(d.stepDetails.filter((s) => s.kind === 'migrate').map((s) => s.state)).toEqual(['succeeded', 'succeeded']);
    expect(jsonLines(r2.out).filter((l) => l.event === 'step-end').map((l) => l.state)).toEqual(['succeeded', 'succeeded']);
    // The emptied host has no power method here (power.kind none): its power-off step, if the
    // planner made one, is refused fail-closed, never executed.
    for (const s of d.stepDetails.filter((x) => x.kind === 'powerOff')) expect(s.error?.code).toBe('TIDE_POWER_REFUSED');
    expect(d.status).toBe(d.stepDetails.some((s) => s.kind === 'powerOff') ? 'failed' : 'done');

    const off = await runCli(['--config', cfg, 'host', 'maintenance', 'off', 'a', '--json']);
    expect(JSON.parse(off.out)).toMatchObject({ host: 'a', maintenance: false });
    expect(JSON.parse((await runCli(['--config', cfg, 'status', '--json'])).out).maintenance).toEqual([]);
  });

  it('reject: a rejected plan is never executed, cannot be approved; unknown ids and bad arguments are refused', async () => {
    const cfg = config('approve');
    await runCli(['--config', cfg, 'host', 'maintenance', 'on', 'a']);
    const r1 = await runCli(['--config', cfg, 'daemon', '--once']);
    const id = jsonLines(r1.out).find((l) => l.event === 'round')!.planId as number;
    const rej = await runCli(['--config', cfg, 'reject', String(id), '--reason', 'not now']);
    expect(rej.code).toBe(0);
    expect(rej.out).toMatch(/rejected \(rejected by .*: not now\)/);
    const ap = await runCli(['--config', cfg, 'approve', String(id)]);
    expect(ap.code).toBe(1);
    expect(ap.err).toMatch(/is rejected .*not proposed.*\[TIDE_PLAN_STATE\]/);
    await runCli(['--config', cfg, 'daemon', '--once']);
    expect(fake.vm('vm1')!.host).toBe('a');
    expect(JSON.parse((await runCli(['--config', cfg, 'plans', '--status', 'rejected', '--json'])).out)).toMatchObject([{ id, status: 'rejected' }]);
    const none = await runCli(['--config', cfg, 'approve', '999']);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no plan with id 999.*\[TIDE_NO_SUCH_PLAN\]/);
    expect((await runCli(['--config', cfg, 'approve', 'x1'])).code).toBe(2);
    expect((await runCli(['--config', cfg, 'plans', '--status', 'bogus'])).code).toBe(2);
    const nohost = await runCli(['--config', cfg, 'host', 'maintenance', 'on', 'zz']);
    expect(nohost.code).toBe(1);
    expect(nohost.err).toMatch(/no host named 'zz'.*\[TIDE_NO_SUCH_HOST\]/);
    expect((await runCli(['--config', cfg, 'host', 'maintenance', 'maybe', 'a'])).code).toBe(2);
  });

  it('recommend mode: plans are stored and shown; approve is refused', async () => {
    const cfg = config('recommend');
    await runCli(['--config', cfg, 'host', 'maintenance', 'on', 'a']);
    const r1 = await runCli(['--config', cfg, 'daemon', '--once']);
    const id = jsonLines(r1.out).find((l) => l.event === 'round')!.planId as number;
    const ap = await runCli(['--config', cfg, 'approve', String(id)]);
    expect(ap.code).toBe(1);
    expect(ap.err).toMatch(/recommend mode.*\[TIDE_PLAN_STATE\]/);
    await runCli(['--config', cfg, 'daemon', '--once']);
    expect(fake.vm('vm1')!.host).toBe('a');
  });

  it('daemon --log-format text: readable lines, not JSON', async () => {
    const cfg = config('recommend');
    const r = await runCli(['--config', cfg, 'daemon', '--once', '--log-format', 'text']);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines.length).toBeGreaterThan(2);
    for (const l of lines) expect(l).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|WARN|ERROR|DEBUG) /);
    expect(r.out).toMatch(/INFO {2}round 1: /);
  });

  it('status without a daemon: the configured mode and the schedule window in force now, until when', async () => {
    const dir = join(tmp, `c${n++}`);
    mkdirSync(dir, { recursive: true });
    const cfg = join(dir, 'tide.json');
    writeFileSync(cfg, JSON.stringify({
      hosts: [{ name: 'a', uri: 'test:///a' }], mode: 'approve', intervalSec: 120,
      schedule: { otherwise: 'balance', windows: [{ name: 'night', kind: 'consolidate', days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '18:00', to: '07:00' }] },
    }));
    const r = await runCli(['--config', cfg, 'status']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^daemon: +never ran on this store$/m);
    expect(r.out).toMatch(/^mode: +approve, every 120 s$/m);
    const night = new Date().getUTCHours() >= 18 || new Date().getUTCHours() < 7;
    expect(r.out).toMatch(night ? /^window: +consolidate \(night\) until \d{4}-\d\d-\d\d 07:00:00Z$/m : /^window: +balance \(otherwise\) until \d{4}-\d\d-\d\d 18:00:00Z$/m);
    expect(r.out).toMatch(/^last round: none$/m);
    const j = JSON.parse((await runCli(['--config', cfg, 'status', '--json'])).out) as { window: { kind: string; untilMs: number }; daemon: unknown };
    expect(j.daemon).toBeNull();
    expect(j.window.kind).toBe(night ? 'consolidate' : 'balance');
    expect(j.window.untilMs).toBeGreaterThan(Date.now());
    expect(j.window.untilMs).toBeLessThanOrEqual(Date.now() + 86400_000);
  });

  it('maintenance on --show-plan prints how the VMs would move', async () => {
    const cfg = config('approve');
    const r = await runCli(['--config', cfg, 'host', 'maintenance', 'on', 'a', '--show-plan', '--interval-ms', '0']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^a: 2 VM\(s\) to move/m);
    expect(r.out).toMatch(/move vm1 → b/);
  });
});
