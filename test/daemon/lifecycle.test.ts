/**
 * The daemon's life on the simulated office: the loop on virtual time under the cluster lock,
 * store-kept maintenance, the status row, graceful stop (running steps finish, no new step;
 * after the grace they are aborted), reload, the onStart hook, a second daemon refused, logs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SIM_MONDAY_EPOCH_SEC } from '../../src/core/schedule.js';
import { createDaemon, freezeOf } from '../../src/daemon/daemon.js';
import { createLogger, formatTtyLine } from '../../src/daemon/log.js';
import type { MigrationResult } from '../../src/drivers/hypervisor.js';
import { openSqliteStore } from '../../src/store/store.js';
import { simDaemon, simSettings } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-daemon-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const busiest = (placement: Record<string, string>): string => {
  const n = new Map<string, number>();
  for (const h of Object.values(placement)) n.set(h, (n.get(h) ?? 0) + 1);
  return [...n].sort((a, b) => b[1] - a[1])[0]![0];
};

describe('maintenance kept in the store', () => {
  it('on: the next round evacuates the host through a plan; off: the host is usable again', async () => {
    const d = simDaemon('automatic');
    const host = busiest(d.driver.placement());
    d.store.setHostMaintenance(host, true, { atMs: 0, by: 'test', reason: 'firmware' });
    const r = await d.round();
    expect(r.tick!.snapshot.hosts.find((h) => h.id === host)!.maintenance).toBe(true);
    const moves = r.tick!.plan.steps.filter((s) => s.kind === 'migrate' && s.from === host);
    expect(moves.length).toBeGreaterThan(0);
    expect(r.tick!.run!.failed).toBe(0);
    expect(Object.values(d.driver.placement())).not.toContain(host);
    // Later rounds put nothing on it.
    for (let i = 0; i < 6; i++) {
      await d.clock.advance(300_000);
      const x = await d.round();
      expect(x.tick!.plan.steps.filter((s) => (s.kind === 'migrate' || s.kind === 'place') && s.to === host)).toEqual([]);
    }
    d.store.setHostMaintenance(host, false, { atMs: d.clock.now(), by: 'test' });
    await d.clock.advance(300_000);
    const back = await d.round();
    expect(back.tick!.snapshot.hosts.find((h) => h.id === host)!.maintenance).toBe(false);
    expect(back.tick!.plan.hosts.find((h) => h.host === host)?.class).not.toBe('maintenance');
  });

  it('approve mode: the evacuation is proposed, not executed, until approved', async () => {
    const d = simDaemon('approve');
    const host = busiest(d.driver.placement());
    d.store.setHostMaintenance(host, true, { atMs: 0, by: 'test' });
    const r = await d.round();
    const p = d.store.getPlan(r.planId!)!;
    expect(p.status).toBe('proposed');
    expect(p.plan.steps.some((s) => s.kind === 'migrate' && s.from === host)).toBe(true);
    expect(Object.values(d.driver.placement())).toContain(host);
    d.store.transitionPlan(p.id, ['proposed'], 'approved');
    await d.clock.advance(300_000);
    await d.round();
    expect(Object.values(d.driver.placement())).not.toContain(host);
  });
});

describe('the loop', () => {
  it('runs rounds every intervalSec on virtual time under the cluster lock, writes its status row, releases the lock', async () => {
    const store = openSqliteStore(join(tmp, 'loop.sqlite'));
    const locks: (string | undefined)[] = [];
    const d = simDaemon('automatic', {
      store,
      settings: {
        schedule: { windows: [{ name: 'night', kind: 'consolidate', days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '18:00', to: '07:00', timeZone: 'UTC' }] },
        scheduleOffsetSec: SIM_MONDAY_EPOCH_SEC,
      },
      deps: { observer: { onRound: () => locks.push(store.clusterLock()?.holder.command) } },
    });
    const exit = await d.clock.drive(d.daemon.run(2 * 3600_000));
    expect(exit).toEqual({ reason: 'until', rounds: 24 });
    expect(locks.every((c) => c === 'tide daemon')).toBe(true);
    expect(store.clusterLock()).toBeUndefined();
    const st = store.daemonStatus()!;
    expect(st).toMatchObject({ state: 'stopped', mode: 'automatic', intervalSec: 300, frozen: { frozen: false, reason: null } });
    expect(st.lastRound).toMatchObject({ result: 'ok', startedMs: 23 * 300_000 });
    expect(st.window).toEqual({ kind: 'consolidate', name: 'night', untilMs: 7 * 3600_000 });
    // JSON lines, one per event, each parses.
    const events = d.lines.map((l) => JSON.parse(l) as { event?: string; msg: string });
    expect(events.filter((e) => e.event === 'round')).toHaveLength(24);
    expect(events.some((e) => e.event === 'step-start' && / — /.test(e.msg))).toBe(true);
    expect(events.some((e) => e.event === 'power')).toBe(true);
    store.close();
  });

  it('a second daemon on the same store is refused with TIDE_LOCKED naming the holder', async () => {
    const path = join(tmp, 'two.sqlite');
    const b = simDaemon('recommend', { store: openSqliteStore(path), deps: { lockHolder: { pid: process.pid, host: 'x', command: 'tide daemon #2', startedMs: 0 } } });
    let refused: unknown;
    let rowAfterRefusal: unknown = 'unset';
    // The second one starts while the first holds the lock (from inside the first one's onStart).
    const a = simDaemon('recommend', {
      store: openSqliteStore(path),
      deps: {
        onStart: async () => {
          try {
            await b.clock.drive(b.daemon.run(3600_000));
          } catch (e) {
            refused = e;
          }
          rowAfterRefusal = b.store.daemonStatus() ?? null;
        },
      },
    });
    await a.clock.drive(a.daemon.run(3600_000, undefined, { maxRounds: 1 }));
    expect(refused).toMatchObject({ code: 'TIDE_LOCKED' });
    expect((refused as Error).message).toMatch(/cluster locked by tide daemon \(pid \d+ on /);
    expect(b.lines.some((l) => /"event":"round"/.test(l))).toBe(false);
    // The refused one leaves the status row alone (it is the running daemon's).
    expect(rowAfterRefusal).toBeNull();
    expect(b.lines.some((l) => /did not start/.test(l))).toBe(true);
    a.store.close();
    b.store.close();
  });

  it('a daemon whose lock is taken over stops at once and says so (lock-lost)', async () => {
    const path = join(tmp, 'takeover.sqlite');
    const d = simDaemon('recommend', { store: openSqliteStore(path), deps: { lockTtlMs: 300 } });
    const other = openSqliteStore(path);
    const running = d.clock.drive(d.daemon.run(30 * 86400_000));
    await new Promise((r) => setTimeout(r, 100));
    other.acquireClusterLock({ pid: 1, host: 'elsewhere', command: 'tide evacuate a', startedMs: 0 }, 60_000, { isAlive: () => false });
    const exit = await running;
    expect(exit.reason).toBe('lock-lost');
    expect(other.clusterLock()!.holder.command).toBe('tide evacuate a');
    expect(d.lines.some((l) => /lost the cluster lock/.test(l))).toBe(true);
    other.close();
    d.store.close();
  });

  it('onStart runs once, under the lock, before the first round; if it throws, no round runs and the lock is released', async () => {
    const calls: string[] = [];
    const ok = simDaemon('recommend', { deps: { onStart: (ctx) => void calls.push(`start:${ctx.store.clusterLock()?.holder.command}`), observer: { onRound: () => calls.push('round') } } });
    await ok.clock.drive(ok.daemon.run(900_000));
    expect(calls).toEqual(['start:tide daemon', 'round', 'round', 'round']);
    const bad = simDaemon('automatic', { deps: { onStart: () => { throw new Error('journal unreadable'); } } });
    const before = bad.driver.placement();
    await expect(bad.clock.drive(bad.daemon.run(900_000))).rejects.toThrow('journal unreadable');
    expect(bad.driver.placement()).toEqual(before);
    expect(bad.store.clusterLock()).toBeUndefined();
    expect(bad.store.daemonStatus()!.state).toBe('stopped');
  });

  it('reload: new mode and interval from the next round, the status row says so', async () => {
    const d = simDaemon('automatic');
    d.daemon.reload(simSettings('recommend', { intervalSec: 600 }));
    expect(d.daemon.status()).toMatchObject({ mode: 'recommend', intervalSec: 600 });
    const before = d.driver.placement();
    const r = await d.round();
    expect(r.tick!.run).toBeNull();
    expect(d.driver.placement()).toEqual(before);
    expect(d.store.daemonStatus()).toMatchObject({ mode: 'recommend', intervalSec: 600 });
    d.daemon.reloadFailed('tide.yaml: intervalSec: Too small');
    expect(d.store.daemonStatus()!.configError).toEqual({ atMs: 0, message: 'tide.yaml: intervalSec: Too small' });
    expect(d.store.daemonStatus()!.mode).toBe('recommend');
  });
});

describe('stop', () => {
  it('graceful: the running migration finishes, no new step starts, run() ends, the lock is released', async () => {
    const d = simDaemon('automatic', { settings: { limits: { maxConcurrent: 1, maxPerHost: 1 } } });
    let stopped = false;
    const started: number[] = [];
    const ends = new Map<number, string>();
    const daemon = createDaemon({
      clock: d.clock, hypervisor: d.driver, power: d.driver, store: d.store, settings: { ...d.settings, limits: { maxConcurrent: 1, maxPerHost: 1 } }, pollMs: 0,
      stopGraceMs: 3600_000,
      observer: {
        onStepStart: (r) => {
          started.push(r.step.id);
          if (!stopped) {
            stopped = true;
            daemon.stop({ reason: 'SIGTERM' });
          }
        },
        onStepEnd: (r) => ends.set(r.step.id, `${r.step.kind}:${r.state}`),
      },
    });
    const exit = await d.clock.drive(daemon.run());
    expect(exit.reason).toBe('stopped');
    expect(exit.rounds).toBe(1);
    // Only the step already started when the stop came ran (to its end); every other one was cancelled.
    expect(started).toHaveLength(1);
    expect(ends.get(started[0]!)).toBe('migrate:succeeded');
    const rest = [...ends].filter(([id]) => id !== started[0]).map(([, e]) => e);
    expect(rest.length).toBeGreaterThan(0);
    expect(rest.every((e) => e.endsWith(':cancelled'))).toBe(true);
    expect(d.store.clusterLock()).toBeUndefined();
    expect(d.store.daemonStatus()!.state).toBe('stopped');
    const runs = d.store.stepRuns(d.store.listPlans()[0]!.id);
    expect(runs.filter((r) => r.state === 'cancelled').every((r) => /Tide is stopping/.test(r.errorMessage ?? ''))).toBe(true);
  });

  it('after the grace the running migration is aborted safely (the VM stays on its source)', async () => {
    const d = simDaemon('automatic');
    let vm = '';
    let from = '';
    const results: (MigrationResult | undefined)[] = [];
    const daemon = createDaemon({
      clock: d.clock, hypervisor: d.driver, power: d.driver, store: d.store, settings: { ...d.settings, limits: { maxConcurrent: 1, maxPerHost: 1 } }, pollMs: 0,
      observer: {
        onStepStart: (r) => {
          if (vm === '' && r.step.kind === 'migrate') {
            vm = r.step.vm;
            from = r.step.from;
            daemon.stop({ graceMs: 1, reason: 'test' });
          }
        },
        onStepEnd: (r) => results.push(r.result),
      },
    });
    await d.clock.drive(daemon.run());
    expect(vm).not.toBe('');
    expect(d.driver.placement()[vm]).toBe(from);
    expect(d.store.stepRuns(d.store.listPlans()[0]!.id).find((r) => r.vm === vm)!.state).toBe('cancelled');
    expect(d.store.clusterLock()).toBeUndefined();
  });
});

describe('logs', () => {
  it('never contain a secret, even when an error message carries it', async () => {
    const secret = 'Bmc-Pa55word!';
    const d = simDaemon('automatic', { secrets: [secret] });
    const orig = d.driver.listHosts.bind(d.driver);
    let fail = true;
    d.driver.listHosts = async () => {
      if (fail) {
        fail = false;
        throw Object.assign(new Error(`ipmitool -P ${secret} failed`), { code: 'TIDE_POWER_FAILED' });
      }
      return orig();
    };
    const r = await d.round();
    expect(r.result).toBe('error');
    const text = d.lines.join('');
    expect(text).toContain('[redacted]');
    expect(text).not.toContain(secret);
    const err = d.lines.map((l) => JSON.parse(l) as { event?: string; code?: string }).find((l) => l.event === 'error')!;
    expect(err.code).toBe('TIDE_POWER_FAILED');
    // pino redacts password fields as well.
    const lines: string[] = [];
    createLogger({ write: (l) => void lines.push(l), tty: false }).info({ power: { password: 'zz-top-secret' } }, 'x');
    expect(lines.join('')).not.toContain('zz-top-secret');
  });

  it('on a terminal: readable lines (time, level, message, fields), not JSON', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => void lines.push(l), tty: true, clock: { now: () => Date.UTC(2026, 11, 1, 22, 40, 1) } });
    log.warn({ event: 'step-end', vm: 'web-1', code: 'TIDE_STALE_PLAN' }, 'step 3 skipped: migrate web-1');
    expect(lines).toEqual(['2026-12-01 22:40:01 WARN  step 3 skipped: migrate web-1  vm=web-1 code=TIDE_STALE_PLAN\n']);
    expect(formatTtyLine({ level: 50, time: 0, msg: 'x', error: 'two words' })).toBe('1970-01-01 00:00:00 ERROR x  error="two words"\n');
  });
});

describe('freeze in the status', () => {
  it('a host silent for 3 rounds freezes moves; the status row and the log say why', async () => {
    const d = simDaemon('recommend');
    const host = busiest(d.driver.placement());
    d.driver.setReachable(host, false);
    for (let i = 0; i < 4; i++) {
      await d.round();
      await d.clock.advance(300_000);
    }
    const st = d.store.daemonStatus()!;
    expect(st.frozen.frozen).toBe(true);
    expect(st.frozen.reason).toContain(host);
    expect(st.frozen.reason).toMatch(/not answered/);
    expect(d.lines.some((l) => /"event":"freeze","frozen":true/.test(l))).toBe(true);
  });

  it('reads ClusterSnapshot.freeze when the controller sets one', () => {
    expect(freezeOf({ time: 0, sampleIntervalSec: 300, hosts: [], vms: [], rules: [] })).toEqual({ frozen: false, reason: null });
    const frozen = { time: 0, sampleIntervalSec: 300, hosts: [], vms: [], rules: [], freeze: { sinceSec: 0, reasons: [{ code: 'host-silent', reason: 'srv-2 silent for 3 rounds' }] } };
    expect(freezeOf(frozen)).toEqual({ frozen: true, reason: 'host-silent: srv-2 silent for 3 rounds' });
  });
});
