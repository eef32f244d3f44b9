import { Cluster, type MigrateReport } from '../../api/cluster.js';
import type { MigrationProgress, PreflightCheck } from '../../drivers/hypervisor.js';
import { parse, progressBar } from '../args.js';
import { MIGRATION_FLAGS, MIGRATION_FLAGS_USAGE, clusterConfig, fmtMiB, fmtMs, parseMode, settingsFrom, withInterrupt } from '../cluster.js';
import { EXIT, UsageError, type CliIo, type Command } from '../io.js';

const usage = `tide [--config FILE] migrate VM --to HOST [--mode live|offline|suspend]
             [--probe auto|none|tcp://IP:PORT|http://IP[:PORT]/PATH] [--dry-run] [--json] [tuning]

  Moves VM to HOST. Pre-flight checks run first (VM and target exist, target reachable, not
  the same host, VM state, CPU compatible, storage, free memory, no name clash) and a failing
  one stops the migration before anything changes. Afterwards Tide verifies the VM runs on
  HOST and no longer on its source. Ctrl-C aborts the migration (the VM stays on its source).
  A VM name that starts with '-' goes last, after '--': tide migrate --to HOST -- -odd-name

  --probe auto         probe the VM's service during the migration at the address the
                       configuration gives (vms.VM.probe, in vms.VM.probeNetns); or give a
                       target. Requests every 20 ms; reports the longest gap as probeDowntimeMs.
  --dry-run            only run the pre-flight checks (exit 1 if one fails)
  --json               one JSON object: vm, from, to, mode, ok, totalMs, downtimeMs,
                       probeDowntimeMs, bytes, iterations, postCopy, probe, error
${MIGRATION_FLAGS_USAGE}`;

/** The pre-flight checks, one per line: name, yes/NO, reason (left-aligned). */
export function printChecks(io: CliIo, checks: PreflightCheck[]): void {
  const w = Math.max(5, ...checks.map((c) => c.check.length));
  io.out(`${'check'.padEnd(w)}  ok   reason\n`);
  // '?': passed without proof either way (verdict 'unknown'; the reason says who decides)
  for (const c of checks) io.out(`${c.check.padEnd(w)}  ${(!c.ok ? 'NO' : c.verdict === 'unknown' ? '?' : 'yes').padEnd(3)}  ${c.reason}\n`);
}

/** One-paragraph human summary of a migration report. */
export function describeReport(r: MigrateReport): string {
  const lines: string[] = [];
  if (r.ok) {
    lines.push(`${r.vm}: ${r.from} → ${r.to} (${r.mode}${r.postCopy ? ', post-copy' : ''}) in ${fmtMs(r.totalMs)}`);
    const dt = r.mode === 'live' ? `downtime ${fmtMs(r.downtimeMs)} (libvirt)` : `${r.mode === 'offline' ? 'off' : 'paused'} for ${fmtMs(r.downtimeMs)}`;
    lines.push(`  ${dt}${r.bytes !== null ? `, ${fmtMiB(r.bytes)} transferred` : ''}${r.iterations !== null ? ` in ${r.iterations} pass${r.iterations === 1 ? '' : 'es'}` : ''}`);
  } else {
    lines.push(`${r.vm}: migration to ${r.to} FAILED: ${r.error?.message ?? 'unknown error'} [${r.error?.code ?? '?'}]`);
  }
  if (r.probe) {
    const p = r.probe;
    lines.push(`  probe ${p.target}: longest gap ${fmtMs(p.downtimeMs)}, ${p.failed} failed of ${p.sent} requests${p.warning ? ` (${p.warning})` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A progress bar on a TTY that follows a migration's phases. */
export function migrationBar(io: CliIo, vm: string): { update(p: MigrationProgress): void; done(): void } {
  let bar: ReturnType<typeof progressBar> | null = null;
  let label = '';
  return {
    update(p) {
      const l = `${vm} ${p.phase}${p.iteration ? ` #${p.iteration}` : ''}`.padEnd(Math.max(vm.length + 16, 24));
      if (l !== label) {
        bar?.done();
        bar = progressBar(io, l);
        label = l;
      }
      const f = p.dataTotalBytes > 0 ? 1 - p.dataRemainingBytes / p.dataTotalBytes : 0;
      bar!.update(Math.min(1, Math.max(0, f)));
    },
    done() {
      bar?.done();
    },
  };
}

export const migrateCommand: Command = {
  summary: 'live-migrate (or move offline / suspended) one VM to another host',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      to: { type: 'string' }, probe: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, ...MIGRATION_FLAGS,
    }, true);
    if (positionals.length !== 1) throw new UsageError(positionals.length ? `one VM at a time (got ${positionals.length} arguments)` : 'which VM? (tide migrate VM --to HOST)');
    const vm = positionals[0]!;
    const to = values.to as string | undefined;
    if (!to) throw new UsageError('--to HOST is required');
    const mode = parseMode(values.mode);
    const settings = settingsFrom(values);
    const { config, file } = clusterConfig(values, io);
    // A host the configuration does not name is an input error (exit 2), as for evacuate.
    if (!config.hosts.some((h) => h.name === to)) {
      const error = { code: 'TIDE_NO_SUCH_HOST', message: `no host named '${to}' in the configuration (${file})` };
      if (values.json) io.out(`${JSON.stringify({ vm, to, ok: false, dryRun: Boolean(values['dry-run']), error })}\n`);
      io.err(`tide migrate: ${error.message} [${error.code}]\n`);
      return EXIT.usage;
    }
    const cluster = Cluster.open(config);
    try {
      const probe = values.probe as string | undefined;
      cluster.probeFor(vm, probe); // refuse a bad --probe before anything runs
      const bar = values.json ? null : migrationBar(io, vm);
      const r = await withInterrupt(io, (signal) => cluster.migrate({
        vm, to, mode, settings, probe, dryRun: Boolean(values['dry-run']), signal, onProgress: bar ? (p) => bar.update(p) : undefined,
      }));
      bar?.done();
      if (values.json) {
        io.out(`${JSON.stringify(r)}\n`);
        if (!r.ok && r.error) io.err(`tide migrate: ${r.error.message} [${r.error.code}]\n`);
        return r.ok ? 0 : 1;
      }
      if (r.dryRun) {
        printChecks(io, r.checks ?? []);
        io.out(r.ok ? `${vm} can move to ${to} (${r.mode})\n` : `${vm} cannot move to ${to}\n`);
        return r.ok ? 0 : 1;
      }
      if (r.ok) io.out(describeReport(r));
      else {
        if (r.probe) io.out(describeReport(r));
        if (r.checks) printChecks(io, r.checks.filter((c) => !c.ok && !c.reason.startsWith('not checked')));
        io.err(`tide migrate: ${r.error?.message} [${r.error?.code}]\n`);
      }
      return r.ok ? 0 : 1;
    } finally {
      await cluster.close();
    }
  },
};
