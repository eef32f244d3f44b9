/**
 * The PostgreSQL store: the Store interface (src/store/store.ts) over a PostgreSQL database
 * shared by several controllers. Same tables and semantics as the SQLite store (the contract
 * suite test/store/contract.ts runs against both); calls are synchronous through SyncPg (a
 * worker thread, see bridge.ts); each write is one round trip (its statements batched in one
 * transaction) unless it needs the caller's judgement in between (the lock's liveness test).
 *
 * Time: the cluster lock's expiry and the fence use the database's clock (clock_timestamp()),
 * not this machine's, so controllers with skewed clocks agree on who holds the lock. A caller
 * that passes nowMs (tests) is taken at its word, as the SQLite store does.
 */
import { randomUUID } from 'node:crypto';
import { DriverError } from '../../drivers/errors.js';
import {
  describeHolder, holderAlive, LAST_POWER_STEPS_SQL, retentionOf, takeoverReason, type ClusterLease, type DaemonStatusRecord, type Store, type StoreOptions,
} from '../store.js';
import {
  toConfigOverride, toDecision, toHostState, toLock, toMetric, toMig, toPlan, toPower, toRoundError, toStep, toToken, toUnknown, toWake, type Row,
} from '../rows.js';
import { BatchMismatch, SyncPg, type PgConnection, type Stmt, type StmtResult } from './bridge.js';
import { MIGRATIONS, PG_SCHEMA_VERSION } from './schema.js';

/** The connection, and the store's options (the metrics retention: StoreOptions). */
export type PgStoreOptions = PgConnection & StoreOptions;

/** The database's clock, ms since the epoch. */
const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';
/** Serialises schema migrations across controllers (pg_advisory_xact_lock key: 'tidemi' in ASCII). */
const MIGRATE_LOCK_KEY = 0x7469_6465_6d69;
const HOUR_MS = 3_600_000;

const n = (v: unknown): number => v as number;
const s = (v: unknown): string => v as string;
const round = (x: number): number => Math.round(x);
const roundN = (x: number | null | undefined): number | null => (x === null || x === undefined ? null : Math.round(x));
const cut = (x: string, len: number): string => (x.length > len ? `${x.slice(0, len - 1)}…` : x);

/** WHERE clause and $n parameters from optional conditions (undefined: left out). */
function where(conds: readonly (readonly [string, unknown] | null)[], values: unknown[]): string {
  const parts: string[] = [];
  for (const c of conds) {
    if (!c) continue;
    if (c[1] === undefined) {
      parts.push(c[0]);
      continue;
    }
    values.push(c[1]);
    parts.push(c[0].replace('?', `$${values.length}`));
  }
  return parts.length ? `WHERE ${parts.join(' AND ')}` : '';
}

const DOWNSAMPLE = `
WITH cut AS (
  SELECT CASE WHEN min(at_ms) < $1::bigint - ${HOUR_MS} THEN (floor($1::bigint / ${HOUR_MS}.0) * ${HOUR_MS})::bigint END AS c FROM metrics WHERE res = 'raw'
), old AS (
  DELETE FROM metrics m USING cut WHERE m.res = 'raw' AND m.at_ms < cut.c RETURNING m.*
), agg AS (
  SELECT kind, name, (floor(at_ms / ${HOUR_MS}.0) * ${HOUR_MS})::bigint AS hour,
    sum(cpu_pct) AS cpu_sum, count(cpu_pct)::int AS cpu_n, sum(mem_mib) AS mem_sum, count(mem_mib)::int AS mem_n, count(*)::int AS samples,
    (array_agg(host ORDER BY at_ms DESC) FILTER (WHERE host IS NOT NULL))[1] AS host
  FROM old GROUP BY 1, 2, 3
), prev AS (
  DELETE FROM metrics m USING agg WHERE m.res = 'hour' AND m.kind = agg.kind AND m.name = agg.name AND m.at_ms = agg.hour RETURNING m.*
)
INSERT INTO metrics (at_ms, kind, name, host, cpu_pct, cpu_n, mem_mib, mem_n, samples, res)
SELECT agg.hour, agg.kind, agg.name, COALESCE(agg.host, prev.host),
  CASE WHEN COALESCE(prev.cpu_n, 0) + agg.cpu_n = 0 THEN prev.cpu_pct
    ELSE (COALESCE(prev.cpu_pct * prev.cpu_n, 0) + COALESCE(agg.cpu_sum, 0)) / (COALESCE(prev.cpu_n, 0) + agg.cpu_n) END,
  COALESCE(prev.cpu_n, 0) + agg.cpu_n,
  CASE WHEN COALESCE(prev.mem_n, 0) + agg.mem_n = 0 THEN prev.mem_mib
    ELSE (COALESCE(prev.mem_mib * prev.mem_n, 0) + COALESCE(agg.mem_sum, 0)) / (COALESCE(prev.mem_n, 0) + agg.mem_n) END,
  COALESCE(prev.mem_n, 0) + agg.mem_n,
  COALESCE(prev.samples, 0) + agg.samples, 'hour'
FROM agg LEFT JOIN prev ON prev.kind = agg.kind AND prev.name = agg.name AND prev.at_ms = agg.hour`;

/**
 * Opens the PostgreSQL store: connects (within opts.timeoutMs, else TIDE_STORE_UNAVAILABLE
 * naming host:port), migrates the schema to PG_SCHEMA_VERSION in one transaction, refuses a
 * newer schema (TIDE_STORE_VERSION, nothing changed).
 */
export function openPgStore(opts: PgStoreOptions): Store {
  const pg = new SyncPg(opts);
  const where0 = pg.where;
  /** BEGIN … COMMIT across several calls (the caller decides in between); ROLLBACK on any throw, unless the connection is gone (then the server rolled back). */
  const interactive = <T>(fn: () => T): T => {
    pg.query('BEGIN');
    const epoch = pg.epoch;
    try {
      const r = fn();
      pg.query('COMMIT');
      return r;
    } catch (e) {
      if (pg.epoch === epoch && !(e instanceof DriverError && e.code === 'TIDE_STORE_UNAVAILABLE')) {
        try {
          pg.query('ROLLBACK');
        } catch { /* the connection is gone: the server rolled back */ }
      }
      throw e;
    }
  };
  try {
    interactive(() => {
      pg.batch([
        { text: 'SELECT pg_advisory_xact_lock($1)', values: [MIGRATE_LOCK_KEY] },
        { text: 'CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)' },
      ], false);
      const cur = pg.query('SELECT version FROM schema_version').rows[0] as { version: number } | undefined;
      if (cur && cur.version > PG_SCHEMA_VERSION) {
        throw new DriverError('TIDE_STORE_VERSION', `${where0}: store schema version ${cur.version}, this Tide understands up to ${PG_SCHEMA_VERSION}: the store was written by a newer Tide; run that version (or rebuild: npm run build), nothing was changed`, { version: cur.version, understood: PG_SCHEMA_VERSION });
      }
      if (cur && cur.version < 1) throw new DriverError('TIDE_STORE_VERSION', `${where0}: store schema version ${cur.version} is unknown`, { version: cur.version });
      const from = cur?.version ?? 0;
      for (let v = from; v < PG_SCHEMA_VERSION; v++) pg.query(MIGRATIONS[v]!);
      if (!cur) pg.query('INSERT INTO schema_version (version) VALUES ($1)', [PG_SCHEMA_VERSION]);
      else if (from < PG_SCHEMA_VERSION) pg.query('UPDATE schema_version SET version = $1', [PG_SCHEMA_VERSION]);
    });
  } catch (e) {
    pg.close();
    throw e;
  }

  let fenced: ClusterLease | undefined;
  const lockRow = (): Row | undefined => pg.query(`SELECT l.*, ${NOW_MS} AS now_ms FROM cluster_lock l WHERE id = 1`).rows[0];
  /** Why `lease` is no longer good, or null (see Store.fence). */
  const fenceProblem = (lease: ClusterLease, row: Row | undefined, nowMs: number): string | null => {
    if (!row || row.token !== lease.token) {
      return `fenced: the lease taken at ${new Date(lease.acquiredMs).toISOString()} is no longer the cluster lock (${row ? `now held by ${describeHolder(toLock(row).holder)}` : 'it was released'})`;
    }
    const ageMs = nowMs - n(row.heartbeat_ms);
    if (ageMs > n(row.ttl_ms)) return `fenced: no heartbeat of this lease for ${ageMs} ms by the database's clock (TTL ${n(row.ttl_ms)} ms): another controller may take over`;
    return null;
  };
  const fencedError = (lease: ClusterLease): DriverError => {
    const row = lockRow();
    const why = fenceProblem(lease, row, row ? n(row.now_ms) : 0) ?? 'fenced: the lease was not the cluster lock when the write ran';
    return new DriverError('TIDE_FENCED', why, { token: lease.token });
  };
  /** The fence: the lease row, still this lease's and alive by the database's clock, held FOR SHARE until the transaction ends (the acquirer's EXCLUSIVE lock waits for it). */
  const fenceStmt = (f: ClusterLease): Stmt => ({
    text: `SELECT 1 FROM cluster_lock WHERE id = 1 AND token = $1 AND heartbeat_ms + ttl_ms >= ${NOW_MS} FOR SHARE`, values: [f.token], mustMatch: true,
  });
  /** Inside Store.batch: writes join its transaction (fenced once at its start, the lease row held until its COMMIT). */
  let inBatch = 0;
  /** A write: its statements in one round trip; in one transaction with the fence check first when fenced or several. */
  const write = (stmts: readonly Stmt[]): StmtResult[] => {
    if (inBatch > 0) {
      // A savepoint per write, as SQLite undoes only the statement that failed: a write that
      // throws (and is caught by the caller) leaves the group's other writes to commit.
      const epoch = pg.epoch;
      try {
        return pg.batch([{ text: 'SAVEPOINT tide_write' }, ...stmts, { text: 'RELEASE SAVEPOINT tide_write' }], false).slice(1, -1);
      } catch (e) {
        if (pg.epoch === epoch && !(e instanceof DriverError && e.code === 'TIDE_STORE_UNAVAILABLE')) {
          try {
            pg.query('ROLLBACK TO SAVEPOINT tide_write');
          } catch { /* the connection is gone: the group's COMMIT fails and says so */ }
        }
        throw e;
      }
    }
    const f = fenced;
    if (!f) return pg.batch(stmts, stmts.length > 1);
    try {
      return pg.batch([fenceStmt(f), ...stmts], true).slice(1);
    } catch (e) {
      if (e instanceof BatchMismatch && e.index === 0) throw fencedError(f);
      throw e;
    }
  };
  const write1 = (text: string, values: readonly unknown[] = []): StmtResult => write([{ text, values }])[0]!;
  const rows = (text: string, values: readonly unknown[] = []): Row[] => pg.query(text, values).rows;

  const store: Store = {
    batch<T>(fn: () => T): T {
      if (inBatch > 0) return fn();
      return interactive(() => {
        const f = fenced;
        if (f) {
          try {
            pg.batch([fenceStmt(f)], false);
          } catch (e) {
            if (e instanceof BatchMismatch) throw fencedError(f);
            throw e;
          }
        }
        inBatch++;
        try {
          return fn();
        } finally {
          inBatch--;
        }
      });
    },
    wakePath(host) {
      const r = rows('SELECT * FROM wake_path WHERE host = $1', [host])[0];
      return r && toWake(r);
    },
    wakePaths() {
      return rows('SELECT * FROM wake_path ORDER BY host').map(toWake);
    },
    recordWakePath(w) {
      write1(`INSERT INTO wake_path (host, tested_ms, ok, reason, method, wake_key) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (host) DO UPDATE SET tested_ms = excluded.tested_ms, ok = excluded.ok, reason = excluded.reason, method = excluded.method, wake_key = excluded.wake_key`,
      [w.host, round(w.testedMs), w.ok ? 1 : 0, w.reason, w.method, w.key]);
    },
    clearWakePath(host) {
      return write1('DELETE FROM wake_path WHERE host = $1', [host]).rowCount > 0;
    },
    savePlan(plan, { createdMs, mode, status }) {
      return n(write1('INSERT INTO plans (created_ms, policy, mode, status, steps, plan_json) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id',
        [round(createdMs), plan.policy, mode, status, plan.steps.length, JSON.stringify(plan)]).rows[0]!.id);
    },
    setPlanStatus(id, status, reason) {
      if (write1('UPDATE plans SET status = $1, status_reason = $2 WHERE id = $3', [status, reason ?? null, id]).rowCount === 0) throw new Error(`no plan with id ${id}`);
    },
    transitionPlan(id, from, to, reason) {
      if (from.length === 0) return false;
      return write1('UPDATE plans SET status = $1, status_reason = $2 WHERE id = $3 AND status = ANY($4::text[])', [to, reason ?? null, id, [...from]]).rowCount > 0;
    },
    setPlanMeta(id, { fingerprint, confirmedMs }) {
      const r = write1('UPDATE plans SET fingerprint = COALESCE($1, fingerprint), confirmed_ms = COALESCE($2, confirmed_ms) WHERE id = $3',
        [fingerprint ?? null, roundN(confirmedMs), id]);
      if (r.rowCount === 0) throw new Error(`no plan with id ${id}`);
    },
    discardPlan(id) {
      return write1('DELETE FROM plans WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM step_runs WHERE plan_id = $1)', [id]).rowCount > 0;
    },
    setHostMaintenance(host, on, { atMs, by, reason }) {
      return toHostState(write1(`INSERT INTO host_state (host, maintenance, since_ms, "by", reason) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (host) DO UPDATE SET maintenance = excluded.maintenance, since_ms = excluded.since_ms, "by" = excluded."by", reason = excluded.reason
        RETURNING *`, [host, on ? 1 : 0, round(atMs), by, reason ?? null]).rows[0]!);
    },
    hostStates() {
      return rows('SELECT * FROM host_state ORDER BY host').map(toHostState);
    },
    saveDaemonStatus(st) {
      write1(`INSERT INTO daemon_status (id, updated_ms, status_json) VALUES (1, $1, $2)
        ON CONFLICT (id) DO UPDATE SET updated_ms = excluded.updated_ms, status_json = excluded.status_json`, [round(st.heartbeatMs), JSON.stringify(st)]);
    },
    daemonStatus() {
      const r = rows('SELECT status_json FROM daemon_status WHERE id = 1')[0];
      return r && (JSON.parse(s(r.status_json)) as DaemonStatusRecord);
    },
    getPlan(id) {
      const r = rows('SELECT * FROM plans WHERE id = $1', [id])[0];
      return r && toPlan(r);
    },
    listPlans({ status, limit = 50 } = {}) {
      return (status
        ? rows('SELECT * FROM plans WHERE status = $1 ORDER BY id DESC LIMIT $2', [status, limit])
        : rows('SELECT * FROM plans ORDER BY id DESC LIMIT $1', [limit])).map(toPlan);
    },
    saveStepRun(planId, run) {
      const st = run.step;
      write1(`INSERT INTO step_runs (plan_id, step_id, kind, vm, host_from, host_to, state, started_ms, ended_ms, error_code, error_message, note)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (plan_id, step_id) DO UPDATE SET state = excluded.state, started_ms = excluded.started_ms, ended_ms = excluded.ended_ms,
        error_code = excluded.error_code, error_message = excluded.error_message, note = excluded.note`, [
        planId, st.id, st.kind, 'vm' in st ? st.vm : null, st.kind === 'migrate' ? st.from : null,
        st.kind === 'migrate' || st.kind === 'place' ? st.to : st.host, run.state, roundN(run.startedAt), roundN(run.endedAt),
        run.error?.code ?? null, run.error?.message ?? null, run.note ?? null,
      ]);
    },
    stepRuns(planId) {
      return rows('SELECT * FROM step_runs WHERE plan_id = $1 ORDER BY step_id', [planId]).map(toStep);
    },
    runningStepRuns() {
      return rows("SELECT * FROM step_runs WHERE state = 'running' ORDER BY plan_id, step_id").map(toStep);
    },
    lastPowerSteps() {
      return rows(LAST_POWER_STEPS_SQL).map(toStep);
    },
    recordPowerIntent({ planId, stepId, host, action, atMs }) {
      return n(write1(`INSERT INTO power_actions (plan_id, step_id, host, action, requested_ms, outcome, "by") VALUES ($1, $2, $3, $4, $5, 'pending', 'plan') RETURNING id`,
        [planId, stepId, host, action, round(atMs)]).rows[0]!.id);
    },
    recordPowerOutcome(id, { atMs, outcome, errorCode = null, errorMessage = null, note = null, by = 'plan' }) {
      const r = write1('UPDATE power_actions SET ended_ms = $1, outcome = $2, error_code = $3, error_message = $4, note = $5, "by" = $6 WHERE id = $7',
        [round(atMs), outcome, errorCode, errorMessage, note, by, id]);
      if (r.rowCount === 0) throw new Error(`no power action with id ${id}`);
    },
    powerActions({ host, pending = false, planId, limit = 100 } = {}) {
      const values: unknown[] = [];
      const w = where([host === undefined ? null : ['host = ?', host], pending ? ["outcome = 'pending'", undefined] : null, planId === undefined ? null : ['plan_id = ?', planId]], values);
      values.push(limit);
      return rows(`SELECT * FROM power_actions ${w} ORDER BY id DESC LIMIT $${values.length}`, values).map(toPower);
    },
    recordDecision(d, keepMs = 30 * 86_400_000) {
      const notMoved = d.notMoved.slice(0, 100).map((x) => ({ vm: x.vm, code: x.code, reason: cut(x.reason, 240) }));
      write([
        { text: 'INSERT INTO decisions (at_ms, plan_id, mode, policy, "window", summary, steps, not_moved_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
          values: [round(d.atMs), d.planId, d.mode, d.policy, d.window, cut(d.summary, 500), d.steps, JSON.stringify(notMoved)] },
        { text: 'DELETE FROM decisions WHERE at_ms < $1', values: [round(d.atMs - keepMs)] },
      ]);
    },
    decisions({ limit = 50, planId } = {}) {
      const rs = planId === undefined
        ? rows('SELECT * FROM decisions ORDER BY id DESC LIMIT $1', [limit])
        : rows('SELECT * FROM decisions WHERE plan_id = $1 ORDER BY id DESC LIMIT $2', [planId, limit]);
      return rs.map(toDecision);
    },
    recordMetrics(atMs, samples, retention) {
      const { rawKeepMs, hourKeepMs } = retentionOf(opts.metrics, retention);
      const at = round(atMs);
      // One round's samples in one INSERT (arrays unnested), then whole hours downsampled (see MetricPoint).
      write([
        { text: `INSERT INTO metrics (at_ms, kind, name, host, cpu_pct, cpu_n, mem_mib, mem_n, samples, res)
          SELECT $1, k, nm, h, c, CASE WHEN c IS NULL THEN 0 ELSE 1 END, m, CASE WHEN m IS NULL THEN 0 ELSE 1 END, 1, 'raw'
          FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[]) AS u(k, nm, h, c, m)`,
        values: [at, samples.map((x) => x.kind), samples.map((x) => x.name), samples.map((x) => x.host), samples.map((x) => x.cpuPct), samples.map((x) => x.memMiB)] },
        { text: DOWNSAMPLE, values: [at - rawKeepMs] },
        { text: "DELETE FROM metrics WHERE res = 'hour' AND at_ms < $1", values: [at - hourKeepMs] },
      ]);
    },
    metricsHistory({ kind, name, sinceMs, untilMs, res, limit } = {}) {
      const values: unknown[] = [];
      // kind and res as literals when they are the known values, so the partial indexes
      // (metrics_host, metrics_hour: schema V6) apply to every plan of the query.
      const lit = (col: string, v: string | undefined, known: readonly string[]): readonly [string, unknown] | null =>
        (v === undefined ? null : known.includes(v) ? [`${col} = '${v}'`, undefined] : [`${col} = ?`, v]);
      const w = where([lit('kind', kind, ['host', 'vm']), name === undefined ? null : ['name = ?', name],
        sinceMs === undefined ? null : ['at_ms >= ?', round(sinceMs)], untilMs === undefined ? null : ['at_ms < ?', Math.ceil(untilMs)], lit('res', res, ['raw', 'hour'])], values);
      const lim = limit === undefined ? '' : ` LIMIT ${Math.max(0, Math.floor(limit))}`;
      return rows(`SELECT * FROM metrics ${w} ORDER BY at_ms, res, kind, name${lim}`, values).map(toMetric);
    },
    recordMigration(m) {
      write1(`INSERT INTO migrations (plan_id, vm, host_from, host_to, mode, ok, started_ms, total_ms, downtime_ms, probe_downtime_ms, bytes, error)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [m.planId, m.vm, m.from, m.to, m.mode, m.ok ? 1 : 0, round(m.startedMs), round(m.totalMs), roundN(m.downtimeMs), roundN(m.probeDowntimeMs), roundN(m.bytes), m.error]);
    },
    migrations({ vm, limit = 100 } = {}) {
      return (vm
        ? rows('SELECT * FROM migrations WHERE vm = $1 ORDER BY id DESC LIMIT $2', [vm, limit])
        : rows('SELECT * FROM migrations ORDER BY id DESC LIMIT $1', [limit])).map(toMig);
    },
    lastMigrations() {
      return new Map(rows('SELECT vm, MAX(started_ms + total_ms) AS at FROM migrations WHERE ok = 1 GROUP BY vm').map((r) => [s(r.vm), n(r.at)]));
    },
    acquireClusterLock(holder, ttlMs, { nowMs, isAlive = holderAlive } = {}) {
      if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new DriverError('TIDE_INVALID_ARGUMENT', `lock TTL must be a positive number of ms (got ${ttlMs})`);
      return interactive(() => {
        // EXCLUSIVE: serialises acquirers, and waits for fenced writes in flight (they hold the row FOR SHARE).
        const [, got] = pg.batch([
          { text: 'LOCK TABLE cluster_lock IN EXCLUSIVE MODE' },
          { text: `SELECT l.*, ${NOW_MS} AS now_ms FROM (SELECT 1) AS one LEFT JOIN cluster_lock l ON l.id = 1` },
        ], false);
        const row = got!.rows[0]!;
        const now = nowMs ?? n(row.now_ms);
        let tookOver: ClusterLease['tookOver'];
        if (row.token !== null && row.token !== undefined) {
          const cur = toLock(row);
          tookOver = { holder: cur.holder, why: takeoverReason(cur, now, isAlive) };
        }
        const token = randomUUID();
        pg.query(`INSERT INTO cluster_lock (id, token, pid, host, command, started_ms, acquired_ms, heartbeat_ms, ttl_ms, node) VALUES (1, $1, $2, $3, $4, $5, $6, $6, $7, $8)
          ON CONFLICT (id) DO UPDATE SET token = excluded.token, pid = excluded.pid, host = excluded.host, command = excluded.command,
          started_ms = excluded.started_ms, acquired_ms = excluded.acquired_ms, heartbeat_ms = excluded.heartbeat_ms, ttl_ms = excluded.ttl_ms, node = excluded.node`,
        [token, holder.pid, holder.host, holder.command, round(holder.startedMs), round(now), round(ttlMs), holder.node ?? null]);
        return { token, holder, acquiredMs: now, ttlMs, ...(tookOver ? { tookOver } : {}) };
      });
    },
    heartbeatClusterLock(lease, nowMs) {
      const r = pg.query(`UPDATE cluster_lock SET heartbeat_ms = COALESCE($1::bigint, ${NOW_MS}) WHERE id = 1 AND token = $2`, [roundN(nowMs), lease.token]);
      if (r.rowCount === 0) {
        const cur = lockRow();
        throw new DriverError('TIDE_LOCKED', `lost the cluster lock taken at ${new Date(lease.acquiredMs).toISOString()}: ${cur ? `now held by ${describeHolder(toLock(cur).holder)}` : 'it was released'}`);
      }
    },
    releaseClusterLock(lease) {
      return pg.query('DELETE FROM cluster_lock WHERE id = 1 AND token = $1', [lease.token]).rowCount > 0;
    },
    clusterLock() {
      const r = lockRow();
      return r && toLock(r);
    },
    fence(lease) {
      const row = lockRow();
      const why = fenceProblem(lease, row, row ? n(row.now_ms) : 0);
      if (why !== null) throw new DriverError('TIDE_FENCED', why, { token: lease.token });
    },
    setFence(lease) {
      fenced = lease;
    },
    recordRoundError({ atMs, code, message }) {
      write1('INSERT INTO round_errors (at_ms, code, message) VALUES ($1, $2, $3)', [round(atMs), code, message]);
    },
    roundErrors({ limit = 50 } = {}) {
      return rows('SELECT at_ms, code, message FROM round_errors ORDER BY id DESC LIMIT $1', [limit]).map(toRoundError);
    },
    recordUnknownMigration(m) {
      // One open (or operator) record per VM: update it, else insert; the table lock makes the pair atomic across controllers.
      const [, upd, ins] = write([
        { text: 'LOCK TABLE unknown_migrations IN SHARE ROW EXCLUSIVE MODE' },
        { text: `UPDATE unknown_migrations SET host_from = $2, host_to = $3, plan_id = $4, reason = $5, status = 'open'
          WHERE id = (SELECT id FROM unknown_migrations WHERE vm = $1 AND status != 'resolved' ORDER BY id LIMIT 1) RETURNING id`,
        values: [m.vm, m.from, m.to, m.planId, m.reason] },
        { text: `INSERT INTO unknown_migrations (vm, host_from, host_to, plan_id, since_ms, reason, status)
          SELECT $1, $2, $3, $4, $5, $6, 'open' WHERE NOT EXISTS (SELECT 1 FROM unknown_migrations WHERE vm = $1 AND status != 'resolved') RETURNING id`,
        values: [m.vm, m.from, m.to, m.planId, round(m.sinceMs), m.reason] },
      ]);
      return n((upd!.rows[0] ?? ins!.rows[0])!.id);
    },
    recordReconcile(id, { atMs, outcome, reason, actions, vmOn }) {
      const status = outcome === 'unknown' ? 'open' : outcome === 'both' || outcome === 'split' ? 'operator' : 'resolved';
      const r = write1(`UPDATE unknown_migrations SET attempts = attempts + 1, last_attempt_ms = $1, outcome = $2, outcome_reason = $3,
        actions_json = $4, vm_on = $5, status = $6, resolved_ms = $7 WHERE id = $8 RETURNING *`,
      [round(atMs), outcome, reason, JSON.stringify(actions), vmOn, status, status === 'resolved' ? round(atMs) : null, id]);
      if (r.rowCount === 0) throw new Error(`no unknown migration with id ${id}`);
      return toUnknown(r.rows[0]!);
    },
    unknownMigrations({ vm, includeResolved = false, limit = 1000 } = {}) {
      const values: unknown[] = [];
      const w = where([includeResolved ? null : ["status != 'resolved'", undefined], vm === undefined ? null : ['vm = ?', vm]], values);
      values.push(limit);
      return rows(`SELECT * FROM unknown_migrations ${w} ORDER BY id LIMIT $${values.length}`, values).map(toUnknown);
    },
    createApiToken({ name, role, hash, createdMs, createdBy }) {
      return n(write1('INSERT INTO api_tokens (name, role, hash, created_ms, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING id',
        [name, role, hash, round(createdMs), createdBy]).rows[0]!.id);
    },
    apiTokens() {
      return rows('SELECT * FROM api_tokens ORDER BY id').map(toToken);
    },
    apiTokenByHash(hash) {
      const r = rows('SELECT * FROM api_tokens WHERE hash = $1', [hash])[0];
      return r && toToken(r);
    },
    revokeApiToken(id, atMs) {
      return write1('UPDATE api_tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL', [round(atMs), id]).rowCount > 0;
    },
    touchApiToken(id, atMs) {
      write1('UPDATE api_tokens SET last_used_ms = $1 WHERE id = $2', [round(atMs), id]);
    },
    configOverride(section) {
      const r = rows('SELECT * FROM config_overrides WHERE section = $1', [section])[0];
      return r && toConfigOverride(r);
    },
    setConfigOverride({ section, valueJson, baseJson, setMs, setBy }) {
      write1(`INSERT INTO config_overrides (section, value_json, base_json, set_ms, set_by) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (section) DO UPDATE SET value_json = excluded.value_json, base_json = excluded.base_json, set_ms = excluded.set_ms, set_by = excluded.set_by`,
      [section, valueJson, baseJson, round(setMs), setBy]);
    },
    clearConfigOverride(section) {
      return write1('DELETE FROM config_overrides WHERE section = $1', [section]).rowCount > 0;
    },
    close() {
      pg.close();
    },
  };
  return store;
}

