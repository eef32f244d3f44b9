import { Cluster, type PlaceReport } from '../../api/cluster.js';
import { isDriverError } from '../../drivers/errors.js';
import { num, parse } from '../args.js';
import { MIGRATION_FLAGS, MIGRATION_FLAGS_USAGE, clusterConfig, fmtMs, settingsFrom, withInterrupt } from '../cluster.js';
import { UsageError, type Command } from '../io.js';

const usage = `tide [--config FILE] place VM [--to H1,H2] [--interval-ms MS] [--dry-run] [--json] [tuning]

  Initial placement: for a defined, shut-off VM, the planner picks the best host and the
  executor starts the VM there (moving its definition first, offline, when another host holds
  it). Every host is judged by the same filters as evacuation — reachable and usable, memory,
  CPU headroom (the VM is assumed to use all its vCPUs, on utilisation measured over
  --interval-ms, default 1000), I/O, the configuration's hard rules — and those that pass are
  scored; the output says why the chosen host won and why each other host did not.
  Takes the cluster lock (TIDE_LOCKED while another tide evacuate/place holds it).
  Exit status 0 when the VM was started (dry run: a host fits), 1 when no host fits or the
  start failed (or the lock is held), 2 for a usage error.

  --to H1,H2           only consider these hosts
  --dry-run            choose and explain only
  --json               print the report as one JSON object
${MIGRATION_FLAGS_USAGE}`;

export function describePlace(r: PlaceReport): string {
  const lines = [r.to === null ? `${r.vm}: no host fits: ${r.reason}` : `${r.vm}: ${r.dryRun ? 'would start' : 'start'} on ${r.to} (defined on ${r.definedOn}): ${r.reason}`];
  for (const h of r.hosts) lines.push(`  ${h.host === r.to ? '*' : ' '} ${h.fits ? `${h.host}: fits, score ${h.score}` : `[${h.by}] ${h.reason}`}`);
  for (const u of r.unreachable) lines.push(`    unreachable: ${u.host}: ${u.reason}`);
  if (!r.dryRun && r.to !== null) lines.push(r.ok ? `${r.vm}: started on ${r.to} in ${fmtMs(r.totalMs)}${r.note ? ` (${r.note})` : ''}` : `${r.vm}: FAILED: ${r.error?.message ?? 'unknown error'} [${r.error?.code ?? '?'}]`);
  return `${lines.join('\n')}\n`;
}

export const placeCommand: Command = {
  summary: 'start a shut-off VM on the host the planner picks, and say why',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      to: { type: 'string' }, 'interval-ms': { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, ...MIGRATION_FLAGS,
    }, true);
    if (positionals.length !== 1) throw new UsageError('which VM? (tide place VM)');
    const vm = positionals[0]!;
    const settings = settingsFrom(values);
    const intervalMs = num(values['interval-ms'] as string | undefined, '--interval-ms', 1000, { min: 0, max: 3_600_000, int: true });
    const to = (values.to as string | undefined)?.split(',').map((s) => s.trim()).filter(Boolean);
    const { config, file } = clusterConfig(values, io);
    const cluster = Cluster.open(config, { configFile: file });
    try {
      const r = await withInterrupt(io, (signal) => cluster.place({ vm, to, settings, intervalMs, dryRun: Boolean(values['dry-run']), signal }));
      io.out(values.json ? `${JSON.stringify(r)}\n` : describePlace(r));
      return r.ok ? 0 : 1;
    } catch (e) {
      // --json: a refusal (lock held, host unreachable, unknown host or VM) is a report too.
      if (!values.json || !isDriverError(e)) throw e;
      io.out(`${JSON.stringify({ vm, error: { code: e.code, message: e.message }, unreachable: e.detail?.unreachable ?? [], holder: e.detail?.holder ?? null })}\n`);
      throw e; // the CLI prints it on stderr and picks the exit status
    } finally {
      await cluster.close();
    }
  },
};
