/**
 * `tide lab up --power` against the real parts: per host an OpenIPMI ipmi_sim BMC driven by the
 * real ipmitool (lanplus) through Tide's IPMI driver, and a Wake-on-LAN listener woken by a real
 * magic packet through Tide's WoL driver, both from the switch namespace; powering a host off
 * really stops its libvirtd and guests, powering it on really starts libvirtd again after the
 * boot delay. Needs root and the packages of scripts/install-deps.sh; skipped with a reason
 * otherwise (fails if TIDE_REQUIRE_LAB=1). Prints the measured power timings.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { powerSchema, type IpmiPowerConfig, type PowerConfig } from '../../src/config/schema.js';
import { createPowerDriver, IpmiPowerDriver, WolPowerDriver } from '../../src/drivers/power/index.js';
import type { PowerDriver } from '../../src/drivers/power.js';
import { hostUuid } from '../../src/drivers/common/xml.js';
import { Lab, bmcIp, labPowerConfig, type LabHostName } from '../../src/lab/index.js';
import { qemuPids, reaperPid } from '../../src/lab/host.js';
import { powerHostPaths } from '../../src/lab/power-layout.js';
import { cmdline, isLive, listPids } from '../../src/lab/proc.js';
import { run } from '../../src/lab/exec.js';
import { POWER_BINARIES } from '../../src/lab/power.js';
import { bmcGate } from '../helpers/bmc.js';
import { runCli } from '../helpers/cli.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, sharedLab, type TestLab } from '../helpers/lab.js';
import { runPowerContract } from '../drivers/power-contract.js';

/** Emulated boot in this test (the default is 3 s); every wait below is derived from it. */
const BOOT_DELAY_S = 2;
/** libvirtd's own start on top of the boot delay, allowed (TCG machine, 2 shared cores), ms. */
const START_MARGIN_MS = 15_000;

// ipmi_sim, ipmitool and wakeonlan on top of the lab's own prerequisites (describeLab):
// a printed skip without them, a failure under TIDE_REQUIRE_LAB=1.
const POWER_OK = bmcGate('lab power (tide lab up --power)', POWER_BINARIES);

describeLab('lab power: IPMI BMCs and Wake-on-LAN listeners (tide lab up --power)', () => {
  if (!POWER_OK) {
    it.skip('needs ipmi_sim, ipmitool and wakeonlan (the reason is printed above)', () => {});
    return;
  }
  let lab: TestLab | undefined;
  let isDown = false;
  let scratch = '';
  const figures: string[] = [];
  const figure = (line: string): void => {
    figures.push(line);
    process.stderr.write(`[lab power] ${line}\n`);
  };

  const need = (): TestLab => {
    if (!lab) throw new Error('lab not up');
    return lab;
  };
  const ipmiConfig = (host: LabHostName): IpmiPowerConfig => {
    const p = need().config().hosts.find((h) => h.name === host)!.power;
    if (p.kind !== 'ipmi') throw new Error(`${host}: power kind ${p.kind}, expected ipmi`);
    return p;
  };
  /** Tide's IPMI driver for the lab hosts, exactly as configured (pollMs shortened). */
  const ipmi = (over: Partial<IpmiPowerConfig> = {}): IpmiPowerDriver =>
    new IpmiPowerDriver({ 'lab-a': { ...ipmiConfig('lab-a'), ...over }, 'lab-b': { ...ipmiConfig('lab-b'), ...over } }, { pollMs: 100 });
  /** The WoL config `up --power=wol` would write (off and status through the host's IPMI). */
  const wolConfig = (host: LabHostName, mac?: string): PowerConfig => {
    const l = need();
    const input = labPowerConfig(l.host(host), { ...l.power!, method: 'wol' });
    return powerSchema.parse(mac ? { ...input, mac } : input);
  };
  const wol = (macOf: Partial<Record<LabHostName, string>> = {}): WolPowerDriver => {
    const t: Record<string, Extract<PowerConfig, { kind: 'wol' }>> = {};
    for (const h of ['lab-a', 'lab-b'] as const) {
      const c = wolConfig(h, macOf[h]);
      if (c.kind === 'wol') t[h] = c;
    }
    return new WolPowerDriver(t, { bootSec: { 'lab-a': BOOT_DELAY_S + 10, 'lab-b': BOOT_DELAY_S + 10 }, ipmi: { pollMs: 100 } });
  };
  const agentLog = (host: LabHostName): string => readFileSync(powerHostPaths(need().dir, host).log, 'utf8');
  const virshFails = async (host: LabHostName): Promise<boolean> => (await need().virsh(host, ['hostname'], { timeoutMs: 10_000 })).code !== 0;
  const bootTimeoutMs = BOOT_DELAY_S * 1000 + START_MARGIN_MS;
  /** Both hosts on and answering (after a test that powered one off). */
  const bothOn = async (): Promise<void> => {
    const l = need();
    for (const h of l.hostNames) {
      if ((await l.powerStatus(h)).state === 'off') await l.powerAction(h, 'on');
      await l.waitHostUp(h, bootTimeoutMs);
    }
  };

  beforeAll(async () => {
    lab = await sharedLab({ vms: 1, placement: 'lab-a', power: { method: 'ipmi', bootDelaySec: BOOT_DELAY_S } });
    scratch = mkdtempSync(join(tmpdir(), 'tide-power-test-'));
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    if (lab && !isDown) await lab.down();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    if (figures.length) process.stderr.write(`[lab power] summary:\n${figures.map((f) => `  ${f}\n`).join('')}`);
  }, LAB_HOOK_TIMEOUT_MS);

  it('writes the power section (IPMI from the switch netns, password in a 0600 file, never inline) and every BMC answers', async () => {
    const l = need();
    const cfg = l.config();
    const text = readFileSync(l.configFile, 'utf8');
    const password = readFileSync(l.power!.passwordFile, 'utf8').trim();
    expect(password.length).toBeGreaterThanOrEqual(12);
    expect(statSync(l.power!.passwordFile).mode & 0o777).toBe(0o600);
    expect(text).not.toContain(password);
    for (const h of cfg.hosts) {
      const p = h.power;
      expect(p.kind).toBe('ipmi');
      if (p.kind !== 'ipmi') continue;
      expect(p).toMatchObject({ address: bmcIp(l.host(h.name)), port: 623, user: 'admin', passwordFile: l.power!.passwordFile, netns: l.probeNetns, cipherSuite: 3 });
      expect(h.bootSec).toBeGreaterThanOrEqual(BOOT_DELAY_S);
    }
    expect(cfg.hosts.map((h) => (h.power.kind === 'ipmi' ? h.power.address : '')).sort()).toEqual(['10.77.0.101', '10.77.0.102']);
    const d = ipmi();
    expect(await d.status('lab-a')).toBe('on');
    expect(await d.status('lab-b')).toBe('on');
    // the BMC address exists only inside the lab: the root namespace has no route to it
    const st = await runCli(['lab', 'status', '--dir', l.dir, '--json']);
    expect(st.code, st.err).toBe(0);
    const power = (JSON.parse(st.out) as { power: { host: string; state: string; ipmiSimPid: number | null; agentPid: number | null }[] }).power;
    expect(power.map((p) => [p.host, p.state])).toEqual([['lab-a', 'on'], ['lab-b', 'on']]);
    for (const p of power) {
      expect(p.ipmiSimPid).not.toBeNull();
      expect(p.agentPid).not.toBeNull();
    }
  }, 60_000);

  it('IPMI hard off of a host running a guest: its libvirtd and QEMU are gone, status off, virsh to it fails; the other host stays on', async () => {
    const l = need();
    expect(await l.locate('vm1')).toBe('lab-a');
    const qemu = qemuPids(l.host('lab-a'));
    expect(qemu.map((q) => q.name)).toContain('vm1');
    const daemon = l.libvirtdPid('lab-a')!;
    const t0 = performance.now();
    const d = ipmi({ off: 'hard' });
    await d.powerOff('lab-a'); // resolves once the BMC reports off
    const offMs = Math.round(performance.now() - t0);
    expect(await d.status('lab-a')).toBe('off');
    figure(`IPMI hard off (guest running) → status off: ${offMs} ms`);
    expect(isLive(daemon)).toBe(false);
    for (const q of qemu) expect(isLive(q.pid)).toBe(false);
    expect(reaperPid(l.host('lab-a'))).toBeNull();
    expect(l.libvirtdPid('lab-a')).toBeNull();
    expect((await l.powerStatus('lab-a')).state).toBe('off');
    expect(await virshFails('lab-a')).toBe(true);
    expect(await d.status('lab-b')).toBe('on');
    expect(await virshFails('lab-b')).toBe(false);
    // `tide lab status` shows the off host as a power state, not as a health problem
    const st = await runCli(['lab', 'status', '--dir', l.dir]);
    expect(st.code, st.out).toBe(0);
    expect(st.out).toMatch(/host lab-a: .*power off/);
    expect(st.out).toMatch(/host lab-b: .*power on/);
  }, 60_000);

  it('IPMI on: libvirt answers after the boot delay, with the same host UUID; the guest is still defined, shut off', async () => {
    const l = need();
    const d = ipmi();
    const t0 = performance.now();
    await d.powerOn('lab-a');
    const acceptedMs = Math.round(performance.now() - t0);
    expect(await d.status('lab-a')).toBe('on'); // power applied: a BMC says on while the OS boots
    expect(['booting', 'on']).toContain((await l.powerStatus('lab-a')).state);
    await l.waitHostUp('lab-a', bootTimeoutMs);
    const upMs = Math.round(performance.now() - t0);
    figure(`IPMI on → libvirt answers: ${upMs} ms (boot delay ${BOOT_DELAY_S * 1000} ms; ipmitool accepted after ${acceptedMs} ms)`);
    expect(upMs).toBeGreaterThanOrEqual(BOOT_DELAY_S * 1000 - 100);
    expect(upMs).toBeLessThanOrEqual(bootTimeoutMs);
    expect((await l.powerStatus('lab-a')).state).toBe('on');
    expect(hostUuid(await l.virshOk('lab-a', ['capabilities']))).toBe(l.host('lab-a').uuid);
    expect((await l.virshOk('lab-a', ['list', '--all', '--persistent', '--name'])).split('\n').map((s) => s.trim())).toContain('vm1');
    expect(await l.virshOk('lab-a', ['domstate', 'vm1'])).toBe('shut off');
  }, 60_000);

  it('IPMI soft off: the guest is shut down or destroyed through libvirt, then libvirtd exits', async () => {
    const l = need();
    await l.virshOk('lab-a', ['start', 'vm1']);
    await l.waitGuest(l.vm('vm1'));
    const qemu = qemuPids(l.host('lab-a')).map((q) => q.pid);
    expect(qemu.length).toBe(1);
    const d = ipmi({ off: 'soft', softGraceSec: 20 });
    const t0 = performance.now();
    await d.powerOff('lab-a');
    figure(`IPMI soft off (guest running) → status off: ${Math.round(performance.now() - t0)} ms`);
    expect(await d.status('lab-a')).toBe('off');
    for (const q of qemu) expect(isLive(q)).toBe(false);
    expect(l.libvirtdPid('lab-a')).toBeNull();
    const log = agentLog('lab-a');
    expect(log).toMatch(/soft src=ipmi: off \(1 guests/);
    expect(log).not.toMatch(/soft-timeout/);
  }, 60_000);

  it('Wake-on-LAN: a packet for another MAC does not wake the off host; its own magic packet does', async () => {
    const l = need();
    expect((await l.powerStatus('lab-a')).state).toBe('off');
    const before = agentLog('lab-a').length;
    await wol({ 'lab-a': '02:77:00:00:00:ff' }).powerOn('lab-a');
    await new Promise((r) => setTimeout(r, BOOT_DELAY_S * 1000 + 2_000));
    expect((await l.powerStatus('lab-a')).state).toBe('off');
    expect(l.libvirtdPid('lab-a')).toBeNull();
    expect(agentLog('lab-a').slice(before)).toMatch(/WoL: ignored 102 bytes .*no magic packet for 02:77:00:00:00:0a/);

    const t0 = performance.now();
    const d = wol();
    await d.powerOn('lab-a');
    const sentMs = Math.round(performance.now() - t0);
    await l.waitHostUp('lab-a', bootTimeoutMs);
    const upMs = Math.round(performance.now() - t0);
    figure(`WoL magic packet → libvirt answers: ${upMs} ms (boot delay ${BOOT_DELAY_S * 1000} ms; packet sent after ${sentMs} ms)`);
    expect(upMs).toBeGreaterThanOrEqual(BOOT_DELAY_S * 1000 - 100);
    expect(await d.status('lab-a')).toBe('on');
    expect(agentLog('lab-a')).toMatch(/WoL: magic packet for 02:77:00:00:00:0a/);
    // the broadcast reached lab-b too, which ignored it (not its MAC) and stayed as it was
    expect(agentLog('lab-b')).toMatch(/WoL: ignored 102 bytes/);
    expect(await ipmi().status('lab-b')).toBe('on');
  }, 60_000);

  it('IPMI chassis power cycle and reset: a fresh libvirtd each time, back after the boot delay', async () => {
    const l = need();
    await bothOn();
    const c = ipmiConfig('lab-b');
    const ipmitool = (action: string): Promise<{ code: number | null; stderr: string }> => run(
      ['ip', 'netns', 'exec', c.netns!, 'ipmitool', '-I', 'lanplus', '-C', String(c.cipherSuite), '-N', '1', '-R', '2', '-H', c.address, '-p', String(c.port), '-U', c.user, '-E', 'chassis', 'power', action],
      { env: { ...process.env, IPMI_PASSWORD: readFileSync(c.passwordFile!, 'utf8').trim() }, timeoutMs: 20_000 },
    );
    for (const action of ['cycle', 'reset']) {
      const before = l.libvirtdPid('lab-b')!;
      const t0 = performance.now();
      const r = await ipmitool(action);
      expect(r.code, r.stderr).toBe(0);
      // wait for the old daemon to go, then for the new one to answer
      for (let i = 0; i < 100 && isLive(before); i++) await new Promise((res) => setTimeout(res, 50));
      expect(isLive(before)).toBe(false);
      await l.waitHostUp('lab-b', bootTimeoutMs + 2_000);
      figure(`IPMI ${action} → libvirt answers: ${Math.round(performance.now() - t0)} ms`);
      expect(l.libvirtdPid('lab-b')).not.toBe(before);
    }
  }, 90_000);

  runPowerContract('lab IPMI (ipmi_sim + ipmitool, tide lab up --power)', async () => {
    if (!lab) return null;
    await bothOn();
    const wrong = join(scratch, 'wrong-password');
    writeFileSync(wrong, 'not-the-password\n', { mode: 0o600 });
    const driver: PowerDriver = createPowerDriver(need().config().hosts, { ipmi: { pollMs: 100 } });
    const broken = new IpmiPowerDriver({ 'lab-a': { ...ipmiConfig('lab-a'), passwordFile: wrong } });
    return {
      driver, hosts: ['lab-a', 'lab-b'], booting: false,
      settle: async (host) => { await need().waitHostUp(host as LabHostName, bootTimeoutMs); },
      broken: { driver: broken, host: 'lab-a' },
      teardown: bothOn,
    };
  });

  runPowerContract('lab Wake-on-LAN (magic packet; off and status via IPMI)', async () => {
    if (!lab) return null;
    await bothOn();
    const wrong = join(scratch, 'wrong-password-wol');
    writeFileSync(wrong, 'not-the-password\n', { mode: 0o600 });
    const c = wolConfig('lab-a');
    const broken = c.kind === 'wol' && c.off?.kind === 'ipmi'
      ? new WolPowerDriver({ 'lab-a': { ...c, off: { ...c.off, passwordFile: wrong } } })
      : undefined;
    return {
      driver: wol(), hosts: ['lab-a', 'lab-b'], booting: false,
      settle: async (host) => { await need().waitHostUp(host as LabHostName, bootTimeoutMs); },
      ...(broken ? { broken: { driver: broken, host: 'lab-a' } } : {}),
      teardown: bothOn,
    };
  });

  it('up on a powered lab with a host off powers it on; a new boot delay restarts the agents', async () => {
    const l = need();
    await bothOn();
    await l.powerAction('lab-b', 'off');
    expect((await l.powerStatus('lab-b')).state).toBe('off');
    const oldAgents = l.hostNames.map((h) => powerHostPaths(l.dir, h)).map((p) => readFileSync(p.agentPidFile, 'utf8').trim());
    const { lab: again, reused } = await Lab.up({ dir: l.dir, vms: 1, placement: 'lab-a', power: { bootDelaySec: 1 } });
    expect(reused).toBe(true);
    expect(again.power?.bootDelayMs).toBe(1000);
    expect((await again.powerStatus('lab-b')).state).toBe('on');
    expect(await virshFails('lab-b')).toBe(false);
    const agents = await Promise.all(l.hostNames.map((h) => again.powerStatus(h)));
    for (const [i, a] of agents.entries()) {
      expect(a.agentPid).not.toBeNull();
      expect(String(a.agentPid)).not.toBe(oldAgents[i]);
      expect(cmdline(a.agentPid!).at(-1)).toBe('1000');
    }
    expect(await ipmi().status('lab-b')).toBe('on');
    expect(l.config().hosts.map((h) => h.bootSec)).toEqual([11, 11]);
  }, 90_000);

  it('lab down stops every BMC and WoL listener and leaves nothing behind', async () => {
    const l = need();
    const dir = l.dir;
    const report = await l.down({ keep: false });
    isDown = true;
    expect(report.left).toEqual({ processes: [], namespaces: [], links: [], mounts: [] });
    expect(report.killed.filter((k) => k.kind === 'power').length).toBe(2);
    // independent of the report: no ipmi_sim and no power agent of this lab is alive anywhere
    const ours = listPids().filter((pid) => isLive(pid)).map((pid) => cmdline(pid)).filter((argv) =>
      argv.some((a) => a.includes(`${dir}/`) || a === dir) && argv.some((a) => a.endsWith('/power-agent.js') || a.split('/').pop() === 'ipmi_sim'));
    expect(ours).toEqual([]);
  }, 60_000);
});
