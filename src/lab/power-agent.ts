/**
 * The power "hardware" of one lab host: a long-running Node process inside the host's network
 * namespace, started by `tide lab up --power` (power.ts) as
 *
 *   ip netns exec <host netns> node power-agent.js serve HOST LAB_DIR BOOT_DELAY_MS
 *
 * It
 *   - runs the host's BMC: OpenIPMI's `ipmi_sim` as its child, at the host's BMC address (UDP
 *     623), whose `chassis_control` hook is this same file in `hook` mode (below);
 *   - listens for Wake-on-LAN on UDP port 9 (every address of the namespace, so also the subnet
 *     broadcast) and powers the host on when a datagram holds the magic packet for the host's
 *     MAC (6 × 0xff, then the MAC 16 times); other packets are logged and ignored;
 *   - performs the power actions on the host's "OS" — the lab reaper, libvirtd and every QEMU
 *     (the reaper is their child subreaper, so they are its descendants) — one at a time:
 *       on     after BOOT_DELAY_MS (emulated POST), startLibvirtd(): a fresh libvirtd with the
 *              same config, host_uuid and state dirs (persistent guests come back shut off)
 *       off    pull the plug: SIGKILL to the whole tree; the reply waits until it is gone, so
 *              the next status already reads off
 *       soft   ACPI button: `virsh shutdown` every guest, destroy what still runs after
 *              SOFT_GUEST_GRACE_MS, SIGTERM libvirtd, pull the plug if it has not exited after
 *              SOFT_DAEMON_GRACE_MS (runs in the background: the BMC acknowledges at once)
 *       reset  off, then on (with the boot delay)
 *   - answers status from the real process state: on = the reaper or libvirtd is alive (zombies
 *     count as dead), booting = a power-on was accepted and libvirt does not answer yet, else off.
 *
 * The agent is not part of the host's process tree, so it (and the BMC) keep answering while the
 * host is off. It exits on SIGTERM (stopping its ipmi_sim first; the host's OS is left as it is)
 * and by itself when <lab dir>/power/HOST disappears (the lab was torn down under it).
 *
 * Why an agent and not a hook that acts itself: ipmi_sim is single-threaded and waits for the
 * hook (popen), and a hook inherits ipmi_sim's sockets, which a libvirtd started from it would
 * keep open. The agent starts libvirtd from a clean process and runs slow actions in the
 * background. Why ipmi_sim's chassis_control and not its `startcmd`: startcmd equates power with
 * one child process it starts and SIGTERMs, which fits neither libvirtd's double-forked QEMUs nor
 * a libvirtd restarted by someone else.
 *
 * Hook mode (run by ipmi_sim through popen, i.e. `/bin/sh -c "<chassis_control> get power"`;
 * power.ts writes chassis_control from shell-inert tokens only, so the shell splits it exactly
 * as the argv below):
 *
 *   node power-agent.js hook SOCKET get power            → prints "power:0|1"
 *   node power-agent.js hook SOCKET set power 0|1        (chassis power off / on)
 *   node power-agent.js hook SOCKET set shutdown 1       (chassis power soft)
 *   node power-agent.js hook SOCKET set reset 1          (chassis power reset)
 *
 * It forwards its arguments as one line to the agent's unix socket and prints the reply; exit 1
 * (ipmi_sim then answers the IPMI request with an error) when the agent is not there.
 * `status` over the same socket returns the agent's view as JSON (power.ts, `tide lab status`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { closeSync, chmodSync, existsSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';

export type AgentPowerState = 'on' | 'off' | 'booting';

/** What `status` returns over the control socket. */
export interface AgentStatus {
  host: string;
  state: AgentPowerState;
  reaperPid: number | null;
  libvirtdPid: number | null;
  ipmiSimPid: number | null;
  bootDelayMs: number;
  /** ms since epoch of the accepted power-on while booting, else null. */
  bootingSince: number | null;
  lastAction: string | null;
}

/** Bound on one hook round trip (a hard off waits for the tree to die), ms. */
const HOOK_TIMEOUT_MS = 30_000;

function hook(args: string[]): void {
  const [sock, ...req] = args;
  if (sock === undefined || req.length === 0) {
    process.stderr.write('usage: power-agent.js hook SOCKET get|set ITEM [VALUE]...\n');
    process.exitCode = 2;
    return;
  }
  let out = '';
  const c = connect(sock);
  c.setTimeout(HOOK_TIMEOUT_MS);
  c.on('connect', () => c.write(`${req.join(' ')}\n`));
  c.on('data', (b: Buffer) => { out += b.toString('utf8'); });
  c.on('timeout', () => { process.stderr.write(`power agent at ${sock}: no reply within ${HOOK_TIMEOUT_MS} ms\n`); process.exitCode = 1; c.destroy(); });
  c.on('error', (e) => { process.stderr.write(`power agent at ${sock}: ${e.message}\n`); process.exitCode = 1; });
  c.on('end', () => {
    if (out.startsWith('error:')) {
      process.stderr.write(out);
      process.exitCode = 1;
    } else process.stdout.write(out);
  });
}

/** All descendants of `root` (not root itself), from /proc/PID/stat's ppid field. */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(d), ppid);
    } catch { /* gone */ }
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    let x = pid;
    for (let n = 0; n < 64 && x > 1 && x !== root; n++) x = parent.get(x) ?? 0;
    if (x === root && pid !== root) out.push(pid);
  }
  return out;
}

async function serve(args: string[]): Promise<void> {
  const [hostName, labDir, delayText] = args;
  const bootDelayMs = Number(delayText);
  if (hostName === undefined || labDir === undefined || !Number.isFinite(bootDelayMs) || bootDelayMs < 0) {
    throw new Error('usage: power-agent.js serve HOST LAB_DIR BOOT_DELAY_MS');
  }
  // Imported here, so that hook mode (one per IPMI request) starts fast.
  const { hostLayout, isLabHostName } = await import('./layout.js');
  const { libvirtdPid, qemuPids, reaperPid, startLibvirtd, waitLibvirtd } = await import('./host.js');
  const { cmdline, isLive, waitGone } = await import('./proc.js');
  const { virsh } = await import('./virsh.js');
  const { powerHostPaths, SOFT_DAEMON_GRACE_MS, SOFT_GUEST_GRACE_MS, WOL_PORT } = await import('./power-layout.js');
  const { sleep } = await import('./exec.js');
  if (!isLabHostName(hostName)) throw new Error(`not a lab host: ${hostName}`);
  const h = hostLayout(labDir, hostName);
  const p = powerHostPaths(labDir, hostName);
  const binDir = `${labDir}/bin`;
  const hw = Buffer.from(h.mac.replace(/:/g, ''), 'hex');
  const magic = Buffer.concat([Buffer.alloc(6, 0xff), ...Array.from({ length: 16 }, () => hw)]);

  const log = (msg: string): void => { process.stdout.write(`${new Date().toISOString()} ${hostName} ${msg}\n`); };
  let lastAction: string | null = null;
  const event = (msg: string): void => { lastAction = msg; log(msg); };

  let sim: ChildProcess | null = null;
  let stopping = false;
  let watch: NodeJS.Timeout | null = null;

  const hostOn = (): boolean => reaperPid(h) !== null || libvirtdPid(h) !== null;
  /** The accepted power-on not finished yet (token = its start time), or null. */
  let booting: { since: number; timer: NodeJS.Timeout | null } | null = null;
  const state = (): AgentPowerState => (booting !== null ? 'booting' : hostOn() ? 'on' : 'off');

  // Power actions run one at a time, in arrival order.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const r = chain.then(fn);
    chain = r.catch(() => undefined);
    return r;
  };

  const cancelBoot = (): void => {
    if (booting?.timer) clearTimeout(booting.timer);
    booting = null;
  };

  const boot = async (token: number, src: string): Promise<void> => {
    if (booting?.since !== token) return; // cancelled by an off in the meantime
    booting.timer = null;
    if (hostOn()) { booting = null; event(`on src=${src}: already running`); return; }
    const reaper = startLibvirtd(h, binDir);
    event(`on src=${src}: libvirtd starting (reaper ${reaper}) after the ${bootDelayMs} ms boot delay`);
    // Waiting for libvirt happens outside the action queue, so an off is never held up by it.
    void waitLibvirtd(h, reaper, 60_000).then(
      () => { if (booting?.since === token) booting = null; event(`on src=${src}: libvirt answers ${Date.now() - token} ms after power-on`); },
      (e: Error) => { if (booting?.since === token) booting = null; event(`on src=${src}: FAILED: ${e.message}`); },
    );
  };

  const powerOn = async (src: string): Promise<void> => {
    if (booting !== null || hostOn()) { event(`on src=${src}: no-op (${state()})`); return; }
    const token = Date.now();
    booting = { since: token, timer: null };
    booting.timer = setTimeout(() => { void serial(() => boot(token, src)); }, bootDelayMs);
    event(`on src=${src}: accepted, booting`);
  };

  const hardOff = async (src: string): Promise<void> => {
    const wasBooting = booting !== null;
    cancelBoot();
    const reaper = reaperPid(h);
    const daemon = libvirtdPid(h);
    if (reaper === null && daemon === null && qemuPids(h).length === 0) {
      event(`off src=${src}: no-op (${wasBooting ? 'boot cancelled' : 'already off'})`);
      return;
    }
    const pids = new Set<number>();
    if (reaper !== null) for (const d of descendants(reaper)) pids.add(d);
    if (daemon !== null) pids.add(daemon);
    for (const q of qemuPids(h)) pids.add(q.pid); // in case the reaper is already gone
    if (reaper !== null) pids.add(reaper);
    const signalled: number[] = [];
    for (const pid of pids) {
      if (!isLive(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
        signalled.push(pid);
      } catch { /* gone */ }
    }
    const left = await waitGone(signalled, 10_000);
    event(`off src=${src}: killed ${signalled.length} processes [${signalled.join(' ')}]${left.length ? `, STILL LIVE: ${left.map((x) => `${x} ${cmdline(x)[0] ?? ''}`).join(', ')}` : ''}`);
  };

  const softOff = async (src: string): Promise<void> => {
    cancelBoot();
    if (!hostOn()) { event(`soft src=${src}: no-op (already off)`); return; }
    event(`soft src=${src}: shutting the guests down`);
    const running = async (): Promise<string[]> => {
      const r = await virsh(h.uri, ['list', '--name'], { timeoutMs: 5_000 });
      return r.code === 0 ? r.stdout.split('\n').map((s) => s.trim()).filter(Boolean) : [];
    };
    const guests = await running();
    await Promise.all(guests.map((g) => virsh(h.uri, ['shutdown', g], { timeoutMs: 5_000 })));
    const end = Date.now() + SOFT_GUEST_GRACE_MS;
    let still = guests;
    while (still.length > 0 && Date.now() < end) {
      await sleep(100);
      still = await running();
    }
    await Promise.all(still.map((g) => virsh(h.uri, ['destroy', g], { timeoutMs: 10_000 })));
    const daemon = libvirtdPid(h);
    if (daemon !== null) {
      try { process.kill(daemon, 'SIGTERM'); } catch { /* gone */ }
    }
    const reaper = reaperPid(h);
    const left = await waitGone([daemon, reaper].filter((x): x is number => x !== null), SOFT_DAEMON_GRACE_MS);
    if (left.length > 0 || hostOn()) {
      event(`soft src=${src}: the host did not stop within ${SOFT_DAEMON_GRACE_MS} ms; pulling the plug`);
      await hardOff(`${src}-soft-timeout`);
      return;
    }
    event(`soft src=${src}: off (${guests.length} guests: ${guests.length - still.length} shut down, ${still.length} destroyed)`);
  };

  const ipmiSimPid = (): number | null => (sim?.pid !== undefined && sim.exitCode === null && sim.signalCode === null && isLive(sim.pid) ? sim.pid : null);

  const shutdown = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    if (watch) clearInterval(watch);
    cancelBoot();
    server.close();
    udp.close();
    const child = sim;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const left = await waitGone([child.pid], 2_000);
      if (left.length > 0) child.kill('SIGKILL');
      await waitGone([child.pid], 2_000);
    }
    rmSync(p.socket, { force: true });
    log(`agent stopped (host left ${state()})`);
    process.exit(code);
  };

  const status = (): AgentStatus => ({
    host: hostName, state: state(), reaperPid: reaperPid(h), libvirtdPid: libvirtdPid(h), ipmiSimPid: ipmiSimPid(),
    bootDelayMs, bootingSince: booting?.since ?? null, lastAction,
  });

  /** One request line (the hook's argv after SOCKET, or `status`) → the reply. */
  const handle = async (line: string): Promise<string> => {
    const [op, ...rest] = line.trim().split(/\s+/);
    if (op === 'status') return JSON.stringify(status());
    if (op === 'get') {
      // "power:1" while on or booting: a real BMC reports power on once it is applied.
      return rest.map((item) => `${item}:${item === 'power' ? (state() === 'off' ? 0 : 1) : 0}`).join('\n');
    }
    if (op !== 'set') throw new Error(`unknown request '${line.trim()}'`);
    for (let i = 0; i + 1 < rest.length; i += 2) {
      const item = rest[i]!;
      const value = rest[i + 1]!.replace(/^"|"$/g, '');
      if (item === 'power' && value === '1') await serial(() => powerOn('ipmi'));
      else if (item === 'power') await serial(() => hardOff('ipmi'));
      else if (item === 'shutdown') void serial(() => softOff('ipmi')).catch((e: Error) => event(`soft: FAILED: ${e.message}`));
      else if (item === 'reset') await serial(async () => { await hardOff('ipmi-reset'); await powerOn('ipmi-reset'); });
      else log(`ignored: set ${item} ${value}`); // boot device, identify: not emulated
    }
    return '';
  };

  // --- control socket (the chassis_control hook and power.ts talk to it)
  rmSync(p.socket, { force: true });
  const server = createServer((c: Socket) => {
    let buf = '';
    c.on('error', () => { /* the hook went away */ });
    c.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = '';
      handle(line).then(
        (reply) => c.end(reply === '' ? '' : `${reply}\n`),
        (e: Error) => { log(`request '${line}' failed: ${e.message}`); c.end(`error: ${e.message}\n`); },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(p.socket, () => resolve());
  });
  chmodSync(p.socket, 0o600);

  // --- Wake-on-LAN
  const udp = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  udp.on('message', (msg, rinfo) => {
    const from = `${rinfo.address}:${rinfo.port}`;
    if (msg.includes(magic)) {
      log(`WoL: magic packet for ${h.mac} from ${from}`);
      void serial(() => powerOn('wol')).catch((e: Error) => event(`on src=wol: FAILED: ${e.message}`));
    } else {
      log(`WoL: ignored ${msg.length} bytes from ${from}: no magic packet for ${h.mac}`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(WOL_PORT, () => resolve());
  });

  // --- the BMC
  const simLog = openSync(p.ipmiSimLog, 'a');
  const child = spawn('ipmi_sim', ['-n', '-c', p.lanConf, '-f', p.emu, '-s', p.stateDir], { stdio: ['ignore', simLog, simLog] });
  sim = child;
  closeSync(simLog);
  child.on('error', (e) => { log(`ipmi_sim: ${e.message}`); void shutdown(1); });
  if (child.pid !== undefined) writeFileSync(p.ipmiSimPidFile, `${child.pid}\n`);
  child.on('exit', (code, signal) => {
    if (!stopping) { log(`ipmi_sim exited (${signal ?? code}); the agent stops too`); void shutdown(1); }
  });
  process.on('SIGTERM', () => { void shutdown(0); });
  process.on('SIGINT', () => { void shutdown(0); });
  // The lab was torn down under us (its directory is gone): stop, leave nothing behind.
  watch = setInterval(() => { if (!existsSync(p.dir)) void shutdown(0); }, 1_000);

  log(`agent up: BMC ipmi_sim pid ${child.pid ?? '?'}, WoL on UDP ${WOL_PORT} for ${h.mac}, boot delay ${bootDelayMs} ms, host ${state()}`);
}

// Runs only as a program (node …/power-agent.js), never when imported for its types.
const [mode, ...rest] = /\/power-agent\.[jt]s$/.test(process.argv[1] ?? '') ? process.argv.slice(2) : [];
if (mode === 'hook') hook(rest);
else if (mode === 'serve') {
  serve(rest).catch((e: Error) => {
    process.stderr.write(`power agent: ${e.message}\n`);
    process.exit(1);
  });
} else if (mode !== undefined) {
  process.stderr.write('usage: power-agent.js serve HOST LAB_DIR BOOT_DELAY_MS | hook SOCKET get|set …\n');
  process.exitCode = 2;
}
