/**
 * Realistic accounting runs the CloudSim ports with CloudSim's bugs fixed (`faithful: false`);
 * `NAME:faithful=true` keeps them. CloudSim accounting stays faithful (the per-day files check
 * its numbers against CloudSim's).
 */
import { describe, expect, it } from 'vitest';
import { linearPower } from '../../src/core/model/power.js';
import { migrations } from '../../src/core/plan/types.js';
import { compilePolicy, plan } from '../../src/core/policy.js';
import { simulate } from '../../src/sim/run.js';
import { cloudsimScenario, type SimHostSpec, type SimScenario, type SimVmSpec } from '../../src/sim/scenario.js';
import { readTrace } from '../../src/sim/trace.js';
import { cluster, host as snapHost, vm as snapVm } from '../helpers/cluster.js';
import { planetlabDay } from '../helpers/planetlab.js';

const SAMPLES = 4;
const host = (id: string, memMiB = 4096, power = linearPower(100, 200)): SimHostSpec => ({
  id, cpuCores: 2, mipsPerCore: 1000, memMiB, netBytesPerSec: 125_000_000, diskBytesPerSec: 1e12, power,
});
const vm = (id: string, o: { vcpus?: number; memMiB: number; cpu: number }): SimVmSpec => ({
  id, vcpus: o.vcpus ?? 1, mipsPerVcpu: 1000, memMiB: o.memMiB, cpu: new Float64Array(SAMPLES).fill(o.cpu),
});
const scenario = (name: string, hosts: SimHostSpec[], vms: SimVmSpec[]): SimScenario => ({
  name, intervalSec: 300, samples: SAMPLES, startSec: 0, hosts, vms, rules: [],
});

const FAITHFUL = 'thr-mmt:param=0.8,faithful=true';

// Initial placement (least power increase, memory only): the flat-power h0 takes a and b
// until its memory is full, c goes to h1, d to h2. Round 1: h0 (0.9) is overloaded; MMT
// picks b, then a; a fits nowhere, b goes to h1. Faithful: h1 is not protected, is the least
// utilised host and is evacuated, so b moves twice. Fixed: h2 is evacuated instead.
const DOUBLE_MOVE = scenario('double-move', [host('h0', 768, linearPower(150, 150)), host('h1'), host('h2')], [
  vm('a', { vcpus: 2, memMiB: 512, cpu: 0.85 }),
  vm('b', { memMiB: 256, cpu: 0.1 }),
  vm('c', { memMiB: 1024, cpu: 0.05 }),
  vm('d', { memMiB: 1024, cpu: 1 }),
]);

describe('realistic accounting runs the ports with CloudSim\'s bugs fixed', () => {
  it('a VM moves at most once per plan; faithful=true brings back CloudSim\'s double migration', () => {
    const fixed = simulate({ scenario: DOUBLE_MOVE, policy: 'thr-mmt:0.8', accounting: 'realistic' });
    const faithful = simulate({ scenario: DOUBLE_MOVE, policy: FAITHFUL, accounting: 'realistic' });
    expect(faithful.repeatMigrations).toBeGreaterThanOrEqual(1);
    expect(fixed.repeatMigrations).toBe(0);
    expect(fixed.migrations).toBeGreaterThan(0);
    for (const r of [fixed, faithful]) expect(r.memoryOvercommits).toBe(0);
  });

  it('consolidates hosts whose VMs are idle; faithful=true leaves them on (CloudSim: 0 % CPU = switched off)', () => {
    // One idle VM per host after the initial placement; all four fit on one host.
    const sc = scenario('idle', ['h0', 'h1', 'h2', 'h3'].map((id) => host(id)), ['v0', 'v1', 'v2', 'v3'].map((id) => vm(id, { memMiB: 1024, cpu: 0 })));
    const fixed = simulate({ scenario: sc, policy: 'lr-mmt:1.2', accounting: 'realistic' });
    const faithful = simulate({ scenario: sc, policy: 'lr-mmt:param=1.2,faithful=true', accounting: 'realistic' });
    expect(faithful.migrations).toBe(0);
    expect(faithful.powerOffs).toBe(0);
    expect(fixed.migrations).toBe(3);
    expect(fixed.powerOffs).toBe(3);
    expect(fixed.memoryOvercommits).toBe(0);
    expect(fixed.energyKWh).toBeLessThan(faithful.energyKWh);
  });

  it('CloudSim accounting keeps the faithful ports: the double migration happens there by default', () => {
    const cloudsim = simulate({ scenario: DOUBLE_MOVE, policy: 'thr-mmt:0.8' });
    expect(cloudsim.accounting).toBe('cloudsim');
    expect(cloudsim.repeatMigrations).toBeGreaterThanOrEqual(1);
    const fixed = simulate({ scenario: DOUBLE_MOVE, policy: 'thr-mmt:param=0.8,faithful=false' });
    expect(fixed.repeatMigrations).toBe(0);
  });
});

describe('the fixed port\'s PABFD charges a host for what it already took this round', () => {
  // h0 at 0.95 is overloaded; MMT takes y, then z (both 200 MIPS). y goes to h1 (tie with h2,
  // lower index). For z, CloudSim's start-of-round "power now" charges h1 for y again and picks
  // h2; the tentative power now sees equal increases and keeps the tie on h1.
  const snap = cluster([snapHost('h0'), snapHost('h1'), snapHost('h2')], [
    snapVm('x', 'h0', { cpu: 1500, memMiB: 2048 }), snapVm('y', 'h0', { cpu: 200, memMiB: 256 }), snapVm('z', 'h0', { cpu: 200, memMiB: 512 }),
    snapVm('c', 'h1', { cpu: 400 }), snapVm('d', 'h2', { cpu: 400 }),
  ]);
  const firstMoves = (spec: string): string[][] => migrations(plan(snap, compilePolicy(spec), snap.time)).filter((m) => m.vm === 'y' || m.vm === 'z').map((m) => [m.vm, m.to]);
  it('faithful spreads a round\'s placements, fixed packs them', () => {
    expect(firstMoves('thr-mmt:0.8').slice(0, 2)).toEqual([['y', 'h1'], ['z', 'h2']]);
    expect(firstMoves('thr-mmt:param=0.8,faithful=false')).toEqual([['y', 'h1'], ['z', 'h1']]);
  });
});

describe('realistic accounting on PlanetLab (20110306, first 8 hours)', () => {
  const day = cloudsimScenario(readTrace(planetlabDay('20110306')));
  const sc: SimScenario = { ...day, samples: 96 };
  const fixed = simulate({ scenario: sc, policy: 'mad-mmt:2.5', accounting: 'realistic' });
  const explicit = simulate({ scenario: sc, policy: 'mad-mmt:param=2.5,faithful=false', accounting: 'realistic' });
  const faithful = simulate({ scenario: sc, policy: 'mad-mmt:param=2.5,faithful=true', accounting: 'realistic' });

  it('the default is the fixed port; faithful=true gives a different run', () => {
    expect({ e: fixed.energyKWh, m: fixed.migrations, off: fixed.powerOffs }).toEqual({ e: explicit.energyKWh, m: explicit.migrations, off: explicit.powerOffs });
    expect(faithful.energyKWh).not.toBe(fixed.energyKWh);
  });

  it('never overcommits memory or moves a VM twice in a plan, honours power states and stays above the lower bound', () => {
    for (const r of [fixed, faithful]) {
      expect(r.memoryOvercommits).toBe(0);
      expect(r.vmsRemoved).toBe(0);
      expect(r.energyKWh).toBeGreaterThan(r.lowerBoundKWh);
      expect(r.powerOffs).toBeGreaterThan(0);
    }
    expect(fixed.repeatMigrations).toBe(0);
  });

  it('tide stays closer to the lower bound than the fixed port', () => {
    const t = simulate({ scenario: sc, policy: 'tide', accounting: 'realistic' });
    expect(t.memoryOvercommits).toBe(0);
    expect(t.energyRatio).toBeLessThan(fixed.energyRatio);
  });
});
