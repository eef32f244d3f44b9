/**
 * The lab guest image: a Debian kernel booted directly (no disk, no bootloader) plus an
 * initramfs built here from busybox-static and the kernel's virtio modules.
 *
 * The kernel comes from the `linux-image-*-amd64` package, which is only *unpacked*
 * (`apt-get download` + `dpkg-deb -x`), never installed. The compressed bzImage payload is
 * unpacked to an ELF `vmlinux` that QEMU boots through the PVH entry point (CONFIG_PVH=y):
 * no BIOS real-mode setup and no in-guest decompression, which under TCG cuts the boot from
 * 9–16 s to about 3 s.
 *
 * Cache layout (kept by `tide lab down`, removed by `--purge`):
 *   <cache>/kernel/current              kernel version in use
 *   <cache>/kernel/<kver>/vmlinuz       the package's bzImage
 *   <cache>/kernel/<kver>/vmlinux       PVH-bootable ELF (absent if extraction failed)
 *   <cache>/kernel/<kver>/modules/*.ko  the virtio modules, uncompressed
 *   <cache>/initrd-<hash>.img           gzip'ed newc initramfs; hash covers all its inputs
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { newcArchive, type CpioEntry } from './cpio.js';
import { LabError, run, runOk } from './exec.js';
import { CGI_DIRTY, CGI_LOAD, CGI_UP, GUEST_INIT, GUEST_MODULES } from './guest-init.js';

/** Path of a linux-image-*.deb to use instead of downloading one (offline machines). */
export const KERNEL_DEB_ENV = 'TIDE_LAB_KERNEL_DEB';
export const BUSYBOX = '/bin/busybox';
/** Bump when the initramfs layout changes in a way the hash inputs do not capture. */
const INITRD_FORMAT = 3;

export interface GuestImage {
  kernelVersion: string;
  /** What the domain boots: the PVH vmlinux when available, else the bzImage. */
  kernel: string;
  /** True when `kernel` is the uncompressed ELF vmlinux (PVH boot). */
  pvh: boolean;
  initrd: string;
}

export interface ImageOptions {
  /** Boot the compressed bzImage even if a vmlinux is available (slow under TCG). */
  bzImage?: boolean;
  log?: (msg: string) => void;
}

export async function ensureGuestImage(cacheDir: string, opts: ImageOptions = {}): Promise<GuestImage> {
  const log = opts.log ?? (() => {});
  mkdirSync(cacheDir, { recursive: true });
  const kver = await ensureKernel(cacheDir, log);
  const kdir = join(cacheDir, 'kernel', kver);
  const vmlinux = join(kdir, 'vmlinux');
  const pvh = !opts.bzImage && existsSync(vmlinux);
  const initrd = ensureInitrd(cacheDir, kver);
  return { kernelVersion: kver, kernel: pvh ? vmlinux : join(kdir, 'vmlinuz'), pvh, initrd };
}

/** True when a complete kernel is cached (then `up` needs no network). */
export function cachedKernelVersion(cacheDir: string): string | null {
  try {
    const kver = readFileSync(join(cacheDir, 'kernel', 'current'), 'utf8').trim();
    return existsSync(join(cacheDir, 'kernel', kver, 'complete')) ? kver : null;
  } catch {
    return null;
  }
}

async function ensureKernel(cacheDir: string, log: (m: string) => void): Promise<string> {
  const fromDeb = process.env[KERNEL_DEB_ENV];
  if (!fromDeb) {
    const cached = cachedKernelVersion(cacheDir);
    if (cached) return cached;
  }
  const t0 = Date.now();
  const work = join(cacheDir, 'unpack');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    let root: string;
    let kver: string;
    const installed = fromDeb ? null : installedKernel();
    if (installed) {
      log(`using the installed kernel ${installed}`);
      root = '/';
      kver = installed;
    } else {
      const deb = fromDeb ?? await downloadKernelDeb(work, log);
      root = join(work, 'root');
      await runOk(['dpkg-deb', '-x', deb, root], { timeoutMs: 180_000 });
      const versions = readdirSync(join(root, 'lib', 'modules'));
      if (versions.length !== 1 || versions[0] === undefined) throw new LabError(`${deb}: expected one kernel in lib/modules, found ${versions.join(', ') || 'none'}`);
      kver = versions[0];
    }
    const kdir = join(cacheDir, 'kernel', kver);
    rmSync(kdir, { recursive: true, force: true });
    mkdirSync(join(kdir, 'modules'), { recursive: true });
    copyFileSync(join(root, 'boot', `vmlinuz-${kver}`), join(kdir, 'vmlinuz'));
    await collectModules(join(root, 'lib', 'modules', kver), join(kdir, 'modules'));
    const elf = await extractVmlinux(readFileSync(join(kdir, 'vmlinuz')));
    if (elf) writeFileSync(join(kdir, 'vmlinux'), elf);
    else log('could not extract an ELF vmlinux from the bzImage: guests boot the bzImage (slow under TCG)');
    writeFileSync(join(kdir, 'complete'), `${new Date().toISOString()}\n`);
    writeFileSync(join(cacheDir, 'kernel', 'current'), `${kver}\n`);
    log(`guest kernel ${kver} ready in ${Date.now() - t0} ms${elf ? ` (vmlinux ${(elf.length / 2 ** 20).toFixed(0)} MiB, PVH boot)` : ''}`);
    return kver;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** An installed Debian kernel (/boot/vmlinuz-X-amd64 with /lib/modules/X), newest first. */
function installedKernel(): string | null {
  let versions: string[];
  try {
    versions = readdirSync('/lib/modules').filter((v) => v.endsWith('-amd64'));
  } catch {
    return null;
  }
  versions.sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
  return versions.find((v) => existsSync(`/boot/vmlinuz-${v}`)) ?? null;
}

async function downloadKernelDeb(dir: string, log: (m: string) => void): Promise<string> {
  const deps = await run(['apt-cache', 'depends', 'linux-image-amd64'], { env: { ...process.env, LC_ALL: 'C' } });
  const pkg = /Depends: (linux-image-[^\s]+-amd64)\b/.exec(deps.stdout)?.[1];
  if (!pkg) throw new LabError('cannot resolve linux-image-amd64 to a kernel package (run apt-get update?)');
  log(`downloading ${pkg} (apt-get download; unpacked only, never installed)`);
  const r = await run(['apt-get', 'download', '-q', pkg], { cwd: dir, timeoutMs: 600_000 });
  const deb = readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (r.code !== 0 || !deb) throw new LabError(`apt-get download ${pkg} failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return join(dir, deb);
}

function findFiles(dir: string, out: Map<string, string> = new Map()): Map<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) findFiles(p, out);
    else {
      const m = /^(.+)\.ko(\.xz|\.zst|\.gz)?$/.exec(e.name);
      if (m?.[1] && !out.has(m[1])) out.set(m[1], p);
    }
  }
  return out;
}

async function collectModules(modDir: string, dest: string): Promise<void> {
  const all = findFiles(join(modDir, 'kernel'));
  let builtin = '';
  try { builtin = readFileSync(join(modDir, 'modules.builtin'), 'utf8'); } catch { /* none */ }
  for (const m of GUEST_MODULES) {
    const src = all.get(m) ?? all.get(m.replace(/_/g, '-'));
    if (!src) {
      if (builtin.includes(`/${m}.ko`)) continue; // compiled in: nothing to load
      throw new LabError(`kernel module ${m} not found in ${modDir}`);
    }
    const out = join(dest, `${m}.ko`);
    if (src.endsWith('.ko')) copyFileSync(src, out);
    else if (src.endsWith('.gz')) writeFileSync(out, gunzipSync(readFileSync(src)));
    else {
      const dec = src.endsWith('.xz') ? ['xz', '-dc', src] : ['zstd', '-dcq', src];
      const r = await run(dec, { binary: true });
      if (r.code !== 0) throw new LabError(`cannot decompress ${src}: ${r.stderr.trim()}`);
      writeFileSync(out, r.stdoutBytes);
    }
  }
}

/**
 * The ELF vmlinux inside a bzImage, or null. Uses the boot protocol header (≥ 2.08):
 * setup_sects at 0x1f1, "HdrS" at 0x202, payload_offset/payload_length at 0x248/0x24c; the
 * payload starts (setup_sects + 1) · 512 bytes into the file.
 */
export async function extractVmlinux(bz: Buffer): Promise<Buffer | null> {
  if (bz.length < 0x250 || bz.toString('ascii', 0x202, 0x206) !== 'HdrS' || bz.readUInt16LE(0x206) < 0x208) return null;
  const setupSects = bz[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + bz.readUInt32LE(0x248);
  const payload = bz.subarray(start, start + bz.readUInt32LE(0x24c));
  let elf: Buffer | null = null;
  const magic = payload.subarray(0, 6).toString('hex');
  if (magic.startsWith('1f8b')) {
    try { elf = gunzipSync(payload); } catch { elf = null; }
  } else if (magic === 'fd377a585a00' || magic.startsWith('28b52ffd')) {
    // the kernel appends the uncompressed size after the stream: --single-stream ignores it
    const argv = magic.startsWith('fd') ? ['xz', '-dc', '--single-stream'] : ['zstd', '-dcq'];
    const r = await run(argv, { input: payload, binary: true, timeoutMs: 120_000 });
    elf = r.stdoutBytes.length > 0 ? r.stdoutBytes : null;
  }
  return elf && elf.toString('latin1', 0, 4) === '\x7fELF' ? elf : null;
}

/** True when an ELF file has no PT_INTERP segment (statically linked). */
export function isStaticElf(file: string): boolean {
  const b = readFileSync(file);
  if (b.toString('latin1', 0, 4) !== '\x7fELF' || b[4] !== 2) return false; // 64-bit only
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return false;
  return true;
}

function ensureInitrd(cacheDir: string, kver: string): string {
  if (!existsSync(BUSYBOX) || !isStaticElf(BUSYBOX)) {
    throw new LabError(`${BUSYBOX} is missing or not statically linked (install busybox-static)`);
  }
  const modDir = join(cacheDir, 'kernel', kver, 'modules');
  const modules = GUEST_MODULES.filter((m) => existsSync(join(modDir, `${m}.ko`)));
  const bb = statSync(BUSYBOX);
  const hash = createHash('sha256')
    .update(JSON.stringify([INITRD_FORMAT, kver, modules, GUEST_INIT, CGI_UP, CGI_DIRTY, CGI_LOAD, bb.size, bb.mtimeMs]))
    .digest('hex').slice(0, 16);
  const file = join(cacheDir, `initrd-${hash}.img`);
  if (existsSync(file)) return file;
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'etc', 'lib', 'lib/modules', 'proc', 'root', 'run', 'sys', 'tmp', 'www', 'www/cgi-bin']
      .map((path): CpioEntry => ({ type: 'dir', path })),
    { type: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'file', path: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'file', path: 'init', data: GUEST_INIT, mode: 0o755 },
    { type: 'file', path: 'www/cgi-bin/up', data: CGI_UP, mode: 0o755 },
    { type: 'file', path: 'www/cgi-bin/dirty', data: CGI_DIRTY, mode: 0o755 },
    { type: 'file', path: 'www/cgi-bin/load', data: CGI_LOAD, mode: 0o755 },
    { type: 'file', path: 'etc/hosts', data: '127.0.0.1 localhost\n' },
    ...modules.map((m): CpioEntry => ({ type: 'file', path: `lib/modules/${m}.ko`, data: readFileSync(join(modDir, `${m}.ko`)) })),
  ];
  for (const old of readdirSync(cacheDir).filter((f) => /^initrd-[0-9a-f]+\.img$/.test(f))) rmSync(join(cacheDir, old), { force: true });
  writeFileSync(`${file}.tmp`, gzipSync(newcArchive(entries), { level: 6 }));
  // rename is atomic: a concurrent reader never sees a half-written initramfs
  renameSync(`${file}.tmp`, file);
  return file;
}
