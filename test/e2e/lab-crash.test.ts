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
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RecoverReport } from '../../src/app/journal.js';
import type { Plan } from '../../src/core/plan/types.js';
import type { LabHostName } from '../../src/lab/index.js';
import { openSqliteStore } from '../../src/store/store.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, migrate, sharedLab, type TestLab } from '../helpers/lab.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const CHILD = join(ROOT, 'test/helpers/crash-child.mjs');
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

function runChild(args: string[]): { done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>; kill: () => void; pid: number | undefined } {
  const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, out, err }));
  });
  return { done, kill: () => child.kill('SIGKILL'), pid: child.pid };
}

describeLab('SIGKILL of a Tide process at each step of a 3-migration plan on the lab, then recovery', () => {
  let lab: TestLab | undefined;
  const L = (): TestLab => lab!;
  const dir = mkdtempSync(join(tmpdir(), 'tide-e2e-crash-'));

  /** Each guest's copies, as virsh on both hosts reports them (active ones only). */
  const copies = async (vm: string): Promise<{ host: LabHostName; state: string }[]> => {
    const out: { host: LabHostName; state: string }[] = [];
    for (const h of [FROM, TO]) {
      const r = await L().virsh(h, ['domstate', '--domain', vm]);
      const st = r.stdout.trim();
      if (r.code === 0 && st !== 'shut off') out.push({ host: h, state: st });
    }
    return out;
  };

  const allOnFrom = async (): Promise<void> => {
    for (const vm of GUESTS) {
      const c = await copies(vm);
      if (c.length === 1 && c[0]!.host === FROM && c[0]!.state === 'running') continue;
      if (c.length === 1 && c[0]!.host === TO && c[0]!.state === 'running') {
        const r = await migrate(L(), vm, FROM);
        expect(r.code, `${vm} → ${FROM}: ${r.stderr}`).toBe(0);
        continue;
      }
      throw new Error(`${vm} is not in a state this test starts from: ${JSON.stringify(c)}`);
    }
  };

  beforeAll(async () => {
    expect(existsSync(join(ROOT, 'dist/app/journal.js')), 'dist/ missing or old: run npm run build').toBe(true);
    lab = await sharedLab({ vms: 3 });
    for (const v of GUESTS) await lab.setDirty(v, 0).catch(() => { /* a fresh guest */ });
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
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
    const t0 = Date.now();
    const child = runChild(['run', L().configFile, storeFile, planFile, mode]);
    // watch the journal for the step's intent, then SIGKILL
    let seenMs: number | null = null;
    let exited = false;
    void child.done.then(() => { exited = true; });
    while (seenMs === null && !exited && Date.now() - t0 < 120_000) {
      await new Promise((r) => setTimeout(r, 20));
      if (!existsSync(storeFile)) continue;
      const s = openSqliteStore(storeFile);
      try {
        if (s.runningStepRuns().some((r) => r.stepId === step)) seenMs = Date.now();
      } finally {
        s.close();
      }
    }
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
    const where = new Map<string, LabHostName>();
    for (const vm of GUESTS) {
      const c = await copies(vm);
      expect(c, `${vm}: ${JSON.stringify(c)}`).toHaveLength(1);
      expect(c[0]!.state, `${vm} on ${c[0]!.host}`).toBe('running');
      where.set(vm, c[0]!.host);
      const body = await L().httpGet(L().vm(vm).probe, 10);
      expect(body.length, `${vm}'s service answers`).toBeGreaterThan(0);
    }
    // the journal: true to virsh; the plan superseded; nothing left running
    const s = openSqliteStore(storeFile);
    try {
      const plan = s.listPlans({ limit: 1 })[0]!;
      expect(plan.status).toBe('superseded');
      const rows = s.stepRuns(plan.id);
      expect(rows.map((x) => x.stepId)).toEqual([1, 2, 3]);
      for (const row of rows) {
        const vm = row.vm!;
        expect(row.state, `step ${row.stepId}`).not.toBe('running');
        expect(where.get(vm), `step ${row.stepId} (${vm}) is ${row.state}`).toBe(row.state === 'succeeded' ? TO : FROM);
      }
      expect(s.unknownMigrations()).toEqual([]);
      log(`step ${step}: recovery ${st.code} (${st.reason}); plan ${plan.id}: ${plan.statusReason}`);
    } finally {
      s.close();
    }
  }, 300_000);
});
