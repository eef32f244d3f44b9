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
      throw new DriverError('TIDE_MIGRATION_FAILED', `libvirt reported ${vm} migrated, but verification failed (${last})`, { vm, from: src.backend.config.name, to: ctx.to });
    }
    await env.clock.sleep(250);
  }
}
