/**
 * Programmatic API of the simulator (the CLI's `simulate` and `bench` are thin shells over it).
 */
import { compilePolicy } from '../core/policy.js';
import type { Accounting } from '../sim/engine.js';
import { officeScenario } from '../sim/office.js';
import { simulate, type SimResult } from '../sim/run.js';
import { cloudsimScenario, type SimScenario } from '../sim/scenario.js';
import { timelineFigures } from '../sim/timeline.js';
import { readTrace } from '../sim/trace.js';
import { LIMITS, parseScenarioSpec, rangedNumber, validate } from '../input/schema.js';

export type { SimResult } from '../sim/run.js';

export interface ScenarioSpec {
  /** A PlanetLab directory or a Tide .json/.csv trace (run on CloudSim's 800-host datacenter). */
  readonly trace?: string;
  /** Built-in scenario: 'office' (optionally 'office:hosts=4,days=2,seed=7'). */
  readonly scenario?: string;
  /** Hosts of the CloudSim datacenter (default 800). */
  readonly hosts?: number;
  /**
   * Days run in recommend mode before acting (plans computed, nothing carried out; the demand
   * profiles learn), as docs/operations.md advises for a new deployment. Default 0 (a cold
   * start); `tide simulate` passes `defaultObserveDays`. Every figure covers the acting period
   * after the observation.
   */
  readonly observeDays?: number;
}

const DAY_SEC = 86_400;

/** Recommend-mode days before acting when none are given: a week for built-in scenarios, none for traces. */
export function defaultObserveDays(spec: Pick<ScenarioSpec, 'trace'>): number {
  return spec.trace ? 0 : 7;
}

export class ScenarioError extends Error {
  readonly code = 'TIDE_SCENARIO';
}

/** The observation period of a run, validated: days and seconds (0: a cold start). */
export function observeOf(spec: ScenarioSpec): { days: number; sec: number } {
  const days = spec.observeDays === undefined ? 0 : validate(rangedNumber({ min: 0, max: LIMITS.officeDays, int: true }), spec.observeDays, 'observeDays', (m) => new ScenarioError(m), 'invalid number of observation days');
  return { days, sec: days * DAY_SEC };
}

/**
 * The scenario to run. With an observation period, a built-in scenario is generated for the
 * observed days plus the acting days (the load continues; t = 0 is still a Monday) and keeps
 * the name of its acting days; a trace must be longer than the observation (it is not extended).
 */
export function loadScenario(spec: ScenarioSpec): SimScenario {
  if (spec.trace && spec.scenario) throw new ScenarioError('give either a trace or a scenario, not both');
  const observe = observeOf(spec);
  if (spec.trace) {
    const hosts = spec.hosts === undefined ? undefined : validate(rangedNumber({ min: 1, max: LIMITS.simHosts, int: true }), spec.hosts, 'hosts', (m) => new ScenarioError(m), 'invalid number of hosts');
    const sc = cloudsimScenario(readTrace(spec.trace), hosts);
    const spanSec = sc.samples * sc.intervalSec;
    if (observe.sec >= spanSec) throw new ScenarioError(`an observation of ${observe.days} day(s) leaves nothing of ${sc.name} (${(spanSec / DAY_SEC).toFixed(2)} day(s)) to act on; give fewer observation days`);
    return sc;
  }
  const { options } = parseScenarioSpec(spec.scenario ?? 'office');
  if (observe.days === 0) return officeScenario(options);
  const actingDays = options.days ?? 2; // officeScenario's default
  const total = actingDays + observe.days;
  if (total > LIMITS.officeDays) throw new ScenarioError(`${actingDays} day(s) after ${observe.days} observed day(s) exceed ${LIMITS.officeDays} days`);
  const sc = officeScenario({ ...options, days: total });
  // Named for the acting days (the figures' period); `observeDays` says what came before.
  return { ...sc, name: officeScenario({ ...options, days: actingDays, hosts: options.hosts }).name };
}

export interface RunOptions extends ScenarioSpec {
  readonly policy: string;
  readonly accounting?: Accounting;
  readonly onProgress?: (fraction: number) => void;
}

export function runSimulation(opts: RunOptions): SimResult {
  compilePolicy(opts.policy); // validate before reading a large trace
  const scenario = loadScenario(opts);
  return simulate({ scenario, policy: opts.policy, accounting: opts.accounting ?? defaultAccounting(opts), onProgress: opts.onProgress, alwaysOn: !opts.trace, observeSec: observeOf(opts).sec });
}

/** PlanetLab traces default to CloudSim's accounting (to compare with its numbers); built-in scenarios to realistic. */
export function defaultAccounting(spec: ScenarioSpec): Accounting {
  return spec.trace ? 'cloudsim' : 'realistic';
}

/** Runs several policies on the same scenario (loaded once). */
export function compareSimulations(opts: ScenarioSpec & { policies: string[]; accounting?: Accounting; onProgress?: (policy: string, fraction: number) => void }): SimResult[] {
  for (const p of opts.policies) compilePolicy(p);
  const scenario = loadScenario(opts);
  const observeSec = observeOf(opts).sec;
  const accounting = opts.accounting ?? defaultAccounting(opts);
  // The always-on reference only for built-in scenarios: on an 800-host trace it would double the run time.
  return opts.policies.map((p) => simulate({ scenario, policy: p, accounting, onProgress: (f) => opts.onProgress?.(p, f), alwaysOn: !opts.trace, observeSec }));
}

/**
 * The `--json` record of one run: stable field names, plain numbers. `alwaysOnKWh` is present
 * for built-in scenarios (null for traces); `timeline` lists every migration and power action.
 * After an observation (`observeDays` > 0) every figure covers the acting period only — from
 * `actingFromSec` (timeline `t` stays seconds since the observation began) — and
 * `recommendedPlans` counts the plans with steps recommended while observing (none executed).
 */
export function resultRecord(r: SimResult): Record<string, unknown> {
  const figures = timelineFigures(r.timeline);
  return {
    policy: r.policy,
    scenario: r.scenario,
    accounting: r.accounting,
    observeDays: r.observedSec / DAY_SEC,
    actingFromSec: r.observedSec,
    recommendedPlans: r.recommendedPlans,
    hosts: r.hosts,
    vms: r.vms,
    energyKWh: round(r.energyKWh, 4),
    migrations: r.migrations,
    slatahPct: round(r.slatahPct, 4),
    pdmPct: round(r.pdmPct, 5),
    slav: r.slav,
    esv: r.esv,
    hostShutdowns: r.hostShutdowns,
    lowerBoundKWh: round(r.lowerBoundKWh, 4),
    energyRatio: round(r.energyRatio, 4),
    meanActiveHosts: round(r.meanActiveHosts, 2),
    powerOns: r.powerOns,
    powerOffs: r.powerOffs,
    overallSlaViolationPct: round(r.overallSlaViolationPct, 4),
    vmsRemoved: r.vmsRemoved,
    wallMs: Math.round(r.wallMs),
    alwaysOnKWh: r.alwaysOnKWh === undefined ? null : round(r.alwaysOnKWh, 4),
    maxMovesPerVmPerDay: figures.maxMovesPerVmPerDay,
    shortestOffSec: figures.shortestOffSec === null ? null : round(figures.shortestOffSec, 1),
    saturatedHostIntervals: r.saturatedHostIntervals,
    failedSteps: r.stepsFailed,
    timeline: r.timeline.map((e) => ({ ...e, t: round(e.t, 1) })),
  };
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}
