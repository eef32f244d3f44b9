/**
 * The CloudSim ports must reproduce CloudSim 3.0.3's own numbers (bench/cloudsim-reference.json). Two
 * full simulated days run here; `npm run bench` runs every policy on all five days.
 */
import { describe, expect, it } from 'vitest';
import { simulate } from '../../src/sim/run.js';
import { cloudsimScenario } from '../../src/sim/scenario.js';
import { readTrace } from '../../src/sim/trace.js';
import { planetlabDay } from '../helpers/planetlab.js';

const scenario = cloudsimScenario(readTrace(planetlabDay('20110306')));

describe('CloudSim PlanetLab reproduction (20110306)', () => {
  it('NPA and DVFS match CloudSim exactly', () => {
    expect(simulate({ scenario, policy: 'npa' }).energyKWh).toBeCloseTo(2410.8, 1);
    const dvfs = simulate({ scenario, policy: 'dvfs' });
    expect(dvfs.energyKWh).toBeCloseTo(625.53, 2);
    expect(dvfs.hostShutdowns).toBe(544);
  });

  it('THR-MMT-0.8 matches CloudSim: energy, migrations, SLATAH, SLAV, shutdowns', () => {
    const r = simulate({ scenario, policy: 'thr-mmt:0.8' });
    expect(r.energyKWh).toBeCloseTo(144.74, 2);
    expect(r.migrations).toBe(20908);
    expect(r.slatahPct).toBeCloseTo(5.13, 2);
    expect(r.slav * 1e5).toBeCloseTo(3.6, 1);
    expect(r.hostShutdowns).toBe(4682);
    expect(r.vmsRemoved).toBeGreaterThan(0);
  });

  it('tide beats the best port on this day: energy, ESV/2, migrations/2', () => {
    const lr = simulate({ scenario, policy: 'lr-mmt:1.2' });
    const thr = simulate({ scenario, policy: 'thr-mmt:0.8' });
    const t = simulate({ scenario, policy: 'tide' });
    expect(t.energyKWh).toBeLessThanOrEqual(Math.min(lr.energyKWh, thr.energyKWh));
    expect(t.esv).toBeLessThanOrEqual(0.5 * Math.min(lr.esv, thr.esv));
    expect(t.migrations).toBeLessThanOrEqual(0.5 * Math.min(lr.migrations, thr.migrations));
  });
});

describe('realistic accounting', () => {
  it('never overcommits memory, honours power states and stays above the lower bound', () => {
    for (const policy of ['tide', 'lr-mmt:1.2']) {
      const r = simulate({ scenario, policy, accounting: 'realistic' });
      expect(r.memoryOvercommits).toBe(0);
      expect(r.vmsRemoved).toBe(0);
      expect(r.energyKWh).toBeGreaterThan(r.lowerBoundKWh);
      expect(r.powerOffs).toBeGreaterThan(0);
    }
  });
});
