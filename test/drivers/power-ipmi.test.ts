/**
 * The IPMI power driver against a real BMC: OpenIPMI's ipmi_sim on 127.0.0.1 (test/helpers/bmc.ts),
 * driven by the real ipmitool over RMCP+ (lanplus). Skips with a printed reason when ipmi_sim or
 * ipmitool is missing; fails instead under TIDE_REQUIRE_LAB=1.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IpmiPowerDriver } from '../../src/drivers/power/ipmi.js';
import { createPowerDriver } from '../../src/drivers/power/index.js';
import { bmcGate, freeUdpPort, startBmc, type Bmc } from '../helpers/bmc.js';
import { runPowerContract } from './power-contract.js';
import { driverRejection as rejection } from '../helpers/rejection.js';

const RUN = bmcGate('IPMI power driver (ipmi_sim + ipmitool)');


runPowerContract('ipmi', async () => {
  if (!RUN) return null;
  const a = await startBmc({ initial: 'on' });
  const b = await startBmc({ initial: 'off' });
  const dead = await freeUdpPort(); // nothing listens there
  const driver = new IpmiPowerDriver({ h1: a.config(), h2: b.config() }, { pollMs: 100 });
  const broken = new IpmiPowerDriver({ h3: { ...a.config(), port: dead, timeoutSec: 2 } });
  return { driver, hosts: ['h1', 'h2'], booting: false, broken: { driver: broken, host: 'h3' }, teardown: async () => { await a.stop(); await b.stop(); } };
});

describe.runIf(RUN)('IPMI power driver: methods, secrets, failures', () => {
  let bmc: Bmc;
  beforeAll(async () => { bmc = await startBmc({ initial: 'on' }); });
  afterAll(async () => { await bmc?.stop(); });

  it('no argv it builds holds the password; it goes to ipmitool through the environment (-E)', () => {
    const d = new IpmiPowerDriver({ h: bmc.config() });
    for (const action of ['status', 'on', 'soft', 'off'] as const) {
      const argv = d.argv('h', action);
      expect(argv.some((x) => x.includes(bmc.password))).toBe(false);
      expect(argv).toContain('-E');
      expect(argv.slice(-3)).toEqual(['chassis', 'power', action]);
      expect(argv).toEqual(expect.arrayContaining(['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(bmc.port), '-U', bmc.user]));
    }
  });

  it('soft off sends an ACPI shutdown (chassis power soft) and no hard off when the OS obeys', async () => {
    bmc.setPower('on');
    bmc.setIgnoreSoft(false);
    const d = new IpmiPowerDriver({ h: bmc.config({ off: 'soft', softGraceSec: 10 }) }, { pollMs: 100 });
    const before = bmc.hookCalls().length;
    await d.powerOff('h');
    const calls = bmc.hookCalls().slice(before);
    expect(calls).toContain('set shutdown 1');
    expect(calls).not.toContain('set power 0');
    expect(bmc.power()).toBe('off');
  });

  it('soft off falls back to a hard off when the host ignores ACPI for the whole grace', async () => {
    bmc.setPower('on');
    bmc.setIgnoreSoft(true);
    const d = new IpmiPowerDriver({ h: bmc.config({ off: 'soft', softGraceSec: 0.3 }) }, { pollMs: 100 });
    const before = bmc.hookCalls().length;
    await d.powerOff('h');
    const calls = bmc.hookCalls().slice(before);
    expect(calls.indexOf('set shutdown 1')).toBeGreaterThanOrEqual(0);
    expect(calls.indexOf('set power 0')).toBeGreaterThan(calls.indexOf('set shutdown 1'));
    expect(bmc.power()).toBe('off');
    bmc.setIgnoreSoft(false);
  });

  it('off: hard pulls the plug without an ACPI request', async () => {
    bmc.setPower('on');
    const d = new IpmiPowerDriver({ h: bmc.config({ off: 'hard' }) });
    const before = bmc.hookCalls().length;
    await d.powerOff('h');
    const calls = bmc.hookCalls().slice(before);
    expect(calls).toContain('set power 0');
    expect(calls).not.toContain('set shutdown 1');
  });

  it('powerOn of an on host sends no power command (idempotent by reading first)', async () => {
    bmc.setPower('on');
    const d = new IpmiPowerDriver({ h: bmc.config() });
    const before = bmc.hookCalls().length;
    await d.powerOn('h');
    expect(bmc.hookCalls().slice(before).filter((c) => c.startsWith('set '))).toEqual([]);
  });

  it('password from an environment variable (passwordEnv)', async () => {
    bmc.setPower('off');
    const { passwordFile: _, ...cfg } = bmc.config();
    const d = new IpmiPowerDriver({ h: { ...cfg, passwordEnv: 'BMC_PW_TEST' } }, { env: { BMC_PW_TEST: bmc.password } });
    expect(await d.status('h')).toBe('off');
    const missing = new IpmiPowerDriver({ h: { ...cfg, passwordEnv: 'BMC_PW_TEST' } }, { env: {} });
    const e = await rejection(missing.status('h'));
    expect(e.code).toBe('TIDE_POWER_FAILED');
    expect(e.message).toContain('BMC_PW_TEST is not set');
  });

  it('a wrong password is TIDE_POWER_FAILED (credentials refused); neither password reaches the message', async () => {
    const { passwordFile: _, ...cfg } = bmc.config();
    const wrong = 'wrong-Secret-77';
    const d = new IpmiPowerDriver({ h: { ...cfg, passwordEnv: 'P' } }, { env: { P: wrong } });
    const e = await rejection(d.status('h'));
    expect(e.code).toBe('TIDE_POWER_FAILED');
    expect(e.message).toMatch(/refused the credentials of user 'admin'/);
    const text = `${e.message} ${JSON.stringify(e.detail)} ${e.stack ?? ''}`;
    expect(text).not.toContain(wrong);
    expect(text).not.toContain(bmc.password);
  });

  it('an unknown user is refused the same way', async () => {
    const d = new IpmiPowerDriver({ h: bmc.config({ user: 'nobody' }) });
    const e = await rejection(d.powerOn('h'));
    expect(e.code).toBe('TIDE_POWER_FAILED');
    expect(e.message).not.toContain(bmc.password);
  });

  it('a BMC that does not answer is TIDE_HOST_UNREACHABLE, password-free', async () => {
    const d = new IpmiPowerDriver({ h: bmc.config({ port: await freeUdpPort(), timeoutSec: 2 }) });
    const e = await rejection(d.status('h'));
    expect(e.code).toBe('TIDE_HOST_UNREACHABLE');
    expect(e.message).toContain('127.0.0.1');
    expect(e.message).not.toContain(bmc.password);
  });

  it('ipmitool missing or the password file unreadable: TIDE_POWER_FAILED with the reason', async () => {
    const e1 = await rejection(new IpmiPowerDriver({ h: bmc.config() }, { ipmitool: '/nonexistent/ipmitool' }).status('h'));
    expect(e1.code).toBe('TIDE_POWER_FAILED');
    expect(e1.message).toContain('ENOENT');
    const e2 = await rejection(new IpmiPowerDriver({ h: bmc.config({ passwordFile: '/nonexistent/pw' }) }).status('h'));
    expect(e2.message).toContain('cannot read the BMC password file /nonexistent/pw');
  });

  it('the configured driver routes hosts by power.kind; kind none reads unknown and refuses on/off', async () => {
    bmc.setPower('off');
    const d = createPowerDriver([
      { name: 'srv1', bootSec: 60, power: bmc.config() },
      { name: 'srv2', bootSec: 60, power: { kind: 'none' } },
    ]);
    expect(d.methodOf('srv1')).toBe('ipmi');
    await d.powerOn('srv1');
    expect(await d.status('srv1')).toBe('on');
    expect(bmc.power()).toBe('on');
    expect(await d.status('srv2')).toBe('unknown');
    expect((await rejection(d.powerOff('srv2'))).code).toBe('TIDE_UNSUPPORTED');
    expect((await rejection(d.status('srv9'))).code).toBe('TIDE_NO_SUCH_HOST');
  });
});

describe.runIf(RUN)('BMC test helper', () => {
  it('stop() leaves no ipmi_sim process behind', async () => {
    const b = await startBmc();
    expect(existsSync(`/proc/${b.pid}`)).toBe(true);
    await b.stop();
    expect(existsSync(`/proc/${b.pid}`)).toBe(false);
  });
});

describe('BMC gate', () => {
  it('a missing program skips with the reason printed, and fails under TIDE_REQUIRE_LAB=1', () => {
    const saved = process.env.TIDE_REQUIRE_LAB;
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      delete process.env.TIDE_REQUIRE_LAB;
      expect(bmcGate('gate test', ['no-such-ipmi-sim-xyz'])).toBe(false);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining("[skip] gate test: 'no-such-ipmi-sim-xyz' not found"));
      process.env.TIDE_REQUIRE_LAB = '1';
      expect(() => bmcGate('gate test', ['no-such-ipmi-sim-xyz'])).toThrow(/TIDE_REQUIRE_LAB=1.*no-such-ipmi-sim-xyz/);
    } finally {
      warn.mockRestore();
      if (saved === undefined) delete process.env.TIDE_REQUIRE_LAB;
      else process.env.TIDE_REQUIRE_LAB = saved;
    }
  });
});
