import { approvePlan, operatorName } from '../../daemon/ops.js';
import { parse } from '../args.js';
import { UsageError, type Command } from '../io.js';
import { planId, withConfigStore } from './plans.js';

const usage = `tide [--config FILE] approve ID

  Approves a proposed plan (approve mode). The daemon executes it within a few seconds (it
  looks for approved plans while idle) or at its next round — but only if the cluster still
  is what the plan was made from (same VMs on the same hosts, same host power and maintenance)
  and a round re-confirmed the plan recently; otherwise the plan expires with the reason
  (\`tide plan show ID\`). Exit status 1 when the plan is not proposed (expired, superseded…).`;

export const approveCommand: Command = {
  summary: 'approve a proposed plan: the daemon executes it if the cluster did not change',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {}, true);
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    const id = planId(positionals[0], 'tide approve ID');
    return withConfigStore(values, io, (store) => {
      const p = approvePlan(store, id, operatorName(io.env));
      io.out(`plan ${p.id} approved (${p.statusReason ?? 'approved'}); the daemon executes it if the cluster still matches it — see tide plan show ${p.id}\n`);
      return 0;
    });
  },
};
