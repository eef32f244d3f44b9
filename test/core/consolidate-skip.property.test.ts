/**
 * Old vs new: the tide strategy's consolidation scan skips, through a MultiMaxTree of the
 * receivers' guard headroom, free memory and demand headroom (and -∞ for hosts excluded this
 * round), receivers a filter would reject anyway — bounded placement above `exhaustiveUpTo`
 * hosts, the exhaustive scan and makeRoom's search below. With the skip disabled
 * (firstAtLeast answering "the next position", i.e. the plain scan it replaced) every plan
 * must be identical, step for step.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ClusterSnapshot, Host, Vm } from '../../src/core/model/types.js';
import { compilePolicy, plan } from '../../src/core/policy.js';
import { MultiMaxTree } from '../../src/core/util/maxtree.js';
import { syntheticCluster } from '../../src/sim/synthetic.js';
import { host, vm } from '../helpers/cluster.js';

const clusterArb = fc.record({
  hosts: fc.array(fc.record({ cores: fc.integer({ min: 2, max: 8 }), memGiB: fc.constantFrom(8, 16, 32) }), { minLength: 3, maxLength: 24 }),
  vms: fc.array(fc.record({
    host: fc.nat(), vcpus: fc.integer({ min: 1, max: 4 }), memGiB: fc.constantFrom(1, 2, 4, 8),
    levels: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 8 }),
  }), { maxLength: 80 }),
}).map(({ hosts: hs, vms: vs }): ClusterSnapshot => {
  const hosts: Host[] = hs.map((h, i) => host(`h${i}`, { cpuCores: h.cores, mipsPerCore: 1000, memMiB: h.memGiB * 1024 }));
  const mem = new Array<number>(hosts.length).fill(0);
  const vms: Vm[] = [];
  vs.forEach((v, i) => {
    const h = v.host % hosts.length;
    if (mem[h]! + v.memGiB * 1024 > hosts[h]!.memMiB) return;
    mem[h]! += v.memGiB * 1024;
    const size = v.vcpus * 1000;
    vms.push(vm(`v${i}`, `h${h}`, { vcpus: v.vcpus, mipsPerVcpu: 1000, memMiB: v.memGiB * 1024, history: v.levels.map((l) => Math.round(l * size)) }));
  });
  return { time: 1_000_000, sampleIntervalSec: 300, hosts, vms, rules: [] };
});

afterEach(() => vi.restoreAllMocks());

/** The plain scan: every position from `from` on, none skipped. */
function plainScan(): void {
  vi.spyOn(MultiMaxTree.prototype, 'firstAtLeast').mockImplementation(function (this: MultiMaxTree, from: number) {
    return from < this.n ? Math.max(0, from) : -1;
  });
}

/** The plan with the room tree's skips equals the plan of the plain scan (steps and non-moves). */
function expectSameAsPlainScan(snap: Parameters<typeof plan>[0], policy: Parameters<typeof plan>[1]): void {
  const withSkip = plan(snap, policy, snap.time);
  plainScan();
  const plain = plan(snap, policy, snap.time);
  vi.restoreAllMocks();
  expect(withSkip.steps).toEqual(plain.steps);
  expect(withSkip.notMoved).toEqual(plain.notMoved);
}

describe('tide consolidation: skipping receivers through the room tree', () => {
  it('gives the same plan as the plain scan (bounded placement, as above exhaustiveUpTo)', () => {
    fc.assert(fc.property(clusterArb, fc.integer({ min: 1, max: 4 }), fc.constantFrom(0.6, 0.75, 0.85), (snap, feasible, util) => {
      const policy = compilePolicy(`tide:exhaustiveUpTo=0,feasibleHosts=${feasible},consolidateUtil=${util}`);
      expectSameAsPlainScan(snap, policy);
    }), { numRuns: 300 });
    // (small random clusters give the tree little to skip; the case below is sure to)
  });

  it('gives the same plan as the plain scan (exhaustive placement and makeRoom, up to exhaustiveUpTo; spread)', () => {
    fc.assert(fc.property(clusterArb, fc.constantFrom('', ',orderings=4', ',scorer=spread'), fc.constantFrom(0.6, 0.85), (snap, extra, util) => {
      const policy = compilePolicy(`tide:consolidateUtil=${util}${extra}`);
      expectSameAsPlainScan(snap, policy);
    }), { numRuns: 200 });
  });

  it.each([
    ['tide:exhaustiveUpTo=0', 120, 7],
    ['tide', 120, 7],
    ['tide:orderings=4', 150, 3],
  ])('gives the same plan on a synthetic cluster where it does skip receivers (%s, %i hosts)', (spec, hosts, seed) => {
    const snap = syntheticCluster({ hosts, vms: 20 * hosts, seed });
    const policy = compilePolicy(spec);
    const original = MultiMaxTree.prototype.firstAtLeast;
    let skips = 0;
    const counting = vi.spyOn(MultiMaxTree.prototype, 'firstAtLeast').mockImplementation(function (this: MultiMaxTree, from: number, xs: ArrayLike<number>) {
      const at = original.call(this, from, xs);
      if (at !== Math.max(0, from) && from < this.n) skips++;
      return at;
    });
    const withSkip = plan(snap, policy, snap.time);
    counting.mockRestore();
    plainScan();
    const plain = plan(snap, policy, snap.time);
    expect(skips).toBeGreaterThan(0);
    expect(withSkip.steps.length).toBeGreaterThan(0);
    expect(withSkip.steps).toEqual(plain.steps);
    expect(withSkip.notMoved).toEqual(plain.notMoved);
  });
});
