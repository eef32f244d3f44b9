/**
 * The simulated office as a world that outlives the daemon: for crash tests that SIGKILL a real
 * `node` daemon process.
 *
 *   const lib = await transpiledSources();              // src/ as JavaScript (Node 20 runs no TypeScript)
 *   const world = await startWorld(lib, { wall0, speed });   // a process owning the SimDriver
 *   const d = startSimDaemon(lib, { world, storeFile, wall0, speed });   // the daemon, a process
 *   …; d.child.kill('SIGKILL'); …; await world.state();
 *
 * The world process is the hypervisor and the BMCs: it owns one SimDriver (the office, 4 hosts,
 * VMs round-robin so a night has much to consolidate) and serves its methods over HTTP on a
 * Unix socket. Killing the daemon does not stop it: a migration the daemon started goes on and
 * completes as a libvirt peer-to-peer job would. AbortSignals and progress callbacks do not
 * cross (a dead daemon aborts nothing anyway). Both processes read one scaled clock —
 * (Date.now() − wall0) × speed ms, t = 0 being Monday 00:00 of the office — so journal times,
 * migration timings and the daemon's rounds agree.
 *
 * The daemon process is the daemon `tide daemon` runs (createDaemon, automatic mode, the
 * simulator settings of test/daemon/helpers.ts simSettings, crash recovery at start:
 * recoverAtDaemonStart) on a file-backed SQLite store, logging JSON lines to stdout; SIGTERM
 * stops it gracefully.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join, relative } from 'node:path';
import { transpiledCopy } from '../../src/probe/transpile.js';

const ROOT = join(import.meta.dirname, '../..');

/**
 * Every module of src/ transpiled (TypeScript's transpileModule) into
 * node_modules/.cache/tide-src-<hash>/ — inside the repository, so that their imports of
 * packages resolve to its node_modules. Reused while the sources are unchanged.
 */
export async function transpiledSources(): Promise<string> {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.ts') && !n.endsWith('.d.ts')) files.push(p);
    }
  };
  const src = join(ROOT, 'src');
  walk(src);
  files.sort();
  return transpiledCopy(src, files.map((f) => relative(src, f)), 'tide-src', {
    parentDir: join(ROOT, 'node_modules/.cache'),
    extraFiles: { 'world.mjs': WORLD_JS, 'daemon.mjs': DAEMON_JS },
  });
}

const CLOCK_JS = `
const clockOf = (wall0, speed) => ({
  now: () => (Date.now() - wall0) * speed,
  sleep: (ms, signal) => new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const t = setTimeout(resolve, Math.max(0, ms / speed));
    signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason ?? new Error('aborted')); }, { once: true });
  }),
});`;

/** node world.mjs SOCKET WALL0 SPEED [REPLY_DELAY_MS] */
const WORLD_JS = `import { createServer } from 'node:http';
import { SimDriver } from './drivers/sim/sim-driver.js';
import { officeScenario } from './sim/office.js';
${CLOCK_JS}
const [sock, wall0, speed, replyDelay] = process.argv.slice(2);
const replyDelayMs = Number(replyDelay ?? 0);
const clock = clockOf(Number(wall0), Number(speed));
const scenario = officeScenario({ hosts: 4, days: 2 });
const placement = Object.fromEntries(scenario.vms.map((v, i) => [v.id, scenario.hosts[i % scenario.hosts.length].id]));
const driver = new SimDriver(scenario, clock, { placement });
const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(driver)).filter((m) => m !== 'constructor' && typeof driver[m] === 'function');
createServer((req, res) => {
  let body = '';
  req.on('data', (b) => { body += b; });
  req.on('end', async () => {
    let out;
    try {
      if (req.url === '/methods') out = { ok: true, value: methods };
      else if (req.url === '/state') {
        const vms = await driver.listVms();
        const domains = {};
        for (const h of scenario.hosts) domains[h.id] = (await driver.hostDomains(h.id).catch(() => [])).map((v) => v.name);
        out = { ok: true, value: { nowMs: clock.now(), power: driver.hostPower(), vms, domains } };
      } else {
        const { method, args } = JSON.parse(body);
        out = { ok: true, value: await driver[method](...args) };
        // The answer to a power action is late by replyDelayMs (wall): the host is off (on) before its caller knows.
        if ((method === 'powerOff' || method === 'powerOn') && replyDelayMs > 0) await new Promise((r) => setTimeout(r, replyDelayMs));
      }
    } catch (e) {
      out = { ok: false, error: { code: e?.code, message: e?.message ?? String(e), detail: e?.detail } };
    }
    res.end(JSON.stringify(out));
  });
}).listen(sock, () => process.stdout.write('ready\\n'));
`;

/** node daemon.mjs SOCKET STORE WALL0 SPEED */
const DAEMON_JS = `import { request } from 'node:http';
import { recoverAtDaemonStart } from './app/journal.js';
import { compilePolicy } from './core/policy.js';
import { createDaemon } from './daemon/daemon.js';
import { createLogger } from './daemon/log.js';
import { DriverError } from './drivers/errors.js';
import { officeScenario } from './sim/office.js';
import { openSqliteStore } from './store/store.js';
${CLOCK_JS}
const [sock, storeFile, wall0, speed] = process.argv.slice(2);
const clock = clockOf(Number(wall0), Number(speed));
const call = (path, payload) => new Promise((resolve, reject) => {
  const req = request({ socketPath: sock, path, method: 'POST' }, (res) => {
    let body = '';
    res.on('data', (b) => { body += b; });
    res.on('end', () => {
      const r = JSON.parse(body);
      if (r.ok) resolve(r.value);
      else reject(r.error?.code ? new DriverError(r.error.code, r.error.message, r.error.detail) : new Error(r.error?.message));
    });
  });
  req.on('error', reject);
  req.end(JSON.stringify(payload ?? {}));
});
const driver = { kind: 'sim' };
for (const m of await call('/methods')) {
  // AbortSignals and callbacks stay here (JSON drops functions inside objects).
  driver[m] = (...args) => call('/call', { method: m, args: args.map((a) => (a instanceof AbortSignal || typeof a === 'function' ? null : a)) });
}
const scenario = officeScenario({ hosts: 4, days: 2 });
const settings = {
  mode: 'automatic', intervalSec: 300, policy: compilePolicy('tide'), limits: { maxConcurrent: 2, maxPerHost: 1 },
  migrate: { mode: 'live', autoConverge: true, timeoutSec: 600 },
  hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])), rules: scenario.rules, bootTimeoutSec: 900,
};
const store = openSqliteStore(storeFile);
const log = createLogger({ write: (l) => process.stdout.write(l), tty: false, clock, level: 'info' });
const daemon = createDaemon({
  clock, hypervisor: driver, power: driver, store, settings, log, pollMs: 0, stopGraceMs: 600_000,
  onStart: async (ctx) => { await recoverAtDaemonStart(ctx); },
});
process.on('SIGTERM', () => daemon.stop({ reason: 'SIGTERM' }));
const exit = await daemon.run();
store.close();
process.exit(exit.reason === 'lock-lost' ? 1 : 0);
`;

export interface WorldState {
  readonly nowMs: number;
  readonly power: Record<string, string>;
  readonly vms: readonly { name: string; host: string; state: string }[];
  /** Each host's domains as its hypervisor lists them (a VM on two hosts would show twice). */
  readonly domains: Record<string, string[]>;
}

export interface World {
  readonly child: ChildProcess;
  readonly sock: string;
  state(): Promise<WorldState>;
  stop(): Promise<void>;
}

function post<T>(sock: string, path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, path, method: 'POST' }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => { body += b.toString(); });
      res.on('end', () => {
        const r = JSON.parse(body) as { ok: boolean; value: T; error?: { message: string } };
        if (r.ok) resolve(r.value);
        else reject(new Error(r.error?.message));
      });
    });
    req.on('error', reject);
    req.end('{}');
  });
}

/** replyDelayMs: the world answers a power action that much (wall ms) after doing it (default 0). */
export async function startWorld(lib: string, opts: { sock: string; wall0: number; speed: number; replyDelayMs?: number }): Promise<World> {
  const child = spawn(process.execPath, [join(lib, 'world.mjs'), opts.sock, String(opts.wall0), String(opts.speed), String(opts.replyDelayMs ?? 0)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => { if (b.toString().includes('ready')) resolve(); });
    child.on('exit', (c) => reject(new Error(`the world exited (${c}) before it was ready`)));
  });
  return {
    child, sock: opts.sock,
    state: () => post<WorldState>(opts.sock, '/state'),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}

export interface DaemonProc {
  readonly child: ChildProcess;
  /** The JSON log lines so far. */
  lines(): Record<string, unknown>[];
  raw(): string;
  readonly exit: Promise<number | null>;
}

export function startSimDaemon(lib: string, opts: { sock: string; storeFile: string; wall0: number; speed: number }): DaemonProc {
  const child = spawn(process.execPath, [join(lib, 'daemon.mjs'), opts.sock, opts.storeFile, String(opts.wall0), String(opts.speed)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  const exit = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return {
    child, exit,
    raw: () => out + err,
    lines: () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
