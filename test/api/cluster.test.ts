// The cluster API over the FakeDriver: configuration defaults, probe resolution, migration
// reports (with an in-process probe against a loopback TCP server), evacuation planning and
// its concurrency limits.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../src/api/cluster.js';
import { parseConfig } from '../../src/config/load.js';
import type { TideConfigInput } from '../../src/config/schema.js';
import { DriverError } from '../../src/drivers/errors.js';
import { FakeDriver, ManualClock, type FakeDriverOptions } from '../../src/drivers/fake/index.js';
import { openSqliteStore } from '../../src/store/store.js';

let server: Server;
let port = 0;
beforeAll(async () => {
  server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function cluster(fake: FakeDriverOptions, cfg: Partial<TideConfigInput> = {}): { c: Cluster; d: FakeDriver } {
  const d = new FakeDriver(fake);
  const config = parseConfig({ hosts: fake.hosts.map((h) => ({ name: h.name, uri: `test:///${h.name}` })), ...cfg });
  return { c: Cluster.open(config, { driver: d, store: openSqliteStore(':memory:') }), d };
}

const three = (): FakeDriverOptions => ({
  hosts: [{ name: 'a', memMiB: 8192 }, { name: 'b', memMiB: 8192 }, { name: 'c', memMiB: 4096 }],
  vms: [
    { name: 'big', host: 'a', memMiB: 3072 }, { name: 'mid', host: 'a', memMiB: 2048 }, { name: 'small', host: 'a', memMiB: 512 },
    { name: 'off', host: 'a', memMiB: 1024, state: 'shutoff' }, { name: 'resident', host: 'b', memMiB: 2048 },
  ],
});

describe('Cluster.migrateOptions', () => {
  it('takes the configuration defaults and lets a call override them', () => {
    const { c } = cluster(three(), { migration: { autoConverge: false, bandwidthMiBps: 100, timeoutSec: 30 } });
    expect(c.migrateOptions()).toMatchObject({ mode: 'live', autoConverge: false, bandwidthMiBps: 100, timeoutSec: 30, copyStorage: false });
    expect(c.migrateOptions('suspend', { autoConverge: true, bandwidthMiBps: 5 })).toMatchObject({ mode: 'suspend', autoConverge: true, bandwidthMiBps: 5 });
  });
});

describe('configuration rules', () => {
  it('anti-affinity, affinity and pin rules parse with hard as the default; unknown pin hosts and duplicate ids are refused', () => {
    const hosts = [{ name: 'a', uri: 'test:///a' }, { name: 'b', uri: 'test:///b' }];
    const c = parseConfig({ hosts, rules: [{ kind: 'antiAffinity', id: 'web', vms: ['w1', 'w2'] }, { kind: 'pin', id: 'db', vm: 'd', hosts: ['a'], strength: 'soft' }] });
    expect(c.rules).toEqual([
      { kind: 'antiAffinity', id: 'web', vms: ['w1', 'w2'], strength: 'hard' },
      { kind: 'pin', id: 'db', vm: 'd', hosts: ['a'], strength: 'soft' },
    ]);
    expect(() => parseConfig({ hosts, rules: [{ kind: 'pin', id: 'db', vm: 'd', hosts: ['zz'] }] }, 'x.json')).toThrow(/x\.json: rules\[0\]\.hosts: no host named 'zz'/);
    expect(() => parseConfig({ hosts, rules: [{ kind: 'affinity', id: 'r', vms: ['p', 'q'] }, { kind: 'affinity', id: 'r', vms: ['p', 's'] }] })).toThrow(/rules\[1\]\.id: duplicate rule id 'r'/);
    expect(() => parseConfig({ hosts, rules: [{ kind: 'antiAffinity', id: 'one', vms: ['solo'] }] })).toThrow(/rules/);
  });
});

describe('Cluster.migrate', () => {
  it('reports the move; a refused one comes back with ok false, the error code and the checks', async () => {
    const { c, d } = cluster(three());
    const r = await c.migrate({ vm: 'small', to: 'b' });
    expect(r).toMatchObject({ vm: 'small', from: 'a', to: 'b', mode: 'live', ok: true, dryRun: false, probe: null, probeDowntimeMs: null });
    expect(d.vm('small')!.host).toBe('b');
    const bad = await c.migrate({ vm: 'big', to: 'nowhere' });
    expect(bad.ok).toBe(false);
    expect(bad.error?.code).toBe('TIDE_NO_SUCH_HOST');
    expect(bad.checks?.find((x) => x.check === 'target-exists')?.ok).toBe(false);
    expect(d.vm('big')!.host).toBe('a');
  });

  it('a dry run only checks', async () => {
    const { c, d } = cluster(three());
    const r = await c.migrate({ vm: 'big', to: 'c', dryRun: true });
    expect(r).toMatchObject({ ok: true, dryRun: true, from: 'a' });
    expect(r.checks).toHaveLength(9);
    expect(d.callsOf('migrate')).toHaveLength(0);
    const tooBig = await c.migrate({ vm: 'big', to: 'c', dryRun: true, settings: {} });
    expect(tooBig.ok).toBe(true); // 3 GiB fit into c's 4 GiB
    d.addVm({ name: 'hog', host: 'c', memMiB: 2048 });
    const refused = await c.migrate({ vm: 'big', to: 'c', dryRun: true });
    expect(refused.ok).toBe(false);
    expect(refused.checks?.find((x) => x.check === 'memory')).toMatchObject({ ok: false, code: 'TIDE_PREFLIGHT_FAILED' });
  });

  it('--probe auto uses the configured probe and reports what it saw next to libvirt’s downtime', async () => {
    const clock = new ManualClock();
    const { c } = cluster({ ...three(), clock, migrationMiBps: 1000 }, { vms: { small: { probe: `tcp://127.0.0.1:${port}` } } });
    const p = c.migrate({ vm: 'small', to: 'b', probe: 'auto' });
    // the fake migration waits on the manual clock: release it once the probe is answering
    while (clock.pending === 0) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    await clock.advance(5000);
    const r = await p;
    expect(r.ok).toBe(true);
    expect(r.probe).toMatchObject({ target: `tcp://127.0.0.1:${port}`, netns: null, failed: 0 });
    expect(r.probe!.ok).toBeGreaterThan(3);
    expect(r.probeDowntimeMs).toBe(r.probe!.downtimeMs);
    expect(r.probeDowntimeMs).toBeGreaterThanOrEqual(0);
  });

  it('refuses --probe auto without a configured probe, and bad probe targets', async () => {
    const { c } = cluster(three());
    await expect(c.migrate({ vm: 'small', to: 'b', probe: 'auto' })).rejects.toThrow(/no probe for small/);
    await expect(c.migrate({ vm: 'small', to: 'b', probe: 'udp://1.2.3.4:5' })).rejects.toBeInstanceOf(DriverError);
  });
});

describe('Cluster.evacuate', () => {
  it('plans largest first onto the host with the most room left; skips pinned and stopped VMs', async () => {
    const { c } = cluster(three(), { vms: { mid: { pinned: true } } });
    const { moves, skipped } = await c.planEvacuation({ host: 'a', intervalMs: 0 });
    expect(moves.map((m) => [m.vm, m.to])).toEqual([['big', 'b'], ['small', 'c']]);
    expect(skipped).toEqual([{ vm: 'mid', reason: 'pinned (vms.mid.pinned)' }]);
    const all = await c.planEvacuation({ host: 'a', includeStopped: true, includePinned: true, intervalMs: 0 });
    expect(all.moves.find((m) => m.vm === 'off')).toMatchObject({ mode: 'offline' });
    expect(all.moves).toHaveLength(4);
  });

  it('respects the targets given and the maintenance flags', async () => {
    const { c } = cluster(three(), { hosts: [{ name: 'a', uri: 'test:///a' }, { name: 'b', uri: 'test:///b', maintenance: true }, { name: 'c', uri: 'test:///c' }] });
    const { moves, skipped } = await c.planEvacuation({ host: 'a', intervalMs: 0 });
    expect(new Set(moves.map((m) => m.to))).toEqual(new Set(['c']));
    expect(skipped.map((s) => s.vm)).toContain('mid'); // c has no room left for it
    await expect(c.planEvacuation({ host: 'a', to: ['zz'], intervalMs: 0 })).rejects.toMatchObject({ code: 'TIDE_NO_SUCH_HOST' });
    await expect(c.planEvacuation({ host: 'zz', intervalMs: 0 })).rejects.toMatchObject({ code: 'TIDE_NO_SUCH_HOST' });
  });

  it('empties the host within the concurrency and per-host limits', async () => {
    const clock = new ManualClock();
    const opts: FakeDriverOptions = {
      hosts: [{ name: 'a', memMiB: 65536 }, { name: 'b', memMiB: 65536 }, { name: 'c', memMiB: 65536 }, { name: 'd', memMiB: 65536 }],
      vms: Array.from({ length: 6 }, (_, i) => ({ name: `v${i}`, host: 'a', memMiB: 1024 })),
      clock, migrationMiBps: 512,
    };
    const { c, d } = cluster(opts, { migration: { maxConcurrent: 2, maxPerHost: 2 } });
    const p = c.evacuate({ host: 'a', intervalMs: 0 });
    while (!(await Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5))]))) await clock.advance(500);
    const r = await p;
    expect(r.moved).toHaveLength(6);
    expect(r.failed).toHaveLength(0);
    expect(r.remaining).toEqual([]);
    expect(d.maxConcurrent).toBe(2);
    expect(Math.max(...d.maxPerHost.values())).toBeLessThanOrEqual(2);
    expect(d.maxPerHost.get('a')).toBe(2);
  });

  it('goes on after a failed move and reports what is left', async () => {
    const { c, d } = cluster(three());
    d.inject({ method: 'migrate', vm: 'mid', code: 'TIDE_MIGRATION_FAILED' });
    const r = await c.evacuate({ host: 'a', concurrency: 1, intervalMs: 0 });
    expect(r.moved.map((m) => m.vm).sort()).toEqual(['big', 'small']);
    expect(r.failed).toEqual([expect.objectContaining({ vm: 'mid', ok: false, error: expect.objectContaining({ code: 'TIDE_MIGRATION_FAILED' }) })]);
    expect(r.remaining).toEqual(['mid']);
  });
});

describe('Cluster.evacuate: a plan from the core planner, run by the executor', () => {
  it('a target with free memory but no CPU headroom is not chosen, and the plan says why', async () => {
    const { c, d } = cluster({
      hosts: [{ name: 'a' }, { name: 'b', memMiB: 65536 }, { name: 'c', memMiB: 8192 }],
      vms: [
        { name: 'x', host: 'a', memMiB: 2048, cpuPct: 50 },
        // b has the most free memory but every core busy
        { name: 'hog', host: 'b', vcpus: 8, memMiB: 4096, cpuPct: 100 },
      ],
    });
    const p = await c.planEvacuation({ host: 'a', intervalMs: 0 });
    expect(p.moves.map((m) => [m.vm, m.to])).toEqual([['x', 'c']]);
    expect(p.moves[0]!.reason).toMatch(/a is being evacuated/);
    expect(p.moves[0]!.reason).toMatch(/best target c fits: CPU \d+ % and memory \d+ % after .*; not b \(cpu: insufficient-cpu\)$/);
    const r = await c.evacuate({ host: 'a', intervalMs: 0 });
    expect(r.moved.map((m) => [m.vm, m.to, m.ok])).toEqual([['x', 'c', true]]);
    expect(r.remaining).toEqual([]);
    expect(d.vm('x')!.host).toBe('c');
  });

  it('a VM that only fits where CPU is short stays, with every host’s verdict; the others still move', async () => {
    const { c, d } = cluster({
      hosts: [{ name: 'a', memMiB: 65536 }, { name: 'b', memMiB: 65536 }, { name: 'c', memMiB: 4096 }],
      vms: [
        { name: 'large', host: 'a', memMiB: 8192, cpuPct: 10 },
        { name: 'tiny', host: 'a', memMiB: 512, cpuPct: 10 },
        { name: 'hog', host: 'b', vcpus: 8, memMiB: 4096, cpuPct: 100 },
      ],
    });
    const r = await c.evacuate({ host: 'a', intervalMs: 0 });
    expect(r.moves.map((m) => [m.vm, m.to])).toEqual([['tiny', 'c']]);
    expect(r.notMoved).toHaveLength(1);
    const n = r.notMoved[0]!;
    expect(n).toMatchObject({ vm: 'large', code: 'no-host-fits' });
    const why = Object.fromEntries(n.hosts.map((h) => [h.host, [h.by, h.code]]));
    expect(why).toEqual({ a: ['target', 'evacuating'], b: ['cpu', 'insufficient-cpu'], c: ['memory', 'insufficient-memory'] });
    expect(n.hosts.find((h) => h.host === 'b')!.reason).toMatch(/MIPS > 90 % of 19200/);
    expect(r.skipped).toEqual([expect.objectContaining({ vm: 'large' })]);
    expect(r.remaining).toEqual(['large']);
    expect(d.vm('tiny')!.host).toBe('c');
    expect(d.callsOf('migrate')).toHaveLength(1);
  });

  it('honours a configured anti-affinity rule: two anti-affine VMs never land together', async () => {
    const rules = [{ kind: 'antiAffinity' as const, id: 'web', vms: ['w1', 'w2'] }];
    // Three hosts: without the rule both would go to b (far more room); with it one goes to c.
    const three_ = await cluster({
      hosts: [{ name: 'a' }, { name: 'b', memMiB: 65536 }, { name: 'c', memMiB: 8192 }],
      vms: [{ name: 'w1', host: 'a', memMiB: 1024 }, { name: 'w2', host: 'a', memMiB: 1024 }],
    }, { rules });
    const p3 = await three_.c.planEvacuation({ host: 'a', intervalMs: 0 });
    expect(new Set(p3.moves.map((m) => m.to))).toEqual(new Set(['b', 'c']));
    const without = cluster({
      hosts: [{ name: 'a' }, { name: 'b', memMiB: 65536 }, { name: 'c', memMiB: 8192 }],
      vms: [{ name: 'w1', host: 'a', memMiB: 1024 }, { name: 'w2', host: 'a', memMiB: 1024 }],
    });
    expect((await without.c.planEvacuation({ host: 'a', intervalMs: 0 })).moves.map((m) => m.to)).toEqual(['b', 'b']);
    // Two hosts (the lab's shape): one moves, the other stays and the rule is named.
    const { c, d } = cluster({
      hosts: [{ name: 'a' }, { name: 'b' }],
      vms: [{ name: 'w1', host: 'a', memMiB: 1024 }, { name: 'w2', host: 'a', memMiB: 1024 }],
    }, { rules });
    const r = await c.evacuate({ host: 'a', intervalMs: 0 });
    expect(r.moved.map((m) => [m.vm, m.to])).toEqual([['w1', 'b']]);
    expect(r.notMoved).toEqual([expect.objectContaining({ vm: 'w2', code: 'no-host-fits' })]);
    const onB = r.notMoved[0]!.hosts.find((h) => h.host === 'b')!;
    expect(onB).toMatchObject({ fits: false, by: 'rules', code: 'anti-affinity' });
    expect(onB.reason).toMatch(/rule web/);
    expect(r.remaining).toEqual(['w2']);
    expect(d.vm('w2')!.host).toBe('a');
  });

  it('an unreachable host is never a target and is reported with its reason; an unreachable source is refused', async () => {
    const { c, d } = cluster({
      hosts: [{ name: 'a' }, { name: 'b', memMiB: 65536 }, { name: 'c' }],
      vms: [{ name: 'x', host: 'a', memMiB: 1024 }],
    });
    d.setHostUp('b', false);
    const r = await c.evacuate({ host: 'a', intervalMs: 0 });
    expect(r.unreachable).toEqual([{ host: 'b', reason: 'b does not answer' }]);
    expect(r.moved.map((m) => m.to)).toEqual(['c']);
    expect(r.moves[0]!.reason).toMatch(/not .*b \(target: unavailable\)/);
    d.setHostUp('a', false);
    await expect(c.planEvacuation({ host: 'a', intervalMs: 0 })).rejects.toMatchObject({ code: 'TIDE_HOST_UNREACHABLE', message: /a does not answer \(a does not answer\)/ });
  });

  it('--include-stopped moves shut-off definitions offline in a second run; without it they stay unmentioned', async () => {
    const { c, d } = cluster(three());
    const r = await c.evacuate({ host: 'a', includeStopped: true, includePinned: true, intervalMs: 0 });
    expect(r.moves.map((m) => [m.vm, m.mode])).toEqual([['big', 'live'], ['mid', 'live'], ['off', 'offline'], ['small', 'live']]);
    expect(r.moved.map((m) => [m.vm, m.mode, m.ok])).toEqual([['big', 'live', true], ['mid', 'live', true], ['small', 'live', true], ['off', 'offline', true]]);
    expect(d.vm('off')).toMatchObject({ state: 'shutoff' });
    expect(d.vm('off')!.host).not.toBe('a');
    expect(r.remaining).toEqual([]);
    const offMigration = d.callsOf('migrate').find((x) => x.args[0] === 'off')!;
    expect(offMigration.args[2]).toMatchObject({ mode: 'offline' });
  });

  it('a VM that left the host after the plan is skipped by the executor with TIDE_STALE_PLAN, not migrated again', async () => {
    const { c, d } = cluster({ hosts: [{ name: 'a' }, { name: 'b' }], vms: [{ name: 'x', host: 'a' }, { name: 'y', host: 'a' }] });
    let moved = false;
    const r = await c.evacuate({
      host: 'a', intervalMs: 0, concurrency: 1,
      onEvent: (e) => {
        // between planning and running: somebody else moves y
        if (e.type === 'plan' && !moved) {
          moved = true;
          d.updateVm('y', { host: 'b' });
        }
      },
    });
    expect(r.moved.map((m) => m.vm)).toEqual(['x']);
    expect(r.failed).toEqual([expect.objectContaining({ vm: 'y', ok: false, error: expect.objectContaining({ code: 'TIDE_STALE_PLAN' }) })]);
    expect(d.callsOf('migrate').map((x) => x.args[0])).toEqual(['x']);
  });
});

describe('Cluster.place', () => {
  const opts = (): FakeDriverOptions => ({
    hosts: [{ name: 'a', memMiB: 8192 }, { name: 'b', memMiB: 16384 }, { name: 'c', memMiB: 16384 }],
    vms: [
      { name: 'cold', host: 'a', memMiB: 2048, vcpus: 2, state: 'shutoff' },
      { name: 'fill', host: 'a', memMiB: 7168 },
      { name: 'busy', host: 'c', vcpus: 8, memMiB: 2048, cpuPct: 95 },
    ],
  });

  it('picks the best host, explains every other one, and a dry run changes nothing', async () => {
    const { c, d } = cluster(opts());
    const r = await c.place({ vm: 'cold', dryRun: true, intervalMs: 0 });
    expect(r).toMatchObject({ vm: 'cold', definedOn: 'a', to: 'b', ok: true, dryRun: true });
    const why = Object.fromEntries(r.hosts.map((h) => [h.host, h.fits ? 'fits' : h.code]));
    expect(why).toEqual({ b: 'fits', a: 'insufficient-memory', c: 'insufficient-cpu' });
    expect(r.hosts[0]!.host).toBe('b');
    expect(r.reason).toMatch(/not a \(memory: insufficient-memory\), c \(cpu: insufficient-cpu\)/);
    expect(d.callsOf('start')).toHaveLength(0);
    expect(d.vm('cold')).toMatchObject({ host: 'a', state: 'shutoff' });
  });

  it('starts the VM on the chosen host through the executor (its definition moved there first)', async () => {
    const { c, d } = cluster(opts());
    const r = await c.place({ vm: 'cold', intervalMs: 0 });
    expect(r).toMatchObject({ to: 'b', ok: true, dryRun: false });
    expect(d.vm('cold')).toMatchObject({ host: 'b', state: 'running' });
  });

  it('no host fits: nothing is started, every host says why; refuses a running VM and an unknown one', async () => {
    const o = opts();
    o.vms!.push({ name: 'huge', host: 'b', memMiB: 32768, state: 'shutoff' });
    const { c, d } = cluster(o);
    const r = await c.place({ vm: 'huge', intervalMs: 0 });
    expect(r).toMatchObject({ to: null, ok: false, error: { code: 'TIDE_NO_HOST_FITS' } });
    expect(r.hosts.every((h) => !h.fits && h.code === 'insufficient-memory')).toBe(true);
    expect(d.callsOf('start')).toHaveLength(0);
    await expect(c.place({ vm: 'fill', intervalMs: 0 })).rejects.toMatchObject({ code: 'TIDE_VM_STATE' });
    await expect(c.place({ vm: 'nope', intervalMs: 0 })).rejects.toMatchObject({ code: 'TIDE_NO_SUCH_VM' });
  });
});

describe('the cluster lock', () => {
  it('a second evacuate (another process’s view of the same store) is refused with who holds it; dry runs and the first go on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-lock-'));
    try {
      const clock = new ManualClock();
      const spec: FakeDriverOptions = {
        hosts: [{ name: 'a' }, { name: 'b' }, { name: 'c' }],
        vms: [{ name: 'x', host: 'a' }, { name: 'y', host: 'c' }],
        clock, migrationMiBps: 100,
      };
      const d = new FakeDriver(spec);
      const config = parseConfig({ hosts: spec.hosts.map((h) => ({ name: h.name, uri: `test:///${h.name}` })), store: { path: join(dir, 'tide.sqlite') } });
      // Two Cluster objects, each with its own store connection, as two tide processes have.
      const first = Cluster.open(config, { driver: d, configFile: join(dir, 'tide.json') });
      const second = Cluster.open(config, { driver: d, configFile: join(dir, 'tide.json') });
      const running = first.evacuate({ host: 'a', intervalMs: 0 });
      while (clock.pending === 0) await new Promise((r) => setTimeout(r, 5)); // x is migrating
      const refused = second.evacuate({ host: 'c', intervalMs: 0 });
      await expect(refused).rejects.toMatchObject({ code: 'TIDE_LOCKED', message: expect.stringMatching(/cluster locked by tide evacuate a \(pid \d+ on /) });
      await expect(second.place({ vm: 'x', intervalMs: 0 })).rejects.toMatchObject({ code: 'TIDE_LOCKED' });
      expect((await second.evacuate({ host: 'c', intervalMs: 0, dryRun: true })).moves).toHaveLength(1); // a dry run changes nothing: no lock
      const settle = async <T>(p: Promise<T>): Promise<T> => {
        while (!(await Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5))]))) await clock.advance(500);
        return p;
      };
      expect((await settle(running)).remaining).toEqual([]);
      expect(d.vm('y')!.host).toBe('c');
      // released: now the second one may act
      const r2 = await settle(second.evacuate({ host: 'c', intervalMs: 0 }));
      expect(r2.moved.map((m) => m.vm)).toEqual(['y']);
      expect(second.store().listPlans().map((p) => [p.mode, p.status])).toEqual([['evacuate', 'done'], ['evacuate', 'done']]);
      await first.close();
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
