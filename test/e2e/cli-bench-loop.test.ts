/**
 * `tide bench loop` at a small size: the daemon's rounds on the simulated driver with a real
 * SQLite journal. Functional only (shape, that rounds planned, executed and journaled steps);
 * the timings are benchmarks (bench/README.md), never asserted here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { benchLoop } from '../../src/api/bench-loop.js';
import { openSqliteStore } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-bench-loop-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const STAGES = ['collectMs', 'planMs', 'journalMs', 'executeMs', 'roundMs', 'roundCpuMs'] as const;

describe('tide bench loop', () => {
  it('--json: per-stage p50/p99, peak RSS, and rounds that executed steps', async () => {
    const r = await runCli(['bench', 'loop', '--hosts', '20', '--vms', '200', '--rounds', '3', '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const o = JSON.parse(r.out);
    expect(o).toMatchObject({ hosts: 20, vms: 200, rounds: 3, policy: 'tide', intervalSec: 60 });
    for (const k of STAGES) {
      expect(Object.keys(o[k]).sort()).toEqual(['p50', 'p99']);
      expect(o[k].p50).toBeGreaterThanOrEqual(0);
      expect(o[k].p99).toBeGreaterThanOrEqual(o[k].p50);
    }
    expect(o.peakRssMiB).toBeGreaterThan(0);
    expect(o.perRound).toHaveLength(3);
    // the synthetic cluster starts spread out: the first round consolidates, and every step it
    // planned was executed against the simulated driver
    const first = o.perRound[0];
    expect(first.migrations).toBeGreaterThan(0);
    expect(first.powerOffs).toBeGreaterThan(0);
    expect(first.succeeded).toBe(first.steps);
    expect(first.failed + first.skipped).toBe(0);
    expect(first.executeMs).toBeGreaterThan(0);
    expect(o.stepsExecuted).toBe(o.perRound.reduce((a: number, x: { succeeded: number }) => a + x.succeeded, 0));
    expect(o.storeBytes).toBeGreaterThan(0);
  });

  it('journals every round in the store, as the daemon does: plan, step runs, decisions, metrics', async () => {
    const path = join(tmp, 'loop.sqlite');
    const r = await benchLoop({ hosts: 20, vms: 200, rounds: 2, storePath: path });
    const store = openSqliteStore(path);
    try {
      const plans = store.listPlans({ limit: 10 });
      expect(plans.length).toBeGreaterThanOrEqual(1);
      const first = plans.find((p) => p.id === Math.min(...plans.map((x) => x.id)))!;
      expect(first.status).toBe('done');
      const runs = store.stepRuns(first.id);
      expect(runs).toHaveLength(r.perRound[0]!.steps);
      expect(runs.every((x) => x.state === 'succeeded')).toBe(true);
      expect(store.decisions({ limit: 10 })).toHaveLength(2);
      expect(store.metricsHistory({ kind: 'host' }).length).toBeGreaterThan(0);
    } finally {
      store.close();
    }
  });

  it('prints a stage table without --json', async () => {
    const r = await runCli(['bench', 'loop', '--hosts', '10', '--vms', '50', '--rounds', '2']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^10 hosts, 50 VMs, 2 round\(s\) of 60 s, policy tide/);
    for (const stage of ['collect', 'plan', 'journal', 'execute', 'whole round', 'whole round, CPU']) expect(r.out).toMatch(new RegExp(`^${stage} +\\d+\\.\\d +\\d+\\.\\d$`, 'm'));
    expect(r.err).toMatch(/round 1: \d+ step\(s\)/);
  });
});
