/** Host scorers, each 0 (worst) .. 100 (best). */
import { powerAt } from '../model/power.js';
import type { ClusterState } from '../model/state.js';
import type { HostScorer } from './placement.js';
import type { RuleIndex } from './rules.js';

/**
 * PABFD's preference: the smallest increase in power draw, P(u_after) − P(u_now), where u_now
 * is the host's utilisation at the start of the round (never updated while a round is planned,
 * as in CloudSim; `startOfRound: false` uses the tentative allocation instead) and u_after
 * counts the tentative allocation plus the VM's demand. The delta
 * (which can be negative when the host lost VMs this round) is mapped linearly onto 0..100
 * over ±(largest dynamic range of any host), so ordering and ties are exactly PABFD's.
 */
export function powerIncrease(state: ClusterState, opts: { startOfRound?: boolean } = {}): HostScorer {
  // Start of round (the default): a host that already received VMs this round is charged for
  // them again, which spreads a round's placements; tentative: the real increase.
  const startOfRound = opts.startOfRound ?? true;
  let range = 0;
  for (const h of state.hosts) {
    const t = h.power.wattsAtLoad;
    range = Math.max(range, t[t.length - 1]! - t[0]!);
  }
  range = range || 1;
  const powerNow = Float64Array.from(state.hosts, (h, i) => powerAt(h.power, state.uNow[i]!));
  return {
    name: 'power-increase',
    score: (s, v, h) => {
      const uAfter = (s.allocatedMips(h) + s.vms[v]!.demand.cpuMips) / s.capMips[h]!;
      const before = startOfRound ? powerNow[h]! : powerAt(s.hosts[h]!.power, Math.min(1, s.allocatedMips(h) / s.capMips[h]!));
      const delta = powerAt(s.hosts[h]!.power, uAfter) - before;
      return 50 * (1 - delta / range);
    },
  };
}

/** Share of a resource used after placing v on h, 0..1+ (CPU on demand, memory on reservations). */
function afterShares(s: ClusterState, v: number, h: number): [number, number] {
  const vm = s.vms[v]!;
  const host = s.hosts[h]!;
  const cpu = (s.reqMips[h]! + vm.demand.cpuMips) / s.capMips[h]!;
  const mem = host.memMiB > 0 ? (s.memReservedMiB[h]! + vm.memReservedMiB) / host.memMiB : 0;
  return [cpu, mem];
}

/** Spread ("performance"): prefer the host with the most room left after placement. */
export const leastAllocated: HostScorer = {
  name: 'least-allocated',
  score: (s, v, h) => {
    const [cpu, mem] = afterShares(s, v, h);
    return 100 * (1 - Math.min(1, (cpu + mem) / 2));
  },
};

/** Pack ("density"): prefer the fullest host that still fits. */
export const mostAllocated: HostScorer = {
  name: 'most-allocated',
  score: (s, v, h) => {
    const [cpu, mem] = afterShares(s, v, h);
    return 100 * Math.min(1, (cpu + mem) / 2);
  },
};

/** Fewer broken soft rules is better: 100 for none, −25 per broken rule. */
export function softRules(rules: RuleIndex): HostScorer {
  return {
    name: 'soft-rules',
    score: (s, v, h) => Math.max(0, 100 - 25 * rules.softViolations(s, v, h)),
  };
}

/**
 * Energy efficiency of the host at full load, relative to the best host in the cluster:
 * 100 for the host with the fewest watts per MIPS at 100 % utilisation.
 */
export function efficiency(state: ClusterState): HostScorer {
  const wpm = state.hosts.map((h, i) => powerAt(h.power, 1) / state.capMips[i]!);
  const best = Math.min(...wpm);
  return { name: 'efficiency', score: (_s, _v, h) => (100 * best) / wpm[h]! };
}
