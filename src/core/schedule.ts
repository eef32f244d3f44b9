/**
 * Schedules: named windows of local time (with an IANA time zone) that say how the planner
 * should behave. consolidate: pack VMs and power emptied hosts off (quiet hours); balance:
 * spread for performance, relieve overloads, wake hosts as needed, never power off; blackout:
 * no moves and no power actions at all (e.g. while backups run).
 *
 * Pure: `activeWindow` takes the time as an argument and reads no clock. Local time comes from
 * `Intl.DateTimeFormat` with a `timeZone` (plain ECMAScript, no node:*), so daylight-saving
 * changes follow the zone's rules. The result is data the caller puts into the snapshot
 * (`ClusterSnapshot.window`), so the simulator, the demo and the controller decide alike.
 */

export type WindowKind = 'consolidate' | 'balance' | 'blackout';
export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';
export const WEEKDAYS: readonly Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

export interface ScheduleWindow {
  readonly name: string;
  readonly kind: WindowKind;
  /**
   * Days on which the window *starts*. A window that wraps midnight (to ≤ from) runs on into
   * the next day: `fri 18:00–07:00` ends on Saturday at 07:00.
   */
  readonly days: readonly Weekday[];
  /** Local start, 'HH:MM' (24 h), inclusive. */
  readonly from: string;
  /** Local end, 'HH:MM', exclusive; equal to `from`: the window lasts a whole day (24 h of local clock). */
  readonly to: string;
  /** IANA time zone of from/to/days, e.g. 'Europe/Berlin'. */
  readonly timeZone: string;
}

export interface Schedule {
  readonly windows: readonly ScheduleWindow[];
  /** What applies when no window covers the instant (default 'balance'). */
  readonly otherwise?: WindowKind;
}

/** The window in force at an instant, as the planner receives it in the snapshot. */
export interface ActiveWindow {
  readonly kind: WindowKind;
  /** The window's name; 'otherwise' when no window covers the instant. */
  readonly name: string;
  /**
   * When this window stops being in force (the first instant at which another window, or
   * none, applies), in the same seconds as the time asked about; null: it never changes.
   */
  readonly untilSec: number | null;
}

/** 1970-01-05 00:00 UTC, a Monday: the epoch simulations map their t = 0 (Monday 00:00) to. */
export const SIM_MONDAY_EPOCH_SEC = 4 * 86400;

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Minutes after local midnight of an 'HH:MM', or null when it is not one. */
export function parseHhmm(s: string): number | null {
  const m = HHMM.exec(s);
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

/** True when the runtime knows the IANA zone (Intl throws a RangeError on an unknown one). */
export function isKnownTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', weekday: 'short', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

interface Local { readonly y: number; readonly mo: number; readonly d: number; readonly dow: number; readonly min: number; readonly sec: number }
const DOW: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

/** Wall clock in zone tz at epoch second t (dow: 0 = Monday; min: minutes after midnight). */
function local(tz: string, t: number): Local {
  const p: Record<string, string> = {};
  for (const part of formatter(tz).formatToParts(t * 1000)) p[part.type] = part.value;
  const h = Number(p.hour) % 24;
  return { y: Number(p.year), mo: Number(p.month), d: Number(p.day), dow: DOW[p.weekday!]!, min: h * 60 + Number(p.minute), sec: Number(p.second) };
}

/** Days since 1970-01-01 of a proleptic Gregorian date (no Date object: the core reads no clock). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** UTC offset of zone tz at epoch second t, s (local = UTC + offset). */
function offsetAt(tz: string, t: number): number {
  const l = local(tz, t);
  const asUtc = daysFromCivil(l.y, l.mo, l.d) * 86400 + l.min * 60 + l.sec;
  return asUtc - Math.floor(t);
}

function covers(w: ScheduleWindow, l: Local): boolean {
  const from = parseHhmm(w.from)!;
  const to = parseHhmm(w.to)!;
  const today = w.days.includes(WEEKDAYS[l.dow]!);
  if (from < to) return today && l.min >= from && l.min < to;
  // Wraps midnight (or lasts 24 h when to = from): from `from` today until `to` tomorrow.
  const yesterday = w.days.includes(WEEKDAYS[(l.dow + 6) % 7]!);
  return (today && l.min >= from) || (yesterday && l.min < to);
}

/** Index of the window in force at t: a blackout always wins, otherwise the first listed; -1: none. */
function pick(schedule: Schedule, t: number): number {
  let first = -1;
  const byZone = new Map<string, Local>();
  for (let i = 0; i < schedule.windows.length; i++) {
    const w = schedule.windows[i]!;
    let l = byZone.get(w.timeZone);
    if (!l) byZone.set(w.timeZone, (l = local(w.timeZone, t)));
    if (!covers(w, l)) continue;
    if (w.kind === 'blackout') return i;
    if (first < 0) first = i;
  }
  return first;
}

/** How far ahead `activeWindow` looks for the window's end, days (a weekly schedule repeats within 7). */
const HORIZON_DAYS = 8;

/**
 * The window in force at epoch second `epochSec` and until when. Throws a RangeError on a
 * window with an unknown time zone or a malformed 'HH:MM' (the config schema rejects both
 * before they get here).
 */
export function activeWindow(schedule: Schedule, epochSec: number): ActiveWindow {
  for (const w of schedule.windows) {
    if (parseHhmm(w.from) === null || parseHhmm(w.to) === null) throw new RangeError(`schedule window ${w.name}: from/to must be HH:MM`);
  }
  const t = Math.floor(epochSec);
  const now = pick(schedule, t);
  const at = (i: number): ActiveWindow => ({
    kind: i < 0 ? (schedule.otherwise ?? 'balance') : schedule.windows[i]!.kind,
    name: i < 0 ? 'otherwise' : schedule.windows[i]!.name,
    untilSec: null,
  });
  const same = (i: number): boolean => {
    const a = at(i);
    const b = at(now);
    return a.kind === b.kind && a.name === b.name;
  };
  // Candidate edges: every window's from and to on each local day of the horizon, converted
  // to epoch seconds with the zone's offset around that moment (both offsets of a DST change).
  const cands = new Set<number>();
  for (const w of schedule.windows) {
    const l0 = local(w.timeZone, t);
    const day0 = daysFromCivil(l0.y, l0.mo, l0.d);
    for (let k = -1; k <= HORIZON_DAYS; k++) {
      for (const hhmm of [w.from, w.to]) {
        const wall = (day0 + k) * 86400 + parseHhmm(hhmm)! * 60;
        const o1 = offsetAt(w.timeZone, wall);
        const o2 = offsetAt(w.timeZone, wall - o1);
        for (const c of [wall - o1, wall - o2]) if (c > t) cands.add(c);
      }
    }
  }
  const sorted = [...cands].sort((a, b) => a - b);
  let prev = t;
  for (const c of sorted) {
    if (same(pick(schedule, c))) {
      prev = c;
      continue;
    }
    // The change lies in (prev, c] (c may be off by a DST jump): bisect to the second.
    let lo = prev;
    let hi = c;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (same(pick(schedule, mid))) lo = mid;
      else hi = mid;
    }
    return { ...at(now), untilSec: hi };
  }
  return at(now);
}
