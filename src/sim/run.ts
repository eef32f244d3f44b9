/**
 * The simulator's programmatic API: run one policy over one scenario and report CloudSim's
 * metrics (plus Tide's own: energy lower bound, power actions).
 */
import { compilePolicy, plan, policyDefinition, type CompiledPolicy } from '../core/policy.js';
import type { PowerModel } from '../core/model/types.js';
import { Engine, type Accounting, type SimMetrics } from './engine.js';
import type { SimScenario } from './scenario.js';

export interface SimRunOptions {
  readonly scenario: SimScenario;
  readonly policy: string | CompiledPolicy;
  readonly accounting?: Accounting;
  readonly onProgress?: (fraction: number) => void;
  /** Also run the always-on reference (every host on, VMs spread, no planner) and report its energy. */
  readonly alwaysOn?: boolean;
  /**
   * Recommend mode first, s (default 0: a cold start): the planner's plans are computed but
   * nothing is carried out until then, and every figure (the lower bound and the always-on
   * reference too) covers the acting period after it (EngineOptions.observeSec).
   */
  readonly observeSec?: number;
}

export interface SimResult extends SimMetrics {
  readonly policy: string;
  readonly scenario: string;
  readonly accounting: Accounting;
  readonly hosts: number;
  readonly vms: number;
  /** energyKWh ÷ lowerBoundKWh. */
  readonly energyRatio: number;
  readonly wallMs: number;
  /** Energy of the same scenario with every host on and the VMs left spread as placed (only with `alwaysOn`), kWh. */
  readonly alwaysOnKWh?: number;
}

/**
 * The always-on reference: the same scenario and accounting, the VMs spread by the power-aware
 * initial placement (PABFD puts each VM where the power increase is least, i.e. onto the
 * emptiest host), every host kept on and no planner, so nothing moves and nothing powers off.
 */
export function alwaysOnEnergyKWh(scenario: SimScenario, accounting: Accounting, observeSec = 0): number {
  const sc = accounting === 'realistic' ? withRealisticPower(scenario) : scenario;
  return new Engine(sc, { accounting, initialPlacement: 'pabfd', allHostsOn: true, observeSec }).run(null).energyKWh;
}

/**
 * Power models for realistic accounting: a host that is off still draws standby power
 * (BMC, fans at rest: 5 % of idle), and powering on takes 2 minutes at idle draw, unless the
 * scenario's model says otherwise.
 */
export function withRealisticPower(scenario: SimScenario): SimScenario {
  const fix = (p: PowerModel): PowerModel => ({
    ...p,
    offW: p.offW > 0 ? p.offW : Math.round(p.wattsAtLoad[0]! * 0.05 * 10) / 10,
    bootSec: p.bootSec > 0 ? p.bootSec : 120,
    bootW: p.bootW > 0 ? p.bootW : p.wattsAtLoad[0]!,
  });
  return { ...scenario, hosts: scenario.hosts.map((h) => ({ ...h, power: fix(h.power) })) };
}

export function simulate(opts: SimRunOptions): SimResult {
  const accounting = opts.accounting ?? 'cloudsim';
  const realistic = accounting === 'realistic';
  // Realistic accounting needs explicit power-off steps: an empty host stays on otherwise.
  const policy = typeof opts.policy === 'string'
    ? compilePolicy(opts.policy, realistic ? (policyDefinition(opts.policy).sim.realisticArgs ?? {}) : {})
    : opts.policy;
  const scenario = realistic ? withRealisticPower(opts.scenario) : opts.scenario;
  const t0 = performance.now();
  const engine = new Engine(scenario, {
    accounting,
    initialPlacement: policy.definition.sim.initialPlacement,
    nonPowerAware: policy.definition.sim.nonPowerAware,
    onProgress: opts.onProgress,
    observeSec: opts.observeSec,
  });
  const metrics = engine.run((snapshot, now) => plan(snapshot, policy, now));
  const wallMs = performance.now() - t0;
  return {
    policy: policy.label,
    scenario: scenario.name,
    accounting,
    hosts: scenario.hosts.length,
    vms: scenario.vms.length,
    ...metrics,
    energyRatio: metrics.lowerBoundKWh > 0 ? metrics.energyKWh / metrics.lowerBoundKWh : NaN,
    wallMs,
    ...(opts.alwaysOn ? { alwaysOnKWh: alwaysOnEnergyKWh(opts.scenario, accounting, opts.observeSec) } : {}),
  };
}
