/**
 * `tide daemon` (the built CLI, as a process) on the two-host lab with real guests, in approve
 * mode: `tide host maintenance on lab-b` → the daemon's round proposes evacuating lab-b →
 * `tide approve ID` → the idle daemon picks the approved plan up (store poll), re-collects, finds
 * the cluster unchanged and starts the first live migration → SIGTERM while it is in flight:
 * the migration finishes (the guest runs on lab-a, checked with virsh), no further step starts
 * (the other guest never leaves lab-b), the lock is released, exit status 0.
 * Needs root and the lab: skipped with a printed reason otherwise, a failure under
 * TIDE_REQUIRE_LAB=1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { MigrateReport } from '../../src/api/cluster.js';
import type { TideConfigInput } from '../../src/config/schema.js';
import type { LabHostName } from '../../src/lab/index.js';
import { openSqliteStore } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, sharedLab, type TestLab } from '../helpers/lab.js';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/tide.js');
const log = (m: string): void => { process.stderr.write(`[e2e daemon] ${m}\n`); };
const FROM: LabHostName = 'lab-b';
const TO: LabHostName = 'lab-a';

describeLab('tide daemon on the lab: approve → live migration; SIGTERM lets it finish and starts nothing new', () => {
  let lab: TestLab | undefined;
  const L = (): TestLab => lab!;
  const dir = mkdtempSync(join(tmpdir(), 'tide-e2e-daemon-'));
  const storePath = join(dir, 'tide.sqlite');
  let cfg = '';
  let child: ChildProcess | undefined;

  const where = async (vm: string): Promise<LabHostName | null> => L().locate(vm);

  beforeAll(async () => {
    lab = await sharedLab({ vms: 2 });
    const base = JSON.parse(readFileSync(lab.configFile, 'utf8')) as TideConfigInput;
    cfg = join(dir, 'tide.json');
    writeFileSync(cfg, JSON.stringify({
      ...base, mode: 'approve', intervalSec: 20, store: { path: storePath },
      migration: { ...(base.migration ?? {}), maxConcurrent: 1, maxPerHost: 1 },
    }, null, 2));
    for (const v of ['vm1', 'vm2']) {
      await lab.setDirty(v, 0).catch(() => { /* a fresh guest */ });
      if ((await where(v)) !== FROM) {
        const r = await runCli(['--config', cfg, 'migrate', v, '--to', FROM, '--json']);
        expect((JSON.parse(r.out) as MigrateReport).ok, `${v} → ${FROM}: ${r.out}${r.err}`).toBe(true);
      }
    }
    for (const v of lab.vms) if (v.disk?.mode === 'local') lab.prepareLocalDisk(v.name, TO);
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await lab?.unshapeLinks().catch(() => { /* best effort */ });
    for (const v of ['vm1', 'vm2']) await lab?.setDirty(v, 0).catch(() => { /* best effort */ });
    await lab?.down();
    rmSync(dir, { recursive: true, force: true });
  }, LAB_HOOK_TIMEOUT_MS);

  it('runs the approved evacuation; SIGTERM mid-migration: it finishes, nothing new starts, exit 0, lock released', async () => {
    expect(existsSync(join(ROOT, 'dist/daemon/daemon.js')), 'dist/ missing: run npm run build').toBe(true);
    expect(await where('vm1')).toBe(FROM);
    expect(await where('vm2')).toBe(FROM);
    expect((await runCli(['--config', cfg, 'host', 'maintenance', 'on', FROM, '--reason', 'e2e'])).code).toBe(0);

    child = spawn(process.execPath, [BIN, 'daemon', '--config', cfg, '--poll-ms', '200', '--stop-grace', '600'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
    const exit = new Promise<number | null>((resolve) => child!.on('close', (c) => resolve(c)));
    const lines = (): Record<string, unknown>[] => out.split('\n').filter(Boolean).map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON log line: ${l}\nwhole output:\n${out}`);
      }
    });
    const until = async (what: string, cond: () => boolean, ms: number): Promise<void> => {
      const end = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; log:\n${out}`);
        if (child!.exitCode !== null) throw new Error(`the daemon exited (${child!.exitCode}) while waiting for ${what}; log:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    // The daemon proposes the evacuation of the host in maintenance (rounds every 20 s).
    const proposal = (): Record<string, unknown> | undefined => lines().find((l) => l.event === 'round' && typeof l.planId === 'number' && (l.steps as number) >= 2);
    await until('a proposed evacuation', () => proposal() !== undefined, 120_000);
    const id = proposal()!.planId as number;
    const moves = lines().filter((l) => l.event === 'plan' && l.planId === id && l.kind === 'migrate').map((l) => `${l.vm as string}:${l.from as string}>${l.to as string}`);
    log(`plan ${id}: ${moves.join(', ')}`);
    expect(moves).toEqual(expect.arrayContaining([`vm1:${FROM}>${TO}`, `vm2:${FROM}>${TO}`]));

    // Slow the migrations down (the link, not the guests) so that SIGTERM lands while one is in flight.
    await L().shapeLinks(40);
    const ap = await runCli(['--config', cfg, 'approve', String(id)]);
    expect(ap.code, ap.err).toBe(0);
    await until('a migration in flight', () => lines().some((l) => l.event === 'step-start' && l.kind === 'migrate'), 60_000);
    const started = lines().find((l) => l.event === 'step-start' && l.kind === 'migrate')!;
    const vm = started.vm as string;
    const other = vm === 'vm1' ? 'vm2' : 'vm1';
    log(`migration of ${vm} in flight: SIGTERM`);
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    await L().unshapeLinks();

    const all = lines();
    const end = all.find((l) => l.event === 'step-end' && l.vm === vm)!;
    expect(end.state, JSON.stringify(end)).toBe('succeeded');
    expect(all.some((l) => l.event === 'step-start' && l.vm === other)).toBe(false);
    expect(await where(vm)).toBe(TO);
    expect(await where(other)).toBe(FROM);
    // The moved guest runs on lab-a and its service answers.
    expect((await L().virshOk(TO, ['domstate', vm])).trim()).toBe('running');
    expect(Object.keys(await L().guestInfo(vm)).length).toBeGreaterThan(0);
    const store = openSqliteStore(storePath);
    try {
      expect(store.clusterLock()).toBeUndefined();
      expect(store.daemonStatus()!.state).toBe('stopped');
      const runs = store.stepRuns(id);
      expect(runs.find((r) => r.vm === vm)!.state).toBe('succeeded');
      expect(runs.filter((r) => r.vm !== vm).every((r) => r.state === 'cancelled')).toBe(true);
    } finally {
      store.close();
    }
    expect((await runCli(['--config', cfg, 'host', 'maintenance', 'off', FROM])).code).toBe(0);
  }, 600_000);
});
