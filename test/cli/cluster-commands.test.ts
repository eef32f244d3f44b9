// The cluster commands (hosts, vms, migrate, evacuate, bench migrate) run in-process over a
// FakeDriver put under the CLI with setDriverFactory: argument handling, exit codes, output.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EvacuateReport } from '../../src/api/cluster.js';
import { FakeDriver } from '../../src/drivers/fake/index.js';
import { setDriverFactory } from '../../src/drivers/index.js';
import { currentHolder, storePathFor } from '../../src/store/lock.js';
import { openSqliteStore } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-cli-cluster-'));
const cfg = join(tmp, 'tide.json');
writeFileSync(cfg, JSON.stringify({
  hosts: [{ name: 'a', uri: 'test:///a' }, { name: 'b', uri: 'test:///b' }],
  migration: { maxConcurrent: 2, maxPerHost: 2 },
}));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let fake: FakeDriver;
beforeEach(() => {
  fake = new FakeDriver({
    hosts: [{ name: 'a', memMiB: 16384 }, { name: 'b', memMiB: 16384 }],
    vms: [{ name: 'vm1', host: 'a', memMiB: 1024, cpuPct: 40 }, { name: 'vm2', host: 'a', memMiB: 2048 }, { name: 'vm3', host: 'b' }],
    migrationMiBps: 4096,
  });
  setDriverFactory(() => fake);
});
afterEach(() => setDriverFactory(null));

describe('tide hosts / vms', () => {
  it('hosts prints a table with utilisation; --json an array', async () => {
    const t = await runCli(['--config', cfg, 'hosts', '--interval-ms', '0']);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/^host\s+up\s+cores/m);
    expect(t.out).toMatch(/^a\s+yes\s+8/m);
    const j = await runCli(['--config', cfg, 'hosts', '--json', '--interval-ms', '0']);
    const hosts = JSON.parse(j.out) as { name: string; vms: number; usage: { cpuPct: number } | null }[];
    expect(hosts.map((h) => [h.name, h.vms])).toEqual([['a', 2], ['b', 1]]);
    expect(hosts[0]!.usage!.cpuPct).toBeGreaterThan(0);
    expect(fake.closed).toBe(true);
  });

  it('vms --host filters; --json has usage per VM', async () => {
    const j = await runCli(['--config', cfg, 'vms', '--host', 'a', '--json', '--interval-ms', '0']);
    expect(j.code).toBe(0);
    const { vms, unreachable } = JSON.parse(j.out) as { vms: { name: string; host: string; usage: { cpuPct: number } }[]; unreachable: unknown[] };
    expect(unreachable).toEqual([]);
    expect(vms.map((v) => v.name)).toEqual(['vm1', 'vm2']);
    expect(vms[0]!.usage.cpuPct).toBe(40);
    const bad = await runCli(['--config', cfg, 'vms', '--host', 'zz']);
    expect(bad.code).toBe(2);
  });

  it('a host that does not answer is reported with its reason: hosts (table and --json), vms (warning and --json)', async () => {
    fake.setHostUp('b', false);
    const t = await runCli(['--config', cfg, 'hosts', '--interval-ms', '0']);
    expect(t.code).toBe(1);
    expect(t.out).toMatch(/^b\s+NO/m);
    expect(t.out).toContain('b does not answer: b does not answer');
    const j = await runCli(['--config', cfg, 'hosts', '--json', '--interval-ms', '0']);
    expect(j.code).toBe(1);
    expect((JSON.parse(j.out) as { name: string; up: boolean; reason?: string }[]).map((h) => [h.name, h.up, h.reason])).toEqual([['a', true, undefined], ['b', false, 'b does not answer']]);
    const v = await runCli(['--config', cfg, 'vms', '--interval-ms', '0']);
    expect(v.code).toBe(1);
    expect(v.err).toContain('warning: b could not be asked, its VMs are not listed: b does not answer');
    expect(v.out).not.toMatch(/^vm3/m);
    const vj = await runCli(['--config', cfg, 'vms', '--json', '--interval-ms', '0']);
    expect(vj.code).toBe(1);
    expect(JSON.parse(vj.out)).toMatchObject({ vms: [{ name: 'vm1' }, { name: 'vm2' }], unreachable: [{ host: 'b', reason: 'b does not answer' }] });
  });

  it('without a configuration it is a usage error', async () => {
    const r = await runCli(['hosts'], {});
    // the repository root has no tide.json and TIDE_CONFIG is unset in tests
    if (process.env.TIDE_CONFIG === undefined) {
      expect(r.code).toBe(2);
      expect(r.err).toContain('--config');
    }
  });
});

describe('tide migrate', () => {
  it('--json prints one object with the documented fields', async () => {
    const r = await runCli(['--config', cfg, 'migrate', 'vm1', '--to', 'b', '--json']);
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out) as Record<string, unknown>;
    for (const k of ['vm', 'from', 'to', 'mode', 'totalMs', 'downtimeMs', 'probeDowntimeMs', 'bytes']) expect(o).toHaveProperty(k);
    expect(o).toMatchObject({ vm: 'vm1', from: 'a', to: 'b', mode: 'live', ok: true, probeDowntimeMs: null });
    expect(fake.vm('vm1')!.host).toBe('b');
  });

  it('passes the tuning flags and the config defaults to the driver', async () => {
    const r = await runCli(['--config', cfg, 'migrate', 'vm2', '--to', 'b', '--mode', 'suspend', '--bandwidth', '8000', '--no-auto-converge', '--postcopy-after', '3', '--timeout', '20']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('vm2: a → b (suspend)');
    expect(fake.callsOf('migrate')[0]!.args[2]).toMatchObject({ mode: 'suspend', bandwidthMiBps: 8000, autoConverge: false, postCopyAfterIterations: 3, timeoutSec: 20, copyStorage: false });
  });

  it('a failure exits 1 with the code on stderr; usage errors exit 2', async () => {
    const r = await runCli(['--config', cfg, 'migrate', 'nope', '--to', 'b']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\[TIDE_NO_SUCH_VM\]/);
    const j = await runCli(['--config', cfg, 'migrate', 'vm1', '--to', 'zz', '--json']);
    expect(j.code).toBe(2); // a host the configuration does not name: input error, refused before the driver
    expect(j.err).toContain("no host named 'zz'");
    expect(JSON.parse(j.out)).toMatchObject({ ok: false, error: { code: 'TIDE_NO_SUCH_HOST' } });
    expect((await runCli(['--config', cfg, 'migrate', 'vm1'])).code).toBe(2);
    expect((await runCli(['--config', cfg, 'migrate', 'vm1', '--to', 'b', '--mode', 'teleport'])).code).toBe(2);
    expect((await runCli(['--config', cfg, 'migrate', 'vm1', '--to', 'b', '--probe', 'auto'])).code).toBe(2); // no probe configured: an input error
    // only the well-formed request reached the driver (and was refused there)
    expect(fake.callsOf('migrate').map((c) => c.args[0])).toEqual(['nope']);
    expect(fake.vm('vm1')!.host).toBe('a');
  });

  it('--dry-run prints the checks and moves nothing', async () => {
    const r = await runCli(['--config', cfg, 'migrate', 'vm1', '--to', 'b', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^memory\s+yes/m);
    expect(r.out).toContain('vm1 can move to b');
    expect(fake.callsOf('migrate')).toHaveLength(0);
    const no = await runCli(['--config', cfg, 'migrate', 'vm1', '--to', 'a', '--dry-run']);
    expect(no.code).toBe(1);
    expect(no.out).toMatch(/^not-same-host\s+NO/m);
  });

  it('draws a progress bar only on a terminal', async () => {
    const tty = await runCli(['--config', cfg, 'migrate', 'vm2', '--to', 'b'], { tty: true });
    expect(tty.code).toBe(0);
    expect(tty.err).toMatch(/vm2 precopy.*\[#*\s*\]/);
    const plain = await runCli(['--config', cfg, 'migrate', 'vm2', '--to', 'a']);
    expect(plain.err).toBe('');
  });
});

describe('tide evacuate', () => {
  it('empties the host and says so; exit 1 when something is left', async () => {
    const r = await runCli(['--config', cfg, 'evacuate', 'a', '--json', '--interval-ms', '0']);
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out) as EvacuateReport;
    expect(o.moved.map((m) => m.vm).sort()).toEqual(['vm1', 'vm2']);
    expect(o.remaining).toEqual([]);
    for (const k of ['host', 'dryRun', 'moves', 'moved', 'failed', 'skipped', 'notMoved', 'unreachable', 'remaining', 'totalMs']) expect(o).toHaveProperty(k);
    expect(o.moves.every((m) => /a is being evacuated; best target b fits/.test(m.reason))).toBe(true);
    fake.inject({ method: 'migrate', vm: 'vm3', code: 'TIDE_MIGRATION_FAILED' });
    const f = await runCli(['--config', cfg, 'evacuate', 'b', '--interval-ms', '0']);
    expect(f.code).toBe(1);
    expect(f.out).toMatch(/FAILED/);
    expect(f.out).toMatch(/still on it: vm3/);    const unknown = await runCli(['--config', cfg, 'evacuate', 'zz', '--interval-ms', '0']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/no host named 'zz' in the configuration/);
    expect((await runCli(['--config', cfg, 'evacuate', 'a', '--to', 'b,zz'])).code).toBe(2);
  });

  it('shows the plan with its reasons; an anti-affine VM that cannot go anywhere stays, explained (exit 1)', async () => {
    const ruled = join(tmp, 'rules.json');
    writeFileSync(ruled, JSON.stringify({
      hosts: [{ name: 'a', uri: 'test:///a' }, { name: 'b', uri: 'test:///b' }],
      rules: [{ kind: 'antiAffinity', id: 'apart', vms: ['vm1', 'vm2'] }],
      store: { path: join(tmp, 'rules.sqlite') },
    }));
    const dry = await runCli(['--config', ruled, 'evacuate', 'a', '--dry-run', '--interval-ms', '0']);
    expect(dry.code).toBe(1);
    expect(dry.out).toMatch(/^a: 1 VM\(s\) to move, 1 not moved$/m);
    expect(dry.out).toMatch(/^ {2}move vm2 → b \(live, 2048 MiB\): a is being evacuated; best target b fits/m);
    expect(dry.out).toMatch(/^ {2}stay vm1 \[no-host-fits\]: no host can take vm1/m);
    expect(dry.out).toMatch(/^ {6}\[rules\] b already runs a VM that must stay apart from vm1 \(rule apart\)$/m);
    expect(dry.out).toMatch(/^ {6}\[target\] a: the host being evacuated$/m);
    expect(fake.callsOf('migrate')).toHaveLength(0);
    const r = await runCli(['--config', ruled, 'evacuate', 'a', '--json', '--interval-ms', '0']);
    expect(r.code).toBe(1);
    const o = JSON.parse(r.out) as EvacuateReport;
    expect(o.moved.map((m) => [m.vm, m.to])).toEqual([['vm2', 'b']]);
    expect(o.notMoved).toEqual([expect.objectContaining({ vm: 'vm1', code: 'no-host-fits', hosts: expect.arrayContaining([expect.objectContaining({ host: 'b', by: 'rules', code: 'anti-affinity' })]) })]);
    expect(o.remaining).toEqual(['vm1']);
  });

  it('is refused while another tide holds the cluster lock (exit 1, TIDE_LOCKED, the holder named)', async () => {
    const store = openSqliteStore(storePathFor('.tide/tide.sqlite', cfg));
    const lease = store.acquireClusterLock({ ...currentHolder('tide evacuate b'), pid: process.ppid }, 60_000);
    try {
      const r = await runCli(['--config', cfg, 'evacuate', 'a', '--interval-ms', '0']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(new RegExp(`cluster locked by tide evacuate b \\(pid ${process.ppid} on .*\\[TIDE_LOCKED\\]`));
      const j = await runCli(['--config', cfg, 'evacuate', 'a', '--json', '--interval-ms', '0']);
      expect(j.code).toBe(1);
      expect(JSON.parse(j.out)).toMatchObject({ host: 'a', error: { code: 'TIDE_LOCKED' }, holder: { pid: process.ppid, command: 'tide evacuate b' } });
      expect((await runCli(['--config', cfg, 'place', 'vm1', '--interval-ms', '0'])).code).toBe(1);
      expect(fake.callsOf('migrate')).toHaveLength(0);
    } finally {
      store.releaseClusterLock(lease);
      store.close();
    }
  });
});

describe('tide place', () => {
  it('explains the choice; starts a shut-off VM there; --json is one object', async () => {
    fake.addVm({ name: 'cold', host: 'a', memMiB: 14336, state: 'shutoff' });
    const dry = await runCli(['--config', cfg, 'place', 'cold', '--dry-run', '--interval-ms', '0']);
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/^cold: would start on b \(defined on a\): best host b fits/m);
    expect(dry.out).toMatch(/^ {2}\* b: fits, score/m);
    expect(dry.out).toMatch(/^ {4}\[memory\] a: \d+ MiB free, cold holds 14336 MiB$/m);
    const r = await runCli(['--config', cfg, 'place', 'cold', '--json', '--interval-ms', '0']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ vm: 'cold', definedOn: 'a', to: 'b', ok: true, dryRun: false });
    expect(fake.vm('cold')).toMatchObject({ host: 'b', state: 'running' });
    const again = await runCli(['--config', cfg, 'place', 'cold', '--interval-ms', '0']);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/cold is running on b: only a shut-off VM is placed \[TIDE_VM_STATE\]/);
    expect((await runCli(['--config', cfg, 'place'])).code).toBe(2);
  });
});

describe('tide bench migrate', () => {
  it('compares settings with interleaved runs and prints one row per setting', async () => {
    const r = await runCli(['--config', cfg, 'bench', 'migrate', '--vm', 'vm1', '--runs', '2', '--warmup', '0', '--settings', 'plain,post-copy:2', '--json']);
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out) as { rows: { setting: string; runs: number; ok: number }[]; runs: { setting: string; from: string; to: string }[] };
    expect(o.rows.map((x) => [x.setting, x.runs, x.ok])).toEqual([['plain', 2, 2], ['post-copy:2', 2, 2]]);
    expect(o.runs.map((x) => x.setting)).toEqual(['plain', 'post-copy:2', 'plain', 'post-copy:2']);
    // ping-pong between the two hosts
    expect(o.runs.map((x) => x.to)).toEqual(['b', 'a', 'b', 'a']);
    expect((await runCli(['--config', cfg, 'bench', 'migrate', '--vm', 'vm1', '--settings', 'warp'])).code).toBe(2);
    expect((await runCli(['--config', cfg, 'bench', 'migrate'])).code).toBe(2);
  });

  it('keeps `tide bench plan` working with a global --config', async () => {
    const r = await runCli(['--config', cfg, 'bench', 'plan', '--hosts', '5', '--vms', '20', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ hosts: 5, vms: 20 });
  });
});
