import type { ClusterState } from '../model/state.js';

/**
 * Picks the next VM to take off an overloaded host (one at a time; the caller removes it
 * tentatively and re-tests the host). Returns a VM index, or -1 when no VM may move.
 */
export interface VmSelector {
  readonly name: string;
  select(state: ClusterState, h: number): number;
}

/** VMs on h that the planner may move, in the host's list order. */
export function migratableOn(state: ClusterState, h: number): number[] {
  return state.vmsOn(h).filter((v) => state.vms[v]!.migratable);
}
