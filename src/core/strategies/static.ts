import { z } from 'zod';
import type { Strategy } from './strategy.js';

/** Never moves anything: the baseline for NPA and DVFS (static placement). */
export const staticStrategy: Strategy<Record<string, never>> = {
  name: 'static',
  summary: 'no migrations (static placement baseline)',
  args: z.object({}).strict() as unknown as z.ZodType<Record<string, never>>,
  plan: (snapshot) => ({ policy: 'static', time: snapshot.time, steps: [], hosts: [], notMoved: [] }),
};
