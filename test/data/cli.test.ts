import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planetlabManifest } from '../../src/data/index.js';
import { runCli } from '../helpers/cli.js';
import { planetlabDay } from '../helpers/planetlab.js';
import { Mirror } from './mirror.js';

/** `tide data` end to end, in-process, against a loopback mirror and a tiny manifest of three files. */
const DAY = '20110325';
const entries = planetlabManifest().filter((e) => e.group === DAY).slice(0, 3);
let mirror: Mirror;
let tmp: string;
let manifestFile: string;

beforeAll(async () => {
  mirror = new Mirror();
  mirror.add(planetlabDay(DAY), DAY, entries.map((e) => e.name));
  await mirror.start();
  tmp = mkdtempSync(join(tmpdir(), 'tide-data-cli-'));
  manifestFile = join(tmp, 'tiny.sha256');
  writeFileSync(manifestFile, entries.map((e) => `${e.sha256}  ${e.group}/${e.name}\n`).join(''));
});
afterAll(async () => {
  await mirror.stop();
  rmSync(mirror.root, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
});

describe('tide data', () => {
  it('fetch planetlab downloads, verifies and reports; a second run downloads nothing', async () => {
    const dir = join(tmp, 'cache');
    const args = ['data', 'fetch', 'planetlab', '--dir', dir, '--source', mirror.baseUrl, '--manifest', manifestFile];
    const r = await runCli(args);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`3 files verified in ${dir} (3 downloaded`);
    expect(r.out).toContain(`days: ${DAY}`);
    for (const e of entries) expect(readFileSync(join(dir, DAY, e.name)).equals(readFileSync(join(planetlabDay(DAY), e.name)))).toBe(true);

    const again = await runCli([...args, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.out)).toMatchObject({ files: 3, downloaded: 0, cached: 3, verifiedGroups: [DAY] });
  });

  it('a 404 fails with exit status 1, the code, the file and the URL', async () => {
    const dir = join(tmp, 'cache404');
    const r = await runCli(['data', 'fetch', 'planetlab', '--dir', dir, '--source', `${mirror.baseUrl}/nope`, '--manifest', manifestFile]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('[TIDE_DATA_FETCH]');
    expect(r.err).toContain('HTTP 404');
    expect(r.err).toContain(`${mirror.baseUrl}/nope/${DAY}/`);
    expect(r.err).toContain(`files verified so far are kept in ${dir}: run the command again to resume`);
  });

  it('a day the manifest does not list is refused before any download, naming it (exit 2: bad input)', async () => {
    const before = mirror.requestCount();
    const r = await runCli(['data', 'fetch', 'planetlab', '--dir', join(tmp, 'x'), '--days', '20110303,20991231', '--source', mirror.baseUrl]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('[TIDE_DATA_UNKNOWN]');
    expect(r.err).toContain('no checksums for day 20991231 in');
    expect(mirror.requestCount()).toBe(before);
  });

  it('a malformed --manifest exits 2 naming the file and line', async () => {
    const bad = join(tmp, 'bad.sha256');
    writeFileSync(bad, `${entries[0]!.sha256}  ${DAY}/${entries[0]!.name}\nnot a line\n`);
    const r = await runCli(['data', 'fetch', 'planetlab', '--dir', join(tmp, 'y'), '--manifest', bad, '--source', mirror.baseUrl]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${bad}:2:`);
    expect(r.err).toContain('[TIDE_DATA_MANIFEST]');
  });

  it('usage errors exit 2 and name the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['data'], /expected 'fetch' or 'status'/],
      [['data', 'fetch'], /expected 'planetlab'/],
      [['data', 'fetch', 'planetlab', '--days', '2011-03-03'], /--days: '2011-03-03' is not a day/],
      [['data', 'fetch', 'planetlab', '--days', ','], /--days needs at least one day/],
      [['data', 'fetch', 'planetlab', '--source', 'file:///etc'], /--source must be an http\(s\) URL/],
      [['data', 'fetch', 'planetlab', '--concurrency', '0'], /--concurrency .*\b1\b/],
      [['data', 'fetch', 'planetlab', '--concurrency', '1e9'], /--concurrency/],
      [['data', 'fetch', 'planetlab', '--concurrency', '65'], /--concurrency must be at most 64/],
      [['data', 'fetch', 'planetlab', '--timeout', 'NaN'], /--timeout/],
      [['data', 'fetch', 'planetlab', '--timeout', '86401'], /--timeout must be at most 86400/],
      [['data', 'status', 'planetlab', '--days', '20110303'], /--days applies to 'fetch' only/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toMatch(re);
    }
  });

  it('status lists the cache directory and which days are complete', async () => {
    const dir = join(tmp, 'cache');
    const r = await runCli(['data', 'status', 'planetlab', '--dir', dir, '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as { dir: string; days: { day: string; verified: boolean }[] };
    expect(s.dir).toBe(dir);
    // three files of a 1078-file day are not the day
    expect(s.days).toContainEqual({ day: DAY, verified: false });
    expect(s.days).toHaveLength(5);
  });
});
