/**
 * Process spawning for the lab. Always argv arrays, never shell strings: arguments reach the
 * program exactly as given.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

/** A lab operation failed. The CLI prints `code`-tagged errors without a stack trace. */
export class LabError extends Error {
  readonly code = 'TIDE_LAB';
}

export interface RunOptions {
  /** Written to stdin, then stdin is closed. Without it stdin is /dev/null. */
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill (SIGKILL) after this many ms; the result then has `timedOut: true`. Default 60 s. */
  timeoutMs?: number;
  /** Keep stdout as bytes (for binary output such as a decompressed kernel). */
  binary?: boolean;
}

export interface RunResult {
  argv: readonly string[];
  /** Exit status; null when killed by a signal. Spawn failures (ENOENT…) give 127. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
  timedOut: boolean;
  /** Wall time in ms. */
  ms: number;
}

export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new LabError('run: empty argv');
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: Error | undefined;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs ?? 60_000);
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => { spawnError = e; });
    if (opts.input !== undefined) {
      child.stdin?.on('error', () => { /* the program may exit before reading all input */ });
      child.stdin?.end(opts.input);
    }
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({
        argv,
        code: spawnError ? 127 : code,
        signal,
        stdoutBytes,
        stdout: opts.binary ? '' : stdoutBytes.toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (spawnError ? String(spawnError.message) : ''),
        timedOut,
        ms: performance.now() - t0,
      });
    });
  });
}

export function describeFailure(r: RunResult): string {
  const why = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  const msg = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-6).join('\n');
  return `\`${r.argv.join(' ')}\` failed (${why})${msg ? `: ${msg}` : ''}`;
}

/** run() that throws a LabError unless the program exits 0. Returns stdout. */
export async function runOk(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new LabError(describeFailure(r));
  return r.stdout;
}

/**
 * Starts a long-lived process in its own session (setsid), stdout+stderr appended to
 * `logFile`, stdin /dev/null, and does not keep the Node event loop alive. Returns its PID.
 * The process outlives the caller (it is re-parented to the nearest subreaper / PID 1).
 */
export function spawnDetached(argv: readonly string[], logFile: string, env: NodeJS.ProcessEnv = process.env): number {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new LabError('spawnDetached: empty argv');
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env });
    if (child.pid === undefined) throw new LabError(`cannot start ${cmd}`);
    child.on('error', () => { /* reported through the missing pid / health checks */ });
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Environment for libvirt clients: C locale so messages are stable for parsing. */
export function cEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', LANG: 'C', ...extra };
  delete env.LIBVIRT_DEFAULT_URI;
  return env;
}
