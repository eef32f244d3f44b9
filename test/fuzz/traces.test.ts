/**
 * Property tests of the trace readers (src/sim/trace.ts through src/input/schema.ts): random and
 * hostile JSON, CSV and PlanetLab files either load as a trace whose every value is finite and
 * in range, or are refused with a TraceError naming the file — never another exception, never
 * NaN. Bounded: small inputs, fixed numRuns, no timing.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { readPlanetLabDir, readTrace, TraceError, type Trace } from '../../src/sim/trace.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-fuzz-trace-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;

/** What every successfully read trace must satisfy. */
function checkTrace(t: Trace): void {
  expect(t.samples).toBeGreaterThanOrEqual(2);
  expect(t.vms.length).toBeGreaterThan(0);
  expect(Number.isFinite(t.intervalSec) && t.intervalSec > 0).toBe(true);
  const ids = new Set<string>();
  for (const vm of t.vms) {
    expect(typeof vm.id === 'string' && vm.id.length > 0).toBe(true);
    expect(vm.id).not.toContain('\uFFFD');
    ids.add(vm.id);
    expect(vm.cpu.length).toBe(t.samples);
    for (const x of vm.cpu) expect(x >= 0 && x <= 1).toBe(true);
    if (vm.mem) for (const x of vm.mem) expect(x >= 0 && x <= 1).toBe(true);
    for (const s of [vm.diskBytesPerSec, vm.netBytesPerSec]) if (s) for (const x of s) expect(Number.isFinite(x) && x >= 0).toBe(true);
    for (const k of [vm.mips, vm.memMiB]) if (k !== undefined) expect(Number.isFinite(k) && k > 0).toBe(true);
  }
  expect(ids.size).toBe(t.vms.length);
}

/** Reads `bytes` as a file named `name`; returns 'ok' or 'refused' (a TraceError naming the file). */
function readOrRefuse(name: string, bytes: Buffer | string): 'ok' | 'refused' {
  const file = join(tmp, `${seq++}-${name}`);
  writeFileSync(file, bytes);
  try {
    checkTrace(readTrace(file));
    return 'ok';
  } catch (e) {
    if (!(e instanceof TraceError)) throw e;
    expect(e.message).toContain(file);
    // a value the user wrote may be quoted ("NaN"); an unquoted NaN would be ours
    expect(e.message).not.toMatch(/(?<!")NaN|undefined|\[object Object\]/);
    return 'refused';
  }
}

/** Numbers a careless or hostile producer writes; BIG becomes 1e400 (Infinity once parsed). */
const hostileNumber = fc.oneof(
  fc.constantFrom(0, -0, 100, 100.0000001, -1e-300, 1e308, Number.MAX_VALUE, 'BIG', 'NEGBIG'),
  fc.double({ min: -10, max: 150, noNaN: true }),
  fc.integer({ min: 0, max: 100 }),
);
const hostileValue = fc.oneof(hostileNumber, fc.constantFrom(null, '', '5', ' 5', '0x10', true, [], {}, 'NaN'));
const series = fc.array(hostileValue, { minLength: 0, maxLength: 6 });
const vmArb = fc.oneof(
  // a clean VM (three samples, a fresh id), so that valid traces are generated too
  { weight: 6, arbitrary: fc.record({ id: fc.uuid(), cpuPct: fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 3, maxLength: 3 }) }) },
  { weight: 4, arbitrary: fc.record({
    id: fc.oneof(fc.constantFrom('mail', 'web', 'db', '', 'mail'), fc.string({ maxLength: 8 }), fc.constant(null), fc.integer()),
    cpuPct: fc.oneof({ weight: 4, arbitrary: fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 2, maxLength: 4 }) }, { weight: 3, arbitrary: series }, fc.constant(null), fc.constant('12,13')),
    mips: fc.option(hostileValue, { nil: undefined }),
    memMiB: fc.option(hostileValue, { nil: undefined }),
    memPct: fc.option(series, { nil: undefined }),
    netBytesPerSec: fc.option(series, { nil: undefined }),
  }, { requiredKeys: ['id', 'cpuPct'] }) },
  fc.constantFrom(null, 0, 'vm', [], [null]),
);
const docArb = fc.oneof(
  { weight: 8, arbitrary: fc.record({
    format: fc.constantFrom('tide-trace/1', 'tide-trace/1', 'tide-trace/2', null),
    intervalSec: fc.option(hostileValue, { nil: undefined }),
    vms: fc.oneof({ weight: 5, arbitrary: fc.array(vmArb, { minLength: 0, maxLength: 4 }) }, fc.constantFrom(null, {}, 'x', [null])),
  }, { requiredKeys: ['format', 'vms'] }) },
  fc.jsonValue({ maxDepth: 3 }),
);

/** Encodes a document with the byte-level accidents of real files. */
const encodingArb = fc.record({ bom: fc.boolean(), crlf: fc.boolean(), badByte: fc.boolean(), deep: fc.boolean() });
function encode(doc: unknown, enc: { bom: boolean; crlf: boolean; badByte: boolean; deep: boolean }): Buffer {
  let text = JSON.stringify(doc, null, 1).replaceAll('"BIG"', '1e400').replaceAll('"NEGBIG"', '-1e400');
  if (enc.crlf) text = text.replaceAll('\n', '\r\n');
  if (enc.deep && text.includes('"cpuPct":')) text = text.replace('"cpuPct":', `"junk": ${'['.repeat(5000)}${']'.repeat(5000)}, "cpuPct":`);
  let buf = Buffer.from(text, 'utf8');
  if (enc.badByte) {
    const at = buf.indexOf('"m');
    if (at >= 0) buf = Buffer.concat([buf.subarray(0, at + 1), Buffer.from([0xff, 0xfe]), buf.subarray(at + 1)]);
  }
  return enc.bom ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), buf]) : buf;
}

describe('Tide JSON traces under hostile input', () => {
  it('load with finite, in-range values or are refused naming the file', () => {
    let ok = 0;
    fc.assert(fc.property(docArb, encodingArb, (doc, enc) => {
      if (readOrRefuse('t.json', encode(doc, enc)) === 'ok') ok++;
    }), { numRuns: 300, seed: 61 });
    // the generator reaches valid traces too (otherwise the property says little)
    expect(ok).toBeGreaterThan(0);
  });

  it('refuses the known crashers with the JSON path', () => {
    const cases: [string, RegExp][] = [
      ['null', /t\.json: \(top level\): expected a JSON object/],
      ['{"format":"tide-trace/1","vms":[null]}', /vms\[0\]: expected a VM object/],
      ['{"format":"tide-trace/1","vms":[{"id":"a","cpuPct":[1,1e400]}]}', /vms\[0\]\.cpuPct\[1\]: Infinity is not a number in 0\.\.100/],
      ['{"format":"tide-trace/1","intervalSec":0,"vms":[{"id":"a","cpuPct":[1,2]}]}', /intervalSec: /],
      ['{"format":"tide-trace/1","vms":[{"id":"a","cpuPct":[1,2],"mips":0}]}', /vms\[0\]\.mips: must be a positive number/],
      [`{"format":"tide-trace/1","vms":[{"id":"a","cpuPct":[1,2],"x":${'['.repeat(100000)}${']'.repeat(100000)}}]}`, /./],
    ];
    for (const [text, re] of cases) {
      const file = join(tmp, `${seq++}-t.json`);
      writeFileSync(file, text);
      let err: unknown;
      try {
        readTrace(file);
      } catch (e) {
        err = e;
      }
      if (text.includes('"x":')) {
        // deep nesting under an unknown key is skipped, not recursed into
        expect(err).toBeUndefined();
        continue;
      }
      expect(err).toBeInstanceOf(TraceError);
      expect((err as Error).message).toMatch(re);
    }
  });

  it('reads a BOM and CRLF, and names the line of bytes that are not UTF-8', () => {
    const doc = '{"format":"tide-trace/1",\r\n"vms":[{"id":"a","cpuPct":[1,2]}]}';
    expect(readOrRefuse('bom.json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(doc)]))).toBe('ok');
    const file = join(tmp, 'latin1.json');
    writeFileSync(file, Buffer.concat([Buffer.from('{"format":"tide-trace/1",\n"vms":[{"id":"'), Buffer.from([0xe9]), Buffer.from('","cpuPct":[1,2]}]}')]));
    expect(() => readTrace(file)).toThrow(/latin1\.json:2: not valid UTF-8/);
  });
});

const csvCell = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 100 }).map(String) },
  fc.constantFrom('', ' 5', '0x10', 'NaN', 'Infinity', '1e400', '-1', '100.5', '1e', '-0', 'abc', '"7"'),
);
const csvArb = fc.record({
  header: fc.oneof({ weight: 4, arbitrary: fc.shuffledSubarray(['mem_pct', 'mips', 'mem_mib', 'net_bytes_per_sec'], { minLength: 0, maxLength: 4 }).map((c) => ['vm', 'cpu_pct', ...c]) }, fc.constantFrom(['vm'], ['cpu_pct', 'vm', 'vm'], ['vm', 'cpu_pct', 'bogus'])),
  interval: fc.option(fc.constantFrom('60', '0', '-5', 'abc', '1e9', '300'), { nil: undefined }),
  rows: fc.array(fc.record({
    vm: fc.oneof({ weight: 8, arbitrary: fc.constant('mail') }, fc.constantFrom('web', '')),
    cells: fc.array(fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 100 }).map(String) }, csvCell), { minLength: 6, maxLength: 6 }),
    ragged: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, fc.integer({ min: -2, max: 2 })),
  }), { minLength: 0, maxLength: 6 }),
  crlf: fc.boolean(),
  bom: fc.boolean(),
});

describe('Tide CSV traces under hostile input', () => {
  it('load with finite, in-range values or are refused naming the file (ragged rows included)', () => {
    let ok = 0;
    fc.assert(fc.property(csvArb, (c) => {
      const lines = [...(c.interval !== undefined ? [`# interval_sec=${c.interval}`] : []), c.header.join(',')];
      // most rows have the header's width; some are ragged
      for (const r of c.rows) lines.push([r.vm, ...r.cells.slice(0, Math.max(0, c.header.length - 1 + r.ragged))].join(','));
      const text = (c.bom ? '\uFEFF' : '') + lines.join(c.crlf ? '\r\n' : '\n');
      if (readOrRefuse('t.csv', text) === 'ok') ok++;
    }), { numRuns: 300, seed: 62 });
    expect(ok).toBeGreaterThan(0);
  });

  it('refuses zero sizes, inconsistent sizes and a bad interval with file:line', () => {
    const cases: [string, RegExp][] = [
      ['vm,cpu_pct,mips\na,1,0\na,2,0\n', /t\.csv:2: mips '0' is not a number/],
      ['vm,cpu_pct,mips\na,1,100\na,2,200\n', /t\.csv:3: mips 200 differs from 100/],
      ['# interval_sec=0\nvm,cpu_pct\na,1\na,2\n', /t\.csv:1: interval_sec '0'/],
      ['vm,cpu_pct\na,1,2\n', /t\.csv:2: 3 fields, the header has 2/],
      ['vm,cpu_pct\na, 0x10\na,1\n', /t\.csv:2: cpu_pct '0x10' is not a number/],
    ];
    for (const [text, re] of cases) {
      const file = join(tmp, `${seq++}-t.csv`);
      writeFileSync(file, text);
      expect(() => readTrace(file)).toThrow(re);
    }
  });
});

describe('PlanetLab directories under hostile input', () => {
  const line = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 100 }).map(String) }, fc.constantFrom('', ' 7 ', '7\r', '101', '-1', '1e2', 'x', '\uFEFF5', '50.5', '00'));
  it('load with CPU in 0..1 or are refused naming file:line', () => {
    let ok = 0;
    fc.assert(fc.property(fc.array(fc.array(line, { minLength: 2, maxLength: 4 }), { minLength: 1, maxLength: 3 }), fc.boolean(), (files, subdir) => {
      const dir = join(tmp, `pl-${seq++}`);
      mkdirSync(dir);
      files.forEach((lines, i) => writeFileSync(join(dir, `vm${i}`), `${lines.join('\n')}\n`));
      if (subdir) mkdirSync(join(dir, 'sub'));
      try {
        checkTrace(readPlanetLabDir(dir, 3));
        ok++;
      } catch (e) {
        if (!(e instanceof TraceError)) throw e;
        expect(e.message).toContain(dir);
      }
    }), { numRuns: 200, seed: 63 });
    expect(ok).toBeGreaterThan(0);
  });
});
