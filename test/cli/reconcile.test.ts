// tide reconcile, in-process over a FakeDriver with a scripted reconcile (setDriverFactory):
// which records it reconciles, what it prints, what it records, and its exit status (0 all
// resolved, 1 any still unknown or waiting for an operator or the lock held, 2 usage).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeDriver } from '../../src/drivers/fake/index.js';
import type { ReconcileResult, RecoveryOutcome } from '../../src/drivers/hypervisor.js';
import { setDriverFactory } from '../../src/drivers/index.js';
import { openSqliteStore, type Store } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-cli-reconcile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
let cfg: string;
let storePath: string;
let calls: string[];
let next: RecoveryOutcome;
beforeEach(() => {
  n++;
  storePath = join(tmp, `s${n}.sqlite`);
  cfg = join(tmp, `tide${n}.json`);
  writeFileSync(cfg, JSON.stringify({ hosts: [{ name: 'a', uri: 'test:///a' }, { name: 'b', uri: 'test:///b' }], store: { path: storePath } }));
  calls = [];
  next = 'unknown';
  const fake = new FakeDriver({ hosts: [{ name: 'a' }, { name: 'b' }], vms: [{ name: 'vm1', host: 'a' }, { name: 'vm3', host: 'b' }] });
  (fake as FakeDriver & { reconcile: (vm: string, o?: { from?: string; to?: string }) => Promise<ReconcileResult> }).reconcile = async (vm, o = {}) => {
    calls.push(`${vm} ${o.from}→${o.to}`);
    const vmOn = next === 'source' ? o.from! : next === 'target' ? o.to! : null;
    return { vm, from: o.from!, to: o.to!, outcome: next, reason: `scripted ${next}`, actions: next === 'target' ? [`destroyed the superseded paused copy of ${vm} on ${o.from}`] : [], vmOn };
  };
  setDriverFactory(() => fake);
});
afterEach(() => setDriverFactory(null));

const withStore = <T>(f: (s: Store) => T): T => {
  const s = openSqliteStore(storePath);
  try {
    return f(s);
  } finally {
    s.close();
  }
};

describe('tide reconcile', () => {
  it('nothing open: exit 0, says so, asks nothing', async () => {
    const r = await runCli(['--config', cfg, 'reconcile']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe('no unknown migration is open\n');
    expect(calls).toEqual([]);
  });

  it('every open record: still unknown → exit 1; once the target answers → outcome and actions, exit 0, the record resolved', async () => {
    withStore((s) => s.recordUnknownMigration({ vm: 'vm1', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'TIDE_MIGRATION_UNKNOWN: b does not answer' }));
    const r1 = await runCli(['--config', cfg, 'reconcile']);
    expect(r1.code, r1.err).toBe(1);
    expect(r1.out).toMatch(/^vm1 \(a → b\): unknown — STILL UNKNOWN: scripted unknown\n {2}done: nothing\n$/);
    next = 'target';
    const r2 = await runCli(['--config', cfg, 'reconcile', '--json']);
    expect(r2.code, r2.err).toBe(0);
    const j = JSON.parse(r2.out) as { reconciled: { vm: string; outcome: string; status: string; vmOn: string; actions: string[]; attempts: number }[] };
    expect(j.reconciled).toEqual([expect.objectContaining({ vm: 'vm1', outcome: 'target', status: 'resolved', vmOn: 'b', attempts: 2, actions: ['destroyed the superseded paused copy of vm1 on a'] })]);
    expect(calls).toEqual(['vm1 a→b', 'vm1 a→b']);
    expect(withStore((s) => s.unknownMigrations())).toEqual([]);
  });

  it('one VM without a record: needs --from/--to; still unknown → recorded (so the control loop blocks it), exit 1', async () => {
    const bad = await runCli(['--config', cfg, 'reconcile', 'vm3']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/no unknown migration of vm3 is recorded/);
    const r = await runCli(['--config', cfg, 'reconcile', 'vm3', '--from', 'b', '--to', 'a']);
    expect(r.code, r.err).toBe(1);
    expect(calls).toEqual(['vm3 b→a']);
    expect(withStore((s) => s.unknownMigrations())).toEqual([expect.objectContaining({ vm: 'vm3', from: 'b', to: 'a', status: 'open', attempts: 1 })]);
    next = 'source';
    expect((await runCli(['--config', cfg, 'reconcile', 'vm3'])).code).toBe(0);
    expect(withStore((s) => s.unknownMigrations())).toEqual([]);
  });

  it("'both' waits for an operator: reported and not reconciled again until --operator-done", async () => {
    withStore((s) => s.recordUnknownMigration({ vm: 'vm1', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r' }));
    next = 'both';
    const r1 = await runCli(['--config', cfg, 'reconcile']);
    expect(r1.code).toBe(1);
    expect(r1.out).toMatch(/NEEDS AN OPERATOR/);
    next = 'target';
    const r2 = await runCli(['--config', cfg, 'reconcile']);
    const r3 = await runCli(['--config', cfg, 'reconcile', 'vm1']);
    expect([r2.code, r3.code]).toEqual([1, 1]);
    expect(r3.out).toMatch(/--operator-done/);
    expect(calls).toEqual(['vm1 a→b']);
    const r4 = await runCli(['--config', cfg, 'reconcile', 'vm1', '--operator-done']);
    expect(r4.code, r4.err).toBe(0);
    expect(calls).toHaveLength(2);
  });

  it('another tide holds the cluster lock: refused with the holder, exit 1, nothing asked', async () => {
    withStore((s) => {
      s.recordUnknownMigration({ vm: 'vm1', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r' });
      s.acquireClusterLock({ pid: 1, host: 'elsewhere', command: 'tide evacuate a', startedMs: 0 }, 3_600_000);
    });
    const r = await runCli(['--config', cfg, 'reconcile', '--json']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cluster locked by tide evacuate a/);
    expect(JSON.parse(r.out)).toMatchObject({ reconciled: [], error: { code: 'TIDE_LOCKED' } });
    expect(calls).toEqual([]);
  });
});
