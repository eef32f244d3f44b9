/**
 * `tide evacuate` on the two-host lab (docs/lab.md), through the real CLI in-process: the
 * evacuation is a plan from the core planner that respects CPU headroom (measured on the real
 * guests) and a configured anti-affinity rule, run by the executor under the cluster lock; a
 * second `tide evacuate` while the first runs is refused with who holds the lock. Placement
 * is checked independently of Tide, with virsh (Lab.locate).
 *
 * The lab has two hosts, so the anti-affinity case is: vm1 and vm2, anti-affine, both on
 * lab-b; evacuating lab-b can move only one of them to lab-a, and must leave the other where
 * it is with the rule named as the reason.
 * Needs root and the lab: skipped with a printed reason otherwise, a failure under
 * TIDE_REQUIRE_LAB=1.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { EvacuateReport, MigrateReport } from '../../src/api/cluster.js';
import type { TideConfigInput } from '../../src/config/schema.js';
import type { LabHostName } from '../../src/lab/index.js';
import { openSqliteStore } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, sharedLab, type TestLab } from '../helpers/lab.js';

const log = (m: string): void => { process.stderr.write(`[e2e evacuate] ${m}\n`); };
const FROM: LabHostName = 'lab-b';
const TO: LabHostName = 'lab-a';

describeLab('tide evacuate on the lab: plan (CPU, anti-affinity), executor, cluster lock', () => {
  let lab: TestLab | undefined;
  const L = (): TestLab => lab!;
  const dir = mkdtempSync(join(tmpdir(), 'tide-e2e-evacuate-'));
  const store = join(dir, 'tide.sqlite');

  /** The lab's configuration plus `extra`, with a store of this file's own (its lock). */
  const config = (name: string, extra: Partial<TideConfigInput>): string => {
    const base = JSON.parse(readFileSync(L().configFile, 'utf8')) as TideConfigInput;
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ ...base, ...extra, store: { path: store } }, null, 2));
    return file;
  };
  const tide = (cfg: string, ...args: string[]): ReturnType<typeof runCli> => runCli(['--config', cfg, ...args]);
  const where = async (vm: string): Promise<LabHostName> => {
    const h = await L().locate(vm);
    if (!h) throw new Error(`${vm} is not running anywhere`);
    return h;
  };

  beforeAll(async () => {
    lab = await sharedLab({ vms: 2 });
    const plain = config('plain', {});
    for (const v of ['vm1', 'vm2']) {
      await lab.setDirty(v, 0).catch(() => { /* not needed on a fresh guest */ });
      if ((await where(v)) !== FROM) {
        const r = await tide(plain, 'migrate', v, '--to', FROM, '--json');
        expect((JSON.parse(r.out) as MigrateReport).ok, `${v} → ${FROM}: ${r.out}${r.err}`).toBe(true);
      }
    }
    // a reused lab may hold more guests on lab-b, with local disks: prepare their target disks
    for (const v of lab.vms) if (v.disk?.mode === 'local') lab.prepareLocalDisk(v.name, TO);
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.setDirty('vm1', 0).catch(() => { /* best effort */ });
    await lab?.down();
    rmSync(dir, { recursive: true, force: true });
  }, LAB_HOOK_TIMEOUT_MS);

  it('CPU: a VM whose measured demand does not fit the target’s headroom is not moved, and the plan says why', async () => {
    expect(await where('vm1')).toBe(FROM);
    expect(await where('vm2')).toBe(FROM);
    // vm1 rewrites memory without pause: its vCPU is busy. With targetUtil 0.1 lab-a may take
    // at most 10 % of its cores; vm2 idles and fits, vm1 does not. With the default (0.9) it does.
    await L().setDirty('vm1', 16);
    try {
      const tight = config('cpu', { policy: { name: 'tide', args: { targetUtil: 0.1 } } });
      const r = await tide(tight, 'evacuate', FROM, '--dry-run', '--json', '--interval-ms', '2000');
      const rep = JSON.parse(r.out) as EvacuateReport;
      log(`targetUtil 0.1: rc ${r.code}; moves ${rep.moves.map((m) => `${m.vm}→${m.to}`).join(', ')}; not moved ${rep.notMoved.map((n) => `${n.vm}: ${n.hosts.map((h) => `${h.host} ${h.by}: ${h.reason}`).join(' | ')}`).join('; ')}`);
      expect(r.code).toBe(1);
      const vm1 = rep.notMoved.find((n) => n.vm === 'vm1');
      expect(vm1, 'vm1 stays').toMatchObject({ code: 'no-host-fits' });
      expect(vm1!.hosts.find((h) => h.host === TO)).toMatchObject({ fits: false, by: 'cpu', code: 'insufficient-cpu' });
      expect(rep.moves.find((m) => m.vm === 'vm2')).toMatchObject({ to: TO });
      expect(rep.moves.some((m) => m.vm === 'vm1')).toBe(false);
      const roomy = await tide(config('roomy', {}), 'evacuate', FROM, '--dry-run', '--json', '--interval-ms', '2000');
      const rep2 = JSON.parse(roomy.out) as EvacuateReport;
      log(`default targetUtil: moves ${rep2.moves.map((m) => `${m.vm}→${m.to}: ${m.reason}`).join('; ')}`);
      expect(rep2.moves.find((m) => m.vm === 'vm1')).toMatchObject({ to: TO });
      // dry runs move nothing
      expect(await where('vm1')).toBe(FROM);
      expect(await where('vm2')).toBe(FROM);
    } finally {
      await L().setDirty('vm1', 0);
    }
  }, 240_000);

  it('anti-affinity: one of two anti-affine VMs moves, the other stays explained; a concurrent evacuate is refused with the holder', async () => {
    const cfg = config('apart', { rules: [{ kind: 'antiAffinity', id: 'apart', vms: ['vm1', 'vm2'] }] });
    const first = tide(cfg, 'evacuate', FROM, '--json', '--probe', 'auto', '--copy-storage', '--concurrency', '2', '--max-per-host', '2', '--interval-ms', '1000');
    // the first holds the cluster lock from before it plans until its last step ended
    const s = openSqliteStore(store);
    let holder: string | null = null;
    try {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const l = s.clusterLock();
        if (l) {
          holder = l.holder.command;
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(holder).toBe(`tide evacuate ${FROM}`);
      const second = await tide(cfg, 'evacuate', FROM, '--json');
      log(`second evacuate: rc ${second.code}: ${second.err.trim()}`);
      expect(second.code).toBe(1);
      expect(second.err).toMatch(new RegExp(`cluster locked by tide evacuate ${FROM} \\(pid ${process.pid} on .*\\[TIDE_LOCKED\\]`));
      expect(JSON.parse(second.out)).toMatchObject({ host: FROM, error: { code: 'TIDE_LOCKED' }, holder: { pid: process.pid, command: `tide evacuate ${FROM}` } });
      const r = await first;
      const rep = JSON.parse(r.out) as EvacuateReport;
      log(`evacuate ${FROM}: rc ${r.code}, ${rep.moved.length} moved in ${rep.totalMs} ms: ${rep.moved.map((m) => `${m.vm}→${m.to} ${m.totalMs} ms, probe gap ${m.probeDowntimeMs} ms/${m.probe?.failed} failed`).join('; ')}; not moved: ${rep.notMoved.map((n) => `${n.vm} [${n.code}] ${n.hosts.map((h) => `${h.host}: ${h.reason}`).join(' | ')}`).join('; ')}`);
      expect(r.code).toBe(1); // one VM had to stay
      expect(rep.failed).toEqual([]);
      const moved = rep.moved.filter((m) => m.vm === 'vm1' || m.vm === 'vm2');
      expect(moved).toHaveLength(1);
      const gone = moved[0]!.vm;
      const stays = gone === 'vm1' ? 'vm2' : 'vm1';
      expect(moved[0]).toMatchObject({ from: FROM, to: TO, ok: true });
      expect(moved[0]!.probe?.failed ?? 0).toBe(0);
      expect(rep.moves.find((m) => m.vm === gone)!.reason).toMatch(new RegExp(`${FROM} is being evacuated; best target ${TO} fits`));
      const n = rep.notMoved.find((x) => x.vm === stays);
      expect(n).toMatchObject({ code: 'no-host-fits' });
      expect(n!.hosts.find((h) => h.host === TO)).toMatchObject({ fits: false, by: 'rules', code: 'anti-affinity' });
      expect(n!.hosts.find((h) => h.host === TO)!.reason).toMatch(/rule apart/);
      expect(rep.remaining).toContain(stays);
      expect(rep.remaining).not.toContain(gone);
      expect(rep.unreachable).toEqual([]);
      // checked with virsh: exactly where the report says, and running
      expect(await L().locate(gone)).toBe(TO);
      expect(await L().virshOk(TO, ['domstate', '--domain', gone])).toBe('running');
      expect(await L().locate(stays)).toBe(FROM);
      expect(await L().virshOk(FROM, ['domstate', '--domain', stays])).toBe('running');
      // the lock is released, and the run is in the store's history
      expect(s.clusterLock()).toBeUndefined();
      expect(s.migrations({ vm: gone, limit: 1 })[0]).toMatchObject({ from: FROM, to: TO, ok: true });
    } finally {
      s.close();
    }
  }, 300_000);

  it('place: a shut-off guest is started on the host the planner picks (its definition moved there first), with every host explained', async () => {
    const vm = 'vm2';
    const at = await where(vm);
    const other = L().otherHost(at);
    await L().virshOk(at, ['destroy', '--domain', vm]); // shut off, still defined on `at`
    expect(await L().definedOn(vm)).toBe(at);
    const plain = config('place', {});
    const dry = await tide(plain, 'place', vm, '--dry-run', '--interval-ms', '500');
    log(`place --dry-run: rc ${dry.code}\n${dry.out}`);
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(new RegExp(`^${vm}: would start on lab-[ab] \\(defined on ${at}\\): best host`, 'm'));
    expect(await L().locate(vm)).toBeNull(); // a dry run starts nothing
    // --to the host that does not hold the definition: the executor moves it (offline), then starts it
    const r = await tide(plain, 'place', vm, '--to', other, '--json', '--interval-ms', '500');
    const rep = JSON.parse(r.out) as { to: string; ok: boolean; definedOn: string; note?: string; reason: string; hosts: { host: string; fits: boolean; code?: string }[] };
    log(`place ${vm} --to ${other}: rc ${r.code}, ${JSON.stringify(rep)}`);
    expect(r.code).toBe(0);
    expect(rep).toMatchObject({ to: other, ok: true, definedOn: at });
    expect(rep.hosts.find((h) => h.host === at)).toMatchObject({ fits: false, code: 'not-allowed' });
    expect(rep.note).toMatch(new RegExp(`moved the definition of ${vm} from ${at} to ${other}`));
    expect(await L().locate(vm)).toBe(other);
    expect(await L().virshOk(other, ['domstate', '--domain', vm])).toBe('running');
    expect(await L().definedOn(vm)).toBe(other);
    await L().waitGuest(L().vm(vm)); // the service answers again
    const again = await tide(plain, 'place', vm, '--interval-ms', '0');
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/only a shut-off VM is placed \[TIDE_VM_STATE\]/);
  }, 300_000);
});
