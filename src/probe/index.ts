/**
 * Service probe API.
 *
 *   const p = await startProbe({ target: 'http://10.77.0.11/', netns: 'tide-lab-sw', intervalMs: 20 });
 *   … migrate …
 *   const report = await p.stop();   // { sent, ok, failed, maxGapMs, downtimeMs, sameBoot, … }
 *
 * Without `netns` the probe runs in this process. With `netns` it runs as a child process
 * `ip netns exec <netns> node <probe cli> …` (Node cannot switch the network namespace of one
 * of its threads), streaming JSON lines back; see ./cli.ts for that protocol.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { transpiledCopy } from './transpile.js';
import { Probe, type ProbeOptions, type ProbeReport, type ProbeSnapshot } from './probe.js';

export { Probe, parseProbeTarget, parseInfo, runProbe } from './probe.js';
export type { ProbeOptions, ProbeReport, ProbeSnapshot, ProbeTarget } from './probe.js';

export interface StartProbeOptions extends ProbeOptions {
  /** Run inside this network namespace (needs root and `ip`). */
  netns?: string;
  /** How often the child reports progress (ms; child mode only). Default 1000. */
  reportMs?: number;
}

export interface RunningProbe {
  /** PID of the probe child (netns mode), undefined in-process. */
  readonly pid: number | undefined;
  /** Latest progress: live in-process, at most `reportMs` old in netns mode. */
  latest(): ProbeSnapshot | null;
  /** Stops the probe and resolves with its final report. Idempotent. */
  stop(): Promise<ProbeReport>;
}

export async function startProbe(opts: StartProbeOptions): Promise<RunningProbe> {
  if (opts.netns === undefined) {
    const probe = new Probe(opts).start();
    return { pid: undefined, latest: () => probe.snapshot(), stop: () => probe.stop() };
  }
  return startProbeChild(opts, opts.netns);
}

function cliArgs(opts: StartProbeOptions): string[] {
  const a = [opts.target];
  if (opts.intervalMs !== undefined) a.push('--interval-ms', String(opts.intervalMs));
  if (opts.timeoutMs !== undefined) a.push('--timeout-ms', String(opts.timeoutMs));
  if (opts.infoPath !== undefined) a.push('--info-path', opts.infoPath);
  if (opts.infoEvery !== undefined) a.push('--info-every', String(opts.infoEvery));
  a.push('--report-ms', String(opts.reportMs ?? 1000));
  return a;
}

async function startProbeChild(opts: StartProbeOptions, netns: string): Promise<RunningProbe> {
  new Probe(opts); // validate the options here, with a useful stack, before spawning
  const cli = await probeCliPath();
  const child: ChildProcessWithoutNullStreams = spawn('ip', ['netns', 'exec', netns, process.execPath, cli, ...cliArgs(opts)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let latest: ProbeSnapshot | null = null;
  let report: ProbeReport | null = null;
  let error: string | null = null;
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-4000); });
  child.stdin.on('error', () => { /* child already gone */ });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (e) => { error = e.message; resolve(127); });
    child.on('close', (code) => resolve(code));
  });
  const started = new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      let msg: { type?: string; message?: string } & Record<string, unknown>;
      try { msg = JSON.parse(line) as typeof msg; } catch { return; }
      if (msg.type === 'started') resolve();
      else if (msg.type === 'progress') latest = msg as unknown as ProbeSnapshot;
      else if (msg.type === 'report') report = msg as unknown as ProbeReport;
      else if (msg.type === 'error') { error = msg.message ?? 'probe error'; reject(new Error(`probe: ${error}`)); }
    });
    void exited.then((code) => reject(new Error(`probe exited (${code}) before starting: ${error ?? stderr.trim()}`)));
  });
  const timeout = setTimeout(() => child.kill('SIGKILL'), 15_000);
  try {
    await started;
  } finally {
    clearTimeout(timeout);
  }
  let stopping: Promise<ProbeReport> | undefined;
  const stop = async (): Promise<ProbeReport> => {
    child.stdin.end();
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(kill);
    if (report === null) throw new Error(`probe ended (${code}) without a report: ${error ?? stderr.trim()}`);
    return report;
  };
  return {
    pid: child.pid,
    latest: () => latest,
    stop: () => (stopping ??= stop()),
  };
}

export interface WaitForServiceOptions {
  target: string;
  netns?: string;
  /** Give up after this many ms (default 60 000). */
  timeoutMs?: number;
  /** Attempt interval (default 50 ms). */
  intervalMs?: number;
}

/**
 * Resolves with the wall time (ms, from this call) until `target` first answered, or null on
 * timeout. Runs one probe (in `netns` if given) that stops at the first success.
 */
export async function waitForService(o: WaitForServiceOptions): Promise<number | null> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const intervalMs = o.intervalMs ?? 50;
  const t0 = performance.now();
  if (o.netns === undefined) {
    const probe = new Probe({ target: o.target, intervalMs, timeoutMs: 1000 }).start();
    while (performance.now() - t0 < timeoutMs) {
      if (probe.snapshot().ok > 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const rep = await probe.stop(0);
    return rep.ok > 0 ? Math.round(performance.now() - t0) : null;
  }
  const cli = await probeCliPath();
  const args = ['netns', 'exec', o.netns, process.execPath, cli, o.target, '--until-ok', '--interval-ms', String(intervalMs),
    '--timeout-ms', '1000', '--duration-ms', String(timeoutMs), '--report-ms', '0'];
  const out = await new Promise<string>((resolve) => {
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.on('data', (b: Buffer) => { text += b.toString(); });
    child.on('error', () => resolve(''));
    child.on('close', () => resolve(text));
  });
  for (const line of out.split('\n')) {
    try {
      const msg = JSON.parse(line) as { type?: string; ok?: number };
      if (msg.type === 'report') return (msg.ok ?? 0) > 0 ? Math.round(performance.now() - t0) : null;
    } catch { /* not JSON */ }
  }
  return null;
}

/**
 * The probe entry point as a JavaScript file `node` can run: dist/probe/cli.js next to this
 * module when running the build. When running from TypeScript sources (vitest), the two
 * probe modules are transpiled once (TypeScript's transpileModule; a dev dependency, then
 * present) into a cache directory keyed by their content.
 */
export async function probeCliPath(): Promise<string> {
  const here = fileURLToPath(import.meta.url);
  const dir = dirname(here);
  if (here.endsWith('.js')) return join(dir, 'cli.js');
  return join(await transpiledCopy(dir, ['probe.ts', 'cli.ts'], 'tide-probe'), 'cli.js');
}
