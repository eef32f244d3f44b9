/**
 * What a CLI command may touch besides its arguments. Commands write through this, never to
 * process.stdout directly, so e2e tests can run them in-process and capture the output.
 */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** True when stderr is a terminal: progress bars are drawn only then. */
  readonly isTty: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

export const processIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  isTty: Boolean(process.stderr.isTTY),
  env: process.env,
  cwd: process.cwd(),
};

/** A bad command line: printed as `tide: <message>` with exit status 2. */
export class UsageError extends Error {
  readonly code = 'TIDE_USAGE';
}

export interface Command {
  readonly summary: string;
  readonly usage: string;
  run(argv: string[], io: CliIo): Promise<number>;
}
