// Unit tests of packet framing: the length word counts itself, the 24-byte header layout, and
// reassembly of packets split across or merged into stream chunks.
import { describe, expect, it } from 'vitest';
import { encodePacket, PacketDecoder } from '../../src/libvirt/packet.js';
import { MAX_PACKET_BYTES, REMOTE_PROGRAM } from '../../src/libvirt/protocol.js';

const hdr = (serial: number, proc = 273) => ({ prog: REMOTE_PROGRAM, vers: 1, proc, type: 0, serial, status: 0 });

describe('packet framing', () => {
  it('writes uint32 total length (including itself) + prog/vers/proc/type/serial/status + body', () => {
    const p = encodePacket(hdr(5), Buffer.from([0, 0, 0, 1]));
    expect(p.toString('hex')).toBe([
      '00000020', // 4 + 24 + 4 = 32
      '20008086', // REMOTE_PROGRAM
      '00000001', // version
      '00000111', // proc 273
      '00000000', // CALL
      '00000005', // serial
      '00000000', // status OK
      '00000001', // body
    ].join(''));
  });

  it('reassembles a packet delivered one byte at a time', () => {
    const p = encodePacket(hdr(9), Buffer.from('abcdefgh'));
    const d = new PacketDecoder();
    const got = [];
    for (let i = 0; i < p.length; i++) got.push(...d.push(p.subarray(i, i + 1)));
    expect(got).toHaveLength(1);
    expect(got[0]?.header).toEqual(hdr(9));
    expect(got[0]?.body.toString()).toBe('abcdefgh');
    expect(d.pendingBytes).toBe(0);
  });

  it('splits several packets merged into one chunk, at any cut point', () => {
    const stream = Buffer.concat([encodePacket(hdr(1), Buffer.alloc(8, 1)), encodePacket(hdr(2)), encodePacket(hdr(3), Buffer.alloc(4, 3))]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new PacketDecoder();
      const got = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(got.map((p) => p.header.serial)).toEqual([1, 2, 3]);
      expect(got.map((p) => p.body.length)).toEqual([8, 0, 4]);
    }
  });

  it('rejects impossible lengths instead of waiting or allocating', () => {
    expect(() => new PacketDecoder().push(Buffer.from('0000000b', 'hex'))).toThrow(/invalid packet length 11/);
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(MAX_PACKET_BYTES + 1);
    expect(() => new PacketDecoder().push(huge)).toThrow(/invalid packet length/);
  });

  it('refuses to build a packet above the protocol limit', () => {
    expect(() => encodePacket(hdr(1), Buffer.alloc(MAX_PACKET_BYTES))).toThrow(/exceeds/);
  });
});
