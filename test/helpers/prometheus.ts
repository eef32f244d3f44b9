/**
 * Test fixture: a real Prometheus server and the Debian exporters (prometheus-node-exporter,
 * prometheus-libvirt-exporter), started by the test on 127.0.0.1 free ports, with a temp
 * configuration (short scrape interval) and a temp storage directory, all removed at stop().
 *
 * Availability: `prometheusGate(what)` returns true to run; when a binary is missing it prints
 * the reason and returns false (skip), except under CI (CI or TIDE_REQUIRE_LAB set), where it
 * throws: a real-part test that cannot run is a failure there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROMETHEUS_BIN = process.env.TIDE_PROMETHEUS_BIN ?? '/usr/bin/prometheus';
export const NODE_EXPORTER_BIN = process.env.TIDE_NODE_EXPORTER_BIN ?? '/usr/bin/prometheus-node-exporter';
export const LIBVIRT_EXPORTER_BIN = process.env.TIDE_LIBVIRT_EXPORTER_BIN ?? '/usr/bin/prometheus-libvirt-exporter';

/** Why the fixture cannot run here ('' when it can). */
export function prometheusUnavailable(): string {
  const missing = [PROMETHEUS_BIN, NODE_EXPORTER_BIN, LIBVIRT_EXPORTER_BIN].filter((b) => !existsSync(b));
  return missing.length ? `${missing.join(', ')} not found (Debian: apt-get install prometheus prometheus-node-exporter prometheus-libvirt-exporter; scripts/install-deps.sh)` : '';
}

/** True: run. Missing binaries: skip with a printed reason, or throw under CI / TIDE_REQUIRE_LAB. */
export function prometheusGate(what: string): boolean {
  const why = prometheusUnavailable();
  if (!why) return true;
  if (process.env.CI || process.env.TIDE_REQUIRE_LAB) throw new Error(`${what}: Prometheus fixture required under CI / TIDE_REQUIRE_LAB: ${why}`);
  console.warn(`[skip] ${what}: ${why}`);
  return false;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (nothing listens on it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One long-running process with its output's tail, restartable on the same argv. */
class Proc {
  private child: ChildProcess | null = null;
  private tail = '';

  constructor(readonly name: string, private readonly bin: string, private readonly argv: string[]) {}

  start(): void {
    if (this.child) return;
    const c = spawn(this.bin, this.argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer): void => { this.tail = (this.tail + b.toString()).slice(-4000); };
    c.stdout?.on('data', keep);
    c.stderr?.on('data', keep);
    // a test process that dies without teardown must not leave the server or an exporter behind
    const kill = (): void => { c.kill('SIGKILL'); };
    process.once('exit', kill);
    c.on('exit', () => {
      process.removeListener('exit', kill);
      if (this.child === c) this.child = null;
    });
    this.child = c;
  }

  running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c) return;
    this.child = null;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }

  diagnostics(): string {
    return `${this.name} output (tail):\n${this.tail}`;
  }
}

/** Waits until GET url answers 200 (the process is serving). */
async function waitHttp(url: string, p: Proc, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.ok) return;
    } catch { /* not yet */ }
    if (!p.running()) throw new Error(`${p.name} exited before serving ${url}\n${p.diagnostics()}`);
    if (Date.now() > until) throw new Error(`${p.name} did not serve ${url} within ${timeoutMs} ms\n${p.diagnostics()}`);
    await sleep(100);
  }
}

export interface ExporterHandle {
  /** host:port, also the `instance` label Prometheus gives its series. */
  readonly address: string;
  /** Starts it again on the same port (after stop()). */
  start(): Promise<void>;
  stop(): Promise<void>;
  running(): boolean;
  diagnostics(): string;
}

async function exporter(name: string, bin: string, args: (address: string) => string[]): Promise<ExporterHandle> {
  const address = `127.0.0.1:${await freePort()}`;
  const p = new Proc(name, bin, args(address));
  const h: ExporterHandle = {
    address,
    async start() {
      p.start();
      await waitHttp(`http://${address}/metrics`, p);
    },
    stop: () => p.stop(),
    running: () => p.running(),
    diagnostics: () => p.diagnostics(),
  };
  await h.start();
  return h;
}

/** prometheus-node-exporter with only the CPU and memory collectors (what Tide reads). */
export function startNodeExporter(): Promise<ExporterHandle> {
  return exporter('node-exporter', NODE_EXPORTER_BIN, (a) => [`--web.listen-address=${a}`, '--collector.disable-defaults', '--collector.cpu', '--collector.meminfo']);
}

/** prometheus-libvirt-exporter reading the libvirtd at `libvirtUri` (e.g. a private daemon's qemu+unix socket URI). */
export function startLibvirtExporter(libvirtUri: string): Promise<ExporterHandle> {
  return exporter('libvirt-exporter', LIBVIRT_EXPORTER_BIN, (a) => [`--web.listen-address=${a}`, `--libvirt.uri=${libvirtUri}`]);
}

export interface PromSample { metric: Record<string, string>; value: [number, string] }

export interface PrometheusHandle {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly scrapeIntervalSec: number;
  /** An instant query (rejects on an API error). */
  query(q: string): Promise<PromSample[]>;
  /** Polls `q` until `ok(result)` holds; rejects after timeoutMs with the last result. */
  waitFor(q: string, ok: (r: PromSample[]) => boolean, timeoutMs?: number): Promise<PromSample[]>;
  stop(): Promise<void>;
  diagnostics(): string;
}

/** Prometheus scraping `targets` (job name → host:port list) every scrapeIntervalSec, storage in a temp dir. */
export async function startPrometheus(o: { targets: Record<string, string[]>; scrapeIntervalSec?: number }): Promise<PrometheusHandle> {
  const every = o.scrapeIntervalSec ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'tide-prometheus-'));
  const jobs = Object.entries(o.targets).map(([job, ts]) => `  - job_name: ${JSON.stringify(job)}\n    static_configs:\n      - targets: ${JSON.stringify(ts)}`).join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), `global:\n  scrape_interval: ${every}s\n  scrape_timeout: ${every}s\n  evaluation_interval: ${every}s\nscrape_configs:\n${jobs}\n`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const p = new Proc('prometheus', PROMETHEUS_BIN, [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--storage.tsdb.retention.time=1h', '--log.level=warn',
  ]);
  p.start();
  try {
    await waitHttp(`${url}/-/ready`, p);
  } catch (e) {
    await p.stop();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const query = async (q: string): Promise<PromSample[]> => {
    const u = new URL('/api/v1/query', url);
    u.searchParams.set('query', q);
    const r = await fetch(u, { signal: AbortSignal.timeout(5000) });
    const body = await r.json() as { status: string; error?: string; data: { result: PromSample[] } };
    if (body.status !== 'success') throw new Error(`query ${q}: ${body.error ?? r.status}`);
    return body.data.result;
  };
  return {
    url,
    scrapeIntervalSec: every,
    query,
    async waitFor(q, ok, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const last = await query(q);
        if (ok(last)) return last;
        if (Date.now() > until) throw new Error(`waitFor(${q}) timed out after ${timeoutMs} ms; last: ${JSON.stringify(last).slice(0, 500)}\n${p.diagnostics()}`);
        await sleep(250);
      }
    },
    async stop() {
      await p.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    diagnostics: () => p.diagnostics(),
  };
}
