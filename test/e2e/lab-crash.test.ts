/**
 * Crash safety on the real lab (libvirtd + QEMU, docs/lab.md): a Tide process executing a plan
 * that evacuates lab-a (three live migrations to lab-b, one at a time) is SIGKILLed at each step
 * — once the step's intent is in the store ('running'), mid-migration (links shaped so a move
 * takes seconds) or right away — and a new process runs recoverOnStart (a libvirt migration
 * job may still be running then: recovery waits for it). Checked with virsh, not with Tide's
 * own report: each guest is active on exactly one host, running (none paused), its service
 * answers; every step's stored state matches where virsh finds its guest; the plan superseded.
 *
 * The processes run the built code (test/helpers/crash-child.mjs imports dist/: `npm run
 * build` first; npm test builds). Needs root and the lab: skipped with a printed reason
 * otherwise, a failure under TIDE_REQUIRE_LAB=1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RecoverReport } from '../../src/app/journal.js';
import type { Plan } from '../../src/core/plan/types.js';
import type { LabHostName } from '../../src/lab/index.js';
import { openSqliteStore } from '../../src/store/store.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, sharedLab, type TestLab } from '../helpers/lab.js';
import { expectGuestsRunOnce, expectMigrateStepsTrue, guestCopies, guestsBackOn, waitForStepIntent, type GuestCopy } from '../helpers/lab-guests.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const CHILD = join(ROOT, 'test/helpers/crash-child.mjs');
const BIN = join(ROOT, 'bin/tide.js');
const log = (m: string): void => { process.stderr.write(`[e2e crash] ${m}\n`); };
const FROM: LabHostName = 'lab-a';
const TO: LabHostName = 'lab-b';
const GUESTS = ['vm1', 'vm2', 'vm3'];
/** Uplink rate while the plan runs: a 128 MiB guest then takes several seconds to move. */
const SHAPE_MBIT = 150;

const PLAN: Plan = {
  policy: 'lab-crash', time: 0, hosts: [], notMoved: [],
  steps: GUESTS.map((vm, i) => ({ id: i + 1, kind: 'migrate' as const, vm, from: FROM, to: TO, memMiB: 128, deps: [], reason: `evacuate ${FROM}`, by: 'test' })),
};

/** Kill points: which step, and how long after its intent was stored. */
const POINTS = [
  { step: 1, afterMs: 1500, mode: 'live' },
  { step: 2, afterMs: 1500, mode: 'live' },
  { step: 3, afterMs: 0, mode: 'live' },
  // suspend: the source is paused before the move; a kill leaves a paused copy somewhere
  { step: 2, afterMs: 1500, mode: 'suspend' },
];

/** Children still running: killed when the file ends, so a failed test leaves no Tide acting on the lab. */
const LIVE = new Set<ChildProcess>();

function runChild(args: string[], script = CHILD): { done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>; kill: (sig?: NodeJS.Signals) => void; pid: number | undefined } {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  LIVE.add(child);
  child.on('close', () => LIVE.delete(child));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, out, err }));
  });
  return { done, kill: (sig = 'SIGKILL') => child.kill(sig), pid: child.pid };
}

describeLab('SIGKILL of a Tide process at each step of a 3-migration plan on the lab, then recovery', () => {
  let lab: TestLab | undefined;
  const L = (): TestLab => lab!;
  const dir = mkdtempSync(join(tmpdir(), 'tide-e2e-crash-'));

  /** Each guest's copies, as virsh on both hosts reports them (active ones only). */
  const copies = (vm: string): Promise<GuestCopy[]> => guestCopies(L(), vm, [FROM, TO]);
  const allOnFrom = (): Promise<void> => guestsBackOn(L(), GUESTS, FROM, TO);

  beforeAll(async () => {
    expect(existsSync(join(ROOT, 'dist/app/journal.js')), 'dist/ missing or old: run npm run build').toBe(true);
    lab = await sharedLab({ vms: 3 });
    for (const v of GUESTS) await lab.setDirty(v, 0).catch(() => { /* a fresh guest */ });
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    for (const c of LIVE) c.kill('SIGKILL');
    await lab?.unshapeLinks().catch(() => { /* best effort */ });
    await lab?.down();
    rmSync(dir, { recursive: true, force: true });
  }, LAB_HOOK_TIMEOUT_MS);

  it.each(POINTS)('$mode: killed $afterMs ms after step $step started: each guest runs exactly once, none paused, the service answers, the journal is true', async ({ step, afterMs, mode }) => {
    await allOnFrom();
    const storeFile = join(dir, `${mode}-step${step}.sqlite`);
    const planFile = join(dir, `${mode}-plan${step}.json`);
    writeFileSync(planFile, JSON.stringify(PLAN));
    await L().shapeLinks(SHAPE_MBIT);
    const child = runChild(['run', L().configFile, storeFile, planFile, mode]);
    // watch the journal for the step's intent, then SIGKILL
    let exited = false;
    void child.done.then(() => { exited = true; });
    const seenMs = await waitForStepIntent(storeFile, step, () => exited, { timeoutMs: 120_000, pollMs: 20 });
    expect(seenMs, `step ${step} never started (child exited: ${exited})`).not.toBeNull();
    if (afterMs > 0) await new Promise((r) => setTimeout(r, afterMs));
    child.kill();
    const killed = await child.done;
    log(`step ${step}: killed ${Date.now() - seenMs!} ms after its intent (signal ${killed.signal}); child said:\n${killed.err.trim()}`);
    expect(killed.signal).toBe('SIGKILL');
    expect(killed.out).toBe(''); // it never finished
    const before = await Promise.all(GUESTS.map(async (vm) => `${vm}: ${JSON.stringify(await copies(vm))}`));
    log(`right after the kill: ${before.join('; ')}`);
    {
      const s = openSqliteStore(storeFile);
      try {
        expect(s.runningStepRuns().map((r) => r.stepId)).toEqual([step]);
      } finally {
        s.close();
      }
    }

    // a new process recovers (a migration job may still run: it waits for it)
    const rec = runChild(['recover', L().configFile, storeFile]);
    const r = await rec.done;
    log(`recovery (rc ${r.code}):\n${r.err.trim()}`);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as RecoverReport;
    await L().unshapeLinks();
    expect(report.code).toBe('recovered');
    const st = report.steps.find((x) => x.stepId === step)!;
    expect(['migrated', 'stayed-on-source']).toContain(st.code);

    // virsh: every guest active on exactly one host, running; its service answers
    const where = await expectGuestsRunOnce(L(), GUESTS, await Promise.all(GUESTS.map((vm) => copies(vm))));
    // the journal: true to virsh; the plan superseded; nothing left running
    const s = openSqliteStore(storeFile);
    try {
      const plan = s.listPlans({ limit: 1 })[0]!;
      expect(plan.status).toBe('superseded');
      const rows = s.stepRuns(plan.id);
      expect(rows.map((x) => x.stepId)).toEqual([1, 2, 3]);
      expectMigrateStepsTrue(rows, where, FROM, TO);
      expect(s.unknownMigrations()).toEqual([]);
      log(`step ${step}: recovery ${st.code} (${st.reason}); plan ${plan.id}: ${plan.statusReason}`);
    } finally {
      s.close();
    }
  }, 300_000);

  it('tide daemon (automatic, lab-a in maintenance) SIGKILLed at each step of its evacuation; each restart recovers, then plans afresh; the evacuation completes', async () => {
    await allOnFrom();
    await L().shapeLinks(SHAPE_MBIT);
    // the lab's configuration as a daemon's: automatic, short interval, its own store, no power
    // section (powering lab hosts off is another test's business)
    const storeFile = join(dir, 'daemon.sqlite');
    const base = JSON.parse(readFileSync(L().configFile, 'utf8')) as { hosts: Record<string, unknown>[] };
    const cfg = join(dir, 'daemon.json');
    writeFileSync(cfg, JSON.stringify({ ...base, hosts: base.hosts.map(({ power: _p, ...h }) => h), mode: 'automatic', intervalSec: 3, store: { path: storeFile } }, null, 2));
    {
      const s = openSqliteStore(storeFile);
      s.setHostMaintenance(FROM, true, { atMs: Date.now(), by: 'lab-crash test', reason: 'crash test' });
      s.close();
    }
    const daemon = (): ReturnType<typeof runChild> => runChild(['--config', cfg, 'daemon', '--poll-ms', '200', '--log-format', 'json'], BIN);
    const seen = new Set<string>();
    const kills: string[] = [];
    for (let round = 0; round < 4; round++) {
      // a migration the killed daemon started may still be finishing: wait until each guest has one active copy
      const settled = Date.now() + 120_000;
      let all = await Promise.all(GUESTS.map((vm) => copies(vm)));
      while (all.some((c) => c.length !== 1) && Date.now() < settled) {
        await new Promise((r) => setTimeout(r, 500));
        all = await Promise.all(GUESTS.map((vm) => copies(vm)));
      }
      if (all.every((c) => c.length === 1 && c[0]!.host === TO)) break;
      const d = daemon();
      let exited = false;
      void d.done.then(() => { exited = true; });
      // a step this daemon started (not one recovery settled): its intent is in the store
      let step: string | null = null;
      const t0 = Date.now();
      while (step === null && !exited && Date.now() - t0 < 120_000) {
        await new Promise((r) => setTimeout(r, 25));
        if (!existsSync(storeFile)) continue;
        const s = openSqliteStore(storeFile);
        try {
          const r = s.runningStepRuns().find((x) => !seen.has(`${x.planId}/${x.stepId}`));
          if (r) step = `${r.planId}/${r.stepId} ${r.kind} ${r.vm ?? ''}`;
          if (r) seen.add(`${r.planId}/${r.stepId}`);
        } finally {
          s.close();
        }
      }
      expect(step, `daemon ${round} started no step (exited: ${exited})`).not.toBeNull();
      await new Promise((r) => setTimeout(r, 1500));
      d.kill();
      const k = await d.done;
      expect(k.signal).toBe('SIGKILL');
      kills.push(step!);
      const recov = k.out.split('\n').filter((l) => l.includes('"recovery')).map((l) => (JSON.parse(l) as { msg: string }).msg);
      log(`daemon ${round}: killed 1.5 s into step ${step}; its recovery at start: ${recov.join(' | ') || '(nothing to recover)'}`);
      if (round > 0) expect(recov.length, 'the restarted daemon recovered the killed one\'s step').toBeGreaterThan(0);
      for (const vm of GUESTS) {
        const c = await copies(vm);
        log(`  ${vm}: ${JSON.stringify(c)}`);
      }
    }
    await L().unshapeLinks();
    // a last daemon recovers the last kill and finishes the evacuation; SIGTERM stops it
    const d = daemon();
    const t0 = Date.now();
    let done = false;
    while (!done && Date.now() - t0 < 180_000) {
      await new Promise((r) => setTimeout(r, 1000));
      const c = await Promise.all(GUESTS.map((vm) => copies(vm)));
      done = c.every((x) => x.length === 1 && x[0]!.host === TO && x[0]!.state === 'running');
    }
    d.kill('SIGTERM');
    const end = await d.done;
    const lastRecov = end.out.split('\n').filter((l) => l.includes('"recovery')).map((l) => (JSON.parse(l) as { msg: string }).msg);
    log(`last daemon: exit ${end.code}; its recovery at start: ${lastRecov.join(' | ')}; kills: ${kills.join('; ')}`);
    expect(lastRecov.length, 'the last daemon recovered the last kill').toBeGreaterThan(0);
    expect(done, 'every guest ends on lab-b, running').toBe(true);
    expect(end.code).toBe(0);
    expect(kills.length).toBeGreaterThanOrEqual(2);
    for (const vm of GUESTS) {
      const c = await copies(vm);
      expect(c, `${vm}: ${JSON.stringify(c)}`).toEqual([{ host: TO, state: 'running' }]);
      expect((await L().httpGet(L().vm(vm).probe, 10)).length, `${vm}'s service answers`).toBeGreaterThan(0);
    }
    const s = openSqliteStore(storeFile);
    try {
      expect(s.runningStepRuns()).toEqual([]);
      expect(s.unknownMigrations()).toEqual([]);
      const plans = s.listPlans({ limit: 100 });
      for (const p of plans) expect(['done', 'superseded', 'failed', 'expired', 'proposed']).toContain(p.status);
      expect(plans.filter((p) => p.status === 'superseded').length).toBe(kills.length);
      // every migrate step's stored state agrees with the history of where it ended: a
      // succeeded step's VM reached lab-b (and no step moves a VM back to lab-a)
      for (const p of plans) {
        for (const r of s.stepRuns(p.id)) if (r.kind === 'migrate') expect(r.to).toBe(TO);
      }
    } finally {
      s.close();
    }
  }, 900_000);
});
