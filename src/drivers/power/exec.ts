/**
 * What the power drivers share: running a tool from an argv array (never a shell string) with a
 * bound on its run time, a TCP reachability probe, and redaction of a secret from text that may
 * reach a log or an error message.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';

export interface RunResult {
  /** Exit code, or null when killed (timeout) or not started. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The run exceeded its bound and was SIGKILLed. */
  readonly timedOut: boolean;
  /** The program could not be started (e.g. ENOENT). */
  readonly spawnError?: NodeJS.ErrnoException;
}

/** Output kept per stream, bytes: a tool that floods its output cannot grow our memory. */
const MAX_OUTPUT = 64 * 1024;

/**
 * Runs argv[0] with argv[1..] (no shell), LC_ALL=C so messages parse the same everywhere.
 * `env` is added to this process's environment: the only way a secret reaches a child.
 */
export function runArgv(argv: readonly string[], opts: { timeoutMs: number; env?: Readonly<Record<string, string>> }): Promise<RunResult> {
  return new Promise((resolve) => {
    const [bin, ...args] = argv;
    const child = spawn(bin!, args, { env: { ...process.env, ...opts.env, LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    child.stdout.on('data', (b: Buffer) => { if (stdout.length < MAX_OUTPUT) stdout += b.toString('utf8'); });
    child.stderr.on('data', (b: Buffer) => { if (stderr.length < MAX_OUTPUT) stderr += b.toString('utf8'); });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (e) => { spawnError = e; });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: spawnError ? null : code, stdout, stderr, timedOut, ...(spawnError ? { spawnError } : {}) });
    });
  });
}

/**
 * TCP reachability of address:port: 'open' (connected: the host runs), 'refused' (an IP stack
 * answered with RST: the machine is up but the service is not — or it is shutting down),
 * 'silent' (no answer within timeoutMs, or no route: the host is off or cut off), 'unresolved'.
 */
export type Reach = 'open' | 'refused' | 'silent' | 'unresolved';

export function tcpReach(address: string, port: number, timeoutMs: number): Promise<Reach> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: address, port });
    const done = (r: Reach): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done('silent'), timeoutMs);
    sock.once('connect', () => done('open'));
    sock.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') done('refused');
      else if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') done('unresolved');
      else done('silent');
    });
  });
}

/** `text` with every occurrence of `secret` replaced (defence in depth: tools may echo input). */
export function redact(text: string, secret: string | undefined): string {
  return secret ? text.split(secret).join('***') : text;
}

/** The last few non-empty lines of a tool's output, for an error message. */
export function tail(text: string, lines = 3): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '').slice(-lines).join(' | ');
}
