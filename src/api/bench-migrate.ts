/**
 * Migration benchmark (`tide bench migrate`): the same VM(s) migrated back and forth between
 * two hosts under several migration settings, runs interleaved (run 1 of every setting, then
 * run 2 of every setting, …) so that drifting background load hits all settings alike.
 * Reports per setting and VM: wall time, libvirt's downtime, the service probe's longest
 * gap, failed probe requests, data sent, passes, post-copy use.
 */
import type { MigrationMode } from '../drivers/hypervisor.js';
import type { Cluster, MigrateReport, MigrationSettings } from './cluster.js';

export interface BenchSetting {
  name: string;
  mode: MigrationMode;
  settings: MigrationSettings;
}

/** Named presets; `post-copy:N` switches after N passes. */
export const BENCH_PRESETS: Record<string, () => BenchSetting> = {
  plain: () => ({ name: 'plain', mode: 'live', settings: { autoConverge: false, postCopyAfterIterations: 0 } }),
  'auto-converge': () => ({ name: 'auto-converge', mode: 'live', settings: { autoConverge: true, postCopyAfterIterations: 0 } }),
  'post-copy': () => ({ name: 'post-copy', mode: 'live', settings: { autoConverge: false, postCopyAfterIterations: 1 } }),
  suspend: () => ({ name: 'suspend', mode: 'suspend', settings: {} }),
};

export class BenchSpecError extends Error {
  readonly code = 'TIDE_USAGE';
}

/**
 * A setting: a preset name (plain, auto-converge, post-copy[:N], suspend), or
 * NAME:key=value,key=value with keys mode, autoConverge (true|false), postCopyAfter (N),
 * bandwidth (MiB/s), maxDowntime (ms).
 */
export function parseBenchSetting(spec: string): BenchSetting {
  const pc = /^post-copy:(\d+)$/.exec(spec);
  if (pc) return { name: spec, mode: 'live', settings: { autoConverge: false, postCopyAfterIterations: Number(pc[1]) } };
  const preset = BENCH_PRESETS[spec];
  if (preset) return preset();
  const i = spec.indexOf(':');
  if (i <= 0) throw new BenchSpecError(`unknown setting '${spec}' (presets: ${Object.keys(BENCH_PRESETS).join(', ')}, post-copy:N, or NAME:key=value,…)`);
  const out: BenchSetting = { name: spec.slice(0, i), mode: 'live', settings: { autoConverge: false, postCopyAfterIterations: 0 } };
  for (const kv of spec.slice(i + 1).split(',').filter(Boolean)) {
    const [k, v] = kv.split('=') as [string, string | undefined];
    const n = Number(v);
    switch (k) {
      case 'mode':
        if (v !== 'live' && v !== 'suspend' && v !== 'offline') throw new BenchSpecError(`${spec}: mode is live, suspend or offline`);
        out.mode = v;
        if (v === 'offline') Object.assign(out.settings, { forceOff: true, shutdownTimeoutSec: 5 });
        break;
      case 'autoConverge':
        if (v !== 'true' && v !== 'false') throw new BenchSpecError(`${spec}: autoConverge is true or false`);
        out.settings.autoConverge = v === 'true';
        break;
      case 'postCopyAfter':
        if (!Number.isInteger(n) || n < 0) throw new BenchSpecError(`${spec}: postCopyAfter is an integer ≥ 0`);
        out.settings.postCopyAfterIterations = n;
        break;
      case 'bandwidth':
        if (!(n > 0)) throw new BenchSpecError(`${spec}: bandwidth is MiB/s > 0`);
        out.settings.bandwidthMiBps = n;
        break;
      case 'maxDowntime':
        if (!Number.isInteger(n) || n <= 0) throw new BenchSpecError(`${spec}: maxDowntime is ms > 0`);
        out.settings.maxDowntimeMs = n;
        break;
      default:
        throw new BenchSpecError(`${spec}: unknown key '${k}' (mode, autoConverge, postCopyAfter, bandwidth, maxDowntime)`);
    }
  }
  return out;
}

export interface BenchRun {
  setting: string;
  vm: string;
  run: number;
  report: MigrateReport;
}

export interface BenchRow {
  setting: string;
  vm: string;
  runs: number;
  ok: number;
  totalMsMedian: number | null;
  totalMsMean: number | null;
  downtimeMsMedian: number | null;
  probeDowntimeMsMedian: number | null;
  probeDowntimeMsMax: number | null;
  probeFailed: number;
  mibMean: number | null;
  iterationsMedian: number | null;
  postCopyRuns: number;
}

export interface BenchMigrateOptions {
  vms: string[];
  settings: BenchSetting[];
  runs: number;
  /** Unmeasured migrations per VM before the runs (default 1). */
  warmup?: number;
  /** The two hosts to ping-pong between (default: the VM's host and the other configured host). */
  hosts?: [string, string];
  probe?: 'auto' | 'none';
  onRun?: (r: BenchRun) => void;
  signal?: AbortSignal;
}

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function mean(xs: number[]): number | null {
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function summarize(runs: BenchRun[]): BenchRow[] {
  const keys = [...new Set(runs.map((r) => `${r.setting}\0${r.vm}`))];
  return keys.map((k) => {
    const [setting, vm] = k.split('\0') as [string, string];
    const mine = runs.filter((r) => r.setting === setting && r.vm === vm);
    const ok = mine.filter((r) => r.report.ok).map((r) => r.report);
    const nums = (f: (x: MigrateReport) => number | null): number[] => ok.map(f).filter((x): x is number => x !== null);
    const probe = nums((x) => x.probeDowntimeMs);
    const round = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);
    return {
      setting, vm, runs: mine.length, ok: ok.length,
      totalMsMedian: round(median(nums((x) => x.totalMs))),
      totalMsMean: round(mean(nums((x) => x.totalMs))),
      downtimeMsMedian: round(median(nums((x) => x.downtimeMs))),
      probeDowntimeMsMedian: round(median(probe)),
      probeDowntimeMsMax: probe.length ? Math.max(...probe) : null,
      probeFailed: mine.reduce((s, r) => s + (r.report.probe?.failed ?? 0), 0),
      mibMean: round(mean(nums((x) => (x.bytes === null ? null : x.bytes / 2 ** 20)))),
      iterationsMedian: median(nums((x) => x.iterations)),
      postCopyRuns: ok.filter((x) => x.postCopy).length,
    };
  });
}

export async function benchMigrate(cluster: Cluster, o: BenchMigrateOptions): Promise<{ runs: BenchRun[]; rows: BenchRow[] }> {
  const where = async (vm: string): Promise<string> => {
    const v = (await cluster.driver.listVms()).find((x) => x.name === vm);
    if (!v) throw new BenchSpecError(`no VM named '${vm}'`);
    return v.host;
  };
  const other = (vm: string, from: string): string => {
    if (o.hosts) {
      if (!o.hosts.includes(from)) throw new BenchSpecError(`${vm} is on ${from}, not on ${o.hosts.join(' or ')}`);
      return o.hosts[0] === from ? o.hosts[1] : o.hosts[0];
    }
    const t = cluster.config.hosts.find((h) => h.name !== from && !h.excluded);
    if (!t) throw new BenchSpecError('the configuration needs a second host');
    return t.name;
  };
  const migrate = async (vm: string, s: BenchSetting): Promise<MigrateReport> => {
    const from = await where(vm);
    return cluster.migrate({ vm, to: other(vm, from), mode: s.mode, settings: s.settings, probe: o.probe === 'auto' ? 'auto' : undefined, signal: o.signal });
  };
  for (let w = 0; w < (o.warmup ?? 1); w++) for (const vm of o.vms) await migrate(vm, o.settings[0]!);
  const runs: BenchRun[] = [];
  for (let run = 1; run <= o.runs; run++) {
    for (const s of o.settings) {
      for (const vm of o.vms) {
        if (o.signal?.aborted) return { runs, rows: summarize(runs) };
        const r: BenchRun = { setting: s.name, vm, run, report: await migrate(vm, s) };
        runs.push(r);
        o.onRun?.(r);
      }
    }
  }
  return { runs, rows: summarize(runs) };
}
