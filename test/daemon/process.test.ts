/**
 * `tide daemon` as a real process (the built CLI, bin/tide.js): SIGTERM ends it with status 0
 * and the cluster lock released; SIGHUP with a broken configuration keeps it running on the old
 * one and logs the path-named error; SIGHUP with a valid changed configuration applies the new
 * mode and interval (tide status says so). The hosts' libvirt sockets do not exist, so every
 * round fails with TIDE_HOST_UNREACHABLE — the loop must go on regardless. JSON log lines
 * parse, and the BMC password (passwordEnv) never appears in the output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { statusReport } from '../../src/daemon/ops.js';
import { openSqliteStore } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/tide.js');
const SECRET = 'hunter2-bmc-Secret';
const tmp = mkdtempSync(join(tmpdir(), 'tide-daemon-proc-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function yaml(mode: string, intervalSec: number | string): string {
  return `# daemon process test
mode: ${mode}
intervalSec: ${intervalSec}
hosts:
  - name: a
    uri: qemu:///system?socket=${tmp}/no-such/sock-a
    power: { kind: ipmi, address: 127.0.0.1, port: 1, user: admin, passwordEnv: TIDE_TEST_BMC_PW, timeoutSec: 1 }
  - name: b
    uri: qemu:///system?socket=${tmp}/no-such/sock-b
`;
}

interface Proc { child: ChildProcess; lines: () => Record<string, unknown>[]; raw: () => string; exit: Promise<number | null> }

function start(dir: string): Proc {
  const child = spawn(process.execPath, [BIN, 'daemon', '--config', join(dir, 'tide.yaml'), '--poll-ms', '200'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TIDE_TEST_BMC_PW: SECRET },
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
  const exit = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { child, raw: () => out, lines: () => out.split('\n').filter(Boolean).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      throw new Error(`not a JSON log line: ${l}\nwhole output:\n${out}`);
    }
  }), exit };
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('SIGHUP reloads (broken: keeps the old configuration; valid: applies it), SIGTERM exits 0 with the lock released', async () => {
  // npm test builds first; a missing dist/ is a failure, not a skip.
  expect(existsSync(join(ROOT, 'dist/daemon/daemon.js')), 'dist/ missing: run npm run build').toBe(true);
  const dir = join(tmp, 'c1');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const cfg = join(dir, 'tide.yaml');
  writeFileSync(cfg, yaml('approve', 1));
  const p = start(dir);
  const rounds = (): Record<string, unknown>[] => p.lines().filter((l) => l.event === 'error' && typeof l.round === 'number');
  await until('two failed rounds', () => rounds().length >= 2);
  expect(rounds()[0]!.code).toBe('TIDE_HOST_UNREACHABLE');

  // While it runs: tide status (another process's view, through the store) shows it and its lock.
  const st = JSON.parse((await runCli(['--config', cfg, 'status', '--json'])).out) as {
    daemon: { alive: boolean; state: string; pid: number; lastRound: { result: string; error: { code: string } } }; mode: string; intervalSec: number; lock: { holderText: string };
  };
  expect(st.daemon).toMatchObject({ alive: true, state: 'running', pid: p.child.pid, lastRound: { result: 'error', error: { code: 'TIDE_HOST_UNREACHABLE' } } });
  expect(st).toMatchObject({ mode: 'approve', intervalSec: 1 });
  expect(st.lock.holderText).toBe(`tide daemon (pid ${p.child.pid} on ${hostname()})`);

  // A broken configuration: the error names the file and the path; the daemon goes on as before.
  writeFileSync(cfg, yaml('approve', 0));
  p.child.kill('SIGHUP');
  await until('the reload error', () => p.lines().some((l) => l.event === 'reload' && l.code === 'TIDE_CONFIG'));
  const bad = p.lines().find((l) => l.event === 'reload' && l.code === 'TIDE_CONFIG')!;
  expect(bad.error).toMatch(new RegExp(`${cfg.replace(/[.]/g, '\\.')}.*intervalSec`));
  const n = rounds().length;
  await until('rounds after the failed reload', () => rounds().length >= n + 2);
  // (tide status itself refuses the broken file: read the store the way it does.)
  const s2 = openSqliteStore(join(dir, '.tide/tide.sqlite'));
  const st2 = statusReport(s2, null);
  s2.close();
  expect(st2).toMatchObject({ mode: 'approve', intervalSec: 1 });
  expect(st2.daemon!.configError!.message).toMatch(/intervalSec/);

  // A valid change: the new mode and interval are in force.
  writeFileSync(cfg, yaml('recommend', 2));
  p.child.kill('SIGHUP');
  await until('the reload', () => p.lines().some((l) => l.event === 'reload' && l.mode === 'recommend'));
  const st3 = JSON.parse((await runCli(['--config', cfg, 'status', '--json'])).out) as { mode: string; intervalSec: number; daemon: { configError: unknown } };
  expect(st3).toMatchObject({ mode: 'recommend', intervalSec: 2, daemon: { configError: null } });

  p.child.kill('SIGTERM');
  expect(await p.exit).toBe(0);
  const store = openSqliteStore(join(dir, '.tide/tide.sqlite'));
  try {
    expect(store.clusterLock()).toBeUndefined();
    expect(store.daemonStatus()!.state).toBe('stopped');
  } finally {
    store.close();
  }
  const lines = p.lines();
  expect(lines.at(-1)!.msg).toMatch(/stopped after \d+ round\(s\); cluster lock released/);
  expect(lines.every((l) => typeof l.level === 'number' && typeof l.time === 'number')).toBe(true);
  expect(p.raw()).not.toContain(SECRET);
}, 90_000);

it('SIGINT stops it the same way', async () => {
  const dir = join(tmp, 'c2');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tide.yaml'), yaml('automatic', 1));
  const p = start(dir);
  await until('a round', () => p.lines().some((l) => l.round === 1));
  p.child.kill('SIGINT');
  expect(await p.exit).toBe(0);
  expect(p.lines().some((l) => l.event === 'signal' && l.signal === 'SIGINT')).toBe(true);
}, 60_000);

it('after a SIGKILL the next daemon takes the stale lock over and says whose it was', async () => {
  const dir = join(tmp, 'c3');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tide.yaml'), yaml('approve', 1));
  const first = start(dir);
  await until('a round', () => first.lines().some((l) => l.round === 1));
  first.child.kill('SIGKILL');
  await first.exit;
  const second = start(dir);
  await until('a round of the second daemon', () => second.lines().some((l) => l.round === 1));
  const lock = second.lines().find((l) => l.event === 'lock')!;
  expect(lock.msg).toMatch(new RegExp(`took over a stale cluster lock of tide daemon \\(pid ${first.child.pid} on .*\\(process ${first.child.pid} no longer runs`));
  second.child.kill('SIGTERM');
  expect(await second.exit).toBe(0);
}, 60_000);
