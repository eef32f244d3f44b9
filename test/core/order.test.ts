import { describe, expect, it } from 'vitest';
import { ClusterState } from '../../src/core/model/state.js';
import { compactMoves, orderPlan } from '../../src/core/plan/order.js';
import type { MigrateStep } from '../../src/core/plan/types.js';
import { cluster, host, vm } from '../helpers/cluster.js';

describe('plan ordering', () => {
  // Two full hosts swap their VMs: neither move can go first.
  const swap = (spare: boolean) => cluster(
    [host('h0', { memMiB: 4096 }), host('h1', { memMiB: 4096 }), ...(spare ? [host('h2', { memMiB: 4096 })] : [])],
    [vm('a', 'h0', { memMiB: 3000 }), vm('b', 'h1', { memMiB: 3000 })],
  );
  const intent = (snap: ReturnType<typeof swap>) => {
    const s = new ClusterState(snap);
    return { s, moves: [{ vm: s.vmIndex('a'), to: s.hostIndex('h1'), reason: 'x', by: 't' }, { vm: s.vmIndex('b'), to: s.hostIndex('h0'), reason: 'y', by: 't' }] };
  };

  it('breaks a swap cycle through a spare host', () => {
    const { s, moves } = intent(swap(true));
    const r = orderPlan(s, { moves });
    const m = r.steps as MigrateStep[];
    expect(m.map((x) => `${x.vm}:${x.from}→${x.to}`)).toEqual(['a:h0→h2', 'b:h1→h0', 'a:h2→h1']);
    expect(m[0]!.reason).toMatch(/via h2 to break a cycle/);
    // b may only start once a has left h0; a's second hop once b has left h1.
    expect(m[1]!.deps).toEqual([m[0]!.id]);
    expect(m[2]!.deps).toEqual([m[0]!.id, m[1]!.id]);
    expect(r.deferred).toEqual([]);
  });

  it('defers a move it cannot order and says why', () => {
    const { s, moves } = intent(swap(false));
    const r = orderPlan(s, { moves });
    // Once a is deferred, b does not fit either while a stays: both wait, and no step ever
    // runs into an overfull host.
    expect(r.deferred.map((d) => [d.vm, d.code])).toEqual([['a', 'cycle-deferred'], ['b', 'cycle-deferred']]);
    expect(r.deferred[0]!.reason).toMatch(/needs room that only other pending moves free/);
    expect(r.steps).toEqual([]);
  });

  it('powers a host off only after everything has left it, and wakes a host before filling it', () => {
    const snap = cluster([host('h0'), host('h1', { powerState: 'off' })], [vm('a', 'h0'), vm('b', 'h0')]);
    const s = new ClusterState(snap);
    const r = orderPlan(s, {
      moves: [{ vm: 0, to: 1, reason: 'r', by: 't' }, { vm: 1, to: 1, reason: 'r', by: 't' }],
      powerOn: [{ host: 1, reason: 'wake', by: 't' }],
      powerOff: [{ host: 0, reason: 'empty', by: 't' }],
    });
    const [on, m1, m2, off] = r.steps;
    expect(r.steps.map((x) => x.kind)).toEqual(['powerOn', 'migrate', 'migrate', 'powerOff']);
    expect(m1!.deps).toEqual([on!.id]);
    expect(m2!.deps).toEqual([on!.id]);
    expect(off!.deps).toEqual([m1!.id, m2!.id]);
  });

  it('compacts chains of moves into one net move per VM', () => {
    const raw = [{ vm: 1, from: 0, to: 2 }, { vm: 1, from: 2, to: 3 }, { vm: 4, from: 1, to: 2 }, { vm: 4, from: 2, to: 1 }];
    expect(compactMoves(raw).map(({ vm, from, to }) => [vm, from, to])).toEqual([[1, 0, 3]]);
  });
});
