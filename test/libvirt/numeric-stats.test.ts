// NumericDomainStatsDecoder (CONNECT_GET_ALL_DOMAIN_STATS for collection): the same numbers as
// the generic typed-parameter decoding followed by Number(), strings left out, names right
// when the layout changes between replies (its per-position name cache), and malformed
// replies rejected with the field path.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NumericDomainStatsDecoder, procs, type WireTypedParam } from '../../src/libvirt/protocol.js';
import { decodeTypedParams } from '../../src/libvirt/typed-params.js';
import { XdrError, XdrReader, decode, encode } from '../../src/libvirt/xdr.js';

type Reply = { retStats: { dom: { name: string; uuid: string; id: number }; params: WireTypedParam[] }[] };
const ret = procs.CONNECT_GET_ALL_DOMAIN_STATS.ret;
const dom = (i: number) => ({ name: `vm${i}`, uuid: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`, id: i });

/** What the generic path gives: decodeTypedParams, then numbers (bigint → Number, boolean → 0/1, strings dropped). */
function generic(buf: Buffer): { name: string; values: Record<string, number> }[] {
  return decode(ret, buf).retStats.map((s) => {
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(decodeTypedParams(s.params))) {
      if (typeof v === 'bigint') values[k] = Number(v);
      else if (typeof v === 'number') values[k] = v;
      else if (typeof v === 'boolean') values[k] = v ? 1 : 0;
    }
    return { name: s.dom.name, values };
  });
}

function numeric(d: NumericDomainStatsDecoder, buf: Buffer): { name: string; values: Record<string, number> }[] {
  const r = new XdrReader(buf);
  const out = d.dec(r).retStats.map((s) => ({ name: s.dom.name, values: s.values }));
  r.assertEnd();
  return out;
}

const every: WireTypedParam[] = [
  { field: 'state.state', value: { type: 1, value: -3 } },
  { field: 'net.count', value: { type: 2, value: 4294967295 } },
  { field: 'llong.neg', value: { type: 3, value: -5000000000n } },
  { field: 'llong.min', value: { type: 3, value: -(1n << 63n) } },
  { field: 'cpu.time', value: { type: 4, value: 123456789012345n } },
  { field: 'ullong.big', value: { type: 4, value: (1n << 64n) - 1n } },
  { field: 'ullong.odd', value: { type: 4, value: (1n << 53n) + 1n } },
  { field: 'dbl', value: { type: 5, value: 0.25 } },
  { field: 'flag', value: { type: 6, value: 1 } },
  { field: 'block.0.name', value: { type: 7, value: 'vda' } },
  { field: 'nämé', value: { type: 1, value: 7 } },
];

describe('NumericDomainStatsDecoder', () => {
  it('every wire type: the generic decoding\'s numbers, strings left out', () => {
    const buf = encode(ret, { retStats: [{ dom: dom(1), params: every }, { dom: dom(2), params: [] }] } as Reply);
    const got = numeric(new NumericDomainStatsDecoder(), buf);
    expect(got).toEqual(generic(buf));
    expect(got[0]!.values['block.0.name']).toBeUndefined();
    expect(got[0]!.values['llong.neg']).toBe(-5000000000);
    expect(got[0]!.values['flag']).toBe(1);
    expect(got[0]!.values['nämé']).toBe(7);
  });

  it('one decoder across replies whose layouts differ (its name cache) gives what the generic decoding gives', () => {
    const param = fc.oneof(
      fc.record({ field: fc.string({ maxLength: 12 }), value: fc.record({ type: fc.constant(1 as const), value: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }) }),
      fc.record({ field: fc.string({ maxLength: 12 }), value: fc.record({ type: fc.constant(4 as const), value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }) }),
      fc.record({ field: fc.string({ maxLength: 12 }), value: fc.record({ type: fc.constant(3 as const), value: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }) }) }),
      fc.record({ field: fc.constantFrom('state.state', 'cpu.time', 'balloon.rss', 'vcpu.current'), value: fc.record({ type: fc.constant(7 as const), value: fc.string({ maxLength: 5 }) }) }),
    );
    const reply = fc.array(fc.array(param, { maxLength: 8 }), { maxLength: 4 })
      .map((recs) => encode(ret, { retStats: recs.map((params, i) => ({ dom: dom(i), params })) } as Reply));
    const d = new NumericDomainStatsDecoder();
    fc.assert(fc.property(fc.array(reply, { minLength: 1, maxLength: 5 }), (bufs) => {
      for (const b of bufs) expect(numeric(d, b)).toEqual(generic(b));
    }));
  });

  it('a malformed reply is an XdrError naming the field', () => {
    const buf = encode(ret, { retStats: [{ dom: dom(1), params: every }] } as Reply);
    const d = new NumericDomainStatsDecoder();
    expect(() => d.dec(new XdrReader(buf.subarray(0, buf.length - 6)))).toThrow(XdrError);
    expect(() => d.dec(new XdrReader(buf.subarray(0, buf.length - 6)))).toThrow(/\.retStats\[0\]\.params\[10\]/);
    // an unknown typed-parameter type (9) in the first field
    const bad = Buffer.from(buf);
    const typeAt = bad.indexOf(Buffer.from('state.state')) + 12; // 11 bytes + 1 pad
    bad.writeInt32BE(9, typeAt);
    expect(() => d.dec(new XdrReader(bad))).toThrow(/params\[0\].*discriminant 9/);
  });
});
