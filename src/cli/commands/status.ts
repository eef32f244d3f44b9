import type { TideConfig } from '../../config/schema.js';
import { statusReport, type StatusReport } from '../../daemon/ops.js';
import { parse } from '../args.js';
import { UsageError, type Command } from '../io.js';
import { fmtTime, withConfigStore } from './plans.js';

const usage = `tide [--config FILE] status [--json]

  What the daemon does, from the store it shares with it: running or not (its last heartbeat),
  mode and interval, the schedule window in force and until when, whether moves are frozen and
  why, the last round (when, result, error with its code), plans awaiting approval, hosts in
  maintenance, migrations whose outcome is unknown, and who holds the cluster lock.
  Exit status 0 (also when no daemon runs: the report says so).`;

function ago(ms: number): string {
  if (!Number.isFinite(ms)) return 'never';
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
}

export function describeStatus(r: StatusReport): string {
  const d = r.daemon;
  const lines: string[] = [];
  lines.push(d === null ? 'daemon:   never ran on this store'
    : d.alive ? `daemon:   ${d.state} (pid ${d.pid} on ${d.host}, since ${fmtTime(d.startedMs)}; heartbeat ${ago(d.heartbeatAgeMs)})`
      : `daemon:   not running (${d.state === 'stopped' ? 'stopped' : `no heartbeat for ${ago(d.heartbeatAgeMs).replace(' ago', '')}`}; last pid ${d.pid} on ${d.host})`);
  lines.push(`mode:     ${r.mode}, every ${r.intervalSec} s`);
  lines.push(`window:   ${r.window ? `${r.window.kind} (${r.window.name}) until ${r.window.untilMs === null ? 'further notice' : fmtTime(r.window.untilMs)}` : 'no schedule (the policy applies at all hours)'}`);
  lines.push(`frozen:   ${r.frozen.frozen ? `yes${r.frozen.sinceMs != null ? ` since ${fmtTime(r.frozen.sinceMs)}` : ''} — ${r.frozen.reason}` : 'not frozen'}`);
  const lr = d?.lastRound;
  lines.push(`last round: ${lr ? `${fmtTime(lr.startedMs)} ${lr.result}: ${lr.summary}${lr.error ? ` [${lr.error.code}]` : ''}` : 'none'}`);
  if (d?.alive && d.nextRoundMs !== null) lines.push(`next round: ${fmtTime(d.nextRoundMs)}`);
  if (d?.configError) lines.push(`config:   the last reload failed at ${fmtTime(d.configError.atMs)}; the previous configuration is in force:\n${d.configError.message.replace(/^/gm, '            ')}`);
  lines.push(`pending approval: ${r.pendingApproval.length === 0 ? 'none' : r.pendingApproval.map((p) => `plan ${p.id} (${p.summary})`).join(', ')}`);
  if (r.approved.length) lines.push(`approved, to execute: ${r.approved.map((p) => `plan ${p.id}`).join(', ')}`);
  lines.push(`maintenance: ${r.maintenance.length === 0 ? 'none' : r.maintenance.map((h) => `${h.host} (since ${fmtTime(h.sinceMs)} by ${h.by}${h.reason ? `: ${h.reason}` : ''})`).join(', ')}`);
  lines.push(`unknown migrations: ${r.unknownMigrations.length === 0 ? 'none' : r.unknownMigrations.map((u) => `${u.vm} ${u.from} → ${u.to} (${u.status})`).join(', ')}`);
  lines.push(`cluster lock: ${r.lock ? `held by ${r.lock.holderText} since ${fmtTime(r.lock.acquiredMs)}` : 'free'}`);
  return `${lines.join('\n')}\n`;
}

export const statusCommand: Command = {
  summary: "the daemon's mode, schedule window, freeze, last round, pending plans, lock holder",
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    return withConfigStore(values, io, (store, config: TideConfig) => {
      const r = statusReport(store, config);
      io.out(values.json ? `${JSON.stringify(r, null, 2)}\n` : describeStatus(r));
      return 0;
    });
  },
};
