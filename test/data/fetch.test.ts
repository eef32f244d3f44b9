import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DataError, entryUrl, fetchDataset, isDayVerified, planetlabManifest, type ManifestEntry } from '../../src/data/index.js';
import { planetlabDay } from '../helpers/planetlab.js';
import { Mirror } from './mirror.js';

/**
 * The fetcher against a loopback mirror holding four real files of one day (one with a space in
 * its name), checked against the repository's own manifest entries for them.
 */
const DAY = '20110303';
const NAMES = [
  '146-179_surfsnel_dsl_internl_net_colostate_557',
  'gschembra4_diit_unict_it_root',
  'planetlab1_nrl_dcs_qmul_ac_uk_ rnp_dcc_ufjf',
  'planetlab4_rutgers_edu_ rnp_dcc_ufjf',
];

const manifest = planetlabManifest();
const entries: ManifestEntry[] = NAMES.map((n) => {
  const e = manifest.find((x) => x.group === DAY && x.name === n);
  if (!e) throw new Error(`manifest lacks ${DAY}/${n}`);
  return e;
});
const src = planetlabDay(DAY);

let mirror: Mirror;
let cache: string;

beforeAll(async () => {
  mirror = new Mirror();
  mirror.add(src, DAY, NAMES);
  await mirror.start();
});
afterAll(async () => {
  await mirror.stop();
  rmSync(mirror.root, { recursive: true, force: true });
});
beforeEach(() => {
  cache = mkdtempSync(join(tmpdir(), 'tide-cache-'));
  mirror.faults.clear();
  mirror.unavailable.clear();
  mirror.requests.clear();
  mirror.delayMs = 0;
  mirror.maxInFlight = 0;
});
afterEach(() => rmSync(cache, { recursive: true, force: true }));

const run = (extra: Partial<Parameters<typeof fetchDataset>[0]> = {}) =>
  fetchDataset({ entries, manifest, baseUrl: mirror.baseUrl, dir: cache, concurrency: 2, timeoutMs: 5000, retryDelayMs: 1, ...extra });

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const partials = (): string[] => readdirSync(cache).filter((n) => n.startsWith('.partial-'));
/** Every trace file in the cache's day directory matches its manifest checksum. */
function cacheHoldsOnlyVerified(): string[] {
  const dayDir = join(cache, DAY);
  const present = existsSync(dayDir) ? readdirSync(dayDir) : [];
  for (const n of present) expect(sha(join(dayDir, n)), n).toBe(entries.find((e) => e.name === n)!.sha256);
  return present;
}

async function failure(p: Promise<unknown>): Promise<DataError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(DataError);
  return e as DataError;
}

describe('fetchDataset against a loopback mirror', () => {
  it('downloads every file, byte for byte the source, and leaves no partial directory', async () => {
    const r = await run();
    expect(r).toMatchObject({ files: 4, downloaded: 4, cached: 0, replaced: 0 });
    for (const n of NAMES) expect(readFileSync(join(cache, DAY, n)).equals(readFileSync(join(src, n)))).toBe(true);
    expect(r.bytesDownloaded).toBe(NAMES.reduce((a, n) => a + readFileSync(join(src, n)).length, 0));
    expect(partials()).toEqual([]);
    // names with spaces travel percent-encoded and come back decoded
    expect(mirror.requests.get(`${DAY}/planetlab1_nrl_dcs_qmul_ac_uk_ rnp_dcc_ufjf`)).toBe(1);
    expect(entryUrl(mirror.baseUrl, entries[2]!)).toContain('planetlab1_nrl_dcs_qmul_ac_uk_%20rnp_dcc_ufjf');
    // four of the day's 1052 files: the day is not recorded as complete
    expect(r.verifiedGroups).toEqual([]);
    expect(isDayVerified(cache, DAY)).toBe(false);
  });

  it('a re-run downloads nothing: verified files are kept', async () => {
    await run();
    const before = mirror.requestCount();
    const r = await run();
    expect(r).toMatchObject({ files: 4, downloaded: 0, cached: 4, replaced: 0 });
    expect(mirror.requestCount()).toBe(before);
  });

  it('a cached file whose checksum no longer matches is fetched again', async () => {
    await run();
    writeFileSync(join(cache, DAY, NAMES[1]!), 'tampered\n');
    const r = await run();
    expect(r).toMatchObject({ downloaded: 1, cached: 3, replaced: 1 });
    expect(sha(join(cache, DAY, NAMES[1]!))).toBe(entries[1]!.sha256);
  });

  it('a corrupted download fails with a checksum error naming the file and the URL, and writes nothing for it', async () => {
    mirror.faults.set(NAMES[2]!, 'corrupt');
    const e = await failure(run());
    expect(e.code).toBe('TIDE_DATA_CHECKSUM');
    expect(e.message).toContain(`${DAY}/${NAMES[2]}`);
    expect(e.message).toContain(entryUrl(mirror.baseUrl, entries[2]!));
    expect(e.message).toContain(entries[2]!.sha256);
    expect(existsSync(join(cache, DAY, NAMES[2]!))).toBe(false);
    expect(cacheHoldsOnlyVerified()).not.toContain(NAMES[2]);
    expect(partials()).toEqual([]);
  });

  it('an HTTP 404 names the status, the file and the URL', async () => {
    mirror.faults.set(NAMES[0]!, 'missing');
    const e = await failure(run());
    expect(e.code).toBe('TIDE_DATA_FETCH');
    expect(e.message).toContain('HTTP 404');
    expect(e.message).toContain(`${DAY}/${NAMES[0]}`);
    expect(e.message).toContain(entryUrl(mirror.baseUrl, entries[0]!));
    expect(existsSync(join(cache, DAY, NAMES[0]!))).toBe(false);
  });

  it('an interrupted download leaves no half-written file, and the next run fetches only what is missing', async () => {
    mirror.faults.set(NAMES[3]!, 'cut');
    const e = await failure(run({ concurrency: 1 }));
    expect(e.code).toBe('TIDE_DATA_FETCH');
    expect(e.message).toContain('gave up after 4 attempts');
    expect(mirror.requests.get(`${DAY}/${NAMES[3]}`)).toBe(4);
    expect(e.message).toContain(`${DAY}/${NAMES[3]}`);
    expect(e.message).toContain(entryUrl(mirror.baseUrl, entries[3]!));
    const kept = cacheHoldsOnlyVerified();
    expect(kept).toEqual(NAMES.slice(0, 3).sort());
    expect(partials()).toEqual([]);

    mirror.faults.clear();
    mirror.requests.clear();
    const r = await run();
    expect(r).toMatchObject({ downloaded: 1, cached: 3 });
    expect([...mirror.requests.keys()]).toEqual([`${DAY}/${NAMES[3]}`]);
    expect(cacheHoldsOnlyVerified().sort()).toEqual([...NAMES].sort());
  });

  it('retries transient answers (503 with Retry-After) and then succeeds', async () => {
    mirror.unavailable.set(NAMES[1]!, 2);
    const r = await run();
    expect(r).toMatchObject({ downloaded: 4 });
    expect(mirror.requests.get(`${DAY}/${NAMES[1]}`)).toBe(3);
    expect(sha(join(cache, DAY, NAMES[1]!))).toBe(entries[1]!.sha256);
  });

  it('does not retry a final answer (404) or a checksum mismatch', async () => {
    mirror.faults.set(NAMES[0]!, 'missing');
    await failure(run({ concurrency: 1 }));
    expect(mirror.requests.get(`${DAY}/${NAMES[0]}`)).toBe(1);
    mirror.faults.set(NAMES[0]!, 'corrupt');
    mirror.requests.clear();
    await failure(run({ concurrency: 1 }));
    expect(mirror.requests.get(`${DAY}/${NAMES[0]}`)).toBe(1);
  });

  it('stops starting downloads after the first failure (fails fast)', async () => {
    mirror.faults.set(NAMES[0]!, 'missing');
    await failure(run({ concurrency: 1 }));
    expect(mirror.requestCount()).toBe(1);
  });

  it('removes the partial directory of a run whose process is gone, keeps a live one', async () => {
    const dead = join(cache, '.partial-999999999-dead');
    const live = join(cache, `.partial-${process.ppid}-live`);
    mkdirSync(dead, { recursive: true });
    mkdirSync(live, { recursive: true });
    writeFileSync(join(dead, '0'), 'half a fi');
    await run();
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });

  it('a request that never answers fails at its timeout, naming the file and the URL', async () => {
    mirror.faults.set(NAMES[1]!, 'hang');
    const e = await failure(run({ timeoutMs: 300, retries: 0 }));
    expect(e.code).toBe('TIDE_DATA_FETCH');
    expect(e.message).toContain('within 300 ms');
    expect(e.message).toContain(entryUrl(mirror.baseUrl, entries[1]!));
    expect(existsSync(join(cache, DAY, NAMES[1]!))).toBe(false);
  });

  it('refuses a body over the size limit', async () => {
    mirror.faults.set(NAMES[0]!, 'huge');
    const e = await failure(run());
    expect(e.code).toBe('TIDE_DATA_FETCH');
    expect(e.message).toMatch(/larger than \d+ bytes/);
    expect(existsSync(join(cache, DAY, NAMES[0]!))).toBe(false);
  });

  it('never has more requests open than its concurrency', async () => {
    mirror.delayMs = 40;
    await run({ concurrency: 2 });
    expect(mirror.maxInFlight).toBeGreaterThanOrEqual(1);
    expect(mirror.maxInFlight).toBeLessThanOrEqual(2);
  });

  it('records a group as verified only when its whole manifest group was fetched', async () => {
    // a tiny manifest whose one group is exactly these four files
    const r = await fetchDataset({ entries, baseUrl: mirror.baseUrl, dir: cache });
    expect(r.verifiedGroups).toEqual([DAY]);
    expect(isDayVerified(cache, DAY, entries)).toBe(true);
    // against the repository's manifest (1052 files that day) the record does not count
    expect(isDayVerified(cache, DAY, manifest)).toBe(false);
    // a run touching the group withdraws the record until it succeeds again
    mirror.faults.set(NAMES[0]!, 'missing');
    rmSync(join(cache, DAY, NAMES[0]!));
    await failure(fetchDataset({ entries, baseUrl: mirror.baseUrl, dir: cache }));
    expect(isDayVerified(cache, DAY, entries)).toBe(false);
  });

  it('a cache directory that cannot be used fails with TIDE_DATA_IO naming it, not a stack trace', async () => {
    const notADir = join(cache, 'file');
    writeFileSync(notADir, 'x');
    const e = await failure(run({ dir: notADir }));
    expect(e.code).toBe('TIDE_DATA_IO');
    expect(e.message).toContain(`cannot use the cache directory ${notADir}`);
    expect(mirror.requestCount()).toBe(0);
  });

  it('rejects a source that is not an http(s) URL before touching the network', async () => {
    for (const baseUrl of ['not a url', 'file:///etc', 'ftp://127.0.0.1/x']) {
      const e = await failure(run({ baseUrl }));
      expect(e.code).toBe('TIDE_DATA_FETCH');
      expect(e.message).toContain(baseUrl);
    }
    expect(mirror.requestCount()).toBe(0);
  });
});
