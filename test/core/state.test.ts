import { describe, expect, it } from 'vitest';
import { ClusterState } from '../../src/core/model/state.js';
import { cluster, host, vm } from '../helpers/cluster.js';

const snap = cluster(
  [host('h0'), host('h1'), host('h2', { powerState: 'off' })],
  [
    vm('a', 'h0', { history: [100, 200, 300], memMiB: 1000 }),
    vm('b', 'h0', { history: [0.1, 0.2, 0.3], memMiB: 500 }),
    vm('c', 'h1', { history: [50], memMiB: 700 }),
  ],
);

describe('ClusterState (the planner working copy)', () => {
  it('aggregates demand, memory and history per host', () => {
    const s = new ClusterState(snap, { historyWindow: 30 });
    const h0 = s.hostIndex('h0');
    expect(s.vmsOn(h0).map((v) => s.vms[v]!.id)).toEqual(['a', 'b']);
    expect(s.reqMips[h0]).toBeCloseTo(300.3, 10);
    expect(s.memReservedMiB[h0]).toBe(1500);
    // Newest first, divided by the 2000-MIPS capacity.
    expect(s.hostHistory(h0)).toEqual([300.3 / 2000, 200.2 / 2000, 100.1 / 2000]);
  });

  it('moves append at the end of the target list and rollback restores everything bit for bit', () => {
    const s = new ClusterState(snap, { historyWindow: 30 });
    const [h0, h1] = [s.hostIndex('h0'), s.hostIndex('h1')];
    const before = { req: [...s.reqMips], hist0: s.hostHistory(h0), hist1: s.hostHistory(h1), list0: [...s.vmsOn(h0)], list1: [...s.vmsOn(h1)] };
    const m = s.mark();
    s.move(s.vmIndex('a'), h1);
    expect(s.vmsOn(h1).map((v) => s.vms[v]!.id)).toEqual(['c', 'a']);
    expect(s.hostOf[s.vmIndex('a')]).toBe(h1);
    s.move(s.vmIndex('b'), -1);
    expect(s.isEmpty(h0)).toBe(true);
    expect(s.hostHistory(h0)).toEqual([0]);
    s.rollback(m);
    expect([...s.reqMips]).toEqual(before.req);
    expect(s.hostHistory(h0)).toEqual(before.hist0);
    expect(s.hostHistory(h1)).toEqual(before.hist1);
    expect([...s.vmsOn(h0)]).toEqual(before.list0);
    expect([...s.vmsOn(h1)]).toEqual(before.list1);
    expect(s.movesSince(m)).toEqual([]);
  });

  it('trims the zero tail of host histories (CloudSim trimZeroTail)', () => {
    const s = new ClusterState(cluster([host('h')], [vm('x', 'h', { history: [0, 0, 40, 0, 80] })]), { historyWindow: 30 });
    // Newest first: 80, 0, 40, then two zeros that are trimmed.
    expect(s.hostHistory(0)).toEqual([0.04, 0, 0.02]);
  });

  it('offers one candidate per class of interchangeable empty hosts', () => {
    const hosts = [host('busy'), ...Array.from({ length: 5 }, (_, i) => host(`idle${i}`)), host('big', { cpuCores: 8 }), host('big2', { cpuCores: 8 })];
    const s = new ClusterState(cluster(hosts, [vm('x', 'busy')]), { historyWindow: 1 });
    const c = s.placementCandidates().map((h) => s.hosts[h]!.id).sort();
    expect(c).toEqual(['big', 'busy', 'idle0']);
    s.move(s.vmIndex('x'), s.hostIndex('idle0'));
    expect(s.placementCandidates().map((h) => s.hosts[h]!.id).sort()).toEqual(['big', 'busy', 'idle0', 'idle1']);
  });

  it('rejects snapshots with unknown hosts or duplicate ids', () => {
    expect(() => new ClusterState(cluster([host('h')], [vm('x', 'nope')]))).toThrow(/unknown host 'nope'/);
    expect(() => new ClusterState(cluster([host('h'), host('h')], []))).toThrow(/duplicate host id 'h'/);
  });
});
