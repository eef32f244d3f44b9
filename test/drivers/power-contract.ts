/**
 * The PowerDriver contract suite: what every power driver (sim, IPMI, Wake-on-LAN, …) must do.
 * A driver's test file calls
 *
 *   runPowerContract('ipmi', async () => ({
 *     driver,                    // the PowerDriver under test
 *     hosts: ['h1', 'h2'],       // two hosts it manages, which it may power on and off
 *     booting: false,            // true: right after powerOn of an off host, status is 'booting'
 *     settle: async (host) => {},// optional: let a host that was powered on finish booting
 *     broken: { driver, host },  // optional: a host whose power method fails (dead BMC …)
 *     teardown: async () => {},
 *   }));
 *
 * Cases: status after on/off, idempotence of both, unknown host → TIDE_NO_SUCH_HOST, failures
 * are DriverErrors with stable codes, the booting state when the driver has one. A case the
 * harness cannot support is skipped with a printed reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DriverErrorCode } from '../../src/drivers/errors.js';
import type { HostPower, PowerDriver } from '../../src/drivers/power.js';
import { driverRejection as rejection } from '../helpers/rejection.js';

export interface PowerHarness {
  driver: PowerDriver;
  hosts: readonly [string, string];
  booting: boolean;
  settle?: (host: string) => Promise<void>;
  broken?: { driver: PowerDriver; host: string };
  teardown: () => Promise<void>;
}

const STATES: readonly HostPower[] = ['on', 'off', 'booting', 'unknown'];
/** The codes a power failure may carry (stable: the CLI prints them, runbooks key on them). */
export const POWER_FAILURE_CODES: readonly DriverErrorCode[] = ['TIDE_POWER_FAILED', 'TIDE_HOST_UNREACHABLE', 'TIDE_TIMEOUT', 'TIDE_UNSUPPORTED'];


export function runPowerContract(name: string, setup: () => Promise<PowerHarness | null>): void {
  describe(`${name} power driver contract`, () => {
    let h: PowerHarness | null = null;
    beforeAll(async () => { h = await setup(); });
    afterAll(async () => { await h?.teardown(); });
    const need = (): PowerHarness => {
      if (!h) throw new Error('harness not set up');
      return h;
    };
    const on = async (host: string): Promise<void> => {
      const x = need();
      await x.driver.powerOn(host);
      await x.settle?.(host);
    };

    it('status is one of on/off/booting/unknown for every host', async (ctx) => {
      if (!h) return ctx.skip();
      for (const host of h.hosts) expect(STATES).toContain(await h.driver.status(host));
    });

    it('powerOff → off, powerOn → on (after boot), for both hosts', async (ctx) => {
      if (!h) return ctx.skip();
      for (const host of h.hosts) {
        await h.driver.powerOff(host);
        expect(await h.driver.status(host)).toBe('off');
        await on(host);
        expect(await h.driver.status(host)).toBe('on');
      }
    });

    it('hosts are independent: powering one off leaves the other on', async (ctx) => {
      if (!h) return ctx.skip();
      const [a, b] = h.hosts;
      await on(a);
      await on(b);
      await h.driver.powerOff(a);
      expect(await h.driver.status(a)).toBe('off');
      expect(await h.driver.status(b)).toBe('on');
      await on(a);
    });

    it('idempotent: powerOff of an off host and powerOn of an on host succeed and change nothing', async (ctx) => {
      if (!h) return ctx.skip();
      const [a] = h.hosts;
      await h.driver.powerOff(a);
      await h.driver.powerOff(a);
      expect(await h.driver.status(a)).toBe('off');
      await on(a);
      await h.driver.powerOn(a);
      expect(await h.driver.status(a)).toBe('on');
    });

    it('booting: right after powerOn of an off host the status is booting, then on', async (ctx) => {
      if (!h) return ctx.skip();
      if (!h.booting) {
        console.warn(`[skip] ${name} power contract: booting: this driver has no booting state (the method cannot tell it from on)`);
        return ctx.skip();
      }
      const [a] = h.hosts;
      await h.driver.powerOff(a);
      await h.driver.powerOn(a);
      expect(await h.driver.status(a)).toBe('booting');
      await h.driver.powerOn(a); // idempotent while booting too
      expect(['booting', 'on']).toContain(await h.driver.status(a));
      await h.settle?.(a);
      expect(await h.driver.status(a)).toBe('on');
    });

    it('an unknown host is TIDE_NO_SUCH_HOST for status, powerOn and powerOff', async (ctx) => {
      if (!h) return ctx.skip();
      for (const call of [() => need().driver.status('no-such-host-42'), () => need().driver.powerOn('no-such-host-42'), () => need().driver.powerOff('no-such-host-42')]) {
        const e = await rejection(call());
        expect(e.code).toBe('TIDE_NO_SUCH_HOST');
        expect(e.message).toContain('no-such-host-42');
      }
    });

    it('a failing power method rejects with a DriverError carrying a stable code and naming the host', async (ctx) => {
      if (!h) return ctx.skip();
      if (!h.broken) {
        console.warn(`[skip] ${name} power contract: failures: the harness has no failing power method to offer`);
        return ctx.skip();
      }
      const { driver, host } = h.broken;
      for (const call of [() => driver.status(host), () => driver.powerOn(host), () => driver.powerOff(host)]) {
        const e = await rejection(call());
        expect(POWER_FAILURE_CODES).toContain(e.code);
        expect(e.message).toContain(host);
      }
    });
  });
}
