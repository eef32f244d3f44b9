/**
 * IPMI power driver: `ipmitool -I lanplus … chassis power status|on|soft|off` against each
 * host's BMC (e.g. a real server's iDRAC/iLO/XCC, or OpenIPMI's ipmi_sim in the lab).
 *
 * The password never appears in argv, logs or errors: it is read from the configured file or
 * environment variable at each call and handed to ipmitool in its environment (IPMI_PASSWORD,
 * read by `-E`); ipmitool's output is redacted before it reaches an error message.
 *
 * status() asks the BMC ("Chassis Power is on|off"); a BMC cannot tell "booting" from "on", so
 * this driver never reports 'booting' (the host is back when libvirt answers — the caller's job).
 * It throws a DriverError when the BMC cannot be asked: TIDE_HOST_UNREACHABLE (no answer within
 * timeoutSec) or TIDE_POWER_FAILED (credentials refused, ipmitool missing, an unexpected reply).
 * powerOn/powerOff are idempotent: they read the status first and do nothing when it already is
 * what was asked. powerOff with off='soft' sends an ACPI shutdown, waits up to softGraceSec for
 * the BMC to report off, then pulls the plug; off='hard' pulls it at once.
 */
import { readFileSync } from 'node:fs';
import type { Clock } from '../../core/clock.js';
import type { IpmiPowerConfig } from '../../config/schema.js';
import { systemClock } from '../../executor/clock.js';
import { DriverError } from '../errors.js';
import type { HostPower, PowerDriver } from '../power.js';
import { redact, runArgv, tail, type RunResult } from './exec.js';

export type IpmiAction = 'status' | 'on' | 'soft' | 'off';

export interface IpmiDriverOptions {
  /** ipmitool binary (default 'ipmitool' on PATH). */
  readonly ipmitool?: string;
  /** Where passwordEnv is looked up (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Time for the soft-off grace; the default is the system clock. */
  readonly clock?: Clock;
  /** Interval between status polls during the soft-off grace, ms (default 2000). */
  readonly pollMs?: number;
}

/** Used when neither passwordFile nor passwordEnv is configured. */
export const DEFAULT_PASSWORD_ENV = 'TIDE_IPMI_PASSWORD';

/** How long a BMC may take to report off after accepting a hard off, ms. */
const HARD_OFF_SETTLE_MS = 10_000;

export class IpmiPowerDriver implements PowerDriver {
  readonly kind = 'ipmi';
  private readonly targets: ReadonlyMap<string, IpmiPowerConfig>;

  constructor(targets: Readonly<Record<string, IpmiPowerConfig>>, private readonly opts: IpmiDriverOptions = {}) {
    this.targets = new Map(Object.entries(targets));
  }

  private target(host: string): IpmiPowerConfig {
    const t = this.targets.get(host);
    if (!t) throw new DriverError('TIDE_NO_SUCH_HOST', `no IPMI power configuration for host '${host}'`, { host });
    return t;
  }

  /** The ipmitool argv for `action` on `host` (public so tests can prove it holds no password). */
  argv(host: string, action: IpmiAction): string[] {
    const t = this.target(host);
    const base = [
      this.opts.ipmitool ?? 'ipmitool', '-v', '-I', t.interface, '-C', String(t.cipherSuite),
      // one retry of ~1 s each inside ipmitool; timeoutSec bounds the whole run
      '-N', '1', '-R', '2',
      '-H', t.address, '-p', String(t.port), '-U', t.user, '-E', 'chassis', 'power', action,
    ];
    return t.netns !== undefined ? ['ip', 'netns', 'exec', t.netns, ...base] : base;
  }

  /** The BMC password, from the configured file (first line) or variable. Never logged. */
  private password(host: string, t: IpmiPowerConfig): string {
    let pw: string | undefined;
    if (t.passwordFile !== undefined) {
      try {
        pw = readFileSync(t.passwordFile, 'utf8').split(/\r?\n/)[0];
      } catch (e) {
        throw new DriverError('TIDE_POWER_FAILED', `${host}: cannot read the BMC password file ${t.passwordFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { host });
      }
    } else {
      const name = t.passwordEnv ?? DEFAULT_PASSWORD_ENV;
      pw = (this.opts.env ?? process.env)[name];
      if (pw === undefined) throw new DriverError('TIDE_POWER_FAILED', `${host}: the BMC password variable ${name} is not set`, { host });
    }
    if (!pw) throw new DriverError('TIDE_POWER_FAILED', `${host}: the BMC password (${t.passwordFile ?? t.passwordEnv ?? DEFAULT_PASSWORD_ENV}) is empty`, { host });
    return pw;
  }

  /** Runs one ipmitool command; returns its stdout or throws a DriverError (never with the password). */
  private async ipmitool(host: string, action: IpmiAction): Promise<string> {
    const t = this.target(host);
    const pw = this.password(host, t);
    const r = await runArgv(this.argv(host, action), { timeoutMs: t.timeoutSec * 1000, env: { IPMI_PASSWORD: pw } });
    if (r.code === 0) return redact(r.stdout, pw);
    throw ipmiError(host, t, action, r, pw);
  }

  async status(host: string): Promise<HostPower> {
    const out = await this.ipmitool(host, 'status');
    const m = /Chassis Power is (on|off)/.exec(out);
    return m ? (m[1] as 'on' | 'off') : 'unknown';
  }

  async powerOn(host: string): Promise<void> {
    if ((await this.status(host)) === 'on') return;
    await this.ipmitool(host, 'on');
  }

  async powerOff(host: string): Promise<void> {
    const t = this.target(host);
    if ((await this.status(host)) === 'off') return;
    if (t.off === 'soft') {
      await this.ipmitool(host, 'soft');
      const clock = this.opts.clock ?? systemClock;
      const deadline = clock.now() + t.softGraceSec * 1000;
      const poll = this.opts.pollMs ?? 2000;
      for (;;) {
        if ((await this.status(host)) === 'off') return;
        const left = deadline - clock.now();
        if (left <= 0) break;
        await clock.sleep(Math.min(poll, left));
      }
    }
    await this.ipmitool(host, 'off');
    // A real BMC may report the change a moment late: give it HARD_OFF_SETTLE_MS to say off.
    const clock = this.opts.clock ?? systemClock;
    const settleBy = clock.now() + HARD_OFF_SETTLE_MS;
    let after = await this.status(host);
    while (after !== 'off' && clock.now() < settleBy) {
      await clock.sleep(Math.min(this.opts.pollMs ?? 2000, HARD_OFF_SETTLE_MS));
      after = await this.status(host);
    }
    if (after !== 'off') throw new DriverError('TIDE_POWER_FAILED', `${host}: the BMC accepted power off but reports the host ${after}`, { host, bmc: `${t.address}:${t.port}` });
  }
}

/** Maps a failed ipmitool run to a DriverError whose message never holds the password. */
function ipmiError(host: string, t: IpmiPowerConfig, action: IpmiAction, r: RunResult, pw: string): DriverError {
  const bmc = `${t.address}:${t.port}`;
  const detail = { host, bmc, action, exitCode: r.code };
  if (r.spawnError) return new DriverError('TIDE_POWER_FAILED', `${host}: cannot run ipmitool: ${r.spawnError.code ?? r.spawnError.message}`, detail);
  if (r.timedOut) return new DriverError('TIDE_HOST_UNREACHABLE', `${host}: the BMC ${bmc} did not answer within ${t.timeoutSec} s`, detail);
  const err = redact(r.stderr, pw);
  if (/RAKP|unauthorized name|HMAC is invalid|Invalid user name|insufficient privilege/i.test(err)) {
    return new DriverError('TIDE_POWER_FAILED', `${host}: the BMC ${bmc} refused the credentials of user '${t.user}' (${tail(err, 2)})`, detail);
  }
  if (/Get Auth Capabilities error|No response|Unable to establish|Connection refused|timeout/i.test(err)) {
    return new DriverError('TIDE_HOST_UNREACHABLE', `${host}: the BMC ${bmc} does not answer (${tail(err, 2)})`, detail);
  }
  return new DriverError('TIDE_POWER_FAILED', `${host}: ipmitool chassis power ${action} failed (exit ${r.code}): ${tail(err) || tail(redact(r.stdout, pw))}`, detail);
}
