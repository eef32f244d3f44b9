/**
 * Power drivers built from the configuration: one PowerDriver that routes each host to the
 * driver of its `power.kind` (ipmi, wol, ssh). A host with kind 'none' reads 'unknown' and
 * refuses on/off with TIDE_UNSUPPORTED; a host not in the configuration is TIDE_NO_SUCH_HOST.
 */
import type { HostConfig, IpmiPowerConfig, SshPowerConfig } from '../../config/schema.js';
import type { Clock } from '../../core/clock.js';
import { DriverError } from '../errors.js';
import type { HostPower, PowerDriver } from '../power.js';
import { ClusterPowerDriver } from './cluster.js';
import { IpmiPowerDriver, type IpmiDriverOptions } from './ipmi.js';
import { SshPowerDriver, type SshDriverOptions } from './ssh.js';
import { WolPowerDriver, type WolPowerConfig } from './wol.js';

export { IpmiPowerDriver, DEFAULT_PASSWORD_ENV } from './ipmi.js';
export { SshPowerDriver } from './ssh.js';
export { WolPowerDriver, magicPacket } from './wol.js';

export interface PowerDriverOptions {
  readonly clock?: Clock;
  readonly ipmi?: IpmiDriverOptions;
  readonly ssh?: SshDriverOptions;
  readonly probeTimeoutMs?: number;
}

export class ConfiguredPowerDriver implements PowerDriver {
  readonly kind = 'config';
  private readonly route = new Map<string, PowerDriver | null>();

  constructor(hosts: readonly Pick<HostConfig, 'name' | 'power' | 'bootSec'>[], opts: PowerDriverOptions = {}) {
    const ipmi: Record<string, IpmiPowerConfig> = {};
    const wol: Record<string, WolPowerConfig> = {};
    const ssh: Record<string, SshPowerConfig> = {};
    const bootSec: Record<string, number> = {};
    for (const h of hosts) {
      bootSec[h.name] = h.bootSec;
      if (h.power.kind === 'ipmi') ipmi[h.name] = h.power;
      else if (h.power.kind === 'wol') wol[h.name] = h.power;
      else if (h.power.kind === 'ssh') ssh[h.name] = h.power;
    }
    const clock = opts.clock ? { clock: opts.clock } : {};
    const drivers = {
      ipmi: new IpmiPowerDriver(ipmi, { ...clock, ...opts.ipmi }),
      ssh: new SshPowerDriver(ssh, { ...clock, ...opts.ssh }),
      wol: new WolPowerDriver(wol, { ...clock, bootSec, ...(opts.probeTimeoutMs ? { probeTimeoutMs: opts.probeTimeoutMs } : {}), ...(opts.ipmi ? { ipmi: opts.ipmi } : {}), ...(opts.ssh ? { ssh: opts.ssh } : {}) }),
    };
    for (const h of hosts) this.route.set(h.name, h.power.kind === 'none' ? null : drivers[h.power.kind]);
  }

  private driver(host: string): PowerDriver | null {
    const d = this.route.get(host);
    if (d === undefined) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${host}' in the configuration`, { host });
    return d;
  }

  /** The power method of `host` ('ipmi' | 'wol' | 'ssh' | 'none'). */
  methodOf(host: string): string {
    return this.driver(host)?.kind ?? 'none';
  }

  async status(host: string): Promise<HostPower> {
    const d = this.driver(host);
    return d ? d.status(host) : 'unknown';
  }

  async powerOn(host: string): Promise<void> {
    const d = this.driver(host);
    if (!d) throw new DriverError('TIDE_UNSUPPORTED', `${host} has no power method (power.kind 'none'); Tide cannot power it on`, { host });
    return d.powerOn(host);
  }

  async powerOff(host: string): Promise<void> {
    const d = this.driver(host);
    if (!d) throw new DriverError('TIDE_UNSUPPORTED', `${host} has no power method (power.kind 'none'); Tide cannot power it off`, { host });
    return d.powerOff(host);
  }
}

/**
 * The PowerDriver for the configured hosts: the cluster power driver (./cluster.ts), routed as
 * ConfiguredPowerDriver and adding the DPM wake-path test (wakeTest, wakePathKey) the executor
 * and `tide wake-test` use — so every caller records and checks wake paths under the same key.
 */
export function createPowerDriver(hosts: readonly Pick<HostConfig, 'name' | 'power' | 'bootSec'>[], opts: PowerDriverOptions = {}): ClusterPowerDriver {
  return new ClusterPowerDriver(hosts, opts);
}

export { ClusterPowerDriver, clusterPowerDriver } from './cluster.js';
