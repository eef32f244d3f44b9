/**
 * Named policies: a strategy plus arguments, addressable as `NAME[:PARAM]` or
 * `NAME:key=value,key=value` (e.g. `lr-mmt:1.2`, `thr-rs:0.8`, `tide:targetUtil=0.75`).
 * `plan(snapshot, policy, now)` is the one entry point of the planner.
 */
import { freezePlan } from './freeze.js';
import type { ClusterSnapshot } from './model/types.js';
import type { Plan } from './plan/types.js';
import { beloglazov, type BeloglazovArgs } from './strategies/beloglazov.js';
import { staticStrategy } from './strategies/static.js';
import type { PlanContext, Strategy } from './strategies/strategy.js';
import { tide } from './strategies/tide.js';

export interface PolicyDefinition {
  readonly name: string;
  readonly summary: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly strategy: Strategy<any>;
  /** Arguments before the user's (the user's override them). */
  readonly baseArgs: Record<string, unknown>;
  /** The argument a bare `NAME:VALUE` sets, if any. */
  readonly positional?: string;
  /**
   * How the simulator sets the datacenter up for this policy (CloudSim's runners differ), and
   * the arguments it needs in realistic accounting (where an empty host stays on unless the
   * plan powers it off).
   */
  readonly sim: { readonly initialPlacement: 'pabfd' | 'first-fit'; readonly nonPowerAware?: boolean; readonly realisticArgs?: Record<string, unknown> };
}

export interface CompiledPolicy {
  /** Canonical label, e.g. `lr-mmt:1.2`. */
  readonly label: string;
  readonly definition: PolicyDefinition;
  /** Validated arguments with defaults applied. */
  readonly args: unknown;
}

export class PolicyError extends Error {
  readonly code = 'TIDE_POLICY';
}

const DETECTORS = ['thr', 'iqr', 'mad', 'lr', 'lrr'] as const;
const SELECTORS = ['mmt', 'mu', 'mc', 'rs'] as const;

function beloglazovPolicy(d: (typeof DETECTORS)[number], s: (typeof SELECTORS)[number]): PolicyDefinition {
  const base: Partial<BeloglazovArgs> = { detector: d, selector: s };
  return {
    name: `${d}-${s}`,
    summary: `${d.toUpperCase()} overload detection, ${s.toUpperCase()} VM selection, PABFD placement (Beloglazov & Buyya; CloudSim port)`,
    strategy: beloglazov,
    baseArgs: base,
    positional: 'param',
    // Realistic accounting runs the ports with CloudSim's bugs fixed (no double migrations,
    // capacity-checked step order, hosts of idle VMs consolidated; beloglazov.ts);
    // `NAME:faithful=true` keeps CloudSim's behaviour there too.
    sim: { initialPlacement: 'pabfd', realisticArgs: { powerOff: true, faithful: false } },
  };
}

export const policies: Record<string, PolicyDefinition> = {
  npa: { name: 'npa', summary: 'non-power-aware: every host at full power, no migrations (CloudSim NPA)', strategy: staticStrategy, baseArgs: {}, sim: { initialPlacement: 'first-fit', nonPowerAware: true } },
  dvfs: { name: 'dvfs', summary: 'power draw follows load, static first-fit placement, no migrations (CloudSim DVFS)', strategy: staticStrategy, baseArgs: {}, sim: { initialPlacement: 'first-fit' } },
  ...Object.fromEntries(DETECTORS.flatMap((d) => SELECTORS.map((s) => [`${d}-${s}`, beloglazovPolicy(d, s)]))),
  tide: { name: 'tide', summary: "Tide's default: forecast-aware, migration-cost-aware, flap-free consolidation", strategy: tide, baseArgs: {}, positional: 'targetUtil', sim: { initialPlacement: 'pabfd' } },
};

/** Decimal notation only: `0x10`, ` 5`, `Infinity` and `` stay strings and fail the schema. */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function parseValue(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  const n = DECIMAL.test(raw) ? Number(raw) : NaN;
  return Number.isFinite(n) ? (n === 0 ? 0 : n) : raw;
}

/** The definition a `NAME[:…]` spec names; throws a PolicyError listing the known names. */
export function policyDefinition(spec: string): PolicyDefinition {
  const name = spec.includes(':') ? spec.slice(0, spec.indexOf(':')) : spec;
  const def = Object.hasOwn(policies, name.trim().toLowerCase()) ? policies[name.trim().toLowerCase()] : undefined;
  if (!def) throw new PolicyError(`unknown policy '${name}' (known: ${Object.keys(policies).join(', ')})`);
  return def;
}

/** Parses and validates `NAME[:PARAM]` / `NAME:k=v,…`; errors name the policy and the argument. */
export function compilePolicy(spec: string, extraArgs: Record<string, unknown> = {}): CompiledPolicy {
  const rest = spec.includes(':') ? spec.slice(spec.indexOf(':') + 1) : undefined;
  const def = policyDefinition(spec);
  // No prototype: a key such as `__proto__` is an unknown argument, not a prototype change.
  const user = Object.create(null) as Record<string, unknown>;
  if (rest !== undefined && rest !== '') {
    if (!rest.includes('=')) {
      if (!def.positional) throw new PolicyError(`policy '${def.name}' takes no parameter (got '${rest}')`);
      const v = parseValue(rest);
      if (typeof v !== 'number') throw new PolicyError(`policy '${def.name}': parameter '${rest}' is not a number`);
      user[def.positional] = v;
    } else {
      for (const kv of rest.split(',')) {
        const i = kv.indexOf('=');
        if (i <= 0) throw new PolicyError(`policy '${def.name}': '${kv}' is not key=value`);
        const key = kv.slice(0, i).trim();
        if (Object.hasOwn(user, key)) throw new PolicyError(`policy '${def.name}': '${key}' given twice`);
        user[key] = parseValue(kv.slice(i + 1).trim());
      }
    }
  }
  const r = def.strategy.args.safeParse({ ...def.baseArgs, ...extraArgs, ...user });
  if (!r.success) {
    const why = r.error.issues.map((i: { path: PropertyKey[]; message: string }) => `${i.path.map(String).join('.') || '(args)'}: ${i.message}`).join('; ');
    throw new PolicyError(`policy '${spec}': invalid arguments: ${why}`);
  }
  return { label: rest !== undefined && rest !== '' ? `${def.name}:${rest}` : def.name, definition: def, args: r.data };
}

/**
 * The planner's single entry point: a pure function of snapshot, policy and time. A snapshot
 * carrying a telemetry freeze gets the strategy's plan with every automatic step turned into a
 * 'frozen' non-move (freezePlan), whatever the strategy.
 */
export function plan(snapshot: ClusterSnapshot, policy: CompiledPolicy, now: number, ctx: Omit<PlanContext, 'now'> = {}): Plan {
  const p = policy.definition.strategy.plan(snapshot, policy.args, { ...ctx, now });
  return snapshot.freeze ? freezePlan(p, snapshot, snapshot.freeze) : p;
}
