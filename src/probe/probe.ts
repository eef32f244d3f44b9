/**
 * Service probe: measures how long a service (a guest's TCP port or HTTP URL) is unavailable,
 * e.g. during a live migration.
 *
 * Every `intervalMs` a *new* connection is started, without waiting for earlier ones: a paused
 * guest then does not stall the probe, and replies resume being counted the moment the guest
 * answers again. Each HTTP request is a fresh TCP connection (HTTP/1.0, no keep-alive), so a
 * success proves the whole path (ARP/bridges, TCP accept, the service) works.
 *
 * The observed downtime is the longest interval without a successful reply. Units: all
 * durations are milliseconds, measured with the monotonic clock (performance.now()).
 *
 * This module has no dependency on the rest of Tide or on the lab (node:net only).
 */
import { connect, type Socket } from 'node:net';

export interface ProbeTarget {
  kind: 'tcp' | 'http';
  host: string;
  port: number;
  /** HTTP path including query (http only). */
  path: string;
}

export interface ProbeOptions {
  /** tcp://HOST:PORT or http://HOST[:PORT]/PATH */
  target: string;
  /** Start a request every this many ms (default 20). */
  intervalMs?: number;
  /**
   * A request that has not succeeded after this many ms fails with TIMEOUT (default 5000).
   * Long enough for two TCP SYN retransmissions (after 1 s and 3 s): a SYN lost during a
   * migration switchover is a delay, which the gap already measures, not a failed request.
   * A longer timeout never shortens the measured gap: no reply can arrive during an outage.
   */
  timeoutMs?: number;
  /**
   * HTTP only: a path whose body holds `key=value` tokens (e.g. the lab guest's
   * /cgi-bin/up: uptime, boot_id). Every `infoEvery`-th request and one final request at
   * stop() go there instead of `target`, so the report can tell whether the service instance
   * stayed the same (same boot_id) across the measured window.
   */
  infoPath?: string;
  /** Default 25: the info path is usually more expensive (a CGI fork under TCG). */
  infoEvery?: number;
}

export interface ProbeSnapshot {
  target: string;
  intervalMs: number;
  /** Wall-clock start, ISO 8601. */
  startedAt: string;
  /** Time since start. */
  elapsedMs: number;
  sent: number;
  ok: number;
  failed: number;
  /** Requests still outstanding. */
  inFlight: number;
  /** Longest gap between two consecutive successful replies (by completion time). */
  maxGapMs: number;
  /** When that gap began, relative to the start (null if fewer than two successes). */
  maxGapAtMs: number | null;
  /**
   * Observed service downtime: the longest interval without a successful reply between the
   * first success and now (or stop). Equals maxGapMs when the service answers at the end;
   * equals elapsedMs when it never answered.
   */
  downtimeMs: number;
  firstOkAtMs: number | null;
  lastOkAtMs: number | null;
  /** Latency of successful requests: connect + full reply. */
  latencyMs: { p50: number; p99: number; max: number } | null;
  /** Failure counts by cause: ECONNREFUSED, EHOSTUNREACH, TIMEOUT, HTTP_503, … */
  errors: Record<string, number>;
  /** First and last info replies (key=value tokens) seen; null when none. */
  infoFirst: Record<string, string> | null;
  infoLast: Record<string, string> | null;
}

export interface ProbeReport extends ProbeSnapshot {
  /** Requests still unanswered when the report was taken (counted neither ok nor failed). */
  abandoned: number;
  durationMs: number;
  /** True/false when both info replies carry a boot_id; null otherwise. */
  sameBoot: boolean | null;
  /** infoLast.uptime − infoFirst.uptime in seconds (should grow by ≈ the duration). */
  uptimeGrowthS: number | null;
}

export function parseProbeTarget(target: string): ProbeTarget {
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    throw new Error(`probe target must be tcp://host:port or http://host[:port]/path (got '${target}')`);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (u.protocol === 'tcp:') {
    if (!u.port) throw new Error(`tcp probe target needs a port: ${target}`);
    return { kind: 'tcp', host, port: Number(u.port), path: '' };
  }
  if (u.protocol === 'http:') return { kind: 'http', host, port: u.port ? Number(u.port) : 80, path: `${u.pathname || '/'}${u.search}` };
  throw new Error(`unsupported probe target '${target}' (tcp:// or http://)`);
}

/** Parses `key=value` tokens separated by whitespace. */
export function parseInfo(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const tok of body.split(/\s+/)) {
    const i = tok.indexOf('=');
    if (i > 0) out[tok.slice(0, i)] = tok.slice(i + 1);
  }
  return out;
}

interface Outcome { ok: boolean; error?: string; body?: string }

/** One request; resolves (never rejects) when it succeeded, failed or timed out. */
function request(t: ProbeTarget, path: string, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let done = false;
    const chunks: Buffer[] = [];
    const sock: Socket = connect({ host: t.host, port: t.port });
    const finish = (o: Outcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ ok: false, error: 'TIMEOUT' }), timeoutMs);
    sock.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, error: e.code ?? 'ERROR' }));
    sock.on('connect', () => {
      if (t.kind === 'tcp') return finish({ ok: true });
      sock.write(`GET ${path} HTTP/1.0\r\nHost: ${t.host}\r\nConnection: close\r\n\r\n`);
    });
    sock.on('data', (b: Buffer) => chunks.push(b));
    sock.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = /^HTTP\/\d\.\d (\d{3})/.exec(text)?.[1];
      if (status === undefined) return finish({ ok: false, error: 'BAD_REPLY' });
      if (!status.startsWith('2')) return finish({ ok: false, error: `HTTP_${status}` });
      const sep = text.indexOf('\r\n\r\n');
      finish({ ok: true, body: sep >= 0 ? text.slice(sep + 4) : '' });
    });
    sock.on('close', () => finish({ ok: false, error: 'CLOSED' }));
  });
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

export class Probe {
  readonly target: ProbeTarget;
  private readonly opts: Required<Omit<ProbeOptions, 'infoPath'>> & { infoPath: string | undefined };
  private t0 = 0;
  private startedAt = '';
  private timer: NodeJS.Timeout | undefined;
  private sent = 0;
  private failed = 0;
  private inFlight = new Set<Promise<void>>();
  /** Completion times (ms since t0) and latencies of successful requests. */
  private okAt: number[] = [];
  private latencies: number[] = [];
  private errors: Record<string, number> = {};
  private infoFirst: Record<string, string> | null = null;
  private infoLast: Record<string, string> | null = null;
  private stopped: Promise<ProbeReport> | undefined;
  private reported = false;

  constructor(options: ProbeOptions) {
    this.target = parseProbeTarget(options.target);
    this.opts = {
      target: options.target,
      intervalMs: options.intervalMs ?? 20,
      timeoutMs: options.timeoutMs ?? 5000,
      infoPath: options.infoPath,
      infoEvery: options.infoEvery ?? 25,
    };
    if (!(this.opts.intervalMs >= 1)) throw new Error('probe interval must be ≥ 1 ms');
    if (this.opts.infoPath !== undefined && this.target.kind !== 'http') throw new Error('infoPath needs an http:// target');
  }

  /** Starts probing; the first request goes out immediately. */
  start(): this {
    if (this.timer || this.stopped) throw new Error('probe already started');
    this.t0 = performance.now();
    this.startedAt = new Date().toISOString();
    this.fire();
    this.timer = setInterval(() => this.fire(), this.opts.intervalMs);
    return this;
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  private fire(): void {
    const info = this.opts.infoPath !== undefined && this.sent % this.opts.infoEvery === 0;
    this.sent++;
    const t = this.now();
    const p = request(this.target, info ? this.opts.infoPath ?? '/' : this.target.path, this.opts.timeoutMs).then((o) => {
      this.inFlight.delete(p);
      this.record(o, t, info);
    });
    this.inFlight.add(p);
  }

  private record(o: Outcome, sentAt: number, info: boolean): void {
    if (this.reported) return; // late reply after the report: ignore
    if (o.ok) {
      const at = this.now();
      this.okAt.push(at);
      this.latencies.push(at - sentAt);
      if (info && o.body !== undefined) {
        const kv = parseInfo(o.body);
        if (Object.keys(kv).length > 0) {
          this.infoFirst ??= kv;
          this.infoLast = kv;
        }
      }
    } else {
      this.failed++;
      const k = o.error ?? 'ERROR';
      this.errors[k] = (this.errors[k] ?? 0) + 1;
    }
  }

  snapshot(endAt: number = this.now()): ProbeSnapshot {
    const ok = [...this.okAt].sort((a, b) => a - b);
    let maxGap = 0;
    let maxGapAt: number | null = null;
    for (let i = 1; i < ok.length; i++) {
      const g = ok[i]! - ok[i - 1]!;
      if (g > maxGap) { maxGap = g; maxGapAt = ok[i - 1]!; }
    }
    const first = ok[0] ?? null;
    const last = ok[ok.length - 1] ?? null;
    const downtime = last === null ? endAt : Math.max(maxGap, endAt - last);
    const lat = [...this.latencies].sort((a, b) => a - b);
    const pct = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!;
    return {
      target: this.opts.target,
      intervalMs: this.opts.intervalMs,
      startedAt: this.startedAt,
      elapsedMs: round1(endAt),
      sent: this.sent,
      ok: ok.length,
      failed: this.failed,
      inFlight: this.inFlight.size,
      maxGapMs: round1(maxGap),
      maxGapAtMs: maxGapAt === null ? null : round1(maxGapAt),
      downtimeMs: round1(downtime),
      firstOkAtMs: first === null ? null : round1(first),
      lastOkAtMs: last === null ? null : round1(last),
      latencyMs: lat.length ? { p50: round1(pct(0.5)), p99: round1(pct(0.99)), max: round1(lat[lat.length - 1]!) } : null,
      errors: { ...this.errors },
      infoFirst: this.infoFirst,
      infoLast: this.infoLast,
    };
  }

  /**
   * Stops sending, waits up to `drainMs` (default: min(timeoutMs, 1000)) for outstanding
   * requests, makes one final info request (if infoPath is set) so `infoLast` is taken at the
   * end of the window, and returns the report. Idempotent.
   */
  stop(drainMs?: number): Promise<ProbeReport> {
    this.stopped ??= this.doStop(drainMs ?? Math.min(this.opts.timeoutMs, 1000));
    return this.stopped;
  }

  private async doStop(drainMs: number): Promise<ProbeReport> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const endAt = this.now();
    let drainTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.inFlight]),
      new Promise<void>((r) => { drainTimer = setTimeout(r, drainMs); }),
    ]);
    clearTimeout(drainTimer);
    // The final info request is not counted as a probe request: it starts after the drain,
    // so its reply time says nothing about the service's availability.
    if (this.opts.infoPath !== undefined) {
      const o = await request(this.target, this.opts.infoPath, this.opts.timeoutMs);
      const kv = o.ok && o.body !== undefined ? parseInfo(o.body) : {};
      if (Object.keys(kv).length > 0) {
        this.infoFirst ??= kv;
        this.infoLast = kv;
      }
    }
    this.reported = true;
    // downtime is judged at the moment stop() was called (or the last reply drained after it)
    const lastOk = this.okAt.reduce((m, x) => Math.max(m, x), endAt);
    const snap = this.snapshot(lastOk);
    const bootA = snap.infoFirst?.boot_id;
    const bootB = snap.infoLast?.boot_id;
    const upA = Number(snap.infoFirst?.uptime);
    const upB = Number(snap.infoLast?.uptime);
    return {
      ...snap,
      abandoned: snap.inFlight,
      durationMs: round1(endAt),
      sameBoot: bootA !== undefined && bootB !== undefined ? bootA === bootB : null,
      uptimeGrowthS: Number.isFinite(upA) && Number.isFinite(upB) && snap.infoFirst !== snap.infoLast ? round1(upB - upA) : null,
    };
  }
}

/** In-process probe (same network namespace as the caller). */
export function runProbe(options: ProbeOptions): Probe {
  return new Probe(options).start();
}
