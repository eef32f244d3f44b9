import { planDetail, type PlanDetail } from '../../daemon/ops.js';
import { parse } from '../args.js';
import { UsageError, type Command } from '../io.js';
import { fmtTime, planId, withConfigStore } from './plans.js';

const usage = `tide [--config FILE] plan show ID [--json]

  One plan: its status and why, each step (what, why, which planner component decided, and
  how it ran: pending, running, succeeded, failed with the error code, skipped, cancelled), and
  what the planner did NOT do and why (VMs not moved, how it saw each host).`;

export function describePlanDetail(d: PlanDetail): string {
  const lines = [`plan ${d.id}: ${d.status}${d.statusReason ? ` — ${d.statusReason}` : ''}`,
    `  made ${fmtTime(d.createdMs)} in ${d.mode} mode by ${d.policy}; ${d.summary}${d.confirmedMs !== null ? `; last confirmed ${fmtTime(d.confirmedMs)}` : ''}`];
  if (d.stepDetails.length) lines.push('steps:');
  for (const s of d.stepDetails) {
    const what = s.kind === 'migrate' ? `migrate ${s.vm} ${s.from} → ${s.to}` : s.kind === 'place' ? `place ${s.vm} on ${s.to}` : `${s.kind} ${s.host}`;
    lines.push(`  ${s.id}. ${what}${s.deps.length ? ` (after ${s.deps.join(', ')})` : ''}  [${s.state}]`);
    lines.push(`       why: ${s.reason} (${s.by})`);
    if (s.error) lines.push(`       error: ${s.error.code}: ${s.error.message}`);
    if (s.note) lines.push(`       note: ${s.note}`);
  }
  if (d.notMoved.length) lines.push('not moved:');
  for (const n of d.notMoved) lines.push(`  ${n.vm}${n.host ? ` on ${n.host}` : ''} [${n.code}]: ${n.reason}`);
  if (d.hosts.length) lines.push('hosts:');
  for (const h of d.hosts) lines.push(`  ${h.host}: ${h.class} — ${h.reason}`);
  return `${lines.join('\n')}\n`;
}

export const planCommand: Command = {
  summary: 'show one plan: steps with reasons and run states, what was not moved and why',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } }, true);
    if (positionals[0] !== 'show') throw new UsageError(positionals[0] === undefined ? 'tide plan show ID' : `unknown subcommand '${positionals[0]}' (tide plan show ID)`);
    if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`);
    const id = planId(positionals[1], 'tide plan show ID');
    return withConfigStore(values, io, (store) => {
      const d = planDetail(store, id);
      io.out(values.json ? `${JSON.stringify(d, null, 2)}\n` : describePlanDetail(d));
      return 0;
    });
  },
};
