/**
 * DPM safety rules in the executor (src/executor/executor.ts), on the fake hypervisor with a
 * power driver that counts every call: the wake path is tested once (per store) before a
 * host's first power-off and a host that failed it is never powered off again until a passing
 * test or a power-config change; a woken host is back only when its hypervisor answers; a wake
 * that times out gets exactly one more power-on, then TIDE_WAKE_TIMEOUT; spareHosts empty
 * hosts stay on (executor and planner). Every "not powered off" claim counts powerOff calls.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Controller } from '../../src/app/controller.js';
import { compilePolicy, plan as makePlan } from '../../src/core/policy.js';
import type { Plan, Step } from '../../src/core/plan/types.js';
import { FakeDriver, ManualClock, type FakeVmSpec } from '../../src/drivers/fake/index.js';
import type { HostPower, PowerDriver, WakeTestResult } from '../../src/drivers/power.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { runPlan, wakePathRefusal, type ExecutorDeps, type PlanRun, type StepRun } from '../../src/executor/executor.js';
import { openSqliteStore, type Store } from '../../src/store/store.js';
import { cluster, host, vm } from '../helpers/cluster.js';

/** Counts calls; the wake-path test answers `wake` (per host), the key is `key` (per host). */
class CountingPower implements PowerDriver {
  readonly kind = 'counting';
  readonly calls: string[] = [];
  readonly state = new Map<string, HostPower>();
  readonly wake = new Map<string, WakeTestResult>();
  readonly key = new Map<string, string>();
  /** Called after each power-on request (e.g. to let the fake host come up, or not). */
  onPowerOn?: (host: string, nth: number) => void;
  wakeTest?: (h: string) => Promise<WakeTestResult>;
  constructor(withWakeTest = true) {
    if (withWakeTest) {
      this.wakeTest = async (h) => {
        this.calls.push(`wakeTest ${h}`);
        return this.wake.get(h) ?? { ok: true, method: 'test', reason: 'test: status answers' };
      };
    }
  }
  async status(h: string): Promise<HostPower> {
    this.calls.push(`status ${h}`);
    return this.state.get(h) ?? 'on';
  }
  async powerOn(h: string): Promise<void> {
    this.calls.push(`powerOn ${h}`);
    this.state.set(h, 'on');
    this.onPowerOn?.(h, this.count('powerOn', h));
  }
  async powerOff(h: string): Promise<void> {
    this.calls.push(`powerOff ${h}`);
    this.state.set(h, 'off');
  }
  wakePathKey(h: string): string {
    return this.key.get(h) ?? 'k1';
  }
  count(op: string, h?: string): number {
    return this.calls.filter((c) => (h === undefined ? c.startsWith(`${op} `) : c === `${op} ${h}`)).length;
  }
}

const off = (id: number, h: string, deps: number[] = []): Step => ({ id, kind: 'powerOff', host: h, deps, reason: 'test', by: 'test' });
const on = (id: number, h: string, deps: number[] = []): Step => ({ id, kind: 'powerOn', host: h, deps, reason: 'test', by: 'test' });
const mig = (id: number, v: string, from: string, to: string, deps: number[] = []): Step => ({ id, kind: 'migrate', vm: v, from, to, memMiB: 0, deps, reason: 'test', by: 'test' });
const plan = (steps: Step[]): Plan => ({ policy: 'test', time: 0, steps, hosts: [], notMoved: [] });
const byId = (r: PlanRun, id: number): StepRun => r.steps.find((s) => s.step.id === id)!;

const stores: Store[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function rig(vms: FakeVmSpec[] = [], o: { hosts?: string[]; store?: boolean; power?: CountingPower } = {}) {
  const hostNames = o.hosts ?? ['h1', 'h2', 'h3'];
  const driver = new FakeDriver({ hosts: hostNames.map((name) => ({ name })), vms });
  const power = o.power ?? new CountingPower();
  const clock = new VirtualClock(1_000_000);
  const store = o.store === false ? undefined : openSqliteStore(':memory:');
  if (store) stores.push(store);
  // A powered-off host stops answering; a powered-on one answers unless a test says otherwise.
  const origOff = power.powerOff.bind(power);
  power.powerOff = async (h) => {
    await origOff(h);
    driver.setHostUp(h, false);
  };
  const exec = (steps: Step[], extra: Partial<ExecutorDeps> = {}) =>
    clock.drive(runPlan(plan(steps), {
      hypervisor: driver, power, clock, limits: { maxConcurrent: 4, maxPerHost: 2 }, migrate: { mode: 'live' }, bootTimeoutSec: 60,
      ...(store ? { wakePaths: store } : {}), ...extra,
    }));
  return { driver, power, clock, store, exec };
}

describe('wake-path test before the first power-off', () => {
  it('passes → the host is powered off and the pass is recorded; the next power-off does not test again', async () => {
    const { driver, power, store, exec } = rig();
    const r1 = await exec([off(1, 'h2')]);
    expect(byId(r1, 1).state).toBe('succeeded');
    expect(power.count('wakeTest', 'h2')).toBe(1);
    expect(power.calls.indexOf('wakeTest h2')).toBeLessThan(power.calls.indexOf('powerOff h2'));
    expect(store!.wakePath('h2')).toMatchObject({ ok: true, method: 'test', key: 'k1' });
    // back on, off again: tested once per store, not per power-off
    power.onPowerOn = (h) => driver.setHostUp(h, true);
    expect(byId(await exec([on(1, 'h2')]), 1).state).toBe('succeeded');
    expect(byId(await exec([off(1, 'h2')]), 1).state).toBe('succeeded');
    expect(power.count('wakeTest', 'h2')).toBe(1);
    expect(power.count('powerOff', 'h2')).toBe(2);
  });

  it('fails → TIDE_POWER_REFUSED naming the cause, no power-off; never again (not even tested again) while the record stands', async () => {
    const { power, store, exec } = rig();
    power.wake.set('h2', { ok: false, method: 'ipmi', code: 'TIDE_POWER_FAILED', reason: 'the BMC refused the credentials' });
    const r1 = await exec([off(1, 'h2')]);
    expect(byId(r1, 1)).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
    expect(byId(r1, 1).error!.message).toMatch(/not powering off h2: its wake path failed its test \(ipmi\): the BMC refused the credentials; fix it, then run tide wake-test h2/);
    expect(power.count('powerOff')).toBe(0);
    expect(store!.wakePath('h2')).toMatchObject({ ok: false, reason: 'the BMC refused the credentials' });
    // The BMC is fixed, but nobody told Tide: still refused, without asking the driver anything.
    power.wake.delete('h2');
    const before = power.calls.length;
    const r2 = await exec([off(1, 'h2')]);
    expect(byId(r2, 1)).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
    expect(byId(r2, 1).error!.message).toMatch(/its wake path failed .*the BMC refused the credentials/);
    expect(power.calls.slice(before)).toEqual([]);
    expect(power.count('powerOff')).toBe(0);
  });

  it('cleared (a passing test recorded, or the record forgotten) → the power-off is allowed', async () => {
    const { power, store, exec } = rig();
    power.wake.set('h2', { ok: false, method: 'ipmi', reason: 'no answer' });
    power.wake.set('h3', { ok: false, method: 'ipmi', reason: 'no answer' });
    await exec([off(1, 'h2'), off(2, 'h3')]);
    expect(power.count('powerOff')).toBe(0);
    // h2: `tide wake-test h2` passed and replaced the record; h3: the record was forgotten, so
    // the next power-off tests again (and now passes).
    store!.recordWakePath({ host: 'h2', testedMs: 2_000_000, ok: true, reason: 'operator test passed', method: 'ipmi', key: 'k1' });
    store!.clearWakePath('h3');
    power.wake.clear();
    const r = await exec([off(1, 'h2'), off(2, 'h3')]);
    expect([byId(r, 1).state, byId(r, 2).state]).toEqual(['succeeded', 'succeeded']);
    expect(power.count('wakeTest', 'h2')).toBe(1); // only the first, failed one
    expect(power.count('wakeTest', 'h3')).toBe(2);
  });

  it('a changed power configuration (another wakePathKey) voids the failed record: tested again', async () => {
    const { power, exec } = rig();
    power.wake.set('h2', { ok: false, method: 'wol', reason: 'no status source' });
    await exec([off(1, 'h2')]);
    power.wake.delete('h2');
    power.key.set('h2', 'k2');
    const r = await exec([off(1, 'h2')]);
    expect(byId(r, 1).state).toBe('succeeded');
    expect(power.count('wakeTest', 'h2')).toBe(2);
  });

  it('a throwing wake test counts as failed (fail closed); a driver without wakeTest passes by its status answering', async () => {
    const thrower = new CountingPower();
    thrower.wakeTest = async () => { throw new Error('boom'); };
    const a = rig([], { power: thrower });
    const r = await a.exec([off(1, 'h2')]);
    expect(byId(r, 1).error?.code).toBe('TIDE_POWER_REFUSED');
    expect(a.power.count('powerOff')).toBe(0);
    const plain = rig([], { power: new CountingPower(false) });
    expect(byId(await plain.exec([off(1, 'h2')]), 1).state).toBe('succeeded');
    expect(plain.store!.wakePath('h2')).toMatchObject({ ok: true, method: 'counting' });
  });

  it('without a store the wake path is tested before every power-off', async () => {
    const { driver, power, exec } = rig([], { store: false });
    power.onPowerOn = (h) => driver.setHostUp(h, true);
    await exec([off(1, 'h2')]);
    await exec([on(1, 'h2')]);
    await exec([off(1, 'h2')]);
    expect(power.count('wakeTest', 'h2')).toBe(2);
    expect(power.count('powerOff', 'h2')).toBe(2);
  });

  it('the snapshot learns of a failed wake path (wakePathRefusal → Host.powerOffRefused) and tide stops proposing the power-off', async () => {
    const { power, store, exec } = rig();
    power.wake.set('h2', { ok: false, method: 'ipmi', reason: 'no answer' });
    await exec([off(1, 'h2')]);
    const why = wakePathRefusal(store, power, 'h2');
    expect(why).toMatch(/wake path failed .*no answer/);
    expect(wakePathRefusal(store, power, 'h3')).toBeUndefined();
    const T = 1_000_000;
    const snap = (refused?: string) => cluster([host('h1'), host('h2', refused ? { powerOffRefused: refused } : {}), host('h3')], [vm('a', 'h1', { history: Array(12).fill(300) })], [], T);
    const offs = (p: Plan) => p.steps.filter((s) => s.kind === 'powerOff').map((s) => (s as { host: string }).host).sort();
    expect(offs(makePlan(snap(), compilePolicy('tide'), T))).toEqual(['h2', 'h3']);
    const p = makePlan(snap(why), compilePolicy('tide'), T);
    expect(offs(p)).toEqual(['h3']);
    expect(p.hosts.find((h) => h.host === 'h2')).toMatchObject({ class: 'spare' });
    expect(p.hosts.find((h) => h.host === 'h2')!.reason).toMatch(/not powered off because .*wake path failed/);
    // and it counts as the spare: with spareHosts=1, h3 still goes off
    expect(offs(makePlan(snap(why), compilePolicy('tide:spareHosts=1'), T))).toEqual(['h3']);
  });
});

describe('wake: back only when the hypervisor answers; one retry, then TIDE_WAKE_TIMEOUT', () => {
  it('the power driver saying on is not enough: the step waits for the hypervisor', async () => {
    const { driver, power, clock, exec } = rig();
    driver.setHostUp('h3', false);
    power.state.set('h3', 'off');
    let upAt = -1;
    power.onPowerOn = (h) => {
      // The BMC says on at once; libvirtd answers 40 s later.
      void clock.sleep(40_000).then(() => { upAt = clock.now(); driver.setHostUp(h, true); });
    };
    const t0 = clock.now();
    const r = await exec([on(1, 'h3')]);
    expect(byId(r, 1).state).toBe('succeeded');
    expect(byId(r, 1).endedAt! - t0).toBeGreaterThanOrEqual(40_000);
    expect(byId(r, 1).endedAt).toBeGreaterThanOrEqual(upAt);
    expect(power.count('powerOn')).toBe(1);
  });

  it('listHosts says up but hostDomains does not answer yet: not back', async () => {
    const { driver, power, exec } = rig();
    driver.setHostUp('h3', false);
    power.state.set('h3', 'off');
    power.onPowerOn = (h) => {
      driver.setHostUp(h, true);
      driver.inject({ method: 'hostDomains', code: 'TIDE_HOST_UNREACHABLE', times: 3 });
    };
    const r = await exec([on(1, 'h3')]);
    expect(byId(r, 1).state).toBe('succeeded');
    // three hostDomains failures were waited out (listHosts up alone did not end the step)
    expect(driver.callsOf('hostDomains').length).toBeGreaterThanOrEqual(4);
  });

  it('times out once → one more power-on; answers after it → succeeded, with a note', async () => {
    const { driver, power, store, exec } = rig();
    driver.setHostUp('h3', false);
    power.state.set('h3', 'off');
    power.onPowerOn = (h, nth) => { if (nth === 2) driver.setHostUp(h, true); };
    const r = await exec([on(1, 'h3')]);
    expect(byId(r, 1).state).toBe('succeeded');
    expect(byId(r, 1).note).toMatch(/did not answer within 60 s of power-on; it answered after a second power-on/);
    expect(power.count('powerOn', 'h3')).toBe(2);
    expect(store!.wakePath('h3')).toBeUndefined();
  });

  it('times out twice → exactly two power-ons, failed with TIDE_WAKE_TIMEOUT, recorded as a failed wake path; never powered off again', async () => {
    const { driver, power, clock, store, exec } = rig();
    driver.setHostUp('h3', false);
    power.state.set('h3', 'off');
    const t0 = clock.now();
    const r = await exec([on(1, 'h3')]);
    expect(byId(r, 1)).toMatchObject({ state: 'failed', error: { code: 'TIDE_WAKE_TIMEOUT' } });
    expect(byId(r, 1).error!.message).toBe("h3's hypervisor did not answer within 60 s of power-on, nor within 60 s of a second power-on");
    expect(power.count('powerOn', 'h3')).toBe(2);
    expect(clock.now() - t0).toBeGreaterThanOrEqual(120_000);
    expect(store!.wakePath('h3')).toMatchObject({ ok: false });
    // An operator brings it up by hand; Tide still refuses to power it off.
    driver.setHostUp('h3', true);
    const r2 = await exec([off(1, 'h3')]);
    expect(byId(r2, 1)).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
    expect(byId(r2, 1).error!.message).toMatch(/wake path failed .*a wake timed out/);
    expect(power.count('powerOff')).toBe(0);
  });
});

describe('spareHosts stay on', () => {
  it('the executor refuses the power-off that would leave fewer empty hosts on than spareHosts', async () => {
    // h1 holds a VM; h2, h3, h4 are empty. spareHosts=2: one of them may go off, not two.
    const { power, exec } = rig([{ name: 'a', host: 'h1' }], { hosts: ['h1', 'h2', 'h3', 'h4'] });
    const r = await exec([off(1, 'h2'), off(2, 'h3')], { spareHosts: 2 });
    const states = [byId(r, 1), byId(r, 2)].map((x) => x.state).sort();
    expect(states).toEqual(['failed', 'succeeded']);
    const refused = [byId(r, 1), byId(r, 2)].find((x) => x.state === 'failed')!;
    expect(refused.error!.code).toBe('TIDE_POWER_REFUSED');
    expect(refused.error!.message).toMatch(/only 1 other empty powered-on host\(s\) would stay on; the policy keeps 2 spare\(s\) on/);
    expect(power.count('powerOff')).toBe(1);
  });

  it('a host that receives a VM in this plan is no spare', async () => {
    const { power, exec } = rig([{ name: 'a', host: 'h1' }, { name: 'b', host: 'h2' }], { hosts: ['h1', 'h2', 'h3'] });
    // b moves h2 → h3 and h2 goes off: h3 is not empty afterwards, h1 is not empty: no spare left
    const r = await exec([mig(1, 'b', 'h2', 'h3'), off(2, 'h2', [1])], { spareHosts: 1 });
    expect(byId(r, 1).state).toBe('succeeded');
    expect(byId(r, 2)).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
    expect(power.count('powerOff')).toBe(0);
  });

  it('spareHosts 0 (default) keeps no host on; enough spares → allowed', async () => {
    const a = rig([{ name: 'a', host: 'h1' }]);
    expect((await a.exec([off(1, 'h2'), off(2, 'h3')])).succeeded).toBe(2);
    const b = rig([{ name: 'a', host: 'h1' }]);
    expect((await b.exec([off(1, 'h2')], { spareHosts: 1 })).succeeded).toBe(1);
    expect(b.power.count('powerOff')).toBe(1);
  });

  it('the planner keeps spareHosts empty hosts on (tide), for any count of empty hosts', () => {
    const T = 1_000_000;
    for (let empty = 0; empty <= 4; empty++) {
      for (let spares = 0; spares <= 3; spares++) {
        const hs = [host('h0'), ...Array.from({ length: empty }, (_, i) => host(`e${i}`))];
        const p = makePlan(cluster(hs, [vm('a', 'h0', { history: Array(12).fill(900) })], [], T), compilePolicy(`tide:spareHosts=${spares}`), T);
        const offs = p.steps.filter((s) => s.kind === 'powerOff').length;
        expect(offs, `${empty} empty, spareHosts=${spares}`).toBe(Math.max(0, empty - spares));
      }
    }
  });
});

describe('the control loop (Controller, automatic) with the DPM rules', () => {
  it('a failed wake test refuses once; the next round no longer plans that power-off (Host.powerOffRefused) and counts the host as the spare; spareHosts reaches the executor', async () => {
    const clock = new ManualClock();
    // identical hosts: tide keeps the first empty one (c) as its spare
    const d = new FakeDriver({ clock, hosts: [{ name: 'a' }, { name: 'c' }, { name: 'e' }, { name: 'b' }], vms: [{ name: 'vm1', host: 'a', cpuPct: 50 }] });
    const power = new CountingPower();
    power.wake.set('b', { ok: false, method: 'ipmi', reason: 'the BMC does not answer' });
    const origOff = power.powerOff.bind(power);
    power.powerOff = async (h) => {
      await origOff(h);
      d.setHostUp(h, false);
    };
    const store = openSqliteStore(':memory:');
    stores.push(store);
    const c = new Controller({
      hypervisor: d, power, clock, store, policy: compilePolicy('tide:spareHosts=1'), mode: 'automatic', limits: { maxConcurrent: 1, maxPerHost: 1 },
      migrate: { mode: 'live' }, intervalSec: 300, bootTimeoutSec: 60,
    });
    const offPlanned = (t: Awaited<ReturnType<Controller['tick']>>) => t.plan.steps.filter((x) => x.kind === 'powerOff').map((x) => (x as { host: string }).host).sort();
    // round 1: c stays on as the spare; b and e are planned off; b's wake test fails → refused
    const t1 = await c.tick();
    expect(offPlanned(t1)).toEqual(['b', 'e']);
    const bRun = t1.run!.steps.find((r) => r.step.kind === 'powerOff' && r.step.host === 'b')!;
    expect(bRun).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
    expect(bRun.error!.message).toMatch(/wake path failed its test \(ipmi\): the BMC does not answer/);
    expect(power.calls.filter((x) => x.startsWith('powerOff'))).toEqual(['powerOff e']);
    expect(store.wakePath('b')).toMatchObject({ ok: false });
    // round 2: the snapshot says b must not go off; tide counts it as the spare and powers c off instead
    await clock.advance(300_000);
    const t2 = await c.tick();
    expect(t2.snapshot.hosts.find((h) => h.id === 'b')!.powerOffRefused).toMatch(/wake path failed .*the BMC does not answer/);
    expect(offPlanned(t2)).toEqual(['c']);
    expect(t2.plan.hosts.find((h) => h.host === 'b')).toMatchObject({ class: 'spare' });
    expect(t2.run!.failed).toBe(0);
    // round 3: nothing left to do; b was never powered off, and it was tested only once
    await clock.advance(300_000);
    const t3 = await c.tick();
    expect(offPlanned(t3)).toEqual([]);
    expect(power.calls.filter((x) => x.startsWith('powerOff'))).toEqual(['powerOff e', 'powerOff c']);
    expect(power.count('wakeTest', 'b')).toBe(1);
    expect((await d.listHosts()).filter((h) => h.up).map((h) => h.name).sort()).toEqual(['a', 'b']);
  });
});
