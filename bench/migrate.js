#!/usr/bin/env node
// Migration benchmark on the two-host lab (docs/lab.md), over the built code in dist/:
//
//   npm run build && node bench/migrate.js            # as root; brings the lab up if needed
//
// 1. Overhead: Tide's migrate vs raw `virsh migrate --live --p2p --persistent --undefinesource`
//    on the same guest, alternating runs (the guest ping-pongs between the hosts, and the
//    order of the variants rotates each round). Variants: Tide's API on a long-lived driver
//    (what the daemon does), Tide's CLI as a process (`node bin/tide.js migrate`), and virsh.
//    The same service probe (every 20 ms, from the lab's switch namespace) watches all of them.
// 2. Settings: plain vs auto-converge vs post-copy on a guest dirtying BENCH_DIRTY_MIB MiB
//    (`tide bench migrate`'s API), on the unshaped veth and on links shaped to
//    BENCH_SHAPE_MBIT Mbit/s (where plain pre-copy no longer converges).
// 3. Stats: one sample of every VM of a host (driver.sample(), libvirt vs virsh driver), and
//    1,000 calls pipelined on one RPC connection vs sequential.
//
// Knobs: BENCH_RUNS (rounds of the overhead comparison, default 8), BENCH_SETTINGS_RUNS (3),
// BENCH_DIRTY_MIB (32), BENCH_SHAPE_MBIT (100; 0 = skip), BENCH_SHAPED_RUNS (1),
// BENCH_SHAPED_TIMEOUT_S (90), BENCH_VM (vm1), TIDE_LAB_DIR (/tmp/tide-lab), BENCH_KEEP_LAB=1 (leave a
// lab this script brought up). Results also go to bench/out/migrate-<time>.json.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchMigrate, median, mean, parseBenchSetting, summarize } from '../dist/api/bench-migrate.js';
import { Cluster } from '../dist/api/cluster.js';
import { loadConfig } from '../dist/config/load.js';
import { LibvirtDriver } from '../dist/drivers/libvirt/index.js';
import { VirshDriver } from '../dist/drivers/virsh/index.js';
import { DEFAULT_LAB_DIR, Lab, labLayout, labPrerequisiteProblem } from '../dist/lab/index.js';
import { acquireLock } from '../dist/lab/lock.js';
import { LibvirtConnection } from '../dist/libvirt/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const RUNS = Number(process.env.BENCH_RUNS ?? 8);
const SETTINGS_RUNS = Number(process.env.BENCH_SETTINGS_RUNS ?? 3);
const DIRTY_MIB = Number(process.env.BENCH_DIRTY_MIB ?? 32);
const SHAPE_MBIT = Number(process.env.BENCH_SHAPE_MBIT ?? 100);
const SHAPED_RUNS = Number(process.env.BENCH_SHAPED_RUNS ?? 1);
const SHAPED_TIMEOUT_S = Number(process.env.BENCH_SHAPED_TIMEOUT_S ?? 90);
const VM = process.env.BENCH_VM ?? 'vm1';
const DIR = process.env.TIDE_LAB_DIR ?? DEFAULT_LAB_DIR;
const log = (m) => process.stderr.write(`[bench] ${m}\n`);

function run(cmd, args, env = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, LC_ALL: 'C', LANG: 'C', ...env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const fmt = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));

function table(headers, rows) {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const w = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  // text columns left-aligned, numeric ones right-aligned
  const numeric = headers.map((_, i) => cells.slice(1).every((r) => /^[-–]?$|^-?[\d.,]+( %)?$|^\d+\/\d+$/.test(r[i])));
  const line = (r) => `| ${r.map((c, i) => (numeric[i] ? c.padStart(w[i]) : c.padEnd(w[i]))).join(' | ')} |`;
  return [line(cells[0]), `|${w.map((n, i) => `${'-'.repeat(n + 1)}${numeric[i] ? ':' : '-'}`).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

async function main() {
  const problem = labPrerequisiteProblem(labLayout(DIR).cacheDir);
  if (problem) throw new Error(`the lab cannot run here: ${problem}`);
  mkdirSync(DIR, { recursive: true });
  const release = await acquireLock(labLayout(DIR).leaseFile, { what: 'the lab lease', timeoutMs: 30 * 60_000, onWait: (p) => log(`lab busy (pid ${p}); waiting`) });
  let broughtUp = false;
  let lab;
  const drivers = [];
  try {
    const up = await Lab.up({ dir: DIR, vms: 1, log });
    broughtUp = !up.reused;
    lab = up.lab;
    await lab.setDirty(VM, 0);
    const config = loadConfig(lab.configFile);
    const uriOf = (h) => config.hosts.find((x) => x.name === h);
    const out = { at: new Date().toISOString(), accel: lab.accel, vm: VM, overhead: [], settings: null, stats: {} };

    // ---------------------------------------------------------------- 1. overhead
    const driver = new LibvirtDriver(config.hosts);
    drivers.push(driver);
    const cluster = new Cluster(config, driver);
    await driver.listVms(); // open the connections once, as a long-lived Tide does
    const variants = {
      'tide-api': async (to) => {
        const r = await cluster.migrate({ vm: VM, to, mode: 'live', settings: { autoConverge: false, postCopyAfterIterations: 0 } });
        if (!r.ok) throw new Error(`tide: ${r.error?.message}`);
        return { downtimeMs: r.downtimeMs };
      },
      'tide-cli': async (to) => {
        const r = await run(process.execPath, [join(here, '../bin/tide.js'), '--config', lab.configFile, 'migrate', VM, '--to', to, '--no-auto-converge', '--json']);
        if (r.code !== 0) throw new Error(`tide CLI: ${r.stderr.trim()}`);
        return { downtimeMs: JSON.parse(r.stdout).downtimeMs };
      },
      virsh: async (to, from) => {
        const r = await run('virsh', ['-c', uriOf(from).uri, 'migrate', '--live', '--p2p', '--persistent', '--undefinesource', '--domain', VM, '--desturi', uriOf(to).peerUri]);
        if (r.code !== 0) throw new Error(`virsh: ${r.stderr.trim()}`);
        const job = await run('virsh', ['-c', uriOf(to).uri, 'domjobinfo', '--completed', '--keep-completed', '--rawstats', '--domain', VM]);
        const dt = /^downtime:\s*(\d+)/m.exec(job.stdout);
        return { downtimeMs: dt ? Number(dt[1]) : null };
      },
    };
    const names = Object.keys(variants);
    log(`overhead: ${RUNS} rounds of ${names.join(', ')} on ${VM} (${lab.accel})`);
    // one unmeasured migration: first-use costs (capabilities, caches) hit nobody
    {
      const from = await lab.locate(VM);
      await variants.virsh(lab.otherHost(from), from);
    }
    for (let round = 0; round < RUNS; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length]);
      for (const v of order) {
        const from = await lab.locate(VM);
        const to = lab.otherHost(from);
        const probe = await lab.probe(VM, { infoPath: undefined });
        await new Promise((r) => setTimeout(r, 200));
        const t0 = performance.now();
        const r = await variants[v](to, from);
        const wallMs = performance.now() - t0;
        await new Promise((r2) => setTimeout(r2, 400)); // let the probe see the service again
        const rep = await probe.stop();
        if ((await lab.locate(VM)) !== to) throw new Error(`${v}: ${VM} is not on ${to}`);
        out.overhead.push({ variant: v, round, from, to, wallMs, downtimeMs: r.downtimeMs, probeGapMs: rep.maxGapMs, probeFailed: rep.failed });
        log(`  ${v.padEnd(8)} ${from}→${to}: ${wallMs.toFixed(0)} ms, downtime ${r.downtimeMs} ms, probe gap ${rep.maxGapMs} ms, ${rep.failed} failed`);
      }
    }
    const byVariant = (v) => out.overhead.filter((x) => x.variant === v);
    const stat = (v, k) => byVariant(v).map((x) => x[k]).filter((x) => typeof x === 'number');
    const base = median(stat('virsh', 'wallMs'));
    const rows = names.map((v) => {
      const wall = median(stat(v, 'wallMs'));
      return [v, byVariant(v).length, fmt(wall), fmt(mean(stat(v, 'wallMs'))), fmt(median(stat(v, 'downtimeMs'))), fmt(median(stat(v, 'probeGapMs'))),
        fmt(Math.max(...stat(v, 'probeGapMs'))), stat(v, 'probeFailed').reduce((a, b) => a + b, 0), v === 'virsh' ? '–' : `${fmt(((wall - base) / base) * 100, 1)} %`];
    });
    const overheadTable = table(['variant', 'runs', 'wall median ms', 'wall mean ms', 'libvirt downtime median ms', 'probe gap median ms', 'probe gap max ms', 'probe failed', 'overhead vs virsh (median)'], rows);

    // ---------------------------------------------------------------- 2. settings
    // Unshaped, a TCG guest dirtying 32 MiB still converges; on a slower link it does not,
    // which is where the settings differ (runs that hit the timeout are aborted and fail).
    const conditions = [{ label: 'veth, unshaped', mbit: 0, runs: SETTINGS_RUNS, timeoutSec: 120 }];
    if (SHAPE_MBIT > 0 && SHAPED_RUNS > 0) conditions.push({ label: `${SHAPE_MBIT} Mbit/s`, mbit: SHAPE_MBIT, runs: SHAPED_RUNS, timeoutSec: SHAPED_TIMEOUT_S });
    const settingsRows = [];
    out.settings = [];
    for (const cond of conditions) {
      log(`settings on ${cond.label}: plain, auto-converge, post-copy; ${cond.runs} run(s); guest dirtying ${DIRTY_MIB} MiB; timeout ${cond.timeoutSec} s`);
      await lab.setDirty(VM, DIRTY_MIB);
      if (cond.mbit > 0) await lab.shapeLinks(cond.mbit);
      try {
        // one setting at a time, so a guest that a setting left hung (seen with heavy
        // auto-converge throttling under TCG) is noticed, counted and rebooted
        const runsOf = [];
        const hung = {};
        for (let run = 1; run <= cond.runs; run++) {
          for (const name of ['plain', 'post-copy', 'auto-converge']) {
            const st = parseBenchSetting(name);
            st.settings.timeoutSec = cond.timeoutSec;
            const res = await benchMigrate(cluster, {
              vms: [VM], runs: 1, warmup: 0, probe: 'auto', settings: [st],
              onRun: (r) => log(`  ${r.setting} #${run}: ${r.report.ok ? `${r.report.totalMs} ms, downtime ${r.report.downtimeMs} ms, probe ${r.report.probeDowntimeMs} ms (${r.report.probe?.failed} failed), ${((r.report.bytes ?? 0) / 2 ** 20).toFixed(1)} MiB${r.report.postCopy ? ', post-copy' : ''}` : `FAILED ${r.report.error?.code}`}`),
            });
            runsOf.push(...res.runs.map((r) => ({ ...r, run })));
            try {
              await lab.waitGuest(lab.vm(VM), 30_000);
            } catch {
              hung[name] = (hung[name] ?? 0) + 1;
              log(`  ${name} #${run}: the guest no longer answers (hung); rebooting it`);
              const h = await lab.locate(VM);
              await lab.virshOk(h, ['destroy', '--domain', VM]);
              await lab.virshOk(h, ['start', '--domain', VM]);
              await lab.waitGuest(lab.vm(VM));
            }
            await lab.setDirty(VM, DIRTY_MIB);
          }
        }
        const rows = summarize(runsOf);
        out.settings.push({ condition: cond, runs: runsOf, rows, hung });
        for (const x of rows) {
          settingsRows.push([cond.label, x.setting, `${x.ok}/${x.runs}`, fmt(x.totalMsMedian), fmt(x.downtimeMsMedian), fmt(x.probeDowntimeMsMedian), fmt(x.probeDowntimeMsMax),
            x.probeFailed, fmt(x.mibMean, 1), fmt(x.iterationsMedian), x.postCopyRuns, hung[x.setting] ?? 0]);
        }
      } finally {
        if (cond.mbit > 0) await lab.unshapeLinks();
        await lab.setDirty(VM, 0);
      }
    }
    const settingsTable = table(['link', 'setting', 'ok', 'wall median ms', 'libvirt downtime median ms', 'probe gap median ms', 'probe gap max ms', 'probe failed', 'MiB sent (mean)', 'passes (median)', 'post-copy runs', 'guest hung after'], settingsRows);

    // ---------------------------------------------------------------- 3. stats and pipelining
    const host = await lab.locate(VM);
    const timeIt = async (n, fn) => {
      const xs = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await fn();
        xs.push(performance.now() - t0);
      }
      return median(xs);
    };
    const onlyHost = config.hosts.filter((h) => h.name === host);
    const lv = new LibvirtDriver(onlyHost);
    const vs = new VirshDriver(onlyHost);
    drivers.push(lv, vs);
    await lv.sample();
    out.stats.sampleLibvirtMs = await timeIt(20, () => lv.sample());
    out.stats.sampleVirshMs = await timeIt(10, () => vs.sample());
    out.stats.vmsOnHost = (await lv.listVms()).filter((v) => v.host === host && v.state === 'running').length;
    const conn = await LibvirtConnection.open(uriOf(host).uri);
    try {
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 1000 }, () => conn.listAllDomains()));
      out.stats.pipelined1000Ms = performance.now() - t0;
      const t1 = performance.now();
      for (let i = 0; i < 1000; i++) await conn.listAllDomains();
      out.stats.sequential1000Ms = performance.now() - t1;
    } finally {
      await conn.close();
    }
    const statsTable = table(['operation', 'ms'], [
      [`driver.sample() of ${host} (${out.stats.vmsOnHost} VM), libvirt driver: one GET_ALL_DOMAIN_STATS + node CPU/memory, median of 20`, fmt(out.stats.sampleLibvirtMs, 1)],
      [`driver.sample() of ${host}, virsh driver: domstats + list + nodecpustats + nodememstats processes, median of 10`, fmt(out.stats.sampleVirshMs, 1)],
      ['1,000 × CONNECT_LIST_ALL_DOMAINS pipelined on one connection', fmt(out.stats.pipelined1000Ms)],
      ['1,000 × CONNECT_LIST_ALL_DOMAINS sequential on one connection', fmt(out.stats.sequential1000Ms)],
    ]);

    process.stdout.write(`\nMigration overhead (${lab.accel}, ${VM}, ${RUNS} rounds, alternating)\n\n${overheadTable}\n\nMigration settings (guest dirtying ${DIRTY_MIB} MiB)\n\n${settingsTable}\n\nStatistics\n\n${statsTable}\n`);
    mkdirSync(join(here, 'out'), { recursive: true });
    const file = join(here, 'out', `migrate-${out.at.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
    log(`raw results: ${file}`);
  } finally {
    await Promise.all(drivers.map((d) => d.close().catch(() => {})));
    if (lab && broughtUp && process.env.BENCH_KEEP_LAB !== '1') await Lab.down({ dir: DIR, log });
    release();
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`bench/migrate.js: ${e.stack ?? e}\n`);
  process.exit(1);
});
