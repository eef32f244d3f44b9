import type { ReconcileReport } from '../../app/reconcile.js';
import { Cluster } from '../../api/cluster.js';
import { isDriverError } from '../../drivers/errors.js';
import { num, parse } from '../args.js';
import { clusterConfig, withInterrupt } from '../cluster.js';
import { UsageError, type Command } from '../io.js';

const usage = `tide [--config FILE] reconcile [VM] [--from H --to H] [--settle-ms MS] [--operator-done] [--json]

  Finishes migrations whose outcome was unknown (TIDE_MIGRATION_UNKNOWN: the target could not
  be asked at the switch-over, so the source was left paused). Tide looks at both hosts and
  applies the recovery decision table (docs/drivers.md, "Recovery"): it resumes the source only
  when the target answered without a running copy, removes a superseded copy, and never lets
  the VM run twice. Until a migration is reconciled, the control loop does not move that VM nor
  power off either host (it also reconciles them itself at the start of every round).

  Without VM: every open unknown migration recorded in the store. With VM: that one; --from and
  --to name its source and target when the store has no record of it (or override the record).
  A migration that ran on both hosts ('both') or failed in post-copy ('split') waits for an
  operator: Tide reports it and does not pick which copy to keep; once you left one copy, run
  tide reconcile VM --operator-done to let Tide check and close it.
  Takes the cluster lock (TIDE_LOCKED while another tide process holds it).
  Exit status 0 when every migration is resolved (or none was open), 1 when any stays unknown
  or waits for an operator (or the lock is held), 2 for a usage error.

  --from H, --to H     the migration's source and target host (configured host names)
  --settle-ms MS       let a migration job still running on a host settle this long (default 0)
  --operator-done      with VM: you settled a 'both'/'split' migration by hand; check and close it
  --json               print {"reconciled": [...]} (one object per VM)`;

export function describeReconcile(rs: readonly ReconcileReport[]): string {
  if (rs.length === 0) return 'no unknown migration is open\n';
  const lines: string[] = [];
  for (const r of rs) {
    const where = r.vmOn ? `, runs on ${r.vmOn}` : '';
    lines.push(`${r.vm} (${r.from} → ${r.to}): ${r.outcome}${where} — ${r.status === 'resolved' ? 'resolved' : r.status === 'operator' ? 'NEEDS AN OPERATOR' : 'STILL UNKNOWN'}: ${r.reason}`);
    lines.push(r.actions.length ? `  done: ${r.actions.join('; ')}` : '  done: nothing');
  }
  return `${lines.join('\n')}\n`;
}

export const reconcileCommand: Command = {
  summary: 'finish migrations whose outcome was unknown (the source left paused); exit 1 while any stays unknown',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      from: { type: 'string' }, to: { type: 'string' }, 'settle-ms': { type: 'string' }, 'operator-done': { type: 'boolean' }, json: { type: 'boolean' },
    }, true);
    if (positionals.length > 1) throw new UsageError(`one VM at most (got ${positionals.length})`);
    const vm = positionals[0];
    const from = values.from as string | undefined;
    const to = values.to as string | undefined;
    if (vm === undefined && (from !== undefined || to !== undefined || values['operator-done'])) throw new UsageError('--from, --to and --operator-done need a VM (tide reconcile VM --from H --to H)');
    if (from !== undefined && from === to) throw new UsageError(`--from and --to name the same host (${from})`);
    const settleMs = num(values['settle-ms'] as string | undefined, '--settle-ms', 0, { min: 0, max: 3_600_000, int: true });
    const { config, file } = clusterConfig(values, io);
    for (const h of [from, to]) {
      if (h !== undefined && !config.hosts.some((c) => c.name === h)) throw new UsageError(`no host named '${h}' in ${file} (hosts: ${config.hosts.map((c) => c.name).join(', ')})`);
    }
    const cluster = Cluster.open(config, { configFile: file });
    try {
      const rs = await withInterrupt(io, (signal) => cluster.reconcile({ vm, from, to, settleMs, operatorDone: Boolean(values['operator-done']), signal }));
      io.out(values.json ? `${JSON.stringify({ reconciled: rs })}\n` : describeReconcile(rs));
      return rs.every((r) => r.status === 'resolved') ? 0 : 1;
    } catch (e) {
      // --json: a refusal (lock held, no record) is a report too
      if (!values.json || !isDriverError(e)) throw e;
      io.out(`${JSON.stringify({ reconciled: [], error: { code: e.code, message: e.message }, holder: e.detail?.holder ?? null })}\n`);
      throw e;
    } finally {
      await cluster.close();
    }
  },
};
