/**
 * Regressions found by the plan properties (fast-check seed 1053 of plan.property's cluster
 * generator), kept as a fixed case: a hard anti-affinity rule broken at the start, a pin, one
 * host off.
 *  - `tide:scorer=spread` planned forever: orderPlan routed a deadlocked move through a spare,
 *    then, still deadlocked, through another spare and back, one step per hop, until the heap
 *    ran out. A move is now routed through a spare at most once, then deferred.
 *  - `tide` planned to power off a host that was already off (woken tentatively while planning,
 *    emptied again, so no power-on step).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ClusterSnapshot } from '../../src/core/model/types.js';
import { compilePolicy, plan } from '../../src/core/policy.js';

const snap = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/cycle-bounce.json'), 'utf8')) as ClusterSnapshot;
const T = 1_000_000;

describe('plan on a cluster with a deadlocked cycle and an off host', () => {
  for (const spec of ['tide', 'tide:scorer=spread']) {
    it(`${spec}: terminates, moves each VM at most twice, never powers off an off host`, () => {
      const p = plan(snap, compilePolicy(spec), T);
      const moves = new Map<string, number>();
      for (const s of p.steps) if (s.kind === 'migrate') moves.set(s.vm, (moves.get(s.vm) ?? 0) + 1);
      for (const [, n] of moves) expect(n).toBeLessThanOrEqual(2);
      const off = new Set(snap.hosts.filter((h) => h.powerState !== 'on').map((h) => h.id));
      for (const s of p.steps) if (s.kind === 'powerOff') expect(off.has(s.host), `powerOff ${s.host}`).toBe(false);
    });
  }
});
