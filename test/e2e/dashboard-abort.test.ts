/**
 * The dashboard's Abort button in real headless Chromium (Debian's `chromium`, driven by
 * playwright-core; no browser download) against `tide demo --serve` in-process (serveDemo, the
 * built dashboard in dist/web): an operator clicks Abort on a running migration's progress bar.
 *
 * The migration is made long enough to click: the demo runs in approve mode (nothing moves
 * unless asked), an operator asks through the API for the largest VM to move, and while it runs
 * the demo's clock slows to 1 simulated second per wall second (serveDemo's migrationSpeed), so
 * the move lasts tens of seconds on screen.
 *
 * Checked: the guest stays on its source host (the page, after a reload, and the driver); the
 * step and the plan failed with TIDE_ABORTED (store); the migration's row on the page and the
 * migration history (API and store) say aborted; a viewer watching the same migration sees its
 * bar but no Abort button. Every wait is on a selector or a poll, none on a fixed sleep.
 * Chromium missing: a printed skip, a failure under CI (CI=1).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDemo, type DemoServer } from '../../src/api/demo-serve.js';

const CHROMIUM = process.env.TIDE_CHROMIUM ?? '/usr/bin/chromium';
const REQUIRED = process.env.CI === '1' || process.env.CI === 'true';
const haveChromium = existsSync(CHROMIUM);
const WEB = join(process.cwd(), 'dist', 'web');

if (!haveChromium) {
  if (REQUIRED) throw new Error(`dashboard abort e2e: ${CHROMIUM} is missing (apt-get install chromium; scripts/install-deps.sh) and CI requires it`);
  console.warn(`SKIP dashboard abort e2e: ${CHROMIUM} is missing (apt-get install chromium, or set TIDE_CHROMIUM)`);
}

/** Five simulated minutes per wall second between migrations (a round a second)... */
const SPEED = 300;
/** ...and one simulated second per wall second while one runs: the office's 32 GiB VM then takes about half a minute. */
const MIGRATION_SPEED = 1;

describe.skipIf(!haveChromium)('dashboard: Abort on a running migration in headless Chromium against tide demo --serve', () => {
  let browser: Browser;

  beforeAll(async () => {
    // The dashboard is served from dist/web (npm run build:web: Vite, a few seconds).
    execFileSync('npm', ['run', 'build:web'], { stdio: 'pipe' });
    expect(existsSync(join(WEB, 'index.html'))).toBe(true);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
  });

  async function login(demo: DemoServer, token: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(demo.url);
    await page.waitForSelector('input[name=token]');
    await page.fill('input[name=token]', token);
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-host] [data-vm]');
    return page;
  }

  const api = async (demo: DemoServer, token: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(`${demo.url}api/v1${path}`, {
      method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, json: await res.json() };
  };

  it('an operator aborts a live migration from its progress bar: the guest stays on its source, the step fails TIDE_ABORTED, history says aborted; a viewer sees no Abort', async () => {
    const demo = await serveDemo({ port: 0, speed: SPEED, migrationSpeed: MIGRATION_SPEED, hours: 24, mode: 'approve', staticDir: WEB });
    try {
      const operatorToken = demo.createToken('operator');
      const viewerToken = demo.createToken('viewer');
      const operator = await login(demo, operatorToken);
      const viewer = await login(demo, viewerToken);
      await operator.waitForSelector('[data-testid=live]:text("Live")');
      await viewer.waitForSelector('[data-testid=live]:text("Live")');

      // The largest VM that may move (the longest migration), on a host that is on.
      const snap = (await demo.daemon.controller.collect());
      const vm = [...snap.vms].filter((v) => v.host !== null && v.migratable).sort((a, b) => b.memMiB - a.memMiB)[0]!;
      const from = vm.host!;
      expect(vm.memMiB).toBeGreaterThanOrEqual(8192);
      await operator.waitForSelector(`[data-host="${from}"] [data-vm="${vm.id}"]`);

      const started = await api(demo, operatorToken, 'POST', '/migrations', { vm: vm.id, to: 'best' });
      expect(started.status, JSON.stringify(started.json)).toBe(202);
      const { planId, to } = started.json as { planId: number; to: string };
      expect(to).not.toBe(from);

      // The migration's bar, running and part-way, on both pages.
      const row = `[data-testid=migrations] [data-migration="${vm.id}"]`;
      const partWay = `${row}[data-state=running]:not([data-progress="0"]):not([data-progress=""])`;
      await operator.waitForSelector(`${partWay} [data-action=abort]`, { timeout: 60_000 });
      await viewer.waitForSelector(partWay, { timeout: 60_000 });
      // The viewer sees the bar, never the button.
      expect(await viewer.$$(`${row} [data-action=abort]`)).toHaveLength(0);
      expect(await viewer.$$('[data-action=abort]')).toHaveLength(0);
      expect(demo.store.stepRuns(planId)).toMatchObject([{ state: 'running', vm: vm.id }]);

      await operator.click(`${partWay} [data-action=abort]`);
      // The click is the abort: the page says so, and its row ends aborted (not done).
      await operator.waitForSelector(`[role=status]:text("Aborting the migration of ${vm.id}")`);
      await operator.waitForSelector(`${row}[data-state=aborted]`, { timeout: 30_000 });
      expect(await operator.textContent(`${row}[data-state=aborted]`)).toContain('aborted');

      // The store: the step and the plan failed with TIDE_ABORTED; the history row is an aborted migration.
      await expect.poll(() => demo.store.getPlan(planId)!.status, { timeout: 30_000 }).toBe('failed');
      const steps = demo.store.stepRuns(planId);
      expect(steps).toMatchObject([{ state: 'failed', errorCode: 'TIDE_ABORTED', vm: vm.id, from, to }]);
      expect(steps[0]!.errorMessage).toContain(`keeps running on ${from}`);
      expect(demo.store.migrations({ vm: vm.id })[0]).toMatchObject({ vm: vm.id, from, to, ok: false });
      expect(demo.store.migrations({ vm: vm.id })[0]!.error).toMatch(/^TIDE_ABORTED: /);
      const hist = (await api(demo, viewerToken, 'GET', `/migrations?vm=${encodeURIComponent(vm.id)}`)).json as {
        running: unknown[]; migrations: { vm: string; from: string; to: string; ok: boolean; aborted: boolean }[];
      };
      expect(hist.running).toEqual([]);
      expect(hist.migrations[0]).toMatchObject({ vm: vm.id, from, to, ok: false, aborted: true });

      // The guest stays on its source: the driver, and the page read afresh after a reload.
      expect((await demo.daemon.controller.collect()).vms.find((v) => v.id === vm.id)!.host).toBe(from);
      await operator.reload();
      await operator.waitForSelector(`[data-host="${from}"] [data-vm="${vm.id}"]`);
      expect(await operator.$$(`[data-host="${to}"] [data-vm="${vm.id}"]`)).toHaveLength(0);
      await viewer.close();
      await operator.close();
    } finally {
      await demo.close();
    }
  }, 180_000);
});
