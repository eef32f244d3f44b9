/**
 * The dynamic consolidation round of Beloglazov & Buyya (CCPE 2012) as CloudSim 3.0.3 runs it
 * (PowerVmAllocationPolicyMigrationAbstract.optimizeAllocation), with pluggable overload
 * detection and VM selection and power-aware best-fit-decreasing (PABFD) placement:
 *
 *  1. overloaded hosts: the detector fires, in host order;
 *  2. from each, the selector picks VMs one at a time (removed tentatively) until the host
 *     passes the detector again;
 *  3. those VMs, by decreasing CPU demand, go to the host with the smallest power increase
 *     (PABFD) that has room and would not become overloaded; overloaded hosts are excluded,
 *     switched-off hosts may be woken;
 *  4. underload: every active host in turn, least utilised first, is evacuated if all its VMs
 *     fit on other active hosts (no lower threshold: this is what produces CloudSim's large
 *     migration counts); hosts that received VMs are not evacuated later in the round.
 *
 * Faithfulness (docs/simulator.md, CloudSim's quirks): utilisation used for ranking candidates and for
 * PABFD's "power now" is the start-of-round value. `faithful: true` (the default, and what
 * CloudSim accounting runs) keeps CloudSim's bugs; `faithful: false` (what realistic
 * accounting runs unless told `faithful=true`) fixes them:
 *  - the exclusion set meant to protect step 3's targets is empty in CloudSim, so such a
 *    target can be evacuated again in the same round and a VM is then migrated twice; fixed:
 *    step-3 targets are not evacuated and each VM's moves merge into one;
 *  - the plan's steps are ordered without a capacity check (CloudSim starts them all at once
 *    and reserves no memory); fixed: ordered so no host exceeds CPU, memory or hard rules at
 *    any intermediate state (orderPlan);
 *  - a host at 0 % CPU counts as switched off, so a host of idle VMs is never consolidated;
 *    fixed: only off or empty hosts count as switched off;
 *  - PABFD's "power now" is the start-of-round value, so a host that already received VMs
 *    this round is charged for their power again; fixed: the tentative state's power.
 */
import { z } from 'zod';
import type { OverloadDetector } from '../detect/detector.js';
import { iqrDetector, lrDetector, madDetector, thr } from '../detect/beloglazov.js';
import { ClusterState } from '../model/state.js';
import type { ClusterSnapshot } from '../model/types.js';
import { cpuAvailable, hardRules, hostUsable, memoryFits, notIn, notOverloadedAfter } from '../place/filters.js';
import { allHosts, findHost, summariseRejections, type Placer } from '../place/placement.js';
import { RuleIndex } from '../place/rules.js';
import { powerIncrease } from '../place/scorers.js';
import { failClosed } from '../plan/fail-closed.js';
import { compactMoves, orderPlan, type IntendedMove, type IntendedPower } from '../plan/order.js';
import type { HostVerdict, NotMoved, Plan } from '../plan/types.js';
import { mc, mmt, mu, rs } from '../select/beloglazov.js';
import type { VmSelector } from '../select/selector.js';
import { seededRng } from '../util/rng.js';
import type { PlanContext, Strategy } from './strategy.js';

export const beloglazovArgs = z.object({
  detector: z.enum(['thr', 'iqr', 'mad', 'lr', 'lrr']).default('thr'),
  /** THR: utilisation threshold; IQR/MAD/LR/LRR: safety parameter. */
  param: z.number().positive().optional(),
  selector: z.enum(['mmt', 'mu', 'mc', 'rs']).default('mmt'),
  /** Seed for RS. */
  seed: z.number().int().default(1),
  /** Reproduce CloudSim's exclusion bug and double migrations (see the module comment). */
  faithful: z.boolean().default(true),
  /** Emit power-off steps for evacuated hosts (CloudSim has no explicit power actions). */
  powerOff: z.boolean().default(false),
}).strict();

export type BeloglazovArgs = z.output<typeof beloglazovArgs>;

const DEFAULT_PARAM = { thr: 0.8, iqr: 1.5, mad: 2.5, lr: 1.2, lrr: 1.2 } as const;

export function makeDetector(kind: BeloglazovArgs['detector'], param?: number): OverloadDetector {
  const p = param ?? DEFAULT_PARAM[kind];
  switch (kind) {
    case 'thr': return thr(p);
    case 'iqr': return iqrDetector(p);
    case 'mad': return madDetector(p);
    case 'lr': return lrDetector(p, false);
    case 'lrr': return lrDetector(p, true);
  }
}

function makeSelector(kind: BeloglazovArgs['selector'], seed: number, now: number): VmSelector {
  switch (kind) {
    case 'mmt': return mmt;
    case 'mu': return mu;
    case 'mc': return mc;
    // A fresh generator per round, derived from the seed and the time: reproducible, and not
    // the same picks every round.
    case 'rs': return rs(seededRng((seed * 2654435761) ^ Math.floor(now)));
  }
}

const fmt = (x: number, d = 2): string => x.toFixed(d);

interface RawMove {
  vm: number;
  from: number;
  to: number;
  reason: string;
  by: string;
}

export function planBeloglazov(input: ClusterSnapshot, args: BeloglazovArgs, ctx: PlanContext): Plan {
  // These policies move VMs one by one and cannot keep a hard affinity group together, so
  // they leave the members of such groups where they are.
  const affine = new Set(input.rules.flatMap((r) => (r.kind === 'affinity' && r.strength === 'hard' ? r.vms : [])));
  const detector = makeDetector(args.detector, args.param);
  const selector = makeSelector(args.selector, args.seed, ctx.now);
  const label = `${detector.name}/${selector.name}/pabfd`;
  // Unknown hosts and unmeasured VMs are left alone (see fail-closed.ts); in the simulator
  // there are none, and the snapshot passes through unchanged.
  const blind = failClosed(input, label);
  const known = blind.snapshot;
  const snapshot = affine.size === 0 ? known : { ...known, vms: known.vms.map((v) => (affine.has(v.id) ? { ...v, migratable: false } : v)) };
  const s = new ClusterState(snapshot, { historyWindow: 30 });
  const start = s.mark();
  const rules = new RuleIndex(s);
  const nh = s.hosts.length;
  const verdicts: HostVerdict[] = [...blind.verdicts];
  const notMoved: NotMoved[] = [];
  const raw: RawMove[] = [];
  const candidates = (): number[] => (ctx.explain ? allHosts(s) : s.placementCandidates());

  // 1. Overloaded hosts, in host order.
  const over = new Uint8Array(nh);
  const overList: number[] = [];
  for (let h = 0; h < nh; h++) {
    const host = s.hosts[h]!;
    if (host.excluded || s.isEmpty(h) || blind.unknownHost[h] || blind.unmeasured[h]) continue;
    const a = detector.assess(s, h);
    if (a.overloaded) {
      over[h] = 1;
      overList.push(h);
      verdicts.push({ host: host.id, class: 'overloaded', reason: `${a.by}: ${fmt(a.value, 3)} vs threshold ${fmt(a.threshold, 3)}`, by: detector.name });
    }
  }
  // Maintenance hosts are evacuated like overloaded ones (every VM must go).
  const maintenance = new Uint8Array(nh);
  for (let h = 0; h < nh; h++) if (s.hosts[h]!.maintenance) maintenance[h] = 1;

  // 2. VMs to migrate from each overloaded (or maintenance) host.
  const selected: { v: number; from: number }[] = [];
  for (let h = 0; h < nh; h++) {
    if (maintenance[h]) {
      for (const v of [...s.vmsOn(h)]) if (s.vms[v]!.migratable) {
        selected.push({ v, from: h });
        s.move(v, -1);
      }
      continue;
    }
    if (!over[h]) continue;
    for (;;) {
      const v = selector.select(s, h);
      if (v < 0) break;
      selected.push({ v, from: h });
      s.move(v, -1);
      if (!detector.isOverloaded(s, h)) break;
    }
  }

  // 3. Place them: PABFD by decreasing demand; overloaded hosts excluded, off hosts allowed.
  const excludedForOverload = new Uint8Array(nh);
  for (let h = 0; h < nh; h++) if (over[h] || maintenance[h]) excludedForOverload[h] = 1;
  const pabfd = (excluded: Uint8Array, allowWake: boolean): Placer => ({
    filters: [
      hostUsable({ allowWake }),
      notIn(excluded, 'excluded-this-round', 'set aside this round (overloaded, evacuated or switched off)'),
      cpuAvailable,
      memoryFits,
      hardRules(rules),
      notOverloadedAfter(detector),
    ],
    scorers: [{ scorer: powerIncrease(s, { startOfRound: args.faithful }), weight: 1 }],
  });
  const overloadPlacer = pabfd(excludedForOverload, true);
  const byDemandDesc = (a: number, b: number): number => s.vms[b]!.demand.cpuMips - s.vms[a]!.demand.cpuMips;
  selected.sort((a, b) => byDemandDesc(a.v, b.v));
  const step3Targets = new Uint8Array(nh);
  for (const { v, from } of selected) {
    const r = findHost(s, overloadPlacer, v, candidates(), ctx.explain);
    if (r.host < 0) {
      s.move(v, from);
      notMoved.push({
        vm: s.vms[v]!.id, host: s.hosts[from]!.id, code: 'no-host-fits',
        reason: `${s.hosts[from]!.id} is ${maintenance[from] ? 'in maintenance' : 'overloaded'} but no host can take ${s.vms[v]!.id} (${fmt(s.vms[v]!.demand.cpuMips, 0)} MIPS)`,
        by: label, rejections: summariseRejections(ctx.explain ? r.rejections : findHost(s, overloadPlacer, v, allHosts(s), true).rejections),
      });
      continue;
    }
    s.move(v, r.host);
    step3Targets[r.host] = 1;
    raw.push({
      vm: v, from, to: r.host, by: `${maintenance[from] ? 'maintenance' : 'overload'}:${label}`,
      reason: maintenance[from]
        ? `${s.hosts[from]!.id} is in maintenance; ${s.hosts[r.host]!.id} adds the least power`
        : `${s.hosts[from]!.id} overloaded; ${selector.name} chose ${s.vms[v]!.id}; ${s.hosts[r.host]!.id} adds the least power`,
    });
  }

  // 4. Underload: evacuate active hosts, least utilised first, when every VM fits elsewhere.
  // CloudSim has no power states: a host at 0 % CPU is "switched off" (it can be neither
  // evacuated nor a target). Its VMs at 0 demand are removed, so that host is empty there; where
  // idle VMs stay (realistic accounting, real clusters) it is a host of idle VMs, the best
  // candidate of all, so the fixed port goes by power state and emptiness instead.
  const switchedOff = new Uint8Array(nh);
  for (let h = 0; h < nh; h++) {
    const off = args.faithful ? s.uNow[h] === 0 : s.isEmpty(h);
    if (off || s.powerState(h) !== 'on') switchedOff[h] = 1;
  }
  const exclCandidate = new Uint8Array(nh);
  const exclTarget = new Uint8Array(nh);
  for (let h = 0; h < nh; h++) {
    if (over[h] || switchedOff[h] || maintenance[h] || s.hosts[h]!.excluded) exclCandidate[h] = exclTarget[h] = 1;
    if (blind.unmeasured[h]) exclCandidate[h] = 1;
    if (!args.faithful && step3Targets[h]) exclCandidate[h] = 1;
  }
  const underPlacer = pabfd(exclTarget, false);
  for (;;) {
    let cand = -1;
    let minU = 1;
    for (let h = 0; h < nh; h++) {
      if (exclCandidate[h]) continue;
      const u = s.uNow[h]!;
      if ((u > 0 || !args.faithful) && u < minU) {
        minU = u;
        cand = h;
      }
    }
    if (cand < 0) break;
    exclCandidate[cand] = 1;
    exclTarget[cand] = 1;
    const vms = [...s.vmsOn(cand)];
    if (vms.length === 0) continue;
    // Also a VM of unknown usage that an overload or maintenance move brought here.
    if (vms.some((v) => !s.vms[v]!.migratable || s.vms[v]!.usage === 'unknown')) continue;
    vms.sort(byDemandDesc);
    const targets = candidates().filter((h) => !exclTarget[h]);
    const mark = s.mark();
    const moves: RawMove[] = [];
    let ok = true;
    for (const v of vms) {
      const r = findHost(s, underPlacer, v, targets);
      if (r.host < 0) {
        ok = false;
        break;
      }
      moves.push({
        vm: v, from: cand, to: r.host, by: `underload:${label}`,
        reason: `${s.hosts[cand]!.id} is the least utilised active host (${fmt(minU * 100, 1)} % CPU) and all its VMs fit elsewhere; ${s.hosts[r.host]!.id} adds the least power`,
      });
      s.move(v, r.host);
    }
    if (!ok) {
      s.rollback(mark);
      continue;
    }
    raw.push(...moves);
    for (const m of moves) exclCandidate[m.to] = 1;
    verdicts.push({ host: s.hosts[cand]!.id, class: 'underloaded', reason: `evacuated: ${moves.length} VM(s) moved away at ${fmt(minU * 100, 1)} % CPU`, by: label });
  }

  // 5. The plan: raw moves (faithful: a VM may move twice) or one net move per VM.
  const intended: IntendedMove[] = args.faithful
    ? raw.map((m) => ({ vm: m.vm, to: m.to, reason: m.reason, by: m.by }))
    : compactMoves(raw).map((m) => ({ vm: m.vm, to: m.to, reason: m.last.reason, by: m.last.by }));
  const powerOn: IntendedPower[] = [];
  const woken = new Set<number>();
  for (const m of intended) {
    if (s.powerState(m.to) !== 'on' && !woken.has(m.to)) {
      woken.add(m.to);
      powerOn.push({ host: m.to, reason: `${s.hosts[m.to]!.id} is ${s.powerState(m.to)} and PABFD chose it for ${s.vms[m.vm]!.id}`, by: label });
    }
  }
  const powerOff: IntendedPower[] = [];
  if (args.powerOff) {
    for (let h = 0; h < nh; h++) {
      if (s.powerState(h) === 'on' && s.isEmpty(h)) {
        powerOff.push({ host: h, reason: `${s.hosts[h]!.id} is empty after consolidation`, by: `underload:${label}` });
      }
    }
  }
  const ordered = orderPlan(s, { moves: intended, powerOn, powerOff, checkCapacity: !args.faithful }, start);
  return {
    policy: label,
    time: snapshot.time,
    steps: ordered.steps,
    hosts: verdicts,
    notMoved: [...notMoved, ...ordered.deferred],
  };
}

export const beloglazov: Strategy<BeloglazovArgs> = {
  name: 'beloglazov',
  summary: 'Beloglazov & Buyya dynamic consolidation (detector + selector + PABFD + underload evacuation), as in CloudSim',
  args: beloglazovArgs,
  plan: planBeloglazov,
};
