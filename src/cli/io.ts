/**
 * What a CLI command may touch besides its arguments. Commands write through this, never to
 * process.stdout directly, so e2e tests can run them in-process and capture the output.
 */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** True when stderr is a terminal: progress bars are drawn only then. */
  readonly isTty: boolean;
  /** True when stdout is a terminal (absent: not one), e.g. `tide demo` paces itself only then. */
  readonly outIsTty?: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

export const processIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  isTty: Boolean(process.stderr.isTTY),
  outIsTty: Boolean(process.stdout.isTTY),
  env: process.env,
  cwd: process.cwd(),
};

import { INPUT_ERROR_CODES } from '../input/errors.js';

/** A bad command line: printed as `tide: <message>` with exit status 2. */
export class UsageError extends Error {
  readonly code = 'TIDE_USAGE';
}

/**
 * Exit statuses of the CLI (README, "Exit codes"): 0 ok, 1 the operation failed (a host did not
 * answer, a migration failed: handled, reported), 2 usage or input error (the command line,
 * the config file, a trace, a policy spec), 70 internal error (a bug; EX_SOFTWARE).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, internal: 70 } as const;

export type ErrorClass = { status: 1 | 2 | 70; code: string | null };

/**
 * How the CLI reports an exception: input codes (src/input/errors.ts) → 2; other TIDE_* codes
 * (drivers, libvirt, lab) and operating-system I/O errors → 1; anything else is a bug → 70.
 */
export function classifyError(e: unknown): ErrorClass {
  const err = e as { code?: unknown; tideCode?: unknown; syscall?: unknown } | null;
  const code = typeof err?.tideCode === 'string' ? err.tideCode : typeof err?.code === 'string' ? err.code : null;
  if (e instanceof UsageError || (code !== null && INPUT_ERROR_CODES.has(code))) return { status: 2, code };
  if (code !== null && code.startsWith('TIDE_')) return { status: 1, code };
  // Node's system errors (EACCES, ENOSPC, ECONNREFUSED…) are I/O that failed, not bugs.
  if (e instanceof Error && typeof err?.syscall === 'string' && code !== null) return { status: 1, code };
  return { status: 70, code };
}

export interface Command {
  readonly summary: string;
  readonly usage: string;
  run(argv: string[], io: CliIo): Promise<number>;
}
