import type { ClusterState } from '../model/state.js';

/** What a detector concluded about one host, for explanations ("why overloaded?"). */
export interface Assessment {
  readonly overloaded: boolean;
  /** The quantity compared (e.g. requested utilisation, predicted utilisation), 0..1+. */
  readonly value: number;
  /** The limit it was compared with. */
  readonly threshold: number;
  /** Detector (and fallback) that decided, e.g. 'lr' or 'lr→thr(0.7)'. */
  readonly by: string;
}

/**
 * Overload detection on the planner's working state. Implementations are pure and read only
 * the state: the tentative VM list of host h (removals and placements already applied).
 */
export interface OverloadDetector {
  readonly name: string;
  isOverloaded(state: ClusterState, h: number): boolean;
  assess(state: ClusterState, h: number): Assessment;
}
