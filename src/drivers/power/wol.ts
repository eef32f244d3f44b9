/**
 * Wake-on-LAN power driver: powers a host on with a magic packet (6 × 0xFF, then the NIC's MAC
 * 16 times; 102 bytes) sent over UDP to the configured broadcast address and port. WoL cannot
 * power off nor read power: off goes through the configured `off` method (ssh `systemctl
 * poweroff` or the host's IPMI), status through that IPMI, else TCP reachability of
 * statusAddress:statusPort, else 'unknown'.
 *
 * 'booting': after a packet was sent, a host that does not answer yet reads 'booting' for its
 * bootSec (default 180 s); afterwards 'off' again (the wake failed — the caller retries or reports).
 * powerOn is idempotent: a host that reads 'on' gets no packet.
 */
import dgram from 'node:dgram';
import type { Clock } from '../../core/clock.js';
import type { PowerConfig } from '../../config/schema.js';
import { systemClock } from '../../executor/clock.js';
import { DriverError } from '../errors.js';
import type { HostPower, PowerDriver } from '../power.js';
import { runArgv, tail, tcpReach } from './exec.js';
import { IpmiPowerDriver, type IpmiDriverOptions } from './ipmi.js';
import { reachToPower, SshPowerDriver, type SshDriverOptions } from './ssh.js';

export type WolPowerConfig = Extract<PowerConfig, { kind: 'wol' }>;

/** The 102-byte magic packet for `mac` (aa:bb:cc:dd:ee:ff). */
export function magicPacket(mac: string): Buffer {
  const hex = mac.replace(/[:-]/g, '');
  if (!/^[0-9a-fA-F]{12}$/.test(hex)) throw new DriverError('TIDE_INVALID_ARGUMENT', `'${mac}' is not a MAC address`);
  const hw = Buffer.from(hex, 'hex');
  return Buffer.concat([Buffer.alloc(6, 0xff), ...Array.from({ length: 16 }, () => hw)]);
}

/** Sends `packet` once to address:port over UDP with SO_BROADCAST set. */
export function sendUdp(packet: Buffer, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', (e) => { sock.close(); reject(e); });
    sock.bind(0, () => {
      sock.setBroadcast(true);
      sock.send(packet, port, address, (e) => {
        sock.close();
        if (e) reject(e);
        else resolve();
      });
    });
  });
}

export interface WolDriverOptions {
  readonly clock?: Clock;
  /** Seconds a woken host may take until it answers (per host; default 180). */
  readonly bootSec?: Readonly<Record<string, number>>;
  readonly probeTimeoutMs?: number;
  readonly ipmi?: IpmiDriverOptions;
  readonly ssh?: SshDriverOptions;
}

export class WolPowerDriver implements PowerDriver {
  readonly kind = 'wol';
  private readonly targets: ReadonlyMap<string, WolPowerConfig>;
  private readonly ipmi: IpmiPowerDriver;
  private readonly ssh: SshPowerDriver;
  /** Host → when (clock ms) the last magic packet was sent. */
  private readonly wokeAt = new Map<string, number>();

  constructor(targets: Readonly<Record<string, WolPowerConfig>>, private readonly opts: WolDriverOptions = {}) {
    this.targets = new Map(Object.entries(targets));
    const ipmi: Record<string, Extract<WolPowerConfig['off'], { kind: 'ipmi' }>> = {};
    const ssh: Record<string, Extract<WolPowerConfig['off'], { kind: 'ssh' }>> = {};
    for (const [h, t] of this.targets) {
      if (t.off?.kind === 'ipmi') ipmi[h] = t.off;
      if (t.off?.kind === 'ssh') ssh[h] = t.off;
    }
    this.ipmi = new IpmiPowerDriver(ipmi, { ...(opts.clock ? { clock: opts.clock } : {}), ...opts.ipmi });
    this.ssh = new SshPowerDriver(ssh, { ...(opts.clock ? { clock: opts.clock } : {}), ...opts.ssh });
  }

  private target(host: string): WolPowerConfig {
    const t = this.targets.get(host);
    if (!t) throw new DriverError('TIDE_NO_SUCH_HOST', `no Wake-on-LAN configuration for host '${host}'`, { host });
    return t;
  }

  private clock(): Clock {
    return this.opts.clock ?? systemClock;
  }

  async status(host: string): Promise<HostPower> {
    const t = this.target(host);
    let p: HostPower;
    if (t.off?.kind === 'ipmi') p = await this.ipmi.status(host);
    else if (t.statusAddress !== undefined) p = reachToPower(await tcpReach(t.statusAddress, t.statusPort, this.opts.probeTimeoutMs ?? 3000));
    else p = 'unknown';
    if (p === 'on') {
      this.wokeAt.delete(host);
      return p;
    }
    const woke = this.wokeAt.get(host);
    if (woke !== undefined && this.clock().now() - woke < (this.opts.bootSec?.[host] ?? 180) * 1000) return 'booting';
    return p;
  }

  async powerOn(host: string): Promise<void> {
    const t = this.target(host);
    if ((await this.status(host)) === 'on') return;
    const pkt = magicPacket(t.mac);
    if (t.netns !== undefined) {
      // node cannot send from another network namespace: wakeonlan (package wakeonlan) can, via ip netns exec.
      const r = await runArgv(['ip', 'netns', 'exec', t.netns, 'wakeonlan', '-i', t.broadcast, '-p', String(t.port), t.mac], { timeoutMs: 10_000 });
      if (r.code !== 0) throw new DriverError('TIDE_POWER_FAILED', `${host}: wakeonlan in netns ${t.netns} failed: ${r.spawnError?.code ?? tail(r.stderr)}`, { host });
    } else {
      try {
        await sendUdp(pkt, t.broadcast, t.port);
      } catch (e) {
        throw new DriverError('TIDE_POWER_FAILED', `${host}: cannot send the magic packet to ${t.broadcast}:${t.port}: ${(e as Error).message}`, { host }, { cause: e });
      }
    }
    this.wokeAt.set(host, this.clock().now());
  }

  async powerOff(host: string): Promise<void> {
    const t = this.target(host);
    this.wokeAt.delete(host);
    if (t.off?.kind === 'ipmi') return this.ipmi.powerOff(host);
    if (t.off?.kind === 'ssh') return this.ssh.powerOff(host);
    throw new DriverError('TIDE_UNSUPPORTED', `${host}: Wake-on-LAN can only wake a host; configure power.off ({kind: 'ssh'} or {kind: 'ipmi'}) to power it off`, { host });
  }
}
