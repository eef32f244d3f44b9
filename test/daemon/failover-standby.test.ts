/**
 * Leader election in one process (the failover test runs real processes): a daemon started
 * with standby on while another holder leads waits as a standby — role 'standby', no status row
 * written, its HTTP API answers reads and refuses changes with 503 TIDE_NOT_LEADER naming the
 * leader; a stop while waiting ends run() as 'stopped'; once the leader releases, it leads.
 * And the executor's fence: a step whose fence check throws TIDE_FENCED ends 'cancelled'
 * without calling the driver; Store.fence / setFence refuse a superseded lease.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/core/plan/types.js';
import { DriverError } from '../../src/drivers/errors.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { runPlan } from '../../src/executor/executor.js';
import { createHttpApp } from '../../src/http/app.js';
import { createToken } from '../../src/http/tokens.js';
import { officeScenario } from '../../src/sim/office.js';
import { checkFence, withClusterLock } from '../../src/store/lock.js';
import { openSqliteStore, type LockHolder } from '../../src/store/store.js';
import { simDaemon } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-standby-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const holder = (command: string): LockHolder => ({ pid: process.pid, host: hostname(), command, startedMs: Date.now() });

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('standby', () => {
  it('waits while another leads: reads served, changes 503 TIDE_NOT_LEADER naming the leader, no status row; leads once the lock is free', async () => {
    const file = join(tmp, 'a.sqlite');
    const leaderStore = openSqliteStore(file);
    const standbyStore = openSqliteStore(file);
    let release!: () => void;
    const held = withClusterLock(leaderStore, holder('tide daemon A'), () => new Promise<void>((r) => { release = r; }), { ttlMs: 400 });
    /** What the daemon says of itself during its round (as leader). */
    const seen: { role: string; notLeader: string | undefined; token: string | undefined }[] = [];
    const d = simDaemon('recommend', { store: standbyStore, deps: {
      standby: true, lockTtlMs: 400, lockHolder: holder('tide daemon B'),
      observer: { onRound: () => seen.push({ role: d.daemon.role().role, notLeader: d.daemon.notLeader(), token: standbyStore.clusterLock()?.token }) },
    } });
    const running = d.daemon.run(undefined, undefined, { maxRounds: 1 });
    await until('the standby role', () => d.daemon.role().role === 'standby');
    expect(d.daemon.notLeader()).toMatch(/this controller \(tide daemon B .*\) is a standby; the cluster is led by tide daemon A \(pid \d+ on .*\) since .*: send changes to the leader/);
    expect(d.lines.some((l) => (JSON.parse(l) as { event?: string }).event === 'standby')).toBe(true);
    expect(standbyStore.daemonStatus()).toBeUndefined();

    const { token } = createToken(standbyStore, { role: 'admin', by: 'test' });
    const app = createHttpApp({ store: standbyStore, config: { hosts: [{ name: 'a' }], rules: [], vms: {}, policy: { name: 'tide', args: {} } } as never, notLeader: () => d.daemon.notLeader() });
    const auth = { authorization: `Bearer ${token}` };
    const get = await app.request('/api/v1/status', { headers: auth });
    expect(get.status).toBe(200);
    expect(((await get.json()) as { leader: { holderText: string } }).leader.holderText).toMatch(/^tide daemon A/);
    const post = await app.request('/api/v1/plans/1/approve', { method: 'POST', headers: auth });
    expect(post.status).toBe(503);
    expect(((await post.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'TIDE_NOT_LEADER', message: expect.stringMatching(/led by tide daemon A/) });

    // The leader goes: the standby leads (and runs its one round on virtual time).
    release();
    await held;
    // The standby retries on real time; once it leads, its round runs on the virtual clock.
    await until('the leader log line', () => d.lines.some((l) => l.includes('"event":"leader"')));
    const exit = await d.clock.drive(running);
    expect(exit).toMatchObject({ reason: 'until', rounds: 1 });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ role: 'leader', notLeader: undefined });
    expect(seen[0]!.token).toBe(JSON.parse(d.lines.find((l) => l.includes('"event":"leader"'))!).token);
    expect(standbyStore.daemonStatus()?.state).toBe('stopped');
    leaderStore.close();
    standbyStore.close();
  });

  it('a stop while waiting ends run() as stopped, no round run', async () => {
    const file = join(tmp, 'b.sqlite');
    const leaderStore = openSqliteStore(file);
    let release!: () => void;
    const held = withClusterLock(leaderStore, holder('tide daemon A'), () => new Promise<void>((r) => { release = r; }), { ttlMs: 400 });
    const d = simDaemon('recommend', { store: openSqliteStore(file), deps: { standby: true, lockTtlMs: 400 } });
    const running = d.daemon.run();
    await until('the standby role', () => d.daemon.role().role === 'standby');
    d.daemon.stop();
    expect(await running).toEqual({ reason: 'stopped', rounds: 0 });
    release();
    await held;
    leaderStore.close();
    d.store.close();
  });
});

describe('fencing', () => {
  it('a step whose fence check throws TIDE_FENCED ends cancelled and the driver is never asked to migrate', async () => {
    const clock = new VirtualClock(0);
    const driver = new SimDriver(officeScenario({ hosts: 4, days: 1 }), clock, { placement: { mail: 'srv-1' } });
    let migrations = 0;
    const migrate = driver.migrate.bind(driver);
    driver.migrate = (...a) => {
      migrations++;
      return migrate(...a);
    };
    const plan: Plan = { policy: 'test', time: 0, hosts: [], notMoved: [], steps: [{ id: 1, kind: 'migrate', vm: 'mail', from: 'srv-1', to: 'srv-2', memMiB: 0, deps: [], reason: 'test', by: 'test' }] };
    const fences: string[] = [];
    const run = await clock.drive(runPlan(plan, {
      hypervisor: driver, power: driver, clock, limits: { maxConcurrent: 1, maxPerHost: 1 }, migrate: { mode: 'live' },
      fence: (what) => {
        fences.push(what);
        throw new DriverError('TIDE_FENCED', 'fenced: the lease was taken over');
      },
    }));
    expect(fences).toEqual(['migrating mail from srv-1 to srv-2']);
    expect(migrations).toBe(0);
    expect(run.steps[0]).toMatchObject({ state: 'cancelled', error: { code: 'TIDE_FENCED' } });
  });

  it('checkFence: passes while the lease is renewed; refuses once the last renewal is older than the TTL (a paused process), and a lease taken over', async () => {
    const file = join(tmp, 'd.sqlite');
    const a = openSqliteStore(file);
    const b = openSqliteStore(file);
    expect(() => checkFence(a)).toThrow(/does not hold the cluster lock/);
    // No heartbeat during fn (heartbeatMs far beyond the test): the renewal ages as in a paused process.
    await withClusterLock(a, holder('A'), async () => {
      expect(() => checkFence(a, 'migrating x')).not.toThrow();
      await new Promise((r) => setTimeout(r, 300));
      expect(() => checkFence(a, 'migrating x')).toThrow(/fenced: migrating x refused: the cluster lock was last renewed \d+ ms ago \(TTL 200 ms\)/);
    }, { ttlMs: 200, heartbeatMs: 60_000 });
    await withClusterLock(a, holder('A'), async () => {
      b.acquireClusterLock(holder('B'), 60_000, { nowMs: Date.now() + 61_000 });
      expect(() => checkFence(a, 'powering off h1')).toThrow(expect.objectContaining({ code: 'TIDE_FENCED', message: expect.stringMatching(/no longer the cluster lock \(now held by B/) }));
    }, { ttlMs: 60_000, heartbeatMs: 60_000 });
    a.close();
    b.close();
  });

  it('Store.fence and setFence refuse a lease taken over; the current lease passes', () => {
    const file = join(tmp, 'c.sqlite');
    const a = openSqliteStore(file);
    const b = openSqliteStore(file);
    const old = a.acquireClusterLock(holder('A'), 1000, { nowMs: Date.now() - 5000 });
    a.setFence(old);
    expect(() => a.fence(old)).toThrow(expect.objectContaining({ code: 'TIDE_FENCED' }));
    const cur = b.acquireClusterLock(holder('B'), 60_000);
    b.setFence(cur);
    expect(() => b.fence(cur)).not.toThrow();
    expect(() => a.recordRoundError({ atMs: 1, code: 'X', message: 'late write' })).toThrow(expect.objectContaining({ code: 'TIDE_FENCED' }));
    b.recordRoundError({ atMs: 2, code: 'Y', message: 'leader write' });
    expect(b.roundErrors().map((e) => e.code)).toEqual(['Y']);
    a.setFence(undefined);
    a.recordRoundError({ atMs: 3, code: 'Z', message: 'unfenced' });
    a.close();
    b.close();
  });
});
