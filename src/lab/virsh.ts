/**
 * virsh against a lab host: argv arrays, C locale (stable messages), `-q` omitted so callers
 * see exactly what virsh prints.
 */
import { LabError, cEnv, describeFailure, run, type RunResult } from './exec.js';

export interface VirshOptions {
  timeoutMs?: number;
  input?: string;
}

export function virsh(uri: string, args: readonly string[], opts: VirshOptions = {}): Promise<RunResult> {
  return run(['virsh', '-c', uri, ...args], { env: cEnv(), timeoutMs: opts.timeoutMs ?? 120_000, input: opts.input });
}

/** virsh that throws unless it exits 0; returns trimmed stdout. */
export async function virshOk(uri: string, args: readonly string[], opts: VirshOptions = {}): Promise<string> {
  const r = await virsh(uri, args, opts);
  if (r.code !== 0) throw new LabError(describeFailure(r));
  return r.stdout.trim();
}

/**
 * Parses `virsh domjobinfo` output ("Time elapsed:     608          ms") into a record of
 * numbers (in the unit virsh prints, recorded in the key: `timeElapsedMs`, `dataProcessedMiB`)
 * and strings for the rest. Keys are camelCased labels plus a unit suffix.
 */
export function parseJobInfo(text: string): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  const unitSuffix: Record<string, string> = { ms: 'Ms', s: 'S', B: 'B', KiB: 'KiB', MiB: 'MiB', GiB: 'GiB', 'MiB/s': 'MiBps', 'KiB/s': 'KiBps', 'GiB/s': 'GiBps', 'B/s': 'Bps', 'pages/s': 'PagesPerS', '%': 'Pct' };
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z][A-Za-z /()-]*?):\s+(.*)$/.exec(line.trim());
    if (!m?.[1] || m[2] === undefined) continue;
    const key = m[1].toLowerCase().replace(/[^a-z0-9]+(.)/g, (_, c: string) => c.toUpperCase()).replace(/[^A-Za-z0-9]/g, '');
    const v = /^(-?[\d.]+)\s*(\S+)?$/.exec(m[2].trim());
    if (v?.[1] !== undefined) {
      const unit = v[2] === undefined ? '' : unitSuffix[v[2]] ?? '';
      out[key + unit] = Number(v[1]);
    } else out[key] = m[2].trim();
  }
  return out;
}
