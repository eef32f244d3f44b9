import { Cluster, type EvacuateEvent } from '../../api/cluster.js';
import { num, parse, table } from '../args.js';
import { MIGRATION_FLAGS, MIGRATION_FLAGS_USAGE, clusterConfig, fmtMs, parseMode, settingsFrom, withInterrupt } from '../cluster.js';
import { UsageError, type Command } from '../io.js';
import { describeReport } from './migrate.js';

const usage = `tide [--config FILE] evacuate HOST [--to H1,H2] [--concurrency N] [--max-per-host N]
             [--include-stopped] [--include-pinned] [--probe auto|none] [--dry-run] [--json] [tuning]

  Maintenance: moves every running VM off HOST (largest first, each to the target with the
  most uncommitted memory), at most --concurrency migrations at once (default
  migration.maxConcurrent) and --max-per-host touching one host (default migration.maxPerHost).
  Targets: --to, else every other host that is up and neither in maintenance nor excluded.
  Exit status 0 when HOST is left empty.

  --include-stopped    also move the definitions of shut-off VMs (offline)
  --include-pinned     also move VMs the configuration pins
  --probe auto         probe each VM that has a configured probe
  --dry-run            plan and run the pre-flight checks only
${MIGRATION_FLAGS_USAGE}`;

export const evacuateCommand: Command = {
  summary: 'move every VM off a host (maintenance), under the concurrency limits',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      to: { type: 'string' }, concurrency: { type: 'string' }, 'max-per-host': { type: 'string' }, 'include-stopped': { type: 'boolean' },
      'include-pinned': { type: 'boolean' }, probe: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, ...MIGRATION_FLAGS,
    }, true);
    if (positionals.length !== 1) throw new UsageError('which host? (tide evacuate HOST)');
    const host = positionals[0]!;
    const probe = values.probe as string | undefined;
    if (probe !== undefined && probe !== 'auto' && probe !== 'none') throw new UsageError('--probe is auto or none for evacuate');
    const mode = parseMode(values.mode);
    const settings = settingsFrom(values);
    const concurrency = values.concurrency === undefined ? undefined : num(values.concurrency as string, '--concurrency', 1, { min: 1, int: true });
    const maxPerHost = values['max-per-host'] === undefined ? undefined : num(values['max-per-host'] as string, '--max-per-host', 1, { min: 1, int: true });
    const to = (values.to as string | undefined)?.split(',').map((s) => s.trim()).filter(Boolean);
    const { config } = clusterConfig(values, io);
    const cluster = Cluster.open(config);
    const log = (e: EvacuateEvent): void => {
      if (values.json) return;
      if (e.type === 'plan') {
        io.err(`${host}: ${e.moves.length} VM(s) to move${e.skipped.length ? `, ${e.skipped.length} skipped` : ''}\n`);
        for (const s of e.skipped) io.err(`  skip ${s.vm}: ${s.reason}\n`);
      } else if (e.type === 'start') io.err(`  ${e.move.vm} → ${e.move.to} (${e.move.mode})…\n`);
      else if (e.type === 'done') io.out(describeReport(e.report));
    };
    try {
      const r = await withInterrupt(io, (signal) => cluster.evacuate({
        host, mode, settings, to, concurrency, maxPerHost, includeStopped: Boolean(values['include-stopped']),
        includePinned: Boolean(values['include-pinned']), probe: probe as 'auto' | 'none' | undefined, dryRun: Boolean(values['dry-run']), signal, onEvent: log,
      }));
      if (values.json) io.out(`${JSON.stringify(r)}\n`);
      else if (r.dryRun) {
        io.out(table(['vm', 'to', 'mode', 'MiB', 'pre-flight'], r.moves.map((m) => {
          const rep = [...r.moved, ...r.failed].find((x) => x.vm === m.vm);
          return [m.vm, m.to, m.mode, m.memMiB, rep?.ok ? 'ok' : (rep?.checks ?? []).filter((c) => !c.ok).map((c) => `${c.check}: ${c.reason}`).join('; ') || 'failed'];
        })));
      } else {
        io.out(`${host}: ${r.moved.length} moved, ${r.failed.length} failed, ${r.skipped.length} skipped in ${fmtMs(r.totalMs)}; ${r.remaining.length ? `still on it: ${r.remaining.join(', ')}` : 'empty'}\n`);
      }
      return r.dryRun ? (r.failed.length === 0 && r.skipped.length === 0 ? 0 : 1) : r.remaining.length === 0 && r.failed.length === 0 ? 0 : 1;
    } finally {
      await cluster.close();
    }
  },
};
