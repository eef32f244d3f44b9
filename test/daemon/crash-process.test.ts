/**
 * Crash test with real processes (issue 7): the daemon — a `node` process running Tide's daemon
 * code (src/ transpiled; test/daemon/sim-world.ts) in automatic mode on a file-backed SQLite
 * store — is SIGKILLed at each step of a multi-VM plan (its first round at Monday 00:00
 * consolidates the office: migrations, then power-offs), while the simulated office runs in a
 * separate world process that outlives it (a migration in flight completes). A new daemon
 * process on the same store and world recovers at start and runs a round; then, checked
 * against the world and the journal:
 *   - no VM lost (the same set), none duplicated (each listed by exactly one host's
 *     hypervisor), none paused or shut off; no VM on a host that is not on;
 *   - the killed plan completed ('done') or was superseded; no step left 'running', no power
 *     intent pending, no migration of unknown outcome;
 *   - the restarted daemon stopped with SIGTERM exits 0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/store.js';
import { startSimDaemon, startWorld, transpiledSources, type DaemonProc, type World } from './sim-world.js';

/** Scaled time: 1 wall second is SPEED simulated seconds (a round every 300/SPEED s). */
const SPEED = 20;
const tmp = mkdtempSync(join(tmpdir(), 'tide-crash-process-'));
let lib = '';
const worlds: World[] = [];
const daemons: DaemonProc[] = [];
beforeAll(async () => { lib = await transpiledSources(); }, 120_000);
afterAll(async () => {
  for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  for (const w of worlds) await w.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function until<T>(what: string, f: () => T | undefined | false, ms = 60_000, raw?: () => string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${raw ? `\n${raw().slice(-4000)}` : ''}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function setup(name: string, replyDelayMs = 0): Promise<{ world: World; storeFile: string; wall0: number }> {
  const wall0 = Date.now();
  const world = await startWorld(lib, { sock: join(tmp, `${name}.sock`), wall0, speed: SPEED, replyDelayMs });
  worlds.push(world);
  return { world, storeFile: join(tmp, `${name}.sqlite`), wall0 };
}

const steps = (d: DaemonProc): Record<string, unknown>[] => d.lines().filter((l) => l.event === 'step-start');

describe('the daemon process SIGKILLed at each step of a multi-VM plan, restarted', () => {
  let planSteps: { kind: string; vm?: string; host?: string }[] = [];

  it('uninterrupted, the first round runs a plan of several migrations and a power-off', async () => {
    const { world, storeFile, wall0 } = await setup('full');
    const d = startSimDaemon(lib, { sock: world.sock, storeFile, wall0, speed: SPEED });
    daemons.push(d);
    const round = await until('the first round', () => d.lines().find((l) => l.event === 'round'), 120_000, d.raw);
    d.child.kill('SIGTERM');
    expect(await d.exit).toBe(0);
    planSteps = steps(d).map((l) => ({ kind: String(l.kind), ...(l.vm ? { vm: String(l.vm) } : {}), ...(l.host ? { host: String(l.host) } : {}) }));
    expect(round.planId).toBe(1);
    expect(planSteps.filter((s) => s.kind === 'migrate').length).toBeGreaterThanOrEqual(2);
    expect(planSteps.some((s) => s.kind === 'powerOff')).toBe(true);
    const st = await world.state();
    expect(st.vms.every((v) => v.state === 'running')).toBe(true);
  }, 180_000);

  // One case per step of that plan: SIGKILL right after the daemon logs the step's start; and
  // one more at the first power-off after its effect: the world powered the host off, its
  // answer (delayed 2 s) had not reached the daemon.
  it('killed at each step: nothing lost, duplicated or paused; the plan done or superseded', async () => {
    expect(planSteps.length, 'the uninterrupted run found the plan').toBeGreaterThan(0);
    const report: string[] = [];
    const firstOff = planSteps.findIndex((s) => s.kind === 'powerOff');
    const cases = [...planSteps.map((_, k) => ({ k, effect: false })), { k: firstOff, effect: true }];
    for (const { k, effect } of cases) {
      const { world, storeFile, wall0 } = await setup(`k${k}${effect ? '-effect' : ''}`, effect ? 2000 : 0);
      const vms = (await world.state()).vms.map((v) => v.name).sort();
      const first = startSimDaemon(lib, { sock: world.sock, storeFile, wall0, speed: SPEED });
      daemons.push(first);
      const started = await until(`step #${k} to start`, () => steps(first)[k] ?? (first.child.exitCode !== null ? (() => { throw new Error(first.raw()); })() : undefined), 120_000, first.raw);
      if (effect) {
        const host = String(started.host);
        const end = Date.now() + 60_000;
        while ((await world.state()).power[host] !== 'off') if (Date.now() > end) throw new Error(`${host} never went off:\n${first.raw()}`);
        expect(first.lines().some((l) => l.event === 'power' && l.host === host), 'the daemon did not see the power-off done').toBe(false);
      }
      first.child.kill('SIGKILL');
      await first.exit;
      const s1 = openSqliteStore(storeFile);
      let planId: number;
      let running: string[];
      try {
        running = s1.runningStepRuns().map((r) => `${r.planId}/${r.stepId} ${r.kind}`);
        planId = s1.runningStepRuns()[0]?.planId ?? s1.listPlans({ limit: 1 })[0]!.id;
      } finally {
        s1.close();
      }
      // The world goes on for a moment (a migration in flight completes or is still running at the restart).
      await new Promise((r) => setTimeout(r, 100));

      const second = startSimDaemon(lib, { sock: world.sock, storeFile, wall0, speed: SPEED });
      daemons.push(second);
      await until('a round of the restarted daemon', () => second.lines().some((l) => l.event === 'round'), 120_000, second.raw);
      second.child.kill('SIGTERM');
      expect(await second.exit, second.raw()).toBe(0);

      const st = await world.state();
      const where = `killed at step #${k}${effect ? ' after its effect' : ''} (${String(started.kind)} ${String(started.vm ?? started.host)}; running then: ${running.join(', ')})`;
      // the world: every VM once, running, on a host that is on
      expect(st.vms.map((v) => v.name).sort(), where).toEqual(vms);
      expect(Object.values(st.domains).flat().sort(), `${where}: each VM on exactly one host`).toEqual(vms);
      for (const v of st.vms) {
        expect(v.state, `${where}: ${v.name}`).toBe('running');
        expect(st.power[v.host], `${where}: ${v.name} on ${v.host}`).toBe('on');
      }
      // the journal
      const s2 = openSqliteStore(storeFile);
      try {
        const status = s2.getPlan(planId)!.status;
        expect(['done', 'superseded'], `${where}: plan ${planId} is ${status}`).toContain(status);
        expect(s2.runningStepRuns(), where).toEqual([]);
        expect(s2.powerActions({ pending: true }), where).toEqual([]);
        expect(s2.unknownMigrations(), where).toEqual([]);
        if (effect) expect(second.lines().some((l) => l.event === 'recovery-step' && l.kind === 'powerOff' && l.state === 'succeeded'), `${where}: the recovery found the power-off done`).toBe(true);
        report.push(`#${k}${effect ? ' (after its effect)' : ''} ${String(started.kind)} ${String(started.vm ?? started.host)}: plan ${planId} ${status}; recovery: ${second.lines().filter((l) => l.event === 'recovery-step').map((l) => `${String(l.code)}→${String(l.state)}`).join(', ') || 'none'}`);
      } finally {
        s2.close();
      }
      await world.stop();
    }
    process.stderr.write(`crash-process: ${report.join('\n  ')}\n`);
  }, 600_000);
});
