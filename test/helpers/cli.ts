import { main } from '../../src/cli/main.js';
import type { CliIo } from '../../src/cli/io.js';

/** Runs the CLI in-process and captures what it prints. */
export async function runCli(args: string[], opts: { tty?: boolean } = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    isTty: opts.tty ?? false,
    env: process.env,
    cwd: process.cwd(),
  };
  const code = await main(args, io);
  return { code, out, err };
}
