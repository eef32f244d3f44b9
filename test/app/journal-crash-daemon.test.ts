// The daemon itself (createDaemon, automatic mode, on the simulated office at Monday 00:00: its
// first round consolidates — migrations, then power-offs) killed at each step of that round's
// plan, modelled in-process (test/helpers/crash-sim.ts: nothing the dead daemon awaited resumes,
// the world goes on). A new daemon on the same store file starts with its default crash
// recovery (openDaemon's onStart: recoverAtDaemonStart) and runs more rounds. Checked against
// the SimDriver: no VM lost, none twice, none paused; the killed plan superseded; no step left
// 'running', no power intent pending, nothing blocked.
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { recoverAtDaemonStart } from '../../src/app/journal.js';
import { createDaemon, type DaemonLog } from '../../src/daemon/daemon.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { officeScenario } from '../../src/sim/office.js';
import { openSqliteStore, type LockHolder } from '../../src/store/store.js';
import { simSettings } from '../daemon/helpers.js';
import { SimProcess } from '../helpers/crash-sim.js';

process.setMaxListeners(100);
const dir = mkdtempSync(join(tmpdir(), 'tide-journal-crash-daemon-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DEAD_HOLDER: LockHolder = { pid: 4_194_304 + 4343, host: hostname(), command: 'tide daemon (killed)', startedMs: 0 };
/** How long the killed daemon would have run (Monday 00:00 to 06:00: quiet, it consolidates). */
const RUN_MS = 6 * 3600_000;
const quiet: DaemonLog = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

/** The simulated office with its VMs spread round-robin over the four hosts (a night has much to consolidate). */
function world(clock: VirtualClock): SimDriver {
  const scenario = officeScenario({ hosts: 4, days: 2 });
  const placement = Object.fromEntries(scenario.vms.map((v, i) => [v.id, scenario.hosts[i % scenario.hosts.length]!.id]));
  return new SimDriver(scenario, clock, { placement });
}

/** Six hours of rounds, uninterrupted: the kinds of the steps the daemon starts, in order. */
async function stepsStarted(): Promise<{ kinds: string[] }> {
  const clock = new VirtualClock(0);
  const driver = world(clock);
  const store = openSqliteStore(':memory:');
  const started: string[] = [];
  const d = createDaemon({ clock, hypervisor: driver, power: driver, store, settings: simSettings('automatic'), log: quiet, pollMs: 0, observer: { onStepStart: (r) => { started.push(r.step.kind); } } });
  await clock.drive(d.run(RUN_MS));
  store.close();
  return { kinds: started };
}

describe('the daemon SIGKILLed at each step of its night consolidation (one plan per round), then restarted', async () => {
  const { kinds } = await stepsStarted();
  // the first six steps it starts, and its first power-off (later steps repeat these cases)
  const firstOff = kinds.indexOf('powerOff');
  const points: { k: number; at: 'mid' | 'intent' | 'effect' }[] = [
    ...kinds.slice(0, Math.min(6, kinds.length)).map((_, k) => ({ k, at: 'mid' as const })),
    // a power-off is instantaneous in the simulator: killed after its intent, or after the power driver did it
    ...(firstOff >= 0 ? [{ k: firstOff, at: 'intent' as const }, { k: firstOff, at: 'effect' as const }] : []),
  ];

  it('the consolidation has migrations and a power-off', () => {
    expect(kinds.filter((k) => k === 'migrate').length).toBeGreaterThanOrEqual(4);
    expect(firstOff).toBeGreaterThanOrEqual(0);
  });

  it.each(points)('killed at the step it started #$k ($at)', async ({ k, at }) => {
    const clock = new VirtualClock(0);
    const driver = world(clock);
    const vms = Object.keys(driver.placement()).sort();
    const storeFile = join(dir, `k${k}-${at}.sqlite`);
    const store1 = openSqliteStore(storeFile);
    const proc = new SimProcess();
    let n = 0;
    let startedAt: number | null = null;
    let killed: { id: number; kind: string } | null = null;
    proc.killAfter = (method) => at === 'effect' && startedAt !== null && (method === 'powerOff' || method === 'migrate');
    const d1 = createDaemon({
      clock: proc.clock(clock), hypervisor: proc.driver(driver), power: proc.driver(driver), store: store1, settings: simSettings('automatic'),
      log: quiet, pollMs: 0, lockHolder: DEAD_HOLDER,
      observer: {
        onStepStart: (r) => {
          if (n++ !== k) return;
          startedAt = clock.now();
          killed = { id: r.step.id, kind: r.step.kind };
          if (at === 'intent') proc.kill();
        },
      },
    });
    let ended = false;
    d1.run(RUN_MS).then(() => { ended = true; }, () => { ended = true; });
    while (!proc.dead) {
      if (ended) throw new Error(`the daemon ended before step #${k} started`);
      await clock.advance(250);
      if (at === 'mid' && startedAt !== null && clock.now() >= startedAt + 2000) proc.kill();
    }
    const row = store1.runningStepRuns().find((r) => r.stepId === killed!.id && r.kind === killed!.kind);
    expect(row, 'the killed step is stored as running').toBeDefined();
    const planId = row!.planId;
    const killedStep = `${planId}/${row!.stepId}`;
    // the world goes on: in-flight migrations finish
    await clock.advance(120_000);
    store1.close();

    const store2 = openSqliteStore(storeFile);
    try {
      const lines: string[] = [];
      const log: DaemonLog = { ...quiet, info: (_o, m) => { lines.push(m ?? ''); }, warn: (_o, m) => { lines.push(`WARN ${m ?? ''}`); } };
      const d2 = createDaemon({
        clock, hypervisor: driver, power: driver, store: store2, settings: simSettings('automatic'), log, pollMs: 0,
        onStart: async (ctx) => { await recoverAtDaemonStart(ctx); },
      });
      await clock.drive(d2.run(clock.now() + 3 * 300_000));
      expect(lines.some((l) => l.startsWith('crash recovery:'))).toBe(true);
      expect(lines.some((l) => l.startsWith(`plan ${killedStep.replace('/', ' step ')} `)), lines.join('\n')).toBe(true);
      // no step settled as unknown (those log as warnings; the lock takeover is one too)
      expect(lines.filter((l) => l.startsWith('WARN plan'))).toEqual([]);
      // the world: every VM exactly once, running
      const listed = await driver.listVms();
      expect(listed.map((v) => v.name).sort()).toEqual(vms);
      for (const v of listed) expect(v.state, v.name).toBe('running');
      // the journal: the killed plan superseded; nothing running, pending or blocked
      expect(store2.getPlan(planId!)!.status).toBe('superseded');
      expect(store2.runningStepRuns()).toEqual([]);
      expect(store2.powerActions({ pending: true })).toEqual([]);
      expect(store2.unknownMigrations()).toEqual([]);
      // a powered-off host holds no VM
      const power = driver.hostPower();
      for (const v of listed) expect(power[v.host], `${v.name} on ${v.host}`).toBe('on');
    } finally {
      store2.close();
    }
  });
});
