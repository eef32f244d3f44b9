/**
 * The Tide lab: two libvirt "hosts" and a few small guests on one Linux machine (root), for
 * end-to-end tests of migration, balancing and failure handling. See docs/lab.md.
 *
 * Lifecycle: Lab.up() → Lab (also from a later process: Lab.open(dir)) → lab.down().
 * All state lives under the lab directory (default /tmp/tide-lab): state.json describes the
 * lab, tide.json is a Tide config file for it.
 */
import { existsSync, linkSync, copyFileSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync, cpSync, closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../config/load.js';
import type { TideConfigInput } from '../config/schema.js';
import { startProbe, waitForService, type RunningProbe, type StartProbeOptions } from '../probe/index.js';
import { detectAccel, domainType, type Accel, type AccelChoice } from './accel.js';
import { domainXml, GUEST_NAME_RE, type GuestDisk, type GuestSpec } from './domain.js';
import { LabError, run, type RunResult } from './exec.js';
import {
  isQemuOf, libvirtdPid, qemuPids, reaperPid, startLibvirtd, stopLibvirtd, tailOf, waitLibvirtd, writeHostConfig,
  isLibvirtd, isReaperOf,
} from './host.js';
import { cachedKernelVersion, ensureGuestImage, type GuestImage } from './image.js';
import {
  DEFAULT_LAB_DIR, GUEST_IP_FIRST, GUEST_IP_LAST, LAB_HOST_NAMES, LAB_NET_BITS, SWITCH_NS, guestIp, guestMac,
  labLayout, labNamespaces, type HostLayout, type LabHostName, type LabLayout,
} from './layout.js';
import { acquireLock } from './lock.js';
import * as net from './net.js';
import { killChecked, mountsUnder, processesInNamespaces, processesMentioning, waitGone, type ProcInfo } from './proc.js';
import { ensureHostPrerequisites } from './prereq.js';
import {
  agentRequest, hostPower, labBootSec, labPowerConfig, powerProblems, startPower, stopPower,
  type LabHostPower, type LabPowerOptions, type LabPowerState,
} from './power.js';
import { powerHostPaths } from './power-layout.js';
import { REAPER_FILE, REAPER_PY } from './reaper.js';
import { parseJobInfo, virsh, virshOk, type VirshOptions } from './virsh.js';

export type Placement = 'round-robin' | LabHostName;

export interface LabUpOptions {
  /** Lab directory (default /tmp/tide-lab). */
  dir?: string;
  /** Image cache (default <dir>/cache). Kept by down unless purge. */
  cacheDir?: string;
  /** Guests vm1…vmN to have running (default 2). */
  vms?: number;
  /** round-robin (default): vm1 → lab-a, vm2 → lab-b, vm3 → lab-a…; or all on one host. */
  placement?: Placement;
  /** Guest RAM in MiB (default 128). */
  memMiB?: number;
  /** MiB of RAM each new guest keeps rewriting from boot (default 0). */
  dirtyMiB?: number;
  /** Give new guests a raw disk (see GuestDisk). Default none: RAM-only guests. */
  disk?: 'shared' | 'local' | null;
  diskMiB?: number;
  accel?: AccelChoice;
  /** Boot the compressed bzImage instead of the PVH vmlinux (slow under TCG; for comparison). */
  bzImage?: boolean;
  /** Tear down whatever is there first instead of reusing it. */
  recreate?: boolean;
  /** Leave a failed lab in place for debugging (default: clean it up). */
  keepOnFailure?: boolean;
  /** Give each host an IPMI BMC and a Wake-on-LAN listener (see power.ts); added to a reused lab too. */
  power?: LabPowerOptions | null;
  log?: (msg: string) => void;
}

export interface LabVm {
  name: string;
  ip: string;
  mac: string;
  /** Host it was defined and started on (it may have migrated since: see Lab.locate). */
  home: LabHostName;
  memMiB: number;
  dirtyMiB: number;
  disk: GuestDisk | null;
  /** http://<ip>/ — reachable only from the switch namespace (SWITCH_NS). */
  probe: string;
}

export interface LabTimings {
  totalMs: number;
  imageMs?: number;
  networkMs?: number;
  libvirtdMs?: number;
  capabilitiesMs?: number;
  /** virsh define+start until the guest's HTTP service answered, per guest. */
  bootMs: Record<string, number>;
}

/** Persistent description of a lab (state.json). Internal: use Lab's accessors. */
export interface LabState {
  version: 1;
  dir: string;
  cacheDir: string;
  createdAt: string;
  accel: Accel;
  accelReason: string;
  /** Whether /run/netns was a mount point before `up` (down unmounts it only if not). */
  runNetnsWasMounted: boolean;
  image: GuestImage | null;
  /** Kernel and initrd as the guests see them (links on the shared path). */
  boot: { kernel: string; initrd: string } | null;
  vms: LabVm[];
  timings: LabTimings | null;
  /** The power add-on (`up --power`), absent without it. */
  power?: LabPowerState | null;
}

/** Exactly what `tide lab up --json` prints. */
export interface LabSummary {
  config: string;
  hosts: LabHostName[];
  vms: { name: string; host: LabHostName | null; probe: string }[];
}

export interface BootGuestOptions {
  name?: string;
  host: LabHostName;
  memMiB?: number;
  dirtyMiB?: number;
  disk?: 'shared' | 'local' | null;
  diskMiB?: number;
  /** Wait until the HTTP service answers (default true). */
  wait?: boolean;
  waitTimeoutMs?: number;
}

export interface DownOptions {
  dir?: string;
  /** Also remove the image cache (default <dir>/cache). */
  purge?: boolean;
  log?: (msg: string) => void;
}

export interface DownReport {
  dir: string;
  destroyedDomains: string[];
  killed: { pid: number; kind: string; argv0: string }[];
  namespacesDeleted: string[];
  runNetnsUnmounted: boolean;
  /** True when the teardown was skipped on purpose (test helper with TIDE_LAB_KEEP=1). */
  kept?: boolean;
  /** What is still there afterwards: all empty on success. */
  left: { processes: string[]; namespaces: string[]; links: string[]; mounts: string[] };
}

const REQUIRED_BINARIES = ['ip', 'tc', 'unshare', 'virsh', 'libvirtd', 'qemu-system-x86_64', 'xz', 'dpkg-deb'];

function which(bin: string): boolean {
  const path = (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  return path.some((d) => d !== '' && existsSync(join(d, bin)));
}

/**
 * Why the lab cannot run on this machine, or null if it can (root, Linux, the packages in
 * scripts/install-deps.sh, and a cached kernel or apt-get to fetch one).
 */
export function labPrerequisiteProblem(cacheDir: string = join(DEFAULT_LAB_DIR, 'cache')): string | null {
  if (process.platform !== 'linux') return 'the lab needs Linux';
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, libvirtd)';
  const missing = REQUIRED_BINARIES.filter((b) => !which(b));
  if (!existsSync('/usr/bin/python3') && !which('python3')) missing.push('python3');
  if (!existsSync('/bin/busybox')) missing.push('/bin/busybox (busybox-static)');
  if (cachedKernelVersion(cacheDir) === null && !process.env.TIDE_LAB_KERNEL_DEB && !which('apt-get')) missing.push('apt-get (to fetch the guest kernel)');
  if (!existsSync('/dev/net/tun')) missing.push('/dev/net/tun');
  return missing.length ? `missing: ${missing.join(', ')} (see scripts/install-deps.sh)` : null;
}

function readState(layout: LabLayout): LabState | null {
  try {
    const s = JSON.parse(readFileSync(layout.stateFile, 'utf8')) as LabState;
    return s.version === 1 ? s : null;
  } catch {
    return null;
  }
}

function writeState(layout: LabLayout, s: LabState): void {
  writeFileSync(`${layout.stateFile}.tmp`, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(`${layout.stateFile}.tmp`, layout.stateFile);
}

/** Hard link (same filesystem) or copy. */
function linkOrCopy(src: string, dst: string): void {
  rmSync(dst, { force: true });
  try {
    linkSync(src, dst);
  } catch {
    copyFileSync(src, dst);
  }
}

export class Lab {
  readonly layout: LabLayout;
  protected state: LabState;
  protected log: (msg: string) => void;

  /** Internal: use Lab.up() or Lab.open(). Public so that test helpers can subclass Lab. */
  constructor(layout: LabLayout, state: LabState, log?: (msg: string) => void) {
    this.layout = layout;
    this.state = state;
    this.log = log ?? (() => {});
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Brings the lab up, or reuses a healthy lab already up in the same directory (then only
   * missing guests vm1…vmN are booted). A lab that is up but unhealthy is an error unless
   * `recreate` is set.
   */
  static async up(opts: LabUpOptions = {}): Promise<{ lab: Lab; reused: boolean; timings: LabTimings }> {
    const dir = opts.dir ?? DEFAULT_LAB_DIR;
    const layout = labLayout(dir, opts.cacheDir);
    const problem = labPrerequisiteProblem(layout.cacheDir);
    if (problem) throw new LabError(problem);
    mkdirSync(dir, { recursive: true });
    const log = opts.log ?? (() => {});
    const release = await acquireLock(layout.lockFile, { what: `lab ${dir}`, onWait: (p) => log(`waiting for pid ${p} (lab ${dir} busy)`) });
    try {
      const existing = readState(layout);
      if (existing && opts.recreate) {
        log('recreating: tearing the existing lab down first');
        await downUnlocked(layout, { log });
      } else if (existing) {
        const lab = new Lab(layout, existing, log);
        const t0 = performance.now();
        // (dead power agents are restarted here, not a reason to refuse)
        let problems = await lab.healthProblems({ power: false });
        if ((opts.power || existing.power) && !problems.some((p) => p.startsWith('namespace '))) {
          existing.power = await startPower(layout, opts.power ?? { method: existing.power!.method, bootDelaySec: existing.power!.bootDelayMs / 1000 }, log);
          writeState(layout, existing);
          // A host powered off (by its BMC, WoL or a crash) is powered on: `up` means the lab is up.
          for (const h of layout.hosts) {
            if (libvirtdPid(h) !== null) continue;
            log(`powering ${h.name} on (its libvirtd is not running)`);
            await lab.powerAction(h.name, 'on');
            await lab.waitHostUp(h.name, existing.power.bootDelayMs + 30_000);
          }
          problems = await lab.healthProblems({ power: false });
        }
        if (problems.length > 0) {
          throw new LabError(`a lab is already set up in ${dir} but is not healthy (${problems.join('; ')}); run \`tide lab down --dir ${dir}\` or \`tide lab up --recreate\``);
        }
        const bootMs = await lab.ensureGuests(opts);
        lab.writeConfig();
        log(`reusing the lab in ${dir}`);
        return { lab, reused: true, timings: { totalMs: Math.round(performance.now() - t0), bootMs } };
      }
      const stray = net.leftoverNamespaces();
      if (stray.length > 0) {
        throw new LabError(`network namespaces ${stray.join(', ')} exist but ${dir} holds no lab: another lab is up (other --dir?) or a crashed one; run \`tide lab down\` with its --dir`);
      }
      return await Lab.create(layout, opts, log);
    } finally {
      release();
    }
  }

  /** The lab up in `dir` (as an instance of the class it is called on), or null. No health check. */
  static open<L extends Lab>(
    this: new (layout: LabLayout, state: LabState, log?: (msg: string) => void) => L,
    dir: string = DEFAULT_LAB_DIR,
    log?: (msg: string) => void,
  ): L | null {
    const state = readState(labLayout(dir));
    return state ? new this(labLayout(dir, state.cacheDir), state, log) : null;
  }

  /** Removes every process, namespace, link and mount of the lab in `dir`; see DownReport. */
  static async down(opts: DownOptions = {}): Promise<DownReport> {
    const dir = opts.dir ?? DEFAULT_LAB_DIR;
    const layout = labLayout(dir, readState(labLayout(dir))?.cacheDir);
    if (!existsSync(layout.dir)) return downUnlocked(layout, opts);
    const release = await acquireLock(layout.lockFile, { what: `lab ${layout.dir}` });
    try {
      return await downUnlocked(layout, opts);
    } finally {
      release();
      if (opts.purge) rmSync(layout.dir, { recursive: true, force: true });
    }
  }

  down(opts: Omit<DownOptions, 'dir'> = {}): Promise<DownReport> {
    return Lab.down({ log: this.log, ...opts, dir: this.layout.dir });
  }

  private static async create(layout: LabLayout, opts: LabUpOptions, log: (m: string) => void): Promise<{ lab: Lab; reused: boolean; timings: LabTimings }> {
    const t0 = performance.now();
    const ms = (since: number): number => Math.round(performance.now() - since);
    const accel = detectAccel(opts.accel);
    log(`accelerator: ${accel.accel} (${accel.reason})`);
    ensureHostPrerequisites();
    for (const d of ['hosts', 'shared/boot', 'shared/disks', 'shared/console', 'vms', 'bin']) mkdirSync(join(layout.dir, d), { recursive: true });
    writeFileSync(join(layout.binDir, REAPER_FILE), REAPER_PY, { mode: 0o755 });
    const state: LabState = {
      version: 1,
      dir: layout.dir,
      cacheDir: layout.cacheDir,
      createdAt: new Date().toISOString(),
      accel: accel.accel,
      accelReason: accel.reason,
      runNetnsWasMounted: net.runNetnsIsMounted(),
      image: null,
      boot: null,
      vms: [],
      timings: null,
    };
    // Written before anything is created, so that `down` can undo a half-finished `up`.
    writeState(layout, state);
    const lab = new Lab(layout, state, log);
    const timings: LabTimings = { totalMs: 0, bootMs: {} };
    try {
      // The image (first time: ~70 MB download + unpack) is built while the hosts start.
      const tImage = performance.now();
      const imageP = ensureGuestImage(layout.cacheDir, { bzImage: opts.bzImage, log }).then((img) => {
        timings.imageMs = ms(tImage);
        return img;
      });
      imageP.catch(() => { /* awaited below */ });

      const tNet = performance.now();
      await net.createSwitch();
      for (const h of layout.hosts) await net.createHostNet(h);
      timings.networkMs = ms(tNet);

      const tDaemons = performance.now();
      const seed = join(layout.cacheDir, 'qemucaps');
      const reapers = layout.hosts.map((h) => {
        writeHostConfig(h, seed);
        return startLibvirtd(h, layout.binDir);
      });
      await Promise.all(layout.hosts.map((h, i) => waitLibvirtd(h, reapers[i]!)));
      timings.libvirtdMs = ms(tDaemons);

      // libvirt probes the QEMU binary on first use (~4 s per daemon under TCG). Warm both
      // daemons in parallel now and keep a copy of the cache to seed the next `up`.
      const tCaps = performance.now();
      await Promise.all(layout.hosts.map((h) => virshOk(h.uri, ['domcapabilities', '--virttype', domainType(accel.accel)])));
      timings.capabilitiesMs = ms(tCaps);
      const capsDir = join(layout.hosts[0]!.dir, 'cache', 'qemu', 'capabilities');
      if (!existsSync(seed) && existsSync(capsDir)) cpSync(capsDir, seed, { recursive: true });

      if (!(await net.canReach(layout.hosts[0]!.netns, layout.hosts[1]!.ip))) throw new LabError('lab hosts cannot reach each other over the switch');
      if (opts.power) {
        state.power = await startPower(layout, opts.power, log);
        writeState(layout, state);
      }

      const image = await imageP;
      const kernel = join(layout.sharedDir, 'boot', image.pvh ? 'vmlinux' : 'vmlinuz');
      const initrd = join(layout.sharedDir, 'boot', 'initrd.img');
      linkOrCopy(image.kernel, kernel);
      linkOrCopy(image.initrd, initrd);
      state.image = image;
      state.boot = { kernel, initrd };
      writeState(layout, state);
      log(`hosts up in ${ms(t0)} ms (network ${timings.networkMs} ms, libvirtd ${timings.libvirtdMs} ms, capabilities ${timings.capabilitiesMs} ms, image ${timings.imageMs} ms)`);

      timings.bootMs = await lab.ensureGuests(opts);
      timings.totalMs = ms(t0);
      state.timings = timings;
      lab.writeConfig();
      writeState(layout, state);
      log(`lab up in ${timings.totalMs} ms: ${layout.hosts.map((h) => `${h.name} ${h.ip}`).join(', ')}; guests ${state.vms.map((v) => `${v.name} ${v.ip}@${v.home}`).join(', ') || 'none'}`);
      return { lab, reused: false, timings };
    } catch (e) {
      const diag = lab.diagnostics();
      if (opts.keepOnFailure) {
        log(`up failed; lab left in place for debugging (tide lab down --dir ${layout.dir})`);
      } else {
        log('up failed; cleaning up');
        await downUnlocked(layout, { log });
      }
      const msg = (e as Error).message;
      throw new LabError(`lab up failed: ${msg}${diag ? `\n${diag}` : ''}`);
    }
  }

  /** Boots vm1…vmN that are missing and starts those that are defined but not running. */
  private async ensureGuests(opts: LabUpOptions): Promise<Record<string, number>> {
    const n = opts.vms ?? 2;
    if (!Number.isInteger(n) || n < 0 || n > GUEST_IP_LAST - GUEST_IP_FIRST + 1) throw new LabError(`--vms must be 0…${GUEST_IP_LAST - GUEST_IP_FIRST + 1}`);
    const placement = opts.placement ?? 'round-robin';
    const jobs: Promise<[string, number]>[] = [];
    for (let i = 1; i <= n; i++) {
      const name = `vm${i}`;
      const known = this.state.vms.find((v) => v.name === name);
      if (!known) {
        const host: LabHostName = placement === 'round-robin' ? LAB_HOST_NAMES[(i - 1) % LAB_HOST_NAMES.length]! : placement;
        jobs.push(this.bootGuest({ name, host, memMiB: opts.memMiB, dirtyMiB: opts.dirtyMiB, disk: opts.disk, diskMiB: opts.diskMiB })
          .then((r) => [name, r.bootMs] as [string, number]));
      } else {
        jobs.push((async (): Promise<[string, number]> => {
          if (await this.locate(name)) return [name, 0];
          const t = performance.now();
          const where = (await this.definedOn(name)) ?? known.home;
          await this.virshOk(where, ['start', name]);
          await this.waitGuest(known, 120_000);
          return [name, Math.round(performance.now() - t)];
        })());
      }
    }
    return Object.fromEntries(await Promise.all(jobs));
  }

  // ---------------------------------------------------------------- facts

  get dir(): string { return this.layout.dir; }
  get configFile(): string { return this.layout.configFile; }
  get accel(): Accel { return this.state.accel; }
  get hostNames(): LabHostName[] { return this.layout.hosts.map((h) => h.name); }
  get vms(): readonly LabVm[] { return this.state.vms; }
  get timings(): LabTimings | null { return this.state.timings; }
  /** Network namespace of the switch / probe station (10.77.0.254): where probes run. */
  get probeNetns(): string { return SWITCH_NS; }

  host(name: LabHostName | string): HostLayout {
    const h = this.layout.hosts.find((x) => x.name === name);
    if (!h) throw new LabError(`no lab host '${name}' (hosts: ${this.hostNames.join(', ')})`);
    return h;
  }

  vm(name: string): LabVm {
    const v = this.state.vms.find((x) => x.name === name);
    if (!v) throw new LabError(`no lab guest '${name}'`);
    return v;
  }

  otherHost(name: LabHostName): LabHostName {
    return name === 'lab-a' ? 'lab-b' : 'lab-a';
  }

  async summary(): Promise<LabSummary> {
    const vms = [];
    for (const v of this.state.vms) vms.push({ name: v.name, host: await this.locate(v.name), probe: v.probe });
    return { config: this.layout.configFile, hosts: this.hostNames, vms };
  }

  /**
   * Undoes the fault injections: restores cut links, removes shaping and starts libvirtds
   * that are not running. Guests are left where they are.
   */
  async resetFaults(): Promise<void> {
    for (const h of this.layout.hosts) {
      if (!net.netnsExists(h.netns) || !net.netnsExists(SWITCH_NS)) continue;
      await net.restoreLink(h);
      await net.unshapeLink(h);
      if (this.state.power) {
        // through the host's power agent, so it never races an agent's own power-on
        if (libvirtdPid(h) === null) await this.powerAction(h.name, 'on');
        await this.waitHostUp(h.name, this.state.power.bootDelayMs + 30_000);
      } else if (libvirtdPid(h) === null) await this.startLibvirtd(h.name);
    }
  }

  /** Problems that make the lab unusable (empty = healthy); with `power` (default) the power add-on's too. */
  async healthProblems(opts: { power?: boolean } = {}): Promise<string[]> {
    const problems: string[] = [];
    if (this.state.power && opts.power !== false) problems.push(...powerProblems(this.layout));
    for (const ns of labNamespaces()) if (!net.netnsExists(ns)) problems.push(`namespace ${ns} is missing`);
    await Promise.all(this.layout.hosts.map(async (h) => {
      if (libvirtdPid(h) === null) { problems.push(`libvirtd of ${h.name} is not running`); return; }
      const r = await virsh(h.uri, ['hostname'], { timeoutMs: 10_000 });
      if (r.code !== 0) problems.push(`libvirtd of ${h.name} does not answer`);
    }));
    if (!this.state.boot) problems.push('guest image missing (up did not finish)');
    return problems;
  }

  // ---------------------------------------------------------------- libvirt

  /** virsh against a lab host (argv array, LC_ALL=C). Never throws for a non-zero exit. */
  virsh(host: LabHostName | string, args: readonly string[], opts?: VirshOptions): Promise<RunResult> {
    return virsh(this.host(host).uri, args, opts);
  }

  /** virsh that throws unless it exits 0; returns trimmed stdout. */
  virshOk(host: LabHostName | string, args: readonly string[], opts?: VirshOptions): Promise<string> {
    return virshOk(this.host(host).uri, args, opts);
  }

  /**
   * Host that owns the active guest, or null. During a migration the guest is active on both
   * hosts (paused on the destination): the owner is the source until the migration ends, so
   * a host whose job is an "Incoming migration" is skipped.
   */
  async locate(vm: string): Promise<LabHostName | null> {
    const found = (await Promise.all(this.layout.hosts.map(async (h) => {
      if (libvirtdPid(h) === null) return null;
      const r = await virsh(h.uri, ['list', '--name'], { timeoutMs: 15_000 });
      return r.code === 0 && r.stdout.split('\n').map((s) => s.trim()).includes(vm) ? h : null;
    }))).filter((h): h is HostLayout => h !== null);
    if (found.length <= 1) return found[0]?.name ?? null;
    for (const h of found) {
      const r = await virsh(h.uri, ['domjobinfo', vm], { timeoutMs: 15_000 });
      if (r.code === 0 && parseJobInfo(r.stdout).operation !== 'Incoming migration') return h.name;
    }
    return found[0]!.name;
  }

  /** Host holding a persistent definition of the guest (first found), or null. */
  async definedOn(vm: string): Promise<LabHostName | null> {
    for (const h of this.layout.hosts) {
      if (libvirtdPid(h) === null) continue;
      const r = await virsh(h.uri, ['list', '--all', '--persistent', '--name'], { timeoutMs: 15_000 });
      if (r.code === 0 && r.stdout.split('\n').map((s) => s.trim()).includes(vm)) return h.name;
    }
    return null;
  }

  /** `virsh domjobinfo [--completed]` parsed (keys like timeElapsedMs, totalDowntimeMs). */
  async jobInfo(host: LabHostName, vm: string, completed = true): Promise<Record<string, number | string>> {
    return parseJobInfo(await this.virshOk(host, ['domjobinfo', ...(completed ? ['--completed'] : []), vm]));
  }

  /**
   * Waits until a migration of `vm` out of `host` has sent at least `mib` MiB (so a fault
   * injected now hits the memory-copy phase, not the set-up handshake) and returns the job
   * info at that moment. Throws if no such job shows up within `timeoutMs`.
   */
  async waitForMigrationData(host: LabHostName, vm: string, mib = 1, timeoutMs = 60_000): Promise<Record<string, number | string>> {
    const end = Date.now() + timeoutMs;
    let last: Record<string, number | string> = {};
    while (Date.now() < end) {
      const r = await this.virsh(host, ['domjobinfo', vm], { timeoutMs: 10_000 });
      if (r.code === 0) {
        last = parseJobInfo(r.stdout);
        if (jobMiB(last, 'dataProcessed') >= mib) return last;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new LabError(`no migration of ${vm} from ${host} reached ${mib} MiB within ${timeoutMs} ms (last job info: ${JSON.stringify(last)})`);
  }

  /**
   * Defines (persistent) and starts a guest on `host`, then waits for its HTTP service.
   * The guest's address is the next free 10.77.0.11…99.
   */
  async bootGuest(o: BootGuestOptions): Promise<LabVm & { bootMs: number }> {
    if (!this.state.boot) throw new LabError('the lab has no guest image (up did not finish)');
    const h = this.host(o.host);
    // Allocate name and address synchronously, so concurrent bootGuest calls do not collide.
    const used = new Set(this.state.vms.map((v) => v.ip));
    let octet = GUEST_IP_FIRST;
    while (octet <= GUEST_IP_LAST && used.has(guestIp(octet))) octet++;
    if (octet > GUEST_IP_LAST) throw new LabError('no free guest address');
    let name = o.name;
    if (name === undefined) {
      let i = this.state.vms.length + 1;
      while (this.state.vms.some((v) => v.name === `vm${i}`)) i++;
      name = `vm${i}`;
    }
    if (!GUEST_NAME_RE.test(name)) throw new LabError(`bad guest name '${name}' (letters, digits, _ and -)`);
    if (this.state.vms.some((v) => v.name === name)) throw new LabError(`guest ${name} already exists`);
    const ip = guestIp(octet);
    const diskMode = o.disk ?? null;
    const disk: GuestDisk | null = diskMode === null ? null : {
      mode: diskMode,
      path: diskMode === 'shared' ? join(this.layout.sharedDir, 'disks', `${name}.img`) : `/var/lib/libvirt/images/${name}.img`,
      sizeMiB: o.diskMiB ?? 64,
    };
    const vm: LabVm = {
      name, ip, mac: guestMac(ip), home: h.name, memMiB: o.memMiB ?? 128, dirtyMiB: o.dirtyMiB ?? 0, disk, probe: `http://${ip}/`,
    };
    this.state.vms.push(vm);
    writeState(this.layout, this.state);
    try {
      if (disk) this.createDiskFile(vm, h.name);
      const consoleLog = join(this.layout.sharedDir, 'console', `${name}.log`);
      closeSync(openSync(consoleLog, 'w'));
      const xmlFile = join(this.layout.dir, 'vms', `${name}.xml`);
      const spec: GuestSpec = { name, ip, mac: vm.mac, memMiB: vm.memMiB, dirtyMiB: vm.dirtyMiB, disk };
      writeFileSync(xmlFile, domainXml(spec, this.state.accel, { ...this.state.boot, consoleLog }, LAB_NET_BITS));
      const t0 = performance.now();
      await this.virshOk(h.name, ['define', xmlFile]);
      await this.virshOk(h.name, ['start', name]);
      if (o.wait !== false) await this.waitGuest(vm, o.waitTimeoutMs ?? 120_000);
      const bootMs = Math.round(performance.now() - t0);
      this.writeConfig();
      this.log(`guest ${name} (${ip}) on ${h.name}: service up ${bootMs} ms after define+start`);
      return { ...vm, bootMs };
    } catch (e) {
      this.state.vms = this.state.vms.filter((v) => v.name !== name);
      writeState(this.layout, this.state);
      throw e;
    }
  }

  private createDiskFile(vm: LabVm, host: LabHostName): void {
    if (!vm.disk) return;
    const file = vm.disk.mode === 'shared' ? vm.disk.path : this.localDiskPath(vm.name, host);
    mkdirSync(join(file, '..'), { recursive: true });
    closeSync(openSync(file, 'a'));
    truncateSync(file, vm.disk.sizeMiB * 2 ** 20);
  }

  private localDiskPath(vm: string, host: LabHostName): string {
    return join(this.host(host).dir, 'lib', 'images', `${vm}.img`);
  }

  /**
   * Creates the (empty, sparse) local disk of `vm` on `host`, as needed before a
   * --copy-storage-all migration to that host. No-op for guests without a local disk.
   */
  prepareLocalDisk(vm: string, host: LabHostName): void {
    const v = this.vm(vm);
    if (v.disk?.mode === 'local') this.createDiskFile(v, host);
  }

  /** Waits until the guest's HTTP service answers from the switch namespace. */
  async waitGuest(vm: LabVm, timeoutMs = 120_000): Promise<number> {
    const ms = await waitForService({ target: vm.probe, netns: SWITCH_NS, timeoutMs, intervalMs: 50 });
    if (ms === null) {
      const where = await this.locate(vm.name);
      throw new LabError(`guest ${vm.name} (${vm.ip}) did not answer within ${timeoutMs} ms (active on: ${where ?? 'none'}); console: ${tailOf(join(this.layout.sharedDir, 'console', `${vm.name}.log`), 5)}`);
    }
    return ms;
  }

  // ---------------------------------------------------------------- guests

  /**
   * HTTP GET from the switch namespace (busybox wget); throws on failure or after `timeoutS`.
   * Returns the body. (busybox 1.35's `wget -T` segfaults, so the timeout is enforced here.)
   */
  async httpGet(url: string, timeoutS = 5): Promise<string> {
    const r = await run(['ip', 'netns', 'exec', SWITCH_NS, 'busybox', 'wget', '-q', '-O', '-', url], { timeoutMs: timeoutS * 1000 });
    if (r.code !== 0) throw new LabError(`GET ${url} failed: ${r.timedOut ? `no reply within ${timeoutS} s` : r.stderr.trim() || `exit ${r.code}`}`);
    return r.stdout;
  }

  /** The guest's /cgi-bin/up: { name, uptime (s), boot_id, dirty_mib }. */
  async guestInfo(vm: string): Promise<Record<string, string>> {
    return parseKv(await this.httpGet(`http://${this.vm(vm).ip}/cgi-bin/up`));
  }

  /**
   * Makes the guest rewrite `mib` MiB of its RAM continuously (0 stops it), so migrations
   * take longer or never converge. The guest refuses (LabError, HTTP 507) unless `mib` +
   * 16 MiB fit in its available memory (`mem_avail_kib` in guestInfo): a 128 MiB guest has
   * about 57 MiB available, so it can dirty up to ~40 MiB (see guest-init.ts).
   */
  async setDirty(vm: string, mib: number): Promise<Record<string, string>> {
    if (!Number.isInteger(mib) || mib < 0) throw new LabError('dirty MiB must be a non-negative integer');
    const v = this.vm(vm);
    // filling the buffer from /dev/urandom takes a while under TCG
    const kv = parseKv(await this.httpGet(`http://${v.ip}/cgi-bin/dirty?mib=${mib}`, 120));
    v.dirtyMiB = mib;
    writeState(this.layout, this.state);
    return kv;
  }

  /**
   * Starts a service probe against the guest from the switch namespace. Defaults: every 20 ms,
   * info (uptime/boot_id) from /cgi-bin/up every 25th request.
   */
  probe(vm: string, opts: Partial<StartProbeOptions> = {}): Promise<RunningProbe> {
    return startProbe({ target: this.vm(vm).probe, netns: SWITCH_NS, intervalMs: 20, infoPath: '/cgi-bin/up', ...opts });
  }

  // ---------------------------------------------------------------- faults

  /** PID of a host's libvirtd, or null if it is not running. */
  libvirtdPid(host: LabHostName): number | null {
    return libvirtdPid(this.host(host));
  }

  /**
   * Kills only the host's libvirtd (default SIGKILL = crash); its guests keep running.
   * Returns the killed PID (null if none was running).
   */
  async killLibvirtd(host: LabHostName, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const pid = await stopLibvirtd(this.host(host), signal);
    this.log(`libvirtd of ${host} ${pid === null ? 'was not running' : `(pid ${pid}) stopped with ${signal}`}`);
    return pid;
  }

  /** Starts the host's libvirtd again (same config, UUID and state dirs) and waits for it. */
  async startLibvirtd(host: LabHostName): Promise<number> {
    const h = this.host(host);
    if (libvirtdPid(h) !== null) throw new LabError(`libvirtd of ${host} is already running`);
    const reaper = startLibvirtd(h, this.layout.binDir);
    await waitLibvirtd(h, reaper);
    const pid = libvirtdPid(h);
    if (pid === null) throw new LabError(`libvirtd of ${host} did not stay up`);
    return pid;
  }

  /** Stops (SIGTERM) and starts the host's libvirtd; guests keep running. */
  async restartLibvirtd(host: LabHostName): Promise<number> {
    await this.killLibvirtd(host, 'SIGTERM');
    return this.startLibvirtd(host);
  }

  /**
   * "Power loss": SIGKILL to the host's guests (QEMU), libvirtd and reaper. Persistent guests
   * stay defined; startLibvirtd() brings the host back with its guests shut off.
   */
  async killHost(host: LabHostName): Promise<void> {
    const h = this.host(host);
    const pids: number[] = [];
    const lv = libvirtdPid(h);
    if (lv !== null && killChecked(lv, isLibvirtd)) pids.push(lv);
    for (const q of qemuPids(h)) if (killChecked(q.pid, isQemuOf(q.name))) pids.push(q.pid);
    for (const p of processesInNamespaces([h.netns])) {
      if (p.kind === 'qemu' || p.kind === 'reaper' || p.kind === 'libvirtd') {
        if (killChecked(p.pid, (argv) => argv.join('\0') === p.argv.join('\0'))) pids.push(p.pid);
      }
    }
    await waitGone(pids, 10_000);
    this.log(`host ${host} powered off (killed ${pids.length} processes)`);
  }

  // ---------------------------------------------------------------- power (up --power)

  /** The power add-on's settings, or null when the lab was brought up without --power. */
  get power(): LabPowerState | null {
    return this.state.power ?? null;
  }

  /** A host's power state (on / off / booting) from its agent, plus its BMC and process ids. */
  powerStatus(host: LabHostName): Promise<LabHostPower> {
    return hostPower(this.layout, this.host(host));
  }

  /**
   * Presses the host's power button directly through its agent, bypassing IPMI (the tests drive
   * IPMI and WoL through Tide's drivers instead): on (after the boot delay), off (hard: the
   * whole process tree is SIGKILLed before this resolves), soft (ACPI: runs in the background),
   * reset.
   */
  async powerAction(host: LabHostName, action: 'on' | 'off' | 'soft' | 'reset'): Promise<void> {
    if (!this.state.power) throw new LabError('the lab has no power add-on (tide lab up --power)');
    const line = { on: 'set power 1', off: 'set power 0', soft: 'set shutdown 1', reset: 'set reset 1' }[action];
    await agentRequest(this.layout.dir, host, line);
  }

  /**
   * Waits until the host's libvirt answers and, on a lab with power, its agent has finished the
   * boot (it reports on: it marks the host on only after its own wait for libvirtd, so libvirt
   * may answer a moment earlier); returns the ms waited. Throws after `timeoutMs`.
   */
  async waitHostUp(host: LabHostName, timeoutMs = 60_000): Promise<number> {
    const t0 = performance.now();
    const h = this.host(host);
    while (performance.now() - t0 < timeoutMs) {
      if (libvirtdPid(h) !== null && (await virsh(h.uri, ['hostname'], { timeoutMs: 5_000 })).code === 0
        && (!this.state.power || (await this.powerStatus(host)).state === 'on')) return Math.round(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new LabError(`libvirt of ${host} did not answer within ${timeoutMs} ms (agent log: ${tailOf(powerHostPaths(this.layout.dir, host).log, 4)})`);
  }

  /** Cuts the host's uplink (switch port down): silent packet loss to and from the host. */
  async cutLink(host: LabHostName): Promise<void> {
    await net.cutLink(this.host(host));
  }

  async restoreLink(host: LabHostName): Promise<void> {
    await net.restoreLink(this.host(host));
  }

  /** Shapes the uplinks of `hosts` (default both) to `mbit` Mbit/s in each direction (tc tbf). */
  async shapeLinks(mbit: number, hosts: readonly LabHostName[] = LAB_HOST_NAMES): Promise<void> {
    for (const h of hosts) await net.shapeLink(this.host(h), mbit);
  }

  async unshapeLinks(hosts: readonly LabHostName[] = LAB_HOST_NAMES): Promise<void> {
    for (const h of hosts) await net.unshapeLink(this.host(h));
  }

  // ---------------------------------------------------------------- misc

  /** Writes the Tide config file for this lab (validated against the schema). */
  writeConfig(): string {
    const input = labConfigInput(this.layout, this.state);
    parseConfig(input, this.layout.configFile); // throws if the lab would write an invalid config
    writeFileSync(this.layout.configFile, `${JSON.stringify(input, null, 2)}\n`);
    return this.layout.configFile;
  }

  /** Recent daemon and console output, for error messages. */
  diagnostics(): string {
    const parts: string[] = [];
    for (const h of this.layout.hosts) {
      if (existsSync(h.logFile)) parts.push(`  ${h.name} libvirtd.out: ${tailOf(h.logFile, 4)}`);
      const lv = join(h.dir, 'log', 'libvirtd.log');
      if (existsSync(lv)) parts.push(`  ${h.name} libvirtd.log: ${tailOf(lv, 4)}`);
    }
    for (const v of this.state.vms) {
      const c = join(this.layout.sharedDir, 'console', `${v.name}.log`);
      if (existsSync(c)) parts.push(`  ${v.name} console: ${tailOf(c, 3)}`);
    }
    return parts.join('\n');
  }
}

/**
 * The Tide configuration `tide lab up` writes (<lab dir>/tide.json) for a lab's layout and
 * state. Migrations run without auto-converge: under TCG, auto-converge's throttling of a guest
 * that keeps rewriting memory left it with corrupt memory after the switch-over (kernel oops,
 * then panic; docs/drivers.md, "Auto-converge under TCG"); the lab's guests converge through
 * the downtime instead.
 */
export function labConfigInput(layout: Pick<LabLayout, 'hosts' | 'dir'>, state: Pick<LabState, 'vms' | 'power'>): TideConfigInput {
  const shared = state.vms.some((v) => v.disk?.mode === 'shared');
  return {
    hosts: layout.hosts.map((h) => ({
      name: h.name, uri: h.uri, peerUri: h.peerUri, migrationAddress: h.migrationAddress,
      ...(state.power ? { power: labPowerConfig(h, state.power), bootSec: labBootSec(state.power) } : {}),
    })),
    vms: Object.fromEntries(state.vms.map((v) => [v.name, { probe: v.probe, probeNetns: SWITCH_NS }])),
    // lab disks on the shared path live on a local filesystem: libvirt calls that unsafe
    migration: { autoConverge: false, ...(shared ? { unsafe: true } : {}) },
    store: { path: join(layout.dir, 'tide.sqlite') },
  };
}

/** A size field of parsed job info (virsh picks B/KiB/MiB/GiB per value) in MiB; 0 if absent. */
export function jobMiB(job: Record<string, number | string>, key: string): number {
  const scale: [string, number][] = [['B', 2 ** -20], ['KiB', 2 ** -10], ['MiB', 1], ['GiB', 2 ** 10]];
  for (const [unit, f] of scale) {
    const v = job[key + unit];
    if (typeof v === 'number') return v * f;
  }
  return 0;
}

function parseKv(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const tok of body.trim().split(/\s+/)) {
    const i = tok.indexOf('=');
    if (i > 0) out[tok.slice(0, i)] = tok.slice(i + 1);
  }
  return out;
}

const describe = (p: ProcInfo): string => `${p.pid} ${p.argv.slice(0, 4).join(' ')}${p.netns ? ` [netns ${p.netns}]` : ''}`;

async function downUnlocked(layout: LabLayout, opts: DownOptions): Promise<DownReport> {
  const log = opts.log ?? (() => {});
  const state = readState(layout);
  const report: DownReport = {
    dir: layout.dir, destroyedDomains: [], killed: [], namespacesDeleted: [], runNetnsUnmounted: false,
    left: { processes: [], namespaces: [], links: [], mounts: [] },
  };
  const killedPids: number[] = [];
  const kill = (pid: number, kind: string, check: (argv: string[]) => boolean, argv0: string, sig: NodeJS.Signals = 'SIGKILL'): void => {
    if (killChecked(pid, check, sig)) { killedPids.push(pid); report.killed.push({ pid, kind, argv0 }); }
  };

  // 0. The power add-on first (BMCs, WoL listeners): nothing may power a host on from here on.
  report.killed.push(...await stopPower(layout));

  // 1. Guests, through libvirt while it answers (it then cleans up its own state).
  await Promise.all(layout.hosts.map(async (h) => {
    if (libvirtdPid(h) === null) return;
    const r = await virsh(h.uri, ['list', '--name'], { timeoutMs: 10_000 });
    if (r.code !== 0) return;
    const names = r.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
    await Promise.all(names.map(async (n) => {
      const d = await virsh(h.uri, ['destroy', n], { timeoutMs: 20_000 });
      if (d.code === 0) report.destroyedDomains.push(`${h.name}/${n}`);
    }));
  }));
  // 2. Any QEMU libvirt did not stop (orphaned incoming migration, dead daemon…).
  for (const h of layout.hosts) for (const q of qemuPids(h)) kill(q.pid, 'qemu', isQemuOf(q.name), 'qemu');
  // 3. The daemons.
  await Promise.all(layout.hosts.map(async (h) => {
    const pid = await stopLibvirtd(h, 'SIGTERM', 5_000);
    if (pid !== null) report.killed.push({ pid, kind: 'libvirtd', argv0: 'libvirtd' });
  }));
  // 4. Sweep: whatever the lab started that still runs in its namespaces or names its dir.
  const known = new Set(['qemu', 'libvirtd', 'probe', 'helper', 'power', 'bmc']);
  const sweep = (): ProcInfo[] => {
    const seen = new Map<number, ProcInfo>();
    for (const p of processesInNamespaces(labNamespaces())) seen.set(p.pid, p);
    for (const p of processesMentioning(layout.dir)) if (!seen.has(p.pid)) seen.set(p.pid, p);
    return [...seen.values()];
  };
  for (const p of sweep()) {
    if (p.kind !== null && known.has(p.kind)) kill(p.pid, p.kind, (a) => a.join('\0') === p.argv.join('\0'), p.argv[0] ?? '?');
  }
  await waitGone(killedPids, 5_000);
  // Reapers exit by themselves once their children are gone; give them a moment.
  const reapers = layout.hosts.map((h) => reaperPid(h)).filter((p): p is number => p !== null);
  const stuck = await waitGone(reapers, 2_000);
  for (const h of layout.hosts) {
    const pid = reaperPid(h);
    if (pid !== null && stuck.includes(pid)) kill(pid, 'reaper', isReaperOf(h), REAPER_FILE);
  }
  for (const p of sweep()) if (p.kind === 'reaper') kill(p.pid, 'reaper', (a) => a.join('\0') === p.argv.join('\0'), REAPER_FILE);
  await waitGone(killedPids, 5_000);

  // 5. Namespaces (their veths and bridges go with them), then /run/netns if we mounted it.
  report.namespacesDeleted = await net.deleteNamespaces();
  report.runNetnsUnmounted = await net.releaseRunNetns(state !== null && !state.runNetnsWasMounted);

  // 6. What is left.
  report.left.processes = sweep().map(describe);
  report.left.namespaces = net.leftoverNamespaces();
  const links = await run(['ip', '-o', 'link', 'show']);
  const names = [...labNamespaces(), ...layout.hosts.map((h) => h.switchPort), 'sw0'];
  report.left.links = links.stdout.split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '')
    .filter((n) => names.includes(n));
  report.left.mounts = [...mountsUnder(layout.dir), ...mountsUnder('/run/netns').filter((m) => labNamespaces().some((ns) => m.includes(`/run/netns/${ns}`)))];

  // 7. Files: everything but the cache and the lock files (purge: the caller removes the rest).
  if (existsSync(layout.dir)) {
    const keep = new Set([layout.lockFile, layout.leaseFile, ...(opts.purge ? [] : [layout.cacheDir])]);
    for (const e of readdirSync(layout.dir)) {
      const p = join(layout.dir, e);
      if (!keep.has(p)) rmSync(p, { recursive: true, force: true });
    }
    if (opts.purge) rmSync(layout.cacheDir, { recursive: true, force: true });
  }
  const nLeft = Object.values(report.left).reduce((n, l) => n + l.length, 0);
  log(`lab down: ${report.destroyedDomains.length} guests destroyed, ${report.killed.length} processes stopped, ${report.namespacesDeleted.length} namespaces deleted, ${nLeft === 0 ? 'nothing left' : `${nLeft} LEFT`}`);
  return report;
}
