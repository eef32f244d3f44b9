/**
 * Storage evidence for the migration pre-flight: is each local disk of the VM on storage the
 * target sees too (shared), provably not (not-shared), or can Tide not tell (unknown)?
 *
 * Evidence comes only from libvirt's storage pools, asked on both hosts:
 *   - a volume disk (<source pool volume>) needs the target to have an active pool of that name
 *     holding a volume of that name; a missing pool, an inactive pool or a missing volume is
 *     proof the target cannot open the disk → not-shared;
 *   - a file/block disk whose directory is the target path of an active pool on the target:
 *     no volume at the path, even after a refresh of that pool, is proof the file is not there →
 *     not-shared; a volume there is compared with the source's view of the same path;
 *   - identity: both hosts' pools are the same network storage (same netfs/rbd/gluster/iscsi
 *     source) → shared; both see the file and its size differs → a different file →
 *     not-shared; same size and same change time (ctime, ns) → the same file → shared;
 *   - anything else (no pool covers the path, a lookup failed, no source view to compare,
 *     a backend without storage calls) → unknown, with the reason, and libvirt's own check
 *     (which refuses unsafe migrations unless told otherwise) decides.
 *
 * `gatherStorage` does the I/O through the optional HostBackend storage calls; `judgeDisk`
 * is pure and decides from the facts.
 */
import { posix } from 'node:path';
import type { HostBackend } from './backend.js';
import { attrOf, child, childrenNamed, parseXml, path, textOf, type DiskFacts } from './xml.js';

/** A storage pool as one host's libvirt sees it. */
export interface StoragePoolFacts {
  name: string;
  uuid: string;
  /** Pool type: dir, fs, netfs, logical, disk, iscsi, rbd, gluster… */
  type: string;
  /** Running (VIR_STORAGE_POOL_RUNNING); only active pools resolve volumes. */
  active: boolean;
  /** <target><path>, null for pools without one (rbd, gluster). */
  targetPath: string | null;
  /**
   * Identity of the network storage behind the pool ("netfs nfs1:/export"), so pools on two
   * hosts can be recognised as the same storage; null for host-local pool types.
   */
  sharedSource: string | null;
}

/** A storage volume as one host's libvirt sees it. */
export interface StorageVolumeFacts {
  pool: string;
  name: string;
  key: string;
  path: string | null;
  /** <capacity>, bytes (raw: the file size; qcow2: the virtual size), null when absent. */
  capacityBytes: number | null;
  /** <target><timestamps><ctime> as libvirt prints it ("SECONDS.NANOSECONDS"), null when absent. */
  ctime: string | null;
}

/** Where to look a volume up: by pool and name, or by path (any active pool). */
export type VolumeRef = { pool: string; name: string } | { path: string };

/** What one host showed for one disk. */
export interface StorageSide {
  /** The pool that holds (or would hold) the disk on this host; null: no such pool. */
  pool: StoragePoolFacts | null;
  /** The disk's volume in that pool, looked up after a refresh; null: the pool has none; absent: not looked up. */
  volume?: StorageVolumeFacts | null;
  /** The host could not be asked: why. */
  error?: string;
}

export interface DiskStorageFacts {
  dev: string;
  source: StorageSide;
  target: StorageSide;
}

/** Storage facts for the pre-flight: per disk, or why none could be gathered. */
export type StorageFacts = { disks: DiskStorageFacts[] } | { unavailable: string };

export type StorageVerdict = 'shared' | 'not-shared' | 'unknown';

/** Pool types whose data lives on network storage (the same data from every host). */
const NETWORK_POOL_TYPES = new Set(['netfs', 'rbd', 'gluster', 'iscsi', 'iscsi-direct', 'sheepdog', 'vstorage']);

/** Facts of a pool's XML (virStoragePoolGetXMLDesc / virsh pool-dumpxml); throws XmlError when malformed. */
export function parsePoolXml(xml: string, active: boolean): StoragePoolFacts {
  const root = parseXml(xml, 'storage pool XML');
  const type = attrOf(root, 'type') ?? '?';
  const src = child(root, 'source');
  let sharedSource: string | null = null;
  if (NETWORK_POOL_TYPES.has(type) && src) {
    const hosts = childrenNamed(src, 'host').map((h) => `${attrOf(h, 'name') ?? ''}${attrOf(h, 'port') ? `:${attrOf(h, 'port')}` : ''}`).sort();
    const where = attrOf(child(src, 'dir'), 'path') ?? attrOf(child(src, 'device'), 'path') ?? textOf(child(src, 'name'));
    if (where !== null) sharedSource = `${type} ${hosts.join(',')}${hosts.length ? ':' : ''}${where}`;
  }
  return {
    name: textOf(child(root, 'name')) ?? '?',
    uuid: textOf(child(root, 'uuid')) ?? '',
    type,
    active,
    targetPath: textOf(path(root, 'target', 'path')),
    sharedSource,
  };
}

/** Facts of a volume's XML (virStorageVolGetXMLDesc / virsh vol-dumpxml); throws XmlError when malformed. */
export function parseVolumeXml(xml: string, pool: string): StorageVolumeFacts {
  const root = parseXml(xml, 'storage volume XML');
  const cap = child(root, 'capacity');
  const capText = textOf(cap);
  const unit = attrOf(cap, 'unit') ?? 'bytes';
  return {
    pool,
    name: textOf(child(root, 'name')) ?? '?',
    key: textOf(child(root, 'key')) ?? '',
    path: textOf(path(root, 'target', 'path')),
    capacityBytes: capText !== null && /^\d+$/.test(capText) && (unit === 'bytes' || unit === 'B') ? Number(capText) : null,
    ctime: textOf(path(root, 'target', 'timestamps', 'ctime')),
  };
}

/** The path a file/block disk uses on the host, null for other disk kinds. */
function diskPath(d: DiskFacts): string | null {
  if (d.type === 'volume' || d.type === 'dir' || d.type === 'network') return null;
  return d.src?.file ?? d.src?.dev ?? null;
}

const norm = (p: string): string => posix.normalize(p).replace(/\/+$/, '') || '/';

/** The active pool whose target directory directly holds `file` (dir pools list only their top level). */
function poolHolding(pools: StoragePoolFacts[], file: string): StoragePoolFacts | null {
  const dir = norm(posix.dirname(file));
  return pools.find((p) => p.active && p.targetPath !== null && norm(p.targetPath) === dir) ?? null;
}

const message = (e: unknown): string => (e as Error)?.message ?? String(e);

async function side(b: HostBackend, d: DiskFacts, pools: Promise<StoragePoolFacts[]>): Promise<StorageSide> {
  if (!b.storagePools || !b.storageVolume) return { pool: null, error: `${b.config.name}: this driver cannot ask for storage pools` };
  let list: StoragePoolFacts[];
  try {
    list = await pools;
  } catch (e) {
    return { pool: null, error: message(e) };
  }
  try {
    if (d.type === 'volume' && d.src?.pool !== undefined && d.src.volume !== undefined) {
      const pool = list.find((p) => p.name === d.src!.pool) ?? null;
      if (!pool || !pool.active) return { pool };
      return { pool, volume: await b.storageVolume({ pool: pool.name, name: d.src.volume }, { refreshPool: pool.name }) };
    }
    const p = diskPath(d);
    const pool = p === null ? null : poolHolding(list, p);
    if (!pool || p === null) return { pool };
    return { pool, volume: await b.storageVolume({ path: p }, { refreshPool: pool.name }) };
  } catch (e) {
    return { pool: null, error: message(e) };
  }
}

/**
 * Asks both hosts' libvirt about every disk (read-only, except that the pool holding a disk is
 * refreshed when the volume is not known, so a file created since the last refresh is seen, and
 * "not there" is said only after a rescan). Never rejects: a failed
 * question becomes an `error` in the facts (→ unknown).
 */
export async function gatherStorage(disks: DiskFacts[], src: HostBackend, dst: HostBackend): Promise<StorageFacts> {
  if (!dst.storagePools || !dst.storageVolume) return { unavailable: `the ${dst.config.name} driver cannot ask for storage pools` };
  const srcPools = src.storagePools ? src.storagePools() : Promise.reject(new Error('no storage calls'));
  const dstPools = dst.storagePools();
  srcPools.catch(() => { /* reported per disk */ });
  dstPools.catch(() => { /* idem */ });
  return {
    disks: await Promise.all(disks.map(async (d) => {
      const [source, target] = await Promise.all([side(src, d, srcPools), side(dst, d, dstPools)]);
      return { dev: d.dev, source, target };
    })),
  };
}

/** Same data on both hosts? Decided from what both showed for a disk both can see. */
function identity(s: StorageSide, t: StorageSide & { pool: StoragePoolFacts; volume: StorageVolumeFacts }, from: string, to: string): { verdict: StorageVerdict; why: string } {
  if (t.pool.sharedSource !== null && s.pool?.sharedSource === t.pool.sharedSource) {
    return { verdict: 'shared', why: `both hosts' pools are the same storage (${t.pool.sharedSource})` };
  }
  if (s.error !== undefined) return { verdict: 'unknown', why: `visible on ${to}, but ${from} could not be asked to compare (${s.error})` };
  if (!s.volume) return { verdict: 'unknown', why: `visible on ${to} (pool '${t.pool.name}'), but no storage pool on ${from} holds it to compare with` };
  const a = s.volume;
  const b = t.volume;
  if (a.capacityBytes !== null && b.capacityBytes !== null && a.capacityBytes !== b.capacityBytes) {
    return { verdict: 'not-shared', why: `${to} has a different file there (${b.capacityBytes} bytes; ${a.capacityBytes} on ${from})` };
  }
  if (a.capacityBytes !== null && a.capacityBytes === b.capacityBytes && a.ctime !== null && a.ctime !== '0' && a.ctime === b.ctime) {
    return { verdict: 'shared', why: `the same file on both hosts (${a.capacityBytes} bytes, changed at ${a.ctime})` };
  }
  return { verdict: 'unknown', why: `visible on ${to} too, but nothing proves it is the same file (change time ${a.ctime ?? '?'} on ${from}, ${b.ctime ?? '?'} on ${to})` };
}

/** Pure: the verdict for one disk from what both hosts showed. */
export function judgeDisk(d: DiskFacts, f: DiskStorageFacts | undefined, from: string, to: string): { verdict: StorageVerdict; why: string } {
  if (!f) return { verdict: 'unknown', why: `${to} was not asked about it` };
  const t = f.target;
  if (t.error !== undefined) return { verdict: 'unknown', why: `cannot ask ${to} about its storage (${t.error})` };
  if (d.type === 'volume' && d.src?.pool !== undefined && d.src.volume !== undefined) {
    const { pool, volume } = d.src;
    if (!t.pool) return { verdict: 'not-shared', why: `${to} has no storage pool '${pool}'` };
    if (!t.pool.active) return { verdict: 'not-shared', why: `storage pool '${pool}' is not active on ${to}` };
    if (!t.volume) return { verdict: 'not-shared', why: `storage pool '${pool}' on ${to} has no volume '${volume}'` };
    return identity(f.source, { ...t, pool: t.pool, volume: t.volume }, from, to);
  }
  const p = diskPath(d);
  if (p === null) return { verdict: 'unknown', why: `${d.type} disks are not checked` };
  if (!t.pool) return { verdict: 'unknown', why: `no active storage pool on ${to} holds ${posix.dirname(p)}` };
  if (!t.volume) return { verdict: 'not-shared', why: `${to}'s storage pool '${t.pool.name}' (${t.pool.targetPath}) has no ${posix.basename(p)}: the disk is not visible there` };
  return identity(f.source, { ...t, pool: t.pool, volume: t.volume }, from, to);
}
