/**
 * The lab lease (src/lab/lock.ts acquireLabLease) is shared by lab tests (test/helpers/lab.ts
 * sharedLab) and `tide lab up|down|demo`, so a CLI user and a lab test never use the lab at the
 * same time. No root and no lab: the lease is held by another process (src/lab/lock.ts run as
 * JavaScript, transpiled like the lab's helper programs) in a temporary lab directory, and
 * every refusal happens before the lab is touched.
 *   - a test holds it → `tide lab up`, `down`, `demo` are refused at once (exit 1) naming the
 *     holder (pid, "lab test …", since); `--wait 1` waits 1 s and then says so;
 *   - `tide lab up` holds it → sharedLab gives up after its wait, naming "tide lab up";
 *   - in one process the lease nests (a lab test running `tide lab demo` in-process), and a
 *     dead holder's lease is taken over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { labLayout } from '../../src/lab/layout.js';
import { acquireLabLease, leaseHolder } from '../../src/lab/lock.js';
import { transpiledCopy } from '../../src/probe/transpile.js';
import { runCli } from '../helpers/cli.js';
import { sharedLab } from '../helpers/lab.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-lab-lease-'));
let libDir = '';
const children: ChildProcess[] = [];
beforeAll(async () => {
  libDir = await transpiledCopy(join(import.meta.dirname, '../../src/lab'), ['lock.ts', 'exec.ts', 'proc.ts'], 'tide-lab-lock');
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Another process takes the lease of `dir` as `holder` and keeps it until killed. */
async function holdIn(dir: string, holder: string): Promise<ChildProcess> {
  const file = labLayout(dir).leaseFile;
  const code = `const { acquireLabLease } = await import(${JSON.stringify(join(libDir, 'lock.js'))});
await acquireLabLease(${JSON.stringify(file)}, { holder: ${JSON.stringify(holder)} });
process.stdout.write('held\\n');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => { if (b.toString().includes('held')) resolve(); });
    child.on('exit', (c) => reject(new Error(`lease holder exited ${c}`)));
  });
  return child;
}

describe('lab lease: CLI and tests take turns', () => {
  it('a lab test holds the lease: tide lab up / down / demo are refused, naming the holder', async () => {
    const dir = mkdtempSync(join(tmp, 'a-'));
    const child = await holdIn(dir, 'lab test test/e2e/lab-crash.test.ts');
    expect(leaseHolder(labLayout(dir).leaseFile)).toMatchObject({ pid: child.pid, holder: 'lab test test/e2e/lab-crash.test.ts' });
    for (const args of [['up'], ['up', '--power'], ['down'], ['demo', '--minutes', '2']]) {
      const r = await runCli(['lab', ...args, '--dir', dir]);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(1);
      expect(r.err).toMatch(new RegExp(`the lab is in use: its lease .* is held by pid ${child.pid} \\(lab test test/e2e/lab-crash\\.test\\.ts, since \\d{4}-`));
      expect(r.err).toMatch(/--wait SEC/);
    }
    // Nothing of a lab was made in the directory: only the holder's lease file.
    expect(existsSync(labLayout(dir).configFile)).toBe(false);
    const t0 = Date.now();
    const w = await runCli(['lab', 'up', '--dir', dir, '--wait', '1']);
    expect(w.code).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(w.err).toMatch(new RegExp(`in use by pid ${child.pid} \\(lab test .*\\); waiting up to 1 s`));
    expect(w.err).toMatch(/gave up after waiting 1 s/);
    // The refused commands left the holder's lease alone.
    expect(readFileSync(labLayout(dir).leaseFile, 'utf8').split('\n')[0]).toBe(String(child.pid));
  }, 60_000);

  it('tide lab up holds the lease: a lab test (sharedLab) gives up after its wait, naming it', async () => {
    const dir = mkdtempSync(join(tmp, 'b-'));
    const child = await holdIn(dir, 'tide lab up');
    await expect(sharedLab({ dir, waitMs: 300, verbose: false })).rejects.toThrow(new RegExp(`held by pid ${child.pid} \\(tide lab up, since `));
  }, 60_000);

  it('nests within one process; a dead holder\'s lease is taken over', async () => {
    const dir = mkdtempSync(join(tmp, 'c-'));
    const file = labLayout(dir).leaseFile;
    const outer = await acquireLabLease(file, { holder: 'lab test (outer)' });
    const inner = await acquireLabLease(file, { holder: 'tide lab demo' });
    inner();
    expect(leaseHolder(file)).toMatchObject({ pid: process.pid, holder: 'lab test (outer)' });
    outer();
    expect(existsSync(file)).toBe(false);

    const child = await holdIn(dir, 'tide lab up');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(leaseHolder(file)).toBeNull();
    const mine = await acquireLabLease(file, { holder: 'tide lab up' });
    expect(leaseHolder(file)).toMatchObject({ pid: process.pid, holder: 'tide lab up' });
    mine();
  }, 60_000);
});
