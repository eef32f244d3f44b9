/**
 * A host whose wake failed is not proposed for power-on every round (docs/drivers.md, "DPM
 * safety rules"; src/app/wake-refused.ts). Planner: an off host marked Host.wakeRefused is never
 * woken, by tide (host verdict and why-not name the reason) nor by another strategy (the
 * host-usable filter). Control loop: after a TIDE_WAKE_TIMEOUT (two power-ons, two boot
 * timeouts) the next rounds propose no power-on of that host and say why (host verdict; a VM's
 * why-not names the refusal when no earlier placement filter rejected the host); a passing wake-test
 * clears it, and so does the end of the retry window. Every "not woken" claim counts powerOn calls.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Controller, type TickResult } from '../../src/app/controller.js';
import { wakeRefusal } from '../../src/app/wake-refused.js';
import type { Host } from '../../src/core/model/types.js';
import { compilePolicy, plan as makePlan } from '../../src/core/policy.js';
import type { Plan } from '../../src/core/plan/types.js';
import { FakeDriver } from '../../src/drivers/fake/index.js';
import type { HostPower, PowerDriver, WakeTestResult } from '../../src/drivers/power.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { openSqliteStore, type Store } from '../../src/store/store.js';
import { cluster, host, vm } from '../helpers/cluster.js';

const stores: Store[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

const powerOns = (p: Plan): string[] => p.steps.filter((s) => s.kind === 'powerOn').map((s) => (s as { host: string }).host);

describe('the planner never wakes a host marked wakeRefused', () => {
  const T = 1_000_000;
  // h1 runs at 95 % (> overloadUtil 80 %): relief needs a second host, and h2 (off) is the only one
  const snap = (h2: Partial<Host>) => cluster(
    [host('h1'), host('h2', { powerState: 'off', ...h2 })],
    [vm('a', 'h1', { history: Array(12).fill(950) }), vm('b', 'h1', { history: Array(12).fill(950) })], [], T,
  );
  const why = 'its wake failed at 2026-12-01T00:00:00.000Z (a wake timed out)';

  it('tide: no power-on, the host verdict and the VM\'s why-not say why', () => {
    expect(powerOns(makePlan(snap({}), compilePolicy('tide:overloadUtil=0.8'), T))).toEqual(['h2']);
    const p = makePlan(snap({ wakeRefused: why }), compilePolicy('tide:overloadUtil=0.8'), T);
    expect(p.steps).toEqual([]);
    expect(p.hosts.find((h) => h.host === 'h2')).toMatchObject({ class: 'off', reason: `off, not woken: ${why}` });
    const nm = p.notMoved.find((n) => n.host === 'h1');
    expect(nm, JSON.stringify(p.notMoved)).toBeDefined();
    expect(JSON.stringify(nm)).toMatch(/h2 is off and is not woken: its wake failed/);
  });

  it('other strategies (host-usable filter): thr-mmt wakes h2 only when it is not refused', () => {
    const pol = compilePolicy('thr-mmt:0.8');
    expect(powerOns(makePlan(snap({}), pol, T))).toEqual(['h2']);
    expect(powerOns(makePlan(snap({ wakeRefused: why }), pol, T))).toEqual([]);
  });

  it('a refused host is not interchangeable with an identical off host: the other one is woken', () => {
    const s = cluster(
      [host('h1'), host('h2', { powerState: 'off', wakeRefused: why }), host('h3', { powerState: 'off' })],
      [vm('a', 'h1', { history: Array(12).fill(950) }), vm('b', 'h1', { history: Array(12).fill(950) })], [], T,
    );
    // minOffSec=0: tide looks at one off host per class of identical empty hosts
    for (const pol of ['tide:overloadUtil=0.8', 'tide:overloadUtil=0.8,minOffSec=0', 'thr-mmt:0.8']) expect(powerOns(makePlan(s, compilePolicy(pol), T)), pol).toEqual(['h3']);
  });
});

/** BMC that accepts power-on requests but whose host never boots (reads 'off' again). */
class DeadWakePower implements PowerDriver {
  readonly kind = 'dead-wake';
  readonly calls: string[] = [];
  readonly state = new Map<string, HostPower>([['b', 'off']]);
  async status(h: string): Promise<HostPower> {
    return this.state.get(h) ?? 'on';
  }
  async powerOn(h: string): Promise<void> {
    this.calls.push(`powerOn ${h}`);
  }
  async powerOff(h: string): Promise<void> {
    this.calls.push(`powerOff ${h}`);
    this.state.set(h, 'off');
  }
  async wakeTest(): Promise<WakeTestResult> {
    return { ok: true, method: 'test', reason: 'status answers' };
  }
  wakePathKey(): string {
    return 'k1';
  }
}

describe('the control loop after a wake that timed out', () => {
  const setup = (wakeRetrySec?: number) => {
    const clock = new VirtualClock(1_000_000);
    // a (4 cores) runs four busy 1-vCPU VMs (95 %: over overloadUtil 80 % and targetUtil 90 %); b is off: tide wants to wake b for relief
    const d = new FakeDriver({
      clock, hosts: [{ name: 'a', cpuCores: 4 }, { name: 'b', cpuCores: 4, up: false }],
      vms: ['v1', 'v2', 'v3', 'v4'].map((name) => ({ name, host: 'a', vcpus: 1, cpuPct: 95 })),
    });
    const power = new DeadWakePower();
    const store = openSqliteStore(':memory:');
    stores.push(store);
    const c = new Controller({
      hypervisor: d, power, clock, store, policy: compilePolicy('tide:overloadUtil=0.8'), mode: 'automatic', limits: { maxConcurrent: 2, maxPerHost: 2 },
      migrate: { mode: 'live' }, intervalSec: 300, bootTimeoutSec: 60, ...(wakeRetrySec === undefined ? {} : { wakeRetrySec }),
    });
    const round = async (): Promise<TickResult> => {
      const r = await clock.drive(c.tick());
      await clock.runUntil(clock.now() + 300_000);
      return r;
    };
    return { clock, power, store, round, warmUp: async (): Promise<void> => {
      // the fake's first sample has no CPU-time delta yet: usage unknown, nothing is planned
      expect((await round()).plan.steps).toEqual([]);
    } };
  };

  it('TIDE_WAKE_TIMEOUT → the next rounds propose no power-on of that host and say why; a passing wake-test clears it', async () => {
    const { clock, power, store, round, warmUp } = setup();
    await warmUp();
    const r1 = await round();
    expect(powerOns(r1.plan)).toEqual(['b']);
    const wake = r1.run!.steps.find((s) => s.step.kind === 'powerOn')!;
    expect(wake).toMatchObject({ state: 'failed', error: { code: 'TIDE_WAKE_TIMEOUT' } });
    expect(power.calls).toEqual(['powerOn b', 'powerOn b']);
    expect(store.wakePath('b')).toMatchObject({ ok: false });
    for (let i = 0; i < 3; i++) {
      const r = await round();
      const b = r.snapshot.hosts.find((h) => h.id === 'b')!;
      expect(b.powerState).toBe('off');
      expect(b.wakeRefused).toMatch(/its wake failed at .*a wake timed out.*not retried before .*unless tide wake-test b passes/);
      expect(powerOns(r.plan)).toEqual([]);
      expect(r.plan.hosts.find((h) => h.host === 'b')).toMatchObject({ class: 'off' });
      expect(r.plan.hosts.find((h) => h.host === 'b')!.reason).toMatch(/not woken: its wake failed/);
      expect(JSON.stringify(r.plan.notMoved)).toMatch(/b is off and is not woken: its wake failed/);
    }
    expect(power.calls).toEqual(['powerOn b', 'powerOn b']);
    // the operator fixed the BMC and `tide wake-test b` passed (it records a passing test)
    store.recordWakePath({ host: 'b', testedMs: clock.now(), ok: true, reason: 'operator test passed', method: 'test', key: 'k1' });
    const r5 = await round();
    expect(r5.snapshot.hosts.find((h) => h.id === 'b')!.wakeRefused).toBeUndefined();
    expect(powerOns(r5.plan)).toEqual(['b']);
  });

  it('the retry window ends: one more wake is proposed (and a new failure starts a new window)', async () => {
    const { power, round, warmUp } = setup(900);
    await warmUp();
    await round(); // fails at about t0 + 120 s (two 60 s boot timeouts)
    expect(powerOns((await round()).plan)).toEqual([]); // within 900 s
    expect(powerOns((await round()).plan)).toEqual([]);
    const r4 = await round(); // more than 900 s after the failure
    expect(powerOns(r4.plan)).toEqual(['b']);
    expect(power.calls).toEqual(['powerOn b', 'powerOn b', 'powerOn b', 'powerOn b']);
    expect(powerOns((await round()).plan)).toEqual([]);
  });

  it('wakeRefusal: only off/standby hosts with a current failed record inside the window', () => {
    const store = openSqliteStore(':memory:');
    stores.push(store);
    const power = new DeadWakePower();
    store.recordWakePath({ host: 'b', testedMs: 1000, ok: false, reason: 'a wake timed out: x', method: 'ipmi', key: 'k1' });
    expect(wakeRefusal(store, power, 'b', 'off', 2000, 10)).toMatch(/its wake failed/);
    expect(wakeRefusal(store, power, 'b', 'standby', 2000, 10)).toMatch(/its wake failed/);
    expect(wakeRefusal(store, power, 'b', 'waking', 2000, 10)).toBeUndefined();
    expect(wakeRefusal(store, power, 'b', 'on', 2000, 10)).toBeUndefined();
    expect(wakeRefusal(store, power, 'b', 'off', 11_000, 10)).toBeUndefined();
    expect(wakeRefusal(store, power, 'c', 'off', 2000, 10)).toBeUndefined();
    // another power configuration (key) voids the record
    expect(wakeRefusal(store, { ...power, status: power.status, powerOn: power.powerOn, powerOff: power.powerOff, wakePathKey: () => 'k2' }, 'b', 'off', 2000, 10)).toBeUndefined();
  });
});
