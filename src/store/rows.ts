/**
 * Row → record mapping shared by the SQLite store (store.ts) and the PostgreSQL store
 * (pg/store.ts). Both stores hold the same tables and columns (snake_case; booleans as 0/1
 * INTEGER; times in ms; JSON in *_json TEXT), so one mapping serves both; the SQL dialects stay
 * with each store.
 *
 * Contract: a row is what `SELECT *` (or `RETURNING *`) gives for its table, its numbers as
 * JavaScript numbers (the PostgreSQL bridge parses BIGINT/NUMERIC so) and SQL NULL as null.
 */
import type { Plan } from '../core/plan/types.js';
import type {
  ApiRole, ApiTokenRecord, ConfigOverride, ConfigSection, DecisionRecord, HeldClusterLock, HostState, MetricPoint, MigrationRecord, PlanStatus,
  PowerActionRecord, RoundError, StoredPlan, StoredStepRun, UnknownMigration, WakePathRecord,
} from './store.js';

/** A row as a driver returns it (column name → value). */
export type Row = Readonly<Record<string, unknown>>;

export type LockRow = { token: string; pid: number; host: string; command: string; started_ms: number; acquired_ms: number; heartbeat_ms: number; ttl_ms: number; node?: string | null };
export type UnknownRow = {
  id: number; vm: string; host_from: string; host_to: string; plan_id: number | null; since_ms: number; reason: string;
  status: UnknownMigration['status']; attempts: number; last_attempt_ms: number | null; outcome: string | null; outcome_reason: string | null;
  actions_json: string; vm_on: string | null; resolved_ms: number | null;
};
export type PlanRow = {
  id: number; created_ms: number; policy: string; mode: string; status: PlanStatus; plan_json: string;
  fingerprint: string | null; status_reason: string | null; confirmed_ms: number | null;
};
export type StepRow = {
  plan_id: number; step_id: number; kind: string; vm: string | null; host_from: string | null; host_to: string | null; state: string;
  started_ms: number | null; ended_ms: number | null; error_code: string | null; error_message: string | null; note: string | null;
};
export type HostStateRow = { host: string; maintenance: number; since_ms: number; by: string; reason: string | null };
export type MigrationRow = {
  plan_id: number | null; vm: string; host_from: string; host_to: string; mode: string; ok: number; started_ms: number;
  total_ms: number; downtime_ms: number | null; probe_downtime_ms: number | null; bytes: number | null; error: string | null;
};
export type PowerRow = {
  id: number; plan_id: number | null; step_id: number | null; host: string; action: 'powerOn' | 'powerOff'; requested_ms: number; ended_ms: number | null;
  outcome: string; error_code: string | null; error_message: string | null; note: string | null; by: string;
};
export type MetricRow = {
  at_ms: number; kind: 'host' | 'vm'; name: string; host: string | null; cpu_pct: number | null; cpu_n: number; mem_mib: number | null; mem_n: number;
  samples: number; res: 'raw' | 'hour';
};
export type WakeRow = { host: string; tested_ms: number; ok: number; reason: string; method: string | null; wake_key: string | null };
export type DecisionRow = {
  at_ms: number; plan_id: number | null; mode: string; policy: string; window: string | null; summary: string; steps: number; not_moved_json: string;
};
export type ApiTokenRow = {
  id: number; name: string; role: ApiRole; hash: string; created_ms: number; created_by: string; last_used_ms: number | null; revoked_ms: number | null;
};
export type RoundErrorRow = { at_ms: number; code: string; message: string };
export type ConfigOverrideRow = { section: ConfigSection; value_json: string; base_json: string; set_ms: number; set_by: string };

export const toLock = (row: Row): HeldClusterLock => {
  const r = row as LockRow;
  return {
    token: r.token, holder: { pid: r.pid, host: r.host, command: r.command, startedMs: r.started_ms, ...(r.node ? { node: r.node } : {}) },
    acquiredMs: r.acquired_ms, heartbeatMs: r.heartbeat_ms, ttlMs: r.ttl_ms,
  };
};
export const toUnknown = (row: Row): UnknownMigration => {
  const r = row as UnknownRow;
  return {
    id: r.id, vm: r.vm, from: r.host_from, to: r.host_to, planId: r.plan_id, sinceMs: r.since_ms, reason: r.reason, status: r.status,
    attempts: r.attempts, lastAttemptMs: r.last_attempt_ms, outcome: r.outcome, outcomeReason: r.outcome_reason,
    actions: JSON.parse(r.actions_json) as string[], vmOn: r.vm_on, resolvedMs: r.resolved_ms,
  };
};
export const toPlan = (row: Row): StoredPlan => {
  const r = row as PlanRow;
  return {
    id: r.id, createdMs: r.created_ms, policy: r.policy, mode: r.mode, status: r.status, plan: JSON.parse(r.plan_json) as Plan,
    fingerprint: r.fingerprint, statusReason: r.status_reason, confirmedMs: r.confirmed_ms,
  };
};
export const toStep = (row: Row): StoredStepRun => {
  const r = row as StepRow;
  return {
    planId: r.plan_id, stepId: r.step_id, kind: r.kind, vm: r.vm, from: r.host_from, to: r.host_to, state: r.state,
    startedMs: r.started_ms, endedMs: r.ended_ms, errorCode: r.error_code, errorMessage: r.error_message, note: r.note,
  };
};
export const toHostState = (row: Row): HostState => {
  const r = row as HostStateRow;
  return { host: r.host, maintenance: r.maintenance === 1, sinceMs: r.since_ms, by: r.by, reason: r.reason };
};
export const toPower = (row: Row): PowerActionRecord => {
  const r = row as PowerRow;
  return {
    id: r.id, planId: r.plan_id, stepId: r.step_id, host: r.host, action: r.action, requestedMs: r.requested_ms, endedMs: r.ended_ms,
    outcome: r.outcome, errorCode: r.error_code, errorMessage: r.error_message, note: r.note, by: r.by,
  };
};
export const toMig = (row: Row): MigrationRecord => {
  const r = row as MigrationRow;
  return {
    planId: r.plan_id, vm: r.vm, from: r.host_from, to: r.host_to, mode: r.mode, ok: r.ok === 1, startedMs: r.started_ms,
    totalMs: r.total_ms, downtimeMs: r.downtime_ms, probeDowntimeMs: r.probe_downtime_ms, bytes: r.bytes, error: r.error,
  };
};
export const toWake = (row: Row): WakePathRecord => {
  const r = row as WakeRow;
  return { host: r.host, testedMs: r.tested_ms, ok: r.ok === 1, reason: r.reason, method: r.method, key: r.wake_key };
};
export const toDecision = (row: Row): DecisionRecord => {
  const r = row as DecisionRow;
  return {
    atMs: r.at_ms, planId: r.plan_id, mode: r.mode, policy: r.policy, window: r.window, summary: r.summary, steps: r.steps,
    notMoved: JSON.parse(r.not_moved_json) as DecisionRecord['notMoved'],
  };
};
export const toMetric = (row: Row): MetricPoint => {
  const r = row as MetricRow;
  return { atMs: r.at_ms, kind: r.kind, name: r.name, host: r.host, cpuPct: r.cpu_pct, memMiB: r.mem_mib, samples: r.samples, res: r.res };
};
export const toToken = (row: Row): ApiTokenRecord => {
  const r = row as ApiTokenRow;
  return { id: r.id, name: r.name, role: r.role, hash: r.hash, createdMs: r.created_ms, createdBy: r.created_by, lastUsedMs: r.last_used_ms, revokedMs: r.revoked_ms };
};
export const toRoundError = (row: Row): RoundError => {
  const r = row as RoundErrorRow;
  return { atMs: r.at_ms, code: r.code, message: r.message };
};
export const toConfigOverride = (row: Row): ConfigOverride => {
  const r = row as ConfigOverrideRow;
  return { section: r.section, valueJson: r.value_json, baseJson: r.base_json, setMs: r.set_ms, setBy: r.set_by };
};
