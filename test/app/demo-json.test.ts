import { describe, expect, it } from 'vitest';
import { timelineFigures, type TimelineEntry } from '../../src/sim/timeline.js';
import { runCli } from '../helpers/cli.js';

const FIELDS = ['energyKWh', 'lowerBoundKWh', 'alwaysOnKWh', 'migrations', 'maxMovesPerVmPerDay', 'powerOns', 'powerOffs', 'shortestOffSec', 'saturatedHostIntervals', 'failedSteps', 'timeline'];

/** The consistency every `--json` record of a run must have, whichever command printed it. */
function checkRecord(row: Record<string, unknown>): void {
  for (const k of FIELDS) expect(row, k).toHaveProperty(k);
  const timeline = row.timeline as TimelineEntry[];
  expect(timeline.length).toBe((row.migrations as number) + (row.powerOns as number) + (row.powerOffs as number));
  for (const e of timeline) {
    expect(['migrate', 'powerOn', 'powerOff']).toContain(e.kind);
    expect(typeof e.t).toBe('number');
    expect(typeof e.reason).toBe('string');
    if (e.kind === 'migrate') expect([typeof e.vm, typeof e.from, typeof e.to]).toEqual(['string', 'string', 'string']);
    else expect(typeof e.host).toBe('string');
  }
  const f = timelineFigures(timeline);
  expect(row.maxMovesPerVmPerDay).toBe(f.maxMovesPerVmPerDay);
  if (f.shortestOffSec === null) expect(row.shortestOffSec).toBeNull();
  else expect(row.shortestOffSec as number).toBeCloseTo(f.shortestOffSec, 0);
  expect(row.lowerBoundKWh as number).toBeGreaterThan(0);
  expect(row.lowerBoundKWh as number).toBeLessThanOrEqual(row.energyKWh as number);
  expect(row.alwaysOnKWh as number).toBeGreaterThanOrEqual(row.energyKWh as number);
  expect(Number.isInteger(row.saturatedHostIntervals)).toBe(true);
  expect(Number.isInteger(row.failedSteps)).toBe(true);
}

describe('tide demo --json', () => {
  it('prints every figure of the run, consistent with its timeline', async () => {
    // A cold start (--observe-days 0): hosts cycle off and on while nothing is learned yet.
    const r = await runCli(['demo', '--json', '--hours', '30', '--observe-days', '0']);
    expect(r.code).toBe(0);
    const row = JSON.parse(r.out) as Record<string, unknown>;
    checkRecord(row);
    // A night and a morning: hosts went off and came back, so an off period exists.
    expect(row.powerOffs as number).toBeGreaterThan(0);
    expect(row.powerOns as number).toBeGreaterThan(0);
    expect(row.shortestOffSec as number).toBeGreaterThan(0);
    // The existing fields stay.
    expect(row.alwaysOnKWh).toBe(row.baselineEnergyKWh);
    expect(row.saturatedHostIntervals).toBe(row.saturatedIntervals);
  });

  it('without --json keeps its table and adds the lower bound line', async () => {
    const r = await runCli(['demo', '--quiet', '--hours', '6', '--observe-days', '0']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/with Tide/);
    expect(r.out).toMatch(/energy lower bound: \d+\.\d\d kWh/);
  });
});

describe('tide simulate --scenario office --json', () => {
  it('prints the same figures, with --days as office:days', async () => {
    const r = await runCli(['simulate', '--scenario', 'office:hosts=4', '--days', '1', '--policy', 'tide', '--accounting', 'realistic', '--json']);
    expect(r.code).toBe(0);
    const row = JSON.parse(r.out) as Record<string, unknown>;
    checkRecord(row);
    expect(row.scenario).toBe('office(4 hosts, 1 d)');
    const same = await runCli(['simulate', '--scenario', 'office:hosts=4,days=1', '--policy', 'tide', '--accounting', 'realistic', '--json']);
    const other = JSON.parse(same.out) as Record<string, unknown>;
    expect({ ...other, wallMs: 0 }).toEqual({ ...row, wallMs: 0 });
  });

  it('--days is checked: a number, only with a scenario, not twice', async () => {
    const bad = await runCli(['simulate', '--scenario', 'office', '--days', 'x', '--policy', 'tide']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--days/);
    const noScenario = await runCli(['simulate', '--trace', 'nowhere', '--days', '1', '--policy', 'tide']);
    expect(noScenario.code).not.toBe(0);
    expect(noScenario.err).toMatch(/--days needs --scenario/);
    const twice = await runCli(['simulate', '--scenario', 'office:days=2', '--days', '1', '--policy', 'tide']);
    expect(twice.code).not.toBe(0);
    expect(twice.err).toMatch(/given twice/);
  });
});
