/**
 * Property tests of the remaining input surfaces of src/input/schema.ts: scenario specs
 * (`office[:hosts=N,days=N,seed=N]`), numbers typed on the command line, and store paths.
 * Each either yields a value within its documented range or an InputError that names what is
 * wrong — never another exception. Bounded: short strings, fixed numRuns.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/input/errors.js';
import { checkStorePath, LIMITS, parseNumberText, parseScenarioSpec } from '../../src/input/schema.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-fuzz-inputs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const NUM = ['1', '2', '6', '7', '0', '-0', '0.5', '1e9', 'NaN', '', ' 3', '0x3', 'Infinity', '366', '367', '4294967295', '4294967296', '1e-400'];

describe('scenario specs under hostile input', () => {
  const spec = fc.oneof(
    fc.string({ maxLength: 24 }),
    fc.array(fc.tuple(fc.constantFrom('hosts', 'days', 'seed', 'bogus', '', '__proto__'), fc.constantFrom(...NUM)), { maxLength: 4 })
      .map((kvs) => `office:${kvs.map(([k, v]) => `${k}=${v}`).join(',')}`),
  );
  it('parse to options within range or fail with an InputError', () => {
    let ok = 0;
    fc.assert(fc.property(spec, (s) => {
      try {
        const { options: o } = parseScenarioSpec(s);
        ok++;
        if (o.hosts !== undefined) expect(Number.isInteger(o.hosts) && o.hosts >= 2 && o.hosts <= 6).toBe(true);
        if (o.days !== undefined) expect(o.days >= 1 / 24 && o.days <= LIMITS.officeDays).toBe(true);
        if (o.seed !== undefined) expect(Number.isInteger(o.seed) && o.seed >= 0 && o.seed < 2 ** 32).toBe(true);
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        expect(e.code).toBe('TIDE_SCENARIO');
        expect(e.message).toMatch(/scenario/);
      }
    }), { numRuns: 400, seed: 101 });
    expect(ok).toBeGreaterThan(0);
  });
});

describe('numbers typed on the command line', () => {
  it('are decimal, finite and within range, or refused naming the flag and the text', () => {
    fc.assert(fc.property(fc.oneof(fc.constantFrom(...NUM), fc.string({ maxLength: 8 }), fc.double().map(String)), fc.boolean(), (text, int) => {
      try {
        const n = parseNumberText(text, '--x', { min: 0, max: 1000, int });
        expect(Number.isFinite(n) && n >= 0 && n <= 1000).toBe(true);
        expect(Object.is(n, -0)).toBe(false);
        if (int) expect(Number.isInteger(n)).toBe(true);
        expect(text).toMatch(/^[+-]?[\d.]/);
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        expect(e.message).toContain(`--x must be ${int ? 'an integer' : 'a number'} in 0..1000 (got '${text}')`);
      }
    }), { numRuns: 500, seed: 102 });
  });
});

describe('store paths', () => {
  const dir = join(tmp, 'dir');
  mkdirSync(dir);
  const notDb = join(tmp, 'notdb');
  writeFileSync(notDb, 'not sqlite');
  const db = join(tmp, 'ok.sqlite');
  writeFileSync(db, Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(84)]));
  const empty = join(tmp, 'empty.sqlite');
  writeFileSync(empty, '');
  it('accept a new file, an empty file or a SQLite database; refuse the rest with the path', () => {
    const cases: [string, boolean][] = [
      [join(tmp, 'new', 'deeper', 't.sqlite'), true], [db, true], [empty, true], [':memory:', true],
      [dir, false], [notDb, false], [join(notDb, 'below.sqlite'), false], ['', false], [' ', false], ['a\0b', false],
    ];
    for (const [path, ok] of cases) {
      if (ok) expect(() => checkStorePath(path, '--store')).not.toThrow();
      else expect(() => checkStorePath(path, '--store'), path).toThrow(InputError);
    }
    fc.assert(fc.property(fc.string({ maxLength: 12 }), (name) => {
      try {
        checkStorePath(join(tmp, name), '--store');
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        expect(e.message).toMatch(/^--store: /);
      }
    }), { numRuns: 200, seed: 103 });
  });
});
