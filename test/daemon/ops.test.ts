/** statusReport's view of the daemon from another process: alive or not, and why. */
import { describe, expect, it } from 'vitest';
import { statusReport } from '../../src/daemon/ops.js';
import { openSqliteStore, type DaemonStatusRecord } from '../../src/store/store.js';

const row: DaemonStatusRecord = {
  pid: 4242, host: 'ctl-1', startedMs: 0, state: 'running', heartbeatMs: 1_000_000, configFile: null, mode: 'automatic', intervalSec: 60,
  nextRoundMs: null, lastRound: null, window: { kind: 'balance', name: 'otherwise', untilMs: 5 }, frozen: { frozen: true, reason: 'host-silent: x', sinceMs: 1 }, configError: null,
};

describe('statusReport', () => {
  it('a recent status row: alive, with its mode, window and freeze', () => {
    const s = openSqliteStore(':memory:');
    s.saveDaemonStatus(row);
    const r = statusReport(s, null, 1_000_000 + 179_000);
    expect(r.daemon!.alive).toBe(true);
    expect(r).toMatchObject({ mode: 'automatic', intervalSec: 60, window: row.window, frozen: row.frozen });
    s.close();
  });

  it('an old row: not alive — unless the same process holds the cluster lock with a fresh heartbeat (a long round)', () => {
    const s = openSqliteStore(':memory:');
    s.saveDaemonStatus(row);
    const late = 1_000_000 + 181_000;
    expect(statusReport(s, null, late).daemon!.alive).toBe(false);
    expect(statusReport(s, null, late).frozen).toEqual({ frozen: false, reason: null });
    s.acquireClusterLock({ pid: 4242, host: 'ctl-1', command: 'tide daemon', startedMs: 0 }, 60_000, { nowMs: late - 10_000, isAlive: () => true });
    const r = statusReport(s, null, late);
    expect(r.daemon!.alive).toBe(true);
    expect(r.lock!.holderText).toBe('tide daemon (pid 4242 on ctl-1)');
    // A lock held by someone else says nothing about the daemon.
    s.saveDaemonStatus({ ...row, pid: 1 });
    expect(statusReport(s, null, late).daemon!.alive).toBe(false);
    s.saveDaemonStatus({ ...row, state: 'stopped', heartbeatMs: late });
    expect(statusReport(s, null, late).daemon!.alive).toBe(false);
    s.close();
  });
});
