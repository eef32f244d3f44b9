/**
 * The metrics history at scale (issue 9, the journal at 200,000 VMs), on both stores:
 *
 * - the hourly roll-up, now done in SQL (no raw row read into JS), gives what the contract
 *   says — per entity and hour the sample-weighted means, the latest known host, merged with a
 *   mean already stored — checked against a plain model of that contract over random rounds;
 * - the retention a store is opened with (the configuration's store.metricsRawKeepHours and
 *   store.metricsHourKeepDays, through openStore) applies when recordMetrics is given none;
 * - the indexes: a raw VM row goes into no entity-ordered index (metrics_host: hosts only;
 *   metrics_hour: hourly means only), a host's history is read through metrics_host, and a
 *   store written before (SQLite: schema 6 with metrics_entity; PostgreSQL: version 5) is
 *   upgraded in place with its rows kept.
 *
 * The PostgreSQL half starts a private server (test/helpers/postgres.ts) and is skipped, saying
 * why, only outside CI when the binaries are missing.
 */
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeConfigSchema } from '../../src/config/schema.js';
import { metricsRetentionOf, openStore } from '../../src/store/open.js';
import { MIGRATIONS, PG_SCHEMA_VERSION } from '../../src/store/pg/schema.js';
import { openPgStore, type PgStoreOptions } from '../../src/store/pg/store.js';
import { openSqliteStore, type MetricPoint, type MetricSample, type MetricsRetention, type Store, type StoreOptions } from '../../src/store/store.js';
import { postgresSkipReason, startPostgres, type PgServer } from '../helpers/postgres.js';

const H = 3_600_000;
const dirs: string[] = [];
afterAll(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'tide-metrics-'));
  dirs.push(d);
  return d;
};

/** The contract of recordMetrics / metricsHistory (src/store/store.ts MetricPoint, MetricsRetention), as a plain model. */
class Model {
  /** Each point with how many of its samples had a CPU and a memory value (what a mean weighs when merged). */
  private rows: { p: MetricPoint; cpuN: number; memN: number }[] = [];
  record(atMs: number, samples: readonly MetricSample[], rawKeepMs: number, hourKeepMs: number): void {
    for (const m of samples) this.rows.push({ p: { ...m, atMs, res: 'raw', samples: 1 }, cpuN: m.cpuPct === null ? 0 : 1, memN: m.memMiB === null ? 0 : 1 });
    const raw = this.rows.filter((r) => r.p.res === 'raw');
    const oldest = Math.min(...raw.map((r) => r.p.atMs));
    const cutMs = atMs - rawKeepMs;
    if (raw.length > 0 && oldest < cutMs - H) {
      const cut = Math.floor(cutMs / H) * H;
      const hourOf = (t: number): number => Math.floor(t / H) * H;
      const key = (p: MetricPoint, hour: number): string => `${p.kind} ${p.name} ${hour}`;
      // a stored mean of an hour that gets raw points is merged with them (weighted)
      const hours = new Set(raw.filter((r) => r.p.atMs < cut).map((r) => key(r.p, hourOf(r.p.atMs))));
      const keep: typeof this.rows = [];
      const parts: typeof this.rows = [];
      for (const r of this.rows) {
        if ((r.p.res === 'hour' && hours.has(key(r.p, r.p.atMs))) || (r.p.res === 'raw' && r.p.atMs < cut)) parts.push(r);
        else keep.push(r);
      }
      // the stored mean first, then raw points oldest first: the latest known host wins
      parts.sort((a, b) => (a.p.res === b.p.res ? a.p.atMs - b.p.atMs : a.p.res === 'hour' ? -1 : 1));
      const merged = new Map<string, { p: MetricPoint; cpuN: number; memN: number }>();
      for (const { p, cpuN, memN } of parts) {
        const hour = hourOf(p.atMs);
        const k = key(p, hour);
        const a = merged.get(k) ?? { p: { atMs: hour, kind: p.kind, name: p.name, host: null, cpuPct: null, memMiB: null, samples: 0, res: 'hour' as const }, cpuN: 0, memN: 0 };
        const cpuPct = cpuN === 0 ? a.p.cpuPct : ((a.p.cpuPct ?? 0) * a.cpuN + p.cpuPct! * cpuN) / (a.cpuN + cpuN);
        const memMiB = memN === 0 ? a.p.memMiB : ((a.p.memMiB ?? 0) * a.memN + p.memMiB! * memN) / (a.memN + memN);
        merged.set(k, { p: { ...a.p, cpuPct, memMiB, host: p.host ?? a.p.host, samples: a.p.samples + p.samples }, cpuN: a.cpuN + cpuN, memN: a.memN + memN });
      }
      this.rows = [...keep, ...merged.values()];
    }
    this.rows = this.rows.filter((r) => r.p.res !== 'hour' || r.p.atMs >= atMs - hourKeepMs);
  }
  history(): MetricPoint[] {
    const ord = (a: MetricPoint, b: MetricPoint): number => a.atMs - b.atMs || a.res.localeCompare(b.res) || a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name);
    return this.rows.map((r) => r.p).sort(ord);
  }
}

/** Equal up to the float error of a mean computed another way (SQL sums vs a running mean). */
function expectSameHistory(got: readonly MetricPoint[], want: readonly MetricPoint[]): void {
  const round = (x: number | null): number | null => (x === null ? null : Math.round(x * 1e6) / 1e6);
  const norm = (ps: readonly MetricPoint[]): MetricPoint[] => ps.map((p) => ({ ...p, cpuPct: round(p.cpuPct), memMiB: round(p.memMiB) }));
  expect(norm(got)).toEqual(norm(want));
}

const entity = fc.constantFrom(['host', 'h1'], ['host', 'h2'], ['vm', 'v1'], ['vm', 'v2'], ['vm', 'v3']) as fc.Arbitrary<['host' | 'vm', string]>;
const value = fc.option(fc.integer({ min: 0, max: 10_000 }).map((x) => x / 100), { nil: null, freq: 4 });
/**
 * Rounds mostly later than the one before (sometimes up to 2 h earlier: a late point of an hour
 * already merged), each with some entities, values sometimes unknown, VMs on changing hosts, and
 * its own raw retention (the call's) now and then.
 */
const rounds = fc.array(fc.record({
  gapMs: fc.integer({ min: -2 * H, max: 3 * H }),
  rawKeepMs: fc.option(fc.integer({ min: 0, max: 4 * H }), { nil: undefined, freq: 3 }),
  samples: fc.uniqueArray(fc.record({ e: entity, cpu: value, mem: value, host: fc.constantFrom('h1', 'h2', null) }), { selector: (x) => x.e.join(' '), minLength: 1, maxLength: 5 }),
}), { minLength: 1, maxLength: 14 });
const retention = fc.record({ rawKeepMs: fc.integer({ min: 0, max: 4 * H }), hourKeepMs: fc.integer({ min: H, max: 30 * H }) });

type Rounds = typeof rounds extends fc.Arbitrary<infer T> ? T : never;

function replayAgainstModel(store: Store, rs: Rounds, keep: Required<MetricsRetention>): void {
  const model = new Model();
  const used = new Set<number>();
  let at = 10 * H;
  for (const r of rs) {
    at = Math.max(0, at + r.gapMs);
    while (used.has(at)) at++; // one point per entity and time
    used.add(at);
    const samples: MetricSample[] = r.samples.map((x) => ({ kind: x.e[0], name: x.e[1], host: x.e[0] === 'host' ? null : x.host, cpuPct: x.cpu, memMiB: x.mem }));
    const call = { ...keep, ...(r.rawKeepMs === undefined ? {} : { rawKeepMs: r.rawKeepMs }) };
    store.recordMetrics(at, samples, call);
    model.record(at, samples, call.rawKeepMs, call.hourKeepMs);
    expectSameHistory(store.metricsHistory(), model.history());
  }
}

/** What a store kind needs for these tests. */
interface Harness {
  open(opts?: StoreOptions): Store;
}

function metricsHistorySuite(label: string, harness: () => Harness, runs: number): void {
  describe(`metrics history: ${label}`, () => {
    it('the SQL roll-up gives the contract\'s hourly means over random rounds (weighted, latest host, merged with a stored mean)', () => {
      fc.assert(fc.property(rounds, retention, (rs, keep) => {
        const s = harness().open();
        try {
          replayAgainstModel(s, rs, keep);
        } finally {
          s.close();
        }
      }), { numRuns: runs });
    });

    it('a late raw point of an hour already merged is folded into that hour\'s mean, its host the latest known', () => {
      const s = harness().open();
      const keep = { rawKeepMs: 0, hourKeepMs: 100 * H };
      s.recordMetrics(10 * 60_000, [{ kind: 'vm', name: 'v1', host: 'h1', cpuPct: 10, memMiB: null }], keep);
      s.recordMetrics(20 * 60_000, [{ kind: 'vm', name: 'v1', host: 'h1', cpuPct: 20, memMiB: null }], keep);
      s.recordMetrics(2 * H + 1, [{ kind: 'vm', name: 'v9', host: 'h1', cpuPct: 0, memMiB: 0 }], keep);
      expect(s.metricsHistory({ kind: 'vm', name: 'v1' })).toEqual([{ atMs: 0, kind: 'vm', name: 'v1', host: 'h1', cpuPct: 15, memMiB: null, samples: 2, res: 'hour' }]);
      s.recordMetrics(50 * 60_000, [{ kind: 'vm', name: 'v1', host: 'h2', cpuPct: 45, memMiB: 64 }, { kind: 'vm', name: 'v2', host: null, cpuPct: 1, memMiB: 1 }], keep);
      s.recordMetrics(4 * H, [], keep);
      expect(s.metricsHistory({ kind: 'vm', res: 'hour' }).filter((p) => p.atMs === 0)).toEqual([
        { atMs: 0, kind: 'vm', name: 'v1', host: 'h2', cpuPct: 25, memMiB: 64, samples: 3, res: 'hour' }, // (15 × 2 + 45) / 3
        { atMs: 0, kind: 'vm', name: 'v2', host: null, cpuPct: 1, memMiB: 1, samples: 1, res: 'hour' },
      ]);
      s.close();
    });

    it('the retention the store was opened with applies when recordMetrics is given none; a call\'s own overrides it', () => {
      const s = harness().open({ metrics: { rawKeepMs: H, hourKeepMs: 3 * H } });
      const host = (cpuPct: number): MetricSample[] => [{ kind: 'host', name: 'h1', host: null, cpuPct, memMiB: 1 }];
      s.recordMetrics(0, host(10));
      s.recordMetrics(H, host(20));
      s.recordMetrics(2 * H + 1, host(30)); // the oldest (0) is more than an hour before the cut (H + 1): hour 0 merged
      expect(s.metricsHistory().map((p) => [p.atMs, p.res])).toEqual([[0, 'hour'], [H, 'raw'], [2 * H + 1, 'raw']]);
      s.recordMetrics(3 * H + 2, host(40), { rawKeepMs: 10 * H }); // the call's raw retention: nothing merged
      expect(s.metricsHistory({ res: 'raw' })).toHaveLength(3);
      s.recordMetrics(5 * H, host(50)); // the store's again: hours 1–3 merged, means before 2 h (5 h − 3 h) dropped
      expect(s.metricsHistory().map((p) => [p.atMs, p.res])).toEqual([[2 * H, 'hour'], [3 * H, 'hour'], [5 * H, 'raw']]);
      s.close();
      // without options: 24 h raw, 56 days hourly (unchanged)
      const d = harness().open();
      d.recordMetrics(0, host(1));
      d.recordMetrics(25 * H, host(2));
      expect(d.metricsHistory().map((p) => p.res)).toEqual(['raw', 'raw']);
      d.recordMetrics(26 * H, host(3));
      expect(d.metricsHistory().map((p) => p.res)).toEqual(['hour', 'raw', 'raw']);
      d.close();
    });
  });
}

// ------------------------------------------------------------------------------------ SQLite

const sqlitePath = (): string => join(tmp(), 'tide.sqlite');
metricsHistorySuite('SQLite', () => {
  const path = sqlitePath();
  return { open: (o) => openSqliteStore(path, o) };
}, 60);

describe('metrics history: SQLite indexes and upgrade', () => {
  const indexes = (path: string): string[] => {
    const db = new Database(path, { readonly: true });
    try {
      return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'metrics' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    } finally {
      db.close();
    }
  };

  it('raw VM rows go into no entity-ordered index; a host\'s history and the hourly means are read through their partial indexes', () => {
    const path = sqlitePath();
    const s = openSqliteStore(path);
    s.recordMetrics(0, [{ kind: 'host', name: 'h1', host: null, cpuPct: 1, memMiB: 1 }, { kind: 'vm', name: 'v1', host: 'h1', cpuPct: 1, memMiB: 1 }]);
    s.close();
    expect(indexes(path)).toEqual(['metrics_host', 'metrics_hour', 'metrics_res']);
    const db = new Database(path);
    const count = (idx: string): number => (db.prepare(`SELECT count(*) AS n FROM metrics INDEXED BY ${idx} WHERE ${idx === 'metrics_host' ? "kind = 'host'" : "res = 'hour'"}`).get() as { n: number }).n;
    expect([count('metrics_host'), count('metrics_hour')]).toEqual([1, 0]);
    const plan = (sql: string): string => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join('; ');
    expect(plan("SELECT * FROM metrics WHERE kind = 'host' AND name = 'h1' AND at_ms >= 0 ORDER BY at_ms, res, kind, name")).toContain('metrics_host');
    expect(plan("SELECT * FROM metrics WHERE kind = 'vm' AND name = 'v1' AND res = 'hour' ORDER BY at_ms, res, kind, name")).toContain('metrics_hour');
    db.close();
  });

  it('the forecaster seed\'s paged VM read (a time range of one resolution, and its LIMIT 1 probe) goes through metrics_res (res, at_ms)', () => {
    const path = sqlitePath();
    openSqliteStore(path).close();
    const db = new Database(path, { readonly: true });
    const plan = (sql: string): string => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join('; ');
    for (const res of ['raw', 'hour']) {
      for (const tail of ['', ' LIMIT 1']) {
        const p = plan(`SELECT * FROM metrics WHERE kind = 'vm' AND at_ms >= 0 AND at_ms < 10 AND res = '${res}' ORDER BY at_ms, res, kind, name${tail}`);
        expect(p, `${res}${tail}`).toContain('USING INDEX metrics_res (res=? AND at_ms>? AND at_ms<?)');
      }
    }
    db.close();
  });

  it('a schema-6 store with the old entity index is upgraded in place: the index replaced, its rows kept and rolled up', () => {
    const path = sqlitePath();
    openSqliteStore(path).close();
    const db = new Database(path);
    db.exec(`DROP INDEX metrics_host; DROP INDEX metrics_hour; CREATE INDEX metrics_entity ON metrics(kind, name, res, at_ms);
      INSERT INTO metrics (at_ms, kind, name, host, cpu_pct, cpu_n, mem_mib, mem_n, samples, res) VALUES
        (0, 'vm', 'v1', 'h1', 10, 1, 100, 1, 1, 'raw'), (60000, 'vm', 'v1', 'h2', 30, 1, NULL, 0, 1, 'raw'), (0, 'host', 'h1', NULL, 5, 1, 5, 1, 1, 'raw');
      UPDATE schema_version SET version = 6`);
    db.close();
    const s = openSqliteStore(path);
    expect(indexes(path)).toEqual(['metrics_host', 'metrics_hour', 'metrics_res']);
    expect(s.metricsHistory({ kind: 'host', name: 'h1' })).toEqual([{ atMs: 0, kind: 'host', name: 'h1', host: null, cpuPct: 5, memMiB: 5, samples: 1, res: 'raw' }]);
    s.recordMetrics(26 * H, [], { rawKeepMs: 24 * H });
    expect(s.metricsHistory({ kind: 'vm', name: 'v1', res: 'hour' })).toEqual([{ atMs: 0, kind: 'vm', name: 'v1', host: 'h2', cpuPct: 20, memMiB: 100, samples: 2, res: 'hour' }]);
    s.close();
  });
});

describe('metrics history: the configuration\'s retention', () => {
  it('store.metricsRawKeepHours / metricsHourKeepDays default to 24 h / 56 days and reach the store through openStore', () => {
    expect(metricsRetentionOf(storeConfigSchema.parse({}))).toEqual({ rawKeepMs: 24 * H, hourKeepMs: 56 * 24 * H });
    expect(metricsRetentionOf(storeConfigSchema.parse({ metricsRawKeepHours: 0.5, metricsHourKeepDays: 14 }))).toEqual({ rawKeepMs: H / 2, hourKeepMs: 14 * 24 * H });
    expect(storeConfigSchema.safeParse({ metricsRawKeepHours: 0 }).success).toBe(false);
    expect(storeConfigSchema.safeParse({ metricsHourKeepDays: -1 }).success).toBe(false);
    const dir = tmp();
    const configFile = join(dir, 'tide.yaml');
    writeFileSync(configFile, '');
    const s = openStore(storeConfigSchema.parse({ path: 'state.sqlite', metricsRawKeepHours: 1 }), configFile);
    const host: MetricSample[] = [{ kind: 'host', name: 'h1', host: null, cpuPct: 1, memMiB: 1 }];
    s.recordMetrics(0, host);
    s.recordMetrics(2 * H + 1, host); // 1 h raw retention: hour 0 merged (with the default 24 h it would stay raw)
    expect(s.metricsHistory().map((p) => p.res)).toEqual(['hour', 'raw']);
    s.close();
  });
});

// -------------------------------------------------------------------------------- PostgreSQL

const skip = postgresSkipReason();
if (skip !== null) console.warn(`skipping the PostgreSQL metrics history tests: ${skip}`);
let server: PgServer | null = null;
let database = '';
let schemas = 0;
beforeAll(async () => {
  if (skip !== null) return;
  const s = await startPostgres();
  if ('skip' in s) throw new Error(s.skip); // binaries found, yet unusable: a failure
  server = s;
  database = s.createDatabase('tide_metrics');
}, 120_000);
afterAll(async () => {
  await server?.stop();
});
const pgOptions = (schema: string, over: Partial<PgStoreOptions> = {}): PgStoreOptions => ({
  host: server!.host, port: server!.port, database, user: server!.user, password: server!.password, ssl: false, schema, timeoutMs: 10_000, ...over,
});

describe.skipIf(skip !== null)('metrics history: PostgreSQL', () => {
  metricsHistorySuite('PostgreSQL', () => {
    const schema = `metrics_${++schemas}`;
    return { open: (o) => openPgStore(pgOptions(schema, o)) };
  }, 15);

  const indexes = (schema: string): string => server!.psql(database, `SELECT indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = '${schema}' AND tablename = 'metrics' ORDER BY indexname`);

  it('a version-5 store is migrated to 6: the entity index replaced by the partial ones, its rows kept', () => {
    const schema = `metrics_v5_${++schemas}`;
    server!.psql(database, `CREATE SCHEMA ${schema}; SET search_path TO ${schema}; CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (5);
      ${MIGRATIONS.slice(0, 5).join('\n')}
      INSERT INTO metrics (at_ms, kind, name, host, cpu_pct, cpu_n, mem_mib, mem_n, samples, res) VALUES
        (0, 'vm', 'v1', 'h1', 10, 1, 100, 1, 1, 'raw'), (60000, 'vm', 'v1', 'h2', 30, 1, NULL, 0, 1, 'raw'), (0, 'host', 'h1', NULL, 5, 1, 5, 1, 1, 'raw');`);
    expect(indexes(schema)).toContain('metrics_entity');
    const s = openPgStore(pgOptions(schema));
    try {
      expect(server!.psql(database, `SELECT version FROM ${schema}.schema_version`).trim()).toBe(String(PG_SCHEMA_VERSION));
      const ix = indexes(schema);
      expect(ix).not.toContain('metrics_entity');
      expect(ix).toMatch(/metrics_host:.*\(name, res, at_ms\) WHERE \(kind = 'host'::text\)/);
      expect(ix).toMatch(/metrics_hour:.*\(kind, name, at_ms\) WHERE \(res = 'hour'::text\)/);
      expect(s.metricsHistory({ kind: 'host', name: 'h1' })).toEqual([{ atMs: 0, kind: 'host', name: 'h1', host: null, cpuPct: 5, memMiB: 5, samples: 1, res: 'raw' }]);
      s.recordMetrics(26 * H, [], { rawKeepMs: 24 * H });
      expect(s.metricsHistory({ kind: 'vm', name: 'v1', res: 'hour' })).toEqual([{ atMs: 0, kind: 'vm', name: 'v1', host: 'h2', cpuPct: 20, memMiB: 100, samples: 2, res: 'hour' }]);
    } finally {
      s.close();
    }
  });

  it('the forecaster seed\'s paged VM read (one resolution, a time range, and its LIMIT 1 probe) is planned through metrics_res on an analysed table', () => {
    const schema = `metrics_${++schemas}`;
    openPgStore(pgOptions(schema)).close();
    // 200 VMs × 300 raw rounds and × 300 hours, analysed: the planner chooses by the table's statistics
    server!.psql(database, `SET search_path TO ${schema};
      INSERT INTO metrics (at_ms, kind, name, host, cpu_pct, cpu_n, mem_mib, mem_n, samples, res)
        SELECT r * 300000, 'vm', 'v' || v, 'h1', 10, 1, 100, 1, 1, 'raw' FROM generate_series(0, 299) r, generate_series(0, 199) v;
      INSERT INTO metrics (at_ms, kind, name, host, cpu_pct, cpu_n, mem_mib, mem_n, samples, res)
        SELECT -r * ${H}, 'vm', 'v' || v, 'h1', 10, 12, 100, 12, 12, 'hour' FROM generate_series(1, 300) r, generate_series(0, 199) v;
      ANALYZE metrics;`);
    for (const [res, range] of [['raw', 'at_ms >= 3000000 AND at_ms < 6000000'], ['hour', `at_ms >= ${-50 * H} AND at_ms < ${-40 * H}`]] as const) {
      for (const tail of ['', ' LIMIT 1']) {
        const plan = server!.psql(database, `SET search_path TO ${schema}; EXPLAIN SELECT * FROM metrics WHERE kind = 'vm' AND ${range} AND res = '${res}' ORDER BY at_ms, res, kind, name${tail}`);
        expect(plan, `${res}${tail}: ${plan}`).toMatch(/Index Scan using metrics_res|Bitmap Index Scan on metrics_res/);
      }
    }
  });

  it('a host\'s history is planned through metrics_host (the kind named as a literal)', () => {
    const schema = `metrics_${++schemas}`;
    const s = openPgStore(pgOptions(schema));
    s.recordMetrics(0, [{ kind: 'host', name: 'h1', host: null, cpuPct: 1, memMiB: 1 }]);
    s.close();
    const plan = server!.psql(database, `SET search_path TO ${schema}; SET enable_seqscan = off; EXPLAIN SELECT * FROM metrics WHERE kind = 'host' AND name = 'h1' AND at_ms >= 0 ORDER BY at_ms, res, kind, name`);
    expect(plan).toContain('metrics_host');
  });
});
