#!/usr/bin/env node
// The forecaster's memory at scale (issue 9; bench/README.md "Forecaster memory"): the demand
// recorder (src/core/predict) filled as after N days of rounds, its heap and RSS measured, the
// current code side by side with an earlier commit's, in one run.
//
//   node bench/forecast-memory.js [--runs SPEC,...] [--previous COMMIT] [--compare-vms N] [--json]
//
// No build needed: src/core/predict/*.ts of the working tree ("current") and of COMMIT
// ("previous", default 9058de9: the storage before bounded VM profiles, via `git show`) are
// transpiled to a temporary directory with TypeScript's transpileModule.
//
// Each run (SPEC = impl:vms:rounds, rounds as a count or `Nd` = N days of rounds, e.g.
// current:200000:14d) is its own process (node --expose-gc): a DemandRecorder with the
// controller's options (stepSec = interval), fed one round per interval (default 300 s) of
// synthetic demand for every VM — per VM a level (50…3000 MIPS), a daily shape with quieter
// weekends, and noise — then gc, and memory as the growth over the empty process:
//   heapMiB = heapUsed + arrayBuffers (typed arrays live outside the JS heap), rssMiB = RSS,
//   perVmKiB = heapMiB / VMs; recordMs = mean time of one round's record(); forecastMs = one
//   forecast() at the end (every VM's arrays for the 4 h horizon).
// The default runs measure the previous storage at 2,000 and 10,000 VMs only for 14 days (≈ 235 KiB
// per VM measured, twice the 117 KiB of numbers its design note counted: 46 GiB at 200,000 VMs
// would not fit a shared machine); its 200,000-VM figure is that per-VM cost × 200,000 (printed
// as extrapolated).
//
// --compare-vms N (default 300; 0 = skip): N VMs, 15 days, both implementations fed the same
// rounds in one process, every VM's forecast compared each hour from day 1: the largest
// relative difference of cpuMips / cpuMipsHigh (the 16-bit values' bound is 2^-12 = 0.0244 %).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import ts from 'typescript';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const DAY = 86_400;
const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: 'previous:200000:3,current:200000:3,previous:2000:14d,previous:10000:14d,current:2000:14d,current:200000:14d' },
    previous: { type: 'string', default: '9058de9' },
    interval: { type: 'string', default: '300' },
    'compare-vms': { type: 'string', default: '300' },
    json: { type: 'boolean', default: false },
    child: { type: 'string' },
  },
});
const intervalSec = Number(args.interval);

/** Transpiles src/core/predict/*.ts of the working tree or of a commit into dir/<impl>/. */
function transpile(dir, impl) {
  const out = join(dir, impl);
  mkdirSync(out, { recursive: true });
  const files = impl === 'current'
    ? execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'src/core/predict'], { cwd: root, encoding: 'utf8' })
    : execFileSync('git', ['ls-tree', '--name-only', args.previous, 'src/core/predict/'], { cwd: root, encoding: 'utf8' });
  for (const f of files.split('\n').filter((x) => x.endsWith('.ts'))) {
    const text = impl === 'current' ? readFileSync(join(root, f), 'utf8') : execFileSync('git', ['show', `${args.previous}:${f}`], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
    const js = ts.transpileModule(text, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false } }).outputText;
    writeFileSync(join(out, f.slice('src/core/predict/'.length).replace(/\.ts$/, '.js')), js);
  }
  return join(out, 'forecast.js');
}

/** Deterministic demand: per VM a level and phase, per round a shared shape and noise table. */
function demandModel(vms) {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const level = new Float64Array(vms);
  const phase = new Float64Array(vms);
  for (let v = 0; v < vms; v++) {
    level[v] = 50 + 2950 * rnd() ** 2;
    phase[v] = rnd() * 3 * 3600;
  }
  const noise = new Float64Array(4096);
  for (let i = 0; i < noise.length; i++) noise[i] = 0.9 + 0.2 * rnd();
  /** CPU MIPS of VM v at t (s, 0 = Monday 00:00). */
  return (v, t, round) => {
    const tod = ((t + phase[v]) % DAY) / DAY;
    const weekend = Math.floor((t % (7 * DAY)) / DAY) >= 5 ? 0.4 : 1;
    const shape = 0.15 + 0.85 * weekend * Math.max(0, Math.sin(Math.PI * (tod * 24 - 7) / 11));
    return level[v] * shape * noise[(v * 31 + round) & 4095];
  };
}

function mem() {
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.arrayBuffers, rss: m.rss };
}

async function child(spec) {
  const { file, vms, rounds } = JSON.parse(spec);
  const { DemandRecorder } = await import(pathToFileURL(file).href);
  const demand = demandModel(vms);
  const samples = Array.from({ length: vms }, (_, v) => ({ id: `vm-${v}`, cpuMips: 0, memMiB: 1024 }));
  const before = mem();
  const r = new DemandRecorder({ stepSec: intervalSec });
  let recordNs = 0n;
  let t = 0;
  for (let k = 0; k < rounds; k++, t += intervalSec) {
    for (let v = 0; v < vms; v++) {
      samples[v].cpuMips = demand(v, t, k);
      samples[v].memMiB = 1024 + (k & 63);
    }
    const t0 = process.hrtime.bigint();
    r.record(t, samples);
    recordNs += process.hrtime.bigint() - t0;
  }
  const after = mem();
  const f0 = process.hrtime.bigint();
  const f = r.forecast(t - intervalSec);
  const forecastMs = Number(process.hrtime.bigint() - f0) / 1e6;
  const heapMiB = (after.heap - before.heap) / 2 ** 20;
  process.stdout.write(JSON.stringify({
    heapMiB, rssMiB: (after.rss - before.rss) / 2 ** 20, perVmKiB: (heapMiB * 1024) / vms,
    recordMs: Number(recordNs) / 1e6 / rounds, forecastMs, vmForecasts: Object.keys(f?.vms ?? {}).length,
  }));
}

/** Largest relative difference of the VM forecasts of the two implementations on one trace. */
async function compare(files, vms) {
  const [{ DemandRecorder: Cur }, { DemandRecorder: Prev }] = await Promise.all([import(pathToFileURL(files.current).href), import(pathToFileURL(files.previous).href)]);
  const demand = demandModel(vms);
  const cur = new Cur({ stepSec: intervalSec });
  const prev = new Prev({ stepSec: intervalSec });
  let maxRel = 0;
  let values = 0;
  let missing = 0;
  for (let k = 0, t = 0; t <= 15 * DAY; k++, t += intervalSec) {
    const samples = Array.from({ length: vms }, (_, v) => ({ id: `vm-${v}`, cpuMips: demand(v, t, k), memMiB: 1024 }));
    cur.record(t, samples);
    prev.record(t, samples);
    if (t < DAY || t % 3600 !== 0) continue;
    const a = cur.forecast(t);
    const b = prev.forecast(t);
    for (const [id, want] of Object.entries(b?.vms ?? {})) {
      const got = a?.vms?.[id];
      if (!got) {
        missing++;
        continue;
      }
      for (const key of ['cpuMips', 'cpuMipsHigh']) {
        want[key].forEach((w, i) => {
          values++;
          if (w !== 0) maxRel = Math.max(maxRel, Math.abs(got[key][i] - w) / Math.abs(w));
          else if (got[key][i] !== 0) maxRel = Infinity;
        });
      }
    }
  }
  return { vms, days: 15, valuesCompared: values, vmForecastsMissing: missing, maxRelError: maxRel };
}

function table(headers, data) {
  const cells = [headers, ...data.map((r) => r.map(String))];
  const w = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i < 1 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(cells[0]), w.map((x) => '-'.repeat(x)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'tide-forecast-mem-'));
  try {
    const files = { current: transpile(dir, 'current'), previous: transpile(dir, 'previous') };
    const rows = [];
    for (const spec of args.runs.split(',')) {
      const [impl, vmsText, roundsText] = spec.split(':');
      const vms = Number(vmsText);
      const rounds = roundsText.endsWith('d') ? Math.round((Number(roundsText.slice(0, -1)) * DAY) / intervalSec) : Number(roundsText);
      const wall0 = Date.now();
      const out = execFileSync(process.execPath, ['--expose-gc', '--max-old-space-size=16384', fileURLToPath(import.meta.url), '--interval', String(intervalSec), '--child', JSON.stringify({ file: files[impl], vms, rounds })], { encoding: 'utf8', maxBuffer: 1 << 20 });
      rows.push({ impl, vms, rounds, days: (rounds * intervalSec) / DAY, ...JSON.parse(out), wallS: (Date.now() - wall0) / 1000 });
    }
    const cmp = Number(args['compare-vms']) > 0 ? await compare(files, Number(args['compare-vms'])) : null;
    const extrapolated = rows.filter((r) => r.impl === 'previous' && r.vms < 200_000 && r.days >= 14).map((r) => ({ impl: 'previous', vms: 200_000, days: r.days, heapMiB: (r.perVmKiB * 200_000) / 1024, from: r.vms }));
    const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, loadavg: loadavg().map((x) => +x.toFixed(1)) };
    if (args.json) {
      console.log(JSON.stringify({ intervalSec, previous: args.previous, machine, rows, extrapolated, compare: cmp }, null, 2));
      return;
    }
    console.log(`# Forecaster memory — ${new Date().toISOString()} — node ${process.version}, ${machine.cpus} × ${machine.cpu}, ${machine.memGiB} GiB, load ${machine.loadavg.join(' ')}`);
    console.log(`# rounds every ${intervalSec} s; previous = ${args.previous}\n`);
    const f1 = (x) => x.toFixed(1);
    console.log(table(['impl', 'VMs', 'days', 'heap MiB', 'RSS MiB', 'KiB/VM', 'record ms/round', 'forecast ms', 'VM forecasts', 'wall s'], [
      ...rows.map((r) => [r.impl, r.vms, f1(r.days), f1(r.heapMiB), f1(r.rssMiB), f1(r.perVmKiB), f1(r.recordMs), f1(r.forecastMs), r.vmForecasts, f1(r.wallS)]),
      ...extrapolated.map((r) => [`${r.impl} (× ${200_000 / r.from} from ${r.from} VMs)`, r.vms, f1(r.days), f1(r.heapMiB), '-', '-', '-', '-', '-', '-']),
    ]));
    if (cmp) console.log(`\nsame trace, ${cmp.vms} VMs, ${cmp.days} days, forecasts each hour from day 1: ${cmp.valuesCompared} values, max relative difference ${(cmp.maxRelError * 100).toPrecision(3)} %, VM forecasts missing ${cmp.vmForecastsMissing}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (args.child) await child(args.child);
else await main();
