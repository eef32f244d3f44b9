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
 * Every error names the file and line (or JSON path); every input goes through the ranges of
 * src/input/schema.ts, so a trace either loads with finite values or is refused.
 */
import { readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { checkFileSize, decodeUtf8, LIMITS, traceJsonSchema, validate } from '../input/schema.js';

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
  // A FIFO or device would block the read or never end.
  if (!st.isFile()) throw new TraceError(`${path}: not a regular file (a directory of PlanetLab files, or a .json/.csv trace)`);
  const ext = extname(path).toLowerCase();
  if (ext === '.json') return readJsonTrace(path);
  if (ext === '.csv') return readCsvTrace(path);
  throw new TraceError(`${path}: unknown trace format (expected a directory, .json or .csv)`);
}

/** Byte-order comparison of names (CloudSim sorts with String.compareTo; not localeCompare). */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const traceError = (m: string): TraceError => new TraceError(m);

/** Reads a whole file (size-checked); I/O errors become TraceErrors naming the file. */
function readBytes(file: string, st?: Stats): Buffer {
  try {
    checkFileSize(file, (st ?? statSync(file)).size, traceError);
    return readFileSync(file);
  } catch (e) {
    if (e instanceof TraceError) throw e;
    throw new TraceError(`${file}: cannot read: ${(e as Error).message}`);
  }
}

export function readPlanetLabDir(dir: string, expectSamples = 288): Trace {
  if (!Number.isInteger(expectSamples) || expectSamples < 2 || expectSamples > LIMITS.traceSamples) {
    throw new TraceError(`${dir}: expected samples per file must be an integer in 2..${LIMITS.traceSamples} (got ${expectSamples})`);
  }
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => !n.startsWith('.') && n !== 'README.md').sort(byteOrder);
  } catch (e) {
    throw new TraceError(`${dir}: cannot list the directory: ${(e as Error).message}`);
  }
  if (names.length > LIMITS.traceVms) throw new TraceError(`${dir}: ${names.length} files; at most ${LIMITS.traceVms} VMs are read`);
  const vms: TraceVm[] = [];
  for (const name of names) {
    const file = join(dir, name);
    let st: Stats;
    try {
      st = statSync(file);
    } catch (e) {
      throw new TraceError(`${file}: cannot read: ${(e as Error).message}`);
    }
    if (!st.isFile()) continue;
    let bytes = readBytes(file, st);
    if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    const text = bytes.toString('latin1');
    const lines = text.split('\n');
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    if (lines.length !== expectSamples) {
      throw new TraceError(`${file}: has ${lines.length} lines, expected ${expectSamples} (one CPU % per 5-minute interval)`);
    }
    const cpu = new Float64Array(lines.length);
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i]!.trim();
      if (!/^\d+(\.\d+)?$/.test(raw)) throw new TraceError(`${file}:${i + 1}: not a CPU percentage: '${lines[i]!.slice(0, 40)}'`);
      const v = Number(raw);
      if (v > 100) throw new TraceError(`${file}:${i + 1}: CPU ${v} % is above 100`);
      cpu[i] = v / 100;
    }
    vms.push({ id: name, cpu });
  }
  if (vms.length === 0) throw new TraceError(`${dir}: no trace files`);
  return { source: dir, intervalSec: 300, samples: expectSamples, vms };
}

/** Tide JSON trace: parsed, then validated whole by traceJsonSchema (errors list JSON paths). */
export function readJsonTrace(file: string): Trace {
  const text = decodeUtf8(readBytes(file), file, traceError);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new TraceError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  const d = validate(traceJsonSchema, doc, file, traceError, 'invalid trace');
  const f64 = (a: number[] | undefined, scale = 1): Float64Array | undefined => (a === undefined ? undefined : Float64Array.from(a, (x) => x / scale));
  const vms = d.vms.map((vm): TraceVm => ({
    id: vm.id,
    cpu: f64(vm.cpuPct, 100)!,
    mem: f64(vm.memPct, 100),
    diskBytesPerSec: f64(vm.diskBytesPerSec),
    netBytesPerSec: f64(vm.netBytesPerSec),
    mips: vm.mips,
    memMiB: vm.memMiB,
  }));
  return { source: file, intervalSec: d.intervalSec, samples: d.vms[0]!.cpuPct.length, vms };
}

const CSV_COLUMNS = ['vm', 'cpu_pct', 'mem_pct', 'disk_bytes_per_sec', 'net_bytes_per_sec', 'mips', 'mem_mib'] as const;
/** Decimal notation only (no hex, no blanks inside, no NaN/Infinity). */
const CSV_NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

export function readCsvTrace(file: string): Trace {
  const lines = decodeUtf8(readBytes(file), file, traceError).split(/\r?\n/);
  let intervalSec = 300;
  let header: string[] | null = null;
  let values = 0;
  const rows = new Map<string, { cpu: number[]; mem: number[]; disk: number[]; net: number[]; mips?: number; memMiB?: number }>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const at = `${file}:${i + 1}`;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /interval_sec\s*=\s*(\S*)/.exec(line);
      if (m) {
        const x = CSV_NUMBER.test(m[1]!) ? Number(m[1]) : NaN;
        if (!(x >= LIMITS.intervalSec.min && x <= LIMITS.intervalSec.max)) throw new TraceError(`${at}: interval_sec '${m[1]}' is not a number in ${LIMITS.intervalSec.min}..${LIMITS.intervalSec.max}`);
        intervalSec = x;
      }
      continue;
    }
    const cells = line.split(',').map((c) => c.trim());
    if (!header) {
      header = cells;
      for (const c of header) if (!(CSV_COLUMNS as readonly string[]).includes(c)) throw new TraceError(`${at}: unknown column '${c.slice(0, 40)}' (known: ${CSV_COLUMNS.join(', ')})`);
      if (new Set(header).size !== header.length) throw new TraceError(`${at}: a column appears twice in the header`);
      if (!header.includes('vm') || !header.includes('cpu_pct')) throw new TraceError(`${at}: the header needs at least 'vm' and 'cpu_pct'`);
      continue;
    }
    if (cells.length !== header.length) throw new TraceError(`${at}: ${cells.length} fields, the header has ${header.length}`);
    if (++values > LIMITS.traceValues) throw new TraceError(`${at}: more than ${LIMITS.traceValues} rows; at most that many are read`);
    const rec: Record<string, string> = {};
    header.forEach((h, j) => (rec[h] = cells[j]!));
    const id = rec.vm!;
    if (!id) throw new TraceError(`${at}: empty vm name`);
    const num = (key: string, min: number, max?: number): number | undefined => {
      if (rec[key] === undefined || rec[key] === '') return undefined;
      const x = CSV_NUMBER.test(rec[key]) ? Number(rec[key]) : NaN;
      if (!Number.isFinite(x) || x < min || (max !== undefined && x > max) || (min > 0 && x === 0)) {
        throw new TraceError(`${at}: ${key} '${rec[key].slice(0, 40)}' is not a number in ${min}..${max ?? '∞'}`);
      }
      return x;
    };
    let r = rows.get(id);
    if (!r) {
      if (rows.size >= LIMITS.traceVms) throw new TraceError(`${at}: more than ${LIMITS.traceVms} VMs; at most that many are read`);
      rows.set(id, (r = { cpu: [], mem: [], disk: [], net: [] }));
    }
    const cpu = num('cpu_pct', 0, 100);
    if (cpu === undefined) throw new TraceError(`${at}: cpu_pct is empty`);
    r.cpu.push(cpu / 100);
    const mem = num('mem_pct', 0, 100);
    if (mem !== undefined) r.mem.push(mem / 100);
    const disk = num('disk_bytes_per_sec', 0);
    if (disk !== undefined) r.disk.push(disk);
    const net = num('net_bytes_per_sec', 0);
    if (net !== undefined) r.net.push(net);
    for (const [key, field] of [['mips', 'mips'], ['mem_mib', 'memMiB']] as const) {
      const x = num(key, Number.MIN_VALUE);
      if (x === undefined) continue;
      if (r[field] !== undefined && r[field] !== x) throw new TraceError(`${at}: ${key} ${x} differs from ${r[field]} given earlier for VM '${id}' (constant per VM)`);
      r[field] = x;
    }
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
