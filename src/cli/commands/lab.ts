/**
 * `tide lab up|down|status|virsh`: the two-host libvirt lab on this machine (root). A thin shell
 * over src/lab; see docs/lab.md.
 */
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { num } from '../args.js';
import { UsageError, type CliIo, type Command } from '../io.js';
import {
  DEFAULT_LAB_DIR, Lab, LabError, isLabHostName, parseAccelChoice, type LabHostName, type Placement,
} from '../../lab/index.js';
import { GUEST_IP_FIRST, GUEST_IP_LAST, labLayout } from '../../lab/layout.js';
import { acquireLabLease } from '../../lab/lock.js';
import { BMC_PORT, WOL_BROADCAST, WOL_PORT, bmcIp } from '../../lab/power-layout.js';
import { clockLabel, runLabDemo } from '../../api/lab-demo.js';

const USAGE = `tide lab up [--vms N] [--placement round-robin|lab-a|lab-b] [--mem-mib M] [--dirty-mib D]
                [--disk[=shared|local]] [--accel auto|kvm|tcg] [--bzimage] [--recreate] [--keep-on-failure]
                [--power[=ipmi|wol]] [--boot-delay-sec S] [--dir DIR] [--wait SEC] [--json]
       tide lab down [--purge] [--dir DIR] [--wait SEC] [--json]
       tide lab status [--dir DIR] [--json]
       tide lab virsh HOST ARGS...     (HOST = lab-a | lab-b)
       tide lab demo [--minutes N] [--vms N (even, default 4)] [--dir DIR] [--wait SEC] [--json]

  The lab has one user at a time: up, down and demo take the lab lease (DIR/lease.lock) that
  lab tests take too (test/helpers/lab.ts). While another process holds it they are refused at
  once, naming the holder (pid, what it is, since when); --wait SEC waits up to SEC seconds for
  it first. status and virsh only read and take no lease.

  up      two libvirt hosts in network namespaces + N small guests (default 2, round-robin);
          writes DIR/tide.json (default DIR ${DEFAULT_LAB_DIR}). Reuses a healthy lab that is
          already up. --json prints one object {config, hosts, vms:[{name, host, probe}]}.
          --power: each host gets an IPMI BMC (ipmi_sim, 10.77.0.101/.102:623) and a Wake-on-LAN
          listener (UDP 9); the config's hosts get a power section (ipmi, or wol with off via
          ipmi) and bootSec; powering on takes --boot-delay-sec (default 3) before libvirtd starts.
  down    removes every process, namespace, link and mount of the lab and prints what is left
          (nothing, normally). Keeps the guest image cache unless --purge.
  status  hosts (with power state under --power), guests and where they run.
  demo    Tide's daemon loop on the lab with real guests, live migrations and IPMI power
          (brings the lab up with --power if needed): an office day compressed so that 24 h
          take N wall minutes (default 8; the story, Mon 16:00 to Tue 09:00, about 0.7 × N):
          the guests' load generators run busy office hours, one overload spike, a quiet
          night; Tide consolidates and powers a host off in the evening (18:00–07:00 window)
          and wakes it and spreads again in the morning. Every guest is probed throughout.
          Prints the timeline live, then the figures of \`tide demo\` plus probeFailed,
          vmsLost, hostsPoweredOff, hostsWoken (--json: one object).`;

/**
 * Runs `fn` holding the lab lease of `dir` (see the usage). Called after the arguments are
 * checked: a usage error never waits for the lab.
 */
async function leased<T>(dir: string | undefined, what: string, waitSec: string | undefined, io: CliIo, fn: () => Promise<T>): Promise<T> {
  const d = dir ?? DEFAULT_LAB_DIR;
  const waitMs = num(waitSec, '--wait', 0, { min: 0, max: 86_400 }) * 1000;
  // (the only argument checked here: --wait; callers check theirs before)
  mkdirSync(d, { recursive: true });
  const release = await acquireLabLease(labLayout(d).leaseFile, {
    holder: what, waitMs,
    onWait: (h) => io.err(`[lab] the lab is in use by pid ${h.pid}${h.holder ? ` (${h.holder})` : ''}; waiting up to ${waitMs / 1000} s\n`),
  });
  try {
    return await fn();
  } finally {
    release();
  }
}

function intOpt(v: string | undefined, name: string, min: number, max: number): number | undefined {
  return v === undefined ? undefined : num(v, `--${name}`, 0, { min, max, int: true });
}

async function up(argv: string[], io: CliIo): Promise<number> {
  // --disk may be given alone (shared) or as --disk=local
  const args = argv.map((a) => (a === '--disk' ? '--disk=shared' : a === '--power' ? '--power=ipmi' : a));
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      vms: { type: 'string' },
      placement: { type: 'string' },
      'mem-mib': { type: 'string' },
      'dirty-mib': { type: 'string' },
      disk: { type: 'string' },
      accel: { type: 'string' },
      bzimage: { type: 'boolean' },
      recreate: { type: 'boolean' },
      'keep-on-failure': { type: 'boolean' },
      power: { type: 'string' },
      'boot-delay-sec': { type: 'string' },
      dir: { type: 'string' },
      wait: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const power = values.power;
  if (power !== undefined && power !== 'ipmi' && power !== 'wol') throw new UsageError('--power is ipmi (default) or wol');
  if (values['boot-delay-sec'] !== undefined && power === undefined) throw new UsageError('--boot-delay-sec needs --power');
  const bootDelaySec = values['boot-delay-sec'] === undefined ? undefined : num(values['boot-delay-sec'], '--boot-delay-sec', 0, { min: 0, max: 3600 });
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const placement = values.placement ?? 'round-robin';
  if (placement !== 'round-robin' && !isLabHostName(placement)) throw new UsageError('--placement must be round-robin, lab-a or lab-b');
  const disk = values.disk;
  if (disk !== undefined && disk !== 'shared' && disk !== 'local') throw new UsageError('--disk is shared (default) or local');
  let accel;
  try {
    accel = parseAccelChoice(values.accel);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const log = (m: string): void => io.err(`[lab] ${m}\n`);
  // Every argument is checked before the lease is taken (a usage error never waits for the lab).
  const vms = intOpt(values.vms, 'vms', 0, GUEST_IP_LAST - GUEST_IP_FIRST + 1);
  const memMiB = intOpt(values['mem-mib'], 'mem-mib', 64, 65_536);
  const dirtyMiB = intOpt(values['dirty-mib'], 'dirty-mib', 0, 65_536);
  const { lab, reused } = await leased(values.dir, 'tide lab up', values.wait, io, () => Lab.up({
    dir: values.dir,
    vms,
    placement: placement as Placement,
    memMiB,
    dirtyMiB,
    disk: disk ?? null,
    accel,
    bzImage: values.bzimage,
    recreate: values.recreate,
    keepOnFailure: values['keep-on-failure'],
    power: power === undefined ? null : { method: power, ...(bootDelaySec !== undefined ? { bootDelaySec } : {}) },
    log,
  }));
  const summary = await lab.summary();
  if (values.json) {
    io.out(`${JSON.stringify(summary)}\n`);
  } else {
    io.out(`lab ${reused ? 'reused' : 'up'} in ${lab.dir} (accel ${lab.accel})\nconfig: ${summary.config}\n`);
    for (const h of summary.hosts) io.out(`host ${h}: ${lab.host(h).uri}  (peer ${lab.host(h).peerUri})\n`);
    for (const v of summary.vms) io.out(`vm ${v.name} on ${v.host ?? '(not running)'}: probe ${v.probe} (from netns ${lab.probeNetns})\n`);
    if (lab.power) {
      for (const h of summary.hosts) io.out(`power ${h}: BMC ${bmcIp(lab.host(h))}:${BMC_PORT} (ipmitool lanplus from netns ${lab.probeNetns}), WoL ${lab.host(h).mac} → ${WOL_BROADCAST}:${WOL_PORT}\n`);
      io.out(`power: config uses ${lab.power.method}, BMC user ${lab.power.user}, password file ${lab.power.passwordFile}, boot delay ${lab.power.bootDelayMs} ms\n`);
    }
  }
  return 0;
}

async function down(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { dir: { type: 'string' }, purge: { type: 'boolean' }, wait: { type: 'string' }, json: { type: 'boolean' } },
  });
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const report = await leased(values.dir, 'tide lab down', values.wait, io, () => Lab.down({ dir: values.dir, purge: values.purge, log: (m) => io.err(`[lab] ${m}\n`) }));
  const left = Object.entries(report.left).filter(([, l]) => l.length > 0);
  if (values.json) io.out(`${JSON.stringify(report)}\n`);
  else if (left.length === 0) io.out('left: nothing\n');
  else for (const [what, items] of left) io.out(`left ${what}:\n${items.map((i) => `  ${i}\n`).join('')}`);
  return left.length === 0 ? 0 : 1;
}

async function status(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { dir: { type: 'string' }, json: { type: 'boolean' } } });
  const lab = Lab.open(values.dir ?? DEFAULT_LAB_DIR);
  if (!lab) {
    if (values.json) io.out('null\n');
    else io.out(`no lab in ${values.dir ?? DEFAULT_LAB_DIR}\n`);
    return 1;
  }
  const power = lab.power ? await Promise.all(lab.hostNames.map((h) => lab.powerStatus(h))) : null;
  // A host powered off on purpose (BMC / WoL) is a state, not a health problem.
  const off = new Set((power ?? []).filter((p) => p.state !== 'on').map((p) => p.host));
  const problems = (await lab.healthProblems()).filter((p) => ![...off].some((h) => p === `libvirtd of ${h} is not running`));
  const summary = await lab.summary();
  if (values.json) io.out(`${JSON.stringify({ ...summary, dir: lab.dir, accel: lab.accel, problems, ...(power ? { power } : {}) })}\n`);
  else {
    io.out(`lab in ${lab.dir} (accel ${lab.accel}): ${problems.length ? `UNHEALTHY: ${problems.join('; ')}` : 'healthy'}\n`);
    for (const h of summary.hosts) {
      const p = power?.find((x) => x.host === h);
      const pw = p ? `  power ${p.state} (BMC ${p.bmc} ipmi_sim pid ${p.ipmiSimPid ?? '-'}, WoL ${p.mac}, agent pid ${p.agentPid ?? '-'})` : '';
      io.out(`host ${h}: libvirtd pid ${lab.libvirtdPid(h) ?? '-'}  ${lab.host(h).uri}${pw}\n`);
    }
    for (const v of summary.vms) io.out(`vm ${v.name} ${lab.vm(v.name).ip} on ${v.host ?? '(not running)'}\n`);
  }
  return problems.length ? 1 : 0;
}

async function demoCmd(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { minutes: { type: 'string' }, vms: { type: 'string' }, dir: { type: 'string' }, wait: { type: 'string' }, json: { type: 'boolean' } },
  });
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const minutes = num(values.minutes, '--minutes', 8, { min: 1, max: 24 * 60 });
  const vms = intOpt(values.vms, 'vms', 2, GUEST_IP_LAST - GUEST_IP_FIRST + 1);
  const s = await leased(values.dir, 'tide lab demo', values.wait, io, () => runLabDemo({
    dir: values.dir,
    minutes,
    vms,
    log: (m) => io.err(`[lab] ${m}\n`),
    onEvent: values.json ? undefined : (e) => io.out(`${clockLabel(e.atSec)}  ${e.text}\n`),
  }));
  if (values.json) {
    io.out(`${JSON.stringify(s)}\n`);
  } else {
    io.out(`\n${s.scenario}: ${s.hours} h in ${s.wallSec} s (a day = ${s.minutesPerDay} min), ${s.rounds} rounds\n`);
    io.out(`migrations ${s.migrations} (failed steps ${s.failedSteps}), power off ${s.powerOffs} / on ${s.powerOns} through ${s.powerMethod} (hosts off ${s.hostsPoweredOff}, woken ${s.hostsWoken})\n`);
    io.out(`probe: ${s.probeFailed} of ${s.probeSent} requests failed, longest gap ${s.probeMaxGapMs} ms; guests lost ${s.vmsLost}\n`);
    io.out(`evening consolidation: ${s.consolidatedAtSec === null ? 'did not happen' : clockLabel(s.consolidatedAtSec)}; morning spread: ${s.spreadAtSec === null ? 'did not happen' : clockLabel(s.spreadAtSec)}\n`);
    io.out(`energy (estimated from the power model): ${s.energyKWh.toFixed(3)} kWh, all hosts on ${s.alwaysOnKWh.toFixed(3)} kWh, lower bound ${s.lowerBoundKWh.toFixed(3)} kWh\n`);
  }
  const ok = s.failedSteps === 0 && s.probeFailed === 0 && s.vmsLost === 0;
  return ok ? 0 : 1;
}

async function virshCmd(argv: string[], io: CliIo): Promise<number> {
  let dir = DEFAULT_LAB_DIR;
  const rest = [...argv];
  if (rest[0] === '--dir') { rest.shift(); dir = rest.shift() ?? dir; }
  const host = rest.shift();
  if (host === undefined || !isLabHostName(host)) throw new UsageError('tide lab virsh [--dir DIR] lab-a|lab-b ARGS...');
  const lab = Lab.open(dir);
  if (!lab) throw new LabError(`no lab in ${dir}`);
  const r = await lab.virsh(host as LabHostName, rest);
  io.out(r.stdout);
  io.err(r.stderr);
  return r.code ?? 1;
}

export const labCommand: Command = {
  summary: 'two-host libvirt lab on this machine for end-to-end tests (root)',
  usage: USAGE,
  async run(argv: string[], io: CliIo): Promise<number> {
    // a global --config is meaningless here: the lab writes its own config
    const args = argv.filter((a, i) => a !== '--config' && argv[i - 1] !== '--config' && !a.startsWith('--config='));
    const sub = args.shift();
    try {
      switch (sub) {
        case 'up': return await up(args, io);
        case 'down': return await down(args, io);
        case 'status': return await status(args, io);
        case 'virsh': return await virshCmd(args, io);
        case 'demo': return await demoCmd(args, io);
        default: throw new UsageError(`expected up, down, status, virsh or demo\nusage: ${USAGE}`);
      }
    } catch (e) {
      // parseArgs reports unknown options with a TypeError carrying this code
      if ((e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (e as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
        throw new UsageError((e as Error).message);
      }
      throw e;
    }
  },
};
