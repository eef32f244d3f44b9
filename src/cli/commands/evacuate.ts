import { Cluster, type EvacuateEvent, type NotMovedReport, type PlannedMove } from '../../api/cluster.js';
import { num, parse, table } from '../args.js';
import { MIGRATION_FLAGS, MIGRATION_FLAGS_USAGE, clusterConfig, fmtMs, parseMode, settingsFrom, withInterrupt } from '../cluster.js';
import { isDriverError } from '../../drivers/errors.js';
import { UsageError, type Command } from '../io.js';
import { describeReport } from './migrate.js';

const usage = `tide [--config FILE] evacuate HOST [--to H1,H2] [--concurrency N] [--max-per-host N]
             [--include-stopped] [--include-pinned] [--probe auto|none] [--interval-ms MS]
             [--dry-run] [--json] [tuning]

  Maintenance: plans moving every running VM off HOST and runs the plan. The planner takes the
  largest VMs first and sends each to the host with the most room left that passes every
  filter: up and reachable, not in maintenance or excluded, memory, CPU headroom (the policy's
  targetUtil, on utilisation measured over --interval-ms, default 1000), I/O, and the
  configuration's hard rules (affinity, anti-affinity, pinning). It prints each move with its
  reason and each VM it leaves with which filter rejected which host, then the executor runs
  the moves: at most --concurrency at once (default migration.maxConcurrent) and
  --max-per-host touching one host (default migration.maxPerHost); each move first checks the
  VM is still where the plan saw it. Targets: --to, else every other usable host.
  Takes the cluster lock: while another tide evacuate/place holds it, this one is refused
  (TIDE_LOCKED, naming the holder).
  Exit status 0 when HOST is left empty, 1 when a move failed or a VM stays (or the lock is
  held), 2 for a usage error.

  --include-stopped    also move the definitions of shut-off VMs (offline)
  --include-pinned     also move VMs the configuration pins
  --probe auto         probe each VM that has a configured probe
  --dry-run            plan and run the pre-flight checks only
  --json               print the report (plan, reasons, results) as one JSON object
${MIGRATION_FLAGS_USAGE}`;

/** The plan in words: each move with its reason, each VM left with every host's verdict. */
export function describePlan(host: string, moves: PlannedMove[], notMoved: NotMovedReport[], unreachable: { host: string; reason: string }[]): string {
  const lines = [`${host}: ${moves.length} VM(s) to move${notMoved.length ? `, ${notMoved.length} not moved` : ''}`];
  for (const m of moves) lines.push(`  move ${m.vm} → ${m.to} (${m.mode}, ${m.memMiB} MiB): ${m.reason}`);
  for (const n of notMoved) {
    lines.push(`  stay ${n.vm} [${n.code}]: ${n.reason}`);
    for (const h of n.hosts) lines.push(`      ${h.fits ? `${h.host}: fits (score ${h.score})` : `[${h.by}] ${h.reason}`}`);
  }
  for (const u of unreachable) lines.push(`  unreachable: ${u.host}: ${u.reason}`);
  return `${lines.join('\n')}\n`;
}

export const evacuateCommand: Command = {
  summary: 'move every VM off a host (maintenance), under the concurrency limits',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      to: { type: 'string' }, concurrency: { type: 'string' }, 'max-per-host': { type: 'string' }, 'include-stopped': { type: 'boolean' },
      'include-pinned': { type: 'boolean' }, probe: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, 'interval-ms': { type: 'string' }, ...MIGRATION_FLAGS,
    }, true);
    if (positionals.length !== 1) throw new UsageError('which host? (tide evacuate HOST)');
    const host = positionals[0]!;
    const probe = values.probe as string | undefined;
    if (probe !== undefined && probe !== 'auto' && probe !== 'none') throw new UsageError('--probe is auto or none for evacuate');
    const mode = parseMode(values.mode);
    const settings = settingsFrom(values);
    const concurrency = values.concurrency === undefined ? undefined : num(values.concurrency as string, '--concurrency', 1, { min: 1, int: true });
    const maxPerHost = values['max-per-host'] === undefined ? undefined : num(values['max-per-host'] as string, '--max-per-host', 1, { min: 1, int: true });
    const intervalMs = num(values['interval-ms'] as string | undefined, '--interval-ms', 1000, { min: 0, max: 3_600_000, int: true });
    const to = (values.to as string | undefined)?.split(',').map((s) => s.trim()).filter(Boolean);
    const { config, file } = clusterConfig(values, io);
    for (const h of [host, ...(to ?? [])]) if (!config.hosts.some((c) => c.name === h)) throw new UsageError(`no host named '${h}' in the configuration (${file})`);
    const cluster = Cluster.open(config, { configFile: file });
    const log = (e: EvacuateEvent): void => {
      if (values.json) return;
      if (e.type === 'plan') io.out(describePlan(host, e.moves, e.notMoved, e.unreachable));
      else if (e.type === 'start') io.err(`  ${e.move.vm} → ${e.move.to} (${e.move.mode})…\n`);
      else if (e.type === 'done') io.out(describeReport(e.report));
    };
    try {
      const r = await withInterrupt(io, (signal) => cluster.evacuate({
        host, mode, settings, to, concurrency, intervalMs, maxPerHost, includeStopped: Boolean(values['include-stopped']),
        includePinned: Boolean(values['include-pinned']), probe: probe as 'auto' | 'none' | undefined, dryRun: Boolean(values['dry-run']), signal, onEvent: log,
      }));
      if (values.json) io.out(`${JSON.stringify(r)}\n`);
      else if (r.dryRun) {
        io.out(table(['vm', 'to', 'mode', 'MiB', 'pre-flight'], r.moves.map((m) => {
          const rep = [...r.moved, ...r.failed].find((x) => x.vm === m.vm);
          return [m.vm, m.to, m.mode, m.memMiB, rep?.ok ? 'ok' : (rep?.checks ?? []).filter((c) => !c.ok).map((c) => `${c.check}: ${c.reason}`).join('; ') || 'failed'];
        })));
      } else {
        io.out(`${host}: ${r.moved.length} moved, ${r.failed.length} failed, ${r.notMoved.length} not moved in ${fmtMs(r.totalMs)}; ${r.remaining.length ? `still on it: ${r.remaining.join(', ')}` : 'empty'}\n`);
      }
      return r.dryRun ? (r.failed.length === 0 && r.skipped.length === 0 ? 0 : 1) : r.remaining.length === 0 && r.failed.length === 0 ? 0 : 1;
    } catch (e) {
      // --json: a refusal (lock held, host unreachable, unknown host or VM) is a report too.
      if (!values.json || !isDriverError(e)) throw e;
      io.out(`${JSON.stringify({ host, error: { code: e.code, message: e.message }, unreachable: e.detail?.unreachable ?? [], holder: e.detail?.holder ?? null })}\n`);
      throw e; // the CLI prints it on stderr and picks the exit status
    } finally {
      await cluster.close();
    }
  },
};
