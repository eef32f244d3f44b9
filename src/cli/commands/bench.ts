import { UsageError, type Command } from '../io.js';
import { benchMigrate, benchMigrateUsage } from './bench-migrate.js';
import { benchLoop, benchLoopUsage } from './bench-loop.js';
import { benchPlan, benchPlanUsage } from './bench-plan.js';

/** `tide bench <what>`: each benchmark lives in its own module. */
const benches: Record<string, { usage: string; run: typeof benchPlan }> = {
  plan: { usage: benchPlanUsage, run: benchPlan },
  migrate: { usage: benchMigrateUsage, run: benchMigrate },
  loop: { usage: benchLoopUsage, run: benchLoop },
};

export const benchCommand: Command = {
  summary: 'benchmarks: `plan` (planner speed on a synthetic cluster), `loop` (the full daemon round at scale, simulated), `migrate` (migration settings on real hosts)',
  get usage() {
    return Object.values(benches).map((b) => b.usage).join('\n\n');
  },
  async run(argv, io) {
    // the benchmark's name is the first word that is not the value of --config; --config
    // itself is passed on (benches that use a cluster read it)
    const at = argv.findIndex((a, i) => !a.startsWith('-') && argv[i - 1] !== '--config');
    const what = at >= 0 ? argv[at] : undefined;
    const bench = what ? benches[what] : undefined;
    if (!bench) throw new UsageError(`which benchmark? (${Object.keys(benches).join(', ')})`);
    return bench.run(argv.filter((_, i) => i !== at), io);
  },
};
