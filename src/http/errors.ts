/**
 * The one place where a Tide error becomes an HTTP answer: `{ error: { code, message } }` with
 * the stable Tide code (src/drivers/errors.ts, src/input/errors.ts, and the API's own below)
 * and a status derived from it. Never a stack trace: an error that is not a Tide error (a bug)
 * is answered 500 TIDE_INTERNAL with a fixed message, and logged by the caller.
 */
import { classifyError } from '../cli/io.js';

/** Codes the HTTP layer itself raises. */
export type HttpErrorCode =
  | 'TIDE_UNAUTHENTICATED' | 'TIDE_FORBIDDEN' | 'TIDE_RATE_LIMITED' | 'TIDE_BODY_TOO_LARGE'
  | 'TIDE_NOT_FOUND' | 'TIDE_NO_HOST_FITS' | 'TIDE_NO_MIGRATION' | 'TIDE_METHOD_NOT_ALLOWED' | 'TIDE_BAD_REQUEST' | 'TIDE_UNSUPPORTED_MEDIA_TYPE' | 'TIDE_INTERNAL';

/** An expected refusal of the HTTP layer, with its code (status from httpStatusOf). */
export class HttpError extends Error {
  constructor(readonly code: HttpErrorCode, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

const BY_CODE: Readonly<Record<string, number>> = {
  TIDE_UNAUTHENTICATED: 401,
  TIDE_FORBIDDEN: 403,
  TIDE_NOT_FOUND: 404,
  TIDE_NO_SUCH_PLAN: 404,
  TIDE_NO_SUCH_HOST: 404,
  TIDE_NO_SUCH_VM: 404,
  TIDE_METHOD_NOT_ALLOWED: 405,
  TIDE_PLAN_STATE: 409,
  TIDE_NO_HOST_FITS: 409,
  TIDE_NO_MIGRATION: 409,
  TIDE_LOCKED: 409,
  TIDE_FENCED: 409,
  TIDE_NOT_LEADER: 503,
  TIDE_STORE_UNAVAILABLE: 503,
  TIDE_VM_STATE: 409,
  TIDE_STALE_PLAN: 409,
  TIDE_POWER_REFUSED: 409,
  TIDE_BODY_TOO_LARGE: 413,
  TIDE_UNSUPPORTED_MEDIA_TYPE: 415,
  TIDE_BAD_REQUEST: 400,
  TIDE_RATE_LIMITED: 429,
  TIDE_UNSUPPORTED: 501,
  TIDE_HOST_UNREACHABLE: 502,
  TIDE_TIMEOUT: 504,
  TIDE_INTERNAL: 500,
};

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

/** Status and JSON body for any thrown value. */
export function httpErrorOf(e: unknown): { status: number; body: ErrorBody } {
  const { status: cli, code } = classifyError(e);
  if (e instanceof HttpError || (code !== null && code in BY_CODE)) {
    return { status: BY_CODE[code!] ?? 400, body: { error: { code: code!, message: (e as Error).message } } };
  }
  // Input errors (bad policy spec, bad argument) → 400; other Tide codes: the operation failed
  // against the cluster → 502; anything else is a bug → 500 without details.
  if (cli === 2) return { status: 400, body: { error: { code: code ?? 'TIDE_BAD_REQUEST', message: (e as Error).message } } };
  if (cli === 1 && code?.startsWith('TIDE_')) return { status: 502, body: { error: { code, message: (e as Error).message } } };
  return { status: 500, body: { error: { code: 'TIDE_INTERNAL', message: 'internal error (logged by the daemon)' } } };
}

/** The status a code maps to (documentation, tests). */
export function httpStatusOfCode(code: string): number | undefined {
  return BY_CODE[code];
}
