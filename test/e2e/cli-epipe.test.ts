/**
 * `tide … | head`: the reader closes the pipe early. The built CLI must stop quietly (no
 * unhandled EPIPE stack trace, not status 70), like any well-behaved Unix tool.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/tide.js');

it('a reader that closes the pipe early ends the CLI quietly', async () => {
  // npm test builds first; a missing dist/ is a failure, not a skip.
  expect(existsSync(join(ROOT, 'dist/cli/main.js')), 'dist/ missing: run npm run build').toBe(true);
  const child = spawn(process.execPath, [BIN, 'demo', '--hours', '720', '--observe-days', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.destroy(); // like `head -1` exiting after its line
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  expect(err).not.toMatch(/^\s+at /m);
  expect(err).not.toMatch(/EPIPE/);
  expect(code).toBe(0);
}, 60_000);
