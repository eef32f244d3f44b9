// Recovery after a failed migration and reconcile, through HostBackendDriver.migrate() on a
// scriptable backend (test/helpers/scripted-backend.ts) and virtual time: every branch of the
// decision table in src/drivers/common/recovery.ts. The world records every state-changing
// call and every moment a VM ran on two hosts; each test asserts where the VM runs afterwards
// and that Tide never resumed a twin.
import { describe, expect, it } from 'vitest';
import { HostBackendDriver } from '../../src/drivers/common/engine.js';
import { DriverError, isDriverError } from '../../src/drivers/errors.js';
import type { MigrateOptions, MigrationResult } from '../../src/drivers/hypervisor.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { migrationJob, scriptedPair } from '../helpers/scripted-backend.js';

const VM = 'tvm';
const A = 'host-a';
const B = 'host-b';
const SETTLE_MS = 60_000;
/** VIR_DOMAIN_PAUSED_MIGRATION / _POSTCOPY / _POSTCOPY_FAILED, VIR_DOMAIN_RUNNING_MIGRATED / _POSTCOPY. */
const PAUSED_MIGRATION = 2;
const PAUSED_POSTCOPY = 12;
const PAUSED_POSTCOPY_FAILED = 13;
const RUNNING_MIGRATED = 2;
const RUNNING_POSTCOPY = 10;

function setup(): ReturnType<typeof scriptedPair> & { clock: VirtualClock; drv: HostBackendDriver } {
  const pair = scriptedPair();
  const clock = new VirtualClock(0);
  pair.world.set(A, VM, { state: 'running', reason: 1, persistent: true });
  const drv = new HostBackendDriver('scripted', [pair.a, pair.b], { clock, settleMs: SETTLE_MS, pollMs: 250 });
  return { ...pair, clock, drv };
}

type Env = ReturnType<typeof setup>;

/** migrate() on virtual time: the result, or the DriverError it rejected with. */
async function run(env: Env, opts: Partial<MigrateOptions> = {}): Promise<MigrationResult | DriverError> {
  const r = await env.clock.drive(env.drv.migrate(VM, B, { mode: 'live', ...opts }).catch((e: unknown) => e));
  if (r instanceof Error && !isDriverError(r)) throw r;
  return r as MigrationResult | DriverError;
}

function asError(r: MigrationResult | DriverError): DriverError {
  if (!isDriverError(r)) throw new Error(`expected a failure, got ${JSON.stringify(r)}`);
  return r;
}

const lost = (): DriverError => new DriverError('TIDE_MIGRATION_FAILED', 'connection to the peer lost during Finish');

/** Tide's own state-changing calls (not the script's): resume/destroy/undefine/start per host. */
const tideCalls = (env: Env): string[] => env.world.log.filter((l) => /^(resume|destroy|undefine|start) /.test(l));

describe('recovery: the target cannot be asked', () => {
  it('target runs the VM but stops answering at switch-over → source stays paused, TIDE_MIGRATION_UNKNOWN naming both hosts', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      await env.clock.sleep(3000); // pre-copy
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      env.world.set(B, VM, { state: 'running', reason: RUNNING_MIGRATED });
      env.b.reachable = false; // the Finish reply never arrives
      throw lost();
    };
    const e = asError(await run(env));
    expect(e.code).toBe('TIDE_MIGRATION_UNKNOWN');
    expect(e.message).toContain(A);
    expect(e.message).toContain(B);
    expect(e.detail).toMatchObject({ vm: VM, from: A, to: B, vmOn: null, sourceState: 'paused', outcome: 'unknown' });
    // it kept asking for the whole settle window before giving up, on virtual time
    expect(env.clock.now()).toBeGreaterThanOrEqual(3000 + SETTLE_MS);
    expect(env.world.copy(A, VM)?.state).toBe('paused');
    expect(env.world.runningOn(VM)).toEqual([B]);
    expect(tideCalls(env)).toEqual([]);
    expect(env.world.violations).toEqual([]);
    // a paused copy with an unknown migration is not resumed on request either
    const r = await env.clock.drive(env.drv.resume(VM).catch((x: unknown) => x));
    expect(r).toMatchObject({ code: 'TIDE_MIGRATION_UNKNOWN' });
    expect(env.world.copy(A, VM)?.state).toBe('paused');
  });

  it('reconcile while the target still does not answer does nothing; once it answers, it finishes the move', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      env.world.set(B, VM, { state: 'running', reason: RUNNING_MIGRATED });
      env.b.reachable = false;
      throw lost();
    };
    expect(asError(await run(env)).code).toBe('TIDE_MIGRATION_UNKNOWN');
    const still = await env.clock.drive(env.drv.reconcile(VM));
    expect(still).toMatchObject({ vm: VM, from: A, to: B, outcome: 'unknown', actions: [], vmOn: null });
    expect(env.world.copy(A, VM)?.state).toBe('paused');

    env.b.reachable = true;
    const done = await env.clock.drive(env.drv.reconcile(VM));
    expect(done).toMatchObject({ outcome: 'target', vmOn: B });
    expect(done.actions).toEqual([`destroyed the superseded paused copy of ${VM} on ${A}`, `removed the stale definition of ${VM} on ${A}`]);
    expect(env.world.runningOn(VM)).toEqual([B]);
    // the stale source definition is gone too: the VM is defined once, persistently, on B
    expect(env.world.copy(A, VM)).toBeUndefined();
    expect(env.world.copy(B, VM)).toMatchObject({ state: 'running', persistent: true });
    expect(tideCalls(env)).toEqual([`destroy ${A} ${VM}`, `undefine ${A} ${VM}`]);
    expect(env.world.violations).toEqual([]);
    // so start() no longer finds it "defined on several hosts": it is running on B
    await expect(env.clock.drive(env.drv.start(VM))).rejects.toMatchObject({ code: 'TIDE_VM_STATE' });
    // settled: the record is gone
    await expect(env.clock.drive(env.drv.reconcile(VM))).rejects.toMatchObject({ code: 'TIDE_INVALID_ARGUMENT' });
  });

  it('the target runs the VM transiently: the superseded source copy is destroyed but its definition, the only one, is kept', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      env.world.set(B, VM, { state: 'running', reason: RUNNING_MIGRATED, persistent: false });
      env.b.reachable = false;
      throw lost();
    };
    expect(asError(await run(env)).code).toBe('TIDE_MIGRATION_UNKNOWN');
    env.b.reachable = true;
    const done = await env.clock.drive(env.drv.reconcile(VM));
    expect(done).toMatchObject({ outcome: 'target', vmOn: B });
    expect(tideCalls(env)).toEqual([`destroy ${A} ${VM}`]);
    expect(env.world.copy(A, VM)).toMatchObject({ state: 'shutoff', persistent: true });
    expect(env.world.violations).toEqual([]);
  });

  it('the target held only a paused incoming copy: reconcile destroys it, confirms it gone, then resumes the source', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      env.world.set(B, VM, { state: 'paused', reason: PAUSED_MIGRATION, persistent: false });
      env.b.reachable = false;
      throw lost();
    };
    expect(asError(await run(env)).code).toBe('TIDE_MIGRATION_UNKNOWN');
    expect(env.world.runningOn(VM)).toEqual([]);
    env.b.reachable = true;
    const done = await env.clock.drive(env.drv.reconcile(VM));
    expect(done).toMatchObject({ outcome: 'source', vmOn: A });
    expect(tideCalls(env)).toEqual([`destroy ${B} ${VM}`, `resume ${A} ${VM}`]);
    expect(env.world.copy(B, VM)).toBeUndefined();
    expect(env.world.runningOn(VM)).toEqual([A]);
    expect(env.world.violations).toEqual([]);
  });

  it('the target answers again within the settle window: recovery finishes by itself', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      env.world.set(B, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      env.b.reachable = false;
      void env.clock.sleep(20_000).then(() => { env.b.reachable = true; });
      throw lost();
    };
    const e = asError(await run(env));
    expect(e.code).toBe('TIDE_MIGRATION_FAILED');
    expect(e.detail).toMatchObject({ vmOn: A, outcome: 'source' });
    expect(e.message).toContain(`keeps running on ${A}`);
    expect(env.clock.now()).toBeGreaterThanOrEqual(20_000);
    expect(env.clock.now()).toBeLessThan(SETTLE_MS);
    expect(tideCalls(env)).toEqual([`destroy ${B} ${VM}`, `resume ${A} ${VM}`]);
    expect(env.world.runningOn(VM)).toEqual([A]);
    expect(env.world.violations).toEqual([]);
  });

  it('libvirt resumed the source itself and the target does not answer: the VM keeps running on the source, at once', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      await env.clock.sleep(2000);
      env.b.reachable = false; // destination libvirtd killed: the source daemon aborts and keeps running
      throw lost();
    };
    const e = asError(await run(env));
    expect(e.code).toBe('TIDE_MIGRATION_FAILED');
    expect(e.detail).toMatchObject({ vmOn: A, outcome: 'source', sourceState: 'running' });
    expect(e.message).toContain(`keeps running on ${A}`);
    expect(env.clock.now()).toBeLessThan(5000);
    expect(tideCalls(env)).toEqual([]);
    expect(env.world.runningOn(VM)).toEqual([A]);
  });

  it('the stream completed, libvirt resumed the source, the target does not answer (seen in the lab with libvirt 9.0) → the source is paused again, UNKNOWN; reconcile after the target resumed its copy leaves one', async () => {
    const env = setup();
    const done = migrationJob('out', { data_total: 100, data_processed: 100, data_remaining: 0 });
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { job: done });
      await env.clock.sleep(1000); // the poll sees the stream complete
      env.world.set(B, VM, { state: 'paused', reason: PAUSED_MIGRATION, persistent: false });
      env.b.reachable = false; // its daemon stopped before the finish step
      await env.clock.sleep(30_000); // the source daemon's keepalive gives up…
      env.world.set(A, VM, { state: 'running', reason: 6, job: null }); // …and libvirt resumes the source
      throw new DriverError('TIDE_MIGRATION_FAILED', 'internal error: client socket is closed');
    };
    const e = asError(await run(env));
    expect(e.code).toBe('TIDE_MIGRATION_UNKNOWN');
    expect(e.detail).toMatchObject({ vmOn: null, sourceState: 'paused', outcome: 'unknown' });
    expect(env.world.log.filter((l) => l.startsWith('suspend'))).toEqual([`suspend ${A} ${VM}`]);
    expect(env.world.runningOn(VM)).toEqual([]);
    // the target's daemon wakes up and its finish step resumes its copy: still one running
    env.b.reachable = true;
    env.world.set(B, VM, { state: 'running', reason: RUNNING_MIGRATED });
    expect(env.world.runningOn(VM)).toEqual([B]);
    const rec = await env.clock.drive(env.drv.reconcile(VM));
    expect(rec).toMatchObject({ outcome: 'target', vmOn: B });
    expect(tideCalls(env)).toEqual([`destroy ${A} ${VM}`]);
    expect(env.world.runningOn(VM)).toEqual([B]);
    expect(env.world.violations).toEqual([]);
  });

  it('the stream completed as far as the failed job\'s statistics tell (no poll saw it) → same: the source is paused', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { state: 'running', reason: 6, lastJob: { type: 4, fields: { data_total: 100, data_processed: 100, data_remaining: 0 } } });
      env.b.reachable = false;
      throw new DriverError('TIDE_MIGRATION_FAILED', 'internal error: client socket is closed');
    };
    const e = asError(await run(env));
    expect(e.code).toBe('TIDE_MIGRATION_UNKNOWN');
    expect(env.world.copy(A, VM)?.state).toBe('paused');
    expect(env.world.runningOn(VM)).toEqual([]);
  });

  it('suspend mode: the source Tide paused stays paused when the target cannot be asked', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(B, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      env.b.reachable = false;
      throw lost();
    };
    const e = asError(await run(env, { mode: 'suspend' }));
    expect(e.code).toBe('TIDE_MIGRATION_UNKNOWN');
    expect(env.world.copy(A, VM)?.state).toBe('paused');
    expect(tideCalls(env)).toEqual([]);
    expect(env.world.log).toContain(`suspend ${A} ${VM}`);
  });
});

describe('recovery: the target answered', () => {
  it('no copy on the target → the paused source is resumed', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      throw new DriverError('TIDE_MIGRATION_FAILED', 'target refused the incoming migration');
    };
    const e = asError(await run(env));
    expect(e.code).toBe('TIDE_MIGRATION_FAILED');
    expect(e.detail).toMatchObject({ vmOn: A, outcome: 'source' });
    expect(tideCalls(env)).toEqual([`resume ${A} ${VM}`]);
    expect(env.world.runningOn(VM)).toEqual([A]);
    expect(env.world.violations).toEqual([]);
  });

  it('a paused copy on the target → destroyed first, then the source resumed', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      env.world.set(B, VM, { state: 'paused', reason: PAUSED_MIGRATION, persistent: false });
      throw lost();
    };
    const e = asError(await run(env));
    expect(e.detail).toMatchObject({ vmOn: A, outcome: 'source' });
    expect(tideCalls(env)).toEqual([`destroy ${B} ${VM}`, `resume ${A} ${VM}`]);
    expect(env.world.runningOn(VM)).toEqual([A]);
    expect(env.world.violations).toEqual([]);
  });

  it('a paused target copy whose destroy fails → the source is not resumed', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      env.world.set(B, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      throw lost();
    };
    const destroy = env.b.destroy.bind(env.b);
    env.b.destroy = async () => { throw new DriverError('TIDE_POWER_FAILED', 'destroy refused (scripted)'); };
    const e = asError(await run(env));
    expect(e.code).toBe('TIDE_MIGRATION_UNKNOWN');
    expect(env.world.copy(A, VM)?.state).toBe('paused');
    expect(tideCalls(env)).toEqual([]);
    env.b.destroy = destroy;
    expect(await env.clock.drive(env.drv.reconcile(VM))).toMatchObject({ outcome: 'source', vmOn: A });
    expect(env.world.runningOn(VM)).toEqual([A]);
  });

  it('the target runs the VM (pre-copy finished, the reply was lost) → the source is never resumed; the move succeeds', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      env.world.set(B, VM, { state: 'running', reason: RUNNING_MIGRATED });
      throw lost();
    };
    const r = await run(env);
    expect(isDriverError(r)).toBe(false);
    expect(r).toMatchObject({ vm: VM, from: A, to: B });
    // the superseded copy is destroyed, then its stale definition removed (B's is persistent)
    expect(tideCalls(env)).toEqual([`destroy ${A} ${VM}`, `undefine ${A} ${VM}`]);
    expect(env.world.copy(A, VM)).toBeUndefined();
    expect(env.world.runningOn(VM)).toEqual([B]);
    expect(env.world.violations).toEqual([]);
  });

  it('both active: the source runs and the target holds a paused leftover → the leftover is destroyed', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(B, VM, { state: 'paused', reason: PAUSED_MIGRATION, persistent: false });
      throw new DriverError('TIDE_MIGRATION_FAILED', 'migration cancelled');
    };
    const e = asError(await run(env));
    expect(e.detail).toMatchObject({ vmOn: A, outcome: 'source' });
    expect(tideCalls(env)).toEqual([`destroy ${B} ${VM}`]);
    expect(env.world.runningOn(VM)).toEqual([A]);
    expect(env.world.violations).toEqual([]);
  });

  it('both running (a twin libvirt made) → the source copy is paused, nothing resumed or destroyed, reported', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(B, VM, { state: 'running', reason: RUNNING_MIGRATED });
      throw lost();
    };
    const e = asError(await run(env));
    expect(e.code).toBe('TIDE_MIGRATION_FAILED');
    expect(e.detail).toMatchObject({ vmOn: null, outcome: 'both', sourceState: 'paused' });
    expect(e.message).toMatch(/ran on both/);
    expect(tideCalls(env)).toEqual([]);
    expect(env.world.log).toContain(`suspend ${A} ${VM}`);
    expect(env.world.runningOn(VM)).toEqual([B]);
    // the only twin is the one the script made, none after a call of Tide's
    expect(env.world.violations).toEqual([`${VM} running on ${A} and ${B} after set ${B}`]);
  });
});

describe('recovery: post-copy', () => {
  /** A live migration with post-copy after 1 pass; `afterSwitch` scripts what follows the switch. */
  function postCopyRun(env: Env, afterSwitch: () => Promise<void>): void {
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { job: migrationJob('out', { memory_iteration: 2, data_total: 100, data_remaining: 50, data_processed: 50 }) });
      await env.clock.sleep(2000); // the poll sees pass 2 and asks for post-copy
      await afterSwitch();
    };
    env.a.script.startPostCopy = async () => {
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_POSTCOPY });
      env.world.set(B, VM, { state: 'running', reason: RUNNING_POSTCOPY });
    };
  }

  it('post-copy failed on both sides → both copies left paused (memory split), the source never resumed', async () => {
    const env = setup();
    postCopyRun(env, async () => {
      expect(env.world.log).toContain(`postcopy ${A} ${VM}`);
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_POSTCOPY_FAILED, job: null });
      env.world.set(B, VM, { state: 'paused', reason: PAUSED_POSTCOPY_FAILED });
      throw new DriverError('TIDE_MIGRATION_FAILED', 'post-copy failed');
    });
    const e = asError(await run(env, { postCopyAfterIterations: 1 }));
    expect(e.code).toBe('TIDE_MIGRATION_FAILED');
    expect(e.detail).toMatchObject({ vmOn: null, outcome: 'split' });
    expect(tideCalls(env)).toEqual([]);
    expect(env.world.runningOn(VM)).toEqual([]);
    expect(env.world.violations).toEqual([]);
  });

  it('post-copy began and the target stops answering → UNKNOWN, the source never resumed, the target keeps the VM', async () => {
    const env = setup();
    postCopyRun(env, async () => {
      env.world.set(A, VM, { job: null });
      env.b.reachable = false;
      throw lost();
    });
    const e = asError(await run(env, { postCopyAfterIterations: 1 }));
    expect(e.code).toBe('TIDE_MIGRATION_UNKNOWN');
    expect(e.detail).toMatchObject({ vmOn: null, sourceState: 'paused' });
    expect(tideCalls(env)).toEqual([]);
    expect(env.world.runningOn(VM)).toEqual([B]);
  });

  it('post-copy was requested and the backend reports no reasons (virsh): the target has no copy → the source stays paused', async () => {
    const env = setup();
    postCopyRun(env, async () => {
      env.world.set(A, VM, { state: 'paused', reason: 0, job: null });
      env.world.set(B, VM, null);
      throw lost();
    });
    const e = asError(await run(env, { postCopyAfterIterations: 1 }));
    expect(e.code).toBe('TIDE_MIGRATION_UNKNOWN');
    expect(e.message).toMatch(/post-copy/);
    expect(tideCalls(env)).toEqual([]);
    expect(env.world.copy(A, VM)?.state).toBe('paused');
  });

  it('post-copy completed although the control connection broke → success, nothing touched', async () => {
    const env = setup();
    postCopyRun(env, async () => {
      env.world.set(A, VM, null); // confirm: source undefined
      throw lost();
    });
    const r = await run(env, { postCopyAfterIterations: 1 });
    expect(r).toMatchObject({ vm: VM, to: B });
    expect(tideCalls(env)).toEqual([]);
    expect(env.world.runningOn(VM)).toEqual([B]);
  });
});

describe('recovery: switch-over in flight', () => {
  /** The control connection breaks while both daemons are still completing the job. */
  function inFlight(env: Env, then: () => void, afterMs = 8000): void {
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_MIGRATION, job: migrationJob('out', { data_remaining: 0 }) });
      env.world.set(B, VM, { state: 'paused', reason: PAUSED_MIGRATION, persistent: false, job: migrationJob('in') });
      void env.clock.sleep(afterMs).then(then);
      throw lost();
    };
  }

  it('it completes: recovery waits for both jobs, sees the target run and the source gone → success', async () => {
    const env = setup();
    inFlight(env, () => {
      env.world.set(B, VM, { state: 'running', reason: RUNNING_MIGRATED, job: null, persistent: true });
      env.world.set(A, VM, null);
    });
    const r = await run(env);
    expect(r).toMatchObject({ vm: VM, to: B });
    expect(env.clock.now()).toBeGreaterThanOrEqual(8000);
    expect(tideCalls(env)).toEqual([]);
    expect(env.world.runningOn(VM)).toEqual([B]);
    expect(env.world.violations).toEqual([]);
  });

  it('the target runs but the source copy is never confirmed away → it is destroyed, never resumed', async () => {
    const env = setup();
    inFlight(env, () => {
      env.world.set(B, VM, { state: 'running', reason: RUNNING_MIGRATED, job: null });
      env.world.set(A, VM, { job: null });
    });
    const r = await run(env);
    expect(r).toMatchObject({ vm: VM, to: B });
    expect(tideCalls(env)).toEqual([`destroy ${A} ${VM}`]);
    expect(env.world.runningOn(VM)).toEqual([B]);
    expect(env.world.violations).toEqual([]);
  });

  it('the incoming job never ends → nothing is touched while it runs: UNKNOWN; reconcile finishes once libvirt cleaned up', async () => {
    const env = setup();
    inFlight(env, () => { env.world.set(A, VM, { job: null }); }, 1000);
    const e = asError(await run(env));
    expect(e.code).toBe('TIDE_MIGRATION_UNKNOWN');
    expect(env.clock.now()).toBeGreaterThanOrEqual(SETTLE_MS);
    expect(tideCalls(env)).toEqual([]);
    expect(env.world.runningOn(VM)).toEqual([]);
    // still running: reconcile waits for nothing and touches nothing
    expect(await env.clock.drive(env.drv.reconcile(VM))).toMatchObject({ outcome: 'unknown', actions: [] });
    // the target's daemon gives up on the incoming migration and removes its copy
    env.world.set(B, VM, null);
    expect(await env.clock.drive(env.drv.reconcile(VM))).toMatchObject({ outcome: 'source', vmOn: A, actions: [`resumed ${VM} on ${A}`] });
    expect(env.world.runningOn(VM)).toEqual([A]);
    expect(env.world.violations).toEqual([]);
  });
});

describe('reconcile without a record', () => {
  it('needs the two hosts; a source paused by the user is not resumed, one paused for the migration is', async () => {
    const env = setup();
    await expect(env.clock.drive(env.drv.reconcile(VM))).rejects.toMatchObject({ code: 'TIDE_INVALID_ARGUMENT' });
    env.world.set(A, VM, { state: 'paused', reason: 1 });
    expect(await env.clock.drive(env.drv.reconcile(VM, { from: A, to: B }))).toMatchObject({ outcome: 'source', actions: [] });
    expect(env.world.copy(A, VM)?.state).toBe('paused');
    env.world.set(A, VM, { state: 'paused', reason: PAUSED_MIGRATION });
    expect(await env.clock.drive(env.drv.reconcile(VM, { from: A, to: B }))).toMatchObject({ outcome: 'source', vmOn: A, actions: [`resumed ${VM} on ${A}`] });
    expect(env.world.runningOn(VM)).toEqual([A]);
    await expect(env.clock.drive(env.drv.reconcile(VM, { from: A, to: 'host-z' }))).rejects.toMatchObject({ code: 'TIDE_NO_SUCH_HOST' });
  });
});

describe('lifecycle calls never make a twin', () => {
  it('a paused target copy that ran (paused for an I/O error) is never destroyed to resume the source', async () => {
    const env = setup();
    env.a.script.migrate = async () => {
      env.world.set(A, VM, { state: 'paused', reason: PAUSED_MIGRATION });
      env.world.set(B, VM, { state: 'paused', reason: 5 });
      throw lost();
    };
    const e = asError(await run(env));
    expect(e.code).toBe('TIDE_MIGRATION_UNKNOWN');
    expect(tideCalls(env)).toEqual([]);
    expect(env.world.copy(A, VM)?.state).toBe('paused');
    expect(env.world.copy(B, VM)?.state).toBe('paused');
  });

  it('start refuses while a host that may run the VM does not answer; resume refuses a VM active on two hosts', async () => {
    const env = setup();
    env.world.set(A, VM, { state: 'shutoff' });
    env.b.reachable = false;
    await expect(env.clock.drive(env.drv.start(VM))).rejects.toMatchObject({ code: 'TIDE_HOST_UNREACHABLE' });
    expect(tideCalls(env)).toEqual([]);
    env.b.reachable = true;
    env.world.set(A, VM, { state: 'paused', reason: 1 });
    env.world.set(B, VM, { state: 'running', reason: RUNNING_MIGRATED });
    await expect(env.clock.drive(env.drv.resume(VM))).rejects.toMatchObject({ code: 'TIDE_VM_STATE' });
    expect(env.world.runningOn(VM)).toEqual([B]);
    // the running copy is the one listed
    expect((await env.clock.drive(env.drv.listVms())).find((v) => v.name === VM)).toMatchObject({ host: B, state: 'running' });
  });
});
