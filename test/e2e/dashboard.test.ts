/**
 * The dashboard in real headless Chromium (Debian's `chromium`, driven by playwright-core; no
 * browser download) against `tide demo --serve` in-process (serveDemo: the daemon on the
 * simulated office, the HTTP API, the built dashboard in dist/web).
 *
 *  - every host and every VM of the demo is on the page;
 *  - a consolidation visibly moves VMs and powers a host off, live (no reload);
 *  - in approve mode, a plan approved from the UI executes;
 *  - a viewer token sees no approve button, and the API refuses the approval (403);
 *  - a live migration shows a progress bar (the demo slows down while one runs);
 *  - the What-if page replays the recorded history through other policies: both results and a chart;
 *  - an admin edits the rules on the Policy & rules page (kept in the store, source api).
 *
 * Screenshots of the main pages go to a temporary folder (printed), and to docs/screenshots/
 * (linked from the README) only with TIDE_UPDATE_SCREENSHOTS=1 (CONTRIBUTING.md), so that a
 * test run does not dirty the tree.
 * Chromium missing: a printed skip, a failure under CI (CI=1).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDemo, type DemoServer } from '../../src/api/demo-serve.js';
import { parseConfig } from '../../src/config/load.js';
import { createHttpApp } from '../../src/http/app.js';
import { serveHttp } from '../../src/http/serve.js';
import { createToken } from '../../src/http/tokens.js';
import { openSqliteStore } from '../../src/store/store.js';
import type { CliIo } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';

const CHROMIUM = process.env.TIDE_CHROMIUM ?? '/usr/bin/chromium';
const REQUIRED = process.env.CI === '1' || process.env.CI === 'true';
const haveChromium = existsSync(CHROMIUM);
const SHOTS = process.env.TIDE_UPDATE_SCREENSHOTS === '1' ? join(process.cwd(), 'docs', 'screenshots')
  : process.env.TIDE_SCREENSHOT_DIR ?? join(tmpdir(), 'tide-screenshots');
const WEB = join(process.cwd(), 'dist', 'web');

if (!haveChromium) {
  if (REQUIRED) throw new Error(`dashboard e2e: ${CHROMIUM} is missing (apt-get install chromium; scripts/install-deps.sh) and CI requires it`);
  console.warn(`SKIP dashboard e2e: ${CHROMIUM} is missing (apt-get install chromium, or set TIDE_CHROMIUM)`);
}

/** One hour of simulated time per wall second: Monday's evening consolidation (19:00) ~19 s in. */
const FAST = 3600;

describe.skipIf(!haveChromium)('dashboard in headless Chromium against tide demo --serve', () => {
  let browser: Browser;

  beforeAll(async () => {
    // The dashboard is served from dist/web: build it (Vite, well under a second).
    execFileSync('npx', ['vite', 'build', '--config', 'web/vite.config.ts'], { stdio: 'pipe' });
    expect(existsSync(join(WEB, 'index.html'))).toBe(true);
    mkdirSync(SHOTS, { recursive: true });
    console.log(`dashboard e2e: screenshots in ${SHOTS}`);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  async function login(demo: DemoServer, token: string, shot?: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(demo.url);
    await page.waitForSelector('input[name=token]');
    if (shot) await page.screenshot({ path: join(SHOTS, shot) });
    await page.fill('input[name=token]', token);
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-host]');
    return page;
  }

  /** VM → host as the page shows it. */
  const placement = (page: Page): Promise<Record<string, string>> => page.$$eval('[data-host] [data-vm]', (els) =>
    Object.fromEntries(els.flatMap((e) => {
      const host = e.parentElement?.closest('[data-host]')?.getAttribute('data-host');
      return host ? [[e.getAttribute('data-vm')!, host]] : [];
    })));
  const powers = (page: Page): Promise<Record<string, string>> => page.$$eval('[data-host]', (els) =>
    Object.fromEntries(els.map((e) => [e.getAttribute('data-host')!, e.getAttribute('data-power')!])));

  it('shows every host and VM; a consolidation moves VMs and powers a host off, live', async () => {
    // Migrations slow to 20 simulated seconds per wall second (a 4 GiB VM: about half a second).
    const demo = await serveDemo({ port: 0, speed: FAST, migrationSpeed: 20, hours: 30, staticDir: WEB });
    try {
      // A wrong token is refused on the login page.
      const probe = await browser.newPage();
      await probe.goto(demo.url);
      await probe.fill('input[name=token]', 'tide_not-a-token');
      await probe.click('button[type=submit]');
      await probe.waitForSelector('.alert:text("not accepted")');
      await probe.close();
      const page = await login(demo, demo.adminToken, 'login.png');
      // The first round has run when VMs show; every host of the office and every VM.
      await page.waitForSelector('[data-vm]');
      const hosts = Object.keys(await powers(page)).sort();
      expect(hosts).toEqual(['srv-1', 'srv-2', 'srv-3', 'srv-4']);
      const vms = (await demo.daemon.controller.collect()).vms.map((v) => v.id).sort();
      expect(vms.length).toBeGreaterThanOrEqual(10);
      expect(Object.keys(await placement(page)).sort()).toEqual(vms);
      await page.waitForSelector('[data-testid=live]:text("Live")');

      // Wait, without reloading, for the day's spread (07:00 on) and then the evening
      // consolidation (19:00 on): some VM changes host and a host that was on goes off.
      const before = await placement(page);
      const seenOn = new Set(Object.entries(await powers(page)).filter(([, p]) => p === 'on').map(([h]) => h));
      // Meanwhile a live migration's progress bar shows, part-way (the demo slows down while one runs).
      const progress = page.waitForSelector('[data-testid=migrations] [data-migration][data-state=running]:not([data-progress="0"]):not([data-progress=""]) .bar-fill', { timeout: 90_000 })
        .then(async (bar) => {
          const row = (await bar.evaluateHandle((e) => e.closest('[data-migration]')!)).asElement()!;
          const pct = Number(await row.getAttribute('data-progress'));
          await page.screenshot({ path: join(SHOTS, 'migration.png') });
          return { pct, width: await bar.evaluate((e) => (e as unknown as { style: { width: string } }).style.width) };
        });
      progress.catch(() => {});
      let moved = false;
      let poweredOff: string | null = null;
      await page.screenshot({ path: join(SHOTS, 'cluster-day.png') });
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline && !(moved && poweredOff)) {
        await page.waitForTimeout(250);
        const now = await placement(page);
        if (Object.keys(now).some((vm) => before[vm] !== undefined && now[vm] !== before[vm])) moved = true;
        const p = await powers(page);
        for (const [h, state] of Object.entries(p)) {
          if (state === 'on') seenOn.add(h);
          else if (state === 'off' && seenOn.has(h) && moved) poweredOff = h;
        }
      }
      expect(moved).toBe(true);
      expect(poweredOff).not.toBeNull();
      const bar = await progress;
      expect(bar.pct).toBeGreaterThan(0);
      expect(bar.pct).toBeLessThan(100);
      expect(bar.width).toMatch(/^\d+(\.\d+)?%$/);
      await page.waitForTimeout(500);
      await page.screenshot({ path: join(SHOTS, 'cluster.png') });
      // The powered-off host holds no VM on the page.
      expect(await page.$$(`[data-host="${poweredOff}"] [data-vm]`)).toHaveLength(0);

      for (const p of ['schedule', 'history', 'plan'] as const) {
        await page.click(`[data-page=${p}]`);
        await page.waitForTimeout(400);
        if (p === 'history') for (const c of ['hosts', 'energy', 'host-cpu', 'migrations']) await page.waitForSelector(`[data-testid=chart-${c}] canvas`);
        if (p === 'schedule') await page.waitForSelector('[data-testid=timeline] .tl-window');
        await page.screenshot({ path: join(SHOTS, `${p}.png`) });
      }
      // What-if: this run's recorded history replayed through npa and lr-mmt beside the configured policy.
      await page.click('[data-page=whatif]');
      await page.waitForSelector('[data-action=whatif]');
      await page.click('[data-action=whatif]');
      await page.waitForSelector('[data-testid=whatif-results] tr[data-policy=lr-mmt]', { timeout: 30_000 });
      const rows = await page.$$eval('[data-testid=whatif-results] tr[data-policy]', (trs) => trs.map((tr) => ({
        policy: tr.getAttribute('data-policy'), kwh: Number(tr.querySelectorAll('td')[1]!.textContent), migrations: Number(tr.querySelectorAll('td')[4]!.textContent),
      })));
      expect(rows.map((r) => r.policy)).toEqual(['tide', 'npa', 'lr-mmt']);
      for (const r of rows) expect(r.kwh).toBeGreaterThan(0);
      // npa never moves a VM; Tide saves energy against it on the same history.
      expect(rows[1]!.migrations).toBe(0);
      expect(rows[0]!.kwh).toBeLessThan(rows[1]!.kwh);
      await page.waitForSelector('[data-testid=whatif-chart] canvas');
      await page.screenshot({ path: join(SHOTS, 'whatif.png') });
      await page.close();
    } finally {
      await demo.close();
    }
  }, 180_000);

  it("against a daemon's API alone (no demo routes): hosts from the stored metrics, History charts each host's CPU", async () => {
    const store = openSqliteStore(':memory:');
    const nowMs = Date.now();
    // Two hours of 5-minute rounds: h1 busy by day, h2 quiet.
    for (let k = 24; k >= 1; k--) {
      store.recordMetrics(nowMs - k * 300_000, [
        { kind: 'host', name: 'h1', host: null, cpuPct: 40 + k, memMiB: 8192 },
        { kind: 'host', name: 'h2', host: null, cpuPct: 5, memMiB: 2048 },
      ]);
    }
    const config = parseConfig({ hosts: [{ name: 'h1', uri: 'test:///h1' }, { name: 'h2', uri: 'test:///h2' }], mode: 'approve' });
    const server = await serveHttp(createHttpApp({ store, config, staticDir: WEB }), { port: 0 });
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    try {
      const token = createToken(store, { role: 'viewer', by: 'test' }).token;
      await page.goto(`${server.url}/`);
      await page.fill('input[name=token]', token);
      await page.click('button[type=submit]');
      await page.waitForSelector('[data-host=h2]');
      expect(Object.keys(await powers(page)).sort()).toEqual(['h1', 'h2']);
      expect(await page.$$('[data-action=maintenance]')).toHaveLength(0);
      await page.click('[data-page=history]');
      await page.waitForSelector('[data-testid=chart-host-cpu] canvas');
      // The demo's own series (energy, hosts on) are not invented.
      expect(await page.$$('[data-testid=chart-energy]')).toHaveLength(0);
      expect(await page.textContent('[data-testid=chart-host-cpu]')).toContain('h1');
    } finally {
      await page.close();
      await server.close();
      store.close();
    }
  }, 60_000);

  it('approve mode: a plan approved from the UI executes; a viewer cannot approve', async () => {
    // Slow enough that the proposal waits for us (a round every 5 simulated minutes = 1 s).
    const demo = await serveDemo({ port: 0, speed: 300, hours: 24, mode: 'approve', staticDir: WEB });
    try {
      const viewerToken = demo.createToken('viewer');
      const viewer = await login(demo, viewerToken);
      await viewer.click('[data-page=plan]');
      await viewer.waitForSelector('[data-plan][data-status=proposed]', { timeout: 30_000 });
      expect(await viewer.$$('[data-action=approve]')).toHaveLength(0);
      await viewer.waitForSelector('[data-testid=viewer-note]');
      expect(await viewer.$$('[data-action=maintenance]')).toHaveLength(0);
      await viewer.screenshot({ path: join(SHOTS, 'plan-viewer.png') });
      const planId = Number(await viewer.getAttribute('[data-plan]', 'data-plan'));
      // The API refuses the viewer too, and nothing changes.
      const res = await fetch(`${demo.url}api/v1/plans/${planId}/approve`, {
        method: 'POST', headers: { authorization: `Bearer ${viewerToken}`, 'content-type': 'application/json' }, body: '{}',
      });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TIDE_FORBIDDEN');
      expect(demo.store.getPlan(planId)!.status).toBe('proposed');
      await viewer.close();

      const admin = await login(demo, demo.adminToken);
      await admin.click('[data-page=plan]');
      await admin.waitForSelector('[data-plan][data-status=proposed] [data-action=approve]', { timeout: 30_000 });
      const id = Number(await admin.getAttribute('[data-plan]', 'data-plan'));
      await admin.screenshot({ path: join(SHOTS, 'plan-approve.png') });
      await admin.click('[data-action=approve]');
      // The daemon executes it: the stored plan ends done, and the page shows it without a reload.
      await expect.poll(() => demo.store.getPlan(id)!.status, { timeout: 30_000 }).toBe('done');
      expect(demo.store.getPlan(id)!.statusReason ?? '').not.toMatch(/fail/i);
      const runs = demo.store.stepRuns(id);
      expect(runs.length).toBeGreaterThan(0);
      expect(runs.every((r) => r.state === 'succeeded')).toBe(true);
      await admin.waitForSelector(`[data-plan="${id}"][data-status=done]`, { timeout: 15_000 });
      // Migrate a VM from the UI to a chosen host: a one-step plan, approved, that the daemon runs.
      // The click re-renders asynchronously: read placements only once the cluster page shows dns
      // in a host column (read earlier, the plan page's DOM gave no placement for dns and the
      // chosen "other" host could be dns's own, which the picker rightly never offers).
      await admin.click('[data-page=cluster]');
      await admin.waitForSelector('[data-host] [data-vm=dns]');
      await admin.click('[data-vm=dns]');
      await admin.waitForSelector('[data-testid=migrate-bar] select');
      // The picker offers the powered-on hosts out of maintenance other than the VM's own (as of
      // the click, which the bar names); take the first.
      const from = /from (\S+) to/.exec((await admin.textContent('[data-testid=migrate-bar]')) ?? '')?.[1];
      expect(from).toMatch(/^srv-/);
      const offered = await admin.$$eval('[data-testid=migrate-bar] select option', (els) =>
        els.map((e) => (e as unknown as { value: string }).value).filter((v) => v !== 'best'));
      expect(offered.length).toBeGreaterThan(0);
      expect(offered).not.toContain(from);
      const dest = offered[0]!;
      await admin.selectOption('[data-testid=migrate-bar] select', dest);
      await admin.click('[data-action=migrate]');
      await admin.waitForSelector(`[data-host="${dest}"] [data-vm=dns]`, { timeout: 20_000 });
      expect(demo.store.migrations({ vm: 'dns' })[0]).toMatchObject({ to: dest });
      // Maintenance from the UI: the badge shows and the store has it (who: the admin token).
      await admin.click('[data-host=srv-2] [data-action=maintenance]');
      await admin.waitForSelector('[data-host=srv-2] .badge.warn');
      expect(demo.store.hostStates().find((h) => h.host === 'srv-2')).toMatchObject({ maintenance: true });
      // Rules from the UI (admin): opt dns out of moves; kept in the store, shown as set through the API.
      await admin.click('[data-page=rules]');
      await admin.waitForSelector('[data-testid=rules] [data-source=file]');
      const draft = JSON.parse(await admin.inputValue('textarea[name=rules]')) as { rules: unknown[]; pinnedVms: string[] };
      expect(draft.rules.length).toBeGreaterThan(0);
      await admin.fill('textarea[name=rules]', JSON.stringify({ ...draft, pinnedVms: [...draft.pinnedVms, 'dns'] }, null, 2));
      await admin.click('[data-action=save-rules]');
      await admin.waitForSelector('[data-testid=rules] [data-source=api]');
      expect(await admin.textContent('[data-testid=rules]')).toContain('dns is never moved automatically');
      expect(demo.daemon.settings.pinnedVms).toContain('dns');
      expect(demo.store.configOverride('rules')?.setBy).toBe('api:demo admin#1');
      await admin.screenshot({ path: join(SHOTS, 'rules.png') });
      await admin.close();
    } finally {
      await demo.close();
    }
  }, 120_000);
});

describe('tide demo --serve (the CLI, in-process)', () => {
  it('prints the URL, writes the admin token (0600), serves the API (401 without a token) and the dashboard, stops on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-demo-serve-'));
    const tokenFile = join(dir, 'admin.token');
    let out = '';
    const io: CliIo = { out: (t) => void (out += t), err: (t) => void (out += t), isTty: false, env: process.env, cwd: process.cwd() };
    // Only our handlers see the SIGTERM we emit below (the test runner's are set aside meanwhile).
    const saved = process.listeners('SIGTERM');
    process.removeAllListeners('SIGTERM');
    try {
      const run = main(['demo', '--serve', '--port', '0', '--token-file', tokenFile, '--speed', '3600', '--hours', '24'], io);
      await expect.poll(() => /http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)?.[0] ?? null, { timeout: 15_000 }).not.toBeNull();
      const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)![0];
      expect(Number(new URL(url).port)).toBeGreaterThan(0);
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
      const token = readFileSync(tokenFile, 'utf8').trim();
      expect(out).not.toContain(token);
      expect((await fetch(`${url}api/v1/hosts`)).status).toBe(401);
      await expect.poll(async () => {
        const r = await fetch(`${url}api/v1/hosts`, { headers: { authorization: `Bearer ${token}` } });
        return ((await r.json()) as { hosts: { powerState: string }[] }).hosts.filter((h) => h.powerState !== 'unknown').length;
      }, { timeout: 15_000 }).toBe(4);
      // Prometheus metrics without a token (the API itself still wants one).
      const metrics = await (await fetch(`${url}metrics`)).text();
      for (const m of ['tide_host_power_state', 'tide_migrations_total', 'tide_energy_kwh_total']) expect(metrics).toContain(m);
      const who = await (await fetch(`${url}api/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })).json();
      expect(who).toMatchObject({ role: 'admin' });
      if (existsSync(join(WEB, 'index.html'))) expect(await (await fetch(url)).text()).toContain('<div id="app">');
      process.emit('SIGTERM');
      expect(await run).toBe(0);
      await expect(fetch(`${url}api/v1/hosts`)).rejects.toThrow();
    } finally {
      for (const l of saved) process.on('SIGTERM', l as () => void);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a port in use: exit 2 with the reason, nothing left listening', async () => {
    const demo = await serveDemo({ port: 0, speed: 3600, hours: 1 });
    try {
      let err = '';
      const io: CliIo = { out: () => {}, err: (t) => void (err += t), isTty: false, env: process.env, cwd: process.cwd() };
      expect(await main(['demo', '--serve', '--port', String(demo.port)], io)).toBe(2);
      expect(err).toMatch(/port is in use/);
    } finally {
      await demo.close();
    }
  });

  it('refuses --port without --serve (usage, exit 2)', async () => {
    let err = '';
    const io: CliIo = { out: () => {}, err: (t) => void (err += t), isTty: false, env: process.env, cwd: process.cwd() };
    expect(await main(['demo', '--port', '8080'], io)).toBe(2);
    expect(err).toMatch(/--serve/);
  });
});
