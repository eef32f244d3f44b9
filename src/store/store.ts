/**
 * History: plans, how each step went, and per-migration measurements. The embedded default is
 * SQLite (better-sqlite3); the interface is small so that PostgreSQL can back it when several
 * controllers share state.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Plan } from '../core/plan/types.js';
import type { StepRun } from '../executor/executor.js';

export type PlanStatus = 'proposed' | 'approved' | 'running' | 'done' | 'failed' | 'rejected' | 'superseded';

export interface StoredPlan {
  readonly id: number;
  readonly createdMs: number;
  readonly policy: string;
  readonly mode: string;
  readonly status: PlanStatus;
  readonly plan: Plan;
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

export interface Store {
  savePlan(plan: Plan, opts: { createdMs: number; mode: string; status: PlanStatus }): number;
  setPlanStatus(id: number, status: PlanStatus): void;
  getPlan(id: number): StoredPlan | undefined;
  listPlans(opts?: { status?: PlanStatus; limit?: number }): StoredPlan[];
  saveStepRun(planId: number, run: StepRun): void;
  recordMigration(m: MigrationRecord): void;
  migrations(opts?: { vm?: string; limit?: number }): MigrationRecord[];
  /** When each VM last finished a migration successfully, ms. */
  lastMigrations(): Map<string, number>;
  close(): void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
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
`;

type PlanRow = { id: number; created_ms: number; policy: string; mode: string; status: PlanStatus; plan_json: string };
type MigrationRow = {
  plan_id: number | null; vm: string; host_from: string; host_to: string; mode: string; ok: number; started_ms: number;
  total_ms: number; downtime_ms: number | null; probe_downtime_ms: number | null; bytes: number | null; error: string | null;
};

/** Opens (creating if needed) the SQLite store at `path`; ':memory:' for tests. */
export function openSqliteStore(path: string): Store {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.exec(SCHEMA);
  const version = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
  if (!version) db.prepare('INSERT INTO schema_version (version) VALUES (1)').run();
  else if (version.version !== 1) throw new Error(`${path}: store schema version ${version.version}, this Tide understands 1`);

  const insPlan = db.prepare('INSERT INTO plans (created_ms, policy, mode, status, steps, plan_json) VALUES (?, ?, ?, ?, ?, ?)');
  const updPlan = db.prepare('UPDATE plans SET status = ? WHERE id = ?');
  const getPlan = db.prepare('SELECT id, created_ms, policy, mode, status, plan_json FROM plans WHERE id = ?');
  const upsStep = db.prepare(`INSERT INTO step_runs (plan_id, step_id, kind, vm, host_from, host_to, state, started_ms, ended_ms, error_code, error_message)
    VALUES (@plan_id, @step_id, @kind, @vm, @host_from, @host_to, @state, @started_ms, @ended_ms, @error_code, @error_message)
    ON CONFLICT (plan_id, step_id) DO UPDATE SET state = excluded.state, started_ms = excluded.started_ms, ended_ms = excluded.ended_ms,
    error_code = excluded.error_code, error_message = excluded.error_message`);
  const insMig = db.prepare(`INSERT INTO migrations (plan_id, vm, host_from, host_to, mode, ok, started_ms, total_ms, downtime_ms, probe_downtime_ms, bytes, error)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const toPlan = (r: PlanRow): StoredPlan => ({ id: r.id, createdMs: r.created_ms, policy: r.policy, mode: r.mode, status: r.status, plan: JSON.parse(r.plan_json) as Plan });
  const toMig = (r: MigrationRow): MigrationRecord => ({
    planId: r.plan_id, vm: r.vm, from: r.host_from, to: r.host_to, mode: r.mode, ok: r.ok === 1, startedMs: r.started_ms,
    totalMs: r.total_ms, downtimeMs: r.downtime_ms, probeDowntimeMs: r.probe_downtime_ms, bytes: r.bytes, error: r.error,
  });

  return {
    savePlan(plan, { createdMs, mode, status }) {
      return Number(insPlan.run(Math.round(createdMs), plan.policy, mode, status, plan.steps.length, JSON.stringify(plan)).lastInsertRowid);
    },
    setPlanStatus(id, status) {
      if (updPlan.run(status, id).changes === 0) throw new Error(`no plan with id ${id}`);
    },
    getPlan(id) {
      const r = getPlan.get(id) as PlanRow | undefined;
      return r && toPlan(r);
    },
    listPlans({ status, limit = 50 } = {}) {
      const rows = (status
        ? db.prepare('SELECT id, created_ms, policy, mode, status, plan_json FROM plans WHERE status = ? ORDER BY id DESC LIMIT ?').all(status, limit)
        : db.prepare('SELECT id, created_ms, policy, mode, status, plan_json FROM plans ORDER BY id DESC LIMIT ?').all(limit)) as PlanRow[];
      return rows.map(toPlan);
    },
    saveStepRun(planId, run) {
      const s = run.step;
      upsStep.run({
        plan_id: planId, step_id: s.id, kind: s.kind,
        vm: 'vm' in s ? s.vm : null, host_from: s.kind === 'migrate' ? s.from : null,
        host_to: s.kind === 'migrate' || s.kind === 'place' ? s.to : s.host,
        state: run.state, started_ms: run.startedAt === undefined ? null : Math.round(run.startedAt), ended_ms: run.endedAt === undefined ? null : Math.round(run.endedAt),
        error_code: run.error?.code ?? null, error_message: run.error?.message ?? null,
      });
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
    close() {
      db.close();
    },
  };
}
