// A live migration that libvirt completes, after which the guest stops on the target (seen in
// the lab under TCG: a guest kernel panic right after the switch-over; panic=-1 and
// on_reboot=destroy make libvirt stop QEMU with SIGTERM, reason "shutdown"; the source was
// already undefined by UNDEFINE_SOURCE). Tide must say what happened and where the VM's only
// definition is, and touch nothing: no restart, no undefine, no destroy. Virtual time.
import { describe, expect, it } from 'vitest';
import { HostBackendDriver } from '../../src/drivers/common/engine.js';
import { isDriverError, type DriverError } from '../../src/drivers/errors.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { scriptedPair } from '../helpers/scripted-backend.js';

const VM = 'tvm';
const A = 'host-a';
const B = 'host-b';
/** VIR_DOMAIN_SHUTOFF_SHUTDOWN / _CRASHED. */
const SHUTOFF_SHUTDOWN = 1;
const SHUTOFF_CRASHED = 3;

function setup(): ReturnType<typeof scriptedPair> & { clock: VirtualClock; drv: HostBackendDriver } {
  const pair = scriptedPair();
  const clock = new VirtualClock(0);
  pair.world.set(A, VM, { state: 'running', reason: 1, persistent: true });
  const drv = new HostBackendDriver('scripted', [pair.a, pair.b], { clock, settleMs: 60_000, pollMs: 250 });
  return { ...pair, clock, drv };
}

const tideCalls = (env: ReturnType<typeof setup>): string[] => env.world.log.filter((l) => /^(resume|destroy|undefine|start|define) /.test(l));

async function migrateFails(env: ReturnType<typeof setup>): Promise<DriverError> {
  const r = await env.clock.drive(env.drv.migrate(VM, B, { mode: 'live' }).then((x) => x, (e: unknown) => e));
  if (!isDriverError(r)) throw new Error(`expected a DriverError, got ${String(r instanceof Error ? r.stack : JSON.stringify(r))}`);
  return r;
}

describe('verification: the guest stops on the target right after a completed move', () => {
  for (const [reason, text] of [[SHUTOFF_SHUTDOWN, 'shutdown'], [SHUTOFF_CRASHED, 'crashed']] as const) {
    it(`shut off (reason ${text}) with the source undefined → TIDE_MIGRATION_FAILED naming the target as the VM's only definition; nothing touched`, async () => {
      const env = setup();
      env.a.script.migrate = async () => {
        await env.clock.sleep(2000);
        env.world.set(A, VM, null); // UNDEFINE_SOURCE
        env.world.set(B, VM, { state: 'shutoff', reason, persistent: true }); // panicked on arrival
      };
      const e = await migrateFails(env);
      expect(e.code).toBe('TIDE_MIGRATION_FAILED');
      expect(e.message).toContain(`was migrated to ${B}`);
      expect(e.message).toContain(`reason ${text}`);
      expect(e.message).toContain(`its only definition, on ${B}, is kept`);
      expect(e.detail).toMatchObject({ vm: VM, from: A, to: B, outcome: 'target', vmOn: B, targetState: 'shutoff', targetReason: reason });
      // fail closed: the definition stays, nothing is started, undefined or destroyed anywhere
      expect(tideCalls(env)).toEqual([]);
      expect(env.world.copy(B, VM)).toMatchObject({ state: 'shutoff', persistent: true });
      expect(env.world.copy(A, VM)).toBeUndefined();
      expect(env.world.violations).toEqual([]);
    });
  }

  it('a target that is not there at all keeps the generic message (no claim that the move completed)', async () => {
    const env = setup();
    env.a.script.migrate = async () => { env.world.set(A, VM, null); };
    const e = await migrateFails(env);
    expect(e.code).toBe('TIDE_MIGRATION_FAILED');
    expect(e.message).toContain('verification failed (target: no such VM, source: gone)');
    expect(e.detail).not.toHaveProperty('vmOn');
  });
});
