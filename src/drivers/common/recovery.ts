/**
 * Recovery after a failed migration, and reconciliation of one whose outcome was unknown.
 *
 * The rule (issue 6): never let a VM run twice. A paused source is resumed only when the target
 * is positively known not to run the VM: the target answered and has no active copy, or its
 * copy was paused (it never ran guest code) and we destroyed it and a fresh look confirmed it
 * gone. libvirt leaves the source paused exactly when the outcome on the target is unknown, so
 * when the target cannot be asked nothing is touched and the outcome is `unknown`
 * (TIDE_MIGRATION_UNKNOWN); `reconcile` applies the same table later, once the target answers.
 *
 * `decideRecovery` is the whole decision table, a pure function of one observation of both
 * hosts. `recoverMigration` observes, acts on at most one host, and observes again, until the
 * decision needs no action (or the settle deadline passes): every action is checked by the next
 * observation, never assumed. Actions only ever resume a copy when no other copy is active,
 * pause a copy while another may run, destroy a copy that is superseded, or undefine a shut-off
 * source definition once the target runs the VM persistently; nothing here ever starts a second
 * copy.
 */
import type { Clock } from '../../core/clock.js';
import type { ReconcileResult, RecoveryOutcome, VmState } from '../hypervisor.js';
import type { DomainFacts, HostBackend } from './backend.js';

/** VIR_DOMAIN_RUNNING_* / VIR_DOMAIN_PAUSED_* reasons that prove post-copy began. */
const RUNNING_POSTCOPY = new Set([10, 11]);
const PAUSED_POSTCOPY = new Set([12, 13]);
/** VIR_DOMAIN_PAUSED_MIGRATION: libvirt paused the source for the switch-over; also the state
 *  of an incoming copy that was never resumed ("paused (migrating)", seen in the lab). */
const PAUSED_MIGRATION = 2;
/** Paused reasons of a target copy that never ran guest code: incoming (2), or not reported
 *  (0: the virsh backend's dominfo has no reason). Any other reason (user, I/O error…) means the
 *  copy may have run, and it is never destroyed. */
const NEVER_RAN = new Set([0, PAUSED_MIGRATION]);

/** One host's answer about the VM: reachable with its copy (or none), or not reachable. */
export type CopyView =
  | { reachable: false; reason: string }
  | { reachable: true; dom: DomainFacts | null; jobActive: boolean };

export interface RecoveryFacts {
  vm: string;
  from: string;
  to: string;
  /** State before the migration; null when unknown (reconcile without a record). */
  wasState: VmState | null;
  /** Post-copy may have started (switch requested or done, from the migration run). */
  postCopy: boolean;
  /**
   * The memory stream may have completed (the source's job reported no data remaining): the
   * target may hold a complete copy that its daemon resumes once it gets to libvirt's finish
   * step. libvirt 9.0 resumes the source when that step fails, even though the target may
   * still resume its copy later (shown in the lab: both ran).
   */
  switchOver: boolean;
  source: CopyView;
  target: CopyView;
}

/** Defined with the driver contract (hypervisor.ts); re-exported for the engine's parts. */
export type { ReconcileResult, RecoveryOutcome };

export type RecoveryAction =
  | 'none'
  /** A migration job still runs on a host: look again later. */
  | 'wait'
  | 'resume-source'
  /** The source runs while the target may run (or later resume) its copy: stop it, keep it. */
  | 'pause-source'
  /** The source is paused and the target's copy is paused: destroy the target's copy (the
   *  next observation must confirm it gone before the source is resumed). */
  | 'destroy-target'
  /** The source runs; the target holds a paused leftover incoming copy. */
  | 'destroy-stale-target'
  /** Pre-copy finished: the target runs, the source's paused copy is superseded. */
  | 'destroy-stale-source'
  /** The target runs the VM persistently; the source keeps only a shut-off persistent
   *  definition (left by a confirm step that never ran, or by destroy-stale-source): remove it,
   *  so the VM is defined once (`start` refuses a VM defined on several hosts). */
  | 'undefine-stale-source'
  | 'resume-target';

export interface RecoveryDecision {
  outcome: RecoveryOutcome;
  action: RecoveryAction;
  reason: string;
  /** The decision rests on an unreachable host: a later look may tell more. */
  retry?: boolean;
  /** For 'wait': what holds if the job never settles. */
  fallback?: RecoveryDecision;
  /** After this action, stop: the outcome is for an operator (a twin was stopped). */
  terminal?: boolean;
}

const isRunning = (d: DomainFacts | null): boolean => d !== null && d.active && d.state === 'running';
const isPausedLike = (d: DomainFacts | null): boolean => d !== null && d.active && d.state !== 'running';

/** Evidence that post-copy began: our run's flag or either host's state reason. */
export function postCopyEvidence(f: RecoveryFacts): boolean {
  if (f.postCopy) return true;
  for (const v of [f.source, f.target]) {
    if (!v.reachable || !v.dom?.active) continue;
    if (v.dom.state === 'running' && RUNNING_POSTCOPY.has(v.dom.reason)) return true;
    if (v.dom.state === 'paused' && PAUSED_POSTCOPY.has(v.dom.reason)) return true;
  }
  return false;
}

/** Did the VM run before the migration (so a paused source was paused by the migration)? */
function wasRunning(f: RecoveryFacts, src: DomainFacts | null): boolean {
  if (f.wasState !== null) return f.wasState === 'running';
  // no record: trust only libvirt's own "paused for migration" reason
  return src !== null && src.state === 'paused' && src.reason === PAUSED_MIGRATION;
}

/** The decision table (docs/drivers.md, "Recovery"). Pure. */
export function decideRecovery(f: RecoveryFacts): RecoveryDecision {
  const d = decideCopies(f);
  // The VM runs on the target alone: a shut-off persistent definition left on the source is
  // stale. It is removed only when the target's copy is active AND persistent, so the VM keeps
  // a definition (never the last one is undefined), and only once nothing else is to be done.
  if (d.outcome === 'target' && d.action === 'none' && f.source.reachable && f.target.reachable) {
    const s = f.source.dom;
    const t = f.target.dom;
    if (s && !s.active && s.persistent && t?.active && t.persistent && !f.target.jobActive) {
      return { outcome: 'target', action: 'undefine-stale-source', reason: `${d.reason}; ${f.from} still holds a shut-off definition of ${f.vm}, superseded by the persistent one on ${f.to}` };
    }
  }
  return d;
}

/** Which copy holds the VM and what to do with the active copies. */
function decideCopies(f: RecoveryFacts): RecoveryDecision {
  const { vm, from, to } = f;
  const S = f.source;
  const T = f.target;
  if (!S.reachable) return { outcome: 'unknown', action: 'none', retry: true, reason: `${from} (source) does not answer (${S.reason}); where ${vm} runs is unknown` };
  const s = S.dom;
  const sRunning = isRunning(s);
  const pc = postCopyEvidence(f);
  if (S.jobActive) {
    return { outcome: 'unknown', action: 'wait', reason: `a migration job of ${vm} still runs on ${from}`,
      fallback: { outcome: 'unknown', action: 'none', reason: `the migration job of ${vm} on ${from} did not end; nothing was done` } };
  }
  if (T.reachable && T.jobActive) {
    const fallback: RecoveryDecision = sRunning && !pc
      ? { outcome: 'source', action: 'none', reason: `${vm} runs on ${from}; an incoming job on ${to} did not end (libvirt removes it)` }
      : { outcome: 'unknown', action: 'none', reason: `an incoming migration job of ${vm} on ${to} did not end; nothing was done` };
    return { outcome: 'unknown', action: 'wait', reason: `an incoming migration job of ${vm} still runs on ${to}`, fallback };
  }
  const t = T.reachable ? T.dom : null;
  const sActive = s?.active === true;
  const tRunning = isRunning(t);
  const tPaused = isPausedLike(t);
  const tIncoming = tPaused && t!.state === 'paused' && NEVER_RAN.has(t!.reason);
  const unreachableT = !T.reachable ? `${to} (target) does not answer (${T.reason})` : '';

  if (pc) {
    // The target may hold the newest memory and disk writes: the source is never resumed and
    // no copy is destroyed.
    if (!T.reachable) return { outcome: 'unknown', action: 'none', retry: true, reason: `post-copy of ${vm} began and ${unreachableT}; ${from}'s copy is left as it is` };
    if (tRunning) {
      return sActive
        ? { outcome: 'split', action: 'none', reason: `post-copy of ${vm} did not finish: it runs on ${to} but ${from} still holds a paused copy with memory the target may not have fetched; both left alone (recover with a post-copy resume)` }
        : { outcome: 'target', action: 'none', reason: `${vm} runs on ${to} (post-copy completed)` };
    }
    if (tPaused) {
      if (sActive) return { outcome: 'split', action: 'none', reason: `post-copy of ${vm} failed: its memory is split between ${from} and ${to}; both copies left paused (recover with a post-copy resume)` };
      if (PAUSED_POSTCOPY.has(t!.reason)) return { outcome: 'none', action: 'none', reason: `post-copy of ${vm} failed and ${from} has no copy: the paused copy on ${to} lacks memory; nothing resumed` };
      if (t!.reason === 0) return { outcome: 'unknown', action: 'none', reason: `post-copy of ${vm} may have begun, ${from} has no copy and ${to} does not say why its copy is paused: nothing resumed` };
      return f.wasState === 'running'
        ? { outcome: 'target', action: 'resume-target', reason: `${vm} is paused on ${to} and ${from} has no copy` }
        : { outcome: 'target', action: 'none', reason: `${vm} is paused on ${to} and ${from} has no copy` };
    }
    if (sRunning) return { outcome: 'source', action: 'none', reason: `libvirt resumed ${vm} on ${from}: post-copy never switched over` };
    if (sActive) return { outcome: 'unknown', action: 'none', reason: `post-copy of ${vm} may have begun and ${to} has no copy: ${from}'s paused copy may be stale; left paused for an operator` };
    return { outcome: 'none', action: 'none', reason: `${vm} is active on neither ${from} nor ${to}` };
  }

  if (sRunning) {
    if (!T.reachable) {
      return f.switchOver
        ? { outcome: 'unknown', action: 'pause-source', reason: `the memory stream of ${vm} completed and ${unreachableT}: its copy there may be resumed by its daemon, so the copy libvirt resumed on ${from} is paused` }
        : { outcome: 'source', action: 'none', reason: `libvirt resumed ${vm} on ${from} itself before the switch-over; ${unreachableT}, a leftover copy there is removed by its libvirtd` };
    }
    if (tRunning) {
      return { outcome: 'both', action: 'pause-source', terminal: true,
        reason: `${vm} ran on both ${from} and ${to} (libvirt resumed both); Tide paused the copy on ${from} so one runs, and will not pick which to keep: check the guest, then destroy one` };
    }
    if (tIncoming) return { outcome: 'source', action: 'destroy-stale-target', reason: `${vm} runs on ${from}; ${to} holds a paused incoming copy that never ran` };
    if (tPaused) return { outcome: 'source', action: 'none', reason: `${vm} runs on ${from}; ${to} holds a ${t!.state} copy (reason ${t!.reason}) that may have run: left for an operator` };
    return { outcome: 'source', action: 'none', reason: `${to} has no active copy of ${vm}` };
  }
  if (sActive) {
    // Paused on the source: the switch-over may have happened. Only a target that answered
    // decides.
    if (!T.reachable) return { outcome: 'unknown', action: 'none', retry: true, reason: `${vm} is paused on ${from} and ${unreachableT}: it may run there; the source stays paused` };
    if (tRunning) return { outcome: 'target', action: 'destroy-stale-source', reason: `${vm} runs on ${to}; the paused copy on ${from} is superseded (pre-copy finished)` };
    if (tIncoming) return { outcome: 'source', action: 'destroy-target', reason: `${vm} is paused on both ${from} and ${to}; the target's copy never ran` };
    if (tPaused) return { outcome: 'unknown', action: 'none', reason: `${vm} is paused on ${from} and ${t!.state} on ${to} (reason ${t!.reason}): the target's copy may have run; both left for an operator` };
    return wasRunning(f, s)
      ? { outcome: 'source', action: 'resume-source', reason: `${to} answered without an active copy of ${vm}` }
      : { outcome: 'source', action: 'none', reason: `${vm} stays ${s!.state} on ${from}, as it was` };
  }
  if (!T.reachable) return { outcome: 'unknown', action: 'none', retry: true, reason: `${vm} is not active on ${from} and ${unreachableT}` };
  if (tRunning) return { outcome: 'target', action: 'none', reason: `${vm} runs on ${to}` };
  if (tPaused) {
    return f.wasState === 'running'
      ? { outcome: 'target', action: 'resume-target', reason: `${vm} is paused on ${to} and ${from} has no active copy` }
      : { outcome: 'target', action: 'none', reason: `${vm} is ${t!.state} on ${to}` };
  }
  return { outcome: 'none', action: 'none', reason: `${vm} is active on neither ${from} nor ${to}` };
}

/** Looks at one host: its copy of `vm` and whether a job runs on it. Never throws. */
export async function observe(b: HostBackend, vm: string): Promise<CopyView> {
  try {
    await b.ensure();
    const dom = await b.domain(vm);
    const job = dom?.active ? await b.jobStats(vm) : null;
    return { reachable: true, dom, jobActive: job !== null && (job.type === 1 || job.type === 2) };
  } catch (e) {
    return { reachable: false, reason: (e as Error)?.message ?? String(e) };
  }
}

export interface RecoveryResult {
  outcome: RecoveryOutcome;
  reason: string;
  /** What was done, in order (e.g. "destroyed the paused copy on lab-b"). */
  actions: string[];
  /** The source's state at the last look (null: no copy or not asked). */
  sourceState: VmState | null;
  targetState: VmState | null;
}

export interface RecoveryRun {
  vm: string;
  src: HostBackend;
  dst: HostBackend;
  wasState: VmState | null;
  postCopy: boolean;
  switchOver: boolean;
  clock: Clock;
  /** Keep looking (jobs settling, a host not answering) until this long has passed, ms. */
  settleMs: number;
  /** Between looks, ms. */
  pollMs: number;
}

/**
 * Observe → decide → act, until the decision needs no action or `settleMs` passed. An action
 * that fails is not retried blindly: the next observation decides again.
 */
export async function recoverMigration(r: RecoveryRun): Promise<RecoveryResult> {
  const { vm, src, dst, clock } = r;
  const from = src.config.name;
  const to = dst.config.name;
  const end = clock.now() + r.settleMs;
  const actions: string[] = [];
  let actionsLeft = 6; // each action changes a state the next look sees; more means a host fights back
  for (;;) {
    const [source, target] = await Promise.all([observe(src, vm), observe(dst, vm)]);
    const facts: RecoveryFacts = { vm, from, to, wasState: r.wasState, postCopy: r.postCopy, switchOver: r.switchOver, source, target };
    let d = decideRecovery(facts);
    const timeUp = clock.now() >= end;
    if (d.action === 'wait' || (d.retry && d.action === 'none')) {
      if (!timeUp) {
        await clock.sleep(r.pollMs);
        continue;
      }
      if (d.action === 'wait') d = d.fallback!;
    }
    const result = (): RecoveryResult => ({
      outcome: d.outcome, reason: d.reason, actions,
      sourceState: source.reachable ? source.dom?.state ?? null : null,
      targetState: target.reachable ? target.dom?.state ?? null : null,
    });
    if (d.action === 'none') return result();
    if (actionsLeft-- <= 0) {
      return { ...result(), outcome: 'unknown', reason: `${d.reason}; gave up after ${actions.length} actions (${actions.join('; ')})` };
    }
    try {
      switch (d.action) {
        case 'resume-source': await src.resume(vm); actions.push(`resumed ${vm} on ${from}`); break;
        case 'pause-source': await src.suspend(vm); actions.push(`paused ${vm} on ${from}`); break;
        case 'resume-target': await dst.resume(vm); actions.push(`resumed ${vm} on ${to}`); break;
        case 'destroy-target': case 'destroy-stale-target': await dst.destroy(vm); actions.push(`destroyed the paused copy of ${vm} on ${to}`); break;
        case 'destroy-stale-source': await src.destroy(vm); actions.push(`destroyed the superseded paused copy of ${vm} on ${from}`); break;
        case 'undefine-stale-source': await src.undefine(vm); actions.push(`removed the stale definition of ${vm} on ${from}`); break;
        default: break;
      }
      if (d.terminal) return { ...result(), sourceState: d.action === 'pause-source' ? 'paused' : result().sourceState };
    } catch (e) {
      actions.push(`${d.action} failed: ${(e as Error)?.message ?? String(e)}`);
      if (clock.now() >= end) return { ...result(), outcome: d.action === 'destroy-stale-target' ? 'source' : d.outcome === 'both' ? 'both' : 'unknown', reason: `${d.reason}; ${actions[actions.length - 1]}` };
      await clock.sleep(r.pollMs);
    }
  }
}
