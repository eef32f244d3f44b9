/**
 * The CloudSim reference covers what the per-day test files check: every day in
 * bench/cloudsim-reference.json has its cloudsim-YYYYMMDD.test.ts, and every day lists every
 * policy the README's claim names.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DAYS } from './cloudsim-day.js';

const POLICIES = ['npa', 'dvfs', 'thr-mmt:0.8', 'iqr-mmt:1.5', 'mad-mmt:2.5', 'lr-mmt:1.2', 'lrr-mmt:1.2', 'thr-mu:0.8', 'thr-mc:0.8', 'thr-rs:0.8'];

describe('bench/cloudsim-reference.json', () => {
  const ref = JSON.parse(readFileSync(new URL('../../bench/cloudsim-reference.json', import.meta.url), 'utf8')) as { days: Record<string, Record<string, unknown>> };
  it('has the five given days, each with its own test file', () => {
    expect(DAYS).toEqual(['20110303', '20110306', '20110309', '20110322', '20110325']);
    for (const day of DAYS) expect(existsSync(new URL(`./cloudsim-${day}.test.ts`, import.meta.url)), day).toBe(true);
  });
  it('lists every policy the README claims on every day', () => {
    for (const day of DAYS) expect(Object.keys(ref.days[day]!).sort(), day).toEqual([...POLICIES].sort());
  });
});
