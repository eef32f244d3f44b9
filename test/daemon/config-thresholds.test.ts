/**
 * The telemetry-freeze thresholds (configuration section `freeze`) and the wake retry window
 * (`wakeRetrySec`) are configuration fields: their defaults are today's constants
 * (src/core/freeze.ts DEFAULT_FREEZE_OPTIONS, src/app/wake-refused.ts DEFAULT_WAKE_RETRY_SEC),
 * and a configured value reaches the daemon's controller — at start (settingsFromConfig) and at
 * a reload (what SIGHUP does) — and changes what a round decides, on the simulated office.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_WAKE_RETRY_SEC } from '../../src/app/wake-refused.js';
import { parseConfigText } from '../../src/config/load.js';
import { DEFAULT_FREEZE_OPTIONS } from '../../src/core/freeze.js';
import { settingsFromConfig } from '../../src/daemon/config.js';
import { simDaemon } from './helpers.js';

const base = 'hosts:\n  - { name: srv-1, uri: "qemu:///system" }\n';
const cfg = (extra = '') => parseConfigText(base + extra, 'tide.yaml');

describe('config: freeze thresholds and wakeRetrySec', () => {
  it('default to today\'s values', () => {
    const c = cfg();
    expect(c.freeze).toEqual({ ...DEFAULT_FREEZE_OPTIONS });
    expect(c.freeze.clockSkewSec).toBeUndefined();
    expect(c.wakeRetrySec).toBe(DEFAULT_WAKE_RETRY_SEC);
    expect(DEFAULT_WAKE_RETRY_SEC).toBe(6 * 3600);
    expect(DEFAULT_FREEZE_OPTIONS).toEqual({ silentRounds: 3, capacityTolerance: 0.05, maxGapIntervals: 3, healthyRoundsToThaw: 2 });
    const s = settingsFromConfig(c);
    expect(s.freeze).toEqual(c.freeze);
    expect(s.wakeRetrySec).toBe(DEFAULT_WAKE_RETRY_SEC);
  });

  it('are validated with path-named errors', () => {
    expect(() => cfg('freeze: { silentRounds: 0 }\n')).toThrow(/freeze\.silentRounds/);
    expect(() => cfg('freeze: { clockSkewSec: -1 }\n')).toThrow(/freeze\.clockSkewSec/);
    expect(() => cfg('freeze: { bogus: 1 }\n')).toThrow(/freeze/);
    expect(() => cfg('wakeRetrySec: -5\n')).toThrow(/wakeRetrySec/);
  });

  it('freeze.silentRounds reaches the controller: 1 silent round freezes (default: not before 3)', async () => {
    const configured = settingsFromConfig(cfg('freeze: { silentRounds: 1, healthyRoundsToThaw: 1 }\n'));
    for (const [freeze, frozenAfterOne] of [[undefined, false], [configured.freeze, true]] as const) {
      const d = simDaemon('recommend', { settings: freeze ? { freeze } : {} });
      await d.round();
      d.driver.setReachable('srv-4', false);
      await d.clock.advance(300_000);
      const r = await d.round();
      expect(r.tick!.freeze.frozen, `freeze ${JSON.stringify(freeze)}`).toBe(frozenAfterOne);
      if (frozenAfterOne) {
        expect(r.tick!.freeze.reasons.map((x) => x.code)).toEqual(['host-silent']);
        // healthyRoundsToThaw 1: one healthy round thaws
        d.driver.setReachable('srv-4', true);
        await d.clock.advance(300_000);
        expect((await d.round()).tick!.freeze.frozen).toBe(false);
      }
      d.store.close();
    }
  });

  it('a reload (SIGHUP) applies new freeze thresholds from the next round', async () => {
    const d = simDaemon('recommend');
    await d.round();
    d.driver.setReachable('srv-4', false);
    await d.clock.advance(300_000);
    expect((await d.round()).tick!.freeze.frozen).toBe(false);
    d.daemon.reload({ ...d.settings, ...{ freeze: settingsFromConfig(cfg('freeze: { silentRounds: 2 }\n')).freeze } });
    await d.clock.advance(300_000);
    expect((await d.round()).tick!.freeze.frozen).toBe(true);
    d.store.close();
  });

  it('wakeRetrySec reaches the controller: an off host whose wake failed is refused for that long', async () => {
    for (const [wakeRetrySec, refusedAfter10Min] of [[undefined, true], [settingsFromConfig(cfg('wakeRetrySec: 300\n')).wakeRetrySec, false]] as const) {
      const d = simDaemon('recommend', { settings: wakeRetrySec === undefined ? {} : { wakeRetrySec } });
      // empty srv-4 and power it off; its wake path failed now
      for (const v of await d.driver.hostDomains('srv-4')) d.driver.removeVm(v.name);
      await d.clock.drive(d.driver.powerOff('srv-4'));
      d.store.recordWakePath({ host: 'srv-4', testedMs: d.clock.now(), ok: false, reason: 'a wake timed out: test', method: 'sim', key: null }); // the SimDriver has no wakePathKey
      const host = async () => (await d.clock.drive(d.daemon.controller.collect({ record: false }))).hosts.find((h) => h.id === 'srv-4')!;
      expect((await host()).powerState).toBe('off');
      expect((await host()).wakeRefused).toMatch(/its wake failed/);
      await d.clock.advance(600_000);
      const after = await host();
      expect(after.wakeRefused === undefined, `wakeRetrySec ${wakeRetrySec}: ${after.wakeRefused}`).toBe(!refusedAfter10Min);
      d.store.close();
    }
  });
});
