/**
 * libvirt typed parameters (virTypedParameter) <-> plain JavaScript.
 *
 * Decoding gives a plain object: int/uint/double -> number, llong/ullong -> bigint (no precision
 * loss), boolean -> boolean, string -> string. A field repeated in one list (libvirt allows that
 * for e.g. `migrate_disks`) keeps its last value in the object; `decodeTypedParamList` keeps all.
 * Encoding needs each field's wire type: give it explicitly (`tp.ullong(1n)`) or rely on the
 * table of known migration parameter types (`MIGRATE_PARAM_TYPES`).
 */
import { TypedParamType, type WireTypedParam } from './protocol.js';

export type TypedParamScalar = number | bigint | boolean | string;
export type TypedParams = Record<string, TypedParamScalar>;

/** An explicitly typed value, for encoding. */
export type TypedValue =
  | { type: 1; value: number }
  | { type: 2; value: number }
  | { type: 3; value: bigint }
  | { type: 4; value: bigint }
  | { type: 5; value: number }
  | { type: 6; value: boolean }
  | { type: 7; value: string };

export const tp = {
  int: (value: number): TypedValue => ({ type: TypedParamType.INT, value }),
  uint: (value: number): TypedValue => ({ type: TypedParamType.UINT, value }),
  llong: (value: bigint | number): TypedValue => ({ type: TypedParamType.LLONG, value: BigInt(value) }),
  ullong: (value: bigint | number): TypedValue => ({ type: TypedParamType.ULLONG, value: BigInt(value) }),
  double: (value: number): TypedValue => ({ type: TypedParamType.DOUBLE, value }),
  boolean: (value: boolean): TypedValue => ({ type: TypedParamType.BOOLEAN, value }),
  string: (value: string): TypedValue => ({ type: TypedParamType.STRING, value }),
};

export function decodeTypedParamValue(p: WireTypedParam['value']): TypedParamScalar {
  switch (p.type) {
    case 6:
      return p.value !== 0;
    default:
      return p.value;
  }
}

export function decodeTypedParams(list: readonly WireTypedParam[]): TypedParams {
  const out: TypedParams = {};
  for (const p of list) out[p.field] = decodeTypedParamValue(p.value);
  return out;
}

export function decodeTypedParamList(list: readonly WireTypedParam[]): Array<{ field: string; value: TypedParamScalar }> {
  return list.map((p) => ({ field: p.field, value: decodeTypedParamValue(p.value) }));
}

function toWire(field: string, v: TypedValue): WireTypedParam {
  switch (v.type) {
    case 6:
      return { field, value: { type: 6, value: v.value ? 1 : 0 } };
    default:
      return { field, value: v } as WireTypedParam;
  }
}

/**
 * Encodes `[field, value]` pairs (order kept, repeats allowed). A bare JS value is typed with
 * `types[field]`; a field without a known type is an error rather than a guess.
 */
export function encodeTypedParams(
  entries: Iterable<[string, TypedValue | TypedParamScalar | readonly TypedParamScalar[]]>,
  types: Readonly<Record<string, TypedValue['type']>> = {},
): WireTypedParam[] {
  const out: WireTypedParam[] = [];
  for (const [field, raw] of entries) {
    const values: Array<TypedValue | TypedParamScalar> = Array.isArray(raw) ? [...(raw as TypedParamScalar[])] : [raw as TypedValue | TypedParamScalar];
    for (const v of values) {
      if (typeof v === 'object' && v !== null && 'type' in v) {
        out.push(toWire(field, v));
        continue;
      }
      const t = types[field];
      if (t === undefined) throw new Error(`typed parameter '${field}': unknown type; pass it as tp.<type>(value)`);
      out.push(toWire(field, coerce(field, t, v)));
    }
  }
  return out;
}

function coerce(field: string, t: TypedValue['type'], v: TypedParamScalar): TypedValue {
  const bad = (): never => {
    throw new Error(`typed parameter '${field}': value ${String(v)} does not fit type ${t}`);
  };
  switch (t) {
    case 1:
    case 2:
    case 5:
      if (typeof v !== 'number') return bad();
      return { type: t, value: v };
    case 3:
    case 4:
      if (typeof v !== 'bigint' && typeof v !== 'number') return bad();
      return { type: t, value: BigInt(v) };
    case 6:
      if (typeof v !== 'boolean') return bad();
      return { type: 6, value: v };
    case 7:
      if (typeof v !== 'string') return bad();
      return { type: 7, value: v };
  }
}
