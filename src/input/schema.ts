/**
 * The one validation layer every input surface goes through: command-line numbers, trace
 * files, scenario options, store paths (and, in src/config, the configuration file). Each
 * surface is a zod schema with ranges; a failure becomes an error whose message names the
 * source (file, file:line, flag) and the path inside it (`vms[3].cpuPct[17]`).
 *
 * The ranges are sane maxima, not product limits: they keep a typo (`--hours 1e9`) from
 * turning into a RangeError, an out-of-heap crash or a timer Node fires at once.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { InputError, type InputErrorCode } from './errors.js';

/** Node clamps a setTimeout delay above 2^31-1 ms to 1 ms: longer user timeouts are refused. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** The longest timeout a user may give in seconds (24.8 days). */
export const MAX_TIMEOUT_SEC = Math.floor(MAX_TIMER_MS / 1000);

/** Upper bounds of the simulator's and benchmarks' inputs (memory grows with them). */
export const LIMITS = {
  /** Hosts of a simulated datacenter (--hosts of simulate). */
  simHosts: 100_000,
  /** Hosts and VMs of `tide bench plan` (10 000 × 200 000 takes ~330 MiB). */
  benchHosts: 100_000,
  benchVms: 1_000_000,
  /** VMs in one trace, samples per VM and their product (Float64 series: 8 bytes each). */
  traceVms: 100_000,
  traceSamples: 1_000_000,
  traceValues: 50_000_000,
  /** Largest trace file read into memory, bytes. */
  traceFileBytes: 256 * 2 ** 20,
  /** Sample spacing of a trace, s (1 s .. 1 day). */
  intervalSec: { min: 1, max: 86_400 },
  /** Virtual time of `tide demo`, h (one year). */
  demoHours: 24 * 366,
  /** Days of the office scenario. */
  officeDays: 366,
} as const;

export interface NumberRange {
  readonly min: number;
  readonly max: number;
  readonly int?: boolean;
}

/** A zod number with the range (finite by construction: min and max are finite). */
export function rangedNumber(r: NumberRange): z.ZodNumber {
  const n = r.int ? z.number().int() : z.number();
  return n.min(r.min).max(r.max);
}

/** Decimal notation only: no hex, no blanks, no NaN/Infinity, no empty string. */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function describeRange(r: NumberRange): string {
  return `${r.int ? 'an integer' : 'a number'} in ${r.min}..${r.max}`;
}

/**
 * Parses a number a user typed (flag value, `key=value`): decimal notation within the range;
 * -0 reads as 0. `what` names where it came from (`--hours`, `office: days`).
 */
export function parseNumberText(text: string, what: string, r: NumberRange, code: InputErrorCode = 'TIDE_USAGE'): number {
  const n = DECIMAL.test(text) ? Number(text) : NaN;
  const ok = rangedNumber(r).safeParse(n);
  if (!ok.success) throw new InputError(`${what} must be ${describeRange(r)} (got '${text}')`, code);
  return ok.data === 0 ? 0 : ok.data;
}

/** `a.b[3].c` from a zod issue path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out === '' ? String(k) : `.${String(k)}`;
  return out || '(top level)';
}

/** One line per issue: `source: path: message`. */
export function formatIssues(source: string, issues: readonly z.core.$ZodIssue[], max = 10): string {
  const lines = issues.slice(0, max).map((i) => `  ${source}: ${formatPath(i.path)}: ${i.message}`);
  if (issues.length > max) lines.push(`  … and ${issues.length - max} more`);
  return lines.join('\n');
}

/** Validates `value`; on failure throws `makeError(message)` whose message lists every issue with its path. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, source: string, makeError: (message: string) => Error, headline = 'invalid input'): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw makeError(`${headline}:\n${formatIssues(source, r.error.issues)}`);
}

// ---------------------------------------------------------------------------------------------
// Trace files (docs/traces.md)

/** A short, safe description of a bad value (never recurses into deep nesting). */
export function preview(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return String(v);
}

/** A finite number in min..max whose every failure reads `<value> is not a number in min..max`. */
function sample(min: number, max: number): z.ZodNumber {
  const error = (iss: { input?: unknown }): string => `${preview(iss.input)} is not a number in ${min}..${max === Number.MAX_VALUE ? '∞' : max}`;
  return z.number({ error }).min(min, { error }).max(max, { error });
}

const pct = sample(0, 100);
const nonNegative = sample(0, Number.MAX_VALUE);

/** One VM of a Tide JSON trace. Unknown keys are ignored (not inspected). */
export const traceVmSchema = z.object({
  id: z.string({ error: 'a non-empty string is required' }).min(1, 'a non-empty string is required').max(256, 'at most 256 characters'),
  cpuPct: z.array(pct, { error: 'expected an array of numbers' }).min(2, 'at least 2 samples per VM are needed').max(LIMITS.traceSamples),
  mips: z.number({ error: 'must be a positive number' }).positive('must be a positive number').max(1e9).optional(),
  memMiB: z.number({ error: 'must be a positive number' }).positive('must be a positive number').max(2 ** 40).optional(),
  memPct: z.array(pct, { error: 'expected an array of numbers' }).optional(),
  diskBytesPerSec: z.array(nonNegative, { error: 'expected an array of numbers' }).optional(),
  netBytesPerSec: z.array(nonNegative, { error: 'expected an array of numbers' }).optional(),
}, { error: 'expected a VM object {"id": …, "cpuPct": […]}' });

export const traceJsonSchema = z.object({
  format: z.literal('tide-trace/1', { error: '"format" must be "tide-trace/1"' }),
  intervalSec: rangedNumber(LIMITS.intervalSec).default(300),
  vms: z.array(traceVmSchema, { error: '"vms" must be a non-empty array' }).min(1, '"vms" must be a non-empty array').max(LIMITS.traceVms),
}, { error: 'expected a JSON object {"format": "tide-trace/1", "vms": […]}' }).superRefine((d, ctx) => {
  // Written defensively: zod may run this refinement on a value whose elements failed.
  if (!Array.isArray(d.vms)) return;
  const first = d.vms[0] as { cpuPct?: unknown } | null | undefined;
  const n = Array.isArray(first?.cpuPct) ? first.cpuPct.length : 0;
  const ids = new Set<string>();
  let values = 0;
  d.vms.forEach((vm, i) => {
    if (vm === null || typeof vm !== 'object' || !Array.isArray(vm.cpuPct)) return;
    if (ids.has(vm.id)) ctx.addIssue({ code: 'custom', path: ['vms', i, 'id'], message: `duplicate VM id '${vm.id}'` });
    ids.add(vm.id);
    for (const k of ['cpuPct', 'memPct', 'diskBytesPerSec', 'netBytesPerSec'] as const) {
      const s = vm[k];
      if (Array.isArray(s) && s.length !== n) ctx.addIssue({ code: 'custom', path: ['vms', i, k], message: `has ${s.length} samples, expected ${n} (as vms[0].cpuPct)` });
    }
    values += vm.cpuPct.length;
  });
  if (values > LIMITS.traceValues) ctx.addIssue({ code: 'custom', path: ['vms'], message: `${values} samples in all; at most ${LIMITS.traceValues} are read` });
});

export type TraceJson = z.output<typeof traceJsonSchema>;

/**
 * Decodes a trace file's bytes as UTF-8 (a leading BOM is dropped). Invalid UTF-8 is an error
 * naming the line, never U+FFFD silently inside a VM name.
 */
export function decodeUtf8(buf: Buffer, file: string, makeError: (m: string) => Error): string {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  try {
    return decoder.decode(buf);
  } catch {
    let line = 1;
    let start = 0;
    for (let i = 0; i <= buf.length; i++) {
      if (i === buf.length || buf[i] === 0x0a) {
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(start, i));
        } catch {
          break;
        }
        line++;
        start = i + 1;
      }
    }
    throw makeError(`${file}:${line}: not valid UTF-8 text`);
  }
}

/** Checks a file's size before it is read whole into memory. */
export function checkFileSize(file: string, size: number, makeError: (m: string) => Error): void {
  if (size > LIMITS.traceFileBytes) throw makeError(`${file}: ${Math.round(size / 2 ** 20)} MiB is larger than the ${LIMITS.traceFileBytes / 2 ** 20} MiB a trace may have`);
}

// ---------------------------------------------------------------------------------------------
// Scenario options: `office[:hosts=N,days=N,seed=N]`

export const officeOptionsSchema = z.object({
  hosts: rangedNumber({ min: 2, max: 6, int: true }).optional(),
  days: z.number().min(1 / 24, 'at least 1/24 (one hour)').max(LIMITS.officeDays).optional(),
  seed: rangedNumber({ min: 0, max: 2 ** 32 - 1, int: true }).optional(),
}).strict();

export type OfficeOptionsInput = z.output<typeof officeOptionsSchema>;

/** Parses `NAME[:k=v,…]` of a built-in scenario; only `office` exists. */
export function parseScenarioSpec(spec: string): { name: 'office'; options: OfficeOptionsInput } {
  const at = spec.indexOf(':');
  const name = (at < 0 ? spec : spec.slice(0, at)).trim();
  const params = at < 0 ? '' : spec.slice(at + 1);
  if (name !== 'office') throw new InputError(`unknown scenario '${name}' (known: office)`, 'TIDE_SCENARIO');
  const raw: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const kv of params.split(',')) {
    if (kv.trim() === '') continue;
    const i = kv.indexOf('=');
    const key = i < 0 ? kv.trim() : kv.slice(0, i).trim();
    if (i < 0 || !['hosts', 'days', 'seed'].includes(key)) throw new InputError(`scenario office: bad parameter '${kv}' (hosts=2..6, days=N, seed=N)`, 'TIDE_SCENARIO');
    if (Object.hasOwn(raw, key)) throw new InputError(`scenario office: '${key}' given twice`, 'TIDE_SCENARIO');
    const text = kv.slice(i + 1).trim();
    raw[key] = DECIMAL.test(text) ? Number(text) : NaN;
  }
  return { name: 'office', options: validate(officeOptionsSchema, { ...raw }, 'scenario office', (m) => new InputError(m, 'TIDE_SCENARIO'), 'invalid scenario options') };
}

// ---------------------------------------------------------------------------------------------
// Store paths

const SQLITE_MAGIC = 'SQLite format 3\0';

/**
 * Checks a SQLite store path before the database is opened: not a directory, an existing
 * file is a SQLite database (or empty), and the nearest existing parent is a directory.
 * `where` names the source (`--store`, `config.json: store.path`).
 */
export function checkStorePath(path: string, where: string): void {
  if (path === ':memory:') return;
  if (path.trim() === '' || path.includes('\0')) throw new InputError(`${where}: '${path}' is not a usable file name`);
  const abs = resolve(path);
  if (existsSync(abs)) {
    const st = statSync(abs);
    if (!st.isFile()) throw new InputError(`${where}: ${abs} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}; give a SQLite file name`);
    if (st.size > 0) {
      const head = Buffer.alloc(16);
      const fd = openSync(abs, 'r');
      try {
        readSync(fd, head, 0, 16, 0);
      } finally {
        closeSync(fd);
      }
      if (head.toString('latin1') !== SQLITE_MAGIC) throw new InputError(`${where}: ${abs} exists and is not a SQLite database (refusing to overwrite it)`);
    }
    return;
  }
  let dir = dirname(abs);
  while (!existsSync(dir)) dir = dirname(dir);
  if (!statSync(dir).isDirectory()) throw new InputError(`${where}: cannot create ${abs}: ${dir} is not a directory`);
}
