/**
 * Offline moves: shut the guest down (ACPI; `forceOff` after `shutdownTimeoutSec`), move the
 * definition (VIR_MIGRATE_OFFLINE), start it on the target if it was running. A failure before
 * the definition moved restarts the VM on its source; a failed start on the target moves the
 * definition back and starts it there. Only one copy ever exists: the VM is shut off while its
 * definition moves.
 */
import { VIR_MIGRATE } from '../../libvirt/constants.js';
import { DriverError, isDriverError } from '../errors.js';
import type { MigrationResult } from '../hypervisor.js';
import type { MigrateCall } from './backend.js';
import { MigrationState } from './live.js';
import { asDriverError, verify, type EngineEnv, type RunContext } from './run.js';

export async function runOffline(env: EngineEnv, ctx: RunContext): Promise<MigrationResult> {
  const { vm, opts, src, dst } = ctx;
  const from = src.backend.config.name;
  const wasActive = src.dom.active;
  const st = new MigrationState(vm, ctx.t0, opts.onProgress);
  st.emit();
  let downSince: number | null = null;
  if (wasActive) {
    downSince = performance.now();
    await shutdownForMove(env, ctx);
  }
  const abortedNow = (): DriverError | null => ctx.signal?.aborted
    ? new DriverError('TIDE_ABORTED', `offline migration of ${vm} aborted (it stays on ${from}${wasActive ? ', restarted' : ''})`, { vm, vmOn: from })
    : null;
  const restartOnSource = async (): Promise<void> => {
    if (wasActive) await src.backend.start(vm).catch(() => { /* reported by the caller's message */ });
  };
  const aborted = abortedNow();
  if (aborted) {
    await restartOnSource();
    throw aborted;
  }
  const call: MigrateCall = { dest: dst.config, flags: VIR_MIGRATE.PEER2PEER | VIR_MIGRATE.OFFLINE | VIR_MIGRATE.PERSIST_DEST | VIR_MIGRATE.UNDEFINE_SOURCE, params: {} };
  try {
    await src.backend.migrate(vm, call);
  } catch (e) {
    await restartOnSource();
    const de = asDriverError(e, 'TIDE_MIGRATION_FAILED', `moving the definition of ${vm}`);
    throw new DriverError('TIDE_MIGRATION_FAILED', `offline migration of ${vm} to ${ctx.to} failed: ${de.message}; ${vm} stays on ${from}${wasActive ? ' (restarted)' : ''}`,
      { ...de.detail, vm, from, to: ctx.to, vmOn: from }, { cause: e });
  }
  if (wasActive) {
    st.phase = 'completing';
    st.emit();
    try {
      await dst.start(vm);
    } catch (e) {
      // move it back where it ran, so it runs somewhere
      let back = false;
      try {
        await dst.migrate(vm, { dest: src.backend.config, flags: call.flags, params: {} });
        await src.backend.start(vm);
        back = true;
      } catch { /* reported */ }
      const de = asDriverError(e, 'TIDE_POWER_FAILED', `starting ${vm} on ${ctx.to}`);
      throw new DriverError('TIDE_MIGRATION_FAILED', `${vm} could not be started on ${ctx.to} (${de.message}); ${back ? `moved back to ${from} and restarted` : `its definition is on ${ctx.to}, shut off`}`,
        { vm, from, to: ctx.to, vmOn: back ? from : null }, { cause: e });
    }
  }
  await verify(env, ctx, wasActive ? 'running' : 'shutoff-defined');
  return {
    vm, from, to: ctx.to, mode: 'offline',
    totalMs: Math.round(performance.now() - ctx.t0),
    downtimeMs: downSince === null ? null : Math.round(performance.now() - downSince),
    bytes: null, iterations: null, postCopy: false,
  };
}

/** Offline mode: ACPI shutdown, then wait (or force) until the domain is off. */
async function shutdownForMove(env: EngineEnv, ctx: RunContext): Promise<void> {
  const { vm, opts, src } = ctx;
  const b = src.backend;
  const limitMs = (opts.shutdownTimeoutSec ?? 120) * 1000;
  if (limitMs > 0) {
    try {
      await b.shutdown(vm);
    } catch (e) {
      if (!opts.forceOff) throw asDriverError(e, 'TIDE_POWER_FAILED', `shutting ${vm} down`);
    }
    const end = env.clock.now() + limitMs;
    while (env.clock.now() < end) {
      if (ctx.signal?.aborted) {
        throw new DriverError('TIDE_ABORTED', `offline migration of ${vm} aborted while waiting for the guest to shut down (the shutdown request may still complete)`, { vm });
      }
      const d = await b.domain(vm).catch(() => null);
      if (d && !d.active) return;
      await env.clock.sleep(250);
    }
  }
  if (!opts.forceOff) {
    throw new DriverError('TIDE_TIMEOUT', `${vm} did not shut down within ${opts.shutdownTimeoutSec ?? 120} s (does the guest handle ACPI?); it keeps running on ${b.config.name}; use forceOff to power it off`, { vm, vmOn: b.config.name });
  }
  await b.destroy(vm).catch((e: unknown) => { if (!(isDriverError(e) && e.code === 'TIDE_VM_STATE')) throw e; });
  const end = env.clock.now() + 30_000;
  while (env.clock.now() < end) {
    const d = await b.domain(vm).catch(() => null);
    if (d && !d.active) return;
    await env.clock.sleep(100);
  }
  throw new DriverError('TIDE_POWER_FAILED', `${vm} did not power off`, { vm });
}
