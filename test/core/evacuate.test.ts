// planEvacuation / planPlacement: pure planning of the operator's direct requests, on
// hand-made snapshots (no driver). Each case pins down one filter or ordering decision.
import { describe, expect, it } from 'vitest';
import { planEvacuation, planPlacement } from '../../src/core/plan/evacuate.js';
import { migrations } from '../../src/core/plan/types.js';
import { cluster, host, vm } from '../helpers/cluster.js';

const moves = (p: ReturnType<typeof planEvacuation>): string[][] => migrations(p).map((m) => [m.vm, m.to]);

describe('planEvacuation', () => {
  it('CPU headroom decides, not only memory: the roomier host whose CPU is full is skipped', () => {
    // h1 has 8 GiB free but 1900 of 2000 MIPS in use; h2 less memory, idle CPU.
    const snap = cluster(
      [host('h0'), host('h1', { memMiB: 16384 }), host('h2', { memMiB: 4096 })],
      [vm('x', 'h0', { cpu: 300, memMiB: 1024 }), vm('busy', 'h1', { cpu: 1900, memMiB: 1024 })],
    );
    const p = planEvacuation(snap, { host: 'h0' });
    expect(moves(p)).toEqual([['x', 'h2']]);
    expect(p.assessments.x!.find((a) => a.host === 'h1')).toMatchObject({ fits: false, by: 'cpu', code: 'insufficient-cpu' });
    // the limit is what rejected h1: above its load it passes (and scores lower than idle h2)
    const loose = planEvacuation(snap, { host: 'h0', cpuLimit: 1.5 });
    expect(loose.assessments.x!.find((a) => a.host === 'h1')).toMatchObject({ fits: true });
    expect(moves(loose)).toEqual([['x', 'h2']]);
  });

  it('later decisions see earlier moves: anti-affine VMs are split, and a third stays with the rule named', () => {
    const rules = [{ kind: 'antiAffinity' as const, id: 'trio', vms: ['a', 'b', 'c'], strength: 'hard' as const }];
    const snap = cluster(
      [host('h0'), host('h1', { memMiB: 16384 }), host('h2')],
      [vm('a', 'h0'), vm('b', 'h0'), vm('c', 'h0')],
      rules,
    );
    const p = planEvacuation(snap, { host: 'h0' });
    expect(moves(p)).toEqual([['a', 'h1'], ['b', 'h2']]);
    expect(p.notMoved).toEqual([expect.objectContaining({ vm: 'c', code: 'no-host-fits' })]);
    const codes = p.notMoved[0]!.rejections!.map((r) => [r.code, r.hosts]);
    expect(codes).toEqual(expect.arrayContaining([['anti-affinity', 2], ['evacuating', 1]]));
  });

  it('only migratable VMs move; maintenance, off, excluded, unavailable and disallowed hosts never receive', () => {
    const snap = cluster(
      [host('h0'), host('m', { maintenance: true }), host('o', { powerState: 'off' }), host('x', { excluded: true }), host('u'), host('n'), host('ok')],
      [vm('v', 'h0'), vm('pinned', 'h0', { migratable: false })],
    );
    const p = planEvacuation(snap, { host: 'h0', targets: ['m', 'o', 'x', 'u', 'ok'], unavailable: { u: 'u does not answer (connection refused)' } });
    expect(moves(p)).toEqual([['v', 'ok']]);
    expect(p.notMoved).toEqual([expect.objectContaining({ vm: 'pinned', code: 'not-migratable' })]);
    const why = Object.fromEntries(p.assessments.v!.map((a) => [a.host, a.fits ? 'fits' : a.code]));
    expect(why).toEqual({ ok: 'fits', h0: 'evacuating', m: 'host-maintenance', o: 'host-off', x: 'host-excluded', u: 'unavailable', n: 'not-allowed' });
    expect(p.assessments.v!.find((a) => a.host === 'u')!.reason).toBe('u: u does not answer (connection refused)');
    // the steps are independent migrations with the planner's reason
    expect(p.steps).toEqual([expect.objectContaining({ kind: 'migrate', vm: 'v', from: 'h0', to: 'ok', deps: [], by: 'evacuate' })]);
  });

  it('largest memory first, so the big VM gets the only host it fits on', () => {
    // h1 fits the big one only while empty; placing small first (spread) would take it.
    const snap = cluster(
      [host('h0', { memMiB: 8192 }), host('h1', { memMiB: 4096 }), host('h2', { memMiB: 2048 })],
      [vm('small', 'h0', { memMiB: 1024 }), vm('big', 'h0', { memMiB: 3584 })],
    );
    expect(moves(planEvacuation(snap, { host: 'h0' }))).toEqual([['big', 'h1'], ['small', 'h2']]);
  });
});

describe('planPlacement', () => {
  it('picks the best host that passes every filter, with every other host’s verdict', () => {
    const snap = cluster(
      [host('full', { memMiB: 2048 }), host('busy'), host('free')],
      [vm('new', null, { cpu: 1000, memMiB: 1024 }), vm('f', 'full', { memMiB: 1536 }), vm('b', 'busy', { cpu: 1500 })],
    );
    const p = planPlacement(snap, 'new');
    expect(p.steps).toEqual([expect.objectContaining({ kind: 'place', vm: 'new', to: 'free', by: 'place' })]);
    expect(p.assessments.new!.map((a) => [a.host, a.fits ? 'fits' : a.code])).toEqual([['free', 'fits'], ['full', 'insufficient-memory'], ['busy', 'insufficient-cpu']]);
    expect((p.steps[0] as { reason: string }).reason).toMatch(/^best host free fits: CPU 50 % and memory 25 % after .*; not full \(memory: insufficient-memory\), busy \(cpu: insufficient-cpu\)$/);
  });

  it('no host fits: no step, a no-host-fits entry with the rejections; a placed VM is refused', () => {
    const snap = cluster([host('h0', { memMiB: 1024 })], [vm('huge', null, { memMiB: 4096 }), vm('here', 'h0', { memMiB: 512 })]);
    const p = planPlacement(snap, 'huge');
    expect(p.steps).toEqual([]);
    expect(p.notMoved).toEqual([expect.objectContaining({ vm: 'huge', host: null, code: 'no-host-fits' })]);
    expect(() => planPlacement(snap, 'here')).toThrow(/already runs on h0/);
  });
});
