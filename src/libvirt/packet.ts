/**
 * Packet framing of libvirt's RPC: `uint32 length` (big-endian, counting the 4 length bytes
 * themselves), a 24-byte header (prog, vers, proc, type, serial, status) and the XDR body.
 * A byte stream may split a packet across chunks or carry several packets in one chunk; the
 * decoder handles both and refuses lengths outside [28, MAX_PACKET_BYTES] (a corrupt or hostile
 * stream must not make us allocate gigabytes).
 */
import { HEADER_BYTES, MAX_PACKET_BYTES, PACKET_LENGTH_BYTES, messageHeader, type MessageHeader } from './protocol.js';
import { XdrError, XdrReader, XdrWriter } from './xdr.js';

export interface Packet {
  header: MessageHeader;
  /** XDR body (without length word and header). */
  body: Buffer;
}

/** Serialises one packet. `body` must already be XDR-encoded. */
export function encodePacket(header: MessageHeader, body: Uint8Array = Buffer.alloc(0)): Buffer {
  const total = PACKET_LENGTH_BYTES + HEADER_BYTES + body.length;
  if (total > MAX_PACKET_BYTES) throw new XdrError(`packet of ${total} bytes exceeds the ${MAX_PACKET_BYTES}-byte limit`);
  const w = new XdrWriter(total);
  w.uint(total);
  messageHeader.enc(w, header);
  w.raw(body);
  return w.finish();
}

/** Incremental decoder: feed chunks, get whole packets. */
export class PacketDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Appends a chunk and returns every packet it completes (possibly none). */
  push(chunk: Buffer): Packet[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const out: Packet[] = [];
    while (this.buffered >= PACKET_LENGTH_BYTES) {
      const head = this.peek(PACKET_LENGTH_BYTES);
      const len = head.readUInt32BE(0);
      if (len < PACKET_LENGTH_BYTES + HEADER_BYTES || len > MAX_PACKET_BYTES) {
        throw new XdrError(`invalid packet length ${len} (must be ${PACKET_LENGTH_BYTES + HEADER_BYTES}..${MAX_PACKET_BYTES})`);
      }
      if (this.buffered < len) break;
      const pkt = this.take(len);
      const r = new XdrReader(pkt, PACKET_LENGTH_BYTES);
      const header = messageHeader.dec(r);
      out.push({ header, body: pkt.subarray(PACKET_LENGTH_BYTES + HEADER_BYTES) });
    }
    return out;
  }

  /** Bytes received but not yet part of a complete packet. */
  get pendingBytes(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) return first;
    return Buffer.concat(this.chunks).subarray(0, n);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}
