/**
 * Properties of plans on random clusters (fast-check):
 *  1. executing the steps in any order the dependencies allow, with several migrations in
 *     flight at once (a VM counts on both hosts while it moves), never puts more memory or CPU
 *     demand on a host than it has, never breaks a hard rule that was not broken before, and
 *     only powers off empty hosts that are on;
 *  2. planning again on the state the plan leads to (same load, same time) proposes nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClusterState } from '../../src/core/model/state.js';
import type { ClusterSnapshot, Host, PowerState, Rule, Vm } from '../../src/core/model/types.js';
import { RuleIndex } from '../../src/core/place/rules.js';
import { compilePolicy, plan } from '../../src/core/policy.js';
import type { Plan, Step } from '../../src/core/plan/types.js';
import { host, vm } from '../helpers/cluster.js';

const T = 1_000_000;

const hostArb = fc.record({
  cores: fc.integer({ min: 1, max: 4 }),
  mipsPerCore: fc.constantFrom(1000, 2000),
  memMiB: fc.constantFrom(2048, 4096, 8192),
  state: fc.constantFrom<PowerState | 'maint'>('on', 'on', 'on', 'on', 'off', 'maint'),
});
const vmArb = fc.record({
  host: fc.nat(),
  vcpus: fc.integer({ min: 1, max: 2 }),
  mipsPerVcpu: fc.constantFrom(500, 1000),
  memMiB: fc.integer({ min: 256, max: 2048 }),
  levels: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 14 }),
});
const ruleArb = fc.record({
  kind: fc.constantFrom('antiAffinity', 'affinity', 'pin'),
  strength: fc.constantFrom('hard', 'soft'),
  vms: fc.uniqueArray(fc.nat(), { minLength: 1, maxLength: 3 }),
  hosts: fc.uniqueArray(fc.nat(), { minLength: 1, maxLength: 2 }),
});

/** A valid random cluster: VMs only on hosts that are on (or in maintenance) and fit in memory. */
const clusterArb = fc.record({
  hosts: fc.array(hostArb, { minLength: 2, maxLength: 7 }),
  vms: fc.array(vmArb, { maxLength: 16 }),
  rules: fc.array(ruleArb, { maxLength: 3 }),
}).map(({ hosts: hs, vms: vs, rules: rs }): ClusterSnapshot => {
  const hosts: Host[] = hs.map((h, i) => host(`h${i}`, {
    cpuCores: h.cores, mipsPerCore: h.mipsPerCore, memMiB: h.memMiB,
    powerState: h.state === 'maint' ? 'on' : h.state, maintenance: h.state === 'maint',
  }));
  const usable = hosts.map((_, i) => i).filter((i) => hosts[i]!.powerState === 'on');
  const mem = new Array<number>(hosts.length).fill(0);
  const vms: Vm[] = [];
  vs.forEach((v, i) => {
    if (usable.length === 0) return;
    const h = usable[v.host % usable.length]!;
    if (mem[h]! + v.memMiB > hosts[h]!.memMiB) return;
    mem[h]! += v.memMiB;
    const size = v.vcpus * v.mipsPerVcpu;
    const history = v.levels.map((l) => Math.round(l * size));
    vms.push(vm(`v${i}`, `h${h}`, { vcpus: v.vcpus, mipsPerVcpu: v.mipsPerVcpu, memMiB: v.memMiB, history }));
  });
  const rules: Rule[] = [];
  rs.forEach((r, i) => {
    if (vms.length === 0) return;
    const ids = [...new Set(r.vms.map((x) => vms[x % vms.length]!.id))];
    if (r.kind === 'pin') rules.push({ kind: 'pin', id: `r${i}`, vm: ids[0]!, hosts: r.hosts.map((x) => hosts[x % hosts.length]!.id), strength: r.strength as 'hard' | 'soft' });
    else if (ids.length >= 2) rules.push({ kind: r.kind as 'affinity' | 'antiAffinity', id: `r${i}`, vms: ids, strength: r.strength as 'hard' | 'soft' });
  });
  return { time: T, sampleIntervalSec: 300, hosts, vms, rules };
});

function hardViolations(s: ClusterState, rules: RuleIndex): number {
  let n = 0;
  for (let v = 0; v < s.vms.length; v++) if (rules.brokenHere(s, v)) n++;
  return n;
}

/**
 * Runs `plan` with a random interleaving: at each point either start a ready step (all deps
 * done) or finish a running one. A migrating VM occupies source and target until it finishes.
 */
function execute(snapshot: ClusterSnapshot, p: Plan, pick: (n: number) => number): string | null {
  const s = new ClusterState(snapshot, { historyWindow: 1 });
  const rules = new RuleIndex(s);
  const power = new Map(snapshot.hosts.map((h) => [h.id, h.powerState]));
  const startViolations = hardViolations(s, rules);
  const inflightMem = new Map<string, number>();
  const inflightCpu = new Map<string, number>();
  const done = new Set<number>();
  const running: Step[] = [];
  const pending = [...p.steps];
  const startCpu = new Map(snapshot.hosts.map((h, i) => [h.id, s.reqMips[i]!]));
  const check = (): string | null => {
    for (let h = 0; h < s.hosts.length; h++) {
      const id = s.hosts[h]!.id;
      const mem = s.memReservedMiB[h]! + (inflightMem.get(id) ?? 0);
      if (mem > s.hosts[h]!.memMiB + 1e-6) return `memory on ${id}: ${mem} > ${s.hosts[h]!.memMiB}`;
      const cpu = s.reqMips[h]! + (inflightCpu.get(id) ?? 0);
      if (cpu > Math.max(s.capMips[h]!, startCpu.get(id)!) + 1e-6) return `cpu on ${id}: ${cpu} > ${s.capMips[h]}`;
    }
    const viol = hardViolations(s, rules);
    return viol > startViolations ? `hard rule violations rose from ${startViolations} to ${viol}` : null;
  };
  while (pending.length > 0 || running.length > 0) {
    const ready = pending.filter((st) => st.deps.every((d) => done.has(d)));
    const choices = ready.length + running.length;
    if (choices === 0) return `deadlock with ${pending.length} steps pending`;
    const k = pick(choices);
    if (k < ready.length) {
      const st = ready[k]!;
      pending.splice(pending.indexOf(st), 1);
      if (st.kind === 'powerOn') {
        power.set(st.host, 'on');
        done.add(st.id);
      } else if (st.kind === 'powerOff') {
        const h = s.hostIndex(st.host);
        if (!s.isEmpty(h)) return `power-off of non-empty ${st.host}`;
        if (power.get(st.host) !== 'on') return `power-off of ${st.host}, which is ${power.get(st.host)}`;
        power.set(st.host, 'off');
        done.add(st.id);
      } else {
        if (power.get(st.to) !== 'on') return `${st.vm} started towards ${st.to}, which is ${power.get(st.to)}`;
        const v = s.vms[s.vmIndex(st.vm)]!;
        inflightMem.set(st.to, (inflightMem.get(st.to) ?? 0) + v.memReservedMiB);
        inflightCpu.set(st.to, (inflightCpu.get(st.to) ?? 0) + v.demand.cpuMips);
        running.push(st);
      }
    } else {
      const st = running.splice(k - ready.length, 1)[0]!;
      if (st.kind !== 'migrate' && st.kind !== 'place') continue;
      const v = s.vmIndex(st.vm);
      inflightMem.set(st.to, inflightMem.get(st.to)! - s.vms[v]!.memReservedMiB);
      inflightCpu.set(st.to, inflightCpu.get(st.to)! - s.vms[v]!.demand.cpuMips);
      s.move(v, s.hostIndex(st.to));
      done.add(st.id);
    }
    const err = check();
    if (err) return err;
  }
  return null;
}

/** The snapshot the plan leads to: VMs where the plan put them, hosts powered as it said. */
function applied(snapshot: ClusterSnapshot, p: Plan): ClusterSnapshot {
  const where = new Map(snapshot.vms.map((v) => [v.id, v.host]));
  const power = new Map(snapshot.hosts.map((h) => [h.id, h.powerState]));
  for (const st of p.steps) {
    if (st.kind === 'migrate' || st.kind === 'place') where.set(st.vm, st.to);
    else power.set(st.host, st.kind === 'powerOn' ? 'on' : 'off');
  }
  return {
    ...snapshot,
    hosts: snapshot.hosts.map((h) => ({ ...h, powerState: power.get(h.id)! })),
    vms: snapshot.vms.map((v) => ({ ...v, host: where.get(v.id)! })),
  };
}

describe('plan properties (random clusters)', () => {
  for (const spec of ['tide', 'tide:scorer=spread', 'thr-mmt:faithful=false,param=0.8']) {
    it(`${spec}: any dependency-respecting execution keeps capacity and hard rules`, () => {
      const policy = compilePolicy(spec);
      fc.assert(fc.property(clusterArb, fc.array(fc.nat(), { maxLength: 200 }), (snap, picks) => {
        const p = plan(snap, policy, T);
        let i = 0;
        const err = execute(snap, p, (n) => (picks[i++ % Math.max(1, picks.length)] ?? 0) % n);
        expect(err).toBeNull();
      }), { numRuns: 300 });
    });
  }

  it('tide: planning again on the result proposes nothing', () => {
    const policy = compilePolicy('tide');
    fc.assert(fc.property(clusterArb, (snap) => {
      const first = plan(snap, policy, T);
      const second = plan(applied(snap, first), policy, T);
      expect(second.steps.map((s) => `${s.kind} ${'vm' in s ? s.vm : s.host}`)).toEqual([]);
    }), { numRuns: 500 });
  });
});
