import { describe, expect, it } from 'vitest';
import { compilePolicy, plan } from '../../src/core/policy.js';
import { migrations, type Plan } from '../../src/core/plan/types.js';
import { cluster, host, vm, type VmOpts } from '../helpers/cluster.js';

const T = 1_000_000;
/** A VM with a flat 12-sample history (zero variance): its forecast is exactly `cpu`. */
const flat = (id: string, h: string | null, cpu: number, o: VmOpts = {}): ReturnType<typeof vm> => vm(id, h, { history: Array(12).fill(cpu), ...o });
const tide = (spec = 'tide') => compilePolicy(spec);
const moves = (p: Plan): string[][] => migrations(p).map((m) => [m.vm, m.from, m.to]);
const kinds = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'migrate' ? `migrate ${s.vm}→${s.to}` : s.kind === 'place' ? `place ${s.vm}` : `${s.kind} ${s.host}`));

describe('tide: overload relief', () => {
  it('moves the VM that fixes the overload with the least memory to copy', () => {
    // h0: 1200 + 500 + 400 = 2100 > 2000 (saturated). Goal 1800: removing c (400, 512 MiB)
    // suffices and is cheaper than b (1024 MiB); the big VM a is never needed.
    const snap = cluster([host('h0'), host('h1')], [
      flat('a', 'h0', 1200, { memMiB: 4000 }), flat('b', 'h0', 500, { memMiB: 1024 }), flat('c', 'h0', 400, { memMiB: 512 }), flat('d', 'h1', 100),
    ], [], T);
    const p = plan(snap, tide(), T);
    expect(moves(p)).toEqual([['c', 'h0', 'h1']]);
    expect(p.hosts[0]).toMatchObject({ host: 'h0', class: 'overloaded' });
    expect(migrations(p)[0]!.reason).toMatch(/h0 overloaded; c \(512 MiB\) is the cheapest fix/);
  });

  it('forecasts peaks: a volatile host is overloaded before it saturates', () => {
    // Mean ~1000 and current 1000 (half the host), but it swings ±800 MIPS.
    const volatile = [200, 1800, 300, 1700, 250, 1750, 300, 1800, 200, 1700, 300, 1000];
    const snap = cluster([host('h0'), host('h1', { cpuCores: 4 })], [vm('v', 'h0', { history: volatile, vcpus: 2, memMiB: 512 }), flat('w', 'h0', 100, { memMiB: 2000 }), flat('x', 'h1', 100)], [], T);
    const p = plan(snap, tide('tide:consolidate=false'), T);
    expect(p.hosts[0]).toMatchObject({ host: 'h0', class: 'overloaded' });
    expect(p.hosts[0]!.reason).toMatch(/forecast peak/);
    expect(moves(p)).toEqual([['v', 'h0', 'h1']]);
  });

  it('wakes the most efficient sleeping host when no active host has room, before moving', () => {
    const snap = cluster([host('h0'), host('slow', { powerState: 'off', mipsPerCore: 500, cpuCores: 4 }), host('fast', { powerState: 'off' })], [
      flat('a', 'h0', 1200, { memMiB: 2048 }), flat('b', 'h0', 900),
    ], [], T);
    const p = plan(snap, tide(), T);
    expect(kinds(p)).toEqual(['powerOn fast', 'migrate b→fast']);
    const [on, mig] = p.steps;
    expect(mig!.deps).toContain(on!.id);
  });

  it('explains a VM it cannot move, host by host', () => {
    const snap = cluster([host('h0'), host('h1', { memMiB: 512 })], [flat('a', 'h0', 1200, { memMiB: 2048 }), flat('b', 'h0', 900, { memMiB: 1024 })], [], T);
    for (const explain of [true, false]) {
      const p = plan(snap, tide(), T, { explain });
      expect(moves(p)).toEqual([]);
      expect(p.notMoved[0]).toMatchObject({ vm: 'b', code: 'no-host-fits' });
      // Every host is accounted for: h0 is the source (set aside), h1 lacks memory.
      expect(p.notMoved[0]!.rejections!.map((r) => [r.code, r.examples[0]!.host])).toEqual(
        expect.arrayContaining([['insufficient-memory', 'h1'], ['excluded-this-round', 'h0']]),
      );
    }
  });
});

describe('tide: consolidation and power', () => {
  const snap = cluster([host('h0'), host('h1'), host('h2')], [flat('a', 'h0', 300), flat('b', 'h1', 300)], [], T);

  it('empties a lightly loaded host and powers off every empty host', () => {
    const p = plan(snap, tide(), T);
    expect(kinds(p)).toEqual(['migrate a→h1', 'powerOff h0', 'powerOff h2']);
    const [mig, off] = p.steps;
    expect(off!.deps).toEqual([mig!.id]);
  });

  it('keeps spare hosts on', () => {
    const p = plan(snap, tide('tide:spareHosts=1'), T);
    expect(kinds(p)).toEqual(['migrate a→h1', 'powerOff h2']);
    expect(p.hosts.find((h) => h.class === 'spare')).toMatchObject({ host: 'h0' });
  });

  it('does not move a VM again within its cooldown', () => {
    const cooled = cluster([host('h0'), host('h1')], [flat('a', 'h0', 300, { lastMigratedAt: T - 60 }), flat('b', 'h1', 300)], [], T);
    expect(moves(plan(cooled, tide(), T))).toEqual([['b', 'h1', 'h0']]);
    expect(moves(plan(cooled, tide('tide:cooldownSec=30'), T))).toEqual([['a', 'h0', 'h1']]);
  });

  it('on a memory-bound cluster, makes room for a VM by moving a smaller one (one extra move empties a host)', () => {
    // v (1740 MiB) fits neither hole (873 on h0, 1130 on h1). Moving y (870) from h0 to h1
    // opens 1743 MiB on h0; h2 can then be emptied and switched off.
    const mem = (id: string, h: string, memMiB: number) => flat(id, h, 10, { memMiB });
    const snap = cluster([host('h0'), host('h1'), host('h2')], [
      mem('x', 'h0', 1740), mem('y', 'h0', 870), mem('z', 'h0', 613),
      mem('p', 'h1', 1740), mem('q', 'h1', 613), mem('r', 'h1', 613),
      mem('v', 'h2', 1740),
    ], [], T);
    const p = plan(snap, tide(), T);
    expect(moves(p)).toEqual([['y', 'h0', 'h1'], ['v', 'h2', 'h0']]);
    const [mY, mV, off] = p.steps;
    expect(mV!.deps).toContain(mY!.id);
    expect(off).toMatchObject({ kind: 'powerOff', host: 'h2' });
  });

  it('leaves a recently woken host alone for minOnSec (DPM hysteresis)', () => {
    const woken = cluster([host('h0', { onSinceSec: T - 600 }), host('h1')], [flat('a', 'h0', 300, { memMiB: 512 }), flat('b', 'h1', 300)], [], T);
    // Without hysteresis the cheaper host h0 is emptied; with it, h1 is.
    expect(moves(plan(woken, tide(), T))).toEqual([['a', 'h0', 'h1']]);
    expect(moves(plan(woken, tide('tide:minOnSec=3600'), T))).toEqual([['b', 'h1', 'h0']]);
  });

  it('stops below consolidateUtil: no evacuation that fills the receiver past it', () => {
    const full = cluster([host('h0'), host('h1')], [flat('a', 'h0', 900), flat('b', 'h1', 900)], [], T);
    expect(moves(plan(full, tide(), T))).toEqual([]); // 1800 = 90 % > 85 %
    expect(moves(plan(full, tide('tide:consolidateUtil=0.95'), T))).toHaveLength(1);
  });

  it('evacuates hosts in maintenance and never places VMs on them', () => {
    const m = cluster([host('h0', { maintenance: true }), host('h1'), host('h2')], [flat('a', 'h0', 300), flat('b', 'h0', 300), flat('c', 'h1', 100)], [], T);
    const p = plan(m, tide('tide:consolidate=false'), T);
    expect(moves(p).map((x) => x[0])).toEqual(['a', 'b']);
    expect(moves(p).every((x) => x[2] !== 'h0')).toBe(true);
    expect(p.hosts[0]).toMatchObject({ host: 'h0', class: 'maintenance' });
  });
});

describe('tide: rules', () => {
  it('never consolidates hard anti-affine VMs onto one host', () => {
    const snap = cluster([host('h0'), host('h1')], [flat('a', 'h0', 300), flat('b', 'h1', 300)], [{ kind: 'antiAffinity', id: 'ha', vms: ['a', 'b'], strength: 'hard' }], T);
    expect(moves(plan(snap, tide(), T))).toEqual([]);
    const soft = cluster(snap.hosts as never, snap.vms as never, [{ kind: 'antiAffinity', id: 'ha', vms: ['a', 'b'], strength: 'soft' }], T);
    expect(moves(plan(soft, tide(), T))).toHaveLength(1);
  });

  it('fixes a broken hard pin and respects it afterwards', () => {
    const snap = cluster([host('h0'), host('h1'), host('h2')], [flat('a', 'h0', 300), flat('b', 'h2', 100)], [{ kind: 'pin', id: 'lic', vm: 'a', hosts: ['h1'], strength: 'hard' }], T);
    const p = plan(snap, tide(), T);
    expect(moves(p)).toContainEqual(['a', 'h0', 'h1']);
    expect(migrations(p).find((m) => m.vm === 'a')!.reason).toMatch(/broke rule lic/);
  });

  it('never moves a VM that is not migratable', () => {
    const snap = cluster([host('h0'), host('h1')], [flat('a', 'h0', 300, { migratable: false }), flat('b', 'h1', 300)], [], T);
    expect(moves(plan(snap, tide(), T))).toEqual([['b', 'h1', 'h0']]);
  });
});

describe('tide arguments', () => {
  it('validates with messages that name the argument', () => {
    expect(() => compilePolicy('tide:targetUtil=2')).toThrow(/targetUtil/);
    expect(() => compilePolicy('tide:bogus=1')).toThrow(/bogus|Unrecognized/);
    expect(() => compilePolicy('nope')).toThrow(/unknown policy 'nope'/);
    expect(() => compilePolicy('npa:0.5')).toThrow(/takes no parameter/);
    expect(compilePolicy('tide:0.7').args).toMatchObject({ targetUtil: 0.7 });
  });
});
