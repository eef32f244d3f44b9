import { dirname } from 'node:path';
import { BenchSpecError, benchMigrate as runBenchMigrate, parseBenchSetting, type BenchRow, type BenchSetting } from '../../api/bench-migrate.js';
import { Cluster } from '../../api/cluster.js';
import { Lab } from '../../lab/index.js';
import { MAX_TIMEOUT_SEC } from '../../input/schema.js';
import { num, parse, table } from '../args.js';
import { clusterConfig, fmtMs } from '../cluster.js';
import { UsageError, type CliIo } from '../io.js';

export const benchMigrateUsage = `tide [--config FILE] bench migrate --vm VM[,VM…] [--settings S1,S2,…] [--setting NAME:k=v,…]
                [--runs N] [--warmup N] [--timeout SEC] [--hosts A,B] [--probe auto|none] [--dirty-mib N] [--json]

  Migrates the VM(s) back and forth between two hosts under each setting, runs interleaved,
  and compares wall time, libvirt's downtime, the service probe's longest gap (--probe auto,
  the default when the configuration has a probe for the VM), data sent and passes.
  Settings: plain, auto-converge, post-copy, post-copy:N (switch after N passes), suspend, or
  --setting NAME:mode=live|suspend,autoConverge=true,postCopyAfter=N,bandwidth=MIBPS,maxDowntime=MS
  (repeatable). Default: plain,auto-converge,post-copy, 3 runs, 1 warm-up migration.
  To compare KVM with TCG, give one VM of each (--vm kvmguest,tcgguest). --timeout aborts a
  run that does not converge (a failed run, counted in the ok column).
  --dirty-mib N        lab guests only: make the guest rewrite N MiB of RAM during the runs
                       (a memory-dirtying workload, so the settings differ)`;

function fmtRow(r: BenchRow): (string | number)[] {
  return [
    r.setting, r.vm, `${r.ok}/${r.runs}`, fmtMs(r.totalMsMedian), fmtMs(r.totalMsMean), fmtMs(r.downtimeMsMedian),
    fmtMs(r.probeDowntimeMsMedian), fmtMs(r.probeDowntimeMsMax), r.probeFailed, r.mibMean === null ? '-' : r.mibMean.toFixed(1),
    r.iterationsMedian ?? '-', r.postCopyRuns,
  ];
}

/** `tide bench migrate`: compares migration settings on real hosts (e.g. the lab). */
export async function benchMigrate(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, {
    vm: { type: 'string' }, settings: { type: 'string' }, setting: { type: 'string', multiple: true }, runs: { type: 'string' },
    warmup: { type: 'string' }, timeout: { type: 'string' }, hosts: { type: 'string' }, probe: { type: 'string' }, 'dirty-mib': { type: 'string' }, json: { type: 'boolean' },
  });
  const vms = ((values.vm as string | undefined) ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (vms.length === 0) throw new UsageError('--vm VM[,VM…] is required');
  const runs = num(values.runs as string | undefined, '--runs', 3, { min: 1, max: 1000, int: true });
  const warmup = num(values.warmup as string | undefined, '--warmup', 1, { min: 0, max: 100, int: true });
  const timeoutSec = values.timeout === undefined ? undefined : num(values.timeout as string, '--timeout', 0, { min: 0.001, max: MAX_TIMEOUT_SEC });
  const dirty = values['dirty-mib'] === undefined ? null : num(values['dirty-mib'] as string, '--dirty-mib', 0, { min: 0, max: 65_536, int: true });
  let settings: BenchSetting[];
  try {
    const named = ((values.settings as string | undefined) ?? (values.setting ? '' : 'plain,auto-converge,post-copy')).split(',').map((s) => s.trim()).filter(Boolean);
    settings = [...named, ...((values.setting as unknown as string[] | undefined) ?? [])].map(parseBenchSetting);
    if (timeoutSec !== undefined) for (const s of settings) s.settings.timeoutSec ??= timeoutSec;
  } catch (e) {
    if (e instanceof BenchSpecError) throw new UsageError(e.message);
    throw e;
  }
  const hostsArg = (values.hosts as string | undefined)?.split(',').map((s) => s.trim()).filter(Boolean);
  if (hostsArg && hostsArg.length !== 2) throw new UsageError('--hosts takes exactly two hosts: A,B');
  const probeArg = values.probe as string | undefined;
  if (probeArg !== undefined && probeArg !== 'auto' && probeArg !== 'none') throw new UsageError('--probe is auto or none');
  const { config, file } = clusterConfig(values, io);
  const probe = probeArg ?? (vms.every((v) => config.vms[v]?.probe) ? 'auto' : 'none');
  let lab: Lab | null = null;
  if (dirty !== null) {
    lab = Lab.open(dirname(file));
    if (!lab) throw new UsageError(`--dirty-mib needs a lab config (written by tide lab up); ${file} is not in a lab directory`);
  }
  const cluster = Cluster.open(config);
  try {
    if (lab && dirty !== null) for (const vm of vms) await lab.setDirty(vm, dirty);
    const res = await runBenchMigrate(cluster, {
      vms, settings, runs, warmup, probe, hosts: hostsArg as [string, string] | undefined,
      onRun: (r) => {
        if (values.json) return;
        const x = r.report;
        io.err(`  ${r.setting} #${r.run} ${r.vm} ${x.from}→${x.to}: ${x.ok ? `${fmtMs(x.totalMs)}, downtime ${fmtMs(x.downtimeMs)}, probe ${fmtMs(x.probeDowntimeMs)}${x.postCopy ? ', post-copy' : ''}` : `FAILED ${x.error?.code}: ${x.error?.message}`}\n`);
      },
    });
    if (values.json) {
      io.out(`${JSON.stringify({ settings, rows: res.rows, runs: res.runs.map((r) => ({ setting: r.setting, run: r.run, ...r.report })) })}\n`);
    } else {
      io.out(table(['setting', 'vm', 'ok', 'wall median', 'wall mean', 'downtime median', 'probe gap median', 'probe gap max', 'probe failed', 'MiB sent', 'passes', 'post-copy'], res.rows.map(fmtRow)));
    }
    return res.runs.every((r) => r.report.ok) ? 0 : 1;
  } finally {
    if (lab && dirty) for (const vm of vms) await lab.setDirty(vm, 0).catch(() => { /* best effort */ });
    await cluster.close();
  }
}
