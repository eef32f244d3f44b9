#!/usr/bin/env node
// Collection from many real libvirtds: Tide's libvirt RPC driver vs the virsh driver, on the
// same hosts in the same run (issue 9 item 5; bench/README.md "Collection from many hosts").
//
//   npm run build && node bench/collect.js --hosts 50 --rounds 30 --virsh-rounds 3 [--json]
//
// As root. Starts N guest-less lab hosts (src/lab/many.ts: one libvirtd per host in its own
// network, mount and UTS namespaces, own host UUID, unix socket, `--domains` defined shut-off
// domains each), runs collection rounds through both drivers, cross-checks that they report
// the same inventory, and removes the hosts again (also on Ctrl-C). It holds the two-host
// lab's lease (like the lab tests and bench/migrate.js), so it never shares the CPUs with them.
//
// One round is what the controller does every interval (src/app/controller.ts), timed from
// the first call to the last answer. --shape controller (default): the inventory, then the
// usage, as the controller asks since metrics sources exist (usage may come from Prometheus):
//   await Promise.all([driver.listHosts(), driver.listVms()]); await driver.sample();
// --shape parallel: all three at once, Promise.all([listHosts(), listVms(), sample()]) (the
// controller before metrics sources; what this bench measured until then). All RPC rounds run first, then the virsh rounds
// (see main: virsh blocks the event loop). The first round of each driver (connects; host
// facts) is reported apart and not in p50/p99; a round in which any host did not answer is
// counted as incomplete and left out (a missing host makes a round fast, not slow).
// `clientCpuMs` is the bench process's CPU time per round including its finished children
// (the virsh processes), from /proc/self/stat.
//
// `daemonCpuMs` is the 50 libvirtds' CPU time per measured round, summed (/proc/<pid>/stat).
// The RPC driver's connections stay open through the virsh rounds; afterwards one more RPC
// round checks whether they survived (a virsh round that blocks the event loop for longer than
// libvirt's keepalive, 5 s × 5, gets them dropped: counted as `rpcDisconnectsDuringVirsh`).
//
// Knobs: --hosts N (50) --rounds R (30, RPC) --virsh-rounds V (3) --domains D (2 per host)
//        --shape controller|parallel (see above)
//        --virsh-processes P (the virsh driver's cap on parallel virsh processes, its default 8)
//        --concurrency C (10 hosts started at once) --dir DIR (/tmp/tide-many) --json
//        TIDE_DIST=<dir> runs another build of the code than ../dist.
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(process.env.TIDE_DIST ?? join(here, '..', 'dist'));
const load = (p) => import(pathToFileURL(join(dist, p)).href);

const { values: args } = parseArgs({
  options: {
    hosts: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '30' },
    'virsh-rounds': { type: 'string', default: '3' },
    domains: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '10' },
    'virsh-processes': { type: 'string', default: '8' },
    shape: { type: 'string', default: 'controller' },
    dir: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const int = (name, min) => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer ≥ ${min} (got ${args[name]})`);
    process.exit(2);
  }
  return n;
};
const N = int('hosts', 1);
const R = int('rounds', 2);
const V = int('virsh-rounds', 2);
const D = int('domains', 0);
const C = int('concurrency', 1);
const P = int('virsh-processes', 1);
const SHAPE = args.shape;
if (SHAPE !== 'controller' && SHAPE !== 'parallel') {
  console.error(`--shape must be controller or parallel (got ${SHAPE})`);
  process.exit(2);
}

const log = (m) => process.stderr.write(`[collect ${new Date().toISOString().slice(11, 23)}] ${m}\n`);

/** CPU time of the given processes (utime + stime), ms; a process gone meanwhile counts 0. */
function pidsCpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch { /* exited */ }
  }
  return (ticks * 1000) / 100;
}

/** CPU time of this process and its waited-for children, ms (/proc/self/stat utime..cstime). */
function cpuMs() {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // fields after the comm: state=0 … utime=11 stime=12 cutime=13 cstime=14 (clock ticks)
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return (ticks * 1000) / 100;
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length, p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s[s.length - 1], mean: s.reduce((a, b) => a + b, 0) / s.length,
    over200: s.filter((x) => x > 200).length,
  };
}

async function round(driver) {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const c0 = cpuMs();
  const t0 = performance.now();
  let hosts, vms, usage;
  if (SHAPE === 'parallel') [hosts, vms, usage] = await Promise.all([driver.listHosts(), driver.listVms(), driver.sample()]);
  else {
    [hosts, vms] = await Promise.all([driver.listHosts(), driver.listVms()]);
    usage = await driver.sample();
  }
  const ms = performance.now() - t0;
  loop.disable();
  const stallMs = loop.max / 1e6;
  // a round counts only when every host answered every question (a host left out is fast)
  const down = hosts.filter((h) => !h.up);
  const complete = down.length === 0 && usage.hosts.length === hosts.length;
  return { ms, cpuMs: cpuMs() - c0, stallMs, hosts, vms, usage, complete, why: complete ? '' : `${down.length} hosts down (${down[0]?.reason ?? ''}), ${usage.hosts.length}/${hosts.length} sampled, ${vms.length} domains` };
}

/** What both drivers must agree on (cpuMhz left out: /proc/cpuinfo's current frequency moves). */
function inventoryKey(r) {
  const hosts = r.hosts.map((h) => [h.name, h.up, h.uuid, h.hostname, h.cpuCores, h.memMiB, h.cpuModel].join('|')).sort();
  const vms = r.vms.map((v) => [v.name, v.host, v.uuid, v.state, v.vcpus, v.memMiB, v.persistent].join('|')).sort();
  return { hosts, vms };
}

function machine() {
  const c = cpus();
  let libvirt = '';
  try { libvirt = execFileSync('libvirtd', ['--version'], { encoding: 'utf8' }).trim(); } catch { /* not installed */ }
  let load = '';
  try { load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '); } catch { /* not Linux */ }
  return { cpu: c[0]?.model ?? '?', cores: c.length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, libvirt, loadAvg: load };
}

const fmt = (x) => (x === undefined || Number.isNaN(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(1));

async function main() {
  const { ManyHosts } = await load('lab/many.js');
  const { labLayout, DEFAULT_LAB_DIR } = await load('lab/layout.js');
  const { acquireLock } = await load('lab/lock.js');
  const { LibvirtDriver } = await load('drivers/libvirt/index.js');
  const { VirshDriver } = await load('drivers/virsh/index.js');

  const leaseDir = process.env.TIDE_LAB_DIR ?? DEFAULT_LAB_DIR;
  const release = await acquireLock(labLayout(leaseDir).leaseFile, {
    what: 'the lab lease', timeoutMs: 30 * 60_000, onWait: (pid) => log(`lab busy (lease held by pid ${pid}); waiting`),
  });
  let many = null;
  let rpc = null;
  let virsh = null;
  let stopping = false;
  const cleanup = async () => {
    await rpc?.close().catch(() => {});
    await virsh?.close().catch(() => {});
    const report = many ? await many.down() : null;
    release();
    return report;
  };
  process.once('SIGINT', () => {
    if (stopping) return;
    stopping = true;
    log('interrupted: tearing the hosts down');
    cleanup().finally(() => process.exit(130));
  });
  try {
    const machineBefore = machine();
    log(`starting ${N} hosts (${D} shut-off domains each)`);
    many = await ManyHosts.start({ n: N, domainsPerHost: D, concurrency: C, dir: args.dir, log });
    const memory = many.memory();
    const hostConfigs = many.hostConfigs();
    rpc = new LibvirtDriver(hostConfigs);
    virsh = new VirshDriver(hostConfigs, { maxProcesses: P });
    const daemonPids = many.libvirtdPids();

    // All RPC rounds first, then the virsh ones, each driver measured with the other one idle.
    // A virsh round runs ~9 processes per host (at most --virsh-processes at once); spawning
    // them blocks this process's event loop (fork of a large process, per spawn). Uncapped, at
    // 50 hosts on a loaded machine, for tens of seconds: long enough for the daemons' keepalive
    // to drop the RPC connections this process holds (counted below).
    const times = { rpc: [], virsh: [] };
    const cpu = { rpc: [], virsh: [] };
    const stall = { rpc: [], virsh: [] };
    const incomplete = { rpc: 0, virsh: 0 };
    const first = {};
    const daemonCpu = {};
    let rpcDisconnects = 0;
    for (const [kind, driver, n] of [['rpc', rpc, R], ['virsh', virsh, V]]) {
      log(`${kind}: first round (connect / host facts), then ${n - 1} measured rounds`);
      first[kind] = await round(driver);
      if (kind === 'virsh') {
        // the RPC connections stay open (idle, keepalive running) through the virsh rounds
        for (const b of rpc.backends) (await b.connection()).on('disconnect', () => { rpcDisconnects++; });
      }
      const d0 = pidsCpuMs(daemonPids);
      let measured = 0;
      for (let i = 1; i < n; i++) {
        const r = await round(driver);
        if (!r.complete || r.vms.length !== first[kind].vms.length) {
          incomplete[kind]++;
          log(`${kind} round ${i + 1} incomplete (${Math.round(r.ms)} ms): ${r.why}`);
          continue;
        }
        times[kind].push(r.ms);
        cpu[kind].push(r.cpuMs);
        stall[kind].push(r.stallMs);
        measured++;
      }
      daemonCpu[kind] = measured > 0 ? (pidsCpuMs(daemonPids) - d0) / (n - 1) : NaN;
    }
    const rpcAfterVirsh = await round(rpc);
    log(`rpc round after the virsh rounds: ${Math.round(rpcAfterVirsh.ms)} ms, ${rpcAfterVirsh.complete ? 'complete' : rpcAfterVirsh.why}; RPC disconnects during the virsh rounds: ${rpcDisconnects}`);
    await rpc.close();
    const rpcFirst = first.rpc;
    const virshFirst = first.virsh;
    const a = inventoryKey(rpcFirst);
    const b = inventoryKey(virshFirst);
    const same = JSON.stringify(a) === JSON.stringify(b);
    const upRpc = rpcFirst.hosts.filter((h) => h.up).length;
    const upVirsh = virshFirst.hosts.filter((h) => h.up).length;
    if (!same) log(`MISMATCH: rpc ${JSON.stringify(a).slice(0, 400)} … virsh ${JSON.stringify(b).slice(0, 400)} …`);
    log(`${upRpc}/${N} hosts up (rpc), ${upVirsh}/${N} (virsh); ${rpcFirst.vms.length} domains; inventories ${same ? 'identical' : 'DIFFER'}`);
    const result = {
      hosts: N,
      domainsPerHost: D,
      shape: SHAPE,
      domains: rpcFirst.vms.length,
      roundsMeasured: { rpc: times.rpc.length, virsh: times.virsh.length },
      roundsIncomplete: incomplete,
      inventoriesIdentical: same,
      hostsUp: { rpc: upRpc, virsh: upVirsh },
      roundMs: { rpc: summary(times.rpc), virsh: summary(times.virsh) },
      firstRoundMs: { rpc: rpcFirst.ms, virsh: virshFirst.ms },
      clientCpuMsPerRound: { rpc: summary(cpu.rpc).mean, virsh: summary(cpu.virsh).mean },
      /** The libvirtds' CPU per measured round, summed over all of them. */
      daemonCpuMsPerRound: daemonCpu,
      virshMaxProcesses: P,
      rpcDisconnectsDuringVirsh: rpcDisconnects,
      rpcRoundAfterVirsh: { ms: rpcAfterVirsh.ms, complete: rpcAfterVirsh.complete },
      /** Longest event-loop stall of this process during a round (monitorEventLoopDelay max). */
      maxEventLoopStallMs: { rpc: Math.max(0, ...stall.rpc), virsh: Math.max(0, ...stall.virsh) },
      budgetMs: 200,
      rpcWithinBudget: summary(times.rpc).max <= 200,
      startup: many.timings,
      memory,
      machine: { ...machineBefore, loadAvgAfter: machine().loadAvg },
      command: `node bench/collect.js ${process.argv.slice(2).join(' ')}`.trim(),
    };
    const down = await cleanup();
    many = null;
    result.teardown = down ? { ms: down.ms, left: down.left } : null;
    if (args.json) {
      console.log(JSON.stringify(result, null, 2));
    } else {
      const rows = [
        ['driver', 'rounds', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'mean ms', 'rounds > 200 ms', 'first round ms', 'client CPU ms/round', 'daemons CPU ms/round', 'max event-loop stall ms'],
        ['libvirt (RPC)', String(times.rpc.length), fmt(result.roundMs.rpc.p50), fmt(result.roundMs.rpc.p95), fmt(result.roundMs.rpc.p99), fmt(result.roundMs.rpc.max), fmt(result.roundMs.rpc.mean), String(result.roundMs.rpc.over200), fmt(rpcFirst.ms), fmt(result.clientCpuMsPerRound.rpc), fmt(daemonCpu.rpc), fmt(result.maxEventLoopStallMs.rpc)],
        [`virsh (≤ ${P} processes)`, String(times.virsh.length), fmt(result.roundMs.virsh.p50), fmt(result.roundMs.virsh.p95), fmt(result.roundMs.virsh.p99), fmt(result.roundMs.virsh.max), fmt(result.roundMs.virsh.mean), String(result.roundMs.virsh.over200), fmt(virshFirst.ms), fmt(result.clientCpuMsPerRound.virsh), fmt(daemonCpu.virsh), fmt(result.maxEventLoopStallMs.virsh)],
      ];
      console.log(`${N} hosts, ${result.domains} shut-off domains; one round (${SHAPE}) = ${SHAPE === 'parallel' ? 'listHosts + listVms + sample at once' : 'listHosts + listVms, then sample'}; inventories ${same ? 'identical' : 'DIFFER'}; incomplete rounds (left out) rpc ${incomplete.rpc}, virsh ${incomplete.virsh}`);
      console.log(`| ${rows[0].join(' | ')} |`);
      console.log(`|${rows[0].map(() => '---').join('|')}|`);
      for (const r of rows.slice(1)) console.log(`| ${r.join(' | ')} |`);
      console.log(`RPC connections held open through the virsh rounds: ${rpcDisconnects} disconnects; the RPC round after them ${fmt(rpcAfterVirsh.ms)} ms, ${rpcAfterVirsh.complete ? 'complete' : 'INCOMPLETE'}`);
      console.log(`startup ${result.startup.totalMs} ms (first host ${result.startup.firstHostMs} ms); libvirtd RSS ${memory.libvirtdRssMiB} MiB total (PSS ${memory.libvirtdPssMiB} MiB, max ${memory.maxLibvirtdRssMiB} MiB per daemon), reapers RSS ${memory.reaperRssMiB} MiB (PSS ${memory.reaperPssMiB} MiB); teardown ${down?.ms} ms, left ${JSON.stringify(down?.left)}`);
      console.log(`machine: ${result.machine.cpu}, ${result.machine.cores} cores, ${result.machine.memGiB} GiB, ${result.machine.libvirt}, node ${result.machine.node}, load ${result.machine.loadAvg} → ${result.machine.loadAvgAfter}`);
    }
    if (!same || incomplete.rpc + incomplete.virsh > 0) process.exitCode = 1;
  } catch (e) {
    if (!stopping) await cleanup().catch((e2) => log(`teardown failed: ${e2.message}`));
    throw e;
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
