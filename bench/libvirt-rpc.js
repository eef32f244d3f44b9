#!/usr/bin/env node
// Benchmark of Tide's libvirt RPC client against virsh, side by side in one run.
//
//   npm run build && node bench/libvirt-rpc.js            # private libvirtd + BENCH_VMS TCG guests (root)
//   LIBVIRT_URI='qemu+unix:///system?socket=/run/libvirt/libvirt-sock' node bench/libvirt-rpc.js
//
// Without LIBVIRT_URI it starts a private libvirtd with the test fixture (test/helpers/libvirtd.ts,
// transpiled on the fly with the project's TypeScript), boots BENCH_VMS (default 4) tiny diskless
// QEMU guests, measures, and removes everything again. virsh runs with execFile (argv, no shell)
// and LC_ALL=C. Numbers are wall-clock milliseconds on this machine; run it twice, the first
// run may include QEMU capability probing on the daemon side.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { LibvirtConnection } from '../dist/libvirt/index.js';

const execFileP = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const N_CALLS = Number(process.env.BENCH_CALLS ?? 1000);
const N_VMS = Number(process.env.BENCH_VMS ?? 4);
const N_VIRSH = Number(process.env.BENCH_VIRSH ?? 30);
const N_STATS = Number(process.env.BENCH_STATS ?? 30);

/** Loads the TypeScript test fixture as an ES module (no build step or loader needed). */
async function loadFixture() {
  const src = readFileSync(join(here, '../test/helpers/libvirtd.ts'), 'utf8');
  const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const dir = mkdtempSync(join(tmpdir(), 'tide-bench-'));
  const file = join(dir, 'libvirtd-fixture.mjs');
  writeFileSync(file, js);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function time(fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function mean(n, fn) {
  const samples = [];
  for (let i = 0; i < n; i++) samples.push(await time(fn));
  samples.sort((a, b) => a - b);
  return { mean: samples.reduce((a, b) => a + b, 0) / n, p50: samples[Math.floor(n / 2)], n };
}

function virsh(uri, args) {
  return execFileP('virsh', ['-c', uri, ...args], { env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 64 * 1024 * 1024 });
}

const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

async function main() {
  let fixture = null;
  let daemon = null;
  let uri = process.env.LIBVIRT_URI;
  const created = [];
  let conn = null;
  try {
    if (!uri) {
      fixture = await loadFixture();
      const a = fixture.libvirtdAvailability({ qemu: true });
      if (!a.ok) throw new Error(`cannot start a private libvirtd: ${a.reason} (or set LIBVIRT_URI)`);
      daemon = await fixture.startLibvirtd();
      uri = daemon.unixUri();
    }
    const tOpen = await time(async () => {
      conn = await LibvirtConnection.open(uri, { callTimeoutMs: 120_000 });
    });
    if (daemon) {
      for (let i = 0; i < N_VMS; i++) created.push(await conn.createXml(fixture.tinyQemuDomainXml(`tide-bench-${i}`, 48)));
    }
    const doms = await conn.listAllDomains(1 /* active */);
    const nVms = doms.length;
    console.error(`bench: ${nVms} running VMs, ${N_CALLS} calls, uri ${uri}`);
    // warm-up (first stats call pays for QEMU monitor setup)
    await conn.getAllDomainStats();
    await Promise.all(Array.from({ length: 50 }, () => conn.listAllDomains()));

    const rows = [];
    const seq = await time(async () => {
      for (let i = 0; i < N_CALLS; i++) await conn.listAllDomains();
    });
    const pipe = await time(async () => {
      await Promise.all(Array.from({ length: N_CALLS }, () => conn.listAllDomains()));
    });
    const vList = await mean(N_VIRSH, () => virsh(uri, ['list', '--all']));
    rows.push([`${N_CALLS} x CONNECT_LIST_ALL_DOMAINS, pipelined, one connection`, `${fmt(pipe)} ms total (${fmt((pipe / N_CALLS) * 1000)} µs/call)`, '']);
    rows.push([`${N_CALLS} x CONNECT_LIST_ALL_DOMAINS, sequential, one connection`, `${fmt(seq)} ms total (${fmt((seq / N_CALLS) * 1000)} µs/call)`, '']);
    rows.push([`${N_CALLS} x virsh list --all (one process each; ${N_VIRSH} measured)`, '', `${fmt(vList.mean * N_CALLS)} ms total (${fmt(vList.mean)} ms/call, p50 ${fmt(vList.p50)})`]);

    const allInOne = await mean(N_STATS, () => conn.getAllDomainStats());
    const perVmSeq = await mean(N_STATS, async () => {
      for (const d of doms) await conn.getAllDomainStats(0, 0, [d]);
    });
    const perVmPipe = await mean(N_STATS, () => Promise.all(doms.map((d) => conn.getAllDomainStats(0, 0, [d]))));
    const vStatsAll = await mean(Math.min(N_VIRSH, 15), () => virsh(uri, ['domstats', '--raw']));
    const vStatsPer = await mean(Math.min(N_VIRSH, 5), async () => {
      for (const d of doms) await virsh(uri, ['domstats', '--raw', '--domain', d.name]);
    });
    rows.push([`GET_ALL_DOMAIN_STATS, all ${nVms} VMs in one call`, `${fmt(allInOne.mean)} ms (p50 ${fmt(allInOne.p50)})`, `${fmt(vStatsAll.mean)} ms (virsh domstats --raw)`]);
    rows.push([`GET_ALL_DOMAIN_STATS, one call per VM, sequential (${nVms} calls)`, `${fmt(perVmSeq.mean)} ms (p50 ${fmt(perVmSeq.p50)})`, `${fmt(vStatsPer.mean)} ms (virsh domstats --raw --domain X, one process per VM)`]);
    rows.push([`GET_ALL_DOMAIN_STATS, one call per VM, pipelined (${nVms} calls)`, `${fmt(perVmPipe.mean)} ms (p50 ${fmt(perVmPipe.p50)})`, '']);
    const vOpen = await mean(Math.min(N_VIRSH, 10), () => virsh(uri, ['uri']));
    rows.push(['connect + auth + CONNECT_OPEN', `${fmt(tOpen)} ms (once per connection)`, `${fmt(vOpen.mean)} ms (virsh uri: process + connect)`]);

    const w0 = Math.max(...rows.map((r) => r[0].length), 'operation'.length);
    const w1 = Math.max(...rows.map((r) => r[1].length), 'TS RPC client'.length);
    const line = (a, b, c) => `| ${a.padEnd(w0)} | ${b.padEnd(w1)} | ${c} |`;
    console.log(line('operation', 'TS RPC client', 'virsh'));
    console.log(`|${'-'.repeat(w0 + 2)}|${'-'.repeat(w1 + 2)}|---|`);
    for (const r of rows) console.log(line(r[0], r[1], r[2]));
  } finally {
    for (const d of created) {
      try {
        await conn.destroy(d);
      } catch {
        // already gone
      }
    }
    if (conn) await conn.close();
    if (daemon) await daemon.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
