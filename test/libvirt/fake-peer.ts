// A scriptable fake libvirt daemon on a real unix socket pair, for dispatcher tests that need
// full control over reply order, silence, keepalive and malformed packets.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePacket, PacketDecoder, type Packet } from '../../src/libvirt/packet.js';
import { KEEPALIVE_PROGRAM, MessageStatus, MessageType, REMOTE_PROGRAM, remoteError, type RemoteError } from '../../src/libvirt/protocol.js';
import { encode } from '../../src/libvirt/xdr.js';

export class FakePeer {
  readonly received: Packet[] = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  handler: ((pkt: Packet) => void) | null = null;

  constructor(readonly socket: net.Socket) {
    const dec = new PacketDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const p of dec.push(chunk)) {
        this.received.push(p);
        this.handler?.(p);
        this.waiters = this.waiters.filter((w) => {
          if (this.received.length >= w.n) {
            w.resolve();
            return false;
          }
          return true;
        });
      }
    });
    socket.on('error', () => undefined);
  }

  /** Resolves once `n` packets have arrived in total. */
  waitFor(n: number): Promise<void> {
    if (this.received.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  calls(): Packet[] {
    return this.received.filter((p) => p.header.prog === REMOTE_PROGRAM && p.header.type === MessageType.CALL);
  }

  reply(call: Packet, body: Buffer = Buffer.alloc(0)): void {
    this.socket.write(encodePacket({ ...call.header, type: MessageType.REPLY, status: MessageStatus.OK }, body));
  }

  replyError(call: Packet, e: Partial<RemoteError> & { code: number; message: string }): void {
    const full: RemoteError = { domain: 10, level: 2, dom: null, str1: null, str2: null, str3: null, int1: 0, int2: 0, net: null, ...e };
    this.socket.write(encodePacket({ ...call.header, type: MessageType.REPLY, status: MessageStatus.ERROR }, encode(remoteError, full)));
  }

  message(proc: number, body: Buffer): void {
    this.socket.write(encodePacket({ prog: REMOTE_PROGRAM, vers: 1, proc, type: MessageType.MESSAGE, serial: 0, status: MessageStatus.OK }, body));
  }

  keepalive(proc: 1 | 2): void {
    this.socket.write(encodePacket({ prog: KEEPALIVE_PROGRAM, vers: 1, proc, type: MessageType.MESSAGE, serial: 0, status: MessageStatus.OK }));
  }
}

/** A connected (client socket, fake peer) pair over a temporary unix socket. */
export async function fakePair(): Promise<{ client: net.Socket; peer: FakePeer; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'tide-rpc-'));
  const path = join(dir, 'sock');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.createConnection({ path });
  await new Promise<void>((r, j) => {
    client.once('connect', () => r());
    client.once('error', j);
  });
  const peer = new FakePeer(await accepted);
  return {
    client,
    peer,
    cleanup: () => {
      client.destroy();
      peer.socket.destroy();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
