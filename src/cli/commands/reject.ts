import { operatorName, rejectPlan } from '../../daemon/ops.js';
import { parse } from '../args.js';
import { UsageError, type Command } from '../io.js';
import { planId, withConfigStore } from './plans.js';

const usage = `tide [--config FILE] reject ID [--reason TEXT]

  Rejects a proposed (or approved, not yet running) plan: it is never executed. A later round
  may propose the same moves again as a new plan if the cluster still needs them.`;

export const rejectCommand: Command = {
  summary: 'reject a proposed plan (it is never executed)',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { reason: { type: 'string' } }, true);
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    const id = planId(positionals[0], 'tide reject ID');
    return withConfigStore(values, io, (store) => {
      const p = rejectPlan(store, id, operatorName(io.env), values.reason as string | undefined);
      io.out(`plan ${p.id} rejected (${p.statusReason})\n`);
      return 0;
    });
  },
};
