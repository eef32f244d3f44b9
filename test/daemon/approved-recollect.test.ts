/**
 * Executing an approved plan re-collects the cluster to check its fingerprint: that re-check
 * must not record a sample (collect({record: false})), or every approved execution would add a
 * duplicate demand sample to the forecast's recorder and to the VMs' usage history.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DemandRecorder } from '../../src/core/predict/forecast.js';
import { simDaemon } from './helpers.js';

afterEach(() => vi.restoreAllMocks());

describe('approved execution re-check', () => {
  it('adds no sample: recorder rounds and usage history length equal the number of rounds', async () => {
    const recorded = vi.spyOn(DemandRecorder.prototype, 'recordVms');
    // rounds while the restart seed runs (here: an empty store) are recorded after it, through record()
    const recordedAfterSeed = vi.spyOn(DemandRecorder.prototype, 'record');
    const d = simDaemon('approve');
    const r1 = await d.round();
    expect(d.store.getPlan(r1.planId!)!.status).toBe('proposed');
    d.store.setPlanStatus(r1.planId!, 'approved');
    await d.clock.advance(300_000);
    const r2 = await d.round();
    expect(r2.executed.map((e) => e.planId)).toEqual([r1.planId]);
    expect(d.store.getPlan(r1.planId!)!.status).toBe('done');
    expect(recorded.mock.calls.length + recordedAfterSeed.mock.calls.length).toBe(2);
    const lengths = r2.tick!.snapshot.vms.map((v) => v.cpuHistoryMips.length);
    expect(Math.max(...lengths)).toBe(2);
  });
});
