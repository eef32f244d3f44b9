/**
 * Schedules: activeWindow is pure, reads local time in the window's IANA zone (daylight saving
 * included), and says when the window in force ends; the tide strategy obeys the window the
 * snapshot carries (blackout: nothing; balance: spread, no consolidation, no power-off).
 */
import { describe, expect, it } from 'vitest';
import { compilePolicy, plan } from '../../src/core/policy.js';
import { migrations, type Plan } from '../../src/core/plan/types.js';
import { activeWindow, type Schedule } from '../../src/core/schedule.js';
import type { ClusterSnapshot, SnapshotWindow } from '../../src/core/model/types.js';
import { cluster, host, vm, type VmOpts } from '../helpers/cluster.js';

const Z = 'Europe/Berlin';
/** Epoch seconds of a UTC wall-clock time (month 1-based). */
const utc = (y: number, mo: number, d: number, h: number, mi = 0): number => Date.UTC(y, mo - 1, d, h, mi) / 1000;

const office: Schedule = {
  windows: [
    { name: 'backup', kind: 'blackout', days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '02:00', to: '03:00', timeZone: Z },
    { name: 'night', kind: 'consolidate', days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '18:00', to: '07:00', timeZone: Z },
    { name: 'weekend', kind: 'consolidate', days: ['sat', 'sun'], from: '00:00', to: '00:00', timeZone: Z },
  ],
};

describe('activeWindow', () => {
  it('weekday daytime: otherwise (balance) until 18:00 local (winter, UTC+1)', () => {
    // Wed 2026-03-25 12:00 CET = 11:00 UTC.
    expect(activeWindow(office, utc(2026, 3, 25, 11))).toEqual({ kind: 'balance', name: 'otherwise', untilSec: utc(2026, 3, 25, 17) });
  });

  it('a window across midnight runs on into the next day, interrupted by a blackout', () => {
    // Wed 20:00 CET: night, until the backup at Thu 02:00 CET (01:00 UTC).
    expect(activeWindow(office, utc(2026, 3, 25, 19))).toEqual({ kind: 'consolidate', name: 'night', untilSec: utc(2026, 3, 26, 1) });
    // Thu 02:30 CET: the blackout wins over night, until 03:00 CET.
    expect(activeWindow(office, utc(2026, 3, 26, 1, 30))).toEqual({ kind: 'blackout', name: 'backup', untilSec: utc(2026, 3, 26, 2) });
    // Thu 03:00 CET: night again (it started on Wednesday), until 07:00 CET.
    expect(activeWindow(office, utc(2026, 3, 26, 2))).toEqual({ kind: 'consolidate', name: 'night', untilSec: utc(2026, 3, 26, 6) });
    // Thu 06:59 CET: still night; 07:00 CET: otherwise.
    expect(activeWindow(office, utc(2026, 3, 26, 5, 59)).name).toBe('night');
    expect(activeWindow(office, utc(2026, 3, 26, 6)).name).toBe('otherwise');
  });

  it('weekends: Friday night runs into Saturday, then the all-day weekend window', () => {
    // Sat 2026-03-28 05:00 CET: Friday's night window (first listed) until 07:00 CET.
    expect(activeWindow(office, utc(2026, 3, 28, 4))).toEqual({ kind: 'consolidate', name: 'night', untilSec: utc(2026, 3, 28, 6) });
    // Sat 2026-03-21 12:00 CET: weekend, until the backup on Sunday 02:00 CET (01:00 UTC).
    expect(activeWindow(office, utc(2026, 3, 21, 11))).toEqual({ kind: 'consolidate', name: 'weekend', untilSec: utc(2026, 3, 22, 1) });
    // A week later Sunday's 02:00 does not exist (spring forward): the weekend runs to Monday 00:00 CEST.
    expect(activeWindow(office, utc(2026, 3, 28, 11))).toEqual({ kind: 'consolidate', name: 'weekend', untilSec: utc(2026, 3, 29, 22) });
  });

  it('spring forward (Europe/Berlin, 2026-03-29): 02:00–03:00 does not exist, so that day has no backup', () => {
    // Sun 01:30 CET = 00:30 UTC; at 01:00 UTC clocks jump from 02:00 to 03:00 CEST. The
    // weekend window runs on until Monday 00:00 CEST = Sunday 22:00 UTC.
    expect(activeWindow(office, utc(2026, 3, 29, 0, 30))).toEqual({ kind: 'consolidate', name: 'weekend', untilSec: utc(2026, 3, 29, 22) });
    expect(activeWindow(office, utc(2026, 3, 29, 1)).name).toBe('weekend');
    // After the change, local times are UTC+2: Monday 12:00 CEST = 10:00 UTC, balance until 18:00 CEST = 16:00 UTC.
    expect(activeWindow(office, utc(2026, 3, 30, 10))).toEqual({ kind: 'balance', name: 'otherwise', untilSec: utc(2026, 3, 30, 16) });
  });

  it('fall back (Europe/Berlin, 2026-10-25): 02:00–03:00 happens twice, so the backup lasts two hours', () => {
    // 02:00 CEST = 00:00 UTC; 03:00 CEST becomes 02:00 CET at 01:00 UTC; 03:00 CET = 02:00 UTC.
    expect(activeWindow(office, utc(2026, 10, 25, 0, 30))).toEqual({ kind: 'blackout', name: 'backup', untilSec: utc(2026, 10, 25, 2) });
    expect(activeWindow(office, utc(2026, 10, 25, 1, 30)).kind).toBe('blackout');
    expect(activeWindow(office, utc(2026, 10, 25, 2)).name).toBe('weekend');
  });

  it('zones differ: the same instant is night in Berlin and daytime in New York', () => {
    const ny: Schedule = { windows: office.windows.map((w) => ({ ...w, timeZone: 'America/New_York' })) };
    const t = utc(2026, 3, 25, 19); // 20:00 CET, 15:00 EDT
    expect(activeWindow(office, t).name).toBe('night');
    expect(activeWindow(ny, t)).toEqual({ kind: 'balance', name: 'otherwise', untilSec: utc(2026, 3, 25, 22) });
  });

  it('a window that always applies never ends (untilSec null); otherwise is configurable', () => {
    const always: Schedule = { windows: [{ name: 'always', kind: 'consolidate', days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '00:00', to: '00:00', timeZone: 'UTC' }] };
    expect(activeWindow(always, utc(2026, 6, 1, 12))).toEqual({ kind: 'consolidate', name: 'always', untilSec: null });
    expect(activeWindow({ windows: [], otherwise: 'blackout' }, 0)).toEqual({ kind: 'blackout', name: 'otherwise', untilSec: null });
  });

  it('rejects an unknown zone and a malformed time', () => {
    const w = office.windows[1]!;
    expect(() => activeWindow({ windows: [{ ...w, timeZone: 'Mars/Olympus' }] }, 0)).toThrow(RangeError);
    expect(() => activeWindow({ windows: [{ ...w, from: '24:00' }] }, 0)).toThrow(/HH:MM/);
  });
});

const T = 1_000_000;
const flat = (id: string, h: string | null, cpu: number, o: VmOpts = {}): ReturnType<typeof vm> => vm(id, h, { history: Array(12).fill(cpu), ...o });
const kinds = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'migrate' ? `migrate ${s.vm}→${s.to}` : s.kind === 'place' ? `place ${s.vm}` : `${s.kind} ${s.host}`));
const inWindow = (snap: ClusterSnapshot, kind: SnapshotWindow['kind'], name: string = kind): ClusterSnapshot => ({ ...snap, window: { kind, name, untilSec: T + 3600 } });
const tide = compilePolicy('tide');

describe('tide honours the window in the snapshot', () => {
  // Two lightly used hosts and an empty one: without a window, tide packs and powers off.
  const quiet = cluster([host('h0'), host('h1'), host('h2')], [flat('a', 'h0', 300), flat('b', 'h1', 300)], [], T);

  it('no window and a consolidate window plan exactly the same (today\'s behaviour)', () => {
    const p = plan(quiet, tide, T);
    expect(kinds(p)).toEqual(['migrate a→h1', 'powerOff h0', 'powerOff h2']);
    expect(plan(inWindow(quiet, 'consolidate', 'night'), tide, T)).toEqual(p);
  });

  it('balance: no consolidation and no power-off, even of an empty host', () => {
    const p = plan(inWindow(quiet, 'balance'), tide, T);
    expect(p.steps).toEqual([]);
  });

  it('balance: relief still runs, spreading onto the emptiest host', () => {
    // h0 saturated (2100 > 2000 MIPS); h1 half full, h2 nearly empty: spread picks h2 (pack would pick h1).
    const snap = cluster([host('h0'), host('h1'), host('h2')], [
      flat('a', 'h0', 1200, { memMiB: 4000 }), flat('b', 'h0', 500, { memMiB: 1024 }), flat('c', 'h0', 400, { memMiB: 512 }),
      flat('d', 'h1', 900), flat('e', 'h2', 100),
    ], [], T);
    const packed = migrations(plan(snap, compilePolicy('tide:consolidate=false,powerOff=false'), T)).map((m) => m.to);
    const spread = migrations(plan(inWindow(snap, 'balance'), tide, T));
    expect(spread.map((m) => [m.vm, m.to])).toEqual([['c', 'h2']]);
    expect(packed).toEqual(['h1']);
  });

  it('balance: wakes a powered-off host when no active host has room', () => {
    const snap = cluster([host('h0'), host('h1', { powerState: 'off' })], [flat('a', 'h0', 1200, { memMiB: 2048 }), flat('b', 'h0', 900)], [], T);
    expect(kinds(plan(inWindow(snap, 'balance'), tide, T))).toEqual(['powerOn h1', 'migrate b→h1']);
  });

  it('blackout: nothing at all — no consolidation, no relief, no maintenance evacuation, no power actions', () => {
    const snap = cluster([host('h0'), host('h1', { maintenance: true }), host('h2'), host('h3', { powerState: 'off' })], [
      flat('a', 'h0', 1200, { memMiB: 2048 }), flat('b', 'h0', 900), flat('m', 'h1', 100), flat('c', 'h2', 100),
    ], [], T);
    // Without the window there is work to do (relief of h0, evacuation of h1, power actions).
    expect(plan(snap, tide, T).steps.length).toBeGreaterThan(0);
    const p = plan(inWindow(snap, 'blackout', 'backup'), tide, T);
    expect(p.steps).toEqual([]);
    expect(p.hosts.map((h) => [h.host, h.class])).toEqual([['h0', 'normal'], ['h1', 'maintenance'], ['h2', 'normal'], ['h3', 'off']]);
    for (const h of p.hosts) expect(h.reason).toBe(`blackout window backup until t=${T + 3600}: no moves and no power actions`);
    expect(p.notMoved).toEqual([expect.objectContaining({ vm: 'm', host: 'h1', code: 'blackout' })]);
  });
});
