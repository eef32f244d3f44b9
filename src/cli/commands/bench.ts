import { UsageError, type Command } from '../io.js';
import { benchPlan, benchPlanUsage } from './bench-plan.js';

/** `tide bench <what>`: each benchmark lives in its own module. */
const benches: Record<string, { usage: string; run: typeof benchPlan }> = {
  plan: { usage: benchPlanUsage, run: benchPlan },
};

export const benchCommand: Command = {
  summary: 'benchmarks: `plan` (planner speed on a synthetic cluster)',
  get usage() {
    return Object.values(benches).map((b) => b.usage).join('\n\n');
  },
  async run(argv, io) {
    const rest = argv.filter((a, i) => !(a === '--config' || argv[i - 1] === '--config'));
    const what = rest.find((a) => !a.startsWith('-'));
    const bench = what ? benches[what] : undefined;
    if (!bench) throw new UsageError(`which benchmark? (${Object.keys(benches).join(', ')})`);
    return bench.run(rest.filter((a) => a !== what), io);
  },
};
