/**
 * Lab network: namespaces, veth uplinks, bridges, link faults and bandwidth shaping.
 * Every interface is created directly inside a lab namespace (`ip link add … netns X`), so
 * the root network namespace never sees a lab interface, not even transiently.
 */
import { existsSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { LabError, run, runOk } from './exec.js';
import {
  LAB_NET_BITS, PROBE_STATION_IP, SWITCH_BRIDGE, SWITCH_NS, labNamespaces, type HostLayout,
} from './layout.js';

const ip = (...args: string[]): Promise<string> => runOk(['ip', ...args]);

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

/** True when /run/netns is a mount point (`ip netns add` makes it one on first use). */
export function runNetnsIsMounted(): boolean {
  try {
    const text = readFileSync('/proc/self/mountinfo', 'utf8');
    return text.split('\n').some((l) => l.split(' ')[4] === '/run/netns');
  } catch {
    return false;
  }
}

export async function createSwitch(): Promise<void> {
  await ip('netns', 'add', SWITCH_NS);
  await ip('-n', SWITCH_NS, 'link', 'set', 'lo', 'up');
  await ip('-n', SWITCH_NS, 'link', 'add', SWITCH_BRIDGE, 'type', 'bridge');
  await ip('-n', SWITCH_NS, 'addr', 'add', `${PROBE_STATION_IP}/${LAB_NET_BITS}`, 'dev', SWITCH_BRIDGE);
  await ip('-n', SWITCH_NS, 'link', 'set', SWITCH_BRIDGE, 'up');
}

/** Host namespace with eth0 (uplink to the switch) enslaved to br0, which carries the host IP. */
export async function createHostNet(h: HostLayout): Promise<void> {
  await ip('netns', 'add', h.netns);
  await ip('-n', h.netns, 'link', 'set', 'lo', 'up');
  await ip('link', 'add', 'eth0', 'netns', h.netns, 'address', h.mac, 'type', 'veth',
    'peer', 'name', h.switchPort, 'netns', SWITCH_NS);
  await ip('-n', h.netns, 'link', 'add', 'br0', 'type', 'bridge');
  await ip('-n', h.netns, 'link', 'set', 'eth0', 'master', 'br0');
  await ip('-n', h.netns, 'addr', 'add', `${h.ip}/${LAB_NET_BITS}`, 'dev', 'br0');
  await ip('-n', h.netns, 'link', 'set', 'eth0', 'up');
  await ip('-n', h.netns, 'link', 'set', 'br0', 'up');
  await ip('-n', SWITCH_NS, 'link', 'set', h.switchPort, 'master', SWITCH_BRIDGE, 'up');
}

/** Pings `toIp` from `fromNs` (busybox ping: no iputils needed). */
export async function canReach(fromNs: string, toIp: string): Promise<boolean> {
  const r = await run(['ip', 'netns', 'exec', fromNs, 'busybox', 'ping', '-c', '1', '-W', '1', toIp], { timeoutMs: 5_000 });
  return r.code === 0;
}

/**
 * Cuts a host's uplink: the switch port goes down, so frames between this host (and its
 * guests) and the rest of the lab are silently dropped, like a pulled cable. TCP connections
 * see no reset; libvirt notices through its keepalive.
 */
export async function cutLink(h: HostLayout): Promise<void> {
  await ip('-n', SWITCH_NS, 'link', 'set', h.switchPort, 'down');
}

export async function restoreLink(h: HostLayout): Promise<void> {
  await ip('-n', SWITCH_NS, 'link', 'set', h.switchPort, 'up');
}

export async function linkIsUp(h: HostLayout): Promise<boolean> {
  const out = await ip('-n', SWITCH_NS, '-o', 'link', 'show', h.switchPort);
  return /[<,]UP[,>]/.test(out);
}

/**
 * Shapes both directions of a host's uplink to `mbit` Mbit/s with a token bucket (tc tbf):
 * egress of eth0 in the host namespace and egress of its switch port. Replaces any shaping.
 */
export async function shapeLink(h: HostLayout, mbit: number): Promise<void> {
  if (!(mbit > 0)) throw new LabError(`link rate must be > 0 Mbit/s (got ${mbit})`);
  const tbf = ['root', 'tbf', 'rate', `${mbit}mbit`, 'burst', '64kb', 'latency', '50ms'];
  await runOk(['tc', '-n', h.netns, 'qdisc', 'replace', 'dev', 'eth0', ...tbf]);
  await runOk(['tc', '-n', SWITCH_NS, 'qdisc', 'replace', 'dev', h.switchPort, ...tbf]);
}

/** Removes shaping from a host's uplink (no-op if there is none). */
export async function unshapeLink(h: HostLayout): Promise<void> {
  await run(['tc', '-n', h.netns, 'qdisc', 'del', 'dev', 'eth0', 'root']);
  await run(['tc', '-n', SWITCH_NS, 'qdisc', 'del', 'dev', h.switchPort, 'root']);
}

/** Deletes the lab namespaces (their veths and bridges go with them). Returns the deleted names. */
export async function deleteNamespaces(): Promise<string[]> {
  const done: string[] = [];
  for (const ns of labNamespaces()) {
    if (!netnsExists(ns)) continue;
    const r = await run(['ip', 'netns', 'del', ns]);
    if (r.code === 0) done.push(ns);
  }
  return done;
}

export function leftoverNamespaces(): string[] {
  let names: string[] = [];
  try { names = readdirSync('/run/netns'); } catch { /* no /run/netns */ }
  return labNamespaces().filter((n) => names.includes(n));
}

/**
 * Unmounts /run/netns if the lab's `up` was what mounted it and no namespace is left in it
 * (another user's namespaces keep it mounted).
 */
export async function releaseRunNetns(weMountedIt: boolean): Promise<boolean> {
  if (!weMountedIt || !runNetnsIsMounted()) return false;
  let left: string[];
  try { left = readdirSync('/run/netns'); } catch { return false; }
  if (left.length > 0) return false;
  const r = await run(['umount', '/run/netns']);
  // `ip netns add` created the directory along with the mount: remove it too (if empty)
  if (r.code === 0) rmdirSafe('/run/netns');
  return r.code === 0;
}

function rmdirSafe(p: string): void {
  try { rmdirSync(p); } catch { /* not empty or already gone */ }
}
