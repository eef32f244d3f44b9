/**
 * Wire definitions of libvirt's remote protocol (program REMOTE_PROGRAM, version 1) for the
 * procedures Tide uses, written with the XDR DSL from the protocol's published layouts.
 * Procedure numbers are stable facts of the protocol: they are never reused or renumbered, and
 * argument structures of an existing procedure never change (new procedures are added instead).
 */
import { XdrError, xdr, type Codec, type Infer, type StringSlot, type XdrReader } from './xdr.js';

// ---------------------------------------------------------------------------------------------
// Programs, packet header
// ---------------------------------------------------------------------------------------------

export const REMOTE_PROGRAM = 0x20008086;
export const REMOTE_PROTOCOL_VERSION = 1;
export const KEEPALIVE_PROGRAM = 0x6b656570; // "keep"
export const KEEPALIVE_PROTOCOL_VERSION = 1;
export const KEEPALIVE_PROC = { PING: 1, PONG: 2 } as const;

/** virNetMessageType */
export const MessageType = { CALL: 0, REPLY: 1, MESSAGE: 2, STREAM: 3, CALL_WITH_FDS: 4, REPLY_WITH_FDS: 5, STREAM_HOLE: 6 } as const;
/** virNetMessageStatus */
export const MessageStatus = { OK: 0, ERROR: 1, CONTINUE: 2 } as const;

/** Bytes of the length word that starts every packet (it counts itself). */
export const PACKET_LENGTH_BYTES = 4;
/** Bytes of the fixed header after the length word. */
export const HEADER_BYTES = 24;
/** libvirt's VIR_NET_MESSAGE_MAX (32 MiB) plus the length word: larger packets are refused. */
export const MAX_PACKET_BYTES = 33554432 + PACKET_LENGTH_BYTES;

export const messageHeader = xdr.struct({
  prog: xdr.uint,
  vers: xdr.uint,
  proc: xdr.int,
  type: xdr.int,
  serial: xdr.uint,
  status: xdr.int,
});
export type MessageHeader = Infer<typeof messageHeader>;

// ---------------------------------------------------------------------------------------------
// Shared structures
// ---------------------------------------------------------------------------------------------

const STRING_MAX = 4194304;
const DOMAIN_LIST_MAX = 16384;
const MIGRATE_COOKIE_MAX = 4194304;
const MIGRATE_PARAM_LIST_MAX = 64;
const JOB_STATS_MAX = 64;
const NODE_CPU_STATS_MAX = 16;
const NODE_MEMORY_STATS_MAX = 16;
const AUTH_TYPE_LIST_MAX = 20;
const GET_ALL_DOMAIN_STATS_MAX = 262144;
const TYPED_PARAMS_MAX = 2048;
const STORAGE_POOL_LIST_MAX = 4096;

export const nonnullString = xdr.string(STRING_MAX);
export const optString = xdr.optional(nonnullString);

/** Formats 16 UUID bytes as the canonical 8-4-4-4-12 lower-case string. */
export function uuidToString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Parses a UUID string (with or without dashes) into 16 bytes; throws on anything else. */
export function uuidFromString(s: string): Buffer {
  const hex = s.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`invalid UUID '${s}'`);
  return Buffer.from(hex, 'hex');
}

/** remote_uuid (opaque[16]) as a string in memory. */
export const uuid: Codec<string> = xdr.transform(xdr.fixedOpaque(16), uuidToString, uuidFromString);

/** remote_nonnull_domain: how the daemon identifies a domain (it looks it up by UUID). */
export const nonnullDomain = xdr.struct({ name: nonnullString, uuid, id: xdr.int });
export type Domain = Infer<typeof nonnullDomain>;
const optDomain = xdr.optional(nonnullDomain);
const nonnullNetwork = xdr.struct({ name: nonnullString, uuid });
/** remote_nonnull_storage_pool / remote_nonnull_storage_vol */
export const nonnullStoragePool = xdr.struct({ name: nonnullString, uuid });
export type StoragePoolRef = Infer<typeof nonnullStoragePool>;
export const nonnullStorageVol = xdr.struct({ pool: nonnullString, name: nonnullString, key: nonnullString });
export type StorageVolRef = Infer<typeof nonnullStorageVol>;

/** remote_error: the body of every REPLY with status ERROR. */
export const remoteError = xdr.struct({
  code: xdr.int,
  domain: xdr.int,
  message: optString,
  level: xdr.int,
  dom: optDomain,
  str1: optString,
  str2: optString,
  str3: optString,
  int1: xdr.int,
  int2: xdr.int,
  net: xdr.optional(nonnullNetwork),
});
export type RemoteError = Infer<typeof remoteError>;

/** VIR_TYPED_PARAM_* discriminants. */
export const TypedParamType = { INT: 1, UINT: 2, LLONG: 3, ULLONG: 4, DOUBLE: 5, BOOLEAN: 6, STRING: 7 } as const;

export const typedParamValue = xdr.union({
  1: xdr.int,
  2: xdr.uint,
  3: xdr.hyper,
  4: xdr.uhyper,
  5: xdr.double,
  6: xdr.int, // boolean travels as an int (0/1)
  7: nonnullString,
});
export const typedParam = xdr.struct({ field: nonnullString, value: typedParamValue });
export type WireTypedParam = Infer<typeof typedParam>;
const typedParams = (max: number) => xdr.array(typedParam, max);

/** One domain's bulk statistics as numbers (see NumericDomainStatsDecoder). */
export interface NumericDomainStats {
  dom: Domain;
  values: Record<string, number>;
}

/**
 * CONNECT_GET_ALL_DOMAIN_STATS's reply decoded for collection, straight into one record of
 * numbers per domain: int, uint and double as they are, llong/ullong as a double (exact up to
 * 2^53, beyond rounded to the nearest double like Number(bigint): a relative error of 1e-16,
 * nothing for rates), boolean 0/1; string values are read and left out (nothing numeric is computed from them). No
 * intermediate {field, value: {type, value}} objects and no bigint per field, unlike the
 * generic typed-parameter codec. Field names come through per-position string slots: the i-th
 * field of a record is usually the same name as last time, so one instance per connection
 * decodes each name once and then compares bytes. Decode only (a reply codec).
 */
export class NumericDomainStatsDecoder implements Codec<{ retStats: NumericDomainStats[] }> {
  private readonly names: StringSlot[] = [];

  enc(): void {
    throw new XdrError('NumericDomainStatsDecoder decodes replies only');
  }

  dec(r: XdrReader): { retStats: NumericDomainStats[] } {
    const retStats: NumericDomainStats[] = [];
    const off = r.offset;
    const n = r.uint();
    if (n > DOMAIN_LIST_MAX) throw new XdrError(`.retStats: array length ${n} exceeds maximum ${DOMAIN_LIST_MAX}`, off);
    for (let d = 0; d < n; d++) {
      let dom: Domain;
      try {
        dom = nonnullDomain.dec(r);
      } catch (e) {
        throw xdr.withPath(`.retStats[${d}].dom`, e);
      }
      retStats.push({ dom, values: this.params(r, d) });
    }
    return { retStats };
  }

  private params(r: XdrReader, d: number): Record<string, number> {
    const values: Record<string, number> = {};
    const off = r.offset;
    const n = r.uint();
    if (n > GET_ALL_DOMAIN_STATS_MAX) throw new XdrError(`.retStats[${d}].params: array length ${n} exceeds maximum ${GET_ALL_DOMAIN_STATS_MAX}`, off);
    let i = 0;
    try {
      for (; i < n; i++) {
        const slot = this.names[i] ?? (this.names[i] = { bytes: null, text: '' });
        const field = r.string(STRING_MAX, slot);
        const toff = r.offset;
        const type = r.int();
        switch (type) {
          case 1: case 6: values[field] = r.int(); break; // INT; BOOLEAN travels as an int 0/1
          case 2: values[field] = r.uint(); break;
          case 3: { const hi = r.int(); values[field] = hi * 4294967296 + r.uint(); break; }
          case 4: { const hi = r.uint(); values[field] = hi * 4294967296 + r.uint(); break; }
          case 5: values[field] = r.double(); break;
          case 7: // a repeated field keeps its last value, as in decodeTypedParams: a string one hides it
            r.string(STRING_MAX);
            if (field in values) delete values[field];
            break;
          default: throw new XdrError(`.value: union has no arm for discriminant ${type}`, toff);
        }
      }
    } catch (e) {
      throw xdr.withPath(`.retStats[${d}].params[${i}]`, e);
    }
    return values;
  }
}

// ---------------------------------------------------------------------------------------------
// Procedure table
// ---------------------------------------------------------------------------------------------

export interface ProcDef<A, R> {
  readonly name: string;
  readonly proc: number;
  readonly args: Codec<A>;
  readonly ret: Codec<R>;
}

function proc<A, R>(name: string, num: number, args: Codec<A>, ret: Codec<R>): ProcDef<A, R> {
  return { name, proc: num, args, ret };
}

const V = xdr.void;
const I = xdr.int;
const U = xdr.uint;
const domFlags = xdr.struct({ dom: nonnullDomain, flags: U });
const domOnly = xdr.struct({ dom: nonnullDomain });
const domRet = xdr.struct({ dom: nonnullDomain });

export const procs = {
  // --- connection / auth --------------------------------------------------------------------
  CONNECT_OPEN: proc('CONNECT_OPEN', 1, xdr.struct({ name: optString, flags: U }), V),
  CONNECT_CLOSE: proc('CONNECT_CLOSE', 2, V, V),
  CONNECT_GET_TYPE: proc('CONNECT_GET_TYPE', 3, V, xdr.struct({ type: nonnullString })),
  CONNECT_GET_VERSION: proc('CONNECT_GET_VERSION', 4, V, xdr.struct({ hv_ver: xdr.uhyper })),
  NODE_GET_INFO: proc('NODE_GET_INFO', 6, V, xdr.struct({
    model: xdr.charArray(32),
    memory: xdr.uhyper,
    cpus: I,
    mhz: I,
    nodes: I,
    sockets: I,
    cores: I,
    threads: I,
  })),
  CONNECT_GET_CAPABILITIES: proc('CONNECT_GET_CAPABILITIES', 7, V, xdr.struct({ capabilities: nonnullString })),
  CONNECT_GET_HOSTNAME: proc('CONNECT_GET_HOSTNAME', 59, V, xdr.struct({ hostname: nonnullString })),
  CONNECT_SUPPORTS_FEATURE: proc('CONNECT_SUPPORTS_FEATURE', 60, xdr.struct({ feature: I }), xdr.struct({ supported: I })),
  AUTH_LIST: proc('AUTH_LIST', 66, V, xdr.struct({ types: xdr.array(I, AUTH_TYPE_LIST_MAX) })),
  AUTH_POLKIT: proc('AUTH_POLKIT', 70, V, xdr.struct({ complete: I })),
  CONNECT_GET_LIB_VERSION: proc('CONNECT_GET_LIB_VERSION', 157, V, xdr.struct({ lib_ver: xdr.uhyper })),
  CONNECT_COMPARE_CPU: proc('CONNECT_COMPARE_CPU', 158, xdr.struct({ xml: nonnullString, flags: U }), xdr.struct({ result: I })),
  CONNECT_GET_SYSINFO: proc('CONNECT_GET_SYSINFO', 203, xdr.struct({ flags: U }), xdr.struct({ sysinfo: nonnullString })),
  CONNECT_GET_DOMAIN_CAPABILITIES: proc('CONNECT_GET_DOMAIN_CAPABILITIES', 342, xdr.struct({
    emulatorbin: optString,
    arch: optString,
    machine: optString,
    virttype: optString,
    flags: U,
  }), xdr.struct({ capabilities: nonnullString })),
  CONNECT_COMPARE_HYPERVISOR_CPU: proc('CONNECT_COMPARE_HYPERVISOR_CPU', 393, xdr.struct({
    emulator: optString,
    arch: optString,
    machine: optString,
    virttype: optString,
    xmlCPU: nonnullString,
    flags: U,
  }), xdr.struct({ result: I })),

  // --- inventory ------------------------------------------------------------------------------
  CONNECT_LIST_ALL_DOMAINS: proc('CONNECT_LIST_ALL_DOMAINS', 273, xdr.struct({ need_results: I, flags: U }),
    xdr.struct({ domains: xdr.array(nonnullDomain, DOMAIN_LIST_MAX), ret: U })),
  DOMAIN_LOOKUP_BY_NAME: proc('DOMAIN_LOOKUP_BY_NAME', 23, xdr.struct({ name: nonnullString }), domRet),
  DOMAIN_LOOKUP_BY_UUID: proc('DOMAIN_LOOKUP_BY_UUID', 24, xdr.struct({ uuid }), domRet),
  DOMAIN_GET_XML_DESC: proc('DOMAIN_GET_XML_DESC', 14, domFlags, xdr.struct({ xml: nonnullString })),
  DOMAIN_GET_INFO: proc('DOMAIN_GET_INFO', 16, domOnly, xdr.struct({
    state: xdr.uint, // rpcgen encodes "unsigned char" as a 4-byte unsigned int
    maxMem: xdr.uhyper,
    memory: xdr.uhyper,
    nrVirtCpu: xdr.uint, // "unsigned short", likewise 4 bytes on the wire
    cpuTime: xdr.uhyper,
  })),
  DOMAIN_GET_STATE: proc('DOMAIN_GET_STATE', 212, domFlags, xdr.struct({ state: I, reason: I })),
  DOMAIN_GET_CONTROL_INFO: proc('DOMAIN_GET_CONTROL_INFO', 229, domFlags, xdr.struct({ state: U, details: U, stateTime: xdr.uhyper })),
  DOMAIN_IS_ACTIVE: proc('DOMAIN_IS_ACTIVE', 150, domOnly, xdr.struct({ active: I })),
  DOMAIN_IS_PERSISTENT: proc('DOMAIN_IS_PERSISTENT', 151, domOnly, xdr.struct({ persistent: I })),
  DOMAIN_GET_AUTOSTART: proc('DOMAIN_GET_AUTOSTART', 15, domOnly, xdr.struct({ autostart: I })),

  // --- storage (read-only look-ups for the storage pre-flight, plus a pool refresh) -----------
  CONNECT_LIST_ALL_STORAGE_POOLS: proc('CONNECT_LIST_ALL_STORAGE_POOLS', 281, xdr.struct({ need_results: I, flags: U }),
    xdr.struct({ pools: xdr.array(nonnullStoragePool, STORAGE_POOL_LIST_MAX), ret: U })),
  STORAGE_POOL_LOOKUP_BY_NAME: proc('STORAGE_POOL_LOOKUP_BY_NAME', 84, xdr.struct({ name: nonnullString }), xdr.struct({ pool: nonnullStoragePool })),
  STORAGE_POOL_REFRESH: proc('STORAGE_POOL_REFRESH', 83, xdr.struct({ pool: nonnullStoragePool, flags: U }), V),
  STORAGE_POOL_GET_INFO: proc('STORAGE_POOL_GET_INFO', 87, xdr.struct({ pool: nonnullStoragePool }), xdr.struct({
    state: U, // "unsigned char": 4 bytes on the wire
    capacity: xdr.uhyper,
    allocation: xdr.uhyper,
    available: xdr.uhyper,
  })),
  STORAGE_POOL_GET_XML_DESC: proc('STORAGE_POOL_GET_XML_DESC', 88, xdr.struct({ pool: nonnullStoragePool, flags: U }), xdr.struct({ xml: nonnullString })),
  STORAGE_VOL_LOOKUP_BY_NAME: proc('STORAGE_VOL_LOOKUP_BY_NAME', 95, xdr.struct({ pool: nonnullStoragePool, name: nonnullString }),
    xdr.struct({ vol: nonnullStorageVol })),
  STORAGE_VOL_LOOKUP_BY_PATH: proc('STORAGE_VOL_LOOKUP_BY_PATH', 97, xdr.struct({ path: nonnullString }), xdr.struct({ vol: nonnullStorageVol })),
  STORAGE_VOL_GET_XML_DESC: proc('STORAGE_VOL_GET_XML_DESC', 99, xdr.struct({ vol: nonnullStorageVol, flags: U }), xdr.struct({ xml: nonnullString })),

  // --- stats ----------------------------------------------------------------------------------
  CONNECT_GET_ALL_DOMAIN_STATS: proc('CONNECT_GET_ALL_DOMAIN_STATS', 344, xdr.struct({
    doms: xdr.array(nonnullDomain, DOMAIN_LIST_MAX),
    stats: U,
    flags: U,
  }), xdr.struct({
    retStats: xdr.array(xdr.struct({ dom: nonnullDomain, params: typedParams(GET_ALL_DOMAIN_STATS_MAX) }), DOMAIN_LIST_MAX),
  })),
  NODE_GET_CPU_STATS: proc('NODE_GET_CPU_STATS', 227, xdr.struct({ cpuNum: I, nparams: I, flags: U }), xdr.struct({
    params: xdr.array(xdr.struct({ field: nonnullString, value: xdr.uhyper }), NODE_CPU_STATS_MAX),
    nparams: I,
  })),
  NODE_GET_MEMORY_STATS: proc('NODE_GET_MEMORY_STATS', 228, xdr.struct({ nparams: I, cellNum: I, flags: U }), xdr.struct({
    params: xdr.array(xdr.struct({ field: nonnullString, value: xdr.uhyper }), NODE_MEMORY_STATS_MAX),
    nparams: I,
  })),
  NODE_GET_FREE_MEMORY: proc('NODE_GET_FREE_MEMORY', 102, V, xdr.struct({ freeMem: xdr.uhyper })),
  NODE_GET_CELLS_FREE_MEMORY: proc('NODE_GET_CELLS_FREE_MEMORY', 101, xdr.struct({ startCell: I, maxcells: I }),
    xdr.struct({ cells: xdr.array(xdr.uhyper, 1024) })),

  // --- migration and jobs ---------------------------------------------------------------------
  DOMAIN_MIGRATE_PERFORM3_PARAMS: proc('DOMAIN_MIGRATE_PERFORM3_PARAMS', 305, xdr.struct({
    dom: nonnullDomain,
    dconnuri: optString,
    params: typedParams(MIGRATE_PARAM_LIST_MAX),
    cookie_in: xdr.opaque(MIGRATE_COOKIE_MAX),
    flags: U,
  }), xdr.struct({ cookie_out: xdr.opaque(MIGRATE_COOKIE_MAX) })),
  DOMAIN_GET_JOB_INFO: proc('DOMAIN_GET_JOB_INFO', 163, domOnly, xdr.struct({
    type: I,
    timeElapsed: xdr.uhyper,
    timeRemaining: xdr.uhyper,
    dataTotal: xdr.uhyper,
    dataProcessed: xdr.uhyper,
    dataRemaining: xdr.uhyper,
    memTotal: xdr.uhyper,
    memProcessed: xdr.uhyper,
    memRemaining: xdr.uhyper,
    fileTotal: xdr.uhyper,
    fileProcessed: xdr.uhyper,
    fileRemaining: xdr.uhyper,
  })),
  DOMAIN_GET_JOB_STATS: proc('DOMAIN_GET_JOB_STATS', 298, domFlags, xdr.struct({ type: I, params: typedParams(JOB_STATS_MAX) })),
  DOMAIN_ABORT_JOB: proc('DOMAIN_ABORT_JOB', 164, domOnly, V),
  DOMAIN_ABORT_JOB_FLAGS: proc('DOMAIN_ABORT_JOB_FLAGS', 442, domFlags, V),
  DOMAIN_MIGRATE_START_POST_COPY: proc('DOMAIN_MIGRATE_START_POST_COPY', 364, domFlags, V),
  DOMAIN_MIGRATE_SET_MAX_DOWNTIME: proc('DOMAIN_MIGRATE_SET_MAX_DOWNTIME', 166,
    xdr.struct({ dom: nonnullDomain, downtime: xdr.uhyper, flags: U }), V),
  DOMAIN_MIGRATE_GET_MAX_DOWNTIME: proc('DOMAIN_MIGRATE_GET_MAX_DOWNTIME', 387, domFlags, xdr.struct({ downtime: xdr.uhyper })),
  DOMAIN_MIGRATE_SET_MAX_SPEED: proc('DOMAIN_MIGRATE_SET_MAX_SPEED', 207,
    xdr.struct({ dom: nonnullDomain, bandwidth: xdr.uhyper, flags: U }), V),
  DOMAIN_MIGRATE_GET_MAX_SPEED: proc('DOMAIN_MIGRATE_GET_MAX_SPEED', 242, domFlags, xdr.struct({ bandwidth: xdr.uhyper })),

  // --- lifecycle ------------------------------------------------------------------------------
  DOMAIN_CREATE_XML: proc('DOMAIN_CREATE_XML', 10, xdr.struct({ xml_desc: nonnullString, flags: U }), domRet),
  DOMAIN_CREATE_WITH_FLAGS: proc('DOMAIN_CREATE_WITH_FLAGS', 196, domFlags, domRet),
  DOMAIN_SHUTDOWN_FLAGS: proc('DOMAIN_SHUTDOWN_FLAGS', 258, domFlags, V),
  DOMAIN_DESTROY_FLAGS: proc('DOMAIN_DESTROY_FLAGS', 234, domFlags, V),
  DOMAIN_SUSPEND: proc('DOMAIN_SUSPEND', 34, domOnly, V),
  DOMAIN_RESUME: proc('DOMAIN_RESUME', 28, domOnly, V),
  DOMAIN_SAVE_FLAGS: proc('DOMAIN_SAVE_FLAGS', 232,
    xdr.struct({ dom: nonnullDomain, to: nonnullString, dxml: optString, flags: U }), V),
  DOMAIN_RESTORE_FLAGS: proc('DOMAIN_RESTORE_FLAGS', 233, xdr.struct({ from: nonnullString, dxml: optString, flags: U }), V),
  DOMAIN_DEFINE_XML_FLAGS: proc('DOMAIN_DEFINE_XML_FLAGS', 350, xdr.struct({ xml: nonnullString, flags: U }), domRet),
  DOMAIN_UNDEFINE_FLAGS: proc('DOMAIN_UNDEFINE_FLAGS', 231, domFlags, V),
  DOMAIN_SET_AUTOSTART: proc('DOMAIN_SET_AUTOSTART', 29, xdr.struct({ dom: nonnullDomain, autostart: I }), V),

  // --- events ---------------------------------------------------------------------------------
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: proc('CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY', 316,
    xdr.struct({ eventID: I, dom: optDomain }), xdr.struct({ callbackID: I })),
  CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: proc('CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY', 317,
    xdr.struct({ callbackID: I }), V),
} as const;

export type ProcName = keyof typeof procs;
export type ProcArgs<P extends ProcName> = (typeof procs)[P] extends ProcDef<infer A, unknown> ? A : never;
export type ProcRet<P extends ProcName> = (typeof procs)[P] extends ProcDef<unknown, infer R> ? R : never;

// ---------------------------------------------------------------------------------------------
// Event messages (MESSAGE packets of REMOTE_PROGRAM; every one starts with the callbackID)
// ---------------------------------------------------------------------------------------------

const cb = { callbackID: I };
export const eventMsgs = {
  /** 318 remote_domain_event_callback_lifecycle_msg */
  LIFECYCLE: { proc: 318, codec: xdr.struct({ ...cb, msg: xdr.struct({ dom: nonnullDomain, event: I, detail: I }) }) },
  REBOOT: { proc: 319, codec: xdr.struct({ ...cb, msg: xdr.struct({ dom: nonnullDomain }) }) },
  RTC_CHANGE: { proc: 320, codec: xdr.struct({ ...cb, msg: xdr.struct({ dom: nonnullDomain, offset: xdr.hyper }) }) },
  WATCHDOG: { proc: 321, codec: xdr.struct({ ...cb, msg: xdr.struct({ dom: nonnullDomain, action: I }) }) },
  IO_ERROR: { proc: 322, codec: xdr.struct({ ...cb, msg: xdr.struct({ dom: nonnullDomain, srcPath: nonnullString, devAlias: nonnullString, action: I }) }) },
  IO_ERROR_REASON: { proc: 324, codec: xdr.struct({ ...cb, msg: xdr.struct({ dom: nonnullDomain, srcPath: nonnullString, devAlias: nonnullString, action: I, reason: nonnullString }) }) },
  CONTROL_ERROR: { proc: 325, codec: xdr.struct({ ...cb, msg: xdr.struct({ dom: nonnullDomain }) }) },
  BLOCK_JOB: { proc: 326, codec: xdr.struct({ ...cb, msg: xdr.struct({ dom: nonnullDomain, path: nonnullString, type: I, status: I }) }) },
  BALLOON_CHANGE: { proc: 331, codec: xdr.struct({ ...cb, msg: xdr.struct({ dom: nonnullDomain, actual: xdr.uhyper }) }) },
  DEVICE_REMOVED: { proc: 333, codec: xdr.struct({ ...cb, msg: xdr.struct({ dom: nonnullDomain, devAlias: nonnullString }) }) },
  BLOCK_JOB_2: { proc: 339, codec: xdr.struct({ ...cb, dom: nonnullDomain, dst: nonnullString, type: I, status: I }) },
  TUNABLE: { proc: 346, codec: xdr.struct({ ...cb, dom: nonnullDomain, params: typedParams(TYPED_PARAMS_MAX) }) },
  AGENT_LIFECYCLE: { proc: 348, codec: xdr.struct({ ...cb, dom: nonnullDomain, state: I, reason: I }) },
  DEVICE_ADDED: { proc: 354, codec: xdr.struct({ ...cb, dom: nonnullDomain, devAlias: nonnullString }) },
  MIGRATION_ITERATION: { proc: 359, codec: xdr.struct({ ...cb, dom: nonnullDomain, iteration: I }) },
  JOB_COMPLETED: { proc: 363, codec: xdr.struct({ ...cb, dom: nonnullDomain, params: typedParams(JOB_STATS_MAX) }) },
  DEVICE_REMOVAL_FAILED: { proc: 367, codec: xdr.struct({ ...cb, dom: nonnullDomain, devAlias: nonnullString }) },
  METADATA_CHANGE: { proc: 379, codec: xdr.struct({ ...cb, dom: nonnullDomain, type: I, nsuri: optString }) },
  BLOCK_THRESHOLD: { proc: 385, codec: xdr.struct({ ...cb, dom: nonnullDomain, dev: nonnullString, path: optString, threshold: xdr.uhyper, excess: xdr.uhyper }) },
} as const;

/** VIR_DOMAIN_EVENT_ID_* -> the MESSAGE procedure that carries it (callback flavour). */
export const EVENT_PROC_BY_ID: Readonly<Record<number, number>> = {
  0: 318, 1: 319, 2: 320, 3: 321, 4: 322, 5: 323, 6: 324, 7: 325, 8: 326, 9: 327, 10: 328, 11: 329,
  12: 330, 13: 331, 14: 332, 15: 333, 16: 339, 17: 346, 18: 348, 19: 354, 20: 359, 21: 363, 22: 367,
  23: 379, 24: 385, 25: 423, 26: 438,
};

/** libvirt's internal VIR_DRV_FEATURE_PROGRAM_KEEPALIVE, asked via CONNECT_SUPPORTS_FEATURE. */
export const VIR_DRV_FEATURE_PROGRAM_KEEPALIVE = 10;
/** remote_auth_type */
export const RemoteAuthType = { NONE: 0, SASL: 1, POLKIT: 2 } as const;
