import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/executor/clock.js';

describe('VirtualClock', () => {
  it('wakes sleepers in time order and never early', async () => {
    const c = new VirtualClock(1000);
    const woke: [string, number][] = [];
    void c.sleep(500).then(() => woke.push(['b', c.now()]));
    void c.sleep(100).then(() => woke.push(['a', c.now()]));
    void c.sleep(500).then(() => woke.push(['c', c.now()]));
    await c.advance(99);
    expect(woke).toEqual([]);
    await c.advance(1000);
    expect(woke).toEqual([['a', 1100], ['b', 1500], ['c', 1500]]);
    expect(c.now()).toBe(2099);
  });

  it('lets a chain of sleeps run to completion with drive()', async () => {
    const c = new VirtualClock(0);
    const work = (async () => {
      for (let i = 0; i < 10; i++) await c.sleep(60_000);
      return c.now();
    })();
    await expect(c.drive(work)).resolves.toBe(600_000);
  });

  it('rejects a sleep when its signal aborts, and forgets the timer', async () => {
    const c = new VirtualClock(0);
    const ac = new AbortController();
    const p = c.sleep(1000, ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    expect(c.pending).toBe(0);
  });

  it('drive() fails instead of hanging when the work waits on nothing it can wake', async () => {
    const c = new VirtualClock(0);
    await expect(c.drive(new Promise(() => {}))).rejects.toThrow(/cannot wake/);
  });
});
