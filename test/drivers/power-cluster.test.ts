/**
 * The cluster power driver (src/drivers/power/cluster.ts): per-host dispatch from the
 * configuration's power sections, kind none, the wake-path test per method and its key; and,
 * against a real BMC (OpenIPMI's ipmi_sim on 127.0.0.1 driven by the real ipmitool, see
 * test/helpers/bmc.ts), the wake-path test passing with the right password and failing with a
 * wrong one — in the driver and through the executor, which then refuses the power-off — with
 * the password in no error text. The BMC part skips with a printed reason when ipmi_sim or
 * ipmitool is missing, and fails instead under TIDE_REQUIRE_LAB=1.
 */
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostConfig, PowerConfig } from '../../src/config/schema.js';
import { FakeDriver } from '../../src/drivers/fake/index.js';
import { ClusterPowerDriver, clusterPowerDriver } from '../../src/drivers/power/cluster.js';
import { systemClock } from '../../src/executor/clock.js';
import { runPlan, type PlanRun } from '../../src/executor/executor.js';
import { openSqliteStore } from '../../src/store/store.js';
import { bmcGate, freeUdpPort, startBmc, type Bmc } from '../helpers/bmc.js';
import { driverRejection as rejection } from '../helpers/rejection.js';

const RUN = bmcGate('cluster power driver: wake-path test against ipmi_sim');

type H = Pick<HostConfig, 'name' | 'power' | 'bootSec'>;
const h = (name: string, power: PowerConfig): H => ({ name, power, bootSec: 60 });
const wol = (o: Partial<Extract<PowerConfig, { kind: 'wol' }>> = {}): PowerConfig => ({ kind: 'wol', mac: '02:77:00:00:00:0a', broadcast: '127.0.0.1', port: 9, statusPort: 22, ...o });
const ssh: PowerConfig = { kind: 'ssh', target: 'root@127.0.0.1', offTimeoutSec: 5 };

const tmp = mkdtempSync(join(tmpdir(), 'tide-power-cluster-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A UDP listener on 127.0.0.1 that records what it receives (plays the NIC). */
async function udpListener(): Promise<{ port: number; got: Buffer[]; close(): Promise<void> }> {
  const sock = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { port: sock.address().port, got, close: () => new Promise((r) => sock.close(() => r())) };
}

async function tcpListener(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

describe('cluster power driver: dispatch and kind none', () => {
  it('routes each host to its own method; none reads unknown and refuses on/off with TIDE_UNSUPPORTED; unknown host → TIDE_NO_SUCH_HOST', async () => {
    const d = clusterPowerDriver({ hosts: [h('a', { kind: 'none' }), h('b', ssh), h('c', wol())] as HostConfig[] });
    expect(d.hosts()).toEqual(['a', 'b', 'c']);
    expect([d.methodOf('a'), d.methodOf('b'), d.methodOf('c')]).toEqual(['none', 'ssh', 'wol']);
    expect(await d.status('a')).toBe('unknown');
    const on = await rejection(d.powerOn('a'));
    expect(on.code).toBe('TIDE_UNSUPPORTED');
    expect(on.message).toMatch(/a has no power method \(power.kind 'none'\)/);
    expect((await rejection(d.powerOff('a'))).code).toBe('TIDE_UNSUPPORTED');
    expect((await rejection(d.powerOn('b'))).code).toBe('TIDE_UNSUPPORTED'); // ssh cannot wake
    expect((await rejection(d.status('zz'))).code).toBe('TIDE_NO_SUCH_HOST');
    expect(() => d.methodOf('zz')).toThrow(/no host named 'zz'/);
  });

  it('wol: powerOn sends the magic packet to that host\'s broadcast:port only', async () => {
    const l = await udpListener();
    try {
      const d = new ClusterPowerDriver([h('w', wol({ port: l.port })), h('n', { kind: 'none' })]);
      await d.powerOn('w');
      for (let i = 0; i < 50 && l.got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(l.got).toHaveLength(1);
      expect(l.got[0]!.length).toBe(102);
      expect(l.got[0]!.subarray(6, 12).toString('hex')).toBe('02770000000a');
    } finally {
      await l.close();
    }
  });
});

describe('cluster power driver: wake-path test (no cycling)', () => {
  it('none and ssh fail: nothing could wake the host', async () => {
    const d = new ClusterPowerDriver([h('a', { kind: 'none' }), h('b', ssh)]);
    expect(await d.wakeTest('a')).toMatchObject({ ok: false, method: 'none', code: 'TIDE_UNSUPPORTED' });
    const b = await d.wakeTest('b');
    expect(b).toMatchObject({ ok: false, method: 'ssh', code: 'TIDE_UNSUPPORTED' });
    expect(b.reason).toMatch(/can power a host off but never on/);
    expect((await rejection(d.wakeTest('zz'))).code).toBe('TIDE_NO_SUCH_HOST');
  });

  it('wol: passes when the packet can be sent and the status address answers; fails without a status source', async () => {
    const l = await udpListener();
    const t = await tcpListener();
    try {
      const d = new ClusterPowerDriver([
        h('ok', wol({ port: l.port, statusAddress: '127.0.0.1', statusPort: t.port, off: ssh })),
        h('blind', wol({ port: l.port, off: ssh })),
        h('nowhere', wol({ port: l.port, statusAddress: 'no-such-host.invalid' })),
      ]);
      const ok = await d.wakeTest('ok');
      expect(ok).toMatchObject({ ok: true, method: 'wol' });
      expect(ok.reason).toContain(`127.0.0.1:${t.port} reads open`);
      const blind = await d.wakeTest('blind');
      expect(blind).toMatchObject({ ok: false, code: 'TIDE_UNSUPPORTED' });
      expect(blind.reason).toMatch(/without a status source/);
      expect(await d.wakeTest('nowhere')).toMatchObject({ ok: false, code: 'TIDE_HOST_UNREACHABLE' });
      // the packets reached the "NIC" (a running host ignores them)
      for (let i = 0; i < 50 && l.got.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
      expect(l.got.length).toBe(3);
    } finally {
      await l.close();
      await t.close();
    }
  });

  it('wakePathKey: stable for the same section, different when the section changes', () => {
    const a = new ClusterPowerDriver([h('x', wol({ statusAddress: '10.0.0.1' })), h('y', wol({ statusAddress: '10.0.0.1' }))]);
    const b = new ClusterPowerDriver([h('x', { ...(wol() as Extract<PowerConfig, { kind: 'wol' }>), statusAddress: '10.0.0.1' })]);
    const c = new ClusterPowerDriver([h('x', wol({ statusAddress: '10.0.0.2' }))]);
    expect(a.wakePathKey('x')).toMatch(/^[0-9a-f]{16}$/);
    expect(a.wakePathKey('x')).toBe(a.wakePathKey('y'));
    expect(a.wakePathKey('x')).toBe(b.wakePathKey('x'));
    expect(a.wakePathKey('x')).not.toBe(c.wakePathKey('x'));
  });
});

describe.runIf(RUN)('wake-path test against a real BMC (ipmi_sim + ipmitool)', () => {
  let bmc: Bmc;
  let wrongFile: string;
  beforeAll(async () => {
    bmc = await startBmc({ initial: 'on' });
    wrongFile = join(tmp, 'wrong-password');
    writeFileSync(wrongFile, 'not-the-password-42\n', { mode: 0o600 });
  });
  afterAll(async () => { await bmc?.stop(); });

  it('right password → passes; wrong password → fails with TIDE_POWER_FAILED, no password in the reason', async () => {
    const d = new ClusterPowerDriver([h('good', bmc.config()), h('bad', bmc.config({ passwordFile: wrongFile, timeoutSec: 10 }))]);
    const good = await d.wakeTest('good');
    expect(good).toMatchObject({ ok: true, method: 'ipmi' });
    expect(good.reason).toMatch(new RegExp(`the BMC 127.0.0.1:${bmc.port} answered chassis power status \\(on\\)`));
    const bad = await d.wakeTest('bad');
    expect(bad).toMatchObject({ ok: false, method: 'ipmi', code: 'TIDE_POWER_FAILED' });
    expect(bad.reason).toMatch(/refused the credentials/);
    for (const text of [good.reason, bad.reason]) {
      expect(text).not.toContain(bmc.password);
      expect(text).not.toContain('not-the-password-42');
    }
    // a BMC that does not answer at all
    const dead = new ClusterPowerDriver([h('dead', bmc.config({ port: await freeUdpPort(), timeoutSec: 2 }))]);
    expect(await dead.wakeTest('dead')).toMatchObject({ ok: false, code: 'TIDE_HOST_UNREACHABLE' });
  });

  it('wol with an IPMI off method: the packet is sent and the state is read through that BMC (right password passes, wrong fails)', async () => {
    const l = await udpListener();
    try {
      const d = new ClusterPowerDriver([
        h('w1', wol({ port: l.port, off: bmc.config() })),
        h('w2', wol({ port: l.port, off: bmc.config({ passwordFile: wrongFile, timeoutSec: 10 }) })),
      ]);
      const ok = await d.wakeTest('w1');
      expect(ok).toMatchObject({ ok: true, method: 'wol' });
      expect(ok.reason).toMatch(/answered chassis power status/);
      const bad = await d.wakeTest('w2');
      expect(bad).toMatchObject({ ok: false, method: 'wol', code: 'TIDE_POWER_FAILED' });
      expect(bad.reason).not.toContain('not-the-password-42');
    } finally {
      await l.close();
    }
  });

  it('through the executor: wrong password → power-off refused and the failed wake path recorded (the BMC never gets a power command); fixed but not re-tested → still refused; re-tested → powered off', async () => {
    bmc.setPower('on');
    const hyper = new FakeDriver({ hosts: [{ name: 'srv1' }, { name: 'srv2' }], vms: [{ name: 'a', host: 'srv1' }] });
    const store = openSqliteStore(':memory:');
    const run = (power: ClusterPowerDriver): Promise<PlanRun> => (runPlan(
      { policy: 'test', time: 0, steps: [{ id: 1, kind: 'powerOff', host: 'srv2', deps: [], reason: 'empty', by: 'test' }], hosts: [], notMoved: [] },
      { hypervisor: hyper, power, clock: systemClock, limits: { maxConcurrent: 1, maxPerHost: 1 }, migrate: { mode: 'live' }, wakePaths: store },
    ));
    // Same power section for both (the password lives in a file whose content changes), so the
    // fix is invisible to the configuration: only a re-test clears the record.
    const pwFile = join(tmp, 'srv2-password');
    const section = bmc.config({ passwordFile: pwFile, off: 'hard', timeoutSec: 10 });
    const power = new ClusterPowerDriver([h('srv1', { kind: 'none' }), h('srv2', section)]);
    try {
      writeFileSync(pwFile, 'not-the-password-42\n', { mode: 0o600 });
      const calls0 = bmc.hookCalls().length;
      const r1 = await run(power);
      expect(r1.steps[0]).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
      expect(r1.steps[0]!.error!.message).toMatch(/not powering off srv2: its wake path failed its test \(ipmi\): .*refused the credentials of user/);
      expect(r1.steps[0]!.error!.message).not.toContain('not-the-password-42');
      expect(store.wakePath('srv2')).toMatchObject({ ok: false, method: 'ipmi' });
      expect(store.wakePath('srv2')!.reason).not.toContain('not-the-password-42');
      expect(bmc.hookCalls().slice(calls0).filter((c) => c.startsWith('set '))).toEqual([]);
      expect(bmc.power()).toBe('on');

      // The password file is fixed; nobody re-tested: still refused, the BMC not even asked.
      writeFileSync(pwFile, `${bmc.password}\n`, { mode: 0o600 });
      const calls1 = bmc.hookCalls().length;
      const r2 = await run(power);
      expect(r2.steps[0]).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
      expect(r2.steps[0]!.error!.message).toMatch(/its wake path failed .*tide wake-test srv2/);
      expect(bmc.hookCalls().length).toBe(calls1);
      expect(bmc.power()).toBe('on');

      // The operator re-tests (what `tide wake-test srv2` records) → the power-off goes through.
      const t = await power.wakeTest('srv2');
      expect(t.ok).toBe(true);
      store.recordWakePath({ host: 'srv2', testedMs: 1, ok: t.ok, reason: t.reason, method: t.method, key: power.wakePathKey('srv2') });
      const r3 = await run(power);
      expect(r3.steps[0]!.state, JSON.stringify(r3.steps[0]!.error)).toBe('succeeded');
      expect(bmc.power()).toBe('off');
      expect(bmc.hookCalls()).toContain('set power 0');
    } finally {
      store.close();
    }
  });

  it('first power-off with a fresh store: the wake path is tested against the BMC and recorded before the request', async () => {
    bmc.setPower('on');
    const hyper = new FakeDriver({ hosts: [{ name: 'srv2' }] });
    const store = openSqliteStore(':memory:');
    const power = new ClusterPowerDriver([h('srv2', bmc.config({ off: 'hard' }))]);
    try {
      const r = await (runPlan(
        { policy: 'test', time: 0, steps: [{ id: 1, kind: 'powerOff', host: 'srv2', deps: [], reason: 'empty', by: 'test' }], hosts: [], notMoved: [] },
        { hypervisor: hyper, power, clock: systemClock, limits: { maxConcurrent: 1, maxPerHost: 1 }, migrate: { mode: 'live' }, wakePaths: store },
      ));
      expect(r.steps[0]!.state).toBe('succeeded');
      expect(store.wakePath('srv2')).toMatchObject({ ok: true, method: 'ipmi', key: power.wakePathKey('srv2') });
      expect(store.wakePath('srv2')!.reason).not.toContain(bmc.password);
      expect(bmc.power()).toBe('off');
    } finally {
      store.close();
    }
  });
});
