/**
 * History: plans, how each step went, and per-migration measurements. The embedded default is
 * SQLite (better-sqlite3); the interface is small so that PostgreSQL can back it when several
 * controllers share state.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { Plan } from '../core/plan/types.js';
import { DriverError } from '../drivers/errors.js';
import type { StepRun } from '../executor/executor.js';
import {
  toConfigOverride, toDecision, toHostState, toLock, toMig, toPlan, toPower, toRoundError, toStep, toToken, toUnknown, toWake,
  type ApiTokenRow, type ConfigOverrideRow, type DecisionRow, type HostStateRow, type LockRow, type MetricRow, type MigrationRow, type PlanRow,
  type PowerRow, type RoundErrorRow, type StepRow, type UnknownRow, type WakeRow,
} from './rows.js';

/**
 * proposed → approved → running → done | failed; proposed/approved → rejected (operator),
 * superseded (a newer plan replaced it) or expired (the cluster changed under it, or it grew
 * too old to execute); statusReason says why.
 */
export type PlanStatus = 'proposed' | 'approved' | 'running' | 'done' | 'failed' | 'rejected' | 'superseded' | 'expired';

export interface StoredPlan {
  readonly id: number;
  readonly createdMs: number;
  readonly policy: string;
  readonly mode: string;
  readonly status: PlanStatus;
  readonly plan: Plan;
  /** Digest of the cluster the plan was made from (src/daemon/fingerprint.ts); null: not recorded. */
  readonly fingerprint?: string | null;
  /** Why the status is what it is (expired, superseded, rejected, approved by whom). */
  readonly statusReason?: string | null;
  /** Last time a daemon round found the same plan again for the same cluster, ms (null: never re-confirmed). */
  readonly confirmedMs?: number | null;
}

/** A host's operator-set state, kept in the store (not the configuration): `tide host maintenance on|off`. */
export interface HostState {
  readonly host: string;
  readonly maintenance: boolean;
  /** When the state was set, ms. */
  readonly sinceMs: number;
  /** Who set it (user@machine, or 'tide daemon'). */
  readonly by: string;
  readonly reason: string | null;
}

/**
 * What the daemon last said about itself (one row, rewritten at each round and state change),
 * so `tide status` in another process can show it. Times are the daemon's clock, ms.
 */
export interface DaemonStatusRecord {
  readonly pid: number;
  readonly host: string;
  readonly startedMs: number;
  /** starting | running | stopping | stopped (a killed daemon stays 'running' with an old heartbeatMs). */
  readonly state: 'starting' | 'running' | 'stopping' | 'stopped';
  readonly heartbeatMs: number;
  readonly configFile: string | null;
  readonly mode: string;
  readonly intervalSec: number;
  readonly nextRoundMs: number | null;
  readonly lastRound: {
    readonly startedMs: number;
    readonly endedMs: number;
    readonly result: 'ok' | 'error';
    readonly planId: number | null;
    readonly steps: number;
    readonly summary: string;
    readonly error?: { readonly code: string; readonly message: string };
  } | null;
  /** The schedule window in force at the last round (untilMs: when it ends, null: never). */
  readonly window: { readonly kind: string; readonly name: string; readonly untilMs: number | null } | null;
  /** Whether the last round froze all moves, and why (null reason: not frozen). */
  readonly frozen: { readonly frozen: boolean; readonly reason: string | null; readonly sinceMs?: number | null };
  /** The last configuration reload that failed (the daemon kept its previous configuration). */
  readonly configError: { readonly atMs: number; readonly message: string } | null;
}

export interface MigrationRecord {
  readonly planId: number | null;
  readonly vm: string;
  readonly from: string;
  readonly to: string;
  readonly mode: string;
  readonly ok: boolean;
  readonly startedMs: number;
  readonly totalMs: number;
  readonly downtimeMs: number | null;
  readonly probeDowntimeMs: number | null;
  readonly bytes: number | null;
  readonly error: string | null;
}

/** Who holds (or wants) the cluster lock. */
export interface LockHolder {
  /** Process id on `host`. */
  readonly pid: number;
  /** Hostname of the machine the process runs on (os.hostname()). */
  readonly host: string;
  /** What it runs, for the refusal message (e.g. 'tide evacuate srv-2'). */
  readonly command: string;
  /** When the process started, ms since the epoch. */
  readonly startedMs: number;
  /** The controller's node id (config daemon.nodeId, src/daemon/node-id.ts); absent for one-shot commands. */
  readonly node?: string;
}

/** A held cluster lock. `token` identifies this acquisition: only its holder can heartbeat or release it. */
export interface ClusterLease {
  readonly token: string;
  readonly holder: LockHolder;
  /** Wall-clock ms since the epoch. */
  readonly acquiredMs: number;
  readonly ttlMs: number;
  /** Set when a stale lock was taken over: whose it was and why it counted as stale. */
  readonly tookOver?: { readonly holder: LockHolder; readonly why: string };
}

export interface HeldClusterLock extends ClusterLease {
  readonly heartbeatMs: number;
}

export interface AcquireOptions {
  /** Wall-clock now, ms (default Date.now(); tests pass their own). */
  readonly nowMs?: number;
  /**
   * Whether a holder process still lives. Default: a holder on this machine lives while its pid
   * does (signal 0); one on another machine is assumed alive and goes stale only by its TTL.
   */
  readonly isAlive?: (h: LockHolder) => boolean;
}

/** A step's record as saved: saved as `running` before its side effect, again when it ended. */
export interface StoredStepRun {
  readonly planId: number;
  readonly stepId: number;
  readonly kind: string;
  readonly vm: string | null;
  readonly from: string | null;
  /** Target (migrate, place) or the host (powerOn, powerOff). */
  readonly to: string | null;
  readonly state: string;
  readonly startedMs: number | null;
  readonly endedMs: number | null;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly note: string | null;
}

export interface RoundError {
  readonly atMs: number;
  readonly code: string;
  readonly message: string;
}

/**
 * A migration whose outcome was unknown (it ended with TIDE_MIGRATION_UNKNOWN: the source left
 * paused, the target not asked) until a reconcile settles it. `status`: open — reconcile it
 * each round, and meanwhile never move the VM nor power either host off; operator — reconcile
 * ended in an outcome Tide does not settle by itself ('both': it ran on both hosts; 'split': a
 * failed post-copy), still blocking, reconciled again only on an explicit `tide reconcile VM`;
 * resolved — the VM is on one host (or on none), the block is lifted.
 */
export interface UnknownMigration {
  readonly id: number;
  readonly vm: string;
  readonly from: string;
  readonly to: string;
  readonly planId: number | null;
  /** When the migration ended unknown, ms. */
  readonly sinceMs: number;
  /** The migration's error message. */
  readonly reason: string;
  readonly status: 'open' | 'operator' | 'resolved';
  readonly attempts: number;
  readonly lastAttemptMs: number | null;
  /** The last reconcile's outcome (RecoveryOutcome), reason, actions and where the VM is. */
  readonly outcome: string | null;
  readonly outcomeReason: string | null;
  readonly actions: readonly string[];
  readonly vmOn: string | null;
  readonly resolvedMs: number | null;
}

/** One power action, journaled: saved `pending` before the request (intent), updated when it ended (outcome). */
export interface PowerActionRecord {
  readonly id: number;
  readonly planId: number | null;
  readonly stepId: number | null;
  readonly host: string;
  readonly action: 'powerOn' | 'powerOff';
  /** When the intent was recorded (before any request to the power driver), ms. */
  readonly requestedMs: number;
  readonly endedMs: number | null;
  /** 'pending' (intent only: the outcome was never recorded, e.g. the process died), else the step's end state. */
  readonly outcome: string;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly note: string | null;
  /** Who recorded the outcome: 'plan' (the step itself), 'recovery' (recoverOnStart after a crash). */
  readonly by: string;
}

/** A round's decision, compact: what the planner proposed and why it left VMs where they are. */
export interface DecisionRecord {
  readonly atMs: number;
  readonly planId: number | null;
  readonly mode: string;
  readonly policy: string;
  /** The schedule window in force ('consolidate', 'balance', 'blackout'), or null. */
  readonly window: string | null;
  /** One line: counts of moves and power actions, or that nothing was to be done. */
  readonly summary: string;
  readonly steps: number;
  /** The plan's notMoved entries, at most 100, each reason cut to 240 characters. */
  readonly notMoved: readonly { readonly vm: string; readonly code: string; readonly reason: string }[];
}

/** One host's or VM's utilisation in one round (input of recordMetrics). */
export interface MetricSample {
  readonly kind: 'host' | 'vm';
  readonly name: string;
  /** A VM's host at the time; null for hosts. */
  readonly host: string | null;
  /** Host: share of all its cores busy; VM: share of its vCPUs busy; 0..100, null when unknown. */
  readonly cpuPct: number | null;
  /** Memory in use, MiB; null when unknown. */
  readonly memMiB: number | null;
}

/**
 * A stored history point: `raw` (one round, kept for MetricsRetention.rawKeepMs, up to two hours
 * longer: whole hours are merged at once) or `hour` (the mean of the raw samples of that hour,
 * `atMs` the hour's start, kept for hourKeepMs).
 */
export interface MetricPoint extends MetricSample {
  readonly atMs: number;
  readonly res: 'raw' | 'hour';
  /** Raw samples merged into this point (1 for raw). */
  readonly samples: number;
}

/** The retention in force: the call's, else the store's, else 24 h raw and 56 days hourly. */
export function retentionOf(store: MetricsRetention | undefined, call: MetricsRetention | undefined): Required<MetricsRetention> {
  return {
    rawKeepMs: call?.rawKeepMs ?? store?.rawKeepMs ?? 86_400_000,
    hourKeepMs: call?.hourKeepMs ?? store?.hourKeepMs ?? 56 * 86_400_000,
  };
}

export interface MetricsRetention {
  /** Keep every round this long, ms (default 24 h). */
  readonly rawKeepMs?: number;
  /** Keep hourly means this long, ms (default 56 days: eight weeks, for weekly profiles). */
  readonly hourKeepMs?: number;
}

/**
 * A host's DPM wake-path test (executor: before a host's first power-off; `tide wake-test`):
 * ok — it may be powered off; failed — never powered off again until a passing test replaces
 * the record or `key` (the power configuration's digest) no longer matches.
 */
export interface WakePathRecord {
  readonly host: string;
  readonly testedMs: number;
  readonly ok: boolean;
  readonly reason: string;
  /** Power method tested ('ipmi', 'wol', …). */
  readonly method: string | null;
  /** PowerDriver.wakePathKey at the test (null: the driver has none). */
  readonly key: string | null;
}

/** A configuration section an admin edited through the API (src/http/overrides.ts): 'policy' or 'rules'. */
export type ConfigSection = 'policy' | 'rules';

/** An API edit of a configuration section, kept across restarts (precedence: docs/api.md, "Policy and rules"). */
export interface ConfigOverride {
  readonly section: ConfigSection;
  /** The section as applied (JSON). */
  readonly valueJson: string;
  /** The configuration file's section when the edit was made (JSON): a file changed since wins. */
  readonly baseJson: string;
  readonly setMs: number;
  /** Who made it (api:<token name>#<id>). */
  readonly setBy: string;
}

/** HTTP API roles (src/http): viewer reads; operator also approves/rejects plans, migrates, sets maintenance; admin everything. */
export type ApiRole = 'viewer' | 'operator' | 'admin';

/** An API token as stored: only the hash of the secret is kept. */
export interface ApiTokenRecord {
  readonly id: number;
  readonly name: string;
  readonly role: ApiRole;
  /** sha-256 of the token, hex. */
  readonly hash: string;
  readonly createdMs: number;
  readonly createdBy: string;
  readonly lastUsedMs: number | null;
  readonly revokedMs: number | null;
}

export interface Store {
  /** The host's last wake-path test, if any. */
  wakePath(host: string): WakePathRecord | undefined;
  /** Every host's last wake-path test, by host name. */
  wakePaths(): WakePathRecord[];
  /** Records a test (replacing the host's previous record). */
  recordWakePath(r: WakePathRecord): void;
  /** Forgets the host's record (the next power-off tests again); whether there was one. */
  clearWakePath(host: string): boolean;
  /**
   * Runs `fn` — a group of this store's writes — as one transaction (one commit): all land or
   * none (a write that throws inside `fn` and is not caught rolls the group back). For journal
   * writes that belong together and do not straddle a side effect (intent before the effect,
   * outcome after: a group never holds both sides of one). Fenced writes inside stay fenced
   * (checked in the group's transaction). `fn` is synchronous; a nested call joins the outer group.
   */
  batch<T>(fn: () => T): T;
  savePlan(plan: Plan, opts: { createdMs: number; mode: string; status: PlanStatus }): number;
  /** Sets a plan's status unconditionally; `reason` is stored as its statusReason (cleared when absent). */
  setPlanStatus(id: number, status: PlanStatus, reason?: string): void;
  getPlan(id: number): StoredPlan | undefined;
  listPlans(opts?: { status?: PlanStatus; limit?: number }): StoredPlan[];
  saveStepRun(planId: number, run: StepRun): void;
  /** The saved step records of a plan, by step id. */
  stepRuns(planId: number): StoredStepRun[];
  /** Steps saved as started and never ended (`running`), of every plan: what a crash left behind. */
  runningStepRuns(): StoredStepRun[];
  /**
   * Per host, its newest succeeded power step (powerOn or powerOff) of any plan: the one with
   * the latest endedMs (a tie: the later plan, then the later step), by host name. What a
   * restarted controller needs to know since when an off host is off, without reading plans.
   */
  lastPowerSteps(): StoredStepRun[];
  /** Journals a power request before it is sent (outcome 'pending'); returns its id. */
  recordPowerIntent(a: { planId: number | null; stepId: number | null; host: string; action: 'powerOn' | 'powerOff'; atMs: number }): number;
  /** Journals how a power action ended (`by`: who found out, default 'plan'). */
  recordPowerOutcome(id: number, o: { atMs: number; outcome: string; errorCode?: string | null; errorMessage?: string | null; note?: string | null; by?: string }): void;
  /** Newest first; `pending`: only those whose outcome was never recorded. */
  powerActions(opts?: { host?: string; pending?: boolean; planId?: number; limit?: number }): PowerActionRecord[];
  /** Journals a round's decision (compacted: see DecisionRecord); decisions older than `keepMs` (default 30 days) are pruned. */
  recordDecision(d: DecisionRecord, keepMs?: number): void;
  /** Newest first. */
  decisions(opts?: { limit?: number; planId?: number }): DecisionRecord[];
  /**
   * Appends one round of samples and downsamples (see MetricPoint): raw points older than
   * rawKeepMs are merged into hourly means, hourly means older than hourKeepMs dropped, so the
   * table stays bounded (about entities × (rounds per rawKeepMs + hours per hourKeepMs)).
   */
  recordMetrics(atMs: number, samples: readonly MetricSample[], retention?: MetricsRetention): void;
  /**
   * Oldest first (hourly means before the raw points of the same time). `sinceMs` ≤ atMs <
   * `untilMs` (both optional); `limit`: at most that many, the oldest (a paged reader's probe
   * for where the next page starts: src/app/forecast-seed.ts). With `res` given, a time range
   * is read through metrics_res (res, at_ms).
   */
  metricsHistory(opts?: { kind?: 'host' | 'vm'; name?: string; sinceMs?: number; untilMs?: number; res?: 'raw' | 'hour'; limit?: number }): MetricPoint[];
  recordMigration(m: MigrationRecord): void;
  migrations(opts?: { vm?: string; limit?: number }): MigrationRecord[];
  /** When each VM last finished a migration successfully, ms. */
  lastMigrations(): Map<string, number>;
  /**
   * Takes the cluster lock (one row; one actor per cluster that shares this store). Throws
   * DriverError('TIDE_LOCKED', 'cluster locked by <who> since <when>') while another live
   * holder has it. A stale lock — its holder's pid is dead on this machine, or its last
   * heartbeat is older than the TTL the holder gave — is taken over (the lease says so).
   * Atomic across processes (an IMMEDIATE transaction).
   */
  acquireClusterLock(holder: LockHolder, ttlMs: number, opts?: AcquireOptions): ClusterLease;
  /** Proves the holder alive; throws TIDE_LOCKED when the lease is no longer the lock (taken over). */
  heartbeatClusterLock(lease: ClusterLease, nowMs?: number): void;
  /** Releases the lock if `lease` still holds it; returns whether it did. */
  releaseClusterLock(lease: ClusterLease): boolean;
  /** The lock as stored now (held, possibly stale), or undefined. */
  clusterLock(): HeldClusterLock | undefined;
  /**
   * Fencing (leader election, docs/operations.md "Several controllers"): throws
   * DriverError('TIDE_FENCED') unless `lease` is still the cluster lock — same token, and its
   * last heartbeat younger than its TTL by the store's own clock — so a deposed or paused leader
   * learns it must not act. Called before every side effect (src/executor: ExecutorDeps.fence).
   */
  fence(lease: ClusterLease): void;
  /**
   * Every later write through this Store object first checks `lease` as fence() does, in the
   * same transaction as the write (atomic: no write lands after the lease was lost); a write
   * refused is DriverError('TIDE_FENCED'). undefined: writes are no longer fenced. The lock's
   * own calls (acquire, heartbeat, release) are never fenced.
   */
  setFence(lease: ClusterLease | undefined): void;
  /** A control-loop round that failed (the loop went on). */
  recordRoundError(e: RoundError): void;
  /** Newest first. */
  roundErrors(opts?: { limit?: number }): RoundError[];
  /**
   * Records a migration that ended with TIDE_MIGRATION_UNKNOWN (intent to reconcile). An open
   * (or operator) record of the same VM is kept and its hosts updated rather than duplicated.
   * Returns the record's id.
   */
  recordUnknownMigration(m: { vm: string; from: string; to: string; planId: number | null; sinceMs: number; reason: string }): number;
  /** Records one reconcile attempt: 'unknown' keeps it open, 'both'/'split' hand it to an operator, anything else resolves it. */
  recordReconcile(id: number, r: { atMs: number; outcome: string; reason: string; actions: readonly string[]; vmOn: string | null }): UnknownMigration;
  /** Records not resolved yet (open and operator), oldest first; `vm`: that VM's only. */
  unknownMigrations(opts?: { vm?: string; includeResolved?: boolean; limit?: number }): UnknownMigration[];
  /**
   * Changes a plan's status only if it is one of `from` (compare-and-set, atomic: an operator's
   * approve and the daemon's expiry cannot both win). Returns whether it changed.
   */
  transitionPlan(id: number, from: readonly PlanStatus[], to: PlanStatus, reason?: string): boolean;
  /** Records the fingerprint of the cluster a plan was made from and/or when a round last re-confirmed it. */
  setPlanMeta(id: number, meta: { fingerprint?: string; confirmedMs?: number }): void;
  /** Deletes a plan that never ran (no step records), e.g. a proposal identical to a pending one; returns whether it did. */
  discardPlan(id: number): boolean;
  /** Sets (on) or clears (off) a host's maintenance state; the daemon reads it each round. */
  setHostMaintenance(host: string, on: boolean, by: { atMs: number; by: string; reason?: string }): HostState;
  /** Every host with a recorded state, by name (hosts never set: absent). */
  hostStates(): HostState[];
  /** Replaces the daemon's status row. */
  saveDaemonStatus(s: DaemonStatusRecord): void;
  /** The daemon's status row, or undefined when no daemon ever ran on this store. */
  daemonStatus(): DaemonStatusRecord | undefined;
  /** Stores an API token's record (its sha-256 hash only, hex; never the token). Returns its id. */
  createApiToken(t: { name: string; role: ApiRole; hash: string; createdMs: number; createdBy: string }): number;
  /** Every token record, revoked ones too, by id. */
  apiTokens(): ApiTokenRecord[];
  /** The record with this hash (revoked ones too: the caller refuses them). */
  apiTokenByHash(hash: string): ApiTokenRecord | undefined;
  /** Revokes a token (false: no such token, or already revoked). */
  revokeApiToken(id: number, atMs: number): boolean;
  /** Records a token's last successful use. */
  touchApiToken(id: number, atMs: number): void;
  /** A section's API edit (src/http/overrides.ts), or undefined. */
  configOverride(section: ConfigSection): ConfigOverride | undefined;
  /** Stores a section's API edit, replacing the previous one. */
  setConfigOverride(o: ConfigOverride): void;
  /** Forgets a section's API edit (the file's section is in force again); whether there was one. */
  clearConfigOverride(section: ConfigSection): boolean;
  close(): void;
}

/**
 * Schema version this code reads and writes; 2 added the cluster lock (a Tide that ignores it
 * must not open the store); 3 the unknown migrations (a Tide that ignores them would move a VM
 * that may run twice, or power off a host that may hold it); 4 the daemon's and the journal's
 * state (maintenance kept in the store, plan fingerprints, failed wake paths: a Tide that
 * ignores them would evacuate nothing, run an expired plan, or power off a host it cannot wake);
 * 5 the policy and rules set through the API (a Tide that ignores them would act on the file's
 * policy and rules while the operator's edit is shown as in force).
 */
const SCHEMA_VERSION = 6;

/**
 * Store.lastPowerSteps in SQL both stores run (window functions: SQLite ≥ 3.25, PostgreSQL):
 * the succeeded powerOn/powerOff rows, ranked per host by ended_ms, plan_id, step_id, newest
 * first, the first of each. Reads only step_runs (never a plan's body); no index needed: power
 * steps are a small share of the rows, and this runs once, when a controller starts.
 */
export const LAST_POWER_STEPS_SQL = `SELECT plan_id, step_id, kind, vm, host_from, host_to, state, started_ms, ended_ms, error_code, error_message, note
  FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY host_to ORDER BY ended_ms DESC, plan_id DESC, step_id DESC) AS newest
    FROM step_runs WHERE kind IN ('powerOn', 'powerOff') AND state = 'succeeded' AND ended_ms IS NOT NULL AND host_to IS NOT NULL) AS power_steps
  WHERE newest = 1 ORDER BY host_to`;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The default liveness test (see AcquireOptions.isAlive). */
export function holderAlive(h: LockHolder): boolean {
  return h.host !== hostname() || pidAlive(h.pid);
}

/** "tide evacuate srv-2 (pid 4242 on ctl-1)" */
export function describeHolder(h: LockHolder): string {
  return `${h.command} (pid ${h.pid} on ${h.host})`;
}

/**
 * Why the current lock `cur` may be taken over at `nowMs` (its holder's process is gone, or its
 * heartbeat is older than its TTL); throws TIDE_LOCKED naming the holder while it is live. The
 * one takeover rule of every Store implementation.
 */
export function takeoverReason(cur: HeldClusterLock, nowMs: number, isAlive: (h: LockHolder) => boolean): string {
  const ageMs = nowMs - cur.heartbeatMs;
  if (!isAlive(cur.holder)) return `process ${cur.holder.pid} no longer runs on ${cur.holder.host}`;
  if (ageMs > cur.ttlMs) return `no heartbeat for ${Math.round(ageMs / 1000)} s (its TTL is ${Math.round(cur.ttlMs / 1000)} s)`;
  throw new DriverError('TIDE_LOCKED', `cluster locked by ${describeHolder(cur.holder)} since ${new Date(cur.acquiredMs).toISOString()}`, {
    holder: cur.holder, acquiredMs: cur.acquiredMs, heartbeatMs: cur.heartbeatMs,
  });
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS wake_path (
  host TEXT PRIMARY KEY,
  tested_ms INTEGER NOT NULL,
  ok INTEGER NOT NULL,
  reason TEXT NOT NULL,
  method TEXT,
  wake_key TEXT
);
CREATE TABLE IF NOT EXISTS plans (
  id INTEGER PRIMARY KEY,
  created_ms INTEGER NOT NULL,
  policy TEXT NOT NULL,
  mode TEXT NOT NULL,
  status TEXT NOT NULL,
  steps INTEGER NOT NULL,
  plan_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS plans_status ON plans(status, created_ms);
-- A plan's JSON (tens of MB at 200,000 VMs: notMoved names every VM) in its own row, so the
-- status and fingerprint updates of plans rewrite a small row, not the whole plan (SQLite
-- rewrites a row whole). plans.plan_json is '' for a plan whose body is here.
CREATE TABLE IF NOT EXISTS plan_bodies (
  plan_id INTEGER PRIMARY KEY REFERENCES plans(id) ON DELETE CASCADE,
  plan_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS step_runs (
  plan_id INTEGER NOT NULL REFERENCES plans(id),
  step_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  vm TEXT,
  host_from TEXT,
  host_to TEXT,
  state TEXT NOT NULL,
  started_ms INTEGER,
  ended_ms INTEGER,
  error_code TEXT,
  error_message TEXT,
  note TEXT,
  PRIMARY KEY (plan_id, step_id)
);
CREATE TABLE IF NOT EXISTS migrations (
  id INTEGER PRIMARY KEY,
  plan_id INTEGER,
  vm TEXT NOT NULL,
  host_from TEXT NOT NULL,
  host_to TEXT NOT NULL,
  mode TEXT NOT NULL,
  ok INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  total_ms INTEGER NOT NULL,
  downtime_ms INTEGER,
  probe_downtime_ms INTEGER,
  bytes INTEGER,
  error TEXT
);
CREATE INDEX IF NOT EXISTS migrations_vm ON migrations(vm, started_ms);
CREATE TABLE IF NOT EXISTS cluster_lock (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  token TEXT NOT NULL,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  command TEXT NOT NULL,
  started_ms INTEGER NOT NULL,
  acquired_ms INTEGER NOT NULL,
  heartbeat_ms INTEGER NOT NULL,
  ttl_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS round_errors (
  id INTEGER PRIMARY KEY,
  at_ms INTEGER NOT NULL,
  code TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS unknown_migrations (
  id INTEGER PRIMARY KEY,
  vm TEXT NOT NULL,
  host_from TEXT NOT NULL,
  host_to TEXT NOT NULL,
  plan_id INTEGER,
  since_ms INTEGER NOT NULL,
  reason TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('open', 'operator', 'resolved')),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_attempt_ms INTEGER,
  outcome TEXT,
  outcome_reason TEXT,
  actions_json TEXT NOT NULL DEFAULT '[]',
  vm_on TEXT,
  resolved_ms INTEGER
);
CREATE INDEX IF NOT EXISTS unknown_migrations_status ON unknown_migrations(status, vm);
CREATE TABLE IF NOT EXISTS power_actions (
  id INTEGER PRIMARY KEY,
  plan_id INTEGER,
  step_id INTEGER,
  host TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('powerOn', 'powerOff')),
  requested_ms INTEGER NOT NULL,
  ended_ms INTEGER,
  outcome TEXT NOT NULL,
  error_code TEXT,
  error_message TEXT,
  note TEXT,
  by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS power_actions_host ON power_actions(host, id);
CREATE TABLE IF NOT EXISTS decisions (
  id INTEGER PRIMARY KEY,
  at_ms INTEGER NOT NULL,
  plan_id INTEGER,
  mode TEXT NOT NULL,
  policy TEXT NOT NULL,
  window TEXT,
  summary TEXT NOT NULL,
  steps INTEGER NOT NULL,
  not_moved_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_at ON decisions(at_ms);
CREATE TABLE IF NOT EXISTS metrics (
  at_ms INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('host', 'vm')),
  name TEXT NOT NULL,
  host TEXT,
  cpu_pct REAL,
  cpu_n INTEGER NOT NULL,
  mem_mib REAL,
  mem_n INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  res TEXT NOT NULL CHECK (res IN ('raw', 'hour'))
);
CREATE INDEX IF NOT EXISTS metrics_res ON metrics(res, at_ms);
CREATE INDEX IF NOT EXISTS metrics_host ON metrics(name, res, at_ms) WHERE kind = 'host';
CREATE INDEX IF NOT EXISTS metrics_hour ON metrics(kind, name, at_ms) WHERE res = 'hour';
CREATE TABLE IF NOT EXISTS host_state (
  host TEXT PRIMARY KEY,
  maintenance INTEGER NOT NULL,
  since_ms INTEGER NOT NULL,
  by TEXT NOT NULL,
  reason TEXT
);
CREATE TABLE IF NOT EXISTS daemon_status (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  updated_ms INTEGER NOT NULL,
  status_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  hash TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  last_used_ms INTEGER,
  revoked_ms INTEGER
);
CREATE TABLE IF NOT EXISTS config_overrides (
  section TEXT PRIMARY KEY CHECK (section IN ('policy', 'rules')),
  value_json TEXT NOT NULL,
  base_json TEXT NOT NULL,
  set_ms INTEGER NOT NULL,
  set_by TEXT NOT NULL
);
`;

/** Options of a store, both kinds. */
export interface StoreOptions {
  /** The metrics retention recordMetrics applies when its caller gives none (the configuration's store.metrics*; default 24 h raw, 56 days hourly). */
  readonly metrics?: MetricsRetention;
}

/** Opens (creating if needed) the SQLite store at `path`; ':memory:' for tests. */
export function openSqliteStore(path: string, opts: StoreOptions = {}): Store {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  // Creating and upgrading in one IMMEDIATE transaction: two processes opening a new store at
  // once must not both insert a version row.
  try {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    db.transaction(() => {
      const version = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
      // Classified (TIDE_STORE_VERSION, CLI exit 1), not a bug: e.g. an older build (dist/ behind src/) opening a store a newer one upgraded.
      if (version && version.version > SCHEMA_VERSION) {
        throw new DriverError('TIDE_STORE_VERSION', `${path}: store schema version ${version.version}, this Tide understands up to ${SCHEMA_VERSION}: the store was written by a newer Tide; run that version (or rebuild: npm run build), nothing was changed`, { path, version: version.version, understood: SCHEMA_VERSION });
      }
      if (version && version.version < 1) throw new DriverError('TIDE_STORE_VERSION', `${path}: store schema version ${version.version} is unknown`, { path, version: version.version });
      db.exec(SCHEMA);
      // 3 → 4 (the daemon): a plan's fingerprint, status reason and re-confirmation time. Guarded,
      // so both a new store and one written before them get the columns.
      const planCols = new Set((db.prepare('PRAGMA table_info(plans)').all() as { name: string }[]).map((c) => c.name));
      for (const [col, type] of [['fingerprint', 'TEXT'], ['status_reason', 'TEXT'], ['confirmed_ms', 'INTEGER']] as const) {
        if (!planCols.has(col)) db.exec(`ALTER TABLE plans ADD COLUMN ${col} ${type}`);
      }
      // 5 → 6: the lease row's controller node id (daemon.nodeId). Guarded, like the plan columns.
      if (!(db.prepare('PRAGMA table_info(cluster_lock)').all() as { name: string }[]).some((c) => c.name === 'node')) db.exec('ALTER TABLE cluster_lock ADD COLUMN node TEXT');
      // Metrics at scale (no version bump: an older Tide opening the store only re-creates the
      // index, which is harmless, and the next open drops it again): the entity-ordered index over
      // every metrics row is replaced by metrics_host and metrics_hour (created above, partial). A
      // round's raw VM rows (95 % of the rows at 200,000 VMs) went into it at one page per VM, so a
      // round's cost grew with the history kept; now they go only into metrics_res, in time order
      // (an append). Guarded, run at every open.
      db.exec('DROP INDEX IF EXISTS metrics_entity');
      if (!version) db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION);
      else if (version.version < SCHEMA_VERSION) {
        // 1 → 2: step notes; the cluster lock and round errors are new tables (created above).
        // 2 → 3: unknown migrations, a new table (created above).
        // 3 → 4: the daemon's, the journal's and the API's tables (host_state, daemon_status, wake_path, api_tokens,
        // power_actions, decisions, metrics: created above) and the plan columns (added above).
        // 4 → 5: config_overrides (policy and rules set through the API; created above).
        // 5 → 6: plan_bodies (a plan's JSON apart from its row, created above; plans written since
        // keep plans.plan_json empty, so an older Tide must not open them) and cluster_lock.node.
        const cols = db.prepare('PRAGMA table_info(step_runs)').all() as { name: string }[];
        if (!cols.some((c) => c.name === 'note')) db.exec('ALTER TABLE step_runs ADD COLUMN note TEXT');
        db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION);
      }
    }).immediate();
  } catch (e) {
    db.close();
    throw e;
  }

  const insPlan = db.prepare('INSERT INTO plans (created_ms, policy, mode, status, steps, plan_json) VALUES (?, ?, ?, ?, ?, ?)');
  const updPlan = db.prepare('UPDATE plans SET status = ?, status_reason = ? WHERE id = ?');
  const insPlanBody = db.prepare('INSERT INTO plan_bodies (plan_id, plan_json) VALUES (?, ?)');
  /** A plan row with its body (plan_bodies, else the plan_json of a plan stored before them). */
  const PLAN_COLS = 'p.*, b.plan_json AS body_json FROM plans p LEFT JOIN plan_bodies b ON b.plan_id = p.id';
  const getPlan = db.prepare(`SELECT ${PLAN_COLS} WHERE p.id = ?`);
  const withBody = (r: PlanRow & { body_json?: string | null }): PlanRow => {
    const { body_json: body, ...row } = r;
    return body == null ? row : { ...row, plan_json: body };
  };
  const savePlanTx = db.transaction((createdMs: number, policy: string, mode: string, status: PlanStatus, steps: number, json: string): number => {
    const id = Number(insPlan.run(createdMs, policy, mode, status, steps, '').lastInsertRowid);
    insPlanBody.run(id, json);
    return id;
  });
  const batchTx = db.transaction((fn: () => unknown) => fn());
  const upsStep = db.prepare(`INSERT INTO step_runs (plan_id, step_id, kind, vm, host_from, host_to, state, started_ms, ended_ms, error_code, error_message, note)
    VALUES (@plan_id, @step_id, @kind, @vm, @host_from, @host_to, @state, @started_ms, @ended_ms, @error_code, @error_message, @note)
    ON CONFLICT (plan_id, step_id) DO UPDATE SET state = excluded.state, started_ms = excluded.started_ms, ended_ms = excluded.ended_ms,
    error_code = excluded.error_code, error_message = excluded.error_message, note = excluded.note`);
  const getLock = db.prepare('SELECT token, pid, host, command, started_ms, acquired_ms, heartbeat_ms, ttl_ms, node FROM cluster_lock WHERE id = 1');
  const putLock = db.prepare(`INSERT OR REPLACE INTO cluster_lock (id, token, pid, host, command, started_ms, acquired_ms, heartbeat_ms, ttl_ms, node)
    VALUES (1, @token, @pid, @host, @command, @started_ms, @acquired_ms, @heartbeat_ms, @ttl_ms, @node)`);
  const beatLock = db.prepare('UPDATE cluster_lock SET heartbeat_ms = ? WHERE id = 1 AND token = ?');
  const delLock = db.prepare('DELETE FROM cluster_lock WHERE id = 1 AND token = ?');
  const acquire = db.transaction((holder: LockHolder, ttlMs: number, nowMs: number, isAlive: (h: LockHolder) => boolean): ClusterLease => {
    const row = getLock.get() as LockRow | undefined;
    let tookOver: ClusterLease['tookOver'];
    if (row) {
      const cur = toLock(row);
      tookOver = { holder: cur.holder, why: takeoverReason(cur, nowMs, isAlive) };
    }
    const token = randomUUID();
    putLock.run({ token, pid: holder.pid, host: holder.host, command: holder.command, started_ms: Math.round(holder.startedMs), acquired_ms: Math.round(nowMs), heartbeat_ms: Math.round(nowMs), ttl_ms: Math.round(ttlMs), node: holder.node ?? null });
    return { token, holder, acquiredMs: nowMs, ttlMs, ...(tookOver ? { tookOver } : {}) };
  });
  const insMig = db.prepare(`INSERT INTO migrations (plan_id, vm, host_from, host_to, mode, ok, started_ms, total_ms, downtime_ms, probe_downtime_ms, bytes, error)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const getUnknown = db.prepare('SELECT * FROM unknown_migrations WHERE id = ?');
  const openUnknownOf = db.prepare("SELECT * FROM unknown_migrations WHERE vm = ? AND status != 'resolved' ORDER BY id LIMIT 1");
  const recordUnknown = db.transaction((m: { vm: string; from: string; to: string; planId: number | null; sinceMs: number; reason: string }): number => {
    const cur = openUnknownOf.get(m.vm) as UnknownRow | undefined;
    if (cur) {
      db.prepare("UPDATE unknown_migrations SET host_from = ?, host_to = ?, plan_id = ?, reason = ?, status = 'open' WHERE id = ?")
        .run(m.from, m.to, m.planId, m.reason, cur.id);
      return cur.id;
    }
    return Number(db.prepare("INSERT INTO unknown_migrations (vm, host_from, host_to, plan_id, since_ms, reason, status) VALUES (?, ?, ?, ?, ?, ?, 'open')")
      .run(m.vm, m.from, m.to, m.planId, Math.round(m.sinceMs), m.reason).lastInsertRowid);
  });
  const HOUR_MS = 3_600_000;
  // The hourly roll-up runs in SQL: no raw row is read into JS (an hour at 200,000 VMs and 60 s
  // rounds is 12.6 M rows). rollupRaw: the raw points before @cut plus the hourly means already
  // stored for those hours (from @lo, the oldest raw point's hour), merged per entity and hour,
  // weighted by the samples each holds; host: the latest non-null one (bare column of max():
  // a raw point wins over the stored mean of its hour). Then both are replaced by the merge.
  db.exec(`CREATE TEMP TABLE IF NOT EXISTS metrics_rollup (at_ms INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, host TEXT,
    cpu_pct REAL, cpu_n INTEGER NOT NULL, mem_mib REAL, mem_n INTEGER NOT NULL, samples INTEGER NOT NULL)`);
  const rollupRaw = db.prepare(`INSERT INTO temp.metrics_rollup SELECT hour, kind, name, host, cpu, cpu_n, mem, mem_n, samples FROM (
    SELECT hour, kind, name, host, CASE WHEN sum(cpu_n) > 0 THEN sum(cpu_pct * cpu_n) / sum(cpu_n) END AS cpu, sum(cpu_n) AS cpu_n,
      CASE WHEN sum(mem_n) > 0 THEN sum(mem_mib * mem_n) / sum(mem_n) END AS mem, sum(mem_n) AS mem_n, sum(samples) AS samples,
      max(CASE WHEN host IS NOT NULL THEN at_ms * 2 + (res = 'raw') END) AS latest
    FROM (SELECT at_ms / ${HOUR_MS} * ${HOUR_MS} AS hour, * FROM metrics WHERE res = 'raw' AND at_ms < @cut
      UNION ALL SELECT at_ms AS hour, * FROM metrics WHERE res = 'hour' AND at_ms >= @lo AND at_ms < @cut)
    GROUP BY kind, name, hour)`);
  const delMergedHour = db.prepare("DELETE FROM metrics WHERE res = 'hour' AND at_ms >= @lo AND at_ms < @cut");
  const delOldRaw = db.prepare("DELETE FROM metrics WHERE res = 'raw' AND at_ms < @cut");
  const insRollup = db.prepare(`INSERT INTO metrics (at_ms, kind, name, host, cpu_pct, cpu_n, mem_mib, mem_n, samples, res)
    SELECT at_ms, kind, name, host, cpu_pct, cpu_n, mem_mib, mem_n, samples, 'hour' FROM temp.metrics_rollup`);
  const clearRollup = db.prepare('DELETE FROM temp.metrics_rollup');
  const delOldHour = db.prepare("DELETE FROM metrics WHERE res = 'hour' AND at_ms < ?");
  const selOldestRaw = db.prepare("SELECT MIN(at_ms) AS at FROM metrics WHERE res = 'raw'");
  /** Merges raw points older than `cutMs` (a whole hour) into their hours' means; `oldestMs`: the oldest raw point. */
  const downsample = (cutMs: number, oldestMs: number): void => {
    const p = { cut: cutMs, lo: Math.floor(oldestMs / HOUR_MS) * HOUR_MS };
    rollupRaw.run(p);
    delMergedHour.run(p);
    delOldRaw.run({ cut: cutMs });
    insRollup.run();
    clearRollup.run();
  };
  // A round's samples go in as multi-row INSERTs of RAW_CHUNK rows (positional parameters, 8 a
  // row: within SQLite's 32,766): a round at 200,000 VMs is 210,000 rows.
  const RAW_CHUNK = 256;
  const rawValues = (k: number): string => `INSERT INTO metrics (at_ms, kind, name, host, cpu_pct, cpu_n, mem_mib, mem_n, samples, res) VALUES ${
    Array.from({ length: k }, () => "(?, ?, ?, ?, ?, ?, ?, ?, 1, 'raw')").join(', ')}`;
  const insRawChunk = db.prepare(rawValues(RAW_CHUNK));
  const insRawRow = db.prepare(rawValues(1));
  const rawArgs = new Array<unknown>(RAW_CHUNK * 8);
  const recordMetricsTx = db.transaction((atMs: number, samples: readonly MetricSample[], rawKeepMs: number, hourKeepMs: number) => {
    const at = Math.round(atMs);
    const put = (out: unknown[], o: number, m: MetricSample): void => {
      out[o] = at; out[o + 1] = m.kind; out[o + 2] = m.name; out[o + 3] = m.host;
      out[o + 4] = m.cpuPct; out[o + 5] = m.cpuPct === null ? 0 : 1; out[o + 6] = m.memMiB; out[o + 7] = m.memMiB === null ? 0 : 1;
    };
    let i = 0;
    for (; i + RAW_CHUNK <= samples.length; i += RAW_CHUNK) {
      for (let j = 0; j < RAW_CHUNK; j++) put(rawArgs, j * 8, samples[i + j]!);
      insRawChunk.run(rawArgs);
    }
    const one = new Array<unknown>(8);
    for (; i < samples.length; i++) {
      put(one, 0, samples[i]!);
      insRawRow.run(one);
    }
    // whole hours only: once the oldest raw point is more than an hour past the cut, every raw
    // hour before the cut is merged (each hour's mean written once, not remerged every round)
    const oldest = selOldestRaw.get() as { at: number | null } | undefined;
    const cutMs = at - rawKeepMs;
    if (oldest?.at != null && oldest.at < cutMs - HOUR_MS) downsample(Math.floor(cutMs / HOUR_MS) * HOUR_MS, oldest.at);
    delOldHour.run(at - hourKeepMs);
  });
  const insDecision = db.prepare('INSERT INTO decisions (at_ms, plan_id, mode, policy, window, summary, steps, not_moved_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const delOldDecisions = db.prepare('DELETE FROM decisions WHERE at_ms < ?');
  const recordDecisionTx = db.transaction((d: DecisionRecord, notMoved: DecisionRecord['notMoved'], keepMs: number) => {
    insDecision.run(Math.round(d.atMs), d.planId, d.mode, d.policy, d.window, cut(d.summary, 500), d.steps, JSON.stringify(notMoved));
    delOldDecisions.run(Math.round(d.atMs - keepMs));
  });
  const cut = (x: string, n: number): string => (x.length > n ? `${x.slice(0, n - 1)}…` : x);

  const store: Store = {
    wakePath(host) {
      const r = db.prepare('SELECT * FROM wake_path WHERE host = ?').get(host) as WakeRow | undefined;
      return r && toWake(r);
    },
    wakePaths() {
      return (db.prepare('SELECT * FROM wake_path ORDER BY host').all() as WakeRow[]).map(toWake);
    },
    recordWakePath(w) {
      db.prepare('INSERT OR REPLACE INTO wake_path (host, tested_ms, ok, reason, method, wake_key) VALUES (?, ?, ?, ?, ?, ?)')
        .run(w.host, Math.round(w.testedMs), w.ok ? 1 : 0, w.reason, w.method, w.key);
    },
    clearWakePath(host) {
      return db.prepare('DELETE FROM wake_path WHERE host = ?').run(host).changes > 0;
    },
    batch<T>(fn: () => T): T {
      return db.inTransaction ? fn() : batchTx.immediate(fn) as T;
    },
    savePlan(plan, { createdMs, mode, status }) {
      return savePlanTx(Math.round(createdMs), plan.policy, mode, status, plan.steps.length, JSON.stringify(plan));
    },
    setPlanStatus(id, status, reason) {
      if (updPlan.run(status, reason ?? null, id).changes === 0) throw new Error(`no plan with id ${id}`);
    },
    transitionPlan(id, from, to, reason) {
      if (from.length === 0) return false;
      const sql = `UPDATE plans SET status = ?, status_reason = ? WHERE id = ? AND status IN (${from.map(() => '?').join(', ')})`;
      return db.prepare(sql).run(to, reason ?? null, id, ...from).changes > 0;
    },
    setPlanMeta(id, { fingerprint, confirmedMs }) {
      const r = db.prepare('UPDATE plans SET fingerprint = COALESCE(?, fingerprint), confirmed_ms = COALESCE(?, confirmed_ms) WHERE id = ?')
        .run(fingerprint ?? null, confirmedMs === undefined ? null : Math.round(confirmedMs), id);
      if (r.changes === 0) throw new Error(`no plan with id ${id}`);
    },
    discardPlan(id) {
      return db.prepare('DELETE FROM plans WHERE id = ? AND NOT EXISTS (SELECT 1 FROM step_runs WHERE plan_id = ?)').run(id, id).changes > 0;
    },
    setHostMaintenance(host, on, { atMs, by, reason }) {
      db.prepare(`INSERT INTO host_state (host, maintenance, since_ms, by, reason) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (host) DO UPDATE SET maintenance = excluded.maintenance, since_ms = excluded.since_ms, by = excluded.by, reason = excluded.reason`)
        .run(host, on ? 1 : 0, Math.round(atMs), by, reason ?? null);
      return toHostState(db.prepare('SELECT * FROM host_state WHERE host = ?').get(host) as HostStateRow);
    },
    hostStates() {
      return (db.prepare('SELECT * FROM host_state ORDER BY host').all() as HostStateRow[]).map(toHostState);
    },
    saveDaemonStatus(st) {
      db.prepare('INSERT OR REPLACE INTO daemon_status (id, updated_ms, status_json) VALUES (1, ?, ?)').run(Math.round(st.heartbeatMs), JSON.stringify(st));
    },
    daemonStatus() {
      const r = db.prepare('SELECT status_json FROM daemon_status WHERE id = 1').get() as { status_json: string } | undefined;
      return r && (JSON.parse(r.status_json) as DaemonStatusRecord);
    },
    getPlan(id) {
      const r = getPlan.get(id) as PlanRow | undefined;
      return r && toPlan(withBody(r));
    },
    listPlans({ status, limit = 50 } = {}) {
      const rows = (status
        ? db.prepare(`SELECT ${PLAN_COLS} WHERE p.status = ? ORDER BY p.id DESC LIMIT ?`).all(status, limit)
        : db.prepare(`SELECT ${PLAN_COLS} ORDER BY p.id DESC LIMIT ?`).all(limit)) as PlanRow[];
      return rows.map((r) => toPlan(withBody(r)));
    },
    saveStepRun(planId, run) {
      const s = run.step;
      upsStep.run({
        plan_id: planId, step_id: s.id, kind: s.kind,
        vm: 'vm' in s ? s.vm : null, host_from: s.kind === 'migrate' ? s.from : null,
        host_to: s.kind === 'migrate' || s.kind === 'place' ? s.to : s.host,
        state: run.state, started_ms: run.startedAt === undefined ? null : Math.round(run.startedAt), ended_ms: run.endedAt === undefined ? null : Math.round(run.endedAt),
        error_code: run.error?.code ?? null, error_message: run.error?.message ?? null, note: run.note ?? null,
      });
    },
    runningStepRuns() {
      return (db.prepare("SELECT * FROM step_runs WHERE state = 'running' ORDER BY plan_id, step_id").all() as StepRow[]).map(toStep);
    },
    lastPowerSteps() {
      return (db.prepare(LAST_POWER_STEPS_SQL).all() as StepRow[]).map(toStep);
    },
    recordPowerIntent({ planId, stepId, host, action, atMs }) {
      return Number(db.prepare("INSERT INTO power_actions (plan_id, step_id, host, action, requested_ms, outcome, by) VALUES (?, ?, ?, ?, ?, 'pending', 'plan')")
        .run(planId, stepId, host, action, Math.round(atMs)).lastInsertRowid);
    },
    recordPowerOutcome(id, { atMs, outcome, errorCode = null, errorMessage = null, note = null, by = 'plan' }) {
      const r = db.prepare('UPDATE power_actions SET ended_ms = ?, outcome = ?, error_code = ?, error_message = ?, note = ?, by = ? WHERE id = ?')
        .run(Math.round(atMs), outcome, errorCode, errorMessage, note, by, id);
      if (r.changes === 0) throw new Error(`no power action with id ${id}`);
    },
    powerActions({ host, pending = false, planId, limit = 100 } = {}) {
      const where = [host === undefined ? null : 'host = @host', pending ? "outcome = 'pending'" : null, planId === undefined ? null : 'plan_id = @planId'].filter((x) => x !== null);
      const sql = `SELECT * FROM power_actions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
      return (db.prepare(sql).all({ limit, ...(host === undefined ? {} : { host }), ...(planId === undefined ? {} : { planId }) }) as PowerRow[]).map(toPower);
    },
    recordDecision(d, keepMs = 30 * 86_400_000) {
      const notMoved = d.notMoved.slice(0, 100).map((n) => ({ vm: n.vm, code: n.code, reason: cut(n.reason, 240) }));
      recordDecisionTx(d, notMoved, keepMs);
    },
    decisions({ limit = 50, planId } = {}) {
      return ((planId === undefined
        ? db.prepare('SELECT * FROM decisions ORDER BY id DESC LIMIT ?').all(limit)
        : db.prepare('SELECT * FROM decisions WHERE plan_id = ? ORDER BY id DESC LIMIT ?').all(planId, limit)) as DecisionRow[]).map(toDecision);
    },
    recordMetrics(atMs, samples, retention) {
      const { rawKeepMs, hourKeepMs } = retentionOf(opts.metrics, retention);
      recordMetricsTx(atMs, samples, rawKeepMs, hourKeepMs);
    },
    metricsHistory({ kind, name, sinceMs, untilMs, res, limit } = {}) {
      // kind and res as literals when they are the known values: SQLite uses a partial index
      // (metrics_host: kind = 'host'; metrics_hour: res = 'hour') only for a literal term.
      const lit = (col: string, v: string | undefined, known: readonly string[]): string | null =>
        (v === undefined ? null : known.includes(v) ? `${col} = '${v}'` : `${col} = @${col}`);
      const where = [lit('kind', kind, ['host', 'vm']), name === undefined ? null : 'name = @name', sinceMs === undefined ? null : 'at_ms >= @since',
        untilMs === undefined ? null : 'at_ms < @until', lit('res', res, ['raw', 'hour'])]
        .filter((x) => x !== null);
      const sql = `SELECT at_ms, kind, name, host, cpu_pct, mem_mib, samples, res FROM metrics ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at_ms, res, kind, name${limit === undefined ? '' : ' LIMIT @limit'}`;
      const bound = (v: string | undefined, known: readonly string[]): boolean => v !== undefined && !known.includes(v);
      const params = { ...(bound(kind, ['host', 'vm']) ? { kind } : {}), ...(name === undefined ? {} : { name }), ...(sinceMs === undefined ? {} : { since: Math.round(sinceMs) }),
        ...(untilMs === undefined ? {} : { until: Math.ceil(untilMs) }), ...(bound(res, ['raw', 'hour']) ? { res } : {}), ...(limit === undefined ? {} : { limit: Math.max(0, Math.floor(limit)) }) };
      // Mapped while iterating: no array of raw rows besides the points (1 M points: 2.4 s
      // instead of 6.8 s, most of the difference the garbage collector's). Rows as arrays (raw
      // mode: no per-row object keyed by column; 6 M VM rows 3.2 → 1.4 µs a row here): the
      // columns in the SELECT's order, as toMetric maps them.
      const out: MetricPoint[] = [];
      type Raw = [MetricRow['at_ms'], MetricRow['kind'], MetricRow['name'], MetricRow['host'], MetricRow['cpu_pct'], MetricRow['mem_mib'], MetricRow['samples'], MetricRow['res']];
      for (const r of db.prepare(sql).raw(true).iterate(params) as IterableIterator<Raw>) {
        out.push({ atMs: r[0], kind: r[1], name: r[2], host: r[3], cpuPct: r[4], memMiB: r[5], samples: r[6], res: r[7] });
      }
      return out;
    },
    stepRuns(planId) {
      return (db.prepare('SELECT * FROM step_runs WHERE plan_id = ? ORDER BY step_id').all(planId) as StepRow[]).map(toStep);
    },
    recordMigration(m) {
      insMig.run(m.planId, m.vm, m.from, m.to, m.mode, m.ok ? 1 : 0, Math.round(m.startedMs), Math.round(m.totalMs),
        m.downtimeMs === null ? null : Math.round(m.downtimeMs), m.probeDowntimeMs === null ? null : Math.round(m.probeDowntimeMs), m.bytes, m.error);
    },
    migrations({ vm, limit = 100 } = {}) {
      const rows = (vm
        ? db.prepare('SELECT * FROM migrations WHERE vm = ? ORDER BY id DESC LIMIT ?').all(vm, limit)
        : db.prepare('SELECT * FROM migrations ORDER BY id DESC LIMIT ?').all(limit)) as MigrationRow[];
      return rows.map(toMig);
    },
    lastMigrations() {
      const rows = db.prepare('SELECT vm, MAX(started_ms + total_ms) AS at FROM migrations WHERE ok = 1 GROUP BY vm').all() as { vm: string; at: number }[];
      return new Map(rows.map((r) => [r.vm, r.at]));
    },
    acquireClusterLock(holder, ttlMs, { nowMs = Date.now(), isAlive = holderAlive } = {}) {
      if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new DriverError('TIDE_INVALID_ARGUMENT', `lock TTL must be a positive number of ms (got ${ttlMs})`);
      return acquire.immediate(holder, ttlMs, nowMs, isAlive);
    },
    heartbeatClusterLock(lease, nowMs = Date.now()) {
      if (beatLock.run(Math.round(nowMs), lease.token).changes === 0) {
        const cur = getLock.get() as LockRow | undefined;
        throw new DriverError('TIDE_LOCKED', `lost the cluster lock taken at ${new Date(lease.acquiredMs).toISOString()}: ${cur ? `now held by ${describeHolder(toLock(cur).holder)}` : 'it was released'}`);
      }
    },
    releaseClusterLock(lease) {
      return delLock.run(lease.token).changes > 0;
    },
    clusterLock() {
      const r = getLock.get() as LockRow | undefined;
      return r && toLock(r);
    },
    recordRoundError({ atMs, code, message }) {
      db.prepare('INSERT INTO round_errors (at_ms, code, message) VALUES (?, ?, ?)').run(Math.round(atMs), code, message);
    },
    roundErrors({ limit = 50 } = {}) {
      return (db.prepare('SELECT at_ms, code, message FROM round_errors ORDER BY id DESC LIMIT ?').all(limit) as RoundErrorRow[]).map(toRoundError);
    },
    recordUnknownMigration(m) {
      return recordUnknown.immediate(m);
    },
    recordReconcile(id, { atMs, outcome, reason, actions, vmOn }) {
      const status = outcome === 'unknown' ? 'open' : outcome === 'both' || outcome === 'split' ? 'operator' : 'resolved';
      const ch = db.prepare(`UPDATE unknown_migrations SET attempts = attempts + 1, last_attempt_ms = ?, outcome = ?, outcome_reason = ?,
        actions_json = ?, vm_on = ?, status = ?, resolved_ms = ? WHERE id = ?`)
        .run(Math.round(atMs), outcome, reason, JSON.stringify(actions), vmOn, status, status === 'resolved' ? Math.round(atMs) : null, id);
      if (ch.changes === 0) throw new Error(`no unknown migration with id ${id}`);
      return toUnknown(getUnknown.get(id) as UnknownRow);
    },
    unknownMigrations({ vm, includeResolved = false, limit = 1000 } = {}) {
      const where = [includeResolved ? null : "status != 'resolved'", vm === undefined ? null : 'vm = @vm'].filter((x) => x !== null);
      const sql = `SELECT * FROM unknown_migrations ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT @limit`;
      return (db.prepare(sql).all(vm === undefined ? { limit } : { vm, limit }) as UnknownRow[]).map(toUnknown);
    },
    createApiToken({ name, role, hash, createdMs, createdBy }) {
      return Number(db.prepare('INSERT INTO api_tokens (name, role, hash, created_ms, created_by) VALUES (?, ?, ?, ?, ?)')
        .run(name, role, hash, Math.round(createdMs), createdBy).lastInsertRowid);
    },
    apiTokens() {
      return (db.prepare('SELECT * FROM api_tokens ORDER BY id').all() as ApiTokenRow[]).map(toToken);
    },
    apiTokenByHash(hash) {
      const r = db.prepare('SELECT * FROM api_tokens WHERE hash = ?').get(hash) as ApiTokenRow | undefined;
      return r && toToken(r);
    },
    revokeApiToken(id, atMs) {
      return db.prepare('UPDATE api_tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL').run(Math.round(atMs), id).changes > 0;
    },
    touchApiToken(id, atMs) {
      db.prepare('UPDATE api_tokens SET last_used_ms = ? WHERE id = ?').run(Math.round(atMs), id);
    },
    configOverride(section) {
      const r = db.prepare('SELECT * FROM config_overrides WHERE section = ?').get(section) as ConfigOverrideRow | undefined;
      return r && toConfigOverride(r);
    },
    setConfigOverride({ section, valueJson, baseJson, setMs, setBy }) {
      db.prepare(`INSERT INTO config_overrides (section, value_json, base_json, set_ms, set_by) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (section) DO UPDATE SET value_json = excluded.value_json, base_json = excluded.base_json, set_ms = excluded.set_ms, set_by = excluded.set_by`)
        .run(section, valueJson, baseJson, Math.round(setMs), setBy);
    },
    clearConfigOverride(section) {
      return db.prepare('DELETE FROM config_overrides WHERE section = ?').run(section).changes > 0;
    },
    close() {
      db.close();
    },
    fence(lease) {
      fenceCheck(lease);
    },
    setFence(lease) {
      fenced = lease;
    },
  };
  // Fencing (see Store.fence/setFence): the lock row checked inside each write's transaction.
  let fenced: ClusterLease | undefined;
  const fenceCheck = (lease: ClusterLease): void => {
    const row = getLock.get() as LockRow | undefined;
    const nowMs = Date.now();
    if (!row || row.token !== lease.token) {
      throw new DriverError('TIDE_FENCED', `fenced: the lease taken at ${new Date(lease.acquiredMs).toISOString()} is no longer the cluster lock (${row ? `now held by ${describeHolder(toLock(row).holder)}` : 'it was released'})`, { token: lease.token });
    }
    if (nowMs - row.heartbeat_ms > row.ttl_ms) {
      throw new DriverError('TIDE_FENCED', `fenced: no heartbeat of this lease for ${nowMs - row.heartbeat_ms} ms (TTL ${row.ttl_ms} ms): another controller may take over`, { token: lease.token });
    }
  };
  for (const name of FENCED_WRITES) {
    const write = store[name] as (...a: unknown[]) => unknown;
    const tx = db.transaction((args: unknown[]) => {
      if (fenced) fenceCheck(fenced);
      return write(...args);
    });
    (store as unknown as Record<string, unknown>)[name] = (...args: unknown[]): unknown => (fenced ? tx.immediate(args) : write(...args));
  }
  return store;
}

/** The Store's writes that setFence fences (every write but the cluster lock's own). */
const FENCED_WRITES = [
  'recordWakePath', 'clearWakePath', 'savePlan', 'setPlanStatus', 'saveStepRun', 'recordPowerIntent', 'recordPowerOutcome', 'recordDecision',
  'recordMetrics', 'recordMigration', 'recordRoundError', 'recordUnknownMigration', 'recordReconcile', 'transitionPlan', 'setPlanMeta',
  'discardPlan', 'setHostMaintenance', 'saveDaemonStatus', 'createApiToken', 'revokeApiToken', 'touchApiToken',
  'setConfigOverride', 'clearConfigOverride',
] as const satisfies readonly (keyof Store)[];
