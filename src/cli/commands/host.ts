import { Cluster } from '../../api/cluster.js';
import { operatorName, setMaintenance } from '../../daemon/ops.js';
import { num, parse } from '../args.js';
import { UsageError, type Command } from '../io.js';
import { describePlan } from './evacuate.js';
import { fmtTime, withConfigStore } from './plans.js';

const usage = `tide [--config FILE] host maintenance on|off HOST [--reason TEXT] [--show-plan] [--json]

  Puts HOST in maintenance (on) or takes it out (off). The state is kept in the store, not in
  the configuration file, and the daemon reads it at every round: a host in maintenance gets no
  VM and its VMs are moved off by a normal plan (executed at once in automatic mode, proposed
  for approval in approve mode). \`off\` makes the host usable again from the next round.
  (A host with maintenance: true in the configuration stays in maintenance whatever is set here.)

  --reason TEXT    recorded with the state (shown by tide status)
  --show-plan      with on: also ask the hosts now and print how an evacuation would move
                   the VMs (as tide evacuate --dry-run plans it; the daemon's round plans
                   with the configured policy and may differ in detail)
  --interval-ms MS with --show-plan: between the two utilisation readings (default 1000)
  --json           print the state as JSON`;

export const hostCommand: Command = {
  summary: 'host maintenance on|off HOST: kept in the store; the daemon evacuates a host in maintenance',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { reason: { type: 'string' }, 'show-plan': { type: 'boolean' }, json: { type: 'boolean' }, 'interval-ms': { type: 'string' } }, true);
    const [sub, onOff, host, extra] = positionals;
    if (sub !== 'maintenance') throw new UsageError(sub === undefined ? 'tide host maintenance on|off HOST' : `unknown subcommand '${sub}' (tide host maintenance on|off HOST)`);
    if (onOff !== 'on' && onOff !== 'off') throw new UsageError('tide host maintenance on|off HOST: say on or off');
    if (host === undefined) throw new UsageError('which host? (tide host maintenance on|off HOST)');
    if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}'`);
    if (values['show-plan'] && onOff === 'off') throw new UsageError('--show-plan goes with on');
    const intervalMs = num(values['interval-ms'] as string | undefined, '--interval-ms', 1000, { min: 0, max: 600_000, int: true });
    return withConfigStore(values, io, async (store, config, file) => {
      const st = setMaintenance(store, config, host, onOff === 'on', operatorName(io.env), values.reason as string | undefined);
      const inConfig = config.hosts.find((h) => h.name === host)?.maintenance ?? false;
      if (values.json && !values['show-plan']) {
        io.out(`${JSON.stringify({ ...st, inConfig }, null, 2)}\n`);
        return 0;
      }
      if (!values.json) {
        io.out(st.maintenance
          ? `${host}: maintenance on since ${fmtTime(st.sinceMs)} (by ${st.by}${st.reason ? `: ${st.reason}` : ''}); the daemon's next round plans moving its VMs off\n`
          : `${host}: maintenance off (by ${st.by}); usable again from the daemon's next round${inConfig ? ' — but the configuration still says maintenance: true for it' : ''}\n`);
      }
      if (!values['show-plan']) return 0;
      const cluster = Cluster.open(config, { store, configFile: file });
      try {
        const plan = await cluster.planEvacuation({ host, intervalMs });
        if (values.json) io.out(`${JSON.stringify({ ...st, inConfig, evacuation: { moves: plan.moves, notMoved: plan.notMoved, unreachable: plan.unreachable } }, null, 2)}\n`);
        else io.out(describePlan(host, plan.moves, plan.notMoved, plan.unreachable));
      } finally {
        await cluster.close();
      }
      return 0;
    });
  },
};
