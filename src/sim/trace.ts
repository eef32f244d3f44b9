/**
 * Workload traces for the simulator.
 *
 * Formats (docs/traces.md):
 *  - PlanetLab directory (CloudSim's): one file per VM, one integer CPU % (0..100) per line,
 *    every file the same number of lines (288 = one day of 5-minute samples). Files are taken
 *    in byte order of their names, because CloudSim's VM types follow the file index.
 *  - Tide JSON: `{"format":"tide-trace/1","intervalSec":300,"vms":[{"id":"mail","cpuPct":[..],
 *    "mips":2000?,"memMiB":2048?,"memPct":[..]?,"diskBytesPerSec":[..]?,"netBytesPerSec":[..]?}]}`
 *  - Tide CSV: header `vm,cpu_pct` plus optional `mem_pct,disk_bytes_per_sec,net_bytes_per_sec`
 *    (and optional `mips,mem_mib` constant per VM); rows per VM in time order, `intervalSec`
 *    from a `# interval_sec=300` comment line (default 300).
 * Every error names the file and line.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';

export interface TraceVm {
  readonly id: string;
  /** CPU utilisation samples, fraction of the VM's size (0..1). */
  readonly cpu: Float64Array;
  /** Memory utilisation samples, fraction of the VM's memory (0..1), if recorded. */
  readonly mem?: Float64Array;
  readonly diskBytesPerSec?: Float64Array;
  readonly netBytesPerSec?: Float64Array;
  /** Size hints from the trace (otherwise the scenario decides). */
  readonly mips?: number;
  readonly memMiB?: number;
}

export interface Trace {
  readonly source: string;
  readonly intervalSec: number;
  readonly samples: number;
  readonly vms: readonly TraceVm[];
}

export class TraceError extends Error {
  readonly code = 'TIDE_TRACE';
}

/** Reads a trace from a PlanetLab-style directory or a .json/.csv file. */
export function readTrace(path: string, opts: { expectSamples?: number } = {}): Trace {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new TraceError(`trace not found: ${path} (a directory of PlanetLab files, or a .json/.csv trace)`);
  }
  if (st.isDirectory()) return readPlanetLabDir(path, opts.expectSamples ?? 288);
  const ext = extname(path).toLowerCase();
  if (ext === '.json') return readJsonTrace(path);
  if (ext === '.csv') return readCsvTrace(path);
  throw new TraceError(`${path}: unknown trace format (expected a directory, .json or .csv)`);
}

/** Byte-order comparison of names (CloudSim sorts with String.compareTo; not localeCompare). */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function readPlanetLabDir(dir: string, expectSamples = 288): Trace {
  const names = readdirSync(dir).filter((n) => !n.startsWith('.') && n !== 'README.md').sort(byteOrder);
  if (names.length === 0) throw new TraceError(`${dir}: no trace files`);
  const vms: TraceVm[] = [];
  for (const name of names) {
    const file = join(dir, name);
    if (!statSync(file).isFile()) continue;
    const text = readFileSync(file, 'latin1');
    const lines = text.split('\n');
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    if (lines.length !== expectSamples) {
      throw new TraceError(`${file}: has ${lines.length} lines, expected ${expectSamples} (one CPU % per 5-minute interval)`);
    }
    const cpu = new Float64Array(lines.length);
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i]!.trim();
      if (!/^\d+(\.\d+)?$/.test(raw)) throw new TraceError(`${file}:${i + 1}: not a CPU percentage: '${lines[i]}'`);
      const v = Number(raw);
      if (v > 100) throw new TraceError(`${file}:${i + 1}: CPU ${v} % is above 100`);
      cpu[i] = v / 100;
    }
    vms.push({ id: name, cpu });
  }
  return { source: dir, intervalSec: 300, samples: expectSamples, vms };
}

function series(file: string, where: string, value: unknown, n: number, max?: number): Float64Array {
  if (!Array.isArray(value)) throw new TraceError(`${file}: ${where}: expected an array of numbers`);
  if (value.length !== n) throw new TraceError(`${file}: ${where}: has ${value.length} samples, expected ${n} (as cpuPct)`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = value[i];
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0 || (max !== undefined && x > max)) {
      throw new TraceError(`${file}: ${where}[${i}]: ${JSON.stringify(x)} is not a number in 0..${max ?? '∞'}`);
    }
    out[i] = max === 100 ? x / 100 : x;
  }
  return out;
}

export function readJsonTrace(file: string): Trace {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new TraceError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  const d = doc as { format?: unknown; intervalSec?: unknown; vms?: unknown };
  if (d.format !== 'tide-trace/1') throw new TraceError(`${file}: "format" must be "tide-trace/1"`);
  const intervalSec = d.intervalSec ?? 300;
  if (typeof intervalSec !== 'number' || !(intervalSec > 0)) throw new TraceError(`${file}: "intervalSec" must be a positive number`);
  if (!Array.isArray(d.vms) || d.vms.length === 0) throw new TraceError(`${file}: "vms" must be a non-empty array`);
  let samples = -1;
  const ids = new Set<string>();
  const vms = d.vms.map((raw: unknown, i: number): TraceVm => {
    const vm = raw as Record<string, unknown>;
    const where = `vms[${i}]`;
    if (typeof vm.id !== 'string' || vm.id === '') throw new TraceError(`${file}: ${where}.id: a non-empty string is required`);
    if (ids.has(vm.id)) throw new TraceError(`${file}: ${where}.id: duplicate VM id '${vm.id}'`);
    ids.add(vm.id);
    if (!Array.isArray(vm.cpuPct)) throw new TraceError(`${file}: ${where}.cpuPct: expected an array of numbers`);
    if (samples < 0) samples = vm.cpuPct.length;
    const n = samples;
    const opt = (key: string, max?: number): Float64Array | undefined => (vm[key] === undefined ? undefined : series(file, `${where}.${key}`, vm[key], n, max));
    for (const k of ['mips', 'memMiB'] as const) {
      if (vm[k] !== undefined && (typeof vm[k] !== 'number' || !((vm[k] as number) > 0))) throw new TraceError(`${file}: ${where}.${k}: must be a positive number`);
    }
    return {
      id: vm.id,
      cpu: series(file, `${where}.cpuPct`, vm.cpuPct, n, 100),
      mem: opt('memPct', 100),
      diskBytesPerSec: opt('diskBytesPerSec'),
      netBytesPerSec: opt('netBytesPerSec'),
      mips: vm.mips as number | undefined,
      memMiB: vm.memMiB as number | undefined,
    };
  });
  if (samples < 2) throw new TraceError(`${file}: at least 2 samples per VM are needed`);
  return { source: file, intervalSec, samples, vms };
}

const CSV_COLUMNS = ['vm', 'cpu_pct', 'mem_pct', 'disk_bytes_per_sec', 'net_bytes_per_sec', 'mips', 'mem_mib'] as const;

export function readCsvTrace(file: string): Trace {
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  let intervalSec = 300;
  let header: string[] | null = null;
  const rows = new Map<string, { cpu: number[]; mem: number[]; disk: number[]; net: number[]; mips?: number; memMiB?: number }>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const at = `${file}:${i + 1}`;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /interval_sec\s*=\s*([0-9.]+)/.exec(line);
      if (m) intervalSec = Number(m[1]);
      continue;
    }
    const cells = line.split(',').map((c) => c.trim());
    if (!header) {
      header = cells;
      for (const c of header) if (!(CSV_COLUMNS as readonly string[]).includes(c)) throw new TraceError(`${at}: unknown column '${c}' (known: ${CSV_COLUMNS.join(', ')})`);
      if (!header.includes('vm') || !header.includes('cpu_pct')) throw new TraceError(`${at}: the header needs at least 'vm' and 'cpu_pct'`);
      continue;
    }
    if (cells.length !== header.length) throw new TraceError(`${at}: ${cells.length} fields, the header has ${header.length}`);
    const rec: Record<string, string> = {};
    header.forEach((h, j) => (rec[h] = cells[j]!));
    const id = rec.vm!;
    if (!id) throw new TraceError(`${at}: empty vm name`);
    const num = (key: string, max?: number): number | undefined => {
      if (rec[key] === undefined || rec[key] === '') return undefined;
      const x = Number(rec[key]);
      if (!Number.isFinite(x) || x < 0 || (max !== undefined && x > max)) throw new TraceError(`${at}: ${key} '${rec[key]}' is not a number in 0..${max ?? '∞'}`);
      return x;
    };
    let r = rows.get(id);
    if (!r) rows.set(id, (r = { cpu: [], mem: [], disk: [], net: [] }));
    r.cpu.push(num('cpu_pct', 100)! / 100);
    const mem = num('mem_pct', 100);
    if (mem !== undefined) r.mem.push(mem / 100);
    const disk = num('disk_bytes_per_sec');
    if (disk !== undefined) r.disk.push(disk);
    const net = num('net_bytes_per_sec');
    if (net !== undefined) r.net.push(net);
    r.mips ??= num('mips');
    r.memMiB ??= num('mem_mib');
  }
  if (!header) throw new TraceError(`${file}: empty trace (expected a header line 'vm,cpu_pct,...')`);
  if (rows.size === 0) throw new TraceError(`${file}: no data rows`);
  const samples = [...rows.values()][0]!.cpu.length;
  const vms: TraceVm[] = [];
  for (const [id, r] of rows) {
    if (r.cpu.length !== samples) throw new TraceError(`${file}: VM '${id}' has ${r.cpu.length} rows, the first VM has ${samples}`);
    const opt = (a: number[], what: string): Float64Array | undefined => {
      if (a.length === 0) return undefined;
      if (a.length !== samples) throw new TraceError(`${file}: VM '${id}' has ${a.length} ${what} values for ${samples} rows`);
      return Float64Array.from(a);
    };
    vms.push({ id, cpu: Float64Array.from(r.cpu), mem: opt(r.mem, 'mem_pct'), diskBytesPerSec: opt(r.disk, 'disk'), netBytesPerSec: opt(r.net, 'net'), mips: r.mips, memMiB: r.memMiB });
  }
  if (samples < 2) throw new TraceError(`${file}: at least 2 samples per VM are needed`);
  return { source: basename(file), intervalSec, samples, vms };
}
