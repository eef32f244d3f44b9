// Unit tests of the XDR codec and the protocol structures built with it: hand-computed byte
// layouts (RFC 4506 + rpcgen conventions), round trips, and malformed input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nonnullDomain, procs, remoteError, typedParam, uuid } from '../../src/libvirt/protocol.js';
import { decode, encode, xdr, XdrError, XdrReader } from '../../src/libvirt/xdr.js';

const hex = (b: Buffer): string => b.toString('hex');
const fromHex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('XDR primitives: byte layouts', () => {
  it('encodes 32-bit integers big-endian, two-complement for negatives', () => {
    expect(hex(encode(xdr.int, 1))).toBe('00000001');
    expect(hex(encode(xdr.int, -2))).toBe('fffffffe');
    expect(hex(encode(xdr.int, 0x7fffffff))).toBe('7fffffff');
    expect(hex(encode(xdr.uint, 0xdeadbeef))).toBe('deadbeef');
  });

  it('encodes hyper/unsigned hyper as 8 bytes from bigint, without precision loss', () => {
    expect(hex(encode(xdr.hyper, -1n))).toBe('ffffffffffffffff');
    expect(hex(encode(xdr.uhyper, 0x0102030405060708n))).toBe('0102030405060708');
    const big = 2n ** 64n - 1n;
    expect(decode(xdr.uhyper, encode(xdr.uhyper, big))).toBe(big);
    expect(decode(xdr.hyper, fromHex('8000000000000000'))).toBe(-(2n ** 63n));
  });

  it('encodes bool as an int 0/1 and double as IEEE-754 big-endian', () => {
    expect(hex(encode(xdr.bool, true))).toBe('00000001');
    expect(hex(encode(xdr.bool, false))).toBe('00000000');
    expect(hex(encode(xdr.double, 1.5))).toBe('3ff8000000000000');
  });

  it('pads strings and opaque data to 4 bytes after a length word', () => {
    expect(hex(encode(xdr.string(), ''))).toBe('00000000');
    expect(hex(encode(xdr.string(), 'abc'))).toBe('00000003' + '61626300');
    expect(hex(encode(xdr.string(), 'abcd'))).toBe('00000004' + '61626364');
    expect(hex(encode(xdr.string(), 'abcde'))).toBe('00000005' + '6162636465000000');
    expect(hex(encode(xdr.opaque(), Buffer.from([1, 2])))).toBe('00000002' + '01020000');
    expect(hex(encode(xdr.fixedOpaque(3), Buffer.from([9, 8, 7])))).toBe('09080700');
    // UTF-8 length is in bytes, not characters
    expect(hex(encode(xdr.string(), 'é'))).toBe('00000002' + 'c3a90000');
  });

  it('encodes optional-data as a presence flag plus the value', () => {
    const c = xdr.optional(xdr.string());
    expect(hex(encode(c, null))).toBe('00000000');
    expect(hex(encode(c, 'x'))).toBe('00000001' + '00000001' + '78000000');
    expect(decode(c, fromHex('00000000'))).toBeNull();
  });

  it('encodes variable and fixed arrays', () => {
    expect(hex(encode(xdr.array(xdr.int), [1, -1]))).toBe('00000002' + '00000001' + 'ffffffff');
    expect(hex(encode(xdr.fixedArray(xdr.uint, 2), [3, 4]))).toBe('00000003' + '00000004');
  });

  it('decodes rpcgen char[n] as n ints, one per character, NUL-terminated', () => {
    const ints = [...'x86_64'].map((c) => c.charCodeAt(0)).concat(new Array(26).fill(0));
    const buf = encode(xdr.fixedArray(xdr.int, 32), ints);
    expect(buf.length).toBe(128);
    expect(decode(xdr.charArray(32), buf)).toBe('x86_64');
    expect(encode(xdr.charArray(32), 'x86_64').equals(buf)).toBe(true);
  });
});

describe('protocol structures: known layouts', () => {
  const u = '0991b200-1234-5678-9abc-def012345678';

  it('remote_nonnull_domain is {string name, opaque uuid[16], int id}', () => {
    const b = encode(nonnullDomain, { name: 'vm1', uuid: u, id: 7 });
    expect(hex(b)).toBe('00000003' + '766d3100' + '0991b20012345678 9abcdef012345678'.replace(' ', '') + '00000007');
    expect(decode(nonnullDomain, b)).toEqual({ name: 'vm1', uuid: u, id: 7 });
  });

  it('a typed parameter is field + discriminated union (4 = unsigned long long)', () => {
    const b = encode(typedParam, { field: 'bandwidth', value: { type: 4, value: 5n } });
    expect(hex(b)).toBe('00000009' + '62616e6477696474 68000000'.replace(' ', '') + '00000004' + '0000000000000005');
    const s = encode(typedParam, { field: 'u', value: { type: 7, value: 'tcp://h' } });
    expect(hex(s)).toBe('00000001' + '75000000' + '00000007' + '00000007' + '7463703a2f2f6800');
  });

  it('CONNECT_LIST_ALL_DOMAINS args are {int need_results, unsigned flags}', () => {
    expect(hex(encode(procs.CONNECT_LIST_ALL_DOMAINS.args, { need_results: 1, flags: 16 }))).toBe('00000001' + '00000010');
  });

  it('decodes a remote_error with optional fields', () => {
    const b = Buffer.concat([
      fromHex('0000002a' + '0000000a'), // code 42, domain 10
      fromHex('00000001' + '00000003' + '626f6f00'), // message "boo"
      fromHex('00000002'), // level 2
      fromHex('00000000'), // dom: null
      fromHex('00000001' + '00000001' + '61000000'), // str1 "a"
      fromHex('00000000' + '00000000'), // str2, str3 null
      fromHex('00000005' + 'fffffffb'), // int1 5, int2 -5
      fromHex('00000000'), // net null
    ]);
    expect(decode(remoteError, b)).toEqual({ code: 42, domain: 10, message: 'boo', level: 2, dom: null, str1: 'a', str2: null, str3: null, int1: 5, int2: -5, net: null });
  });

  it('uuid codec rejects strings that are not 16 bytes of hex', () => {
    expect(() => encode(uuid, 'not-a-uuid')).toThrow(/invalid UUID/);
  });
});

describe('round trips (property-based)', () => {
  const record = xdr.struct({
    a: xdr.int,
    b: xdr.uhyper,
    s: xdr.string(),
    o: xdr.optional(xdr.opaque()),
    list: xdr.array(xdr.struct({ k: xdr.string(), v: xdr.hyper })),
    flag: xdr.bool,
    d: xdr.double,
  });
  it('decode(encode(v)) == v for arbitrary values', () => {
    fc.assert(fc.property(
      fc.record({
        a: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        b: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        s: fc.string({ unit: 'grapheme', maxLength: 40 }),
        o: fc.option(fc.uint8Array({ maxLength: 33 }).map((u8) => Buffer.from(u8)), { nil: null }),
        list: fc.array(fc.record({ k: fc.string({ maxLength: 10 }), v: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) }), { maxLength: 5 }),
        flag: fc.boolean(),
        d: fc.double({ noNaN: true }),
      }),
      (v) => {
        const b = encode(record, v);
        expect(b.length % 4).toBe(0);
        expect(decode(record, b)).toEqual(v);
      },
    ), { numRuns: 300 });
  });

  it('typed params of every type survive a round trip', () => {
    const list = xdr.array(typedParam);
    const v = [
      { field: 'i', value: { type: 1 as const, value: -3 } },
      { field: 'u', value: { type: 2 as const, value: 4000000000 } },
      { field: 'l', value: { type: 3 as const, value: -(2n ** 40n) } },
      { field: 'ul', value: { type: 4 as const, value: 2n ** 63n + 5n } },
      { field: 'd', value: { type: 5 as const, value: 0.25 } },
      { field: 'b', value: { type: 6 as const, value: 1 } },
      { field: 's', value: { type: 7 as const, value: 'hello' } },
    ];
    expect(decode(list, encode(list, v))).toEqual(v);
  });
});

describe('malformed input gives a clear XdrError', () => {
  it('truncated data names what was being read and where', () => {
    expect(() => decode(xdr.uhyper, fromHex('000000'))).toThrow(/truncated input: need 8 byte\(s\) for unsigned hyper at offset 0/);
    expect(() => decode(nonnullDomain, fromHex('00000003' + '766d3100'))).toThrow(/\.uuid: truncated/);
  });

  it('rejects invalid bool and optional flags', () => {
    expect(() => decode(xdr.bool, fromHex('00000002'))).toThrow(/invalid bool value 2/);
    expect(() => decode(xdr.optional(xdr.int), fromHex('00000002 00000000'.replace(' ', '')))).toThrow(/invalid optional-data flag 2/);
  });

  it('rejects lengths above the declared maximum and absurd array lengths', () => {
    expect(() => decode(xdr.string(3), fromHex('00000004' + '61626364'))).toThrow(/string length 4 exceeds maximum 3/);
    expect(() => decode(xdr.array(xdr.int), fromHex('7fffffff'))).toThrow(/cannot fit/);
  });

  it('rejects an unknown union discriminant, with the path', () => {
    expect(() => decode(typedParam, fromHex('00000001' + '78000000' + '00000009' + '00000000'))).toThrow(/\.value: union has no arm for discriminant 9/);
  });

  it('rejects trailing bytes (a wrong layout must not pass silently)', () => {
    expect(() => decode(xdr.int, fromHex('0000000100000002'), 'reply')).toThrow(/4 unexpected trailing byte\(s\) after reply/);
  });

  it('refuses to encode out-of-range values', () => {
    expect(() => encode(xdr.int, 2 ** 31)).toThrow(XdrError);
    expect(() => encode(xdr.uint, -1)).toThrow(/unsigned int out of range/);
    expect(() => encode(xdr.uhyper, -1n)).toThrow(/unsigned hyper out of range/);
    expect(() => encode(xdr.struct({ x: xdr.int }), { x: 1.5 })).toThrow(/\.x: int out of range/);
  });

  it('the reader never reads past its end marker', () => {
    const r = new XdrReader(fromHex('0000000100000002'), 0, 4);
    expect(r.int()).toBe(1);
    expect(() => r.int()).toThrow(XdrError);
  });
});
