/**
 * Regression for the planner's speed-ups (issue 9, point 4): the tide strategy's plans on fixed
 * synthetic clusters are identical, byte for byte (steps, verdicts, notMoved, reasons), to those
 * of the planner before them (commit 01bd719: single-key guard-headroom tree, full re-sort of
 * the receivers every 32 evacuations, exhaustive scans without skipping). The hashes were taken
 * from that planner; a deliberate change of what tide decides or says must update them (and
 * say so), a speed-up must not. Covers bounded placement (2,000 hosts), the exhaustive scan and
 * makeRoom (≤ exhaustiveUpTo), several consolidation orders, and the spread scorer.
 *
 * The migration budget: once the budget cannot fit a candidate's evacuation (one migration per
 * VM at least), consolidation no longer builds and rolls back that evacuation; its VMs are
 * listed as not moved with code 'budget' and a reason.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClusterState } from '../../src/core/model/state.js';
import { compilePolicy, plan } from '../../src/core/policy.js';
import { migrations } from '../../src/core/plan/types.js';
import { syntheticCluster } from '../../src/sim/synthetic.js';

afterEach(() => vi.restoreAllMocks());

const hashOf = (x: unknown): string => createHash('sha256').update(JSON.stringify(x)).digest('hex').slice(0, 16);

describe('tide plans: identical to the planner before the speed-ups', () => {
  it.each([
    [120, 7, 'tide:exhaustiveUpTo=0', '2485e73800d72de3', 1051],
    [120, 7, 'tide', '4253d4978360aa32', 1030],
    [300, 2, 'tide', '780d446dd7d79a25', 2608],
    [300, 3, 'tide:orderings=4', '4380664f66247e57', 2546],
    [400, 4, 'tide:scorer=spread', '8d2b2327a48190f9', 3413],
    [2000, 1, 'tide', '241b5c5ca3ddacf8', 17154],
  ] as const)('%i hosts (20 VMs each), seed %i, %s', (hosts, seed, spec, hash, steps) => {
    const snap = syntheticCluster({ hosts, vms: 20 * hosts, seed });
    const p = plan(snap, compilePolicy(spec), snap.time);
    expect(p.steps.length).toBe(steps);
    expect(hashOf(p)).toBe(hash);
  });
});

describe('tide consolidation under a spent migration budget', () => {
  it('builds no evacuation the budget cannot fit, and says why for every VM it leaves', () => {
    const snap = syntheticCluster({ hosts: 200, vms: 4000, seed: 3 });
    const free = plan(snap, compilePolicy('tide'), snap.time);
    expect(migrations(free).length).toBeGreaterThan(100);
    const moves = vi.spyOn(ClusterState.prototype, 'move');
    const p = plan(snap, compilePolicy('tide:maxMovesPerHour=0'), snap.time);
    // no tentative move at all: before, every candidate's evacuation was built and rolled back
    expect(moves).not.toHaveBeenCalled();
    expect(p.steps).toEqual([]);
    const held = p.notMoved.filter((n) => n.code === 'budget');
    // every VM the free plan migrated to consolidate is held, with a reason (but those of an
    // overloaded host: relief, refused by the budget, has its own verdict)
    const overloaded = new Set(free.hosts.filter((h) => h.class === 'overloaded').map((h) => h.host));
    const migrated = new Set(migrations(free).filter((m) => m.by === 'tide:consolidate' && !overloaded.has(m.from)).map((m) => m.vm));
    expect(migrated.size).toBeGreaterThan(100);
    for (const id of migrated) expect(held.some((n) => n.vm === id)).toBe(true);
    const skipped = held.filter((n) => n.reason.includes('not evacuated'));
    expect(skipped.length).toBeGreaterThan(100);
    expect(skipped[0]!.reason).toMatch(/^host-\d+ not evacuated: its \d+ VM\(s\) need at least \d+ migration\(s\) and 0 are left; migration budget: 0 per hour/);
    expect(skipped[0]!.by).toBe('tide');
  });

  it('still evacuates the candidates a partly spent budget fits, and no more than it allows', () => {
    const snap = syntheticCluster({ hosts: 200, vms: 4000, seed: 3 });
    for (const budget of [1, 25, 60, 200]) {
      const p = plan(snap, compilePolicy(`tide:maxMovesPerHour=${budget}`), snap.time);
      const n = migrations(p).length;
      expect(n).toBeLessThanOrEqual(budget);
      if (budget >= 60) expect(n).toBeGreaterThan(0);
      // what was not moved for the budget is explained, VM by VM
      for (const x of p.notMoved) expect(x.reason.length).toBeGreaterThan(0);
      expect(p.notMoved.some((x) => x.code === 'budget')).toBe(true);
    }
  });
});
