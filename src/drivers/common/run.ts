/**
 * What the parts of the migration engine share: the environment (injected clock, polling and
 * settle intervals), one migration's context, and the final verification.
 */
import type { Clock } from '../../core/clock.js';
import { DriverError, isDriverError, type DriverErrorCode } from '../errors.js';
import type { MigrateOptions, PreflightCheck, VmState } from '../hypervisor.js';
import type { DomainFacts, HostBackend } from './backend.js';

export interface EngineEnv {
  /** Every wait and deadline of the engine runs on this clock (virtual in tests). */
  clock: Clock;
  /** Job-stats polling interval during a migration, ms. */
  pollMs: number;
  /** How long recovery waits for jobs to settle and hosts to answer after a failure, ms. */
  settleMs: number;
  /** Between looks during recovery, ms. */
  recoverPollMs: number;
}

export interface Located {
  backend: HostBackend;
  dom: DomainFacts;
}

export interface RunContext {
  vm: string;
  to: string;
  opts: MigrateOptions;
  signal: AbortSignal | undefined;
  /** performance.now() at the start (durations are measured, not clocked). */
  t0: number;
  src: Located;
  dst: HostBackend;
  checks: PreflightCheck[];
}

export function asDriverError(e: unknown, fallback: DriverErrorCode, context: string): DriverError {
  if (isDriverError(e)) return e;
  return new DriverError(fallback, `${context}: ${(e as Error)?.message ?? String(e)}`, undefined, { cause: e });
}

/** Succeeds once `vm` is active on the target and not on the source (retries for 10 s). */
export async function verify(env: EngineEnv, ctx: RunContext, expect: VmState | 'shutoff-defined'): Promise<void> {
  const { vm, src, dst } = ctx;
  const end = env.clock.now() + 10_000;
  let last = '';
  for (;;) {
    const [d, s] = await Promise.all([
      dst.domain(vm).catch((e: unknown) => { last = (e as Error).message; return undefined; }),
      src.backend.domain(vm).catch(() => null),
    ]);
    const onTarget = expect === 'shutoff-defined' ? d?.persistent === true && !d.active : d?.active === true;
    const offSource = !s || (!s.active && (expect !== 'shutoff-defined' || !s.persistent));
    if (onTarget && offSource) return;
    last = `target: ${d === undefined ? `unknown (${last})` : d === null ? 'no such VM' : d.state}, source: ${s ? s.state : 'gone'}`;
    if (env.clock.now() > end) {
      const from = src.backend.config.name;
      if (expect !== 'shutoff-defined' && d && !d.active && !s) throw stoppedAfterMove(vm, from, ctx.to, d);
      throw new DriverError('TIDE_MIGRATION_FAILED', `libvirt reported ${vm} migrated, but verification failed (${last})`, { vm, from, to: ctx.to });
    }
    await env.clock.sleep(250);
  }
}

/** VIR_DOMAIN_SHUTOFF_* reasons, for messages. */
const SHUTOFF_REASONS = ['unknown', 'shutdown', 'destroyed', 'crashed', 'migrated', 'saved', 'failed', 'from snapshot', 'daemon'];

/**
 * The move completed (libvirt removed the source copy) but the copy on the target stopped
 * right after it: the guest shut itself down or crashed there (seen in the lab under TCG: a
 * guest kernel panic just after the switch-over, which panic=-1 + on_reboot=destroy turn into a
 * shut-off domain, libvirt stopping QEMU with SIGTERM, reason "shutdown"). The target's
 * definition is the VM's only one: it is kept and Tide does not restart it (the domain's own
 * on_poweroff/on_reboot/on_crash policy stopped it, and a fresh boot is the operator's call).
 */
function stoppedAfterMove(vm: string, from: string, to: string, d: DomainFacts): DriverError {
  const why = d.state === 'shutoff' ? `shut off, reason ${SHUTOFF_REASONS[d.reason] ?? d.reason}` : d.state;
  return new DriverError('TIDE_MIGRATION_FAILED',
    `${vm} was migrated to ${to} (libvirt completed the move and removed it from ${from}) but stopped on ${to} right after (${why}): the guest shut itself down or crashed there (check its console); ${d.persistent ? `its only definition, on ${to}, is kept` : `it was transient, so no definition remains`}; Tide did not restart it`,
    { vm, from, to, outcome: 'target', vmOn: to, sourceState: null, targetState: d.state, targetReason: d.reason, persistent: d.persistent });
}
