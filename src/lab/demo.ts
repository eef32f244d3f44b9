/**
 * The story `tide lab demo` tells on the lab (src/api/lab-demo.ts runs it): an office day
 * compressed into minutes. Pure parts (the day's load curve, the schedule, the clock mapping)
 * are separate from the one part that touches the guests (GuestLoad: GET /cgi-bin/load, see
 * guest-init.ts), so they are tested without the lab.
 *
 * Times are "day seconds": seconds since Monday 00:00 of the simulated week, as in `tide demo`
 * (clockLabel prints them as "Mon 16:00").
 */
import type { ScheduleConfig } from '../config/schema.js';
import { LabError } from './exec.js';
import type { Lab } from './lab.js';

export interface LoadStory {
  /** Day seconds the demo starts and ends at. */
  readonly startSec: number;
  readonly endSec: number;
  /** Busy office hours [from, to), hours of the day: every guest runs `officePct`. */
  readonly officeFromHour: number;
  readonly officeToHour: number;
  readonly officePct: number;
  /** Quiet hours (the rest): every guest runs `quietPct`. */
  readonly quietPct: number;
  /** One overload spike: the guests `spikeVms` (indexes) run `spikePct` in [spikeFromSec, spikeToSec). */
  readonly spikeVms: readonly number[];
  readonly spikePct: number;
  readonly spikeFromSec: number;
  readonly spikeToSec: number;
}

const H = 3600;

/**
 * Monday 16:00 → Tuesday 09:00: an office afternoon, the quiet evening and night (the consolidate
 * window, 18:00–07:00) with one overload spike — three guests busy at full load for an hour from
 * 01:00 (a nightly batch job), more than the one host left on can carry, so a host is woken
 * inside the quiet window and packed away again after — and the morning rush (balance from
 * 07:00). The percentages are of one vCPU (what a guest gets of them depends on the machine: see
 * labDemoPolicyArgs for how the thresholds follow it).
 */
export const DEFAULT_STORY: LoadStory = {
  startSec: 16 * H,
  endSec: 24 * H + 9 * H,
  officeFromHour: 7,
  officeToHour: 18,
  officePct: 50,
  quietPct: 2,
  spikeVms: [0, 1, 2],
  spikePct: 100,
  spikeFromSec: 24 * H + 1 * H,
  spikeToSec: 24 * H + 2 * H,
};

/**
 * Tide's arguments for the lab. The lab's hosts report the whole machine's cores, and what a
 * guest really gets depends on what else the machine runs (TCG guests share its cores with
 * everything), so the thresholds are set from a measurement just before the story, in vCPUs
 * (median over the guests): `busyVcpu` at the office load, `quietVcpu` at the quiet load (with
 * the probes running: serving them is most of a quiet TCG guest's CPU). With `guests` guests
 * (an even number, half on each host by day): a host is overloaded above 0.75 × guests × busy
 * (all guests on one host — the morning after a consolidated night — are; half of them are not,
 * with a margin of about ±25 % for the machine's load changing), relief fills a receiver up to
 * 0.65 × guests × busy (so the morning spread moves half of them back), and the evening packs
 * onto a receiver while its forecast stays below guests × (quiet + 0.35 × (busy − quiet)): the
 * quiet night fits, with room for noise.
 */
export function labDemoPolicyArgs(hostCores: number, busyVcpu: number, guests: number, quietVcpu = 0): Record<string, number> {
  const share = (vcpus: number): number => Math.min(1, vcpus / Math.max(1, hostCores));
  const all = guests * busyVcpu;
  const quiet = Math.min(quietVcpu, busyVcpu);
  return {
    overloadUtil: share(0.75 * all), targetUtil: share(0.65 * all), consolidateUtil: share(guests * (quiet + 0.35 * (busyVcpu - quiet))),
    // the forecast looks at about an hour of 10-minute samples
    windowSamples: 6, z: 1, cooldownSec: 3600, minOffSec: 2 * H,
  };
}

/** The demo's schedule: consolidate every evening 18:00–07:00, balance otherwise (UTC). */
export const LAB_DEMO_SCHEDULE: ScheduleConfig = {
  timeZone: 'UTC',
  otherwise: 'balance',
  windows: [{ name: 'night', kind: 'consolidate', days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '18:00', to: '07:00' }],
};

/** Load of guest number `i` (0-based) at day second `t`, % of one vCPU. */
export function loadAt(story: LoadStory, i: number, t: number): number {
  if (story.spikeVms.includes(i) && t >= story.spikeFromSec && t < story.spikeToSec) return story.spikePct;
  const hour = (t % 86_400) / H;
  return hour >= story.officeFromHour && hour < story.officeToHour ? story.officePct : story.quietPct;
}

/** Simulated seconds per wall second when a 24 h day lasts `minutes` wall minutes. */
export function dayFactor(minutes: number): number {
  if (!(minutes > 0)) throw new RangeError(`minutes must be > 0 (got ${minutes})`);
  return 86_400 / (minutes * 60);
}

/**
 * Drives the guests' load generators: set(t) sends each guest its load for day second t,
 * only when it changed. A guest that does not answer is retried on the next call; one
 * without the generator (a lab image older than /cgi-bin/load) is a LabError.
 */
export class GuestLoad {
  private readonly sent = new Map<string, number>();
  /** GET failures (the guest did not answer), retried. */
  failures = 0;

  constructor(private readonly lab: Lab, private readonly vms: readonly string[], private readonly story: LoadStory) {}

  async set(t: number): Promise<void> {
    await Promise.all(this.vms.map(async (vm, i) => {
      const pct = Math.round(loadAt(this.story, i, t));
      if (this.sent.get(vm) === pct) return;
      await this.send(vm, pct);
    }));
  }

  /** Every guest at `pct` (the calibration before the story). */
  async setAll(pct: number): Promise<void> {
    await Promise.all(this.vms.map((vm) => this.send(vm, pct)));
  }

  /** Stops every generator (load 0). */
  async stop(): Promise<void> {
    await Promise.all(this.vms.map((vm) => this.send(vm, 0)));
  }

  private async send(vm: string, pct: number): Promise<void> {
    let body: string;
    try {
      body = await this.lab.httpGet(`http://${this.lab.vm(vm).ip}/cgi-bin/load?pct=${pct}`, 10);
    } catch (e) {
      if (/404|Not Found/i.test((e as Error).message)) throw new LabError(`guest ${vm} has no load generator (/cgi-bin/load): its image predates it; run \`tide lab up --recreate --power\``);
      this.failures++;
      return;
    }
    if (!new RegExp(`load_pct=${pct}\\b`).test(body)) throw new LabError(`guest ${vm}: unexpected answer from /cgi-bin/load: ${body.trim().slice(0, 200)}`);
    this.sent.set(vm, pct);
  }
}
