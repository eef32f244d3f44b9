/**
 * Planning for the operator's two direct requests, as pure functions of a snapshot (no driver,
 * no clock): evacuating a host (maintenance) and placing a defined, not-running VM. Both use
 * the placement pipeline the strategies use (filters → weighted scorers, src/core/place) on a
 * working copy of the cluster, so each decision sees the ones before it (an anti-affine
 * sibling moved a moment ago blocks its host), and both explain every host they did not
 * choose: which filter rejected it, with the numbers.
 *
 * The executor runs the result like any other plan (src/executor/executor.ts).
 */
import { ClusterState } from '../model/state.js';
import type { ClusterSnapshot, HostId, VmId } from '../model/types.js';
import { hardRules, hostUsable, ioFits, memoryFits } from '../place/filters.js';
import { allHosts, summariseRejections, type HostFilter, type HostScorer, type Placer, type Rejection } from '../place/placement.js';
import { RuleIndex } from '../place/rules.js';
import { leastAllocated, mostAllocated, softRules } from '../place/scorers.js';
import type { MigrateStep, NotMoved, PlaceStep, Plan } from './types.js';

export interface DirectPlanOptions {
  /**
   * A target's CPU demand after the move may use at most this share of its capacity, 0..1
   * (tide's targetUtil): a host with free memory but no CPU headroom is not a target.
   */
  readonly cpuLimit?: number;
  /** Share of a host's disk/network bandwidth the VMs may use (default 0.8). */
  readonly ioLimit?: number;
  /** spread (default): the host with the most room left; pack: the fullest host that fits. */
  readonly scorer?: 'spread' | 'pack';
  /** Hosts that cannot take VMs now, with why (e.g. their hypervisor did not answer). */
  readonly unavailable?: Readonly<Record<HostId, string>>;
}

export interface EvacuationRequest extends DirectPlanOptions {
  readonly host: HostId;
  /** Only these hosts may receive VMs (default: every other usable host). */
  readonly targets?: readonly HostId[];
}

/** How one candidate host fared for one VM: passed every filter (with its score) or not. */
export interface HostAssessment {
  readonly host: HostId;
  readonly fits: boolean;
  /** Weighted score 0..100 when it fits. */
  readonly score: number | null;
  /** The filter that rejected it, its stable code and a sentence with the numbers. */
  readonly by?: string;
  readonly code?: string;
  readonly reason: string;
}

export interface DirectPlan extends Plan {
  /** For each VM the plan considered: every host and how it fared (chosen one first). */
  readonly assessments: Readonly<Record<VmId, readonly HostAssessment[]>>;
}

const fmt = (x: number, d = 0): string => x.toFixed(d);

interface Pipeline {
  readonly state: ClusterState;
  readonly placer: Placer;
  assess(v: number): HostAssessment[];
}

/**
 * The filters and scorers of a direct request. CPU is the VMs' demand, as tide's own filters
 * count it (a host's measured total also holds load Tide cannot move or attribute, e.g. other
 * tenants of a shared machine, and would make the verdict depend on it).
 */
function pipeline(snapshot: ClusterSnapshot, opts: DirectPlanOptions, notTarget: (h: number) => string | null): Pipeline {
  const s = new ClusterState(snapshot, { historyWindow: 1 });
  const rules = new RuleIndex(s);
  const cpuLimit = opts.cpuLimit ?? 0.9;
  const load = (h: number): number => s.reqMips[h]!;
  const unavailable = opts.unavailable ?? {};
  const target: HostFilter = {
    name: 'target',
    check: (st, _v, h) => (Object.hasOwn(unavailable, st.hosts[h]!.id) ? 'unavailable' : notTarget(h)),
    explain: (st, _v, h, code) => `${st.hosts[h]!.id}: ${code === 'unavailable' ? unavailable[st.hosts[h]!.id] : code === 'evacuating' ? 'the host being evacuated' : 'not among the allowed targets'}`,
  };
  const cpu: HostFilter = {
    name: 'cpu',
    check: (st, v, h) => {
      const vm = st.vms[v]!;
      if (vm.vcpus > 0 && vm.demand.cpuMips / vm.vcpus > st.hosts[h]!.mipsPerCore) return 'cpu-core-too-small';
      return load(h) + vm.demand.cpuMips > cpuLimit * st.capMips[h]! ? 'insufficient-cpu' : null;
    },
    explain: (st, v, h, code) => {
      const vm = st.vms[v]!;
      return code === 'cpu-core-too-small'
        ? `${st.hosts[h]!.id}: a core gives ${fmt(st.hosts[h]!.mipsPerCore)} MIPS, ${vm.id} needs ${fmt(vm.demand.cpuMips / vm.vcpus)} per vCPU`
        : `${st.hosts[h]!.id}: CPU with ${vm.id} ${fmt(load(h) + vm.demand.cpuMips)} MIPS > ${fmt(cpuLimit * 100)} % of ${fmt(st.capMips[h]!)}`;
    },
  };
  const hasHard = s.rules.some((r) => r.strength === 'hard');
  const hasSoft = s.rules.some((r) => r.strength === 'soft');
  const placer: Placer = {
    filters: [target, hostUsable({ allowWake: false }), memoryFits, cpu, ioFits(opts.ioLimit ?? 0.8), ...(hasHard ? [hardRules(rules)] : [])],
    scorers: [
      { scorer: (opts.scorer ?? 'spread') === 'spread' ? leastAllocated : mostAllocated, weight: 4 },
      ...(hasSoft ? [{ scorer: softRules(rules), weight: 1 }] : []),
    ],
  };
  const total = placer.scorers.reduce((a, w) => a + w.weight, 0);
  const score = (sc: HostScorer, v: number, h: number): number => sc.score(s, v, h);
  const assess = (v: number): HostAssessment[] => allHosts(s).map((h): HostAssessment => {
    const id = s.hosts[h]!.id;
    for (const f of placer.filters) {
      const code = f.check(s, v, h);
      if (code !== null) return { host: id, fits: false, score: null, by: f.name, code, reason: f.explain(s, v, h, code) };
    }
    const sc = placer.scorers.reduce((a, w) => a + w.weight * score(w.scorer, v, h), 0) / (total || 1);
    const vm = s.vms[v]!;
    const host = s.hosts[h]!;
    const cpuAfter = (100 * (load(h) + vm.demand.cpuMips)) / s.capMips[h]!;
    const memAfter = host.memMiB > 0 ? (100 * (s.memReservedMiB[h]! + vm.memReservedMiB)) / host.memMiB : 0;
    return { host: id, fits: true, score: Math.round(sc * 10) / 10, reason: `${id} fits: CPU ${fmt(cpuAfter)} % and memory ${fmt(memAfter)} % after (score ${fmt(sc, 1)})` };
  });
  return { state: s, placer, assess };
}

/** The best host among assessments (highest score, ties to the first host); -1 if none fits. */
function best(s: ClusterState, list: readonly HostAssessment[]): number {
  let pick: HostAssessment | null = null;
  for (const a of list) if (a.fits && (pick === null || a.score! > pick.score!)) pick = a;
  return pick === null ? -1 : s.hostIndex(pick.host);
}

const rejectionsOf = (list: readonly HostAssessment[]): Rejection[] =>
  list.filter((a) => !a.fits).map((a) => ({ host: a.host, code: a.code!, reason: a.reason, by: a.by! }));

/** Chosen host first, then the others that fit (best first), then the rejected ones. */
function ordered(list: readonly HostAssessment[], chosen: string | null): HostAssessment[] {
  return [...list].sort((a, b) => Number(b.host === chosen) - Number(a.host === chosen) || Number(b.fits) - Number(a.fits) || (b.score ?? 0) - (a.score ?? 0));
}

function whyNotOthers(list: readonly HostAssessment[], chosen: string): string {
  const others = list.filter((a) => a.host !== chosen && a.code !== 'evacuating');
  if (others.length === 0) return '';
  return `; not ${others.map((a) => (a.fits ? `${a.host} (scores ${a.score})` : `${a.host} (${a.by}: ${a.code})`)).join(', ')}`;
}

/**
 * Moves every VM off `req.host`, largest memory first (the hardest to fit go while there is
 * most room), each to the best-scoring host that passes every filter: allowed target, usable
 * (up, not in maintenance or excluded), memory, CPU headroom, I/O, hard rules (affinity,
 * anti-affinity, pinning). VMs the snapshot marks not migratable stay and are reported; a VM
 * that fits nowhere is reported with which filter rejected which host, and the others still
 * go. The plan has only migrate steps, all independent (moves only fill targets, so any order
 * is safe); the executor applies its concurrency limits.
 */
export function planEvacuation(snapshot: ClusterSnapshot, req: EvacuationRequest): DirectPlan {
  const by = 'evacuate';
  const allowed = req.targets ? new Set(req.targets) : null;
  const hostIdx = snapshot.hosts.findIndex((h) => h.id === req.host);
  if (hostIdx < 0) throw new RangeError(`planEvacuation: no host '${req.host}' in the snapshot`);
  // The host is in maintenance for this plan: no VM may land on it.
  const snap: ClusterSnapshot = { ...snapshot, hosts: snapshot.hosts.map((h, i) => (i === hostIdx ? { ...h, maintenance: true } : h)) };
  const { state: s, assess } = pipeline(snap, req, (h) => (h === hostIdx ? 'evacuating' : allowed && !allowed.has(s.hosts[h]!.id) ? 'not-allowed' : null));
  const steps: MigrateStep[] = [];
  const notMoved: NotMoved[] = [];
  const assessments: Record<VmId, readonly HostAssessment[]> = {};
  const mine = [...s.vmsOn(hostIdx)].sort((a, b) => s.vms[b]!.memMiB - s.vms[a]!.memMiB || (s.vms[a]!.id < s.vms[b]!.id ? -1 : 1));
  for (const v of mine) {
    const vm = s.vms[v]!;
    if (!vm.migratable) {
      notMoved.push({ vm: vm.id, host: req.host, code: 'not-migratable', reason: `${vm.id} may not be moved (pinned, or not in a state that migrates)`, by });
      continue;
    }
    const list = assess(v);
    const h = best(s, list);
    assessments[vm.id] = ordered(list, h >= 0 ? s.hosts[h]!.id : null);
    if (h < 0) {
      notMoved.push({
        vm: vm.id, host: req.host, code: 'no-host-fits', by,
        reason: `no host can take ${vm.id} (${fmt(vm.memReservedMiB)} MiB, ${fmt(vm.demand.cpuMips)} MIPS)`,
        rejections: summariseRejections(rejectionsOf(list), Infinity),
      });
      continue;
    }
    const chosen = list.find((a) => a.host === s.hosts[h]!.id)!;
    s.move(v, h);
    steps.push({
      kind: 'migrate', id: steps.length + 1, deps: [], by, vm: vm.id, from: req.host, to: chosen.host, memMiB: vm.memMiB,
      reason: `${req.host} is being evacuated; best target ${chosen.reason}${whyNotOthers(list, chosen.host)}`,
    });
  }
  return {
    policy: by, time: snapshot.time, steps, notMoved, assessments,
    hosts: [{ host: req.host, class: 'maintenance', reason: `evacuation: ${steps.length} of ${mine.length} VM(s) planned to move`, by }],
  };
}

/**
 * Chooses the host for a VM that runs nowhere (`host: null` in the snapshot, e.g. a defined,
 * shut-off VM about to be started): the best-scoring host passing every filter, with every
 * other host's verdict. A plan with one `place` step, or none and a `no-host-fits` entry.
 */
export function planPlacement(snapshot: ClusterSnapshot, vmId: VmId, opts: DirectPlanOptions & { targets?: readonly HostId[] } = {}): DirectPlan {
  const by = 'place';
  const allowed = opts.targets ? new Set(opts.targets) : null;
  const { state: s, assess } = pipeline(snapshot, opts, (h) => (allowed && !allowed.has(s.hosts[h]!.id) ? 'not-allowed' : null));
  if (!s.hasVm(vmId)) throw new RangeError(`planPlacement: no VM '${vmId}' in the snapshot`);
  const v = s.vmIndex(vmId);
  if (s.hostOf[v]! >= 0) throw new RangeError(`planPlacement: ${vmId} already runs on ${s.hosts[s.hostOf[v]!]!.id}`);
  const vm = s.vms[v]!;
  const list = assess(v);
  const h = best(s, list);
  const chosen = h >= 0 ? list.find((a) => a.host === s.hosts[h]!.id)! : null;
  const steps: PlaceStep[] = chosen
    ? [{ kind: 'place', id: 1, deps: [], by, vm: vmId, to: chosen.host, reason: `best host ${chosen.reason}${whyNotOthers(list, chosen.host)}` }]
    : [];
  const notMoved: NotMoved[] = chosen ? [] : [{
    vm: vmId, host: null, code: 'no-host-fits', by,
    reason: `no host can take ${vmId} (${fmt(vm.memReservedMiB)} MiB, ${fmt(vm.demand.cpuMips)} MIPS)`,
    rejections: summariseRejections(rejectionsOf(list), Infinity),
  }];
  return { policy: by, time: snapshot.time, steps, notMoved, hosts: [], assessments: { [vmId]: ordered(list, chosen?.host ?? null) } };
}
