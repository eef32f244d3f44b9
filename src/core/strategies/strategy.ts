import type { z } from 'zod';
import type { ClusterSnapshot } from '../model/types.js';
import type { Plan } from '../plan/types.js';

export interface PlanContext {
  /** Decision time, s (same clock as snapshot.time); cooldowns and schedules use it. */
  readonly now: number;
  /** Build full "why not" detail (every rejected host) instead of summaries. */
  readonly explain?: boolean;
}

/**
 * A planning strategy: a pure function from a snapshot and validated arguments to a plan.
 * Strategies keep no state between calls; what they need to remember (last migrations for
 * cooldowns, how long a host has been underloaded) travels in the snapshot.
 */
export interface Strategy<A> {
  readonly name: string;
  readonly summary: string;
  /** Argument schema with defaults; `args.parse({})` gives the defaults. */
  readonly args: z.ZodType<A>;
  plan(snapshot: ClusterSnapshot, args: A, ctx: PlanContext): Plan;
}
