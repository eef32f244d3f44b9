/**
 * Writer for the "newc" cpio format (SVR4 without CRC), the format the Linux kernel unpacks
 * as an initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
 *
 * Each entry: a 110-byte ASCII header "070701" + 13 eight-digit hex fields, the NUL-terminated
 * name, padding to a multiple of 4, the data, padding to a multiple of 4. The archive ends
 * with an entry named "TRAILER!!!".
 */

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer | string; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

interface Raw { name: string; mode: number; nlink: number; data: Buffer; rdevMajor: number; rdevMinor: number }

function header(ino: number, r: Raw, mtime: number): Buffer {
  const nameBytes = Buffer.byteLength(r.name) + 1;
  const fields = [ino, r.mode, 0, 0, r.nlink, mtime, r.data.length, 0, 0, r.rdevMajor, r.rdevMinor, nameBytes, 0];
  return Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
}

function toRaw(e: CpioEntry): Raw {
  const name = e.path.replace(/^\/+/, '');
  if (name === '' || name.split('/').includes('..')) throw new Error(`bad cpio path '${e.path}'`);
  const base = { name, rdevMajor: 0, rdevMinor: 0 };
  switch (e.type) {
    case 'dir': return { ...base, mode: S_IFDIR | (e.mode ?? 0o755), nlink: 2, data: Buffer.alloc(0) };
    case 'file': return { ...base, mode: S_IFREG | (e.mode ?? 0o644), nlink: 1, data: Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data) };
    case 'symlink': return { ...base, mode: S_IFLNK | 0o777, nlink: 1, data: Buffer.from(e.target) };
    case 'chardev': return { ...base, mode: S_IFCHR | (e.mode ?? 0o600), nlink: 1, data: Buffer.alloc(0), rdevMajor: e.major, rdevMinor: e.minor };
  }
}

/**
 * Builds an uncompressed newc archive. Parent directories must be listed before their
 * children (the kernel does not create them implicitly). `mtime` is in seconds since the
 * epoch; the default 0 makes the output reproducible.
 */
export function newcArchive(entries: readonly CpioEntry[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const push = (r: Raw, inode: number): void => {
    const h = header(inode, r, mtime);
    const name = Buffer.from(`${r.name}\0`);
    parts.push(h, name, Buffer.alloc(pad4(h.length + name.length)), r.data, Buffer.alloc(pad4(r.data.length)));
  };
  for (const e of entries) push(toRaw(e), ino++);
  push({ name: 'TRAILER!!!', mode: 0, nlink: 1, data: Buffer.alloc(0), rdevMajor: 0, rdevMinor: 0 }, 0);
  return Buffer.concat(parts);
}

/** Minimal reader (names, modes, data) used by tests to check the writer. */
export function readNewc(buf: Buffer): { name: string; mode: number; data: Buffer; rdev: [number, number] }[] {
  const out: { name: string; mode: number; data: Buffer; rdev: [number, number] }[] = [];
  let off = 0;
  while (off + 110 <= buf.length) {
    const magic = buf.toString('ascii', off, off + 6);
    if (magic !== '070701') throw new Error(`bad cpio magic at ${off}`);
    const field = (i: number): number => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const name = buf.toString('utf8', off + 110, off + 110 + nameSize - 1);
    let p = off + 110 + nameSize;
    p += pad4(p - off);
    const data = buf.subarray(p, p + size);
    if (name === 'TRAILER!!!') break;
    out.push({ name, mode, data, rdev: [field(9), field(10)] });
    p += size;
    off = p + pad4(size);
  }
  return out;
}
