/**
 * A libvirt connection that is given up on keeps nothing alive: an open() abandoned through
 * its signal, and close() during an automatic reconnect whose handshake a silent daemon never
 * answers, both destroy the socket at once — not when the 60 s call timeout would fire. Loopback
 * TCP servers stand in for libvirtd (the first answers the handshake, later ones stay silent).
 */
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { LibvirtConnection } from '../../src/libvirt/connection.js';
import { encodePacket, PacketDecoder } from '../../src/libvirt/packet.js';
import { MessageStatus, MessageType, procs } from '../../src/libvirt/protocol.js';
import { encode } from '../../src/libvirt/xdr.js';
import { rejection } from '../helpers/rejection.js';

const servers: net.Server[] = [];
const accepted: net.Socket[] = [];
afterAll(async () => {
  for (const s of accepted) s.destroy();
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
});

/** A server whose first `answering` connections answer the handshake; later ones never answer. */
async function daemon(answering: number): Promise<{ port: number; sockets: net.Socket[]; nth(n: number): Promise<net.Socket> }> {
  const sockets: net.Socket[] = [];
  const waiters: Array<{ n: number; r: (s: net.Socket) => void }> = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    accepted.push(s);
    s.on('error', () => {});
    for (const w of waiters.filter((x) => x.n === sockets.length)) w.r(s);
    if (sockets.length > answering) return;
    const dec = new PacketDecoder();
    s.on('data', (chunk: Buffer) => {
      for (const p of dec.push(chunk)) {
        const body = p.header.proc === procs.AUTH_LIST.proc ? encode(procs.AUTH_LIST.ret, { types: [] }) : Buffer.alloc(0);
        s.write(encodePacket({ ...p.header, type: MessageType.REPLY, status: MessageStatus.OK }, body));
      }
    });
  });
  servers.push(server);
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
  return { port, sockets, nth: (n) => (sockets.length >= n ? Promise.resolve(sockets[n - 1]!) : new Promise((r) => waiters.push({ n, r }))) };
}

const closed = (s: net.Socket): Promise<void> => new Promise((r) => (s.destroyed || s.closed ? r() : s.once('close', () => r())));

describe('abandoned libvirt connections', () => {
  it('open() aborted through its signal rejects and closes the socket of the silent handshake', async () => {
    const d = await daemon(0);
    const ac = new AbortController();
    const opening = LibvirtConnection.open(`qemu+tcp://127.0.0.1:${d.port}/system`, { keepalive: false, callTimeoutMs: 600_000, signal: ac.signal });
    const sock = await d.nth(1);
    ac.abort();
    const err = await rejection(opening);
    expect(err.tideCode).toBe('TIDE_ABORTED');
    // without the abort the socket stays open for the whole call timeout (600 s here)
    await closed(sock);
  });

  it('close() during a reconnect whose handshake is never answered drops that socket', async () => {
    const d = await daemon(1);
    const c = await LibvirtConnection.open(`qemu+tcp://127.0.0.1:${d.port}/system`, { keepalive: false, callTimeoutMs: 600_000, autoReconnect: { initialDelayMs: 10 } });
    expect(c.state).toBe('open');
    d.sockets[0]!.destroy(); // the daemon goes away; the client reconnects to a silent one
    const second = await d.nth(2);
    expect(c.state).toBe('reconnecting');
    await c.close();
    expect(c.state).toBe('closed');
    await closed(second);
  });
});
