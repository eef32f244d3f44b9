/**
 * The lab guest's load generator (/cgi-bin/load, src/lab/guest-init.ts) run here under the same
 * busybox the guest gets, with a PATH of busybox applets only (as in the guest, so a command
 * busybox lacks fails here too), its /run paths moved to a temp dir. And the lab demo's story
 * (src/lab/demo.ts): the load curve, the clock factor, where the timeline shows the evening
 * consolidation and the morning spread.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { storyMarks } from '../../src/api/lab-demo.js';
import { CGI_LOAD, LOAD_MAX_PCT } from '../../src/lab/guest-init.js';
import { DEFAULT_STORY, dayFactor, labDemoPolicyArgs, loadAt } from '../../src/lab/demo.js';
import type { TimelineEntry } from '../../src/sim/timeline.js';
import { runCli } from '../helpers/cli.js';

const BUSYBOX = '/bin/busybox';
const haveBusybox = existsSync(BUSYBOX);
if (!haveBusybox) process.stderr.write(`SKIP load generator CGI: ${BUSYBOX} missing (busybox-static, scripts/install-deps.sh)\n`);

describe.skipIf(!haveBusybox)('the guest load generator CGI under busybox', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tide-load-cgi-'));
  const bin = join(dir, 'bin');
  const run = join(dir, 'run');
  mkdirSync(bin);
  mkdirSync(run);
  const applets = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const a of applets) symlinkSync(BUSYBOX, join(bin, a));
  const script = CGI_LOAD.replaceAll('/run/', `${run}/`);
  const cgi = (query: string): string => spawnSync(join(bin, 'sh'), ['-c', script], { env: { PATH: bin, QUERY_STRING: query }, encoding: 'utf8', timeout: 10_000 }).stdout;
  const workers = (): number[] => {
    const r = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
    return r.stdout.split('\n').filter((l) => l.includes(`${run}/load.gen`) && / load \d+ \d+$/.test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
  };
  const waitFor = async (cond: () => boolean): Promise<boolean> => {
    for (let i = 0; i < 100; i++) {
      if (cond()) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return cond();
  };

  afterAll(() => {
    cgi('pct=0');
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts ceil(N/100) workers with only busybox applets, replaces them on a new N, stops them on 0', async () => {
    expect(cgi('pct=150')).toMatch(/load_pct=150 workers=2\n$/);
    expect(await waitFor(() => workers().length === 2)).toBe(true);
    const first = workers();
    expect(readFileSync(join(run, 'load.pct'), 'utf8').trim()).toBe('150');
    expect(cgi('pct=30')).toMatch(/load_pct=30 workers=1\n$/);
    expect(await waitFor(() => workers().length === 1 && !first.includes(workers()[0]!))).toBe(true);
    expect(cgi('pct=0')).toMatch(/load_pct=0 workers=0\n$/);
    expect(await waitFor(() => workers().length === 0)).toBe(true);
  });

  it('refuses a bad or too large N with 400 and starts nothing', () => {
    for (const q of ['pct=', 'pct=x', 'pct=-1', `pct=${LOAD_MAX_PCT + 1}`]) {
      expect(cgi(q), q).toMatch(/^HTTP\/1.0 400 Bad Request/);
    }
    expect(workers()).toEqual([]);
  });
});

describe('the lab demo story', () => {
  const H = 3600;
  it('office hours busy, nights quiet, one spike of three guests in the night', () => {
    const s = DEFAULT_STORY;
    expect(loadAt(s, 1, 16 * H)).toBe(s.officePct);
    expect(loadAt(s, 0, s.spikeFromSec)).toBe(s.spikePct);
    expect(loadAt(s, 2, s.spikeFromSec)).toBe(s.spikePct);
    expect(loadAt(s, 3, s.spikeFromSec)).toBe(s.quietPct);
    expect(loadAt(s, 0, s.spikeToSec)).toBe(s.quietPct);
    expect(loadAt(s, 0, s.spikeFromSec - 1)).toBe(s.quietPct);
    expect(loadAt(s, 2, 18 * H)).toBe(s.quietPct);
    expect(loadAt(s, 2, 24 * H + 6.99 * H)).toBe(s.quietPct);
    expect(loadAt(s, 2, 24 * H + 7 * H)).toBe(s.officePct);
    expect(s.endSec - s.startSec).toBe(17 * H);
  });

  it('a day of N minutes runs 86400 / (60 N) times faster than the wall', () => {
    expect(dayFactor(8)).toBe(180);
    expect(dayFactor(5) * 5 * 60).toBe(86_400);
    expect(() => dayFactor(0)).toThrow(RangeError);
  });

  it('policy thresholds follow the measured busy level: all guests on one host overload it, half of them do not', () => {
    const busy = 0.25;
    const a = labDemoPolicyArgs(2, busy, 4);
    const hostShare = (guests: number): number => (guests * busy) / 2;
    expect(hostShare(4)).toBeGreaterThan(a.overloadUtil! * 1.25); // the morning after a consolidated night
    expect(hostShare(2)).toBeLessThan(a.overloadUtil! / 1.25); // the day, spread
    expect(hostShare(2)).toBeLessThan(a.targetUtil!); // so relief moves two guests back
    expect(hostShare(3)).toBeGreaterThan(a.targetUtil!);
    expect(a.consolidateUtil).toBeLessThan(a.targetUtil!);
    expect(labDemoPolicyArgs(1, 1, 4).overloadUtil).toBe(1);
  });

  it('finds the evening consolidation and the morning spread in a timeline, and not when missing', () => {
    const t: TimelineEntry[] = [
      { t: 16.5 * H, kind: 'migrate', vm: 'vm3', from: 'lab-a', to: 'lab-b', reason: 'lab-a overloaded' },
      { t: 18.5 * H, kind: 'migrate', vm: 'vm2', from: 'lab-b', to: 'lab-a', reason: 'lab-b can be emptied' },
      { t: 18.6 * H, kind: 'powerOff', host: 'lab-b', reason: 'lab-b is empty' },
      { t: 31.2 * H, kind: 'powerOn', host: 'lab-b', reason: 'needed' },
      { t: 31.3 * H, kind: 'migrate', vm: 'vm1', from: 'lab-a', to: 'lab-b', reason: 'lab-a overloaded' },
    ];
    expect(storyMarks(t)).toEqual({ consolidatedAtSec: 18.6 * H, spreadAtSec: 31.3 * H });
    expect(storyMarks(t.slice(0, 4))).toEqual({ consolidatedAtSec: 18.6 * H, spreadAtSec: null });
    // a power-off in the afternoon is not the evening consolidation
    expect(storyMarks([{ ...t[1]!, t: 17 * H }, { ...t[2]!, t: 17.1 * H }]).consolidatedAtSec).toBeNull();
  });

  it('tide lab demo checks its arguments before touching the lab', async () => {
    for (const args of [['--minutes', '0'], ['--minutes', 'x'], ['--vms', '1'], ['extra']]) {
      const r = await runCli(['lab', 'demo', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
    }
  });
});
