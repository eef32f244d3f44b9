/**
 * XDR (RFC 4506) reader/writer and a small combinator DSL for declaring wire structures.
 *
 * Contract: every codec is a pair `enc(writer, value)` / `dec(reader) -> value`; composite codecs
 * (struct, array, optional, union) are built from smaller ones and their TypeScript value type is
 * inferred (`Infer<typeof codec>`). All quantities are big-endian and padded to 4 bytes, as XDR
 * requires. 64-bit integers ("hyper") are `bigint` so no precision is lost. Decoding never reads
 * past the buffer: malformed input raises an `XdrError` naming the field path and the offset.
 */

export class XdrError extends Error {
  constructor(message: string, readonly offset?: number) {
    super(message);
    this.name = 'XdrError';
  }
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/** Growable big-endian buffer writer. */
export class XdrWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int(v: number): void {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new XdrError(`int out of range: ${v}`);
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
  }

  uint(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new XdrError(`unsigned int out of range: ${v}`);
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }

  hyper(v: bigint): void {
    if (typeof v !== 'bigint' || v < -(1n << 63n) || v >= 1n << 63n) throw new XdrError(`hyper out of range: ${String(v)}`);
    this.ensure(8);
    this.buf.writeBigInt64BE(v, this.pos);
    this.pos += 8;
  }

  uhyper(v: bigint): void {
    if (typeof v !== 'bigint' || v < 0n || v >= 1n << 64n) throw new XdrError(`unsigned hyper out of range: ${String(v)}`);
    this.ensure(8);
    this.buf.writeBigUInt64BE(v, this.pos);
    this.pos += 8;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
  }

  float(v: number): void {
    this.ensure(4);
    this.buf.writeFloatBE(v, this.pos);
    this.pos += 4;
  }

  /** Raw bytes plus zero padding to a multiple of 4 (no length prefix). */
  bytes(b: Uint8Array): void {
    const p = pad4(b.length);
    this.ensure(b.length + p);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    this.buf.fill(0, this.pos, this.pos + p);
    this.pos += p;
  }

  /** Appends an already-encoded XDR fragment (must be 4-byte aligned). */
  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Overwrites a uint at an absolute offset (used for the packet length prefix). */
  patchUint(offset: number, v: number): void {
    this.buf.writeUInt32BE(v, offset);
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Bounds-checked big-endian reader over a Buffer slice. */
export class XdrReader {
  private pos: number;
  private readonly end: number;

  constructor(private readonly buf: Buffer, offset = 0, end = buf.length) {
    this.pos = offset;
    this.end = end;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new XdrError(`truncated input: need ${n} byte(s) for ${what} at offset ${this.pos}, only ${this.end - this.pos} left`, this.pos);
    }
  }

  int(): number {
    this.need(4, 'int');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint(): number {
    this.need(4, 'unsigned int');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  hyper(): bigint {
    this.need(8, 'hyper');
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  uhyper(): bigint {
    this.need(8, 'unsigned hyper');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  double(): number {
    this.need(8, 'double');
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  float(): number {
    this.need(4, 'float');
    const v = this.buf.readFloatBE(this.pos);
    this.pos += 4;
    return v;
  }

  /** n raw bytes followed by padding; returns a copy (the packet buffer is not retained). */
  bytes(n: number): Buffer {
    const p = pad4(n);
    this.need(n + p, `${n} byte(s) of opaque data`);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n + p;
    return out;
  }

  /**
   * A `string<max>` decoded from UTF-8 in place (no copy of the bytes). `slot`, when given, is
   * a one-entry cache owned by the caller for a place where the same string recurs (e.g. the
   * i-th field name of a statistics record, round after round): when the bytes equal the
   * cached ones, the cached string is returned without decoding.
   */
  string(max: number, slot?: StringSlot): string {
    const off = this.pos;
    const len = this.uint();
    checkLength(len, max, 'string', off);
    const p = pad4(len);
    this.need(len + p, `${len} byte(s) of string data`);
    const start = this.pos;
    this.pos += len + p;
    if (slot) {
      const cached = slot.bytes;
      if (cached !== null && cached.length === len) {
        let i = 0;
        while (i < len && cached[i] === this.buf[start + i]) i++;
        if (i === len) return slot.text;
      }
      slot.bytes = Buffer.from(this.buf.subarray(start, start + len));
      slot.text = utf8.decode(slot.bytes);
      return slot.text;
    }
    return utf8.decode(this.buf.subarray(start, start + len));
  }

  /** Throws unless every byte was consumed: trailing garbage means the layout is wrong. */
  assertEnd(what = 'message'): void {
    if (this.pos !== this.end) throw new XdrError(`${this.end - this.pos} unexpected trailing byte(s) after ${what}`, this.pos);
  }
}

// ---------------------------------------------------------------------------------------------
// Codec combinators
// ---------------------------------------------------------------------------------------------

export interface Codec<T> {
  enc(w: XdrWriter, v: T): void;
  dec(r: XdrReader): T;
}

export type Infer<C> = C extends Codec<infer T> ? T : never;

/**
 * A decode failure with the field path in front ("ret.domains[3].name: ..."). The combinators
 * catch around their whole loop and build the path only on failure: no closure or path string
 * per decoded field (a collection round decodes thousands).
 */
export function withPath(path: string, e: unknown): unknown {
  return e instanceof XdrError ? new XdrError(`${path}: ${e.message}`, e.offset) : e;
}

/** The caller's one-entry cache for XdrReader.string (see there). */
export interface StringSlot {
  bytes: Buffer | null;
  text: string;
}

export const int: Codec<number> = { enc: (w, v) => w.int(v), dec: (r) => r.int() };
export const uint: Codec<number> = { enc: (w, v) => w.uint(v), dec: (r) => r.uint() };
export const hyper: Codec<bigint> = { enc: (w, v) => w.hyper(v), dec: (r) => r.hyper() };
export const uhyper: Codec<bigint> = { enc: (w, v) => w.uhyper(v), dec: (r) => r.uhyper() };
export const double: Codec<number> = { enc: (w, v) => w.double(v), dec: (r) => r.double() };
export const float: Codec<number> = { enc: (w, v) => w.float(v), dec: (r) => r.float() };

/** XDR bool: an int that must be 0 or 1. */
export const bool: Codec<boolean> = {
  enc: (w, v) => w.int(v ? 1 : 0),
  dec: (r) => {
    const off = r.offset;
    const v = r.int();
    if (v !== 0 && v !== 1) throw new XdrError(`invalid bool value ${v}`, off);
    return v === 1;
  },
};

/** No data (procedures without args or return value). */
export const void_: Codec<void> = { enc: () => undefined, dec: () => undefined };

/** Fixed-length opaque: exactly n bytes plus padding, no length prefix. */
export function fixedOpaque(n: number): Codec<Buffer> {
  return {
    enc: (w, v) => {
      if (v.length !== n) throw new XdrError(`fixed opaque needs ${n} bytes, got ${v.length}`);
      w.bytes(v);
    },
    dec: (r) => r.bytes(n),
  };
}

function checkLength(len: number, max: number, what: string, offset: number): void {
  if (len > max) throw new XdrError(`${what} length ${len} exceeds maximum ${max}`, offset);
}

/** Variable-length opaque `opaque x<max>`: uint length, bytes, padding. */
export function opaque(max = 0xffffffff): Codec<Buffer> {
  return {
    enc: (w, v) => {
      if (v.length > max) throw new XdrError(`opaque length ${v.length} exceeds maximum ${max}`);
      w.uint(v.length);
      w.bytes(v);
    },
    dec: (r) => {
      const off = r.offset;
      const len = r.uint();
      checkLength(len, max, 'opaque', off);
      return r.bytes(len);
    },
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** `string x<max>`: UTF-8 bytes with a uint length prefix. libvirt caps strings at 4 MiB. */
export function string(max = 4194304): Codec<string> {
  return {
    enc: (w, v) => {
      if (typeof v !== 'string') throw new XdrError(`expected a string, got ${typeof v}`);
      const b = Buffer.from(v, 'utf8');
      if (b.length > max) throw new XdrError(`string length ${b.length} exceeds maximum ${max}`);
      w.uint(b.length);
      w.bytes(b);
    },
    dec: (r) => r.string(max),
  };
}

/**
 * C `char x[n]` as rpcgen encodes it: n XDR ints, one per character (not packed bytes).
 * Decodes to the NUL-terminated string; encodes a string of at most n-1... n characters.
 */
export function charArray(n: number): Codec<string> {
  return {
    enc: (w, v) => {
      const b = Buffer.from(v, 'latin1');
      if (b.length > n) throw new XdrError(`char[${n}] cannot hold ${b.length} characters`);
      for (let i = 0; i < n; i++) w.int(i < b.length ? (b[i] as number) : 0);
    },
    dec: (r) => {
      const chars: number[] = [];
      let ended = false;
      for (let i = 0; i < n; i++) {
        const c = r.int() & 0xff;
        if (c === 0) ended = true;
        if (!ended) chars.push(c);
      }
      return Buffer.from(chars).toString('latin1');
    },
  };
}

/** Variable-length array `T x<max>`. */
export function array<T>(item: Codec<T>, max = 0xffffffff): Codec<T[]> {
  return {
    enc: (w, v) => {
      if (v.length > max) throw new XdrError(`array length ${v.length} exceeds maximum ${max}`);
      w.uint(v.length);
      for (const x of v) item.enc(w, x);
    },
    dec: (r) => {
      const off = r.offset;
      const len = r.uint();
      checkLength(len, max, 'array', off);
      // Each element takes at least 4 bytes: reject absurd lengths before allocating.
      if (len * 4 > r.remaining && len > 0) {
        throw new XdrError(`array length ${len} cannot fit in the ${r.remaining} remaining byte(s)`, off);
      }
      const out: T[] = new Array<T>(len);
      let i = 0;
      try {
        for (; i < len; i++) out[i] = item.dec(r);
      } catch (e) {
        throw withPath(`[${i}]`, e);
      }
      return out;
    },
  };
}

/** Fixed-length array `T x[n]`. */
export function fixedArray<T>(item: Codec<T>, n: number): Codec<T[]> {
  return {
    enc: (w, v) => {
      if (v.length !== n) throw new XdrError(`fixed array needs ${n} elements, got ${v.length}`);
      for (const x of v) item.enc(w, x);
    },
    dec: (r) => {
      const out: T[] = new Array<T>(n);
      let i = 0;
      try {
        for (; i < n; i++) out[i] = item.dec(r);
      } catch (e) {
        throw withPath(`[${i}]`, e);
      }
      return out;
    },
  };
}

/** XDR optional-data `T *x`: a bool "present" followed by the value; `null` when absent. */
export function optional<T>(item: Codec<T>): Codec<T | null> {
  return {
    enc: (w, v) => {
      if (v === null || v === undefined) {
        w.uint(0);
      } else {
        w.uint(1);
        item.enc(w, v);
      }
    },
    dec: (r) => {
      const off = r.offset;
      const flag = r.uint();
      if (flag === 0) return null;
      if (flag !== 1) throw new XdrError(`invalid optional-data flag ${flag}`, off);
      return item.dec(r);
    },
  };
}

type StructShape = Record<string, Codec<unknown>>;
export type StructValue<S extends StructShape> = { [K in keyof S]: Infer<S[K]> };

/** A struct: fields encoded in declaration order (object key order). */
export function struct<S extends StructShape>(shape: S): Codec<StructValue<S>> {
  const fields = Object.entries(shape);
  return {
    enc: (w, v) => {
      for (const [name, codec] of fields) {
        const fv = (v as Record<string, unknown>)[name];
        try {
          codec.enc(w, fv);
        } catch (e) {
          if (e instanceof XdrError) throw new XdrError(`.${name}: ${e.message}`);
          throw e;
        }
      }
    },
    dec: (r) => {
      const out: Record<string, unknown> = {};
      let i = 0;
      try {
        for (; i < fields.length; i++) {
          const [name, codec] = fields[i]!;
          out[name] = codec.dec(r);
        }
      } catch (e) {
        throw withPath(`.${fields[i]![0]}`, e);
      }
      return out as StructValue<S>;
    },
  };
}

type UnionArms = Record<number, Codec<unknown>>;
/** Value of a discriminated union: `{ type: <discriminant>, value: <arm value> }`. */
export type UnionValue<A extends UnionArms> = { [K in keyof A & number]: { type: K; value: Infer<A[K]> } }[keyof A & number];

/** `union switch (int type) { case 1: T1 x; ... }` without a default arm: unknown cases are errors. */
export function union<A extends UnionArms>(arms: A): Codec<UnionValue<A>> {
  return {
    enc: (w, v) => {
      const arm = arms[v.type];
      if (!arm) throw new XdrError(`union has no arm for discriminant ${v.type}`);
      w.int(v.type);
      arm.enc(w, v.value);
    },
    dec: (r) => {
      const off = r.offset;
      const type = r.int();
      const arm = arms[type];
      if (!arm) throw new XdrError(`union has no arm for discriminant ${type}`, off);
      try {
        return { type, value: arm.dec(r) } as UnionValue<A>;
      } catch (e) {
        throw withPath(`<${type}>`, e);
      }
    },
  };
}

/** Maps a wire codec to a friendlier in-memory representation (e.g. uuid bytes <-> string). */
export function transform<W, T>(wire: Codec<W>, decode: (w: W) => T, encode: (v: T) => W): Codec<T> {
  return {
    enc: (w, v) => wire.enc(w, encode(v)),
    dec: (r) => decode(wire.dec(r)),
  };
}

/** Lazily-resolved codec, for recursive definitions. */
export function lazy<T>(get: () => Codec<T>): Codec<T> {
  return { enc: (w, v) => get().enc(w, v), dec: (r) => get().dec(r) };
}

/** Encodes one value into a fresh Buffer. */
export function encode<T>(codec: Codec<T>, v: T): Buffer {
  const w = new XdrWriter();
  codec.enc(w, v);
  return w.finish();
}

/** Decodes a whole buffer; trailing bytes are an error (they mean the layout is wrong). */
export function decode<T>(codec: Codec<T>, buf: Buffer, what = 'message'): T {
  const r = new XdrReader(buf);
  const v = codec.dec(r);
  r.assertEnd(what);
  return v;
}

/** The DSL as one namespace: `xdr.struct({ name: xdr.string(), id: xdr.int })`. */
export const xdr = {
  int,
  uint,
  hyper,
  uhyper,
  double,
  float,
  bool,
  void: void_,
  fixedOpaque,
  opaque,
  string,
  charArray,
  array,
  fixedArray,
  optional,
  struct,
  union,
  transform,
  lazy,
  encode,
  decode,
  withPath,
};
