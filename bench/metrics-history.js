#!/usr/bin/env node
// Metrics history benchmark: what one round of Store.recordMetrics costs as the history grows,
// at 10,000 hosts / 200,000 VMs by default (one raw row per host and VM per round), SQLite and
// optionally PostgreSQL; and one hourly roll-up.
//
//   node bench/metrics-history.js                                   # SQLite, 210,000 entities, 30 rounds
//   node bench/metrics-history.js --entities 21000 --rounds 200 --every 25
//   node bench/metrics-history.js --rounds 20 --every 5 --pg        # also PostgreSQL (as root: the tests' private server)
//   node bench/metrics-history.js --rollup                          # 9 rounds 10 min apart: the 9th rolls the first hour up
//
// No build needed: the store modules (and the tests' PostgreSQL fixture) are transpiled from the
// sources into a temp directory, as bench/store.js does. Rounds are 60 s apart on the store's
// clock (24 h raw retention: nothing is rolled up), so the growth is the history's own. Per
// block of --every rounds: mean wall and CPU ms of a round (one Store.batch, as the daemon's
// journal commits it; CPU is this process's: PostgreSQL's server work is not in it), and the
// store's size (SQLite: database + WAL file; PostgreSQL: pg_total_relation_size of metrics).
// At the end, one host's whole history and every VM point are read back (metricsHistory).
// --rollup: 9 rounds 10 min apart with a 10-min raw retention; the 9th (at 80 min) merges the
// first hour's 6 rounds (6 × entities raw rows) into hourly means: its ms minus a plain round's
// is the roll-up's. Output: JSON lines on stdout.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { transpileStoreModules } from './store-modules.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith('--') ? true : Number(v);
};
const ENTITIES = arg('entities', 210_000);
const ROUNDS = arg('rounds', 30);
const EVERY = arg('every', 10);
const PG = arg('pg', false) === true;
const ROLLUP = arg('rollup', false) === true;

/** One round: ENTITIES / 21 hosts, the rest VMs spread over them (names as the bench cluster's). */
function round(r) {
  const hosts = Math.max(1, Math.round(ENTITIES / 21));
  const out = [];
  for (let h = 0; h < hosts; h++) out.push({ kind: 'host', name: `host-${String(h).padStart(5, '0')}`, host: null, cpuPct: (h * 7 + r) % 100, memMiB: 100_000 + h });
  for (let v = 0; v < ENTITIES - hosts; v++) out.push({ kind: 'vm', name: `vm-${String(v).padStart(6, '0')}`, host: `host-${String(v % hosts).padStart(5, '0')}`, cpuPct: (v * 13 + r) % 100, memMiB: 2048 + (v % 512) });
  return out;
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Records `rounds` rounds `stepMs` apart; a block summary every `every` rounds. */
function grow(store, sizeMiB, { rounds, every, stepMs, retention }) {
  const blocks = [];
  let wall = 0;
  let cpu = 0;
  for (let r = 0; r < rounds; r++) {
    const samples = round(r);
    const t0 = performance.now();
    const c0 = cpuMs();
    store.batch(() => store.recordMetrics(r * stepMs, samples, retention));
    wall += performance.now() - t0;
    cpu += cpuMs() - c0;
    if ((r + 1) % every === 0) {
      blocks.push({ rounds: r + 1, wallMs: Math.round(wall / every), cpuMs: Math.round(cpu / every), storeMiB: sizeMiB() });
      wall = 0;
      cpu = 0;
    }
  }
  return blocks;
}

function readBack(store) {
  const t0 = performance.now();
  const host = store.metricsHistory({ kind: 'host', name: 'host-00003' }).length;
  const t1 = performance.now();
  const vms = store.metricsHistory({ kind: 'vm' }).length;
  return { hostPoints: host, hostReadMs: Math.round(t1 - t0), vmPoints: vms, vmReadMs: Math.round(performance.now() - t1) };
}

async function main() {
  const dir = transpileStoreModules('tide-bench-metrics-');
  const mod = (p) => import(pathToFileURL(join(dir, p)).href);
  const { openSqliteStore } = await mod('src/store/store.js');
  const load = () => Math.round(loadavg()[0] * 100) / 100;
  const runs = [];
  const sqliteDir = mkdtempSync(join(tmpdir(), 'tide-bench-metrics-db-'));
  try {
    const path = join(sqliteDir, 'tide.sqlite');
    const size = () => {
      let b = 0;
      for (const f of [path, `${path}-wal`]) {
        try {
          b += statSync(f).size;
        } catch { /* no WAL yet */ }
      }
      return Math.round(b / 1048576);
    };
    const s = openSqliteStore(path);
    const l0 = load();
    const opts = ROLLUP
      ? { rounds: 9, every: 1, stepMs: 600_000, retention: { rawKeepMs: 600_000 } }
      : { rounds: ROUNDS, every: EVERY, stepMs: 60_000, retention: undefined };
    const blocks = grow(s, size, opts);
    const back = readBack(s);
    s.close();
    runs.push({ store: 'sqlite', entities: ENTITIES, ...opts, blocks, ...back, closedMiB: size(), load: [l0, load()] });
    console.log(JSON.stringify(runs.at(-1)));
  } finally {
    rmSync(sqliteDir, { recursive: true, force: true });
  }
  if (PG) {
    const { openPgStore } = await mod('src/store/pg/store.js');
    const { startPostgres } = await mod('test/helpers/postgres.js');
    const server = await startPostgres();
    if ('skip' in server) throw new Error(server.skip);
    try {
      const database = server.createDatabase('bench');
      const s = openPgStore({ host: server.host, port: server.port, database, user: server.user, password: server.password, ssl: false, schema: 'bench', timeoutMs: 600_000 });
      const size = () => Math.round(Number(server.psql(database, "SELECT pg_total_relation_size('bench.metrics')")) / 1048576);
      const l0 = load();
      const blocks = grow(s, size, { rounds: ROUNDS, every: EVERY, stepMs: 60_000, retention: undefined });
      const back = readBack(s);
      s.close();
      console.log(JSON.stringify({ store: 'postgres', entities: ENTITIES, rounds: ROUNDS, blocks, ...back, load: [l0, load()] }));
    } finally {
      await server.stop();
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

await main();
