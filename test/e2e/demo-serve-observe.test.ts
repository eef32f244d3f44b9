/**
 * `tide demo --serve --observe-days N` (src/api/demo-serve.ts, src/cli/commands/demo.ts): the
 * observation runs fast in recommend mode before the server is handed over — plans stored,
 * nothing executed, the history recorded — then the acting hours are served paced in the
 * requested mode, and the dashboard's history (GET /api/v1/demo?history=1) starts at the
 * observation's first round, with `actingFromMs` where acting began.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serveDemo, type DemoServer, type HistoryPoint } from '../../src/api/demo-serve.js';
import type { WallClock } from '../../src/api/pacing.js';
import type { CliIo } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { SIM_MONDAY_EPOCH_SEC } from '../../src/core/schedule.js';

const EPOCH_MS = SIM_MONDAY_EPOCH_SEC * 1000;
const DAY_MS = 86_400_000;
const INTERVAL_MS = 300_000; // the office scenario's round

interface DemoJson { simMs: number; epochMs: number; mode: string; observeDays: number; actingFromMs: number; recommendedPlans: number; migrations: number; history?: HistoryPoint[] }

async function demoJson(d: DemoServer, history = false): Promise<DemoJson> {
  const r = await fetch(`${d.url}api/v1/demo${history ? '?history=1' : ''}`, { headers: { authorization: `Bearer ${d.adminToken}` } });
  expect(r.status).toBe(200);
  return (await r.json()) as DemoJson;
}

/** A wall clock that never lets time pass: a paced run cannot advance past its first due round. */
const frozenWall = (): WallClock => ({ now: () => 0, sleep: () => new Promise<void>(() => {}) });

let opened: DemoServer | undefined;
afterEach(async () => {
  await opened?.close();
  opened = undefined;
});

describe('tide demo --serve --observe-days', () => {
  it('observes a day fast in recommend mode (history recorded, nothing executed), then acts in automatic mode', async () => {
    const observed: { observeDays: number; recommendedPlans: number }[] = [];
    const d = opened = await serveDemo({ observeDays: 1, hours: 24, speed: 1e9, staticDir: '/nonexistent', onObserved: (o) => observed.push(o) });
    // serveDemo resolved after the observation: the simulated clock is at its end
    const mid = await demoJson(d, true);
    expect(observed).toHaveLength(1);
    expect(mid).toMatchObject({ observeDays: 1, actingFromMs: EPOCH_MS + DAY_MS, mode: 'automatic' });
    expect(mid.simMs).toBeGreaterThanOrEqual(EPOCH_MS + DAY_MS);
    const h = mid.history!;
    expect(h[0]!.tMs).toBe(EPOCH_MS);
    expect(h.filter((p) => p.tMs < EPOCH_MS + DAY_MS).length).toBe(DAY_MS / INTERVAL_MS);
    // recommend mode: every host stayed on, nothing moved
    expect(h.filter((p) => p.tMs < EPOCH_MS + DAY_MS).every((p) => p.hostsOn === 4 && p.migrations === 0)).toBe(true);
    expect(d.store.migrations({ limit: 1_000_000 })).toEqual([]);
    expect(mid.recommendedPlans).toBe(observed[0]!.recommendedPlans);
    expect(mid.recommendedPlans).toBeGreaterThan(0);

    await d.done;
    const end = await demoJson(d, true);
    // the run ends with its last round before the end of the acting day
    expect(end.simMs).toBeGreaterThanOrEqual(EPOCH_MS + 2 * DAY_MS - INTERVAL_MS);
    expect(end.simMs).toBeLessThanOrEqual(EPOCH_MS + 2 * DAY_MS);
    // acting: moves happened, all after the observation
    const migs = d.store.migrations({ limit: 1_000_000 });
    expect(migs.length).toBeGreaterThan(0);
    expect(migs.every((m) => m.startedMs >= DAY_MS)).toBe(true);
    expect(end.history!.some((p) => p.tMs >= EPOCH_MS + DAY_MS && p.hostsOn < 4)).toBe(true);
    expect(d.daemon.settings.mode).toBe('automatic');
    // the history and its always-on baseline cover the observed day: equal while observing
    const lastObserved = end.history!.filter((p) => p.tMs < EPOCH_MS + DAY_MS).at(-1)!;
    expect(lastObserved.energyKWh).toBeCloseTo(lastObserved.alwaysOnKWh, 6);
  }, 120_000);

  it('the acting period is paced: with a wall clock that does not move, the run stays at the observation\'s end', async () => {
    const d = opened = await serveDemo({ observeDays: 1, hours: 24, speed: 60, staticDir: '/nonexistent', wall: frozenWall() });
    await new Promise((r) => setTimeout(r, 300));
    const j = await demoJson(d);
    expect(j.simMs).toBeGreaterThanOrEqual(EPOCH_MS + DAY_MS);
    expect(j.simMs).toBeLessThanOrEqual(EPOCH_MS + DAY_MS + INTERVAL_MS);
  }, 60_000);

  it('the CLI accepts --serve --observe-days, says so, and serves the observed history', async () => {
    let out = '';
    const io: CliIo = { out: (t) => void (out += t), err: (t) => void (out += t), isTty: false, env: process.env, cwd: process.cwd() };
    const saved = process.listeners('SIGTERM');
    process.removeAllListeners('SIGTERM');
    try {
      const run = main(['demo', '--serve', '--port', '0', '--observe-days', '1', '--hours', '1', '--speed', '1e9'], io);
      await expect.poll(() => /http:\/\/127\.0\.0\.1:\d+\//.exec(out)?.[0] ?? null, { timeout: 60_000 }).not.toBeNull();
      expect(out).toMatch(/observing 1 day\(s\) in recommend mode first/);
      expect(out).toMatch(/observed 1 day\(s\) in [\d.]+ s: \d+ plan\(s\) recommended, nothing executed; now acting in automatic mode/);
      expect(out.indexOf('observed 1 day')).toBeLessThan(out.indexOf('dashboard and API:'));
      const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)![0];
      const token = /admin token \(shown once\): (\S+)/.exec(out)![1]!;
      const j = (await (await fetch(`${url}api/v1/demo?history=1`, { headers: { authorization: `Bearer ${token}` } })).json()) as DemoJson;
      expect(j.history![0]!.tMs).toBe(EPOCH_MS);
      expect(j.actingFromMs).toBe(EPOCH_MS + DAY_MS);
      process.emit('SIGTERM');
      expect(await run).toBe(0);
    } finally {
      for (const l of saved) process.on('SIGTERM', l as () => void);
    }
    let err = '';
    const eio: CliIo = { out: () => {}, err: (t) => void (err += t), isTty: false, env: process.env, cwd: process.cwd() };
    expect(await main(['demo', '--serve', '--observe-days', '366', '--hours', '24'], eio)).toBe(2);
    expect(err).toMatch(/exceed 366 simulated days together/);
  }, 120_000);
});
