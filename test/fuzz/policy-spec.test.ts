/**
 * Property tests of policy specs (`NAME[:PARAM]`, `NAME:key=value,…`): any string either
 * compiles to arguments that pass the strategy's schema again, or is refused with a
 * PolicyError naming the policy — never another exception; and a compiled spec plans a small
 * cluster without NaN. Bounded: fixed numRuns, small strings.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicy, plan, policies, PolicyError } from '../../src/core/policy.js';
import { syntheticCluster } from '../../src/sim/synthetic.js';

const names = Object.keys(policies);
const keys = ['targetUtil', 'consolidateUtil', 'z', 'windowSamples', 'spareHosts', 'param', 'seed', 'faithful', 'powerOff', 'scorer', '__proto__', 'constructor', '', ' '];
const values = ['0.8', '1.2', '0', '-0', '-1', '1e9', '1e400', 'NaN', 'Infinity', '', ' 5', '0x10', 'true', 'pack', '2', '0.1e1', '=', ','];
const specArb = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.tuple(fc.constantFrom(...names, 'TIDE', ' tide', 'nope', ''), fc.constantFrom(...values)).map(([n, v]) => `${n}:${v}`),
  fc.tuple(fc.constantFrom(...names), fc.array(fc.tuple(fc.constantFrom(...keys), fc.constantFrom(...values)), { minLength: 1, maxLength: 3 }))
    .map(([n, kvs]) => `${n}:${kvs.map(([k, v]) => `${k}=${v}`).join(',')}`),
);

describe('policy specs under hostile input', () => {
  it('compile to valid arguments or fail with a PolicyError naming the policy', () => {
    let ok = 0;
    fc.assert(fc.property(specArb, (spec) => {
      try {
        const p = compilePolicy(spec);
        ok++;
        // the compiled arguments satisfy the strategy's schema (ranges) and hold no NaN
        expect(p.definition.strategy.args.safeParse(p.args).success).toBe(true);
        expect(JSON.stringify(p.args)).not.toMatch(/NaN|null/);
        expect(Object.getPrototypeOf(p.args)).toBe(Object.prototype);
      } catch (e) {
        if (!(e instanceof PolicyError)) throw e;
        expect(e.message).toMatch(/policy/);
      }
    }), { numRuns: 500, seed: 71 });
    expect(ok).toBeGreaterThan(0);
  });

  it('reads decimal notation only: hex, blanks and Infinity are refused', () => {
    expect(() => compilePolicy('lr-mmt:0x10')).toThrow(PolicyError);
    expect(() => compilePolicy('lr-mmt: 5')).toThrow(PolicyError);
    expect(() => compilePolicy('tide:targetUtil=Infinity')).toThrow(/targetUtil/);
    expect(() => compilePolicy('tide:__proto__=1')).toThrow(/Unrecognized key/);
    expect(() => compilePolicy('tide:z=1,z=2')).toThrow(/'z' given twice/);
    expect(() => compilePolicy('lr-mmt:-0')).toThrow(/param: /);
    expect(compilePolicy('tide:spareHosts=-0').args).toMatchObject({ spareHosts: 0 });
  });

  it('a compiled spec plans a small cluster without NaN in the plan', () => {
    const snapshot = syntheticCluster({ hosts: 6, vms: 30, seed: 3 });
    fc.assert(fc.property(specArb, (spec) => {
      let p;
      try {
        p = compilePolicy(spec);
      } catch (e) {
        if (e instanceof PolicyError) return;
        throw e;
      }
      const out = plan(snapshot, p, snapshot.time);
      expect(JSON.stringify(out, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? `BAD:${v}` : v))).not.toContain('BAD:');
    }), { numRuns: 80, seed: 72 });
  });
});
