/**
 * The synthetic "office" scenario: the mail, FTP, web, database and file VMs of a small
 * company on a few hosts. Load follows the working day (ramp up from 07:00, lunch dip, ramp
 * down after 17:00, quiet nights and weekends) with a nightly backup window, plus noise from a
 * seeded generator. Used by `tide demo` and by the schedule tests.
 */
import { seededRng } from '../core/util/rng.js';
import { InputError } from '../input/errors.js';
import { LIMITS, officeOptionsSchema, rangedNumber, validate } from '../input/schema.js';
import type { PowerModel } from '../core/model/types.js';
import type { SimHostSpec, SimScenario, SimVmSpec } from './scenario.js';

export interface OfficeOptions {
  /** Physical hosts, 2..6. */
  readonly hosts?: number;
  /** Days to simulate, starting on a Monday at 00:00. */
  readonly days?: number;
  readonly seed?: number;
  /** Sample spacing, s. */
  readonly intervalSec?: number;
}

/** A 1U two-socket server: 110 W idle, 300 W at full load, 8 W off (BMC), 3 minutes to boot. */
export const OFFICE_SERVER_POWER: PowerModel = {
  wattsAtLoad: [110, 135, 155, 172, 190, 206, 222, 240, 258, 280, 300],
  offW: 8,
  bootSec: 180,
  bootW: 150,
};

type Profile = 'office' | 'web' | 'backup' | 'flat' | 'batch';

interface VmTemplate {
  readonly id: string;
  readonly vcpus: number;
  readonly memGiB: number;
  /** Busy share of its vCPUs at the daily peak, 0..1. */
  readonly peak: number;
  /** Share at night. */
  readonly base: number;
  readonly profile: Profile;
}

const VMS: readonly VmTemplate[] = [
  { id: 'mail', vcpus: 4, memGiB: 8, peak: 0.55, base: 0.05, profile: 'office' },
  { id: 'ftp', vcpus: 2, memGiB: 4, peak: 0.45, base: 0.03, profile: 'office' },
  { id: 'web-1', vcpus: 4, memGiB: 8, peak: 0.6, base: 0.08, profile: 'web' },
  { id: 'web-2', vcpus: 4, memGiB: 8, peak: 0.6, base: 0.08, profile: 'web' },
  { id: 'web-3', vcpus: 4, memGiB: 8, peak: 0.6, base: 0.08, profile: 'web' },
  { id: 'db', vcpus: 8, memGiB: 32, peak: 0.5, base: 0.06, profile: 'office' },
  { id: 'files', vcpus: 4, memGiB: 16, peak: 0.35, base: 0.03, profile: 'backup' },
  { id: 'backup', vcpus: 2, memGiB: 4, peak: 0.1, base: 0.02, profile: 'backup' },
  { id: 'intranet', vcpus: 2, memGiB: 4, peak: 0.4, base: 0.02, profile: 'office' },
  { id: 'vpn', vcpus: 2, memGiB: 2, peak: 0.3, base: 0.02, profile: 'office' },
  { id: 'erp', vcpus: 8, memGiB: 24, peak: 0.55, base: 0.03, profile: 'office' },
  { id: 'build', vcpus: 8, memGiB: 16, peak: 0.7, base: 0.02, profile: 'batch' },
  { id: 'monitoring', vcpus: 2, memGiB: 4, peak: 0.15, base: 0.12, profile: 'flat' },
  { id: 'dns', vcpus: 1, memGiB: 1, peak: 0.1, base: 0.05, profile: 'flat' },
];

/** 0..1 shape of the working day at hour h (0..24) on a weekday. */
function officeShape(h: number): number {
  if (h < 6.5 || h >= 20) return 0;
  if (h < 9) return (h - 6.5) / 2.5;
  if (h < 12) return 1;
  if (h < 13.5) return 0.7;
  if (h < 17) return 1;
  return Math.max(0, 1 - (h - 17) / 3);
}

function shape(profile: Profile, hour: number, weekday: boolean): number {
  switch (profile) {
    case 'office':
      return weekday ? officeShape(hour) : 0.1 * officeShape(hour);
    case 'web':
      // Customers browse into the evening, and a little at weekends.
      return (weekday ? 1 : 0.5) * Math.max(officeShape(hour), hour >= 17 && hour < 22 ? 0.6 : 0);
    case 'backup':
      return hour >= 1 && hour < 3 ? 1 : weekday ? 0.4 * officeShape(hour) : 0;
    case 'batch':
      return weekday && ((hour >= 10 && hour < 11) || (hour >= 15 && hour < 16.5)) ? 1 : 0;
    case 'flat':
      return 0.5;
  }
}

export function officeScenario(opts: OfficeOptions = {}): SimScenario {
  // Options through the input schema: a bad value is an input error naming it, never a RangeError.
  const o = validate(officeOptionsSchema.extend({ intervalSec: rangedNumber(LIMITS.intervalSec).optional() }), opts, 'office scenario', (m) => new InputError(m, 'TIDE_SCENARIO'), 'invalid scenario options');
  const nHosts = o.hosts ?? 4;
  const days = o.days ?? 2;
  const intervalSec = o.intervalSec ?? 300;
  const samples = Math.round((days * 86400) / intervalSec);
  const rng = seededRng(o.seed ?? 7);
  const hosts: SimHostSpec[] = Array.from({ length: nHosts }, (_, i) => ({
    id: `srv-${i + 1}`,
    cpuCores: 16,
    mipsPerCore: 2400,
    memMiB: 128 * 1024,
    netBytesPerSec: 1.25e9,
    diskBytesPerSec: 1e9,
    power: OFFICE_SERVER_POWER,
    tags: ['office'],
  }));
  const vms: SimVmSpec[] = VMS.map((t) => {
    const cpu = new Float64Array(samples);
    const mem = new Float64Array(samples);
    let noise = 0;
    for (let k = 0; k < samples; k++) {
      const sec = k * intervalSec;
      const day = Math.floor(sec / 86400);
      const hour = (sec % 86400) / 3600;
      const weekday = day % 7 < 5;
      // AR(1) noise: load wanders smoothly rather than jumping every sample.
      noise = 0.7 * noise + 0.3 * (rng.next() - 0.5);
      const level = t.base + (t.peak - t.base) * shape(t.profile, hour, weekday);
      cpu[k] = Math.min(1, Math.max(0, level * (1 + 0.6 * noise) + 0.01 * rng.next()));
      mem[k] = Math.min(1, 0.5 + 0.4 * shape(t.profile, hour, weekday));
    }
    return {
      id: t.id,
      vcpus: t.vcpus,
      mipsPerVcpu: 2400,
      memMiB: t.memGiB * 1024,
      cpu,
      mem,
      netBytesPerSec: Float64Array.from(cpu, (c) => c * 40e6),
      diskBytesPerSec: Float64Array.from(cpu, (c) => c * 20e6),
      tags: [t.profile],
    };
  });
  return {
    name: `office(${nHosts} hosts, ${days} d)`,
    intervalSec,
    samples,
    startSec: 0,
    hosts,
    vms,
    rules: [
      // Two web servers never share a host (losing one host must not take the site down);
      // the third should run apart too, when there is room.
      { kind: 'antiAffinity', id: 'web-ha', vms: ['web-1', 'web-2'], strength: 'hard' },
      { kind: 'antiAffinity', id: 'web-spread', vms: ['web-1', 'web-2', 'web-3'], strength: 'soft' },
    ],
  };
}
