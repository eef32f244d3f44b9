/**
 * What the planner must not act on, shared by every strategy: hosts whose state is unknown
 * (they did not answer) and VMs whose usage is unknown (never measured). Fail closed: a plan
 * built on a guess must not move, empty, wake or power off anything because of that guess.
 *
 * - An unknown host is out of the plan: the placement filters never pick it (hostUsable), it
 *   is never a consolidation source, never powered on or off (strategies only power hosts
 *   that are 'on' off, and only wake hosts a move targets), and any VM the snapshot still
 *   places on it is not moved (it cannot be asked to migrate). Its absence of VMs says nothing.
 * - A host holding a VM of unknown usage is neither judged overloaded nor emptied this round
 *   (its load is a guess); it may still receive VMs, with the unknown VM counted at the
 *   pessimistic demand the snapshot gives it (see Vm.usage). Maintenance still evacuates it.
 */
import type { ClusterSnapshot } from '../model/types.js';
import type { HostVerdict } from './types.js';

export interface FailClosed {
  /** The snapshot with VMs on unknown hosts made immovable; the input itself when there are none. */
  readonly snapshot: ClusterSnapshot;
  /** unknownHost[h] = 1: host h's state is unknown. */
  readonly unknownHost: Uint8Array;
  /** unmeasured[h] = 1: host h runs a VM whose usage is unknown. */
  readonly unmeasured: Uint8Array;
  /** One verdict per unknown host and per host with unmeasured VMs, saying why it is left alone. */
  readonly verdicts: HostVerdict[];
}

export function failClosed(input: ClusterSnapshot, by: string): FailClosed {
  const nh = input.hosts.length;
  const unknownHost = new Uint8Array(nh);
  const unmeasured = new Uint8Array(nh);
  const verdicts: HostVerdict[] = [];
  // The common case (every host answered, every VM measured) costs one scan and no copy.
  if (!input.hosts.some((h) => h.powerState === 'unknown') && !input.vms.some((v) => v.usage === 'unknown')) {
    return { snapshot: input, unknownHost, unmeasured, verdicts };
  }
  const index = new Map(input.hosts.map((x, i) => [x.id, i]));
  for (let h = 0; h < nh; h++) if (input.hosts[h]!.powerState === 'unknown') unknownHost[h] = 1;
  const hostOf = (hostId: string | null): number => (hostId === null ? -1 : index.get(hostId) ?? -1);
  const unknownVms = new Map<number, string[]>();
  let frozen = false;
  for (const vm of input.vms) {
    const h = hostOf(vm.host);
    if (h < 0) continue;
    if (unknownHost[h]) frozen ||= vm.migratable;
    else if (vm.usage === 'unknown') {
      unmeasured[h] = 1;
      const list = unknownVms.get(h) ?? [];
      list.push(vm.id);
      unknownVms.set(h, list);
    }
  }
  for (let h = 0; h < nh; h++) {
    const host = input.hosts[h]!;
    if (unknownHost[h]) {
      verdicts.push({
        host: host.id, class: 'unknown', by,
        reason: `${host.id} did not answer${host.stateReason ? ` (${host.stateReason})` : ''}: its state and VMs are unknown, so it is left out of this plan (no VM moves to or from it, it is not powered on or off)`,
      });
    } else if (unmeasured[h]) {
      const list = unknownVms.get(h)!;
      const names = list.length > 3 ? `${list.slice(0, 3).join(', ')} and ${list.length - 3} more` : list.join(', ');
      verdicts.push({
        host: host.id, class: 'normal', by,
        reason: `usage of ${names} not measured yet (no sample since Tide started or since it moved): ${host.id} is neither judged overloaded nor emptied this round, and counts ${list.length === 1 ? 'that VM' : 'those VMs'} at full size when taking VMs`,
      });
    }
  }
  const snapshot = frozen
    ? { ...input, vms: input.vms.map((v) => (v.migratable && unknownHost[hostOf(v.host)] ? { ...v, migratable: false } : v)) }
    : input;
  return { snapshot, unknownHost, unmeasured, verdicts };
}
