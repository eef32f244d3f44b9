/**
 * The configuration's `schedule` section: validated (HH:MM, known IANA zones, day names, window
 * kinds), errors name the path; compiled into the core's Schedule with each window's zone.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { compileSchedule } from '../../src/config/schedule.js';
import { activeWindow } from '../../src/core/schedule.js';

const HOSTS = `hosts:
  - name: a
    uri: qemu:///system
`;

function refusal(text: string): string {
  try {
    parseConfigText(text, 'tide.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error(`accepted: ${text}`);
}

describe('config: schedule', () => {
  it('reads windows, fills the zone and otherwise, and the schedule reads as configured', () => {
    const c = parseConfigText(`${HOSTS}schedule:
  timeZone: Europe/Berlin
  windows:
    - { name: night, kind: consolidate, days: [mon, tue, wed, thu, fri], from: "18:00", to: "07:00" }
    - { name: weekend, kind: consolidate, days: [sat, sun], from: "00:00", to: "00:00" }
    - { name: backup, kind: blackout, days: [sun], from: "01:00", to: "03:00", timeZone: UTC }
`, 'tide.yaml');
    expect(c.schedule).toMatchObject({ timeZone: 'Europe/Berlin', otherwise: 'balance' });
    const s = compileSchedule(c.schedule!);
    expect(s.windows.map((w) => [w.name, w.timeZone])).toEqual([['night', 'Europe/Berlin'], ['weekend', 'Europe/Berlin'], ['backup', 'UTC']]);
    // Wed 2026-03-25 12:00 CET (11:00 UTC): balance until 18:00 CET.
    expect(activeWindow(s, Date.UTC(2026, 2, 25, 11) / 1000)).toEqual({ kind: 'balance', name: 'otherwise', untilSec: Date.UTC(2026, 2, 25, 17) / 1000 });
  });

  it('no schedule section: no schedule (the policy applies at all hours)', () => {
    expect(parseConfigText(HOSTS, 'tide.yaml').schedule).toBeUndefined();
  });

  it.each([
    ['a time that is not HH:MM', 'from: "7:00"', /schedule\.windows\[0\]\.from.*HH:MM/s],
    ['an hour past 23', 'from: "24:00"', /schedule\.windows\[0\]\.from/],
    ['an unknown day', 'days: [monday]', /schedule\.windows\[0\]\.days\[0\]/],
    ['no days', 'days: []', /schedule\.windows\[0\]\.days.*at least one day/s],
    ['an unknown kind', 'kind: sleep', /schedule\.windows\[0\]\.kind/],
    ['an unknown zone', 'timeZone: Mars/Olympus', /schedule\.windows\[0\]\.timeZone.*IANA/s],
    ['an unknown field', 'colour: blue', /schedule\.windows\[0\]/],
  ])('refuses %s, naming the path', (_what, change, pattern) => {
    const fields: Record<string, string> = { name: 'name: n', kind: 'kind: consolidate', days: 'days: [mon]', from: 'from: "18:00"', to: 'to: "07:00"' };
    const key = change.slice(0, change.indexOf(':'));
    fields[key] = change;
    const text = `${HOSTS}schedule:\n  windows:\n${Object.values(fields).map((f, i) => `${i === 0 ? '    - ' : '      '}${f}`).join('\n')}\n`;
    expect(refusal(text)).toMatch(pattern);
  });

  it('refuses an unknown schedule-wide zone', () => {
    expect(refusal(`${HOSTS}schedule:\n  timeZone: Europe/Atlantis\n`)).toMatch(/schedule\.timeZone/);
  });
});
