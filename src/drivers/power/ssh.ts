/**
 * ssh power driver: powers a host off with `ssh -o BatchMode=yes … -- target systemctl poweroff`
 * (argv array; BatchMode so a missing key fails instead of prompting) and reads its status by
 * TCP reachability of its ssh (or statusPort) port. It cannot power a host on: powerOn throws
 * TIDE_UNSUPPORTED — pair it with Wake-on-LAN (kind 'wol', off: {kind: 'ssh'}) for that.
 *
 * Status from reachability: port open → 'on'; connection refused → 'unknown' (an IP stack
 * answers, so the machine runs, but without the service — or it is going down); no answer →
 * 'off'. It never reports 'on' for a host that does not answer.
 * powerOff resolves once the host stopped accepting connections on the port after the
 * command, within offTimeoutSec; otherwise TIDE_POWER_FAILED. A host that is already silent
 * is left alone (idempotent).
 */
import type { Clock } from '../../core/clock.js';
import type { SshPowerConfig } from '../../config/schema.js';
import { systemClock } from '../../executor/clock.js';
import { DriverError } from '../errors.js';
import type { HostPower, PowerDriver } from '../power.js';
import { runArgv, tail, tcpReach, type Reach } from './exec.js';

export interface SshDriverOptions {
  /** ssh binary (default 'ssh' on PATH). */
  readonly ssh?: string;
  readonly clock?: Clock;
  /** Interval between reachability polls after the poweroff command, ms (default 1000). */
  readonly pollMs?: number;
  /** Bound on one TCP probe, ms (default 3000). */
  readonly probeTimeoutMs?: number;
  /** Bound on the ssh command, ms (default 30000). */
  readonly commandTimeoutMs?: number;
}

/** The host part of an ssh target: user@host → host. */
export function sshHost(target: string): string {
  return target.slice(target.lastIndexOf('@') + 1);
}

export function reachToPower(r: Reach): HostPower {
  return r === 'open' ? 'on' : r === 'silent' ? 'off' : 'unknown';
}

export class SshPowerDriver implements PowerDriver {
  readonly kind = 'ssh';
  private readonly targets: ReadonlyMap<string, SshPowerConfig>;

  constructor(targets: Readonly<Record<string, SshPowerConfig>>, private readonly opts: SshDriverOptions = {}) {
    this.targets = new Map(Object.entries(targets));
  }

  private target(host: string): SshPowerConfig {
    const t = this.targets.get(host);
    if (!t) throw new DriverError('TIDE_NO_SUCH_HOST', `no ssh power configuration for host '${host}'`, { host });
    return t;
  }

  /** The ssh argv that powers `host` off (public so tests can check it). */
  argv(host: string): string[] {
    const t = this.target(host);
    return [
      this.opts.ssh ?? 'ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10',
      ...(t.identityFile !== undefined ? ['-i', t.identityFile] : []),
      ...(t.port !== undefined ? ['-p', String(t.port)] : []),
      '--', t.target, 'systemctl', 'poweroff',
    ];
  }

  private reach(t: SshPowerConfig): Promise<Reach> {
    return tcpReach(sshHost(t.target), t.statusPort ?? t.port ?? 22, this.opts.probeTimeoutMs ?? 3000);
  }

  async status(host: string): Promise<HostPower> {
    return reachToPower(await this.reach(this.target(host)));
  }

  async powerOn(host: string): Promise<void> {
    this.target(host);
    throw new DriverError('TIDE_UNSUPPORTED', `${host}: ssh can power a host off but not on; configure kind 'wol' (with off: {kind: 'ssh', …}) or 'ipmi' to wake it`, { host });
  }

  async powerOff(host: string): Promise<void> {
    const t = this.target(host);
    const before = await this.reach(t);
    if (before === 'silent') return;
    const r = await runArgv(this.argv(host), { timeoutMs: this.opts.commandTimeoutMs ?? 30_000 });
    const detail = { host, target: t.target, exitCode: r.code };
    if (r.spawnError) throw new DriverError('TIDE_POWER_FAILED', `${host}: cannot run ssh: ${r.spawnError.code ?? r.spawnError.message}`, detail);
    // 255 is also what ssh returns when the host drops the session while powering off, so it
    // only fails at once when ssh says it never got in.
    if (r.code === 255 && /Permission denied|Host key verification failed|Could not resolve|Connection refused|Connection timed out|No route to host/i.test(r.stderr)) {
      const code = /Permission denied|Host key/i.test(r.stderr) ? 'TIDE_POWER_FAILED' : 'TIDE_HOST_UNREACHABLE';
      throw new DriverError(code, `${host}: ssh ${t.target} failed: ${tail(r.stderr, 2)}`, detail);
    }
    if (r.code !== 0 && r.code !== 255) throw new DriverError('TIDE_POWER_FAILED', `${host}: 'systemctl poweroff' over ssh failed (exit ${r.code ?? 'killed'}): ${tail(r.stderr, 2)}`, detail);
    const clock = this.opts.clock ?? systemClock;
    const deadline = clock.now() + t.offTimeoutSec * 1000;
    for (;;) {
      if ((await this.reach(t)) !== 'open') return;
      const left = deadline - clock.now();
      if (left <= 0) break;
      await clock.sleep(Math.min(this.opts.pollMs ?? 1000, left));
    }
    throw new DriverError('TIDE_POWER_FAILED', `${host}: still answering ${offPort(t)} ${t.offTimeoutSec} s after 'systemctl poweroff'`, detail);
  }
}

function offPort(t: SshPowerConfig): string {
  return `on port ${t.statusPort ?? t.port ?? 22}`;
}
