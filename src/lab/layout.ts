/**
 * Names, addresses and paths of the lab. Everything the lab creates on the machine is derived
 * from here, so `down` can find (and only find) what `up` made.
 *
 * Topology (all interfaces live in namespaces the lab creates; nothing is added to the root
 * network namespace and no packet leaves the machine):
 *
 *   netns tide-lab-sw  (switch + probe station 10.77.0.254 on sw0)
 *     sw0 ── swp-a ═veth═ eth0 ── br0 10.77.0.1   netns tide-lab-a, libvirtd "lab-a"
 *         └─ swp-b ═veth═ eth0 ── br0 10.77.0.2   netns tide-lab-b, libvirtd "lab-b"
 *   guests: taps on the host's br0, 10.77.0.11 … 10.77.0.99
 */
import { join } from 'node:path';

/** The subnet exists only inside the lab namespaces. */
export const LAB_NET_PREFIX = '10.77.0';
export const LAB_NET_BITS = 24;
export const SWITCH_NS = 'tide-lab-sw';
export const SWITCH_BRIDGE = 'sw0';
export const PROBE_STATION_IP = `${LAB_NET_PREFIX}.254`;
export const DEFAULT_LAB_DIR = '/tmp/tide-lab';
/** First and last guest address (last octet). */
export const GUEST_IP_FIRST = 11;
export const GUEST_IP_LAST = 99;

export type LabHostName = 'lab-a' | 'lab-b';
export const LAB_HOST_NAMES: readonly LabHostName[] = ['lab-a', 'lab-b'];

/** Static facts about one lab host; paths depend on the lab directory. */
export interface HostLayout {
  /** Tide host name, libvirt hostname (UTS namespace) and directory name. */
  readonly name: LabHostName;
  /** Network namespace holding the host's uplink, bridge and guest taps. */
  readonly netns: string;
  readonly ip: string;
  /** Port of this host's uplink on the switch (in SWITCH_NS); its peer is `eth0` in `netns`. */
  readonly switchPort: string;
  /** MAC of the host uplink; pinned so power add-ons (WoL) can rely on it. */
  readonly mac: string;
  /** host_uuid in libvirtd.conf: libvirt refuses to migrate between hosts with equal UUIDs. */
  readonly uuid: string;
  /** Per-host state: etc/ run/ lib/ log/ cache/ hosts, bind-mounted over the system paths. */
  readonly dir: string;
  readonly socket: string;
  /** Control URI from the root namespace (unix socket in the bind-mounted run dir). */
  readonly uri: string;
  /** URI other lab hosts use for P2P migration (only reachable inside the lab network). */
  readonly peerUri: string;
  /** Where QEMU streams migration data to. */
  readonly migrationAddress: string;
  readonly reaperPidFile: string;
  readonly libvirtdPidFile: string;
  readonly logFile: string;
}

export interface LabLayout {
  readonly dir: string;
  readonly stateFile: string;
  readonly configFile: string;
  /** Guest image cache (kernel, modules, initramfs, QEMU capabilities); kept by `down`. */
  readonly cacheDir: string;
  /** "Shared storage": the same path on both hosts (kernel/initrd links, disks, consoles). */
  readonly sharedDir: string;
  readonly binDir: string;
  readonly lockFile: string;
  readonly leaseFile: string;
  readonly hosts: readonly HostLayout[];
}

const HOST_INDEX: Record<LabHostName, number> = { 'lab-a': 1, 'lab-b': 2 };

/** sun_path is 108 bytes including the NUL; libvirt fails obscurely beyond that. */
const MAX_SOCKET_PATH = 107;

export function hostLayout(dir: string, name: LabHostName): HostLayout {
  const n = HOST_INDEX[name];
  const letter = name.slice(-1);
  const ip = `${LAB_NET_PREFIX}.${n}`;
  const hdir = join(dir, 'hosts', name);
  const socket = join(hdir, 'run', 'libvirt-sock');
  return {
    name,
    netns: `tide-lab-${letter}`,
    ip,
    switchPort: `swp-${letter}`,
    mac: `02:77:00:00:00:0${letter}`,
    uuid: `7a110000-0000-4000-8000-00000000000${letter}`,
    dir: hdir,
    socket,
    uri: `qemu+unix:///system?socket=${socket}`,
    peerUri: `qemu+tcp://${ip}/system`,
    migrationAddress: `tcp://${ip}`,
    reaperPidFile: join(hdir, 'reaper.pid'),
    libvirtdPidFile: join(hdir, 'libvirtd.pid'),
    logFile: join(hdir, 'libvirtd.out'),
  };
}

export function labLayout(dir: string = DEFAULT_LAB_DIR, cacheDir?: string): LabLayout {
  const hosts = LAB_HOST_NAMES.map((n) => hostLayout(dir, n));
  for (const h of hosts) {
    if (Buffer.byteLength(h.socket) > MAX_SOCKET_PATH) {
      throw new Error(`lab dir too long: the libvirt socket path ${h.socket} exceeds ${MAX_SOCKET_PATH} bytes`);
    }
  }
  return {
    dir,
    stateFile: join(dir, 'state.json'),
    configFile: join(dir, 'tide.json'),
    cacheDir: cacheDir ?? join(dir, 'cache'),
    sharedDir: join(dir, 'shared'),
    binDir: join(dir, 'bin'),
    lockFile: join(dir, 'lab.lock'),
    leaseFile: join(dir, 'lease.lock'),
    hosts,
  };
}

export function isLabHostName(s: string): s is LabHostName {
  return (LAB_HOST_NAMES as readonly string[]).includes(s);
}

/** All network namespaces the lab may create (for `down` and the leftover check). */
export function labNamespaces(): string[] {
  return [SWITCH_NS, ...LAB_HOST_NAMES.map((n) => hostLayout('/', n).netns)];
}

/** Guest MAC from its address: 52:54:00:77:00:<last octet in hex>. */
export function guestMac(ip: string): string {
  const last = Number(ip.split('.').pop());
  return `52:54:00:77:00:${last.toString(16).padStart(2, '0')}`;
}

export function guestIp(octet: number): string {
  return `${LAB_NET_PREFIX}.${octet}`;
}
