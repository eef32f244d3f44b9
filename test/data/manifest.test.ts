import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DataError, entryUrl, findPlanetlabDay, groupDigest, PLANETLAB_SOURCE, parseManifest, planetlabCacheDir, planetlabDays, planetlabDir, planetlabManifest,
} from '../../src/data/index.js';
import { planetlabDay } from '../helpers/planetlab.js';

const H = 'a'.repeat(64);

function parseError(text: string): DataError {
  try {
    parseManifest(text, 'm.sha256');
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return e as DataError;
  }
  throw new Error('expected a parse error');
}

describe('the repository manifest (data/planetlab.sha256)', () => {
  const manifest = planetlabManifest();

  it('lists the five given days with one entry per VM trace', () => {
    expect(planetlabDays()).toEqual(['20110303', '20110306', '20110309', '20110322', '20110325']);
    const count = (d: string) => manifest.filter((e) => e.group === d).length;
    expect(planetlabDays().map(count)).toEqual([1052, 898, 1061, 1516, 1078]);
  });

  it('downloads from CloudSim\'s trace folder at a pinned commit, names percent-encoded', () => {
    const e = { group: '20110303', name: 'planetlab1_nrl_dcs_qmul_ac_uk_ rnp_dcc_ufjf', sha256: H };
    expect(entryUrl(PLANETLAB_SOURCE, e)).toBe(
      'https://raw.githubusercontent.com/Cloudslab/cloudsim/4529b632fc2d11b0f4d17610a546cee433b01a22/modules/cloudsim-examples/src/main/resources/workload/planetlab/20110303/planetlab1_nrl_dcs_qmul_ac_uk_%20rnp_dcc_ufjf',
    );
  });

  it('matches, file for file, the traces the tests read', () => {
    for (const day of planetlabDays()) {
      const dir = planetlabDay(day);
      const mismatched = manifest
        .filter((e) => e.group === day)
        .filter((e) => createHash('sha256').update(readFileSync(join(dir, e.name))).digest('hex') !== e.sha256)
        .map((e) => `${day}/${e.name}`);
      expect(mismatched, `in ${dir}`).toEqual([]);
    }
  });
});

describe('parseManifest', () => {
  it('reads sha256sum lines (text and binary markers, names with spaces, CRLF, blank lines)', () => {
    const m = parseManifest(`${H}  d1/a b\r\n\n${'b'.repeat(64)} *d1/c\n`, 'm');
    expect(m).toEqual([{ group: 'd1', name: 'a b', sha256: H }, { group: 'd1', name: 'c', sha256: 'b'.repeat(64) }]);
  });

  it('names the file and the line of a malformed entry', () => {
    expect(parseError(`${H}  d/a\nnot a checksum line\n`).message).toMatch(/^m\.sha256:2: /);
    expect(parseError(`${'A'.repeat(64)}  d/a\n`).message).toMatch(/^m\.sha256:1: /);
    expect(parseError(`${H}  a\n`).message).toMatch(/^m\.sha256:1: /);
    expect(parseError(`${H}  d/e/f\n`).message).toMatch(/^m\.sha256:1: /);
  });

  it('refuses paths that could leave the cache or hide from the trace reader', () => {
    for (const p of ['../a', 'd/..', './a', 'd/.hidden', '.verified/d', 'd/a\\b']) {
      const e = parseError(`${H}  ${p}\n`);
      expect(e.code).toBe('TIDE_DATA_MANIFEST');
    }
  });

  it('refuses a path listed twice and an empty manifest', () => {
    expect(parseError(`${H}  d/a\n${H}  d/a\n`).message).toContain("'d/a' listed twice");
    expect(parseError('\n\n').message).toContain('no entries');
  });
});

describe('where the traces are looked for', () => {
  const tmp: string[] = [];
  afterEach(() => {
    for (const d of tmp.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const mk = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'tide-lookup-'));
    tmp.push(d);
    return d;
  };
  const DAY = '20110306';
  /** A cache under XDG_CACHE_HOME=xdg holding DAY, recorded as verified against the repository's manifest when `verified`. */
  function cacheWithDay(verified: boolean): string {
    const xdg = mk();
    const cache = planetlabCacheDir({ XDG_CACHE_HOME: xdg });
    mkdirSync(join(cache, DAY), { recursive: true });
    if (verified) {
      mkdirSync(join(cache, '.verified'), { recursive: true });
      writeFileSync(join(cache, '.verified', DAY), `${groupDigest(planetlabManifest(), DAY)}\n`);
    }
    return xdg;
  }

  it('the cache is $XDG_CACHE_HOME/tide/planetlab, else ~/.cache/tide/planetlab (a relative XDG_CACHE_HOME is ignored)', () => {
    expect(planetlabCacheDir({ XDG_CACHE_HOME: '/x/cache', HOME: '/home/u' })).toBe('/x/cache/tide/planetlab');
    expect(planetlabCacheDir({ XDG_CACHE_HOME: 'rel', HOME: '/home/u' })).toBe('/home/u/.cache/tide/planetlab');
    expect(planetlabCacheDir({ HOME: '/home/u' })).toBe('/home/u/.cache/tide/planetlab');
  });

  it('TIDE_PLANETLAB_DIR wins, and only it is used when set', () => {
    const xdg = cacheWithDay(true);
    const fallback = mk();
    mkdirSync(join(fallback, DAY));
    const mine = mk();
    mkdirSync(join(mine, DAY));
    expect(findPlanetlabDay(DAY, { env: { TIDE_PLANETLAB_DIR: mine, XDG_CACHE_HOME: xdg }, fallbacks: [fallback] })).toBe(join(mine, DAY));
    const empty = mk();
    expect(findPlanetlabDay(DAY, { env: { TIDE_PLANETLAB_DIR: empty, XDG_CACHE_HOME: xdg }, fallbacks: [fallback] })).toBeUndefined();
    expect(planetlabDir({ env: { TIDE_PLANETLAB_DIR: empty }, fallbacks: [fallback] })).toBe(empty);
  });

  it('then the download cache, for a day a fetch verified; then the fallbacks', () => {
    const fallback = mk();
    mkdirSync(join(fallback, DAY));
    const verified = cacheWithDay(true);
    expect(findPlanetlabDay(DAY, { env: { XDG_CACHE_HOME: verified }, fallbacks: [fallback] })).toBe(join(planetlabCacheDir({ XDG_CACHE_HOME: verified }), DAY));
    expect(planetlabDir({ env: { XDG_CACHE_HOME: verified }, fallbacks: [fallback] })).toBe(planetlabCacheDir({ XDG_CACHE_HOME: verified }));
    // a day directory without a verification record (an interrupted fetch) is passed over
    const partial = cacheWithDay(false);
    expect(findPlanetlabDay(DAY, { env: { XDG_CACHE_HOME: partial }, fallbacks: [fallback] })).toBe(join(fallback, DAY));
    expect(planetlabDir({ env: { XDG_CACHE_HOME: partial }, fallbacks: [fallback] })).toBe(fallback);
  });

  it('with nothing anywhere, says where it looked and how to get the traces', () => {
    const xdg = mk();
    expect(findPlanetlabDay(DAY, { env: { XDG_CACHE_HOME: xdg }, fallbacks: [join(xdg, 'nope')] })).toBeUndefined();
    let err: unknown;
    try {
      planetlabDir({ env: { XDG_CACHE_HOME: xdg }, fallbacks: [join(xdg, 'nope')] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).code).toBe('TIDE_DATA_MISSING');
    expect((err as DataError).message).toContain(join(xdg, 'tide', 'planetlab'));
    expect((err as DataError).message).toContain('tide data fetch planetlab');
  });
});

describe('parseManifest on hostile input (fast-check)', () => {
  it('either returns safe entries or throws a DataError naming the source — nothing else', () => {
    const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
    const part = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('.', '..', '.x', 'a b', 'a\\b', '\0', '20110303'));
    const line = fc.oneof(
      fc.string({ maxLength: 90 }),
      fc.tuple(hex, fc.constantFrom('  ', ' *', ' ', '\t'), part, fc.constantFrom('/', '//', ''), part).map(([h, sep, g, slash, n]) => `${h}${sep}${g}${slash}${n}`),
    );
    fc.assert(fc.property(fc.array(line, { maxLength: 8 }), fc.constantFrom('\n', '\r\n'), (lines, eol) => {
      let entries;
      try {
        entries = parseManifest(lines.join(eol), 'fuzz.sha256');
      } catch (e) {
        expect(e).toBeInstanceOf(DataError);
        expect((e as DataError).message.startsWith('fuzz.sha256')).toBe(true);
        return;
      }
      for (const x of entries) {
        expect(x.sha256).toMatch(/^[0-9a-f]{64}$/);
        for (const c of [x.group, x.name]) {
          expect(c === '' || c === '.' || c === '..' || c.startsWith('.') || /[/\\\0]/.test(c)).toBe(false);
        }
      }
    }), { numRuns: 500 });
  });
});
