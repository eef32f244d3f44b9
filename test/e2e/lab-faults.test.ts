/**
 * Faults during `tide migrate`, end to end on the lab through the real CLI: the destination
 * libvirtd killed mid-migration (libvirt and virsh drivers), the destination's link cut
 * mid-migration, a target short of memory, a nonexistent VM or host, and a VM whose name is
 * full of shell metacharacters (both drivers). Every time the VM must keep running exactly
 * once, on its source, not paused, the service must keep answering, and the error must say why.
 * And a fault at switch-over through the driver: the destination libvirtd stopped (SIGSTOP)
 * while the last of the memory streams QEMU to QEMU, so the switch-over happens while the
 * target cannot be asked: never two running copies, and reconcile leaves exactly one.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { MigrateReport } from '../../src/api/cluster.js';
import type { ReconcileResult } from '../../src/drivers/common/recovery.js';
import { escapeXml } from '../../src/drivers/common/xml.js';
import { isDriverError } from '../../src/drivers/errors.js';
import { LibvirtDriver } from '../../src/drivers/libvirt/index.js';
import { VirshDriver } from '../../src/drivers/virsh/index.js';
import { libvirtdPid } from '../../src/lab/host.js';
import { guestMac } from '../../src/lab/layout.js';
import { jobMiB, parseJobInfo, type LabHostName } from '../../src/lab/index.js';
import { waitForService } from '../../src/probe/index.js';
import { runCli } from '../helpers/cli.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, sharedLab, type TestLab } from '../helpers/lab.js';

const VM = 'tfault';
const META_IP = '10.77.0.90';
const log = (m: string): void => { process.stderr.write(`[e2e] ${m}\n`); };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describeLab('tide migrate under faults on the lab', () => {
  let lab: TestLab | undefined;
  const L = (): TestLab => lab!;
  const tmp = mkdtempSync(join(tmpdir(), 'tide-e2e-faults-'));
  /** The lab's config with the virsh driver (same hosts, same probes). */
  const virshConfig = join(tmp, 'tide-virsh.json');

  beforeAll(async () => {
    lab = await sharedLab({ vms: 0 });
    if (!lab.vms.some((v) => v.name === VM)) await lab.bootGuest({ name: VM, host: 'lab-a', memMiB: 160 });
    else await lab.setDirty(VM, 0);
    writeFileSync(virshConfig, JSON.stringify({ ...lab.config(), driver: 'virsh' }));
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    rmSync(tmp, { recursive: true, force: true });
    await lab?.down();
  }, LAB_HOOK_TIMEOUT_MS);

  afterEach(async () => {
    for (const h of L().hostNames) await L().virsh(h, ['domjobabort', '--domain', VM]);
    await L().resetFaults();
    await L().unshapeLinks();
    await L().setDirty(VM, 0).catch(() => { /* the guest may be rebooting */ });
  }, 120_000);

  const tide = (config: string, ...args: string[]): ReturnType<typeof runCli> => runCli(['--config', config, ...args]);

  /** Exactly one running copy, on `host`; nothing on the other host (eventually: libvirt cleans up). */
  const expectOnlyOn = async (vm: string, host: LabHostName, settleMs = 30_000): Promise<void> => {
    expect(await L().locate(vm)).toBe(host);
    expect(await L().virshOk(host, ['domstate', '--domain', vm])).toBe('running');
    const other = L().otherHost(host);
    const end = Date.now() + settleMs;
    for (;;) {
      const names = (await L().virshOk(other, ['list', '--all', '--name'])).split('\n');
      if (!names.includes(vm)) break;
      if (Date.now() > end) throw new Error(`${vm} is still defined or active on ${other}`);
      await sleep(500);
    }
  };

  /** A slow migration (24 MiB dirtied, 40 Mbit/s) with `fault` injected once 2 MiB were copied. */
  async function faultedMigration(config: string, fault: (from: LabHostName, to: LabHostName) => Promise<void>): Promise<{ rep: MigrateReport; code: number; from: LabHostName; to: LabHostName }> {
    const from = (await L().locate(VM))!;
    const to = L().otherHost(from);
    await L().setDirty(VM, 24);
    await L().shapeLinks(40);
    const run = tide(config, 'migrate', VM, '--to', to, '--probe', 'auto', '--json');
    await L().waitForMigrationData(from, VM, 2);
    await fault(from, to);
    const r = await run;
    const rep = JSON.parse(r.out) as MigrateReport;
    log(`${VM} ${from}→${to}: rc ${r.code}, ${rep.error?.code}: ${rep.error?.message}; probe ${rep.probe?.failed} failed of ${rep.probe?.sent}, longest gap ${rep.probeDowntimeMs} ms`);
    return { rep, code: r.code, from, to };
  }

  for (const driver of ['libvirt', 'virsh'] as const) {
    it(`${driver} driver: destination libvirtd killed mid-migration → the VM stays on the source`, async () => {
      const cfg = driver === 'libvirt' ? L().configFile : virshConfig;
      let killed: LabHostName | null = null;
      const { rep, code, from } = await faultedMigration(cfg, async (_from, to) => {
        await L().killLibvirtd(to);
        killed = to;
      });
      expect(code).toBe(1);
      expect(rep.ok).toBe(false);
      expect(rep.error?.code).toBe('TIDE_MIGRATION_FAILED');
      expect(rep.error?.message).toContain(`keeps running on ${from}`);
      expect(rep.probe!.failed).toBe(0);
      await L().startLibvirtd(killed!);
      await expectOnlyOn(VM, from);
    }, 180_000);
  }

  it('destination link cut mid-migration → the VM stays on the source', async () => {
    const { rep, code, from, to } = await faultedMigration(L().configFile, async (_from, dst) => { await L().cutLink(dst); });
    await L().restoreLink(to);
    expect(code).toBe(1);
    expect(rep.error?.code).toBe('TIDE_MIGRATION_FAILED');
    expect(rep.error?.message).toContain(`keeps running on ${from}`);
    expect(rep.probe!.failed).toBe(0);
    await expectOnlyOn(VM, from);
    // afterwards a normal migration works again
    await L().unshapeLinks();
    await L().setDirty(VM, 0);
    const ok = await tide(L().configFile, 'migrate', VM, '--to', to, '--json');
    expect(JSON.parse(ok.out)).toMatchObject({ ok: true, to });
    await expectOnlyOn(VM, to);
  }, 180_000);

  /** Hosts on which `vm` is in `state` right now (virsh on every host). */
  const hostsWhere = async (vm: string, state: 'running' | 'paused'): Promise<LabHostName[]> => {
    const out: LabHostName[] = [];
    for (const h of L().hostNames) {
      const names = (await L().virshOk(h, ['list', `--state-${state}`, '--name'])).split('\n').map((x) => x.trim());
      if (names.includes(vm)) out.push(h);
    }
    return out;
  };

  for (const driver of ['libvirt', 'virsh'] as const) {
    it(`${driver} driver: switch-over fault: destination libvirtd stopped as the job completes → never two running copies; reconcile leaves exactly one`, async () => {
      const from = (await L().locate(VM))!;
      const to = L().otherHost(from);
      const dstPid = libvirtdPid(L().host(to));
      expect(dstPid).not.toBeNull();
      await L().setDirty(VM, 0);
      await L().shapeLinks(40); // ~5 MB/s: the guest's memory takes tens of seconds
      // short keepalive, call timeouts and settle window so the test waits seconds, not minutes
      const hosts = L().config().hosts;
      const drv = driver === 'libvirt'
        ? new LibvirtDriver(hosts, { settleMs: 15_000, connectTimeoutMs: 4000, connection: { keepalive: { intervalMs: 1000, count: 3 }, callTimeoutMs: 20_000 } })
        : new VirshDriver(hosts, { settleMs: 15_000, callTimeoutMs: 5000 });
      let stopped = false;
      try {
        const migration = drv.migrate(VM, to, { mode: 'live' }).then((r) => r, (e: unknown) => e);
        // Stop the destination daemon when at most ~3 s of memory are left: the rest streams QEMU
        // to QEMU, so the switch-over happens while nobody can ask the target (the source daemon
        // only notices through its keepalive, after ~30 s).
        const end = Date.now() + 120_000;
        let remainingMiB = Infinity;
        for (;;) {
          const r = await L().virsh(from, ['domjobinfo', VM], { timeoutMs: 10_000 });
          const info = r.code === 0 ? parseJobInfo(r.stdout) : {};
          remainingMiB = jobMiB(info, 'dataRemaining');
          if (jobMiB(info, 'dataProcessed') > 1 && remainingMiB < 16) break;
          if (Date.now() > end) throw new Error(`the migration never got within 16 MiB of the end (last: ${JSON.stringify(info)})`);
          await sleep(50);
        }
        const incoming = await L().virsh(to, ['domstate', '--reason', '--domain', VM], { timeoutMs: 5000 });
        log(`${driver}: incoming copy on ${to}: ${incoming.stdout.trim()}`);
        process.kill(dstPid!, 'SIGSTOP');
        stopped = true;
        log(`${driver}: destination libvirtd of ${to} (pid ${dstPid}) stopped with ${remainingMiB.toFixed(1)} MiB left`);
        const res = await migration;
        const srcState = (await L().virshOk(from, ['domstate', '--domain', VM])).trim();
        log(`while ${to} is stopped: migrate → ${isDriverError(res) ? `${res.code}: ${res.message}` : 'ok'}; ${VM} is ${srcState} on ${from}`);
        expect(isDriverError(res)).toBe(true);
        if (!isDriverError(res)) return;
        if (res.code === 'TIDE_MIGRATION_UNKNOWN') {
          // libvirt left the source paused: the target may run it; Tide resumed nothing
          expect(srcState).toBe('paused');
          expect(res.detail).toMatchObject({ vm: VM, from, to, vmOn: null, sourceState: 'paused' });
          expect(res.message).toContain(from);
          expect(res.message).toContain(to);
        } else {
          // libvirt itself decided the target never took over and resumed the source
          expect(res.code).toBe('TIDE_MIGRATION_FAILED');
          expect(srcState).toBe('running');
          expect(res.detail).toMatchObject({ vmOn: from });
        }
        process.kill(dstPid!, 'SIGCONT');
        stopped = false;
        expect((await hostsWhere(VM, 'running')).length).toBeLessThanOrEqual(1);
        // the target answers again: reconcile finishes (retried while libvirt still settles)
        let rec: ReconcileResult | null = null;
        for (let i = 0; i < 20; i++) {
          rec = await drv.reconcile(VM, { from, to, settleMs: 5000 });
          log(`reconcile: ${rec.outcome} (${rec.reason})${rec.actions.length ? `; ${rec.actions.join('; ')}` : ''}`);
          expect((await hostsWhere(VM, 'running')).length).toBeLessThanOrEqual(1);
          if (rec.outcome !== 'unknown') break;
          await sleep(2000);
        }
        expect(['source', 'target']).toContain(rec!.outcome);
        const on = rec!.vmOn as LabHostName;
        expect(await hostsWhere(VM, 'running')).toEqual([on]);
        expect(await hostsWhere(VM, 'paused')).toEqual([]);
        await L().unshapeLinks();
        // libvirt's confirm step never ran, so the source kept its (shut-off) persistent
        // definition; when the target runs the VM persistently, recovery undefines it: no
        // stale definition is left and the VM is defined on one host (start would refuse it)
        const other = L().otherHost(on);
        const left = await L().virsh(other, ['domstate', '--domain', VM]);
        if (left.code === 0) log(`${VM} left defined on ${other}: ${left.stdout.trim()}`);
        if (on === to) {
          // recovery undefines the source only when the target's copy is persistent
          const info = await L().virshOk(to, ['dominfo', '--domain', VM]);
          expect(info).toMatch(/^Persistent:\s+yes$/m);
          expect(left.code, `a stale definition of ${VM} is left on ${other}`).not.toBe(0);
        } else if (left.code === 0) {
          // the VM stayed on the source; a definition on the target is not recovery's to remove
          // (pre-flight allows an inactive definition of the same VM there): the test removes it
          expect(left.stdout.trim()).toBe('shut off');
          await L().virshOk(other, ['undefine', '--domain', VM]);
        }
        await expectOnlyOn(VM, on);
        const vm = L().vms.find((v) => v.name === VM)!;
        expect(await waitForService({ target: `http://${vm.ip}/`, netns: L().probeNetns, timeoutMs: 60_000 })).not.toBeNull();
      } finally {
        if (stopped) process.kill(dstPid!, 'SIGCONT');
        await drv.close();
      }
    }, 300_000);
  }

  it('a target short of memory is refused before anything moves', async () => {
    const from = (await L().locate(VM))!;
    const to = L().otherHost(from);
    const hosts = JSON.parse((await tide(L().configFile, 'hosts', '--json', '--no-usage')).out) as { name: string; memMiB: number }[];
    const vms = (JSON.parse((await tide(L().configFile, 'vms', '--json', '--no-usage')).out) as { vms: { name: string; host: string; state: string; memMiB: number }[] }).vms;
    const total = hosts.find((h) => h.name === to)!.memMiB;
    const committed = vms.filter((v) => v.host === to && v.state !== 'shutoff').reduce((s, v) => s + v.memMiB, 0);
    const need = vms.find((v) => v.name === VM)!.memMiB;
    // an idle firmware-only guest that reserves (but never touches) almost all of the target
    const hogMiB = total - committed - Math.floor(need / 2);
    const hog = `<domain type='qemu'><name>tide-hog</name><memory unit='MiB'>${hogMiB}</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
      <devices><emulator>/usr/bin/qemu-system-x86_64</emulator><memballoon model='none'/></devices></domain>`;
    const hogFile = join(tmp, 'hog.xml');
    writeFileSync(hogFile, hog);
    await L().virshOk(to, ['create', hogFile]);
    try {
      const r = await tide(L().configFile, 'migrate', VM, '--to', to, '--probe', 'auto', '--json');
      const rep = JSON.parse(r.out) as MigrateReport;
      log(`short of memory: rc ${r.code}, ${rep.error?.code}: ${rep.error?.message}`);
      expect(r.code).toBe(1);
      expect(rep.error?.code).toBe('TIDE_PREFLIGHT_FAILED');
      expect(rep.checks?.find((c) => c.check === 'memory')).toMatchObject({ ok: false });
      expect(rep.error?.message).toMatch(/memory: .* needs \d+ MiB/);
      expect(rep.probe!.failed).toBe(0);
      const dry = await tide(L().configFile, 'migrate', VM, '--to', to, '--dry-run');
      expect(dry.code).toBe(1);
      expect(dry.out).toMatch(/^memory\s+NO/m);
    } finally {
      await L().virsh(to, ['destroy', '--domain', 'tide-hog']);
    }
    await expectOnlyOn(VM, from, 0);
  }, 120_000);

  it('a nonexistent VM or host is a clear error, and nothing moves', async () => {
    const from = (await L().locate(VM))!;
    const noVm = await tide(L().configFile, 'migrate', 'tide-no-such-vm', '--to', L().otherHost(from));
    expect(noVm.code).toBe(1);
    expect(noVm.err).toMatch(/no VM named 'tide-no-such-vm'.*\[TIDE_NO_SUCH_VM\]/);
    // a host the configuration does not name is an input error (exit 2), for every command
    const noHost = await tide(L().configFile, 'migrate', VM, '--to', 'lab-z', '--json');
    expect(noHost.code).toBe(2);
    expect(JSON.parse(noHost.out)).toMatchObject({ ok: false, error: { code: 'TIDE_NO_SUCH_HOST' } });
    expect(noHost.err).toContain("no host named 'lab-z'");
    const ev = await tide(L().configFile, 'evacuate', 'lab-z');
    expect(ev.code).toBe(2);
    expect(ev.err).toContain("no host named 'lab-z'");
    await expectOnlyOn(VM, from, 0);
  }, 60_000);

  it('a VM named with shell metacharacters migrates with both drivers; nothing is ever run', async () => {
    const canary = `tide-canary-${process.pid}`;
    const nasty = `--meta;touch ${canary} $(touch ${canary}-2)&|'"\`touch ${canary}-3\` *`;
    const from = (await L().locate(VM))!;
    // a copy of the fault guest under the nasty name, with its own address and console
    const xml = (await L().virshOk(from, ['dumpxml', '--inactive', '--domain', VM]))
      .replace(/<uuid>[^<]*<\/uuid>\s*/, '')
      .replace(`<name>${VM}</name>`, `<name>${escapeXml(nasty)}</name>`)
      .replace(/<mac address='[^']*'\/>/, `<mac address='${guestMac(META_IP)}'/>`)
      .replace(/lab\.ip=[0-9.]+\//, `lab.ip=${META_IP}/`)
      .replace(`lab.name=${VM}`, 'lab.name=meta')
      .replaceAll(`console/${VM}.log`, 'console/meta.log');
    const xmlFile = join(tmp, 'meta.xml');
    writeFileSync(xmlFile, xml);
    await L().virshOk(from, ['define', xmlFile]);
    try {
      await L().virshOk(from, ['start', '--domain', nasty]);
      expect(await waitForService({ target: `http://${META_IP}/`, netns: L().probeNetns, timeoutMs: 120_000 })).not.toBeNull();
      // a config that knows the VM's probe, for each driver
      for (const driver of ['libvirt', 'virsh'] as const) {
        const cfg = join(tmp, `meta-${driver}.json`);
        const base = L().config();
        writeFileSync(cfg, JSON.stringify({ ...base, driver, vms: { ...base.vms, [nasty]: { probe: `http://${META_IP}/`, probeNetns: L().probeNetns } } }));
        // a name starting with '-' goes after '--', as with any command-line tool
        const missing = await tide(cfg, 'migrate', '--to', L().otherHost(from), '--', `${nasty}x`);
        expect(missing.code).toBe(1);
        expect(missing.err).toContain('[TIDE_NO_SUCH_VM]');
        const at = (await L().locate(nasty))!;
        const r = await tide(cfg, 'migrate', '--to', L().otherHost(at), '--probe', 'auto', '--json', '--', nasty);
        const rep = JSON.parse(r.out) as MigrateReport;
        log(`metachar (${driver}): rc ${r.code}, ${rep.from}→${rep.to}, probe ${rep.probe?.failed} failed, gap ${rep.probeDowntimeMs} ms${rep.error ? `, ${rep.error.message}` : ''}`);
        expect(r.code).toBe(0);
        expect(rep).toMatchObject({ vm: nasty, ok: true, to: L().otherHost(at) });
        expect(rep.probe!.failed).toBe(0);
        await expectOnlyOn(nasty, L().otherHost(at));
        const listed = (JSON.parse((await tide(cfg, 'vms', '--json', '--no-usage')).out) as { vms: { name: string }[] }).vms;
        expect(listed.filter((v) => v.name === nasty)).toHaveLength(1);
      }
    } finally {
      for (const h of L().hostNames) {
        await L().virsh(h, ['destroy', '--domain', nasty]);
        await L().virsh(h, ['undefine', '--domain', nasty]);
      }
    }
    for (const dir of [process.cwd(), '/', tmpdir()]) {
      for (const f of [canary, `${canary}-2`, `${canary}-3`]) expect(existsSync(join(dir, f)), `${join(dir, f)}`).toBe(false);
    }
  }, 300_000);
});
