#!/usr/bin/env node
// Store benchmark: the cost of one Store call, SQLite vs PostgreSQL, side by side.
//
//   node bench/store.js            # as root (or a user that may run initdb); no build needed
//   BENCH_CALLS=5000 node bench/store.js
//   BENCH_PG='{"host":"db1","port":5432,"database":"tide","user":"tide"}' PGPASSWORD=… node bench/store.js   # an existing server
//
// Without BENCH_PG it starts the tests' private PostgreSQL (test/helpers/postgres.ts: initdb in a
// temp dir, 127.0.0.1, a free port, fsync off) and removes it afterwards. The Store modules and
// the fixture are transpiled from src/ and test/ into a temp directory (TypeScript's
// transpileModule), so the bench measures the sources as they are, without `npm run build`.
//
// What is measured, per call (BENCH_CALLS calls each, after 200 warm-up calls): a point read
// (getPlan), an insert (recordRoundError), an upsert (saveStepRun), the same insert fenced
// (setFence: the lock row checked in the same transaction), a lock heartbeat, and one round of
// 1,000 metric samples (recordMetrics; PostgreSQL: one INSERT of unnested arrays). For
// PostgreSQL also `SELECT 1` through the synchronous bridge (worker thread + Atomics.wait) and
// through the asynchronous pg client directly: their difference is the bridge's own overhead.
// SQLite runs on a file in a temp directory (WAL, as Tide opens it). Results: a table on stdout
// and bench/out/store-<time>.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, hostname, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { transpileStoreModules } from './store-modules.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const WARM = 200;

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
/** Runs f `n` times (after warm-up); µs per call: mean, p50, p99. */
function measure(f, n = CALLS) {
  for (let i = 0; i < Math.min(WARM, n); i++) f(i);
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    f(i);
    t[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const sorted = [...t].sort((a, b) => a - b);
  return { meanUs: t.reduce((a, b) => a + b, 0) / n, p50Us: pct(sorted, 50), p99Us: pct(sorted, 99), calls: n };
}
async function measureAsync(f, n = CALLS) {
  for (let i = 0; i < Math.min(WARM, n); i++) await f(i);
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await f(i);
    t[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const sorted = [...t].sort((a, b) => a - b);
  return { meanUs: t.reduce((a, b) => a + b, 0) / n, p50Us: pct(sorted, 50), p99Us: pct(sorted, 99), calls: n };
}

const plan = { policy: 'tide', time: 0, steps: [{ id: 1, kind: 'migrate', vm: 'a', from: 'h0', to: 'h1', memMiB: 512, deps: [], reason: 'r', by: 'b' }], hosts: [], notMoved: [] };
const holder = { pid: process.pid, host: hostname(), command: 'bench', startedMs: Date.now() };
const samples = Array.from({ length: 1000 }, (_, i) => ({ kind: i % 10 ? 'vm' : 'host', name: `e${i}`, host: i % 10 ? `h${i % 97}` : null, cpuPct: (i * 7) % 100, memMiB: 512 + i }));

/** The Store operations, each as a function of the call index. */
function storeOps(store) {
  const planId = store.savePlan(plan, { createdMs: 1, mode: 'approve', status: 'running' });
  const lease = store.acquireClusterLock(holder, 600_000);
  let fenceOn = false;
  return {
    'getPlan (point read)': () => store.getPlan(planId),
    'recordRoundError (insert)': (i) => store.recordRoundError({ atMs: i, code: 'X', message: 'bench' }),
    'saveStepRun (upsert)': (i) => store.saveStepRun(planId, { step: plan.steps[0], state: i % 2 ? 'running' : 'succeeded', startedAt: i }),
    'recordRoundError, fenced': (i) => {
      if (!fenceOn) {
        store.setFence(lease);
        fenceOn = true;
      }
      store.recordRoundError({ atMs: i, code: 'F', message: 'fenced' });
    },
    'heartbeatClusterLock': () => store.heartbeatClusterLock(lease),
    'recordMetrics (1,000 samples)': (i) => store.recordMetrics(1_000_000 + i * 60_000, samples),
  };
}

async function main() {
  const dir = transpileStoreModules('tide-bench-store-');
  const mod = (p) => import(pathToFileURL(join(dir, p)).href);
  const { openSqliteStore } = await mod('src/store/store.js');
  const { openPgStore } = await mod('src/store/pg/store.js');
  const { SyncPg } = await mod('src/store/pg/bridge.js');
  const pg = createRequire(join(ROOT, 'package.json'))('pg');
  pg.types.setTypeParser(20, (v) => Number(v));

  let server = null;
  let conn;
  if (process.env.BENCH_PG) {
    conn = { ssl: false, schema: `bench_${process.pid}`, timeoutMs: 10_000, password: process.env.PGPASSWORD ?? '', ...JSON.parse(process.env.BENCH_PG) };
  } else {
    const { startPostgres } = await mod('test/helpers/postgres.js');
    server = await startPostgres();
    if ('skip' in server) throw new Error(server.skip);
    conn = { host: server.host, port: server.port, database: server.createDatabase('bench'), user: server.user, password: server.password, ssl: false, schema: 'bench', timeoutMs: 10_000 };
  }
  const results = {};
  try {
    const sqliteDir = mkdtempSync(join(tmpdir(), 'tide-bench-sqlite-'));
    const sqlite = openSqliteStore(join(sqliteDir, 'tide.sqlite'));
    const pgStore = openPgStore(conn);
    const a = storeOps(sqlite);
    const b = storeOps(pgStore);
    for (const name of Object.keys(a)) {
      const n = name.startsWith('recordMetrics') ? Math.min(CALLS, 200) : CALLS;
      results[name] = { sqlite: measure(a[name], n), postgres: measure(b[name], n) };
    }
    sqlite.close();
    pgStore.close();
    rmSync(sqliteDir, { recursive: true, force: true });
    const bridge = new SyncPg(conn);
    const direct = new pg.Client({ host: conn.host, port: conn.port, database: conn.database, user: conn.user, password: conn.password });
    await direct.connect();
    results['bridge round trip, no database (worker hand-off only)'] = { postgres: measure(() => bridge.ping()) };
    results['SELECT 1 via the sync bridge'] = { postgres: measure(() => bridge.query('SELECT 1')) };
    results['SELECT 1, async pg client directly'] = { postgres: await measureAsync(() => direct.query('SELECT 1')) };
    bridge.close();
    await direct.end();
  } finally {
    if (server && !('skip' in server)) await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const f = (m) => (m ? `${m.meanUs.toFixed(0)} / ${m.p50Us.toFixed(0)} / ${m.p99Us.toFixed(0)}` : '');
  const lines = [
    `Store call cost, µs per call: mean / p50 / p99 (${CALLS} calls each; recordMetrics ${Math.min(CALLS, 200)})`,
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${loadavg().map((x) => x.toFixed(1)).join(' ')}, node ${process.version}`,
    '',
    '| operation | SQLite (file, WAL) | PostgreSQL (127.0.0.1) |',
    '|---|---|---|',
    ...Object.entries(results).map(([k, v]) => `| ${k} | ${f(v.sqlite)} | ${f(v.postgres)} |`),
  ];
  console.log(lines.join('\n'));
  const out = join(ROOT, 'bench', 'out');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `store-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), `${JSON.stringify({ calls: CALLS, machine: { cpus: cpus().length, load: loadavg() }, results }, null, 2)}\n`);
}

await main();
