/**
 * Turns the moves a strategy decided (on its working copy) into an executable order: steps
 * with dependencies such that no host exceeds its capacity — memory, CPU, hard rules — at any
 * intermediate state, whatever order the executor picks among the steps whose dependencies are
 * done. Cycles (A→B while B→A, both full) are broken through a spare host, or the move is
 * deferred and explained.
 *
 * Safety argument: a move into host H depends on every move out of H emitted before it. So
 * when any set of dependency-closed steps has completed, each host's contents are bounded by
 * its contents right after the latest emitted step into it, which the sequential check below
 * verified. A VM being migrated counts on both hosts until the step completes.
 */
import { ClusterState, type StateMark } from '../model/state.js';
import type { ClusterSnapshot } from '../model/types.js';
import { RuleIndex } from '../place/rules.js';
import type { MigrateStep, NotMoved, PlaceStep, PowerOffStep, PowerOnStep, Step } from './types.js';

export interface IntendedMove {
  readonly vm: number;
  readonly to: number;
  readonly reason: string;
  readonly by: string;
}

export interface IntendedPower {
  readonly host: number;
  readonly reason: string;
  readonly by: string;
}

export interface OrderInput {
  readonly moves: readonly IntendedMove[];
  readonly powerOn?: readonly IntendedPower[];
  readonly powerOff?: readonly IntendedPower[];
  /**
   * Check CPU and memory capacity and hard rules at every step (default). Off for CloudSim's
   * compatibility mode, whose plans are executed all at once and never reserve memory.
   */
  readonly checkCapacity?: boolean;
}

export interface OrderResult {
  readonly steps: Step[];
  readonly deferred: NotMoved[];
  /** Hosts meant to be powered off that keep running because a move away was deferred. */
  readonly keptOn: { host: string; reason: string }[];
}

/**
 * Net effect of a raw move journal: one move per VM from where it started to where it ends,
 * in the order of each VM's first move; VMs that end where they started drop out.
 */
export function compactMoves<T extends { vm: number; from: number; to: number }>(raw: readonly T[]): { vm: number; from: number; to: number; first: T; last: T }[] {
  type Net = { vm: number; from: number; to: number; first: T; last: T };
  // In order of each VM's first move; slot[vm] = 1 + its position in inOrder (0: none yet).
  // VM indices are small non-negative integers: a typed array, not a sparse JS array (which,
  // filled at 100,000s of scattered indices, falls back to a slow dictionary).
  // (indexed loops: run once per plan, they start in the interpreter, where for-of allocates)
  let maxVm = -1;
  for (let i = 0; i < raw.length; i++) if (raw[i]!.vm > maxVm) maxVm = raw[i]!.vm;
  const slot = new Int32Array(maxVm + 1);
  const inOrder: Net[] = [];
  for (let i = 0; i < raw.length; i++) {
    const m = raw[i]!;
    const at = slot[m.vm]!;
    if (at > 0) {
      const cur = inOrder[at - 1]!;
      cur.to = m.to;
      cur.last = m;
    } else {
      inOrder.push({ vm: m.vm, from: m.from, to: m.to, first: m, last: m });
      slot[m.vm] = inOrder.length;
    }
  }
  return inOrder.filter((m) => m.from !== m.to);
}

/**
 * Orders `input` on a working state. Either `start` is positioned at the snapshot (a fresh
 * state, or a snapshot), or — cheaper for a strategy that just planned on it — it is positioned
 * where the plan leads and `atStart` is the mark of the snapshot position. `start` is left
 * where the ordered plan leads.
 */
export function orderPlan(start: ClusterSnapshot | ClusterState, input: OrderInput, atStart?: StateMark): OrderResult {
  const checkCapacity = input.checkCapacity ?? true;
  const s = start instanceof ClusterState ? start : new ClusterState(start, { historyWindow: 1 });
  const rules = new RuleIndex(s);
  const nh = s.hosts.length;

  // Final per-host usage if every move happened: a target may end above capacity only if the
  // strategy chose that, and then the order must not be blamed for it.
  const cpuLimit = new Float64Array(nh);
  const memLimit = new Float64Array(nh);
  const finalHost = new Int32Array(s.vms.length);
  if (checkCapacity) {
    const m0 = atStart ?? s.mark();
    if (!atStart) for (const m of input.moves) s.move(m.vm, m.to);
    for (let h = 0; h < nh; h++) {
      cpuLimit[h] = Math.max(s.capMips[h]!, s.reqMips[h]!);
      memLimit[h] = Math.max(s.hosts[h]!.memMiB, s.memReservedMiB[h]!);
    }
    finalHost.set(s.hostOf);
    s.rollback(m0);
  } else if (atStart) {
    // Nothing to check: just go back to the snapshot position.
    s.rollback(atStart);
  }
  // A hard rule the final placement itself breaks is the strategy's doing (e.g. a rule
  // already broken that could not be fixed); the order only refuses to break one temporarily.
  const brokenAtEnd = (v: number, to: number): boolean => {
    const r = rules.violated(s, v, to, 'hard');
    if (r === null) return false;
    if (r.kind === 'pin') return true;
    const members = r.vms.filter((id) => s.hasVm(id)).map((id) => s.vmIndex(id));
    return members.some((w) => w !== v && (r.kind === 'antiAffinity' ? finalHost[w] === to : finalHost[w] !== to));
  };

  const steps: Step[] = [];
  const deferred: NotMoved[] = [];
  const outs: number[][] = Array.from({ length: nh }, () => []);
  /** Id of the last step emitted for each VM (0: none; ids start at 1). */
  const lastStepOfVm = new Int32Array(s.vms.length);
  /** Id of the power-on step of each host (0: none). */
  const powerOnStep = new Int32Array(nh);
  let nextId = 1;

  for (const p of input.powerOn ?? []) {
    const step: PowerOnStep = { id: nextId++, kind: 'powerOn', host: s.hosts[p.host]!.id, deps: [], reason: p.reason, by: p.by };
    steps.push(step);
    powerOnStep[p.host] = step.id;
  }

  // (without rules nothing can be violated: the index is not even asked)
  const noRules = s.rules.length === 0;
  const fits = (v: number, to: number): boolean => {
    if (!checkCapacity) return true;
    if (s.reqMips[to]! + s.vmCpuMips[v]! > cpuLimit[to]! + 1e-9) return false;
    if (s.memReservedMiB[to]! + s.vmMemReservedMiB[v]! > memLimit[to]! + 1e-9) return false;
    return noRules || rules.violated(s, v, to, 'hard') === null || brokenAtEnd(v, to);
  };

  const emit = (m: IntendedMove, to: number, reason: string, by: string): void => {
    const from = s.hostOf[m.vm]!;
    // Ids grow, so outs[to] is sorted; the power-on step precedes every move.
    const deps = outs[to]!.slice();
    const on = powerOnStep[to]!;
    if (on !== 0) deps.unshift(on);
    const prev = lastStepOfVm[m.vm]!;
    if (prev !== 0 && !deps.includes(prev)) {
      deps.push(prev);
      deps.sort((a, b) => a - b);
    }
    const id = nextId++;
    const vm = s.vms[m.vm]!;
    if (from < 0) {
      const step: PlaceStep = { id, kind: 'place', vm: vm.id, to: s.hosts[to]!.id, deps, reason, by };
      steps.push(step);
    } else {
      const step: MigrateStep = {
        id, kind: 'migrate', vm: vm.id, from: s.hosts[from]!.id, to: s.hosts[to]!.id, memMiB: vm.memMiB,
        deps, reason, by,
      };
      steps.push(step);
      outs[from]!.push(id);
    }
    lastStepOfVm[m.vm] = id;
    s.move(m.vm, to);
  };

  let pending = [...input.moves];
  // Moves already routed through a spare: routing one again could bounce it between spares
  // forever (each hop is a step), so a second deadlock on it defers it.
  const routed = new Set<IntendedMove>();
  while (pending.length > 0) {
    const stalled: IntendedMove[] = [];
    let progress = false;
    for (let i = 0; i < pending.length; i++) {
      const m = pending[i]!;
      if (s.hostOf[m.vm] === m.to) {
        progress = true;
        continue;
      }
      if (fits(m.vm, m.to)) {
        emit(m, m.to, m.reason, m.by);
        progress = true;
      } else stalled.push(m);
    }
    pending = stalled;
    if (progress || pending.length === 0) continue;

    // Deadlock: every remaining move waits for another. Route the first one through a spare.
    const m = pending[0]!;
    const from = s.hostOf[m.vm]!;
    let spare = -1;
    for (let h = 0; h < nh && spare < 0 && !routed.has(m); h++) {
      if (h === from || h === m.to) continue;
      const host = s.hosts[h]!;
      if (host.maintenance || host.excluded || s.powerState(h) !== 'on') continue;
      const vm = s.vms[m.vm]!;
      if (s.reqMips[h]! + vm.demand.cpuMips > s.capMips[h]! || s.memReservedMiB[h]! + vm.memReservedMiB > host.memMiB) continue;
      if (rules.violated(s, m.vm, h, 'hard') !== null) continue;
      spare = h;
    }
    if (spare >= 0) {
      routed.add(m);
      emit(m, spare, `via ${s.hosts[spare]!.id} to break a cycle of moves; then on to ${s.hosts[m.to]!.id}: ${m.reason}`, 'order');
      continue;
    }
    pending.shift();
    deferred.push({
      vm: s.vms[m.vm]!.id,
      host: from >= 0 ? s.hosts[from]!.id : null,
      code: 'cycle-deferred',
      reason: routed.has(m)
        ? `moved via ${s.hosts[from]!.id} to break a cycle, but going on to ${s.hosts[m.to]!.id} still needs room that only other pending moves free; deferred to a later round`
        : `moving to ${s.hosts[m.to]!.id} needs room that only other pending moves free, and no spare host has room; deferred to a later round`,
      by: 'order',
    });
  }

  const keptOn: { host: string; reason: string }[] = [];
  for (const p of input.powerOff ?? []) {
    if (s.vmsOn(p.host).length > 0) {
      keptOn.push({ host: s.hosts[p.host]!.id, reason: `stays on: ${s.vmsOn(p.host).length} VM(s) could not be moved away in this plan` });
      continue;
    }
    const step: PowerOffStep = {
      id: nextId++, kind: 'powerOff', host: s.hosts[p.host]!.id, deps: [...outs[p.host]!], reason: p.reason, by: p.by,
    };
    steps.push(step);
  }
  return { steps, deferred, keptOn };
}
