/**
 * Live and suspend moves: one managed peer-to-peer migration with progress reports, the
 * post-copy switch, max downtime, abort and timeout (all waits on the injected clock), then
 * recovery (recovery.ts) when libvirt reports a failure.
 *
 *   live     VIR_MIGRATE_LIVE [+AUTO_CONVERGE] [+POSTCOPY, switched on after N pre-copy
 *            passes] [+NON_SHARED_DISK] [+UNSAFE]; bandwidth cap as a parameter, max downtime
 *            set once the job runs. downtimeMs = libvirt's figure for the switch-over.
 *   suspend  pause the VM, migrate it paused (its memory state goes over the migration stream,
 *            so no shared path for a save file is needed), resume it on the target.
 *            downtimeMs = Tide's measurement from pause to resume.
 */
import type { Clock } from '../../core/clock.js';
import { VIR_MIGRATE } from '../../libvirt/constants.js';
import { DriverError, type DriverErrorCode } from '../errors.js';
import type { MigrationMode, MigrationProgress, MigrationResult, VmState } from '../hypervisor.js';
import { listenAddressOf, type HostBackend, type JobFacts, type MigrateCall } from './backend.js';
import { recoverMigration, type RecoveryResult } from './recovery.js';
import { asDriverError, verify, type EngineEnv, type RunContext } from './run.js';

/** A migration whose outcome was unknown when it failed: what reconcile needs to finish it. */
export interface PendingMigration {
  vm: string;
  from: string;
  to: string;
  wasState: VmState;
  postCopy: boolean;
  switchOver: boolean;
}

/** By VM name. */
export type PendingMigrations = Map<string, PendingMigration>;

export function migrateCall(ctx: RunContext, mode: MigrationMode): MigrateCall {
  const o = ctx.opts;
  const dest = ctx.dst.config;
  let flags = VIR_MIGRATE.PEER2PEER | VIR_MIGRATE.ABORT_ON_ERROR;
  if (ctx.src.dom.persistent) flags |= VIR_MIGRATE.PERSIST_DEST | VIR_MIGRATE.UNDEFINE_SOURCE;
  if (mode === 'live') flags |= VIR_MIGRATE.LIVE;
  if (mode === 'suspend') flags |= VIR_MIGRATE.PAUSED;
  if (mode === 'live' && o.autoConverge) flags |= VIR_MIGRATE.AUTO_CONVERGE;
  if (mode === 'live' && (o.postCopyAfterIterations ?? 0) > 0) flags |= VIR_MIGRATE.POSTCOPY;
  if (o.copyStorage) flags |= VIR_MIGRATE.NON_SHARED_DISK;
  if (o.unsafe) flags |= VIR_MIGRATE.UNSAFE;
  const params: MigrateCall['params'] = {};
  if (dest.migrationAddress) params.migrate_uri = dest.migrationAddress;
  const listen = listenAddressOf(dest.migrationAddress);
  if (listen) params.listen_address = listen;
  if (o.bandwidthMiBps !== undefined) {
    params.bandwidth = Math.max(1, Math.round(o.bandwidthMiBps));
    if (flags & VIR_MIGRATE.POSTCOPY) params['bandwidth.postcopy'] = params.bandwidth;
  }
  return { dest, flags, params };
}

/** Live and suspend modes: one P2P migration with progress, post-copy switch and abort. */
export async function runMigration(env: EngineEnv, ctx: RunContext, mode: 'live' | 'suspend', pending: PendingMigrations): Promise<MigrationResult> {
  const { vm, opts, src, dst } = ctx;
  const from = src.backend.config.name;
  const wasState = src.dom.state;
  const postCopyAfter = mode === 'live' ? opts.postCopyAfterIterations ?? 0 : 0;
  const st = new MigrationState(vm, ctx.t0, opts.onProgress);
  let pausedAt: number | null = null;
  if (mode === 'suspend' && wasState === 'running') {
    pausedAt = performance.now();
    try {
      await src.backend.suspend(vm);
    } catch (e) {
      throw asDriverError(e, 'TIDE_MIGRATION_FAILED', `suspending ${vm} on ${from}`);
    }
  }
  const startPostCopy = (): void => {
    if (postCopyAfter <= 0 || st.postCopyRequested || st.settled) return;
    if (st.iteration <= postCopyAfter) return;
    st.postCopyRequested = st.postCopyAttempted = true;
    src.backend.startPostCopy(vm).then(() => {
      st.postCopy = true;
      st.phase = 'postcopy';
      st.emit();
    }, (e: unknown) => {
      st.postCopyRequested = false; // not yet possible (still setting up): retried on the next pass
      st.notes.push(`post-copy switch refused: ${(e as Error).message}`);
    });
  };
  let unwatch: (() => Promise<void>) | null = null;
  if (src.backend.watchMigration) {
    unwatch = await src.backend.watchMigration(vm, {
      iteration: (n) => {
        st.iteration = Math.max(st.iteration, n);
        if (!st.postCopy && st.phase === 'preparing') st.phase = 'precopy';
        st.emit();
        startPostCopy();
      },
      completed: (job) => { st.completedJob = job; st.noteStream(job); },
    }).catch(() => null);
  }
  const call = migrateCall(ctx, mode);
  st.emit();
  const migration = src.backend.migrate(vm, call);
  migration.catch(() => { /* handled below */ });

  // abort / timeout → abortJob on the source (the RPC itself cannot be cancelled usefully)
  const abortLoop = async (): Promise<void> => {
    while (!st.settled) {
      if (st.postCopy) {
        st.notes.push('abort refused: the migration is in post-copy (the VM already runs on the target)');
        return;
      }
      try {
        await src.backend.abortJob(vm);
        return;
      } catch {
        await env.clock.sleep(200); // no job yet (still starting): try again
      }
    }
  };
  const requestAbort = (why: 'aborted' | 'timeout'): void => {
    if (st.abortReason || st.settled) return;
    st.abortReason = why;
    void abortLoop();
  };
  const onAbort = (): void => requestAbort('aborted');
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  if (ctx.signal?.aborted) requestAbort('aborted');
  const timerStop = new AbortController();
  if (opts.timeoutSec !== undefined) {
    env.clock.sleep(opts.timeoutSec * 1000, timerStop.signal).then(() => requestAbort('timeout'), () => { /* settled first */ });
  }

  // progress from job stats (and post-copy / max downtime once the job runs)
  let downtimeSet = opts.maxDowntimeMs === undefined || mode !== 'live';
  const poll = (async (): Promise<void> => {
    while (!st.settled) {
      await st.wait(env.clock, env.pollMs);
      if (st.settled) return;
      const job = await src.backend.jobStats(vm).catch(() => null);
      if (st.settled || !job || job.type === 0) continue;
      if (!downtimeSet) {
        downtimeSet = true;
        src.backend.setMaxDowntime(vm, opts.maxDowntimeMs!).catch((e: unknown) => st.notes.push(`max downtime not set: ${(e as Error).message}`));
      }
      st.update(job);
      startPostCopy();
      st.emit();
    }
  })();

  let failure: unknown = null;
  try {
    await migration;
  } catch (e) {
    failure = e;
  } finally {
    st.settle();
    ctx.signal?.removeEventListener('abort', onAbort);
    timerStop.abort();
    await poll;
  }
  try {
    if (failure !== null) {
      // libvirt keeps the failed job's statistics: did the stream complete before it failed?
      const last = await src.backend.jobStats(vm, true).catch(() => null);
      if (last) st.noteStream(last);
      const rec = await recoverMigration({
        vm, src: src.backend, dst, wasState, postCopy: st.postCopy || st.postCopyAttempted, switchOver: st.streamDone,
        clock: env.clock, settleMs: env.settleMs, pollMs: env.recoverPollMs,
      });
      st.notes.push(...rec.actions);
      if (rec.outcome !== 'target') throw failureError(ctx, st, failure, rec, wasState, pending);
      st.notes.push(`the migration call failed (${(failure as Error).message}) but ${vm} completed on ${ctx.to}`);
    }
    await verify(env, ctx, mode === 'suspend' ? 'running' : wasState);
    let downtimeMs: number | null;
    if (mode === 'suspend') {
      // recovery may have resumed it already
      const onTarget = wasState === 'running' ? await dst.domain(vm).catch(() => null) : undefined;
      if (onTarget === null || onTarget?.state === 'paused') {
        try {
          await dst.resume(vm);
        } catch (e) {
          throw asDriverError(e, 'TIDE_MIGRATION_FAILED', `${vm} moved to ${ctx.to} but could not be resumed there`);
        }
      }
      downtimeMs = pausedAt === null ? null : Math.round(performance.now() - pausedAt);
    } else downtimeMs = null;
    const job = await completedJob(env, st, dst, src.backend, vm);
    const totalMs = Math.round(performance.now() - ctx.t0);
    return {
      vm, from, to: ctx.to, mode, totalMs,
      downtimeMs: downtimeMs ?? job?.fields.downtime ?? null,
      bytes: job?.fields.data_processed ?? null,
      iterations: job?.fields.memory_iteration ?? (st.iteration || null),
      postCopy: st.postCopy,
    };
  } finally {
    if (unwatch) await unwatch().catch(() => { /* connection gone */ });
  }
}

/** Final job statistics: the job-completed event, else the target's completed job. */
async function completedJob(env: EngineEnv, st: MigrationState, dst: HostBackend, src: HostBackend, vm: string): Promise<JobFacts | null> {
  for (let i = 0; i < 4 && !st.completedJob && src.watchMigration; i++) await env.clock.sleep(50);
  if (st.completedJob) return st.completedJob;
  return (await dst.jobStats(vm, true).catch(() => null)) ?? null;
}

/** Mutable state of one running migration, and its progress reports. */
export class MigrationState {
  phase: MigrationProgress['phase'] = 'preparing';
  iteration = 0;
  total = 0;
  processed = 0;
  remaining = 0;
  postCopy = false;
  postCopyRequested = false;
  /** A post-copy switch was ever sent: it may have happened even if the reply said otherwise. */
  postCopyAttempted = false;
  /** The source's job once reported no data remaining: the switch-over may have happened. */
  streamDone = false;
  settled = false;
  abortReason: 'aborted' | 'timeout' | null = null;
  completedJob: JobFacts | null = null;
  readonly notes: string[] = [];
  private wake: AbortController | null = null;

  constructor(readonly vm: string, readonly t0: number, readonly onProgress?: (p: MigrationProgress) => void) {}

  /** Records whether `job` says the memory stream completed (nothing left to send). */
  noteStream(job: JobFacts): void {
    const f = job.fields;
    if ((f.data_total ?? 0) > 0 && (f.data_processed ?? 0) > 0 && f.data_remaining === 0) this.streamDone = true;
  }

  update(job: JobFacts): void {
    this.noteStream(job);
    const f = job.fields;
    if (f.data_total !== undefined) this.total = f.data_total;
    if (f.data_processed !== undefined) this.processed = f.data_processed;
    if (f.data_remaining !== undefined) this.remaining = f.data_remaining;
    if (f.memory_iteration !== undefined) this.iteration = Math.max(this.iteration, f.memory_iteration);
    if (this.postCopy) this.phase = 'postcopy';
    else if (this.total > 0 && this.remaining === 0 && this.processed > 0) this.phase = 'completing';
    else if (this.total > 0 || this.iteration > 0) this.phase = 'precopy';
  }

  emit(): void {
    if (!this.onProgress || this.settled) return;
    try {
      this.onProgress({
        vm: this.vm, phase: this.phase, iteration: this.iteration, dataTotalBytes: this.total, dataProcessedBytes: this.processed,
        dataRemainingBytes: this.remaining, elapsedMs: Math.round(performance.now() - this.t0),
      });
    } catch { /* a progress callback must not break the migration */ }
  }

  /** Sleeps `ms` on `clock`, or less once the migration settled. */
  async wait(clock: Clock, ms: number): Promise<void> {
    if (this.settled) return;
    const wake = new AbortController();
    this.wake = wake;
    await clock.sleep(ms, wake.signal).catch(() => { /* woken */ });
    if (this.wake === wake) this.wake = null;
  }

  settle(): void {
    this.settled = true;
    this.wake?.abort();
  }
}

/** The error migrate() rejects with once recovery said where the VM is (never 'target'). */
function failureError(ctx: RunContext, st: MigrationState, failure: unknown, rec: RecoveryResult, wasState: VmState, pending: PendingMigrations): DriverError {
  const { vm, to } = ctx;
  const from = ctx.src.backend.config.name;
  const de = asDriverError(failure, 'TIDE_MIGRATION_FAILED', `migrating ${vm}`);
  const why = st.abortReason === 'aborted' ? 'aborted' : st.abortReason === 'timeout' ? `timed out after ${ctx.opts.timeoutSec} s` : de.message;
  const detail = {
    ...de.detail, vm, from, to, outcome: rec.outcome, reason: rec.reason, actions: rec.actions,
    sourceState: rec.sourceState, targetState: rec.targetState, notes: st.notes,
  };
  if (rec.outcome === 'unknown') {
    pending.set(vm, { vm, from, to, wasState, postCopy: st.postCopy || st.postCopyAttempted, switchOver: st.streamDone });
    return new DriverError('TIDE_MIGRATION_UNKNOWN',
      `migration of ${vm} from ${from} to ${to} failed (${why}) and where it runs is unknown: ${rec.reason}. ${rec.actions.length ? `Tide ${rec.actions.join('; ')}; nothing else` : 'Nothing'} was done (no copy is resumed while ${to} cannot be asked); reconcile ${vm} once ${from} and ${to} both answer`,
      { ...detail, vmOn: null }, { cause: failure });
  }
  pending.delete(vm);
  if (rec.outcome === 'source') {
    const code: DriverErrorCode = st.abortReason === 'aborted' ? 'TIDE_ABORTED'
      : st.abortReason === 'timeout' ? 'TIDE_TIMEOUT'
        : de.code === 'TIDE_NO_SUCH_VM' || de.code === 'TIDE_VM_STATE' || de.code === 'TIDE_PREFLIGHT_FAILED' || de.code === 'TIDE_UNSUPPORTED' ? de.code : 'TIDE_MIGRATION_FAILED';
    const where = rec.sourceState === 'running' ? `${vm} keeps running on ${from}` : `${vm} stays ${rec.sourceState ?? 'defined'} on ${from}`;
    return new DriverError(code, `migration of ${vm} from ${from} to ${to} failed: ${why}; ${where} (${rec.reason})`, { ...detail, vmOn: from }, { cause: failure });
  }
  // both, split, none: nothing Tide may fix by itself
  return new DriverError('TIDE_MIGRATION_FAILED', `migration of ${vm} from ${from} to ${to} failed: ${why}; ${rec.reason}`, { ...detail, vmOn: null }, { cause: failure });
}
