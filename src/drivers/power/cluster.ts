/**
 * The cluster's power driver: one PowerDriver for every configured host, dispatching each host
 * to the driver of its own `power` section (ipmi, wol, ssh — see ConfiguredPowerDriver in
 * ./index.ts). This is what the controller, the daemon and the CLI hand to the executor.
 *
 *   const power = clusterPowerDriver(config);           // config: TideConfig
 *   await power.status('srv-1');                         // 'on' | 'off' | 'booting' | 'unknown'
 *   const t = await power.wakeTest('srv-1');             // { ok, method, reason, code? }
 *
 * Hosts with `power.kind: none` read 'unknown' and refuse powerOn/powerOff with TIDE_UNSUPPORTED
 * (Tide has no way to act on them); a host not in the configuration is TIDE_NO_SUCH_HOST.
 *
 * Beyond the PowerDriver contract it answers the DPM wake-path test (wakeTest, see
 * docs/drivers.md "Wake-path test"): can this host be woken again and can Tide tell that it
 * came back — checked without cycling the host. And wakePathKey: a digest of the host's power
 * section, so a recorded failed test stops counting once the configuration changed.
 */
import { createHash } from 'node:crypto';
import type { HostConfig, PowerConfig, TideConfig } from '../../config/schema.js';
import { DriverError, isDriverError, type DriverErrorCode } from '../errors.js';
import type { HostPower, PowerCapability, PowerDriver, WakeTestResult } from '../power.js';
import { runArgv, tcpReach } from './exec.js';
import { ConfiguredPowerDriver, type PowerDriverOptions } from './index.js';
import { IpmiPowerDriver } from './ipmi.js';
import { magicPacket, sendUdp } from './wol.js';

export type { WakeTestResult } from '../power.js';

type HostPowerConfig = Pick<HostConfig, 'name' | 'power' | 'bootSec'>;

/** JSON with sorted keys (a stable text for the digest). */
function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export class ClusterPowerDriver implements PowerDriver {
  /** 'config' as ConfiguredPowerDriver: the configured hosts' own methods (methodOf tells one host's). */
  readonly kind = 'config';
  private readonly routed: ConfiguredPowerDriver;
  private readonly configs = new Map<string, PowerConfig>();

  constructor(hosts: readonly HostPowerConfig[], private readonly opts: PowerDriverOptions = {}) {
    this.routed = new ConfiguredPowerDriver(hosts, opts);
    for (const h of hosts) this.configs.set(h.name, h.power);
  }

  private config(host: string): PowerConfig {
    const c = this.configs.get(host);
    if (!c) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${host}' in the configuration`, { host });
    return c;
  }

  /** Configured host names, in configuration order. */
  hosts(): string[] {
    return [...this.configs.keys()];
  }

  /** 'ipmi' | 'wol' | 'ssh' | 'none'. */
  methodOf(host: string): string {
    return this.config(host).kind;
  }

  /**
   * What Tide can do to the host with its power section: kind 'none' neither (on/off refuse
   * with TIDE_UNSUPPORTED), 'ssh' off but never on, 'wol' without `off` on only, 'ipmi' and
   * 'wol' with `off` both. A host not configured: neither.
   */
  canPower(host: string): PowerCapability {
    const c = this.configs.get(host);
    if (!c) return { off: false, on: false, reason: `no host named '${host}' in the configuration` };
    if (c.kind === 'none') return { off: false, on: false, reason: 'no power method configured (power.kind none)' };
    if (c.kind === 'ssh') return { off: true, on: false, reason: 'its power method (ssh) can power it off but never on' };
    if (c.kind === 'wol' && c.off === undefined) return { off: false, on: true, reason: 'Wake-on-LAN without power.off can wake it but not power it off' };
    return { off: true, on: true };
  }

  status(host: string): Promise<HostPower> {
    return this.routed.status(host);
  }

  powerOn(host: string): Promise<void> {
    return this.routed.powerOn(host);
  }

  powerOff(host: string): Promise<void> {
    return this.routed.powerOff(host);
  }

  /**
   * Digest (16 hex) of the host's power section. It holds file and variable names, never a
   * password (the configuration cannot hold one). A changed section is a new wake path.
   */
  wakePathKey(host: string): string {
    return createHash('sha256').update(stable(this.config(host))).digest('hex').slice(0, 16);
  }

  /**
   * The wake-path test, without powering the host off (a value, never a throw for an expected
   * failure; TIDE_NO_SUCH_HOST for a host not configured):
   * - ipmi: `chassis power status` answers 'on' or 'off' with the configured credentials (the
   *   same BMC session `chassis power on` needs).
   * - wol: the magic packet can be sent (to a host that runs, a packet does nothing), and its
   *   state can be read afterwards: through the `off` IPMI's status as above, else a resolvable
   *   `statusAddress` (without one, Tide could never tell that a woken host came back).
   * - ssh: fails (ssh can power a host off, never on).
   * - none: fails (no power method).
   * The NIC answering a packet cannot be proved without a real cycle: the executor's wake
   * (retried once, then TIDE_WAKE_TIMEOUT) records a failed wake as a failed wake path.
   */
  async wakeTest(host: string): Promise<WakeTestResult> {
    const c = this.config(host);
    const fail = (code: DriverErrorCode, reason: string): WakeTestResult => ({ ok: false, method: c.kind, code, reason });
    if (c.kind === 'none') return fail('TIDE_UNSUPPORTED', `${host} has no power method (power.kind 'none'): nothing could wake it`);
    if (c.kind === 'ssh') return fail('TIDE_UNSUPPORTED', `${host}'s power method is ssh, which can power a host off but never on: nothing could wake it (use kind 'wol' with off: {kind: 'ssh'}, or 'ipmi')`);
    if (c.kind === 'ipmi') return this.ipmiTest(host, c, 'ipmi');
    // wol
    try {
      if (c.netns !== undefined) {
        // powerOn uses `ip netns exec NS wakeonlan`: the tool must be there.
        const r = await runArgv(['wakeonlan', '-v'], { timeoutMs: 5000 });
        if (r.spawnError) return fail('TIDE_POWER_FAILED', `${host}: cannot run wakeonlan (needed to send the magic packet from netns ${c.netns}): ${r.spawnError.code ?? r.spawnError.message}`);
      } else {
        await sendUdp(magicPacket(c.mac), c.broadcast, c.port);
      }
    } catch (e) {
      return fail('TIDE_POWER_FAILED', `${host}: cannot send the magic packet to ${c.broadcast}:${c.port}: ${(e as Error).message}`);
    }
    if (c.off?.kind === 'ipmi') return this.ipmiTest(host, c.off, 'wol');
    if (c.statusAddress === undefined) {
      return fail('TIDE_UNSUPPORTED', `${host}: Wake-on-LAN without a status source (no statusAddress, no IPMI off): Tide could not tell whether a woken host came back`);
    }
    const reach = await tcpReach(c.statusAddress, c.statusPort, this.opts.probeTimeoutMs ?? 3000);
    if (reach === 'unresolved') return fail('TIDE_HOST_UNREACHABLE', `${host}: the status address ${c.statusAddress} does not resolve`);
    return { ok: true, method: 'wol', reason: `the magic packet to ${c.broadcast}:${c.port} can be sent and ${c.statusAddress}:${c.statusPort} reads ${reach}` };
  }

  private async ipmiTest(host: string, t: Extract<PowerConfig, { kind: 'ipmi' }>, method: string): Promise<WakeTestResult> {
    const d = new IpmiPowerDriver({ [host]: t }, { ...(this.opts.clock ? { clock: this.opts.clock } : {}), ...this.opts.ipmi });
    try {
      const st = await d.status(host);
      if (st !== 'on' && st !== 'off') {
        return { ok: false, method, code: 'TIDE_POWER_FAILED', reason: `${host}: the BMC ${t.address}:${t.port} answered chassis power status without a power state` };
      }
      return { ok: true, method, reason: `the BMC ${t.address}:${t.port} answered chassis power status (${st}) for user '${t.user}'` };
    } catch (e) {
      // The IPMI driver's messages never hold the password (it redacts ipmitool's output).
      if (isDriverError(e)) return { ok: false, method, code: e.code, reason: e.message };
      throw e;
    }
  }
}

/** The cluster power driver for a configuration (every host, its own power section). */
export function clusterPowerDriver(config: Pick<TideConfig, 'hosts'>, opts: PowerDriverOptions = {}): ClusterPowerDriver {
  return new ClusterPowerDriver(config.hosts, opts);
}
