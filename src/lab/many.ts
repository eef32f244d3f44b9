/**
 * Many guest-less lab hosts, for collection benchmarks and cross-checks (issue 9 item 5):
 * N libvirtds on one machine, each in its own network, mount and UTS namespaces with its own
 * host_uuid, hostname and state directory, each holding a few *defined, shut-off* domains so
 * that inventory has content. No QEMU runs, no bridge or veth is made: every daemon listens
 * only on its unix socket, a plain file in its bind-mounted run directory, which the root
 * namespace reaches (`qemu+unix:///system?socket=…`). Its network namespace holds only `lo`.
 *
 * Separate from the two-host lab (lab.ts) on purpose: its own directory (default
 * /tmp/tide-many), namespace prefix (`tide-many-<hash of the dir>-`) and lock, so no `down`
 * touches another lab. Callers that want the machine to themselves (tests, the bench) also take the lab
 * lease (labLayout(dir).leaseFile).
 *
 *   const many = await ManyHosts.start({ n: 50 });   // or startManyHosts(50)
 *   many.hostConfigs()   → HostConfig[] for the libvirt / virsh drivers
 *   many.memory()        → RSS and PSS of the daemons (and their reapers)
 *   await many.down()    → ManyDownReport; `left` is all empty on success
 *
 * Start-up: the first host starts alone, defines its domains and reports its capabilities,
 * which makes libvirt probe each installed QEMU binary once (~1–4 s each under load); its
 * capabilities cache then seeds every other host
 * (libvirt re-validates a seeded cache, so a stale seed only costs time). The other hosts
 * start `concurrency` at a time.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { LabError, run, sleep, spawnDetached } from './exec.js';
import { libvirtdArgv, tailOf } from './host.js';
import { DEFAULT_LAB_DIR } from './layout.js';
import { acquireLock } from './lock.js';
import { releaseRunNetns, runNetnsIsMounted } from './net.js';
import { cmdline, isLive, killChecked, mountsUnder, processesInNamespaces, processesMentioning, readPidFile, waitGone, type ProcInfo } from './proc.js';
import { ensureHostPrerequisites } from './prereq.js';
import { REAPER_FILE, REAPER_PY } from './reaper.js';
import { virsh, virshOk } from './virsh.js';

export const DEFAULT_MANY_DIR = '/tmp/tide-many';
/** Every network namespace of a many-host lab starts with this. */
export const MANY_NETNS_PREFIX = 'tide-many-';

/**
 * The namespace prefix of the many-host lab in `dir`: MANY_NETNS_PREFIX + a hash of the
 * directory, so two directories never touch each other's namespaces (down deletes by prefix).
 */
export function manyNetnsPrefix(dir: string): string {
  return `${MANY_NETNS_PREFIX}${createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 6)}-`;
}
/** Upper bound on N: names, UUIDs and paths are built for three digits. */
export const MAX_MANY_HOSTS = 999;

export interface ManyHost {
  /** Tide host name, libvirt hostname (UTS namespace) and directory name: many-001 … */
  readonly name: string;
  readonly index: number;
  readonly netns: string;
  /** host_uuid in libvirtd.conf, distinct per host. */
  readonly uuid: string;
  readonly dir: string;
  readonly socket: string;
  /** Control URI from the root namespace. */
  readonly uri: string;
  readonly reaperPidFile: string;
  readonly libvirtdPidFile: string;
  readonly logFile: string;
  /** Names of the defined, shut-off domains (`<host>-d1` …). */
  readonly domains: readonly string[];
}

export interface ManyHostsOptions {
  /** Number of hosts, 1 … MAX_MANY_HOSTS. */
  n: number;
  /** State directory (default /tmp/tide-many). Must not be inside the two-host lab's directory. */
  dir?: string;
  /** Defined, shut-off domains per host (default 2). */
  domainsPerHost?: number;
  /** Hosts started at the same time after the first (default 10). */
  concurrency?: number;
  /**
   * A QEMU capabilities cache to seed the first host with (default: <dir>/qemucaps, kept by
   * down() from the previous start, else the two-host lab's cache/qemucaps). Saves time only.
   */
  capsSeed?: string | null;
  log?: (msg: string) => void;
}

export interface ManyTimings {
  totalMs: number;
  /** The first host: start, QEMU probe (when unseeded) and its domains. */
  firstHostMs: number;
  /** The remaining n − 1 hosts, until every one answered and holds its domains. */
  restMs: number;
}

export interface ManyMemory {
  /** Resident set of every libvirtd, summed; shared library pages are counted once per daemon. */
  libvirtdRssMiB: number;
  /** Proportional set size of every libvirtd, summed: shared pages split between sharers. */
  libvirtdPssMiB: number;
  maxLibvirtdRssMiB: number;
  /** The Python reapers in front of the daemons (one per host). */
  reaperRssMiB: number;
  reaperPssMiB: number;
  daemons: number;
}

export interface ManyDownReport {
  dir: string;
  killed: { pid: number; kind: string }[];
  namespacesDeleted: number;
  runNetnsUnmounted: boolean;
  ms: number;
  /** What is still there afterwards: all empty on success. */
  left: { processes: string[]; namespaces: string[]; mounts: string[] };
}

interface ManyState {
  version: 1;
  n: number;
  domainsPerHost: number;
  runNetnsWasMounted: boolean;
  createdAt: string;
  timings: ManyTimings | null;
}

const pad = (i: number): string => String(i).padStart(3, '0');

/** Layout of host i (1-based) under `dir`. */
export function manyHost(dir: string, i: number, domainsPerHost = 2): ManyHost {
  const name = `many-${pad(i)}`;
  const hdir = join(dir, 'hosts', name);
  const socket = join(hdir, 'run', 'libvirt-sock');
  if (Buffer.byteLength(socket) > 107) throw new LabError(`many-host dir too long: ${socket} exceeds 107 bytes (sun_path)`);
  return {
    name,
    index: i,
    netns: `${manyNetnsPrefix(dir)}${pad(i)}`,
    uuid: `7a110000-0000-4000-9000-${i.toString(16).padStart(12, '0')}`,
    dir: hdir,
    socket,
    uri: `qemu+unix:///system?socket=${socket}`,
    reaperPidFile: join(hdir, 'reaper.pid'),
    libvirtdPidFile: join(hdir, 'libvirtd.pid'),
    logFile: join(hdir, 'libvirtd.out'),
    domains: Array.from({ length: domainsPerHost }, (_, k) => `${name}-d${k + 1}`),
  };
}

function paths(dir: string): { state: string; lock: string; bin: string } {
  return { state: join(dir, 'state.json'), lock: join(dir, 'many.lock'), bin: join(dir, 'bin') };
}

function readState(dir: string): ManyState | null {
  try {
    const s = JSON.parse(readFileSync(paths(dir).state, 'utf8')) as ManyState;
    return s.version === 1 ? s : null;
  } catch {
    return null;
  }
}

function writeState(dir: string, s: ManyState): void {
  const f = paths(dir).state;
  writeFileSync(`${f}.tmp`, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(`${f}.tmp`, f);
}

function checkDir(dir: string): void {
  const lab = DEFAULT_LAB_DIR.endsWith('/') ? DEFAULT_LAB_DIR : `${DEFAULT_LAB_DIR}/`;
  const d = dir.endsWith('/') ? dir : `${dir}/`;
  // The two-host lab's `down` removes everything in its directory and kills what mentions it.
  if (d.startsWith(lab) || lab.startsWith(d)) throw new LabError(`the many-host dir ${dir} must not overlap the lab dir ${DEFAULT_LAB_DIR}`);
}

function writeConfig(h: ManyHost): void {
  for (const d of ['etc', 'run', 'lib', 'log', 'cache', 'lib/qemu', 'etc/qemu', 'cache/qemu']) mkdirSync(join(h.dir, d), { recursive: true });
  writeFileSync(join(h.dir, 'hosts'), `127.0.0.1 localhost ${h.name}\n`);
  writeFileSync(join(h.dir, 'etc', 'libvirt.conf'), '');
  writeFileSync(join(h.dir, 'etc', 'libvirtd.conf'), `# generated by Tide (src/lab/many.ts) for many-host lab host ${h.name}
# unix socket only (no --listen): reached from the root namespace through the bind-mounted run dir
auth_unix_ro = "none"
auth_unix_rw = "none"
unix_sock_rw_perms = "0700"
host_uuid = "${h.uuid}"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
# small worker pools: N daemons share the machine's cores
min_workers = 1
max_workers = 4
prio_workers = 1
max_clients = 50
max_anonymous_clients = 50
`);
  writeFileSync(join(h.dir, 'etc', 'qemu.conf'), `# generated by Tide (src/lab/many.ts) for many-host lab host ${h.name}
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
`);
}

/** A shut-off domain: never started, so it needs no kernel or disk. */
function domainXml(name: string, i: number, k: number): string {
  const uuid = `7a11d000-${pad(i).padStart(4, '0')}-4000-8000-${k.toString(16).padStart(12, '0')}`;
  const memMiB = 128 * k;
  return `<domain type='qemu'>
  <name>${name}</name>
  <uuid>${uuid}</uuid>
  <memory unit='MiB'>${memMiB}</memory>
  <vcpu>${k}</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>
`;
}

function startDaemon(h: ManyHost, binDir: string): number {
  rmSync(h.libvirtdPidFile, { force: true });
  const argv = libvirtdArgv(h, binDir);
  const pid = spawnDetached(argv, h.logFile);
  writeFileSync(h.reaperPidFile, `${pid}\n`);
  return pid;
}

function socketAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function waitDaemon(h: ManyHost, reaper: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await socketAccepts(h.socket)) {
      const r = await virsh(h.uri, ['hostname'], { timeoutMs: 20_000 });
      if (r.code === 0) {
        if (r.stdout.trim() !== h.name) throw new LabError(`${h.name}: libvirtd reports hostname '${r.stdout.trim()}' (UTS namespace not applied?)`);
        return;
      }
    }
    if (!isLive(reaper)) throw new LabError(`libvirtd of ${h.name} died: ${tailOf(h.logFile)}`);
    await sleep(50);
  }
  throw new LabError(`libvirtd of ${h.name} did not answer within ${timeoutMs} ms: ${tailOf(h.logFile)}`);
}

async function bringUp(h: ManyHost, binDir: string, seed: string | null): Promise<void> {
  writeConfig(h);
  if (seed && existsSync(seed) && !existsSync(join(h.dir, 'cache/qemu/capabilities'))) {
    cpSync(seed, join(h.dir, 'cache/qemu/capabilities'), { recursive: true });
  }
  await runOkIp(['netns', 'add', h.netns]);
  await runOkIp(['-n', h.netns, 'link', 'set', 'lo', 'up']);
  const reaper = startDaemon(h, binDir);
  await waitDaemon(h, reaper, 60_000);
  for (let k = 1; k <= h.domains.length; k++) {
    // virsh reads the file itself (client side); stdin is a socket it cannot open by path
    const file = join(h.dir, `define-${k}.xml`);
    writeFileSync(file, domainXml(h.domains[k - 1]!, h.index, k));
    await virshOk(h.uri, ['define', file], { timeoutMs: 60_000 });
  }
}

async function runOkIp(args: string[]): Promise<void> {
  const r = await run(['ip', ...args]);
  if (r.code !== 0) throw new LabError(`ip ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

/** The network namespaces of the many-host lab in `dir` that exist now (by its prefix). */
export function manyNamespaces(dir: string): string[] {
  const prefix = manyNetnsPrefix(dir);
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

function statusKiB(pid: number, field: string, file = 'status'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export class ManyHosts {
  private constructor(readonly dir: string, readonly hosts: readonly ManyHost[], readonly timings: ManyTimings | null, private readonly log: (m: string) => void) {}

  /**
   * Starts n hosts in `dir` (a many-host lab already there is torn down first). On failure
   * everything started is removed again and the error names the host and its log.
   */
  static async start(opts: ManyHostsOptions): Promise<ManyHosts> {
    const n = opts.n;
    if (!Number.isInteger(n) || n < 1 || n > MAX_MANY_HOSTS) throw new LabError(`the number of hosts must be 1…${MAX_MANY_HOSTS} (got ${n})`);
    const per = opts.domainsPerHost ?? 2;
    if (!Number.isInteger(per) || per < 0 || per > 50) throw new LabError(`domains per host must be 0…50 (got ${per})`);
    const dir = opts.dir ?? DEFAULT_MANY_DIR;
    checkDir(dir);
    if (process.getuid?.() !== 0) throw new LabError('the many-host lab needs root (network namespaces, libvirtd)');
    const log = opts.log ?? (() => {});
    mkdirSync(dir, { recursive: true });
    const release = await acquireLock(paths(dir).lock, { what: `many-host lab ${dir}`, onWait: (p) => log(`waiting for pid ${p} (many-host lab ${dir} busy)`) });
    try {
      if (readState(dir) !== null || manyNamespaces(dir).length > 0) {
        log('a many-host lab is there: tearing it down first');
        await downUnlocked(dir, log);
      }
      ensureHostPrerequisites();
      const t0 = performance.now();
      const { bin } = paths(dir);
      mkdirSync(bin, { recursive: true });
      writeFileSync(join(bin, REAPER_FILE), REAPER_PY, { mode: 0o755 });
      const state: ManyState = { version: 1, n, domainsPerHost: per, runNetnsWasMounted: runNetnsIsMounted(), createdAt: new Date().toISOString(), timings: null };
      // written before anything is created, so that down() can undo a half-finished start
      writeState(dir, state);
      const hosts = Array.from({ length: n }, (_, i) => manyHost(dir, i + 1, per));
      try {
        const labSeed = join(DEFAULT_LAB_DIR, 'cache', 'qemucaps');
        const kept = join(dir, 'qemucaps');
        const seed0 = opts.capsSeed !== undefined ? opts.capsSeed : existsSync(kept) ? kept : existsSync(labSeed) ? labSeed : null;
        await bringUp(hosts[0]!, bin, seed0);
        // Host capabilities make libvirt probe every installed QEMU binary (x86_64 and i386…),
        // not only the one the domains use: probe them once here, so the seed covers them all.
        await virshOk(hosts[0]!.uri, ['capabilities'], { timeoutMs: 120_000 });
        const firstHostMs = Math.round(performance.now() - t0);
        const caps = join(hosts[0]!.dir, 'cache', 'qemu', 'capabilities');
        // kept by down(): the next start seeds its first host with it
        const seed = existsSync(caps) ? kept : null;
        if (seed) { rmSync(seed, { recursive: true, force: true }); cpSync(caps, seed, { recursive: true }); }
        log(`${hosts[0]!.name} up in ${firstHostMs} ms; starting ${n - 1} more, ${opts.concurrency ?? 10} at a time`);
        const t1 = performance.now();
        let next = 1;
        const worker = async (): Promise<void> => {
          while (next < n) {
            const h = hosts[next++]!;
            await bringUp(h, bin, seed);
          }
        };
        await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 10) }, worker));
        const timings = { totalMs: Math.round(performance.now() - t0), firstHostMs, restMs: Math.round(performance.now() - t1) };
        state.timings = timings;
        writeState(dir, state);
        log(`${n} hosts up in ${timings.totalMs} ms (first ${firstHostMs} ms, the other ${n - 1} in ${timings.restMs} ms), ${per} shut-off domains each`);
        return new ManyHosts(dir, hosts, timings, log);
      } catch (e) {
        log(`start failed (${(e as Error).message}); cleaning up`);
        await downUnlocked(dir, log);
        throw e instanceof LabError ? e : new LabError(`many-host lab start failed: ${(e as Error).message}`, { cause: e });
      }
    } finally {
      release();
    }
  }

  /** The many-host lab up in `dir`, or null (no health check). */
  static open(dir: string = DEFAULT_MANY_DIR, log?: (m: string) => void): ManyHosts | null {
    const s = readState(dir);
    if (!s) return null;
    return new ManyHosts(dir, Array.from({ length: s.n }, (_, i) => manyHost(dir, i + 1, s.domainsPerHost)), s.timings, log ?? (() => {}));
  }

  /** Removes every process, namespace and mount of the many-host lab in `dir` (and its files). */
  static async down(dir: string = DEFAULT_MANY_DIR, log: (m: string) => void = () => {}): Promise<ManyDownReport> {
    checkDir(dir);
    if (!existsSync(dir)) return downUnlocked(dir, log);
    const release = await acquireLock(paths(dir).lock, { what: `many-host lab ${dir}` });
    try {
      return await downUnlocked(dir, log);
    } finally {
      release();
    }
  }

  down(): Promise<ManyDownReport> {
    return ManyHosts.down(this.dir, this.log);
  }

  /** Host entries for a Tide config / the drivers (unix-socket URIs). */
  hostConfigs(): { name: string; uri: string; power: { kind: 'none' }; bootSec: number; tags: string[]; maintenance: boolean; excluded: boolean }[] {
    return this.hosts.map((h) => ({ name: h.name, uri: h.uri, power: { kind: 'none' }, bootSec: 180, tags: [], maintenance: false, excluded: false }));
  }

  /** PIDs of the live daemons (PID file + cmdline check). */
  libvirtdPids(): number[] {
    return this.hosts.map((h) => daemonPid(h)).filter((p): p is number => p !== null);
  }

  /** Memory of the daemons right now (see ManyMemory). */
  memory(): ManyMemory {
    const mib = (kib: number): number => Math.round((kib / 1024) * 10) / 10;
    const ds = this.libvirtdPids();
    const rs = this.hosts.map((h) => readPidFile(h.reaperPidFile)).filter((p): p is number => p !== null && isLive(p));
    const rss = ds.map((p) => statusKiB(p, 'VmRSS'));
    return {
      libvirtdRssMiB: mib(rss.reduce((a, b) => a + b, 0)),
      libvirtdPssMiB: mib(ds.reduce((a, p) => a + statusKiB(p, 'Pss', 'smaps_rollup'), 0)),
      maxLibvirtdRssMiB: mib(Math.max(0, ...rss)),
      reaperRssMiB: mib(rs.reduce((a, p) => a + statusKiB(p, 'VmRSS'), 0)),
      reaperPssMiB: mib(rs.reduce((a, p) => a + statusKiB(p, 'Pss', 'smaps_rollup'), 0)),
      daemons: ds.length,
    };
  }
}

/** Starts n guest-less lab hosts (see ManyHosts.start). */
export function startManyHosts(n: number, opts: Omit<ManyHostsOptions, 'n'> = {}): Promise<ManyHosts> {
  return ManyHosts.start({ ...opts, n });
}

const isLibvirtd = (argv: readonly string[]): boolean => (argv[0] ?? '').split('/').pop() === 'libvirtd';

function daemonPid(h: ManyHost): number | null {
  const pid = readPidFile(h.libvirtdPidFile);
  return pid !== null && isLive(pid) && isLibvirtd(cmdline(pid)) ? pid : null;
}

/** Every live process in our namespaces or naming our directory (the lab's classify() kinds). */
function sweep(dir: string): ProcInfo[] {
  const seen = new Map<number, ProcInfo>();
  for (const p of processesInNamespaces(manyNamespaces(dir))) seen.set(p.pid, p);
  for (const p of processesMentioning(dir)) if (!seen.has(p.pid)) seen.set(p.pid, p);
  return [...seen.values()];
}

async function downUnlocked(dir: string, log: (m: string) => void): Promise<ManyDownReport> {
  const t0 = performance.now();
  const state = readState(dir);
  const report: ManyDownReport = { dir, killed: [], namespacesDeleted: 0, runNetnsUnmounted: false, ms: 0, left: { processes: [], namespaces: [], mounts: [] } };
  const killed: number[] = [];
  const kill = (pid: number, kind: string, check: (argv: string[]) => boolean, sig: NodeJS.Signals): void => {
    if (killChecked(pid, check, sig)) { killed.push(pid); report.killed.push({ pid, kind }); }
  };
  // 1. The daemons, by PID file (SIGTERM: a clean stop; the reapers then exit by themselves).
  let hostDirs: string[] = [];
  try { hostDirs = readdirSync(join(dir, 'hosts')); } catch { /* nothing started */ }
  for (const name of hostDirs) {
    const i = Number(/^many-(\d+)$/.exec(name)?.[1]);
    if (!Number.isInteger(i) || i < 1) continue;
    const pid = daemonPid(manyHost(dir, i, 0));
    if (pid !== null) kill(pid, 'libvirtd', isLibvirtd, 'SIGTERM');
  }
  const stuck = await waitGone(killed, 10_000);
  for (const pid of stuck) killChecked(pid, isLibvirtd, 'SIGKILL');
  // 2. Whatever still runs in our namespaces or names our directory (reapers, helpers, QEMUs).
  const known = new Set(['qemu', 'libvirtd', 'reaper', 'helper']);
  const reapers = sweep(dir).filter((p) => p.kind === 'reaper').map((p) => p.pid);
  await waitGone(reapers, 3_000);
  for (const p of sweep(dir)) {
    if (p.kind !== null && known.has(p.kind)) kill(p.pid, p.kind, (a) => a.join('\0') === p.argv.join('\0'), 'SIGKILL');
  }
  await waitGone(killed, 5_000);
  // 3. Namespaces (only `lo` in them), then /run/netns if our start mounted it.
  for (const ns of manyNamespaces(dir)) {
    const r = await run(['ip', 'netns', 'del', ns]);
    if (r.code === 0) report.namespacesDeleted++;
  }
  report.runNetnsUnmounted = await releaseRunNetns(state !== null && !state.runNetnsWasMounted);
  // 4. What is left.
  report.left.processes = sweep(dir).map((p) => `${p.pid} ${p.kind ?? '?'} ${p.argv.slice(0, 3).join(' ')}`);
  report.left.namespaces = manyNamespaces(dir);
  report.left.mounts = mountsUnder(dir);
  // 5. Files: all but the lock (held by the caller) and the capabilities seed; all are kept
  //    while a process is left, for a retry.
  if (existsSync(dir) && report.left.processes.length === 0) {
    for (const e of readdirSync(dir)) if (e !== 'many.lock' && e !== 'qemucaps') rmSync(join(dir, e), { recursive: true, force: true });
  }
  report.ms = Math.round(performance.now() - t0);
  const nLeft = Object.values(report.left).reduce((a, l) => a + l.length, 0);
  log(`many-host lab down in ${report.ms} ms: ${report.killed.length} processes stopped, ${report.namespacesDeleted} namespaces deleted, ${nLeft === 0 ? 'nothing left' : `${nLeft} LEFT: ${JSON.stringify(report.left)}`}`);
  return report;
}
