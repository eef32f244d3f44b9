/**
 * End to end on the two-host lab (docs/lab.md), through the real CLI in-process
 * (`main(argv, io)`): inventory, live migration there and back with the service probe, two
 * migrations at once, suspend and offline modes, evacuation, copy-storage, and a short
 * `bench migrate`. Placement is checked independently of Tide, with virsh (Lab.locate).
 * Needs root and the lab: skipped with a printed reason otherwise, a failure under
 * TIDE_REQUIRE_LAB=1.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { EvacuateReport, MigrateReport } from '../../src/api/cluster.js';
import type { LabHostName } from '../../src/lab/index.js';
import { runCli } from '../helpers/cli.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, sharedLab, type TestLab } from '../helpers/lab.js';

const DISK_VM = 'tdisk1';
const log = (m: string): void => { process.stderr.write(`[e2e] ${m}\n`); };

describeLab('tide migrate / evacuate / bench on the lab', () => {
  let lab: TestLab | undefined;
  const L = (): TestLab => lab!;

  beforeAll(async () => {
    lab = await sharedLab({ vms: 2 });
    for (const v of ['vm1', 'vm2']) await lab.setDirty(v, 0).catch(() => { /* not needed on a fresh guest */ });
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.down();
  }, LAB_HOOK_TIMEOUT_MS);

  const tide = (...args: string[]): ReturnType<typeof runCli> => runCli(['--config', L().configFile, ...args]);
  const json = <T>(out: string): T => JSON.parse(out) as T;
  const where = async (vm: string): Promise<LabHostName> => {
    const h = await L().locate(vm);
    if (!h) throw new Error(`${vm} is not running anywhere`);
    return h;
  };
  /** The VM is active on `host` only, running (not paused). */
  const expectOn = async (vm: string, host: LabHostName): Promise<void> => {
    expect(await L().locate(vm)).toBe(host);
    expect(await L().virshOk(host, ['domstate', '--domain', vm])).toBe('running');
    const other = L().otherHost(host);
    expect((await L().virshOk(other, ['list', '--name'])).split('\n')).not.toContain(vm);
  };
  const migrate = async (vm: string, to: LabHostName, ...extra: string[]): Promise<MigrateReport> => {
    const r = await tide('migrate', vm, '--to', to, '--json', ...extra);
    const rep = json<MigrateReport>(r.out);
    log(`${vm} ${rep.from}→${rep.to} ${rep.mode}${extra.length ? ` ${extra.join(' ')}` : ''}: rc ${r.code}, total ${rep.totalMs} ms, downtime ${rep.downtimeMs} ms, probe gap ${rep.probeDowntimeMs} ms (${rep.probe?.failed ?? '-'} failed of ${rep.probe?.sent ?? '-'}), ${rep.bytes ?? '-'} B${rep.error ? `, ${rep.error.code}: ${rep.error.message}` : ''}`);
    return rep;
  };

  it('hosts and vms list both hosts and both guests with utilisation', async () => {
    const h = await tide('hosts', '--json', '--interval-ms', '500');
    expect(h.code).toBe(0);
    const hosts = json<{ name: string; up: boolean; uuid: string; usage: { cpuPct: number } | null }[]>(h.out);
    expect(hosts.map((x) => [x.name, x.up])).toEqual([['lab-a', true], ['lab-b', true]]);
    expect(new Set(hosts.map((x) => x.uuid)).size).toBe(2);
    for (const x of hosts) expect(x.usage?.cpuPct).toBeGreaterThanOrEqual(0);
    const v = await tide('vms', '--json', '--interval-ms', '500');
    expect(v.code).toBe(0);
    const { vms, unreachable } = json<{ vms: { name: string; host: string; state: string; usage: { cpuPct: number; memUsedMiB: number } | null }[]; unreachable: unknown[] }>(v.out);
    expect(unreachable).toEqual([]);
    for (const name of ['vm1', 'vm2']) {
      const x = vms.find((y) => y.name === name);
      expect(x, name).toBeDefined();
      expect(x!.host).toBe(await where(name));
      expect(x!.state).toBe('running');
      expect(x!.usage!.memUsedMiB).toBeGreaterThan(0);
    }
  }, 120_000);

  it('live-migrates vm1 there and back; the probe sees no failed request', async () => {
    const home = await where('vm1');
    const away = L().otherHost(home);
    for (const [from, to] of [[home, away], [away, home]] as const) {
      const r = await migrate('vm1', to, '--probe', 'auto');
      expect(r).toMatchObject({ vm: 'vm1', from, to, mode: 'live', ok: true });
      expect(r.downtimeMs).toBeGreaterThanOrEqual(0);
      expect(r.bytes).toBeGreaterThan(0);
      expect(r.probe!.ok).toBeGreaterThan(0);
      expect(r.probe!.failed).toBe(0);
      expect(r.probeDowntimeMs).toBe(r.probe!.downtimeMs);
      await expectOn('vm1', to);
    }
  }, 180_000);

  it('migrates two VMs at once (crossing), both verified', async () => {
    const [h1, h2] = [await where('vm1'), await where('vm2')];
    const [r1, r2] = await Promise.all([
      migrate('vm1', L().otherHost(h1), '--probe', 'auto'),
      migrate('vm2', L().otherHost(h2), '--probe', 'auto'),
    ]);
    expect(r1.ok && r2.ok).toBe(true);
    expect(r1.probe!.failed + r2.probe!.failed).toBe(0);
    await expectOn('vm1', L().otherHost(h1));
    await expectOn('vm2', L().otherHost(h2));
  }, 180_000);

  it('suspend mode pauses, moves and resumes; offline mode restarts the guest on the target', async () => {
    const from = await where('vm2');
    const to = L().otherHost(from);
    const s = await migrate('vm2', to, '--mode', 'suspend', '--probe', 'auto');
    expect(s).toMatchObject({ ok: true, mode: 'suspend' });
    expect(s.downtimeMs).toBeGreaterThan(0);
    expect(s.probe!.failed).toBe(0);
    await expectOn('vm2', to);
    const bootBefore = (await L().guestInfo('vm2')).boot_id;
    // the lab guest ignores ACPI: offline mode needs --force-off
    const refused = await tide('migrate', 'vm2', '--to', from, '--mode', 'offline', '--shutdown-timeout', '1', '--json');
    expect(refused.code).toBe(1);
    expect(json<MigrateReport>(refused.out).error?.code).toBe('TIDE_TIMEOUT');
    await expectOn('vm2', to);
    const o = await migrate('vm2', from, '--mode', 'offline', '--shutdown-timeout', '1', '--force-off');
    expect(o).toMatchObject({ ok: true, mode: 'offline' });
    await expectOn('vm2', from);
    await L().waitGuest(L().vm('vm2'));
    expect((await L().guestInfo('vm2')).boot_id).not.toBe(bootBefore); // a real restart
    expect(await L().definedOn('vm2')).toBe(from);
  }, 240_000);

  it('evacuate empties a host, two at a time', async () => {
    // both test guests on one host; a reused lab may hold more guests there, with local
    // disks: those go too (copy-storage, the target's disk files prepared as libvirt needs)
    const target = await where('vm1');
    const other = L().otherHost(target);
    if ((await where('vm2')) !== target) expect((await migrate('vm2', target)).ok).toBe(true);
    for (const v of L().vms) if (v.disk?.mode === 'local') L().prepareLocalDisk(v.name, other);
    const r = await tide('evacuate', target, '--probe', 'auto', '--concurrency', '2', '--max-per-host', '2', '--copy-storage', '--json');
    const rep = json<EvacuateReport>(r.out);
    log(`evacuate ${target}: rc ${r.code}, ${rep.moved.length} moved in ${rep.totalMs} ms: ${rep.moved.map((m) => `${m.vm} ${m.totalMs} ms, probe gap ${m.probeDowntimeMs} ms/${m.probe?.failed} failed`).join('; ')}`);
    expect(r.code).toBe(0);
    expect(rep.failed).toEqual([]);
    expect(rep.remaining).toEqual([]);
    expect(rep.moved.map((m) => m.vm)).toEqual(expect.arrayContaining(['vm1', 'vm2']));
    for (const m of rep.moved) expect(m.probe?.failed ?? 0).toBe(0);
    expect((await L().virshOk(target, ['list', '--name'])).trim()).toBe('');
    for (const v of ['vm1', 'vm2']) await expectOn(v, other);
  }, 240_000);

  it('a VM with a local disk moves only with --copy-storage', async () => {
    if (!L().vms.some((v) => v.name === DISK_VM)) await L().bootGuest({ name: DISK_VM, host: 'lab-a', disk: 'local', diskMiB: 32 });
    const from = await where(DISK_VM);
    const to = L().otherHost(from);
    const refused = await migrate(DISK_VM, to, '--probe', 'auto');
    expect(refused.ok).toBe(false);
    expect(refused.error?.code).toBe('TIDE_PREFLIGHT_FAILED');
    expect(refused.error?.message).toMatch(/shared storage/);
    expect(refused.probe!.failed).toBe(0);
    await expectOn(DISK_VM, from);
    L().prepareLocalDisk(DISK_VM, to);
    const r = await migrate(DISK_VM, to, '--probe', 'auto', '--copy-storage');
    expect(r.ok).toBe(true);
    expect(r.bytes!).toBeGreaterThan(32 * 2 ** 20); // the disk went over the wire too
    expect(r.probe!.failed).toBe(0);
    await expectOn(DISK_VM, to);
    // and back, so a reused lab finds it home
    L().prepareLocalDisk(DISK_VM, from);
    expect((await migrate(DISK_VM, from, '--copy-storage')).ok).toBe(true);
  }, 240_000);

  it('bench migrate compares plain and post-copy on a memory-dirtying guest', async () => {
    const r = await tide('bench', 'migrate', '--vm', 'vm1', '--runs', '1', '--warmup', '0', '--settings', 'plain,post-copy', '--dirty-mib', '32', '--json');
    expect(r.code).toBe(0);
    const o = json<{ rows: { setting: string; ok: number; postCopyRuns: number; probeFailed: number; mibMean: number; downtimeMsMedian: number }[] }>(r.out);
    log(`bench: ${JSON.stringify(o.rows)}`);
    expect(o.rows.map((x) => [x.setting, x.ok])).toEqual([['plain', 1], ['post-copy', 1]]);
    expect(o.rows[0]!.postCopyRuns).toBe(0);
    expect(o.rows[1]!.postCopyRuns).toBe(1);
    for (const x of o.rows) expect(x.probeFailed).toBe(0);
    // dirtying 32 MiB makes the guest send more than its ~62 MiB of non-zero memory
    expect(o.rows[0]!.mibMean).toBeGreaterThan(64);
    expect((await L().guestInfo('vm1')).dirty_mib).toBe('0');
  }, 240_000);
});
