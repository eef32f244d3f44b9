/**
 * Wake-on-LAN driver. Magic packets go only to a UDP listener on 127.0.0.1 that this test owns
 * (never to any other address). Under the contract suite it plays a NIC: a packet for a host's
 * MAC lets that host's ipmi_sim BMC (test/helpers/bmc.ts) report power on, and the host powers
 * off through IPMI (off: {kind: 'ipmi'}).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { PowerConfig } from '../../src/config/schema.js';
import { DriverError } from '../../src/drivers/errors.js';
import { magicPacket, WolPowerDriver, type WolPowerConfig } from '../../src/drivers/power/wol.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { bmcGate, freeUdpPort, startBmc } from '../helpers/bmc.js';
import { runPowerContract } from './power-contract.js';
import { driverRejection as rejection } from '../helpers/rejection.js';

interface Datagram { bytes: Buffer; from: string }

/** A UDP listener on 127.0.0.1: what arrived, and a way to wait for the next datagram. */
async function udpListener(): Promise<{ port: number; got: Datagram[]; next: (ms?: number) => Promise<Datagram>; close: () => Promise<void> }> {
  const sock = dgram.createSocket('udp4');
  const got: Datagram[] = [];
  const waiters: ((d: Datagram) => void)[] = [];
  sock.on('message', (bytes, rinfo) => {
    const d = { bytes, from: rinfo.address };
    got.push(d);
    for (const w of waiters.splice(0)) w(d);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return {
    port: sock.address().port, got,
    next: (ms = 5000) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no datagram arrived')), ms);
      waiters.push((d) => { clearTimeout(t); resolve(d); });
    }),
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

const MAC = '02:77:00:00:00:0a';
const wol = (port: number, over: Partial<WolPowerConfig> = {}): WolPowerConfig => ({ kind: 'wol', mac: MAC, broadcast: '127.0.0.1', port, statusPort: 22, ...over });


describe('Wake-on-LAN driver', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => { for (const c of cleanup.splice(0)) await c(); });

  it('the magic packet is 6 × 0xFF then the MAC 16 times (102 bytes)', () => {
    const p = magicPacket('02:77:00:00:00:0A');
    expect(p.length).toBe(102);
    expect([...p.subarray(0, 6)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    for (let i = 0; i < 16; i++) expect([...p.subarray(6 + 6 * i, 12 + 6 * i)]).toEqual([0x02, 0x77, 0, 0, 0, 0x0a]);
    expect(() => magicPacket('02:77:00')).toThrow(DriverError);
  });

  it('powerOn sends exactly that packet over UDP to the configured address and port; status is booting for bootSec, then unknown', async () => {
    const l = await udpListener();
    cleanup.push(l.close);
    const clock = new VirtualClock(0);
    const d = new WolPowerDriver({ h: wol(l.port) }, { clock, bootSec: { h: 60 } });
    expect(await d.status('h')).toBe('unknown'); // no status method configured
    const arrival = l.next();
    await d.powerOn('h');
    const got = await arrival;
    expect(got.from).toBe('127.0.0.1');
    expect(got.bytes.equals(magicPacket(MAC))).toBe(true);
    expect(await d.status('h')).toBe('booting');
    await clock.advance(60_000);
    expect(await d.status('h')).toBe('unknown');
  });

  it('status by TCP reachability: an open port is on, and an on host gets no packet; a refusing port is unknown', async () => {
    const l = await udpListener();
    cleanup.push(l.close);
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
    const tcpPort = (server.address() as net.AddressInfo).port;
    const d = new WolPowerDriver({ h: wol(l.port, { statusAddress: '127.0.0.1', statusPort: tcpPort }) });
    expect(await d.status('h')).toBe('on');
    await d.powerOn('h');
    // A sentinel sent after the no-op powerOn arrives first: no magic packet was sent.
    const arrival = l.next();
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.send(Buffer.from('sentinel'), l.port, '127.0.0.1', () => { s.close(); r(); }));
    expect((await arrival).bytes.toString()).toBe('sentinel');
    expect(l.got).toHaveLength(1);
    const closedPort = tcpPort;
    await new Promise<void>((r) => server.close(() => r()));
    cleanup.pop();
    expect(await new WolPowerDriver({ h: wol(l.port, { statusAddress: '127.0.0.1', statusPort: closedPort }) }).status('h')).toBe('unknown');
  });

  it('without an off method powerOff is TIDE_UNSUPPORTED, saying what to configure', async () => {
    const d = new WolPowerDriver({ h: wol(9) });
    const e = await rejection(d.powerOff('h'));
    expect(e.code).toBe('TIDE_UNSUPPORTED');
    expect(e.message).toMatch(/power\.off/);
  });
});

const RUN = bmcGate('Wake-on-LAN driver with IPMI off (ipmi_sim + ipmitool)');

runPowerContract('wol+ipmi', async () => {
  if (!RUN) return null;
  const nic = await udpListener();
  const bmcs = { h1: await startBmc({ initial: 'on' }), h2: await startBmc({ initial: 'on' }) };
  const macs = { h1: '02:77:00:00:00:01', h2: '02:77:00:00:00:02' };
  const cfg = (h: 'h1' | 'h2'): Extract<PowerConfig, { kind: 'wol' }> => ({ ...wol(nic.port), mac: macs[h], off: bmcs[h].config({ softGraceSec: 5 }) });
  const driver = new WolPowerDriver({ h1: cfg('h1'), h2: cfg('h2') }, { ipmi: { pollMs: 100 } });
  const dead = await freeUdpPort();
  const broken = new WolPowerDriver({ h3: { ...cfg('h1'), off: bmcs.h1.config({ port: dead, timeoutSec: 2 }) } });
  let seen = 0;
  return {
    driver, hosts: ['h1', 'h2'], booting: true,
    // The "boot": the NIC got this host's magic packet, so its BMC now reports power on.
    settle: async (host) => {
      const h = host as 'h1' | 'h2';
      if (bmcs[h].power() === 'on') return;
      const want = magicPacket(macs[h]);
      for (;;) {
        const d = nic.got.slice(seen).find((x) => x.bytes.equals(want)) ?? (await nic.next());
        seen = nic.got.length;
        if (d.bytes.equals(want)) break;
      }
      bmcs[h].setPower('on');
    },
    broken: { driver: broken, host: 'h3' },
    teardown: async () => { await nic.close(); await bmcs.h1.stop(); await bmcs.h2.stop(); },
  };
});
