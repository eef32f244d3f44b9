import { z } from 'zod';
import type { Strategy } from './strategy.js';

export const tideArgs = z.object({ targetUtil: z.number().min(0.1).max(1).default(0.8) }).strict();
export type TideArgs = z.output<typeof tideArgs>;

// WIP placeholder, replaced before commit.
export const tide: Strategy<TideArgs> = {
  name: 'tide',
  summary: 'tide',
  args: tideArgs,
  plan: () => {
    throw new Error('not yet');
  },
};
