/**
 * What a fresh Debian 12 machine (a container: no systemd, no boot) lacks before any private
 * libvirtd can start, created idempotently. Used by `tide lab up` and by the test fixtures, so
 * neither depends on the other (or on an earlier run) having prepared the machine:
 *   - the bind-mount targets (/run/libvirt exists only once systemd or a libvirtd made it);
 *   - the `kvm` group and `libvirt-qemu` user: libvirt's QEMU driver resolves its compiled-in
 *     default user before it reads qemu.conf, and only libvirt-daemon-system creates them.
 * Needs root. Every command is an argv array.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

export const BIND_TARGETS = ['/etc/libvirt', '/run/libvirt', '/var/lib/libvirt', '/var/log/libvirt', '/var/cache/libvirt'] as const;

function ok(bin: string, args: string[]): boolean {
  try {
    execFileSync(bin, args, { stdio: 'ignore', env: { ...process.env, LC_ALL: 'C' } });
    return true;
  } catch {
    return false;
  }
}

function must(bin: string, args: string[]): void {
  try {
    execFileSync(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`${bin} ${args.join(' ')} failed${err ? `: ${err}` : ''}`, { cause: e });
  }
}

/** Creates what is missing (see the module comment); `extraDirs` are made too. */
export function ensureHostPrerequisites(extraDirs: readonly string[] = []): void {
  for (const d of [...BIND_TARGETS, ...extraDirs]) mkdirSync(d, { recursive: true });
  if (!ok('getent', ['group', 'kvm'])) must('groupadd', ['--system', 'kvm']);
  if (!ok('getent', ['passwd', 'libvirt-qemu'])) {
    must('useradd', ['--system', '--no-create-home', '--user-group', '--groups', 'kvm', '--shell', '/usr/sbin/nologin', 'libvirt-qemu']);
  }
}
