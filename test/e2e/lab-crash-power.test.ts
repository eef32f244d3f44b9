/**
 * Crash safety with real power on the lab (`tide lab up --power`: an ipmi_sim BMC per host,
 * driven with ipmitool; powering a host off stops its libvirtd and any guest on it): a Tide
 * process executes a plan that evacuates lab-a (three live migrations to lab-b) and then powers
 * lab-a off (the power-off depends on the migrations), and is SIGKILLed
 *   - during the last migration (before the power-off started),
 *   - the moment the power-off's intent is in the store (at the power-off),
 *   - the moment the BMC has the off request (its agent logged it), the host going down — a
 *     fixed delay after the intent landed before the request on a loaded machine and after
 *     the whole power-off on an idle one (CI),
 *   - the moment lab-a's power agent reports it off, before the process recorded the outcome.
 * A new process recovers (recoverOnStart, as a starting daemon does). Checked with virsh and
 * the lab's power agent, not with Tide's own report: every guest active exactly once, running,
 * on lab-b, its service answering (nothing lost: a guest on a host that went off would be gone);
 * lab-a is off only if it holds no guest, or it is left on; the journal has no step running, no
 * power intent pending, no migration of unknown outcome, and the plan superseded.
 *
 * Both processes run Tide's sources transpiled (test/daemon/sim-world.ts transpiledSources), so
 * no build is needed. Needs root, the lab and the power packages: skipped with a printed reason
 * otherwise, a failure under TIDE_REQUIRE_LAB=1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RecoverReport } from '../../src/app/journal.js';
import type { Plan } from '../../src/core/plan/types.js';
import type { LabHostName } from '../../src/lab/index.js';
import { POWER_BINARIES } from '../../src/lab/power.js';
import { openSqliteStore } from '../../src/store/store.js';
import { transpiledSources } from '../daemon/sim-world.js';
import { bmcGate } from '../helpers/bmc.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, sharedLab, type TestLab } from '../helpers/lab.js';
import { expectGuestsRunOnce, expectMigrateStepsTrue, guestCopies, guestsBackOn, waitForStepIntent, type GuestCopy } from '../helpers/lab-guests.js';

const log = (m: string): void => { process.stderr.write(`[e2e crash-power] ${m}\n`); };
const FROM: LabHostName = 'lab-a';
const TO: LabHostName = 'lab-b';
const GUESTS = ['vm1', 'vm2', 'vm3'];
const SHAPE_MBIT = 150;
const POWER_OK = bmcGate('crash with power on the lab (tide lab up --power)', POWER_BINARIES);

const PLAN: Plan = {
  policy: 'lab-crash-power', time: 0, hosts: [], notMoved: [],
  steps: [
    ...GUESTS.map((vm, i) => ({ id: i + 1, kind: 'migrate' as const, vm, from: FROM, to: TO, memMiB: 128, deps: [], reason: `evacuate ${FROM}`, by: 'test' })),
    { id: 4, kind: 'powerOff' as const, host: FROM, deps: [1, 2, 3], reason: `${FROM} is empty`, by: 'test' },
  ],
};

/** Kill points: the step whose intent is watched for, and how long after it the SIGKILL comes. */
const POINTS = [
  { step: 3, afterMs: 1500, untilOff: false, atBmc: false, label: 'during the last migration (before the power-off)' },
  { step: 4, afterMs: 0, untilOff: false, atBmc: false, label: 'at the power-off\'s intent' },
  // the BMC has the off request (its agent logged it), the host is not off yet: a fixed delay
  // after the intent was either before the request (loaded machine) or after the host was off
  { step: 4, afterMs: 0, untilOff: false, atBmc: true, label: 'once the BMC has the off request' },
  // the host went off (its agent says so) before the process saw the outcome
  { step: 4, afterMs: 0, untilOff: true, atBmc: false, label: 'once lab-a is off, before the outcome is recorded' },
];

/** node CHILD LIB run CONFIG STORE PLAN | recover CONFIG STORE: the controller with the configuration's power driver. */
const CHILD_JS = (lib: string): string => `
const L = (m) => import(${JSON.stringify(`${lib}/`)} + m);
const { readFileSync } = await import('node:fs');
const { Controller } = await L('app/controller.js');
const { recoverOnStart, describeRecovery } = await L('app/journal.js');
const { loadConfig } = await L('config/load.js');
const { compilePolicy } = await L('core/policy.js');
const { createDriver } = await L('drivers/index.js');
const { createPowerDriver } = await L('drivers/power/index.js');
const { systemClock } = await L('executor/clock.js');
const { currentHolder } = await L('store/lock.js');
const { openSqliteStore } = await L('store/store.js');
const [cmd, configFile, storeFile, planFile] = process.argv.slice(2);
const config = loadConfig(configFile);
const hypervisor = createDriver(config);
const power = createPowerDriver(config.hosts, { clock: systemClock });
const store = openSqliteStore(storeFile);
const say = (m) => process.stderr.write('[child ' + process.pid + ' ' + cmd + '] ' + m + '\\n');
try {
  if (cmd === 'run') {
    const plan = JSON.parse(readFileSync(planFile, 'utf8'));
    const { mode, maxConcurrent, maxPerHost, ...migrate } = config.migration;
    const c = new Controller({
      hypervisor, power, clock: systemClock, store, policy: compilePolicy('tide'), mode: 'automatic',
      limits: { maxConcurrent: 1, maxPerHost: 1 }, migrate: { ...migrate, mode }, intervalSec: 10, bootTimeoutSec: 120,
      lockHolder: currentHolder('tide crash-power run'),
      observer: {
        onStepStart: (r) => say('step ' + r.step.id + ' ' + r.step.kind + ' started'),
        onStepEnd: (r) => say('step ' + r.step.id + ' ' + r.state + (r.error ? ' ' + r.error.code + ': ' + r.error.message : '')),
      },
    });
    const planId = store.savePlan(plan, { createdMs: Date.now(), mode: 'automatic', status: 'running' });
    const run = await c.execute(plan, planId);
    process.stdout.write(JSON.stringify({ planId, run: { succeeded: run.succeeded, failed: run.failed, skipped: run.skipped, cancelled: run.cancelled } }) + '\\n');
  } else {
    const report = await recoverOnStart({ store, hypervisor, power, clock: systemClock, settleMs: 180_000, pollMs: 500, lockHolder: currentHolder('tide crash-power recover') });
    for (const l of describeRecovery(report)) say(l);
    process.stdout.write(JSON.stringify(report) + '\\n');
  }
} finally {
  store.close();
  await hypervisor.close();
}
`;

const LIVE = new Set<ChildProcess>();

describeLab('SIGKILL of a Tide process around the power-off of an evacuated lab host, then recovery', () => {
  if (!POWER_OK) {
    it.skip('needs ipmi_sim, ipmitool and wakeonlan (the reason is printed above)', () => {});
    return;
  }
  let lab: TestLab | undefined;
  const L = (): TestLab => lab!;
  const dir = mkdtempSync(join(tmpdir(), 'tide-e2e-crash-power-'));
  const childFile = join(dir, 'child.mjs');

  const runChild = (args: string[]): { done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>; kill: () => void } => {
    const child = spawn(process.execPath, [childFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    LIVE.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => {
      child.on('close', (code, signal) => { LIVE.delete(child); resolve({ code, signal, out, err }); });
    });
    return { done, kill: () => child.kill('SIGKILL') };
  };

  /** A guest's active copies as virsh on each host that is on reports them (an off host's libvirt does not answer: its guests are gone). */
  const copies = (vm: string): Promise<GuestCopy[]> => guestCopies(L(), vm, [FROM, TO]);

  /** Both hosts on, every guest running on lab-a. */
  const reset = async (): Promise<void> => {
    for (const h of [FROM, TO]) if ((await L().powerStatus(h)).state !== 'on') await L().powerAction(h, 'on');
    for (const h of [FROM, TO]) await L().waitHostUp(h, 90_000);
    await guestsBackOn(L(), GUESTS, FROM, TO);
  };

  beforeAll(async () => {
    writeFileSync(childFile, CHILD_JS(await transpiledSources()));
    lab = await sharedLab({ vms: 3, placement: FROM, power: { method: 'ipmi', bootDelaySec: 2 } });
    for (const v of GUESTS) await lab.setDirty(v, 0).catch(() => { /* a fresh guest */ });
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    for (const c of LIVE) c.kill('SIGKILL');
    if (lab) {
      await lab.unshapeLinks().catch(() => { /* best effort */ });
      // leave both hosts on for the next user of the shared lab
      for (const h of lab.hostNames) if ((await lab.powerStatus(h).catch(() => null))?.state === 'off') await lab.powerAction(h, 'on').catch(() => {});
      for (const h of lab.hostNames) await lab.waitHostUp(h, 90_000).catch(() => {});
      await lab.down();
    }
    rmSync(dir, { recursive: true, force: true });
  }, LAB_HOOK_TIMEOUT_MS);

  it('the lab config the test runs with: ipmi power, migrations without auto-converge', () => {
    const cfg = L().config();
    expect(cfg.hosts.map((h) => h.power.kind)).toEqual(['ipmi', 'ipmi']);
    expect(cfg.migration.autoConverge).toBe(false);
  });

  it.each(POINTS)('killed $label: nothing lost, lab-a off only when empty, the journal true', async ({ step, afterMs, untilOff, atBmc }) => {
    await reset();
    const actionBefore = (await L().powerStatus(FROM)).lastAction ?? null;
    const storeFile = join(dir, `step${step}-${afterMs}${untilOff ? '-off' : ''}${atBmc ? '-bmc' : ''}.sqlite`);
    const planFile = join(dir, `plan-${step}-${afterMs}${untilOff ? '-off' : ''}${atBmc ? '-bmc' : ''}.json`);
    writeFileSync(planFile, JSON.stringify(PLAN));
    await L().shapeLinks(SHAPE_MBIT);
    const child = runChild(['run', L().configFile, storeFile, planFile]);
    let exited = false;
    void child.done.then(() => { exited = true; });
    const seenMs = await waitForStepIntent(storeFile, step, () => exited, { timeoutMs: 180_000, pollMs: 10 });
    if (seenMs === null) log(`child: ${(await child.done).err}`);
    expect(seenMs, `step ${step} never started (child exited: ${exited})`).not.toBeNull();
    if (afterMs > 0) await new Promise((r) => setTimeout(r, afterMs));
    if (atBmc) {
      // the agent logs 'soft src=ipmi: …' (ACPI off) or 'off src=ipmi: …' as the BMC takes the request
      const end = Date.now() + 120_000;
      let action = actionBefore;
      while ((action === actionBefore || !/^(soft|off) src=ipmi/.test(action ?? '')) && !exited && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 5));
        action = (await L().powerStatus(FROM)).lastAction ?? null;
      }
      log(`the BMC has the request: ${action}`);
      expect(action, 'the BMC never received the power-off').toMatch(/^(soft|off) src=ipmi/);
    }
    if (untilOff) {
      const end = Date.now() + 120_000;
      while ((await L().powerStatus(FROM)).state === 'on' && !exited && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      expect((await L().powerStatus(FROM)).state, 'lab-a went down while the process ran').not.toBe('on');
      const s = openSqliteStore(storeFile);
      try {
        expect(s.runningStepRuns().map((r) => r.stepId), 'the outcome was not recorded yet').toEqual([4]);
      } finally {
        s.close();
      }
    }
    child.kill();
    const killed = await child.done;
    expect(killed.signal).toBe('SIGKILL');
    expect(killed.out).toBe('');
    log(`step ${step}: killed ${Date.now() - seenMs!} ms after its intent; child said:\n${killed.err.trim()}`);
    await L().unshapeLinks();
    log(`right after the kill: lab-a ${(await L().powerStatus(FROM)).state}; ${(await Promise.all(GUESTS.map(async (vm) => `${vm} ${JSON.stringify(await copies(vm))}`))).join('; ')}`);

    const rec = runChild(['recover', L().configFile, storeFile]);
    const r = await rec.done;
    log(`recovery (rc ${r.code}):\n${r.err.trim()}`);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as RecoverReport;
    expect(report.code).toBe('recovered');
    // A migration the killed process started may still finish after the recovery: wait until each guest has one copy.
    const settle = Date.now() + 120_000;
    let all = await Promise.all(GUESTS.map((vm) => copies(vm)));
    while (all.some((c) => c.length !== 1) && Date.now() < settle) {
      await new Promise((res) => setTimeout(res, 500));
      all = await Promise.all(GUESTS.map((vm) => copies(vm)));
    }

    const powerA = (await L().powerStatus(FROM)).state;
    const where = await expectGuestsRunOnce(L(), GUESTS, all, ` (lab-a ${powerA})`);
    // lab-a is off only when it holds no guest (it was evacuated first), or it is left on
    if (powerA !== 'on') expect([...where.values()].filter((h) => h === FROM), `lab-a is ${powerA}`).toEqual([]);
    if (step < 4) expect(powerA, 'the power-off never started: lab-a stays on').toBe('on');
    if (untilOff) expect(powerA, 'lab-a went off: it stays off (it is empty)').not.toBe('on');

    const s = openSqliteStore(storeFile);
    try {
      const plan = s.listPlans({ limit: 1 })[0]!;
      expect(plan.status).toBe('superseded');
      expect(s.runningStepRuns()).toEqual([]);
      expect(s.powerActions({ pending: true })).toEqual([]);
      expect(s.unknownMigrations()).toEqual([]);
      const rows = s.stepRuns(plan.id);
      expectMigrateStepsTrue(rows, where, FROM, TO);
      // the power-off is 'succeeded' only if lab-a really is off
      for (const row of rows) if (row.kind === 'powerOff' && row.state === 'succeeded') expect(powerA).not.toBe('on');
      const off = report.steps.find((x) => x.kind === 'powerOff');
      log(`killed at step ${step} +${afterMs} ms: lab-a ${powerA}; recovery: ${report.steps.map((x) => `${x.stepId} ${x.kind} ${x.code}→${x.state}`).join(', ')}; power-off ${off ? `${off.code} (${off.reason})` : 'not started'}; plan ${plan.status}`);
    } finally {
      s.close();
    }
  }, 600_000);
});
