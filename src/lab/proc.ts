/**
 * /proc helpers. The lab never kills by name: a PID (from a pid file or a namespace sweep) is
 * signalled only after its /proc/PID/cmdline was checked, and liveness ignores zombies (PID 1 on
 * some sandboxes reaps late, and `kill(pid, 0)` succeeds on a zombie).
 */
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { sleep } from './exec.js';

/** Single-letter process state from /proc/PID/stat (R, S, D, Z, …), or null if gone. */
export function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: the state follows the *last* ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) || null;
  } catch {
    return null;
  }
}

/** Exists and is not a zombie / dead. */
export function isLive(pid: number): boolean {
  const s = procState(pid);
  return s !== null && s !== 'Z' && s !== 'X' && s !== 'x';
}

export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  } catch {
    return [];
  }
}

export function readPidFile(file: string): number | null {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 1 ? n : null;
  } catch {
    return null;
  }
}

export function listPids(): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

/** Inode of a process's network namespace, or null (gone / kernel thread). */
export function netnsInodeOf(pid: number): number | null {
  try {
    const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Inode of a named namespace (/run/netns/NAME), or null if it does not exist. */
export function namedNetnsInode(name: string): number | null {
  try {
    return statSync(`/run/netns/${name}`).ino;
  } catch {
    return null;
  }
}

/** What a lab process is, judged from its argv; null = not something the lab starts. */
export type LabProcessKind = 'qemu' | 'libvirtd' | 'reaper' | 'probe' | 'helper' | 'bmc' | 'power';

export function classify(argv: readonly string[]): LabProcessKind | null {
  const exe = argv[0] ?? '';
  const base = exe.split('/').pop() ?? '';
  if (base.startsWith('qemu-system-')) return 'qemu';
  if (base === 'libvirtd') return 'libvirtd';
  if (argv.some((a) => a.endsWith('/lab-reaper.py'))) return 'reaper';
  // `tide lab up --power`: the per-host power agent (dist/lab/ or its transpiled copy) and its BMC
  if (argv.some((a) => a.endsWith('/power-agent.js'))) return 'power';
  if (base === 'ipmi_sim') return 'bmc';
  // dist/probe/cli.js, or its transpiled copy when running from sources (src/probe/index.ts)
  if (argv.some((a) => /\/(probe|tide-probe-[0-9a-f]+)\/cli\.js$/.test(a))) return 'probe';
  // short-lived helpers the lab runs inside its namespaces
  if (base === 'busybox' || base === 'ip' || base === 'tc' || base === 'virsh') return 'helper';
  return null;
}

/** Sends `signal` to `pid` if it is live and `check(argv)` accepts it. Returns whether it did. */
export function killChecked(pid: number, check: (argv: string[]) => boolean, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  if (!isLive(pid)) return false;
  const argv = cmdline(pid);
  if (!check(argv)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Waits until none of `pids` is live. Returns the ones still live after `timeoutMs`. */
export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const end = Date.now() + timeoutMs;
  let left = pids.filter(isLive);
  while (left.length > 0 && Date.now() < end) {
    await sleep(20);
    left = left.filter(isLive);
  }
  return left;
}

export interface ProcInfo {
  pid: number;
  argv: string[];
  kind: LabProcessKind | null;
  netns: string;
}

/** Live processes whose network namespace is one of the named namespaces. */
export function processesInNamespaces(names: readonly string[]): ProcInfo[] {
  const inodes = new Map<number, string>();
  for (const n of names) {
    const ino = namedNetnsInode(n);
    if (ino !== null) inodes.set(ino, n);
  }
  if (inodes.size === 0) return [];
  const out: ProcInfo[] = [];
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    const ino = netnsInodeOf(pid);
    const ns = ino === null ? undefined : inodes.get(ino);
    if (ns === undefined || !isLive(pid)) continue;
    const argv = cmdline(pid);
    out.push({ pid, argv, kind: classify(argv), netns: ns });
  }
  return out;
}

/**
 * Live lab processes (classify() ≠ null) whose argv mentions `path` (the lab dir) or
 * something below it, excluding this process. Other programs that merely mention the
 * directory (a shell running `tide lab down --dir …`) are not lab processes.
 */
export function processesMentioning(path: string): ProcInfo[] {
  const out: ProcInfo[] = [];
  const below = path.endsWith('/') ? path : `${path}/`;
  for (const pid of listPids()) {
    if (pid === process.pid || !isLive(pid)) continue;
    const argv = cmdline(pid);
    const kind = classify(argv);
    if (kind !== null && argv.some((a) => a === path || a.includes(below))) out.push({ pid, argv, kind, netns: '' });
  }
  return out;
}

/** Mount points (any process's mount namespace) whose source or target lies under `path`. */
export function mountsUnder(path: string): string[] {
  const found = new Set<string>();
  const prefix = path.endsWith('/') ? path : `${path}/`;
  const seenNs = new Set<string>();
  for (const pid of listPids()) {
    let text: string;
    let ns: string;
    try {
      ns = readlinkSync(`/proc/${pid}/ns/mnt`);
      if (seenNs.has(ns)) continue;
      seenNs.add(ns);
      text = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      // mountinfo: id parent major:minor root mountpoint … ; bind mounts show the source as `root`
      const f = line.split(' ');
      const root = f[3] ?? '';
      const mnt = f[4] ?? '';
      if (root.startsWith(prefix) || mnt.startsWith(prefix)) found.add(`${mnt} (from ${root}, ${ns}, e.g. pid ${pid})`);
    }
  }
  return [...found];
}
