/**
 * `tide demo` runs the daemon (src/daemon, over the Controller) on virtual time, paced against a wall
 * clock for a watcher. The wall clock here is a fake that only counts (its sleep returns at
 * once), so these tests take no wall time.
 */
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/api/demo.js';
import { drivePaced, wallDueMs, WEEK_PER_MINUTE, type WallClock } from '../../src/api/pacing.js';
import type { TickResult } from '../../src/app/controller.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { runCli } from '../helpers/cli.js';

/** A wall clock that jumps forward on sleep and records each sleep. */
function fakeWall(): WallClock & { t: number; sleeps: number[] } {
  const w = {
    t: 1000,
    sleeps: [] as number[],
    now: () => w.t,
    sleep: (ms: number) => {
      w.sleeps.push(ms);
      w.t += ms;
      return Promise.resolve();
    },
  };
  return w;
}

describe('pacing math', () => {
  it('maps virtual time to wall time at the given speed', () => {
    const origin = { wallMs: 500, virtualMs: 3_600_000 };
    expect(wallDueMs(3_600_000, origin, 3600)).toBe(500);
    expect(wallDueMs(7_200_000, origin, 3600)).toBe(1500); // an hour later: one second later
    expect(wallDueMs(3_600_000 + 7 * 86_400_000, origin, WEEK_PER_MINUTE)).toBeCloseTo(60_500, 6); // a week: a minute
    expect(() => wallDueMs(0, origin, 0)).toThrow(/speed/);
  });

  it('wakes each virtual sleeper no earlier than its wall due time, and work between sleeps takes no wall time', async () => {
    const clock = new VirtualClock(0);
    const wall = fakeWall();
    const wokeAtWall: number[] = [];
    const work = (async () => {
      for (const ms of [3_600_000, 1_800_000, 0, 5_400_000]) {
        await clock.sleep(ms);
        wokeAtWall.push(wall.now());
      }
      return clock.now();
    })();
    expect(await drivePaced(clock, work, 3600, wall)).toBe(10_800_000);
    // due at 1 s, 1.5 s, 1.5 s, 3 s after the start (wall started at 1000)
    expect(wokeAtWall).toEqual([2000, 2500, 2500, 4000]);
    expect(wall.sleeps.reduce((a, b) => a + b, 0)).toBe(3000);
  });

  it('speed Infinity does not touch the wall clock', async () => {
    const clock = new VirtualClock(0);
    const wall = fakeWall();
    const v = await drivePaced(clock, (async () => { await clock.sleep(86_400_000); return 42; })(), Infinity, wall);
    expect(v).toBe(42);
    expect(wall.sleeps).toEqual([]);
  });

  it('a sleeper added while the driver waits for a later one (an API-started migration) is paced, not run at once up to the later one', async () => {
    const clock = new VirtualClock(0);
    const wall = fakeWall();
    const wokeAtWall: number[] = [];
    let side: Promise<void> | undefined;
    // The first wall sleep (towards the round at 300 s) ends early, before its due time, with
    // five 1-s sleepers added meanwhile on the virtual clock.
    const sleep = wall.sleep;
    wall.sleep = (ms) => {
      if (side) return sleep(ms);
      side = (async () => {
        for (let i = 0; i < 5; i++) {
          await clock.sleep(1000);
          wokeAtWall.push(wall.now());
        }
      })();
      return Promise.resolve();
    };
    const round = (async () => { await clock.sleep(300_000); return wall.now(); })();
    // 1000 virtual s per wall s: the sleepers are due 1 ms apart from wall 1000, the round at 1300.
    expect(await drivePaced(clock, round, 1000, wall)).toBe(1300);
    await side;
    expect(wokeAtWall).toEqual([1001, 1002, 1003, 1004, 1005]);
  });

  it('a failing work rejects; work waiting on nothing the clock can wake is reported', async () => {
    const clock = new VirtualClock(0);
    await expect(drivePaced(clock, (async () => { await clock.sleep(10); throw new Error('boom'); })(), 10, fakeWall())).rejects.toThrow('boom');
    await expect(drivePaced(clock, new Promise(() => {}), 10, fakeWall())).rejects.toThrow(/cannot wake/);
  });
});

describe('the demo runs the daemon, paced or not', () => {
  it('the daemon observer sees every round, one per interval; pacing changes nothing but the wall time', async () => {
    const rounds: TickResult[] = [];
    const fast = await runDemo({ hours: 6, onRound: (r) => rounds.push(r) });
    expect(fast.rounds).toBe((6 * 3600) / 300);
    expect(rounds.map((r) => r.snapshot.time)).toEqual(Array.from({ length: 72 }, (_, i) => i * 300));
    // the per-round figures come from those rounds
    const on = rounds.reduce((a, r) => a + r.snapshot.hosts.filter((h) => h.powerState === 'on').length, 0);
    expect(fast.meanHostsOn).toBeCloseTo(on / 72, 9);
    // A run that moved something: the rounds' plans carry the timeline's steps.
    const planned = rounds.flatMap((r) => (r.run ? r.run.steps.filter((s) => s.state === 'succeeded').map((s) => s.step.kind) : []));
    expect(planned.length).toBe(fast.timeline.length);

    const wall = fakeWall();
    const paced = await runDemo({ hours: 6, speed: WEEK_PER_MINUTE, wall });
    expect({ ...paced }).toEqual({ ...fast });
    // 6 simulated hours at a week per minute: 6 × 3600 / 10 080 s of wall time, up to the last round
    const waited = wall.sleeps.reduce((a, b) => a + b, 0);
    expect(waited).toBeGreaterThan(((6 * 3600 - 300) / WEEK_PER_MINUTE) * 1000 - 1);
    expect(waited).toBeLessThanOrEqual(((6 * 3600) / WEEK_PER_MINUTE) * 1000 + 1);
  });

  it('tide demo off a terminal runs unpaced and prints the timeline stamped in simulated time; --speed is checked', async () => {
    const r = await runCli(['demo', '--hours', '30', '--observe-days', '0']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^(Mon|Tue) \d\d:\d\d {2}power off \S+ — /m);
    expect(r.out).toMatch(/^(Mon|Tue) \d\d:\d\d {2}\S+: \S+ → \S+ in [\d.]+ s, downtime \d+ ms — /m);
    const bad = await runCli(['demo', '--speed', '0']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--speed/);
  });
});
