import { processIo, UsageError, type CliIo } from './io.js';
import { commands } from './commands/index.js';

function help(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: tide [--config FILE] <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun \`tide <command> --help\` for a command's options.\n`;
}

/** Entry point shared by bin/tide.js and the e2e tests. Returns the exit status. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  // A global --config FILE may come before the command; it is passed on to the command.
  const rest = [...argv];
  const globalArgs: string[] = [];
  while (rest[0] === '--config' || rest[0]?.startsWith('--config=')) {
    const flag = rest.shift()!;
    if (flag === '--config') {
      const file = rest.shift();
      if (file === undefined) { io.err('tide: --config needs a file\n'); return 2; }
      globalArgs.push('--config', file);
    } else globalArgs.push(flag);
  }
  const name = rest.shift();
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(help());
    return name === undefined ? 2 : 0;
  }
  const entry = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!entry) {
    io.err(`tide: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`usage: ${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run([...globalArgs, ...rest], io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`tide ${name}: ${e.message}\n`);
      return 2;
    }
    const err = e as Error & { code?: string };
    if (typeof err.code === 'string' && err.code.startsWith('TIDE_')) {
      io.err(`tide ${name}: ${err.message} [${err.code}]\n`);
      return 1;
    }
    throw e;
  }
}
