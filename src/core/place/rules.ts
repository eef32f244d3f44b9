import type { ClusterState } from '../model/state.js';
import type { Rule, RuleStrength } from '../model/types.js';

interface GroupRef {
  readonly rule: Rule & { kind: 'affinity' | 'antiAffinity' };
  readonly members: readonly number[];
}

/**
 * VM–VM affinity/anti-affinity and VM–host pinning, indexed by VM for O(group size) checks.
 * Rules naming VMs or hosts that are not in the snapshot ignore those names (a VM may have
 * been deleted); the planner reports such rules in its explanations.
 */
export class RuleIndex {
  private readonly groupsOf = new Map<number, GroupRef[]>();
  private readonly pinsOf = new Map<number, { rule: Rule & { kind: 'pin' }; hosts: Set<number> }[]>();
  readonly unknownNames: string[] = [];
  private static readonly none: never[] = [];

  private groups(v: number): readonly GroupRef[] {
    return this.groupsOf.get(v) ?? RuleIndex.none;
  }

  private pins(v: number): readonly { rule: Rule & { kind: 'pin' }; hosts: Set<number> }[] {
    return this.pinsOf.get(v) ?? RuleIndex.none;
  }

  constructor(state: ClusterState) {
    for (const rule of state.rules) {
      if (rule.kind === 'pin') {
        if (!state.hasVm(rule.vm)) {
          this.unknownNames.push(`${rule.id}: VM ${rule.vm}`);
          continue;
        }
        const hosts = new Set(rule.hosts.filter((id) => state.hasHost(id)).map((id) => state.hostIndex(id)));
        const v = state.vmIndex(rule.vm);
        if (!this.pinsOf.has(v)) this.pinsOf.set(v, []);
        this.pinsOf.get(v)!.push({ rule, hosts });
        continue;
      }
      const members = rule.vms.filter((id) => state.hasVm(id)).map((id) => state.vmIndex(id));
      for (const id of rule.vms) if (!state.hasVm(id)) this.unknownNames.push(`${rule.id}: VM ${id}`);
      const ref: GroupRef = { rule, members };
      for (const v of members) {
        if (!this.groupsOf.has(v)) this.groupsOf.set(v, []);
        this.groupsOf.get(v)!.push(ref);
      }
    }
  }

  hasRules(v: number): boolean {
    return this.groupsOf.has(v) || this.pinsOf.has(v);
  }

  /**
   * The first rule of the given strength that placing VM v on host h would break, given where
   * the other VMs are now; null if none.
   */
  violated(state: ClusterState, v: number, h: number, strength: RuleStrength): Rule | null {
    for (const p of this.pins(v)) {
      if (p.rule.strength === strength && !p.hosts.has(h)) return p.rule;
    }
    for (const g of this.groups(v)) {
      if (g.rule.strength !== strength) continue;
      for (const w of g.members) {
        if (w === v) continue;
        const hw = state.hostOf[w]!;
        if (hw < 0) continue;
        if (g.rule.kind === 'antiAffinity' ? hw === h : hw !== h) return g.rule;
      }
    }
    return null;
  }

  /** Number of soft rules placing v on h would break (for the soft-rule scorer). */
  softViolations(state: ClusterState, v: number, h: number): number {
    let n = 0;
    for (const p of this.pins(v)) if (p.rule.strength === 'soft' && !p.hosts.has(h)) n++;
    for (const g of this.groups(v)) {
      if (g.rule.strength !== 'soft') continue;
      for (const w of g.members) {
        if (w === v) continue;
        const hw = state.hostOf[w]!;
        if (hw >= 0 && (g.rule.kind === 'antiAffinity' ? hw === h : hw !== h)) n++;
      }
    }
    return n;
  }

  /** Hard rules broken by the current placement of VM v (for "rule violated" detection). */
  brokenHere(state: ClusterState, v: number): Rule | null {
    const h = state.hostOf[v]!;
    return h < 0 ? null : this.violated(state, v, h, 'hard');
  }
}
