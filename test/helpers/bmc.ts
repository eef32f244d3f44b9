/**
 * Test fixture: a real IPMI BMC on loopback — OpenIPMI's `ipmi_sim` speaking IPMI 2.0 RMCP+ on
 * 127.0.0.1:<free UDP port>, one admin user, and a chassis whose power is a state file. Its
 * `chassis_control` hook (a generated /bin/sh script) answers `get power` from that file and
 * flips it on `set power 0|1` (chassis power off/on) and `set shutdown` (chassis power soft,
 * unless `ignoreSoft` models an OS that ignores ACPI). Every hook call is appended to a log, so
 * tests can see which commands reached the BMC.
 *
 * No root needed. `stop()` SIGTERMs ipmi_sim (SIGKILL after 3 s), waits for its exit and removes
 * the temp dir: no process is left. `bmcGate()` skips with a printed reason when ipmi_sim or
 * ipmitool is missing, and throws under TIDE_REQUIRE_LAB=1 (as labGate in libvirtd.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IpmiPowerConfig } from '../../src/config/schema.js';
import { runArgv } from '../../src/drivers/power/exec.js';

function which(bin: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat(['/usr/sbin', '/usr/bin'])) {
    const p = join(dir, bin);
    if (existsSync(p)) return p;
  }
  return null;
}

/** `bins`: the programs needed (a test of the gate itself names a missing one). */
export function bmcAvailability(bins: readonly string[] = ['ipmi_sim', 'ipmitool']): { ok: boolean; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' };
  for (const b of bins) if (!which(b)) return { ok: false, reason: `'${b}' not found (run scripts/install-deps.sh: packages openipmi, ipmitool)` };
  return { ok: true, reason: '' };
}

/** true to run; prints the reason and returns false to skip; throws when TIDE_REQUIRE_LAB=1. */
export function bmcGate(what: string, bins?: readonly string[]): boolean {
  const a = bmcAvailability(bins);
  if (a.ok) return true;
  if (process.env.TIDE_REQUIRE_LAB === '1') throw new Error(`${what}: required BMC simulator unavailable (TIDE_REQUIRE_LAB=1): ${a.reason}`);
  console.warn(`[skip] ${what}: ${a.reason}`);
  return false;
}

/** A UDP port on 127.0.0.1 that was free a moment ago. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export interface BmcOptions {
  readonly user?: string;
  readonly password?: string;
  readonly initial?: 'on' | 'off';
  /** `chassis power soft` is accepted but changes nothing (an OS ignoring ACPI). */
  readonly ignoreSoft?: boolean;
}

export interface Bmc {
  readonly address: '127.0.0.1';
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** A 0600 file holding the password (for passwordFile). */
  readonly passwordFile: string;
  readonly pid: number;
  /** The chassis power as the state file says. */
  power(): 'on' | 'off';
  setPower(p: 'on' | 'off'): void;
  setIgnoreSoft(ignore: boolean): void;
  /** Hook calls so far, e.g. ['get power', 'set power 1']. */
  hookCalls(): string[];
  /** An IPMI power config for this BMC (password from passwordFile). */
  config(over?: Partial<IpmiPowerConfig>): IpmiPowerConfig;
  stop(): Promise<void>;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => { clearTimeout(t); resolve(true); });
  });
}

export async function startBmc(opts: BmcOptions = {}): Promise<Bmc> {
  const dir = mkdtempSync(join(tmpdir(), 'tide-bmc-'));
  const user = opts.user ?? 'admin';
  const password = opts.password ?? `pw-${Math.random().toString(36).slice(2, 12)}`;
  const port = await freeUdpPort();
  const stateFile = join(dir, 'power');
  const ignoreFile = join(dir, 'ignore-soft');
  const hookLog = join(dir, 'hook.log');
  writeFileSync(stateFile, `${opts.initial ?? 'off'}\n`);
  if (opts.ignoreSoft) writeFileSync(ignoreFile, '');
  const passwordFile = join(dir, 'bmc-password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  const hook = join(dir, 'chassis-hook');
  // ipmi_sim calls: <hook> get power | set power 0|1 | set shutdown 1 | get <item>.
  writeFileSync(hook, [
    '#!/bin/sh',
    `echo "$*" >> '${hookLog}'`,
    'case "$1 $2" in',
    `  "get power") if [ "$(cat '${stateFile}')" = on ]; then echo power:1; else echo power:0; fi ;;`,
    `  "set power") if [ "$3" = 1 ]; then echo on > '${stateFile}'; else echo off > '${stateFile}'; fi ;;`,
    `  "set shutdown") [ -e '${ignoreFile}' ] || echo off > '${stateFile}' ;;`,
    '  "get "*) echo "$2:0" ;;',
    'esac',
    '',
  ].join('\n'));
  chmodSync(hook, 0o755);
  writeFileSync(join(dir, 'lan.conf'), [
    'name "tide-test-bmc"',
    'set_working_mc 0x20',
    '  startlan 1',
    `    addr 127.0.0.1 ${port}`,
    '    priv_limit admin',
    '    allowed_auths_callback md5',
    '    allowed_auths_user md5',
    '    allowed_auths_operator md5',
    '    allowed_auths_admin md5',
    '    guid a1b2c3d4e5f60718293a4b5c6d7e8f90',
    '  endlan',
    `  chassis_control "${hook}"`,
    `  user 2 true "${user}" "${password}" admin 10`,
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'bmc.emu'), 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n');
  mkdirSync(join(dir, 'state'));
  const logFd = openSync(join(dir, 'ipmi_sim.log'), 'a');
  const child = spawn('ipmi_sim', ['-n', '-c', join(dir, 'lan.conf'), '-f', join(dir, 'bmc.emu'), '-s', join(dir, 'state')], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let spawnError: Error | undefined;
  child.on('error', (e) => { spawnError = e; });

  const stop = async (): Promise<void> => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      if (!(await waitExit(child, 3000))) {
        child.kill('SIGKILL');
        await waitExit(child, 3000);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  // Ready when an authenticated `chassis power status` answers (bounded: 50 × ~100 ms).
  const env = { IPMI_PASSWORD: password };
  let ready = false;
  let last = '';
  for (let i = 0; i < 50 && !ready && !spawnError && child.exitCode === null; i++) {
    const r = await runArgv(['ipmitool', '-I', 'lanplus', '-C', '3', '-N', '1', '-R', '1', '-H', '127.0.0.1', '-p', String(port), '-U', user, '-E', 'chassis', 'power', 'status'], { timeoutMs: 5000, env });
    ready = r.code === 0 && /Chassis Power is/.test(r.stdout);
    last = r.stderr.trim();
    if (!ready) await new Promise((res) => setTimeout(res, 100));
  }
  if (!ready) {
    const log = existsSync(join(dir, 'ipmi_sim.log')) ? readFileSync(join(dir, 'ipmi_sim.log'), 'utf8') : '';
    await stop();
    throw new Error(`ipmi_sim on 127.0.0.1:${port} did not answer: ${spawnError?.message ?? last} ${log}`);
  }
  // The readiness probe's hook calls are not the test's.
  writeFileSync(hookLog, '');

  return {
    address: '127.0.0.1', port, user, password, passwordFile, pid: child.pid!,
    power: () => (readFileSync(stateFile, 'utf8').trim() === 'on' ? 'on' : 'off'),
    setPower: (p) => writeFileSync(stateFile, `${p}\n`),
    setIgnoreSoft: (ignore) => (ignore ? writeFileSync(ignoreFile, '') : rmSync(ignoreFile, { force: true })),
    hookCalls: () => (existsSync(hookLog) ? readFileSync(hookLog, 'utf8').split('\n').filter((l) => l !== '') : []),
    config: (over = {}) => ({
      kind: 'ipmi', address: '127.0.0.1', port, user, passwordFile, interface: 'lanplus', cipherSuite: 3,
      off: 'soft', softGraceSec: 5, timeoutSec: 10, ...over,
    }),
    stop,
  };
}
