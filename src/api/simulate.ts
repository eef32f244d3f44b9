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
}

export class ScenarioError extends Error {
  readonly code = 'TIDE_SCENARIO';
}

export function loadScenario(spec: ScenarioSpec): SimScenario {
  if (spec.trace && spec.scenario) throw new ScenarioError('give either a trace or a scenario, not both');
  if (spec.trace) {
    const hosts = spec.hosts === undefined ? undefined : validate(rangedNumber({ min: 1, max: LIMITS.simHosts, int: true }), spec.hosts, 'hosts', (m) => new ScenarioError(m), 'invalid number of hosts');
    return cloudsimScenario(readTrace(spec.trace), hosts);
  }
  const { options } = parseScenarioSpec(spec.scenario ?? 'office');
  return officeScenario(options);
}

export interface RunOptions extends ScenarioSpec {
  readonly policy: string;
  readonly accounting?: Accounting;
  readonly onProgress?: (fraction: number) => void;
}

export function runSimulation(opts: RunOptions): SimResult {
  compilePolicy(opts.policy); // validate before reading a large trace
  const scenario = loadScenario(opts);
  return simulate({ scenario, policy: opts.policy, accounting: opts.accounting ?? defaultAccounting(opts), onProgress: opts.onProgress, alwaysOn: !opts.trace });
}

/** PlanetLab traces default to CloudSim's accounting (to compare with its numbers); built-in scenarios to realistic. */
export function defaultAccounting(spec: ScenarioSpec): Accounting {
  return spec.trace ? 'cloudsim' : 'realistic';
}

/** Runs several policies on the same scenario (loaded once). */
export function compareSimulations(opts: ScenarioSpec & { policies: string[]; accounting?: Accounting; onProgress?: (policy: string, fraction: number) => void }): SimResult[] {
  for (const p of opts.policies) compilePolicy(p);
  const scenario = loadScenario(opts);
  const accounting = opts.accounting ?? defaultAccounting(opts);
  // The always-on reference only for built-in scenarios: on an 800-host trace it would double the run time.
  return opts.policies.map((p) => simulate({ scenario, policy: p, accounting, onProgress: (f) => opts.onProgress?.(p, f), alwaysOn: !opts.trace }));
}

/**
 * The `--json` record of one run: stable field names, plain numbers. `alwaysOnKWh` is present
 * for built-in scenarios (null for traces); `timeline` lists every migration and power action.
 */
export function resultRecord(r: SimResult): Record<string, unknown> {
  const figures = timelineFigures(r.timeline);
  return {
    policy: r.policy,
    scenario: r.scenario,
    accounting: r.accounting,
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
