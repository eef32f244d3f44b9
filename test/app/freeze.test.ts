/**
 * Telemetry freeze in the controller (issue 7, item 4), on the simulated office: a host whose
 * hypervisor is silent for 3 rounds, a clock jump (wall clock vs monotonic, backwards, a gap of
 * more than 3 intervals) and implausible usage freeze every automatic move — the plan has no
 * step, every would-be move is listed with code 'frozen', nothing runs — and the freeze is
 * visible (TickResult.freeze, observer.onFreeze); 2 healthy rounds unfreeze.
 */
import { describe, expect, it } from 'vitest';
import { Controller, type ControllerDeps, type TickFreeze } from '../../src/app/controller.js';
import type { Clock } from '../../src/core/clock.js';
import { compilePolicy } from '../../src/core/policy.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { officeScenario } from '../../src/sim/office.js';
import { openSqliteStore } from '../../src/store/store.js';

const INTERVAL = 300;

function setup(over: Partial<ControllerDeps> = {}, clockFor?: (c: VirtualClock) => Clock) {
  const scenario = officeScenario({ hosts: 4, days: 1 });
  const clock = new VirtualClock(0);
  const driver = new SimDriver(scenario, clock);
  const freezes: { frozen: boolean; codes: string[]; at: number }[] = [];
  const started: number[] = [];
  const c = new Controller({
    hypervisor: driver, power: driver, clock: clockFor ? clockFor(clock) : clock, policy: compilePolicy('tide'), mode: 'recommend',
    limits: { maxConcurrent: 2, maxPerHost: 1 }, migrate: { mode: 'live' }, intervalSec: INTERVAL,
    hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])), rules: scenario.rules, bootTimeoutSec: 900,
    observer: {
      onFreeze: (f: TickFreeze, at) => freezes.push({ frozen: f.frozen, codes: f.reasons.map((r) => r.code), at }),
      onStepStart: () => started.push(clock.now()),
    },
    ...over,
  });
  /** One round at the current time, then the clock moves on one interval (migrations finish on the way). */
  const round = async () => {
    const r = await clock.drive(c.tick());
    await clock.advance(INTERVAL * 1000);
    return r;
  };
  return { clock, driver, c, round, freezes, started };
}

describe('controller: telemetry freeze', () => {
  it('a host silent for 3 rounds freezes every move, with the reason; 2 healthy rounds unfreeze', async () => {
    const { driver, c, round, freezes } = setup();
    // The quiet office at night: tide wants to consolidate (recommend mode: the plan stays the same).
    const r0 = await round();
    expect(r0.plan.steps.length).toBeGreaterThan(0);
    expect(r0.freeze).toMatchObject({ frozen: false, reasons: [], sinceMs: null, reason: null });
    driver.setReachable('srv-4', false);
    const r1 = await round();
    const r2 = await round();
    // Silent 1 and 2 rounds: srv-4 is left alone (unknown), the rest is still planned.
    for (const r of [r1, r2]) {
      expect(r.freeze.frozen).toBe(false);
      expect(r.snapshot.hosts.find((h) => h.id === 'srv-4')!.powerState).toBe('unknown');
      expect(r.plan.steps.length).toBeGreaterThan(0);
    }
    const r3 = await round();
    expect(r3.freeze.frozen).toBe(true);
    expect(r3.freeze.sinceMs).toBe(r3.snapshot.time * 1000);
    expect(r3.freeze.reasons).toEqual([expect.objectContaining({ code: 'host-silent', host: 'srv-4' })]);
    expect(r3.freeze.reason).toMatch(/^srv-4 has not answered for 3 rounds \(900 s\) and is not known to be off/);
    expect(r3.snapshot.freeze).toEqual({ sinceSec: r3.snapshot.time, reasons: r3.freeze.reasons });
    expect(r3.plan.steps).toEqual([]);
    expect(r3.planId).toBeNull();
    const frozen = r3.plan.notMoved.filter((n) => n.code === 'frozen');
    expect(frozen.length).toBeGreaterThan(0);
    for (const n of frozen) expect(n.reason).toMatch(/telemetry freeze since t=\d+: srv-4 has not answered/);
    expect(c.freezeState.frozen).toBe(true);

    driver.setReachable('srv-4', true);
    const r4 = await round();
    expect(r4.freeze).toMatchObject({ frozen: true, sinceMs: r3.freeze.sinceMs, healthyRounds: 1, reasons: [expect.objectContaining({ code: 'recovering' })] });
    expect(r4.plan.steps).toEqual([]);
    const r5 = await round();
    expect(r5.freeze.frozen).toBe(false);
    expect(r5.plan.steps.length).toBeGreaterThan(0);
    expect(freezes.map((f) => [f.frozen, f.codes.join()])).toEqual([[true, 'host-silent'], [true, 'recovering'], [false, '']]);
  });

  it('no host answering for 3 rounds freezes too; the rounds without data do not count towards the thaw', async () => {
    const { driver, c, round, freezes } = setup();
    expect((await round()).freeze.frozen).toBe(false);
    for (const h of ['srv-1', 'srv-2', 'srv-3', 'srv-4']) driver.setReachable(h, false);
    for (let i = 1; i <= 3; i++) {
      await expect(round()).rejects.toMatchObject({ code: 'TIDE_HOST_UNREACHABLE' });
      expect(c.freezeState.frozen).toBe(i === 3);
    }
    expect(c.freezeState.reasons.map((r) => r.host)).toEqual(['srv-1', 'srv-2', 'srv-3', 'srv-4']);
    expect(c.freezeState.reason).toMatch(/^srv-1 has not answered for 3 rounds \(900 s\)/);
    for (const h of ['srv-1', 'srv-2', 'srv-3', 'srv-4']) driver.setReachable(h, true);
    const back = await round();
    expect(back.freeze).toMatchObject({ frozen: true, healthyRounds: 1, sinceMs: c.freezeState.sinceMs });
    expect(back.plan.steps).toEqual([]);
    expect((await round()).freeze.frozen).toBe(false);
    expect(freezes.map((f) => [f.frozen, f.codes[0] ?? ''])).toEqual([[true, 'host-silent'], [true, 'recovering'], [false, '']]);
  });

  it('automatic mode executes no step while frozen', async () => {
    const { driver, round, started } = setup({ mode: 'automatic', freeze: { silentRounds: 1 } });
    driver.setReachable('srv-4', false);
    const r = await round();
    expect(r.freeze.frozen).toBe(true);
    // The unfrozen planner would have consolidated the other hosts: those moves are listed, not run.
    expect(r.plan.notMoved.some((n) => n.code === 'frozen')).toBe(true);
    expect(r.run).toBeNull();
    expect(started).toEqual([]);
    // Once srv-4 is back and two rounds were healthy, the consolidation runs.
    driver.setReachable('srv-4', true);
    expect((await round()).run).toBeNull();
    const thawed = await round();
    expect(thawed.freeze.frozen).toBe(false);
    expect(thawed.run).not.toBeNull();
    expect(started.length).toBeGreaterThan(0);
  });

  it('a wall-clock jump the monotonic clock did not see freezes; so do time going back and a long gap', async () => {
    let offsetMs = 0;
    const { clock, round } = setup({}, (vc) => ({
      now: () => vc.now() + offsetMs, sleep: (ms, sig) => vc.sleep(ms, sig), monotonicMs: () => vc.now(),
    }));
    expect((await round()).freeze.frozen).toBe(false);
    expect((await round()).freeze.frozen).toBe(false);
    // NTP steps the clock one hour ahead during the interval.
    offsetMs = 3600_000;
    const j = await round();
    expect(j.freeze.frozen).toBe(true);
    expect(j.freeze.reasons).toEqual([{ code: 'clock-jump', reason: expect.stringMatching(/moved 3900.0 s since the previous round but 300.0 s really passed/) }]);
    expect(j.plan.steps).toEqual([]);
    expect((await round()).freeze.frozen).toBe(true); // recovering 1 of 2
    expect((await round()).freeze.frozen).toBe(false);
    // Backwards by 10 minutes.
    offsetMs -= 900_000;
    expect((await round()).freeze.reasons.map((r) => r.code)).toEqual(['clock-jump']);
    await round();
    expect((await round()).freeze.frozen).toBe(false);
    // A long gap (the process was stopped, or the virtual clock raced ahead): 4 intervals.
    await clock.advance(3 * INTERVAL * 1000);
    const g = await round();
    expect(g.freeze.reasons).toEqual([{ code: 'clock-jump', reason: expect.stringMatching(/^1200 s passed since the previous round ended, more than 3 intervals/) }]);
  });

  it('usage above capacity freezes (a VM reporting more CPU than its vCPUs can run)', async () => {
    const { driver, round } = setup();
    expect((await round()).freeze.frozen).toBe(false);
    const sample = driver.sample.bind(driver);
    driver.sample = async () => {
      const u = await sample();
      return { ...u, vms: u.vms.map((v, i) => (i === 0 ? { ...v, cpuPct: 180 } : v)) };
    };
    const r = await round();
    expect(r.freeze.frozen).toBe(true);
    expect(r.freeze.reasons).toEqual([expect.objectContaining({ code: 'usage-implausible', reason: expect.stringMatching(/reports \d+ MIPS of CPU in use, more than its/) })]);
    expect(r.plan.steps).toEqual([]);
  });

  it('a daemon that stopped while frozen restarts in the thaw (2 healthy rounds before any move)', async () => {
    const store = openSqliteStore(':memory:');
    try {
      store.saveDaemonStatus({
        pid: 1, host: 'ctl', startedMs: 0, state: 'stopped', heartbeatMs: 0, configFile: null, mode: 'recommend', intervalSec: INTERVAL,
        nextRoundMs: null, lastRound: null, window: null, frozen: { frozen: true, reason: 'srv-4 has not answered for 3 rounds' }, configError: null,
      });
      const { round } = setup({ store });
      const r1 = await round();
      expect(r1.freeze).toMatchObject({ frozen: true, healthyRounds: 1 });
      expect(r1.freeze.reason).toMatch(/after: frozen when the previous daemon last reported \(srv-4 has not answered for 3 rounds\)/);
      expect(r1.plan.steps).toEqual([]);
      const r2 = await round();
      expect(r2.freeze.frozen).toBe(false);
      expect(r2.plan.steps.length).toBeGreaterThan(0);
    } finally {
      store.close();
    }
  });

  it('the simulated office day is never frozen by healthy telemetry', async () => {
    const { round, freezes } = setup({ mode: 'automatic' });
    for (let i = 0; i < 288; i++) await round();
    expect(freezes).toEqual([]);
  });
});
