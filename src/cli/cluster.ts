/**
 * Shared pieces of the cluster commands (hosts, vms, migrate, evacuate, bench migrate): where
 * the configuration comes from, the migration-tuning flags, and number formatting.
 */
import { existsSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import type { MigrationSettings } from '../api/cluster.js';
import { loadConfig } from '../config/load.js';
import type { TideConfig } from '../config/schema.js';
import type { MigrationMode } from '../drivers/hypervisor.js';
import { MAX_TIMEOUT_SEC } from '../input/schema.js';
import { num } from './args.js';
import { UsageError, type CliIo } from './io.js';

/** Names looked for in the working directory when neither --config nor $TIDE_CONFIG is given, in order. */
export const DEFAULT_CONFIG_NAMES = ['tide.yaml', 'tide.yml', 'tide.json'] as const;

/** The configuration file: --config FILE, else $TIDE_CONFIG, else ./tide.yaml, ./tide.yml or ./tide.json. */
export function configPath(values: Record<string, unknown>, io: CliIo): string {
  const given = (values.config as string | undefined) ?? io.env.TIDE_CONFIG;
  if (given !== undefined) return isAbsolute(given) ? given : join(io.cwd, given);
  const found = DEFAULT_CONFIG_NAMES.map((n) => join(io.cwd, n)).filter((f) => existsSync(f));
  if (found.length > 1) throw new UsageError(`several configurations here (${found.map((f) => basename(f)).join(', ')}): give --config FILE`);
  if (found.length === 1) return found[0]!;
  throw new UsageError(`no configuration: give --config FILE (or set TIDE_CONFIG, or put a ${DEFAULT_CONFIG_NAMES.join(' or ')} here)`);
}

export function clusterConfig(values: Record<string, unknown>, io: CliIo): { config: TideConfig; file: string } {
  const file = configPath(values, io);
  return { config: loadConfig(file), file };
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags that tune a migration; unset ones fall back to the configuration's `migration`. */
export const MIGRATION_FLAGS: Options = {
  mode: { type: 'string' },
  bandwidth: { type: 'string' },
  'max-downtime': { type: 'string' },
  'auto-converge': { type: 'boolean' },
  'no-auto-converge': { type: 'boolean' },
  'postcopy-after': { type: 'string' },
  'copy-storage': { type: 'boolean' },
  unsafe: { type: 'boolean' },
  timeout: { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  'force-off': { type: 'boolean' },
};

export const MIGRATION_FLAGS_USAGE = `  --mode M             live (default from config), offline (shut down, move, start) or
                       suspend (pause, move the paused VM, resume)
  --bandwidth MIBPS    cap the migration stream (MiB/s)
  --max-downtime MS    longest acceptable switch-over pause (live)
  --auto-converge / --no-auto-converge
                       throttle the guest's vCPUs when pre-copy does not converge
  --postcopy-after N   switch to post-copy after N pre-copy passes (0 = never)
  --copy-storage       copy local disks to the target (non-shared storage)
  --unsafe             accept storage libvirt considers unsafe (assumed shared)
  --timeout SEC        abort a migration that takes longer (default from config)
  --shutdown-timeout SEC  offline: wait this long for the guest to shut down (default 120)
  --force-off          offline: power the guest off if it does not shut down in time`;

export function parseMode(v: unknown): MigrationMode | undefined {
  if (v === undefined) return undefined;
  if (v === 'live' || v === 'offline' || v === 'suspend') return v;
  throw new UsageError(`--mode must be live, offline or suspend (got '${String(v)}')`);
}

export function settingsFrom(values: Record<string, unknown>): MigrationSettings {
  const s: MigrationSettings = {};
  const str = (k: string): string | undefined => values[k] as string | undefined;
  if (values['auto-converge'] && values['no-auto-converge']) throw new UsageError('give either --auto-converge or --no-auto-converge');
  if (values['auto-converge']) s.autoConverge = true;
  if (values['no-auto-converge']) s.autoConverge = false;
  if (str('bandwidth') !== undefined) s.bandwidthMiBps = num(str('bandwidth'), '--bandwidth', 0, { min: 1, max: 1_000_000 });
  if (str('max-downtime') !== undefined) s.maxDowntimeMs = num(str('max-downtime'), '--max-downtime', 0, { min: 1, int: true });
  if (str('postcopy-after') !== undefined) s.postCopyAfterIterations = num(str('postcopy-after'), '--postcopy-after', 0, { min: 0, max: 10_000, int: true });
  if (values['copy-storage']) s.copyStorage = true;
  if (values.unsafe) s.unsafe = true;
  if (str('timeout') !== undefined) s.timeoutSec = num(str('timeout'), '--timeout', 0, { min: 0.001, max: MAX_TIMEOUT_SEC });
  if (str('shutdown-timeout') !== undefined) s.shutdownTimeoutSec = num(str('shutdown-timeout'), '--shutdown-timeout', 0, { min: 0, max: MAX_TIMEOUT_SEC });
  if (values['force-off']) s.forceOff = true;
  return s;
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

export function fmtMiB(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '-';
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Bytes/s as KiB/s with one decimal. */
export function fmtRate(bps: number | null | undefined): string {
  if (bps === null || bps === undefined) return '-';
  return (bps / 1024).toFixed(1);
}

/** Runs `fn` with an AbortSignal that Ctrl-C (SIGINT) triggers; the first Ctrl-C aborts, a second one exits. */
export async function withInterrupt<T>(io: CliIo, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSigint = (): void => {
    if (ac.signal.aborted) process.exit(130);
    io.err('\naborting (Ctrl-C again to quit at once)…\n');
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await fn(ac.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}
