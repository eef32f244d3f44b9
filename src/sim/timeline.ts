/**
 * The action timeline of a run (simulator or demo) and the figures derived from it: how often
 * a VM moved per day and how long a powered-off host stayed off. One definition for both, so
 * `tide simulate --json` and `tide demo --json` report the same thing the same way.
 */
import { powerAt } from '../core/model/power.js';
import type { PowerModel } from '../core/model/types.js';

/** One carried-out action. `t` is virtual time in s since the run's start (Monday 00:00 for the office). */
export interface TimelineEntry {
  readonly t: number;
  readonly kind: 'migrate' | 'powerOn' | 'powerOff';
  readonly vm?: string;
  readonly from?: string;
  readonly to?: string;
  readonly host?: string;
  readonly reason: string;
}

export interface TimelineFigures {
  /** Most migrations of one VM within one calendar day (day = floor(t / 86400)); 0 without migrations. */
  readonly maxMovesPerVmPerDay: number;
  /**
   * Shortest completed off period of any host, s: from a powerOff to that host's next powerOn.
   * A host still off at the end of the run has no completed period and is not counted (its
   * period was cut by the end, not by Tide). null when no host was switched off and on again.
   */
  readonly shortestOffSec: number | null;
}

export function timelineFigures(timeline: readonly TimelineEntry[]): TimelineFigures {
  const moves = new Map<string, number>();
  let maxMoves = 0;
  const offAt = new Map<string, number>();
  let shortest: number | null = null;
  for (const e of [...timeline].sort((a, b) => a.t - b.t)) {
    if (e.kind === 'migrate' && e.vm !== undefined) {
      const key = `${e.vm}\u0000${Math.floor(e.t / 86400)}`;
      const n = (moves.get(key) ?? 0) + 1;
      moves.set(key, n);
      if (n > maxMoves) maxMoves = n;
    } else if (e.kind === 'powerOff' && e.host !== undefined) {
      offAt.set(e.host, e.t);
    } else if (e.kind === 'powerOn' && e.host !== undefined) {
      const since = offAt.get(e.host);
      if (since === undefined) continue;
      offAt.delete(e.host);
      const d = e.t - since;
      if (shortest === null || d < shortest) shortest = d;
    }
  }
  return { maxMovesPerVmPerDay: maxMoves, shortestOffSec: shortest };
}

/** What the energy lower bound needs of a host. */
export interface BoundHost {
  readonly cpuCores: number;
  readonly mipsPerCore: number;
  readonly memMiB: number;
  readonly power: PowerModel;
}

/**
 * Lower bound on the power that holds a demand, W: the fewest hosts (most MIPS first, then the
 * most efficient at full load) whose CPU and memory hold `cpuMips` and `memMiB`, all at the same
 * utilisation — the simulator engine's bound (realistic accounting), for runs outside the engine.
 */
export function lowerBoundWatts(hosts: readonly BoundHost[], cpuMips: number, memMiB: number): number {
  if (cpuMips <= 0 && memMiB <= 0) return 0;
  const mips = (h: BoundHost): number => h.cpuCores * h.mipsPerCore;
  const order = [...hosts].sort((a, b) => mips(b) - mips(a) || powerAt(a.power, 1) / mips(a) - powerAt(b.power, 1) / mips(b));
  let capCpu = 0;
  let capMem = 0;
  let n = 0;
  while (n < order.length && (capCpu < cpuMips || capMem < memMiB)) {
    capCpu += mips(order[n]!);
    capMem += order[n]!.memMiB;
    n++;
  }
  const u = Math.min(1, cpuMips / capCpu);
  let w = 0;
  for (let i = 0; i < n; i++) w += powerAt(order[i]!.power, u);
  return w;
}
