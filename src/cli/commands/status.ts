import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfig } from '../../config/load.js';
import type { TideConfig } from '../../config/schema.js';
import { nodeIdOf } from '../../daemon/node-id.js';
import { statusReport, type StatusReport } from '../../daemon/ops.js';
import { InputError } from '../../input/errors.js';
import { checkStorePath } from '../../input/schema.js';
import { storePathFor } from '../../store/lock.js';
import { openStore } from '../../store/open.js';
import { openSqliteStore } from '../../store/store.js';
import { parse } from '../args.js';
import { configPath } from '../cluster.js';
import { classifyError, EXIT, UsageError, type CliIo, type Command } from '../io.js';
import { fmtTime } from './plans.js';

/** store.path's default (src/config/schema.ts), where the store is looked for when the configuration cannot be read. */
const DEFAULT_STORE_PATH = '.tide/tide.sqlite';

const usage = `tide [--config FILE] status [--store FILE] [--json]

  What the daemon does, from the store it shares with it: running or not (its last heartbeat),
  mode and interval, the schedule window in force and until when, whether moves are frozen and
  why, the last round (when, result, error with its code), plans awaiting approval, hosts in
  maintenance, migrations whose outcome is unknown, who holds the cluster lock, and — with
  several controllers — who leads (since when, lease expiry) and this node's role (leader or
  standby).
  The configuration is needed only to find the store: when it is invalid, the report still comes
  from --store FILE, else from the default store next to it (${DEFAULT_STORE_PATH}) if that
  exists, with a warning on stderr naming the configuration's error (--json: "configError").

  --store FILE   read this store (an existing one; it is never created) instead of store.path
  --json         the report as one JSON object

  Exit status 0 (also when no daemon runs, or with the warning above: the report says so);
  2 when the configuration is invalid and no store can be found (its error is printed), or on
  a usage error; 1 when the store cannot be read (e.g. TIDE_STORE_VERSION).`;

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
  if (r.policy) lines.push(`policy:   ${r.policy.name}${Object.keys(r.policy.args).length ? ` ${JSON.stringify(r.policy.args)}` : ''} — ${r.policy.source === 'api' ? `set through the API by ${r.policy.setBy} at ${fmtTime(r.policy.setMs!)}` : 'from the configuration file'}${r.policy.ignored ? ` (an API edit by ${r.policy.ignored.setBy} is not in force: ${r.policy.ignored.reason})` : ''}`);
  if (r.rules?.source === 'api') lines.push(`rules:    set through the API by ${r.rules.setBy} at ${fmtTime(r.rules.setMs!)}`);
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
  // Several controllers: who leads, until when its lease runs without a renewal, and this node's part.
  lines.push(`leader:   ${r.leader ? `${r.leader.node !== null ? `node ${r.leader.node}, ` : ''}${r.leader.holderText} since ${fmtTime(r.leader.sinceMs)}; lease ${r.leader.expired ? `expired at ${fmtTime(r.leader.leaseExpiresMs)} (a standby takes over)` : `until ${fmtTime(r.leader.leaseExpiresMs)} unless renewed`}` : 'none (no controller holds the lease)'}`);
  lines.push(`this node: ${r.thisNode.node !== null ? `${r.thisNode.node} (on ${r.thisNode.host})` : r.thisNode.host}, ${r.thisNode.role}`);
  return `${lines.join('\n')}\n`;
}

export const statusCommand: Command = {
  summary: "the daemon's mode, schedule window, freeze, last round, pending plans, lock holder",
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' }, store: { type: 'string' } });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const src = statusSources(values, io);
    if (src.configError) {
      io.err(`tide status: warning: the configuration ${src.configFile} is invalid [${src.configError.code}]; reporting from ${src.storePath}${values.store === undefined ? ' (the default store next to it; give --store FILE if store.path names another)' : ''}:\n${src.configError.message}\n`);
    }
    // A PostgreSQL store named by a valid configuration (and no --store FILE) is opened as such; otherwise the SQLite file.
    const store = src.config?.store.kind === 'postgres' && values.store === undefined ? openStore(src.config.store, src.configFile!) : openSqliteStore(src.storePath);
    try {
      // this node: the node id the daemon of this configuration file has (daemon.nodeId, or derived from the file)
      const r = statusReport(store, src.config, Date.now(), src.config && src.configFile ? nodeIdOf(src.config, src.configFile) : null);
      const out = src.configError ? { ...r, configError: src.configError } : r;
      io.out(values.json ? `${JSON.stringify(out, null, 2)}\n` : describeStatus(r));
      return EXIT.ok;
    } finally {
      store.close();
    }
  },
};

interface StatusSources {
  readonly storePath: string;
  readonly config: TideConfig | null;
  readonly configFile: string | null;
  /** Why the configuration could not be read (null: it was, or none was given with --store). */
  readonly configError: { readonly code: string; readonly message: string } | null;
}

/**
 * Where `tide status` reads from. The configuration only locates the store (and gives mode and
 * schedule when no daemon runs), so an invalid one falls back to --store FILE or, when it
 * exists, the default store next to it. A fallback store is never created: an invalid
 * configuration with no store to read is its own error (exit 2).
 */
function statusSources(values: Record<string, unknown>, io: CliIo): StatusSources {
  const flag = values.store as string | undefined;
  let given: string | null = null;
  if (flag !== undefined) {
    checkStorePath(flag, '--store');
    given = flag === ':memory:' ? flag : resolve(io.cwd, flag);
    if (given !== ':memory:' && !existsSync(given)) throw new InputError(`--store: ${given} does not exist (tide status reads a store, it never creates one)`);
  }
  let file: string;
  try {
    file = configPath(values, io);
  } catch (e) {
    // No configuration at all: fine with --store (mode and schedule then come from the store).
    if (given !== null && e instanceof UsageError) return { storePath: given, config: null, configFile: null, configError: null };
    throw e;
  }
  try {
    const config = loadConfig(file);
    return { storePath: given ?? storePathFor(config.store.path, file), config, configFile: file, configError: null };
  } catch (e) {
    const { status, code } = classifyError(e);
    if (status === EXIT.internal) throw e;
    const fallback = given ?? storePathFor(DEFAULT_STORE_PATH, file);
    if (!existsSync(fallback) && fallback !== ':memory:') throw e;
    return { storePath: fallback, config: null, configFile: file, configError: { code: code ?? 'TIDE_CONFIG', message: e instanceof Error ? e.message : String(e) } };
  }
}
