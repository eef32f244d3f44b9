import { classifyError, EXIT, processIo, type CliIo } from './io.js';
import { commands } from './commands/index.js';

function help(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: tide [--config FILE] <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun \`tide <command> --help\` for a command's options.\n`;
}

/**
 * Prints an exception the way its class asks (see classifyError) and returns the exit status.
 * Only an internal error mentions a bug; its stack is printed only with TIDE_DEBUG=1, so no
 * other output ever holds stack frames.
 */
export function reportError(e: unknown, who: string, io: CliIo): number {
  const { status, code } = classifyError(e);
  const message = e instanceof Error ? e.message : String(e);
  if (status === EXIT.internal) {
    io.err(`${who}: internal error: ${message}\nThis is a bug in Tide. Please report it on the project's issue tracker with the command line${io.env.TIDE_DEBUG ? ' and this stack' : '; run again with TIDE_DEBUG=1 for the stack'}.\n`);
    if (io.env.TIDE_DEBUG && e instanceof Error && e.stack) io.err(`${e.stack}\n`);
    return status;
  }
  io.err(`${who}: ${message}${code && code !== 'TIDE_USAGE' ? ` [${code}]` : ''}\n`);
  return status;
}

/** Entry point shared by bin/tide.js and the e2e tests. Returns the exit status (see EXIT). */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  // A global --config FILE may come before the command; it is passed on to the command.
  const rest = [...argv];
  const globalArgs: string[] = [];
  while (rest[0] === '--config' || rest[0]?.startsWith('--config=')) {
    const flag = rest.shift()!;
    if (flag === '--config') {
      const file = rest.shift();
      if (file === undefined) { io.err('tide: --config needs a file\n'); return EXIT.usage; }
      globalArgs.push('--config', file);
    } else globalArgs.push(flag);
  }
  const name = rest.shift();
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(help());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const entry = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!entry) {
    io.err(`tide: unknown command '${name}'\n\n${help()}`);
    return EXIT.usage;
  }
  try {
    const command = await entry.load();
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(`usage: ${command.usage}\n`);
      return EXIT.ok;
    }
    const status = await command.run([...globalArgs, ...rest], io);
    return status;
  } catch (e) {
    return reportError(e, `tide ${name}`, io);
  }
}

/**
 * For bin/tide.js: an exception that escapes every await (an emitter or timer callback) is still
 * reported as an internal error with status 70, never as a bare stack trace with status 1.
 */
export function installProcessHandlers(io: CliIo = processIo): void {
  const crash = (e: unknown): void => {
    process.exitCode = reportError(e, 'tide', io);
    process.exit();
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  // The reader went away (`tide … | head`): nothing more can be shown, which is not a bug.
  // Stop quietly with the status so far instead of an unhandled EPIPE stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
      crash(e);
    });
  }
}
