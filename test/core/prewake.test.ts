/**
 * Pre-wake (issue 7, item 2): before a consolidate window ends, tide powers on the hosts the
 * next window needs early enough that boot + migrations finish by the edge — a powerOn is
 * planned exactly when edge − boot − migrate − margin ≤ now. And ahead of a ramp that the
 * learned forecast predicts, a host is relieved (waking one if needed) within its wake lead.
 */
import { describe, expect, it } from 'vitest';
import type { ClusterSnapshot, DemandForecast } from '../../src/core/model/types.js';
import { compilePolicy, plan } from '../../src/core/policy.js';
import { migrationSec, prewakeAtEdge, tideArgs } from '../../src/core/strategies/tide.js';
import { linearPower } from '../../src/core/model/power.js';
import { cluster, host, vm } from '../helpers/cluster.js';

const power = linearPower(100, 200, { bootSec: 180, offW: 5, bootW: 120 });
const flat = (id: string, h: string, cpu: number, memMiB = 1024): ReturnType<typeof vm> => vm(id, h, { history: Array(12).fill(cpu), memMiB });
const EDGE = 100_000;

function night(now: number, extra: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  const snap = cluster(
    [host('h0', { power }), host('h1', { power }), host('h2', { power, powerState: 'off', offSinceSec: 0 }), host('h3', { power, powerState: 'off', offSinceSec: 0 })],
    [flat('a', 'h0', 300, 2048), flat('b', 'h0', 300, 1024), flat('c', 'h1', 300, 1024)],
    [], now,
  );
  return { ...snap, window: { kind: 'consolidate', name: 'night', untilSec: EDGE }, ...extra };
}
const args = tideArgs.parse({});
/** The lead the docs define: slowest boot + (all VMs' memory ÷ usable hosts) over half the slowest link + margin. */
const expectedLead = 180 + migrationSec((2048 + 1024 + 1024) / 4, { netBytesPerSec: 125e6 }) + args.prewakeMarginSec;

describe('pre-wake at a consolidate window\'s end', () => {
  it('computes the lead from boot time, migration time and the margin', () => {
    const e = prewakeAtEdge(night(EDGE - expectedLead), args, EDGE - expectedLead)!;
    expect(e.bootSec).toBe(180);
    expect(e.migrateSec).toBeCloseTo((1024 * 1048576) / 62.5e6);
    expect(e.leadSec).toBeCloseTo(expectedLead);
    expect(e.wake).toEqual(['h2', 'h3']);
  });

  it('plans the powerOns exactly when edge − boot − migrate − margin ≤ now, not a second earlier', () => {
    const tide = compilePolicy('tide');
    const at = Math.ceil(EDGE - expectedLead);
    const before = plan(night(at - 1), tide, at - 1);
    expect(before.steps.filter((s) => s.kind === 'powerOn')).toEqual([]);
    const onTime = plan(night(at), tide, at);
    const ons = onTime.steps.filter((s) => s.kind === 'powerOn');
    expect(ons.map((s) => s.host).sort()).toEqual(['h2', 'h3']);
    expect(ons[0]!.reason).toMatch(/pre-wake: window night ends at t=100000; boot 180 s \+ migrations \d+ s \+ margin 300 s/);
    expect(ons[0]!.by).toBe('tide:prewake');
    // Inside the lead nothing is consolidated or powered off (the woken hosts must stay on).
    expect(onTime.steps.filter((s) => s.kind === 'migrate' || s.kind === 'powerOff')).toEqual([]);
    // Before the lead the night packs as usual: h1's VM fits on h0, h1 goes off.
    expect(before.steps.some((s) => s.kind === 'powerOff')).toBe(true);
  });

  it('with a learned forecast past the edge, wakes only the hosts its high quantile needs', () => {
    const at = EDGE - 400;
    // After the edge the cluster is forecast to need 3000 MIPS at its 90th percentile: with
    // targetUtil 0.9 that is 3334 MIPS, which the two hosts on (4000) hold; 5000 MIPS needs
    // 5556: one more host (6000).
    const f = (high: number): DemandForecast => ({ quantile: 0.9, points: [{ atSec: EDGE + 900, cpuMips: high * 0.8, cpuMipsHigh: high, memMiB: 4096 }] });
    expect(prewakeAtEdge(night(at, { forecast: f(3000) }), args, at)!.wake).toEqual([]);
    expect(prewakeAtEdge(night(at, { forecast: f(5000) }), args, at)!.wake).toEqual(['h2']);
  });

  it('does nothing outside a consolidate window or once it has ended', () => {
    expect(prewakeAtEdge({ ...night(EDGE - 10), window: { kind: 'balance', name: 'day', untilSec: EDGE } }, args, EDGE - 10)).toBeNull();
    expect(prewakeAtEdge(night(EDGE + 1), args, EDGE + 1)).toBeNull();
    expect(prewakeAtEdge({ ...night(EDGE - 10), window: { kind: 'consolidate', name: 'always', untilSec: null } }, args, EDGE - 10)).toBeNull();
  });
});

describe('pre-wake ahead of a predicted ramp', () => {
  const T = 1_000_000;
  /** h0 (2000 MIPS) runs a and b at 600 MIPS each now; the forecast says a goes to 1500 at `rampAt` (105 %). */
  function ramp(rampAt: number): ClusterSnapshot {
    const snap = cluster(
      [host('h0', { power }), host('h1', { power, powerState: 'off' })],
      [{ ...flat('a', 'h0', 600), vcpus: 2 }, flat('b', 'h0', 600)],
      [], T,
    );
    const at = [T + 300, T + 600, T + 900, T + 1200, T + 1500, T + 1800];
    const a = at.map((t) => (t >= rampAt ? 1500 : 600));
    const forecast: DemandForecast = {
      quantile: 0.9,
      points: at.map((t, k) => ({ atSec: t, cpuMips: a[k]! + 600, cpuMipsHigh: a[k]! + 650, memMiB: 2048 })),
      vms: { a: { cpuMips: a, cpuMipsHigh: a.map((x) => x + 20) }, b: { cpuMips: at.map(() => 600), cpuMipsHigh: at.map(() => 620) } },
    };
    return { ...snap, forecast };
  }

  it('wakes a host and moves a VM when the ramp falls within boot + migration + margin', () => {
    // Lead: boot 180 + 1024 MiB over 62.5 MB/s (17 s) + margin 300 ≈ 497 s: a ramp at +300 is in it.
    const p = plan(ramp(T + 300), compilePolicy('tide'), T);
    expect(p.steps.map((s) => s.kind)).toEqual(['powerOn', 'migrate']);
    expect(p.hosts.find((h) => h.host === 'h0')!.reason).toMatch(/predicted ramp/);
  });

  it('does not act on a ramp further ahead than the wake lead (waking earlier only burns power)', () => {
    const p = plan(ramp(T + 1500), compilePolicy('tide'), T);
    expect(p.steps).toEqual([]);
  });

  it('ignores the forecast with lookaheadSec=0', () => {
    const p = plan(ramp(T + 300), compilePolicy('tide:lookaheadSec=0'), T);
    expect(p.steps).toEqual([]);
  });
});
