#!/usr/bin/env node
// The forecaster's seed after a restart at scale (issue 9; bench/README.md "The full loop at
// scale"): how long src/app/forecast-seed.ts takes to feed a new DemandRecorder from the store's
// metrics history, and the process's peak memory, as the stored points grow; the seed before the
// paged read (one metricsHistory({ kind: 'vm' }) of everything, then a filter) and the current
// one side by side, in one run, on the same SQLite store file.
//
//   node bench/forecast-seed.js [--vms 2000,20000] [--days 2] [--interval 300] [--heap-mib M] [--pg | --pg-only] [--json]
//
// --heap-mib M: each seed runs with node --max-old-space-size=M; a seed that runs out of heap is
// shown as "out of heap" (the unbounded read at 20,000 VMs needs ~2 GiB; the paged one does not).
//
// No build needed: the store, the recorder (src/core/predict) and the seed of the working tree
// ("after") and the seed of commit 5187af1 ("before", via `git show`) are transpiled into a temp
// directory with TypeScript's transpileModule.
// Per VM count: a store file is written with --days of rounds every --interval s through
// Store.recordMetrics (one batch a round; the default retention: 24 h raw, older hours rolled up
// to hourly means), every VM measured each round, plus one host per 20 VMs. Then each seed runs
// in its own process (so its peak RSS is its own): open the store, list the VMs (2 vCPUs), seed
// a DemandRecorder with the controller's options (stepSec = interval), forecast. Printed: points
// stored (VM rows), seed wall ms, peak RSS (process maxRSS) and its growth over the process
// before the seed, pages and the largest page (after), and whether both forecasts are equal.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import ts from 'typescript';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const BEFORE = '5187af1';
const { values: args } = parseArgs({
  options: {
    vms: { type: 'string', default: '2000,20000' },
    days: { type: 'string', default: '2' },
    interval: { type: 'string', default: '300' },
    json: { type: 'boolean', default: false },
    // each seed's process limited to this V8 old space, MiB (0: node's default): does it fit?
    'heap-mib': { type: 'string', default: '0' },
    // also PostgreSQL (the tests' private server, started here; as root), same histories
    pg: { type: 'boolean', default: false },
    // --pg-only: PostgreSQL alone
    'pg-only': { type: 'boolean', default: false },
    // internal: one measurement in a child process
    child: { type: 'string' },
  },
});
const INTERVAL = Number(args.interval);
const MONDAY_MS = 1_767_571_200_000; // 2026-01-05 00:00 UTC, a Monday

function transpile() {
  const dir = mkdtempSync(join(tmpdir(), 'tide-bench-seed-'));
  const put = (rel, text) => {
    const out = ts.transpileModule(text, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true } }).outputText;
    const to = join(dir, rel.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, out);
  };
  for (const rel of ['src/store/store.ts', 'src/store/rows.ts', 'src/store/pg/bridge.ts', 'src/store/pg/schema.ts', 'src/store/pg/store.ts', 'src/drivers/errors.ts', 'test/helpers/postgres.ts',
    'src/app/forecast-seed.ts', 'src/core/predict/forecast.ts', 'src/core/predict/profile.ts', 'src/core/predict/cpu-profile.ts']) put(rel, readFileSync(join(root, rel), 'utf8'));
  put('before/forecast-seed.ts', execFileSync('git', ['show', `${BEFORE}:src/app/forecast-seed.ts`], { cwd: root, encoding: 'utf8' }));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

const vmName = (v) => `vm-${String(v).padStart(6, '0')}`;

/** Writes the history: --days of rounds ending at `endMs`. */
function write(store, vms, days, endMs) {
  const hosts = Math.max(1, Math.round(vms / 20));
  const step = INTERVAL * 1000;
  const t0 = performance.now();
  for (let t = endMs - days * 86_400_000; t < endMs; t += step) {
    const hour = (t / 3_600_000) % 24;
    const day = 30 + 40 * Math.max(0, Math.sin(((hour - 6) / 12) * Math.PI));
    const samples = [];
    for (let h = 0; h < hosts; h++) samples.push({ kind: 'host', name: `host-${String(h).padStart(5, '0')}`, host: null, cpuPct: day, memMiB: 100_000 });
    for (let v = 0; v < vms; v++) samples.push({ kind: 'vm', name: vmName(v), host: `host-${String(v % hosts).padStart(5, '0')}`, cpuPct: Math.min(100, day * (0.5 + (v % 7) / 7) + ((v * 13 + t / step) % 10)), memMiB: 2048 + (v % 512) });
    store.batch(() => store.recordMetrics(t, samples));
  }
  const ms = performance.now() - t0;
  store.close();
  return { writeMs: Math.round(ms) };
}

/** In a child: one seed (`impl` before | after), printed as JSON. */
async function child(spec) {
  const { dir, path, pg, vms, impl, nowMs } = JSON.parse(spec);
  const mod = (p) => import(pathToFileURL(join(dir, p)).href);
  const { openSqliteStore } = await mod('src/store/store.js');
  const { DemandRecorder } = await mod('src/core/predict/forecast.js');
  const { seedRecorderFromStore } = await mod(impl === 'before' ? 'before/forecast-seed.js' : 'src/app/forecast-seed.js');
  const store = pg ? (await mod('src/store/pg/store.js')).openPgStore(pg) : openSqliteStore(path);
  const list = Array.from({ length: vms }, (_, v) => ({ id: vmName(v), vcpus: 2, mipsPerVcpu: 2500 }));
  const rec = new DemandRecorder({ stepSec: INTERVAL });
  globalThis.gc?.();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const stats = seedRecorderFromStore(rec, store, list, nowMs / 1000, { intervalSec: INTERVAL });
  const seedMs = performance.now() - t0;
  const peakMiB = process.resourceUsage().maxRSS / 1024;
  const f = rec.forecast(nowMs / 1000);
  // a digest of the forecast (equal digests: equal forecasts, as far as a sum can tell, plus the VM set)
  let sum = 0;
  for (const p of f?.points ?? []) sum += p.cpuMips * 1e-3 + p.memMiB * 1e-6 + p.cpuMipsHigh * 1e-4;
  for (const [id, v] of Object.entries(f?.vms ?? {})) for (let k = 0; k < v.cpuMips.length; k++) sum += v.cpuMips[k] * (k + 1) * 1e-7 + v.cpuMipsHigh[k] * 1e-8 + id.length;
  store.close();
  process.stdout.write(JSON.stringify({
    impl, seedMs: Math.round(seedMs), peakRssMiB: Math.round(peakMiB), seedRssMiB: Math.round(peakMiB - rss0 / 2 ** 20),
    pages: typeof stats === 'object' ? stats.pages : 1, maxPagePoints: typeof stats === 'object' ? stats.maxPagePoints : null,
    rounds: typeof stats === 'object' ? stats.rounds : stats, forecastVms: Object.keys(f?.vms ?? {}).length, digest: sum.toPrecision(15),
  }));
}

async function main() {
  const dir = transpile();
  const out = [];
  const mod = (p) => import(pathToFileURL(join(dir, p)).href);
  const { openSqliteStore } = await mod('src/store/store.js');
  let server = null;
  try {
    const days = Number(args.days);
    const nowMs = MONDAY_MS + 21 * 86_400_000 + 7 * 3_600_000;
    if (args.pg || args['pg-only']) {
      server = await (await mod('test/helpers/postgres.js')).startPostgres();
      if ('skip' in server) throw new Error(server.skip);
    }
    for (const vms of args.vms.split(',').map(Number)) {
      for (const kind of args['pg-only'] ? ['postgres'] : args.pg ? ['sqlite', 'postgres'] : ['sqlite']) {
        const path = join(dir, `seed-${vms}.sqlite`);
        let pg = null;
        let w;
        let fileMiB;
        if (kind === 'sqlite') {
          w = write(openSqliteStore(path), vms, days, nowMs);
          fileMiB = Math.round((statSync(path).size + (statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0)) / 2 ** 20);
          const db = new Database(path, { readonly: true });
          w.points = db.prepare("SELECT count(*) AS n FROM metrics WHERE kind = 'vm'").get().n;
          db.close();
        } else {
          const database = server.createDatabase(`seed${vms}`);
          pg = { host: server.host, port: server.port, database, user: server.user, password: server.password, ssl: false, schema: 'bench', timeoutMs: 600_000 };
          w = write((await mod('src/store/pg/store.js')).openPgStore(pg), vms, days, nowMs);
          w.points = Number(server.psql(database, "SELECT count(*) FROM bench.metrics WHERE kind = 'vm'"));
          fileMiB = Math.round(Number(server.psql(database, "SELECT pg_total_relation_size('bench.metrics')")) / 2 ** 20);
        }
        const row = { store: kind, vms, days, points: w.points, fileMiB, writeMs: w.writeMs };
        for (const impl of ['before', 'after']) {
          const spec = JSON.stringify({ dir, path, pg, vms, impl, nowMs });
          const heap = Number(args['heap-mib']) > 0 ? [`--max-old-space-size=${Number(args['heap-mib'])}`] : [];
          try {
            row[impl] = JSON.parse(execFileSync(process.execPath, ['--expose-gc', ...heap, fileURLToPath(import.meta.url), '--interval', String(INTERVAL), '--child', spec],
              { encoding: 'utf8', maxBuffer: 1 << 20, stdio: ['ignore', 'pipe', 'pipe'] }));
          } catch (e) {
            row[impl] = { failed: /heap out of memory|Allocation failed/i.test(String(e.stderr)) ? 'out of heap' : `failed: ${String(e.message).slice(0, 200)}` };
          }
        }
        row.sameForecast = row.before.failed || row.after.failed ? null : row.before.digest === row.after.digest && row.before.forecastVms === row.after.forecastVms;
        out.push(row);
        if (!args.json) console.error(`${kind} ${vms} VMs done`);
      }
    }
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const machine = { cpus: cpus().length, model: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), load: loadavg().map((x) => x.toFixed(2)), node: process.version, date: new Date().toISOString() };
  if (args.json) {
    console.log(JSON.stringify({ machine, runs: out }));
    return;
  }
  console.log(`forecast seed, ${INTERVAL}-s rounds; ${machine.model} × ${machine.cpus}, load ${machine.load.join(' ')}, ${machine.node}, ${machine.date}`);
  console.log("| store | VMs | days | VM points | store MiB | seed ms before | after | peak RSS MiB before | after | seed's RSS growth before | after | pages (largest) | same forecast |");
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--:|');
  const f = (x, k) => x.failed ?? x[k];
  if (Number(args['heap-mib']) > 0) console.log(`each seed's process: --max-old-space-size=${args['heap-mib']}`);
  for (const r of out) {
    console.log(`| ${r.store} | ${r.vms} | ${r.days} | ${r.points} | ${r.fileMiB} | ${f(r.before, 'seedMs')} | ${f(r.after, 'seedMs')} | ${f(r.before, 'peakRssMiB')} | ${f(r.after, 'peakRssMiB')} | ${f(r.before, 'seedRssMiB')} | ${f(r.after, 'seedRssMiB')} | ${r.after.failed ? '–' : `${r.after.pages} (${r.after.maxPagePoints})`} | ${r.sameForecast === null ? '–' : r.sameForecast ? 'yes' : 'NO'} |`);
  }
}

if (args.child) await child(args.child);
else await main();
