/**
 * Errors of the libvirt RPC client.
 *
 * Every failure surfaces as a `LibvirtError`. Errors the daemon sent (`remote_error`) keep
 * libvirt's numeric `code` (VIR_ERR_*), `domain` (VIR_FROM_*), `level` and message; errors raised
 * locally (connection lost, timeout, protocol violation) have `origin: 'local'` and code -1.
 * `tideCode` is a stable string chosen from ONE table (`TIDE_CODE_BY_VIR_ERR` below), so callers
 * never switch on libvirt's numbers. The strings match Tide's DriverErrorCode values; this module
 * stays standalone, so the union is restated here.
 */

export type LibvirtTideCode =
  | 'TIDE_NO_SUCH_VM'
  | 'TIDE_HOST_UNREACHABLE'
  | 'TIDE_PREFLIGHT_FAILED'
  | 'TIDE_MIGRATION_FAILED'
  | 'TIDE_ABORTED'
  | 'TIDE_TIMEOUT'
  | 'TIDE_UNSUPPORTED'
  | 'TIDE_INVALID_ARGUMENT'
  | 'TIDE_VM_STATE'
  /** Any libvirt error without a more specific meaning (VIR_ERR_INTERNAL_ERROR, ...). */
  | 'TIDE_LIBVIRT_ERROR';

/** libvirt error codes (virterror.h, `virErrorNumber`) the client refers to by name. */
export const VIR_ERR = {
  OK: 0,
  INTERNAL_ERROR: 1,
  NO_MEMORY: 2,
  NO_SUPPORT: 3,
  UNKNOWN_HOST: 4,
  NO_CONNECT: 5,
  INVALID_CONN: 6,
  INVALID_DOMAIN: 7,
  INVALID_ARG: 8,
  OPERATION_FAILED: 9,
  XML_ERROR: 27,
  DOM_EXIST: 28,
  OPERATION_DENIED: 29,
  OPEN_FAILED: 30,
  XML_DETAIL: 35,
  SYSTEM_ERROR: 38,
  RPC: 39,
  GNUTLS_ERROR: 40,
  NO_DOMAIN: 42,
  AUTH_FAILED: 45,
  NO_STORAGE_POOL: 49,
  NO_STORAGE_VOL: 50,
  OPERATION_INVALID: 55,
  CONFIG_UNSUPPORTED: 67,
  OPERATION_TIMEOUT: 68,
  MIGRATE_PERSIST_FAILED: 69,
  ARGUMENT_UNSUPPORTED: 74,
  OPERATION_ABORTED: 78,
  AUTH_CANCELLED: 79,
  MIGRATE_UNSAFE: 81,
  OPERATION_UNSUPPORTED: 84,
  AGENT_UNRESPONSIVE: 86,
  RESOURCE_BUSY: 87,
  ACCESS_DENIED: 88,
  CPU_INCOMPATIBLE: 91,
  XML_INVALID_SCHEMA: 92,
  MIGRATE_FINISH_OK: 93,
  AUTH_UNAVAILABLE: 94,
  NO_SERVER: 95,
  NO_CLIENT: 96,
  AGENT_UNSYNCED: 97,
  DEVICE_MISSING: 99,
  NO_HOSTNAME: 108,
  MULTIPLE_DOMAINS: 110,
} as const;

/** libvirt error domains (virterror.h, `virErrorDomain`), the ones useful in messages. */
export const VIR_FROM = {
  NONE: 0,
  RPC: 7,
  QEMU: 10,
  TEST: 12,
  REMOTE: 13,
  DOMAIN: 20,
  CPU: 31,
} as const;

/** libvirt error levels (`virErrorLevel`). */
export const VIR_ERR_LEVEL = { NONE: 0, WARNING: 1, ERROR: 2 } as const;

/**
 * THE table: libvirt error code -> Tide code. Codes not listed map to TIDE_LIBVIRT_ERROR.
 * Message-based refinements (e.g. "unknown procedure") live in `tideCodeFor` right below.
 */
export const TIDE_CODE_BY_VIR_ERR: Readonly<Record<number, LibvirtTideCode>> = {
  [VIR_ERR.NO_DOMAIN]: 'TIDE_NO_SUCH_VM',
  [VIR_ERR.INVALID_DOMAIN]: 'TIDE_NO_SUCH_VM',
  [VIR_ERR.OPERATION_INVALID]: 'TIDE_VM_STATE',
  [VIR_ERR.RESOURCE_BUSY]: 'TIDE_VM_STATE',
  [VIR_ERR.NO_SUPPORT]: 'TIDE_UNSUPPORTED',
  [VIR_ERR.OPERATION_UNSUPPORTED]: 'TIDE_UNSUPPORTED',
  [VIR_ERR.ARGUMENT_UNSUPPORTED]: 'TIDE_UNSUPPORTED',
  [VIR_ERR.CONFIG_UNSUPPORTED]: 'TIDE_UNSUPPORTED',
  [VIR_ERR.INVALID_ARG]: 'TIDE_INVALID_ARGUMENT',
  [VIR_ERR.XML_ERROR]: 'TIDE_INVALID_ARGUMENT',
  [VIR_ERR.XML_DETAIL]: 'TIDE_INVALID_ARGUMENT',
  [VIR_ERR.XML_INVALID_SCHEMA]: 'TIDE_INVALID_ARGUMENT',
  [VIR_ERR.DOM_EXIST]: 'TIDE_INVALID_ARGUMENT',
  [VIR_ERR.MULTIPLE_DOMAINS]: 'TIDE_INVALID_ARGUMENT',
  [VIR_ERR.OPERATION_TIMEOUT]: 'TIDE_TIMEOUT',
  [VIR_ERR.AGENT_UNRESPONSIVE]: 'TIDE_TIMEOUT',
  [VIR_ERR.OPERATION_ABORTED]: 'TIDE_ABORTED',
  [VIR_ERR.AUTH_CANCELLED]: 'TIDE_ABORTED',
  [VIR_ERR.MIGRATE_UNSAFE]: 'TIDE_PREFLIGHT_FAILED',
  [VIR_ERR.CPU_INCOMPATIBLE]: 'TIDE_PREFLIGHT_FAILED',
  [VIR_ERR.MIGRATE_PERSIST_FAILED]: 'TIDE_MIGRATION_FAILED',
  [VIR_ERR.NO_CONNECT]: 'TIDE_HOST_UNREACHABLE',
  [VIR_ERR.INVALID_CONN]: 'TIDE_HOST_UNREACHABLE',
  [VIR_ERR.UNKNOWN_HOST]: 'TIDE_HOST_UNREACHABLE',
  [VIR_ERR.AUTH_FAILED]: 'TIDE_HOST_UNREACHABLE',
  [VIR_ERR.AUTH_UNAVAILABLE]: 'TIDE_HOST_UNREACHABLE',
  // OPERATION_DENIED (read-only connection) and ACCESS_DENIED (ACL/polkit) stay TIDE_LIBVIRT_ERROR:
  // the host is reachable, the caller lacks a permission.
};

/** Tide code for a daemon-reported error (code + message). */
export function tideCodeFor(code: number, message: string): LibvirtTideCode {
  // Older daemons answer procedures they do not know with VIR_ERR_RPC "unknown procedure: N".
  if (code === VIR_ERR.RPC && /unknown procedure/i.test(message)) return 'TIDE_UNSUPPORTED';
  return TIDE_CODE_BY_VIR_ERR[code] ?? 'TIDE_LIBVIRT_ERROR';
}

export interface LibvirtErrorInit {
  tideCode: LibvirtTideCode;
  message: string;
  /** VIR_ERR_* code; -1 for local errors. */
  code?: number;
  /** VIR_FROM_* domain; -1 for local errors. */
  domain?: number;
  level?: number;
  origin?: 'remote' | 'local';
  /** Procedure name/number the error belongs to, when known. */
  procedure?: string;
  str1?: string | null;
  str2?: string | null;
  str3?: string | null;
  int1?: number;
  int2?: number;
  cause?: unknown;
}

export class LibvirtError extends Error {
  readonly tideCode: LibvirtTideCode;
  readonly code: number;
  readonly domain: number;
  readonly level: number;
  readonly origin: 'remote' | 'local';
  readonly procedure: string | undefined;
  readonly str1: string | null;
  readonly str2: string | null;
  readonly str3: string | null;
  readonly int1: number;
  readonly int2: number;

  constructor(init: LibvirtErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'LibvirtError';
    this.tideCode = init.tideCode;
    this.code = init.code ?? -1;
    this.domain = init.domain ?? -1;
    this.level = init.level ?? VIR_ERR_LEVEL.ERROR;
    this.origin = init.origin ?? 'local';
    this.procedure = init.procedure;
    this.str1 = init.str1 ?? null;
    this.str2 = init.str2 ?? null;
    this.str3 = init.str3 ?? null;
    this.int1 = init.int1 ?? 0;
    this.int2 = init.int2 ?? 0;
  }

  /** Same error with another Tide code (a caller that knows the context, e.g. migration). */
  withTideCode(tideCode: LibvirtTideCode): LibvirtError {
    return new LibvirtError({ ...this.toInit(), tideCode, cause: this.cause });
  }

  private toInit(): LibvirtErrorInit {
    return {
      tideCode: this.tideCode,
      message: this.message,
      code: this.code,
      domain: this.domain,
      level: this.level,
      origin: this.origin,
      procedure: this.procedure,
      str1: this.str1,
      str2: this.str2,
      str3: this.str3,
      int1: this.int1,
      int2: this.int2,
    };
  }
}

/** Local error helpers (no daemon involved). */
export const localError = {
  unreachable: (message: string, cause?: unknown, procedure?: string): LibvirtError =>
    new LibvirtError({ tideCode: 'TIDE_HOST_UNREACHABLE', message, cause, procedure }),
  timeout: (message: string, procedure?: string): LibvirtError =>
    new LibvirtError({ tideCode: 'TIDE_TIMEOUT', message, procedure }),
  protocol: (message: string, cause?: unknown, procedure?: string): LibvirtError =>
    new LibvirtError({ tideCode: 'TIDE_LIBVIRT_ERROR', message: `libvirt protocol error: ${message}`, cause, procedure }),
  invalid: (message: string): LibvirtError => new LibvirtError({ tideCode: 'TIDE_INVALID_ARGUMENT', message }),
  unsupported: (message: string): LibvirtError => new LibvirtError({ tideCode: 'TIDE_UNSUPPORTED', message }),
  aborted: (message: string, procedure?: string): LibvirtError =>
    new LibvirtError({ tideCode: 'TIDE_ABORTED', message, procedure }),
};
