/**
 * Telemetry freeze (issue 7, item 4), the pure part: each cause (a host silent for 3 rounds,
 * usage above capacity, a clock jump), the hysteresis of the thaw, and what the planner
 * returns for a frozen snapshot (no automatic step, every would-be move listed as 'frozen';
 * a maintenance evacuation still runs).
 */
import { describe, expect, it } from 'vitest';
import { detectFreeze, freezeCauses, freezeWithoutSnapshot, NOT_FROZEN, snapshotFreeze, type FreezeState, type TelemetryHealth } from '../../src/core/freeze.js';
import type { ClusterSnapshot } from '../../src/core/model/types.js';
import { compilePolicy, plan } from '../../src/core/policy.js';
import { migrations } from '../../src/core/plan/types.js';
import { cluster, host, vm } from '../helpers/cluster.js';

const T = 1_000_000;
const healthy: TelemetryHealth = { silentRounds: {}, sinceLastRoundSec: 300, monotonicSinceLastRoundSec: 300 };
const flat = (id: string, h: string, cpu: number) => vm(id, h, { history: Array<number>(12).fill(cpu) });
/** Two hosts with one small VM each: tide consolidates (one move, one power-off). */
const sparse = (): ClusterSnapshot => cluster([host('h0'), host('h1')], [flat('a', 'h0', 100), flat('b', 'h1', 100)], [], T);
const codes = (s: ClusterSnapshot, h: TelemetryHealth): string[] => freezeCauses(s, h).map((r) => `${r.code}${r.host ? `@${r.host}` : ''}`);

describe('freezeCauses: each cause', () => {
  it('healthy telemetry: no cause', () => {
    expect(codes(sparse(), healthy)).toEqual([]);
    // The first round (nothing to compare with) and no monotonic clock: nothing to check.
    expect(codes(sparse(), { silentRounds: {}, sinceLastRoundSec: null, monotonicSinceLastRoundSec: null })).toEqual([]);
  });

  it('a host silent for 3 rounds while not known off', () => {
    const s = cluster([host('h0'), host('h1', { powerState: 'unknown', stateReason: 'connection refused' })], [flat('a', 'h0', 100)], [], T);
    expect(codes(s, { ...healthy, silentRounds: { h1: 2 } })).toEqual([]);
    const r = freezeCauses(s, { ...healthy, silentRounds: { h1: 3 } });
    expect(r).toEqual([{ code: 'host-silent', host: 'h1', reason: 'h1 has not answered for 3 rounds (900 s) and is not known to be off: connection refused' }]);
    // Known off (the power driver says so): silence is expected.
    const off = cluster([host('h0'), host('h1', { powerState: 'off' })], [flat('a', 'h0', 100)], [], T);
    expect(codes(off, { ...healthy, silentRounds: { h1: 5 } })).toEqual([]);
    // In maintenance: the operator may be rebooting it.
    const maint = cluster([host('h0'), host('h1', { powerState: 'unknown', maintenance: true })], [flat('a', 'h0', 100)], [], T);
    expect(codes(maint, { ...healthy, silentRounds: { h1: 5 } })).toEqual([]);
  });

  it('usage above capacity: host CPU, VM CPU, memory on a host, non-numbers', () => {
    expect(codes(cluster([host('h0', { cpuUsedMips: 2080 })], [flat('a', 'h0', 100)], [], T), healthy)).toEqual([]); // within 5 %
    expect(codes(cluster([host('h0', { cpuUsedMips: 2500 })], [flat('a', 'h0', 100)], [], T), healthy)).toEqual(['usage-implausible@h0']);
    const hot = cluster([host('h0')], [vm('a', 'h0', { cpu: 1500 })], [], T); // 1 vCPU of 1000 MIPS
    expect(freezeCauses(hot, healthy)).toEqual([expect.objectContaining({ code: 'usage-implausible', host: 'h0', reason: expect.stringMatching(/a reports 1500 MIPS.*1000 MIPS/) })]);
    // A VM never measured carries its full size on purpose: not implausible.
    expect(codes(cluster([host('h0')], [vm('a', 'h0', { cpu: 1000, usage: 'unknown' })], [], T), healthy)).toEqual([]);
    const mem = cluster([host('h0', { memMiB: 4096 })], [vm('a', 'h0', { memMiB: 3000 }), vm('b', 'h0', { memMiB: 3000 })], [], T);
    expect(codes(mem, healthy)).toEqual(['usage-implausible@h0']);
    expect(codes(cluster([host('h0')], [vm('a', 'h0', { cpu: Number.NaN })], [], T), healthy)).toEqual(['usage-implausible@h0']);
    expect(codes(cluster([host('h0', { cpuUsedMips: -1 })], [], [], T), healthy)).toEqual(['usage-implausible@h0']);
  });

  it('a clock jump: backwards, more than 3 intervals, or not what the monotonic clock measured', () => {
    expect(codes(sparse(), { ...healthy, sinceLastRoundSec: -5, monotonicSinceLastRoundSec: 1 })).toEqual(['clock-jump']);
    expect(codes(sparse(), { ...healthy, sinceLastRoundSec: 901, monotonicSinceLastRoundSec: 901 })).toEqual(['clock-jump']);
    expect(codes(sparse(), { ...healthy, sinceLastRoundSec: 900, monotonicSinceLastRoundSec: 900 })).toEqual([]);
    // The wall clock stepped 1 h ahead within a 5-min round.
    const r = freezeCauses(sparse(), { ...healthy, sinceLastRoundSec: 600, monotonicSinceLastRoundSec: 300 });
    expect(r).toEqual([{ code: 'clock-jump', reason: expect.stringMatching(/moved 600.0 s .* 300.0 s really passed/) }]);
    // Within tolerance (max(10 s, interval/10) = 30 s): NTP slewing is not a jump.
    expect(codes(sparse(), { ...healthy, sinceLastRoundSec: 320, monotonicSinceLastRoundSec: 300 })).toEqual([]);
  });
});

describe('detectFreeze: hysteresis', () => {
  const silent = cluster([host('h0'), host('h1', { powerState: 'unknown' })], [flat('a', 'h0', 100)], [], T);
  const silent3 = { ...healthy, silentRounds: { h1: 3 } };

  it('freezes at once, keeps the start time while a cause persists, thaws after 2 healthy rounds', () => {
    const s1 = detectFreeze(silent, silent3);
    expect(s1).toMatchObject({ frozen: true, sinceSec: T, healthyRounds: 0 });
    const s2 = detectFreeze({ ...silent, time: T + 300 }, { ...healthy, silentRounds: { h1: 4 } }, s1);
    expect(s2).toMatchObject({ frozen: true, sinceSec: T, healthyRounds: 0 });
    const s3 = detectFreeze({ ...sparse(), time: T + 600 }, healthy, s2);
    expect(s3.frozen).toBe(true);
    expect(s3.healthyRounds).toBe(1);
    expect(s3.reasons).toEqual([{ code: 'recovering', reason: expect.stringMatching(/^telemetry healthy for 1 of 2 rounds after: h1 has not answered for 4 rounds/) }]);
    const s4 = detectFreeze({ ...sparse(), time: T + 900 }, healthy, s3);
    expect(s4).toEqual(NOT_FROZEN);
  });

  it('a cause during the thaw starts it over', () => {
    const s1 = detectFreeze(silent, silent3);
    const s2 = detectFreeze(sparse(), healthy, s1);
    expect(s2.healthyRounds).toBe(1);
    const s3 = detectFreeze(sparse(), { ...healthy, sinceLastRoundSec: -1 }, s2);
    expect(s3).toMatchObject({ frozen: true, sinceSec: T, healthyRounds: 0, reasons: [expect.objectContaining({ code: 'clock-jump' })] });
    expect(detectFreeze(sparse(), healthy, s3).frozen).toBe(true);
  });

  it('a thaw of N rounds is configurable; not frozen stays not frozen', () => {
    let st: FreezeState = detectFreeze(silent, silent3, NOT_FROZEN, { healthyRoundsToThaw: 3 });
    st = detectFreeze(sparse(), healthy, st, { healthyRoundsToThaw: 3 });
    st = detectFreeze(sparse(), healthy, st, { healthyRoundsToThaw: 3 });
    expect(st.frozen).toBe(true);
    expect(detectFreeze(sparse(), healthy, st, { healthyRoundsToThaw: 3 }).frozen).toBe(false);
    expect(detectFreeze(sparse(), healthy)).toBe(NOT_FROZEN);
    expect(detectFreeze(silent, { ...healthy, silentRounds: { h1: 4 } }, NOT_FROZEN, { silentRounds: 5 }).frozen).toBe(false);
  });
});

describe('freezeWithoutSnapshot: a round in which no host answered', () => {
  it('freezes on the silent counts alone, keeps the start, and interrupts a thaw', () => {
    expect(freezeWithoutSnapshot({ h0: 2, h1: 2 }, T, 300)).toBe(NOT_FROZEN);
    const f = freezeWithoutSnapshot({ h0: 3, h1: 2 }, T, 300);
    expect(f).toEqual({ frozen: true, sinceSec: T, healthyRounds: 0, reasons: [{ code: 'host-silent', host: 'h0', reason: 'h0 has not answered for 3 rounds (900 s) and is not known to be off (no host answered)' }] });
    expect(freezeWithoutSnapshot({ h0: 4, h1: 3 }, T + 300, 300, f).sinceSec).toBe(T);
    const thawing: FreezeState = { frozen: true, sinceSec: T, healthyRounds: 1, reasons: [{ code: 'recovering', reason: 'x' }] };
    expect(freezeWithoutSnapshot({ h0: 1 }, T, 300, thawing)).toEqual({ ...thawing, healthyRounds: 0 });
  });
});

describe('plan() on a frozen snapshot', () => {
  const tide = compilePolicy('tide');
  const freeze = { sinceSec: T - 600, reasons: [{ code: 'clock-jump' as const, reason: 'the clock went back 60.0 s since the previous round' }] };

  it('proposes no step; the move and the power-off it would have made are listed with code frozen', () => {
    const free = plan(sparse(), tide, T);
    expect(migrations(free)).toHaveLength(1);
    expect(free.steps.some((s) => s.kind === 'powerOff')).toBe(true);
    const p = plan({ ...sparse(), freeze }, tide, T);
    expect(p.steps).toEqual([]);
    const m = migrations(free)[0]!;
    expect(p.notMoved).toEqual([{ vm: m.vm, host: m.from, code: 'frozen', by: 'tide:freeze', reason: expect.stringMatching(new RegExp(`^would move to ${m.to} .*telemetry freeze since t=${T - 600}: the clock went back 60.0 s`)) }]);
    const off = free.steps.find((s) => s.kind === 'powerOff')!;
    expect(p.hosts.find((h) => h.host === ('host' in off ? off.host : ''))!.reason).toMatch(/^would power off .*telemetry freeze/);
    expect(p.hosts).toHaveLength(2);
  });

  it('holds for every strategy (the entry point applies it)', () => {
    // 90 % busy: the ports (THR 0.8) migrate; tide powers the empty h1 off.
    const s = cluster([host('h0'), host('h1')], [flat('a', 'h0', 900), flat('b', 'h0', 900)], [], T);
    for (const name of ['thr-mmt', 'lr-mmt', 'tide']) {
      expect(plan(s, compilePolicy(name), T).steps.length).toBeGreaterThan(0);
      const p = plan({ ...s, freeze }, compilePolicy(name), T);
      expect(p.steps).toEqual([]);
      expect(p.notMoved.some((n) => n.code === 'frozen') || p.hosts.some((h) => /^would power/.test(h.reason))).toBe(true);
    }
  });

  it('an operator-requested maintenance evacuation still runs, unless it touches a host the freeze names', () => {
    const s = cluster([host('h0', { maintenance: true }), host('h1'), host('h2', { powerState: 'off' })], [flat('a', 'h0', 100)], [], T);
    const p = plan({ ...s, freeze }, tide, T);
    expect(migrations(p).map((m) => [m.vm, m.from, m.to])).toEqual([['a', 'h0', 'h1']]);
    // h1 is the one implausible host: the evacuation would land on it, so it waits.
    const named = { sinceSec: T, reasons: [{ code: 'usage-implausible', host: 'h1', reason: 'h1 reports 9999 MIPS of CPU in use, capacity 2000 MIPS' }] };
    const q = plan({ ...s, freeze: named }, tide, T);
    expect(q.steps).toEqual([]);
    expect(q.notMoved).toEqual([expect.objectContaining({ vm: 'a', code: 'frozen' })]);
  });

  it('a maintenance evacuation that needs a woken host keeps its power-on', () => {
    const s = cluster([host('h0', { maintenance: true }), host('h1', { powerState: 'off' })], [flat('a', 'h0', 100)], [], T);
    const p = plan({ ...s, freeze }, tide, T);
    expect(p.steps.map((x) => x.kind).sort()).toEqual(['migrate', 'powerOn']);
  });

  it('snapshotFreeze: only a frozen state goes into the snapshot', () => {
    expect(snapshotFreeze(NOT_FROZEN)).toBeUndefined();
    expect(snapshotFreeze({ frozen: true, sinceSec: 5, reasons: freeze.reasons, healthyRounds: 0 })).toEqual({ sinceSec: 5, reasons: freeze.reasons });
  });
});
