#!/usr/bin/env node
/**
 * Stand-alone probe process, for targets that only exist inside a network namespace:
 *
 *   ip netns exec tide-lab-sw node dist/probe/cli.js http://10.77.0.11/ --interval-ms 20
 *
 * Streams JSON lines on stdout:
 *   {"type":"started", "target", "pid"}          once probing has begun
 *   {"type":"progress", …ProbeSnapshot}           every --report-ms (default 1000; 0 = never)
 *   {"type":"report", …ProbeReport}               once, at the end; then exit 0
 * It stops on SIGTERM/SIGINT, when stdin (a pipe or socket) is closed — so it never outlives
 * a parent that dies — after --duration-ms, or with --until-ok at the first success (exit 0;
 * exit 1 if --duration-ms passes first). Usage errors: one {"type":"error"} line, exit 2.
 */
import { fstatSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Probe, type ProbeReport } from './probe.js';

function emit(obj: object): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function num(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
  return n;
}

async function main(): Promise<number> {
  let probe: Probe;
  let reportMs: number;
  let durationMs: number;
  let untilOk: boolean;
  try {
    const { values, positionals } = parseArgs({
      allowPositionals: true,
      options: {
        'interval-ms': { type: 'string' },
        'timeout-ms': { type: 'string' },
        'info-path': { type: 'string' },
        'info-every': { type: 'string' },
        'report-ms': { type: 'string' },
        'duration-ms': { type: 'string' },
        'until-ok': { type: 'boolean' },
      },
    });
    if (positionals.length !== 1 || positionals[0] === undefined) throw new Error('usage: cli.js TARGET [--interval-ms 20] [--timeout-ms 5000] [--info-path P] [--info-every 25] [--report-ms 1000] [--duration-ms N] [--until-ok]');
    probe = new Probe({
      target: positionals[0],
      intervalMs: num(values['interval-ms'], 'interval-ms', 20),
      timeoutMs: num(values['timeout-ms'], 'timeout-ms', 5000),
      infoPath: values['info-path'],
      infoEvery: num(values['info-every'], 'info-every', 25),
    });
    reportMs = num(values['report-ms'], 'report-ms', 1000);
    durationMs = num(values['duration-ms'], 'duration-ms', 0);
    untilOk = values['until-ok'] === true;
  } catch (e) {
    emit({ type: 'error', message: (e as Error).message });
    return 2;
  }

  let finish!: (why: string) => void;
  const stopped = new Promise<string>((r) => { finish = r; });
  process.on('SIGTERM', () => finish('SIGTERM'));
  process.on('SIGINT', () => finish('SIGINT'));
  try {
    const st = fstatSync(0);
    if (st.isFIFO() || st.isSocket()) {
      process.stdin.on('end', () => finish('stdin closed'));
      process.stdin.on('close', () => finish('stdin closed'));
      process.stdin.resume();
    }
  } catch { /* no stdin */ }
  if (durationMs > 0) setTimeout(() => finish('duration'), durationMs).unref();

  probe.start();
  emit({ type: 'started', target: probe.target, pid: process.pid });
  const progress = reportMs > 0 ? setInterval(() => emit({ type: 'progress', ...probe.snapshot() }), reportMs) : undefined;
  let okSeen = false;
  const watch = untilOk ? setInterval(() => { if (probe.snapshot().ok > 0) { okSeen = true; finish('ok'); } }, 5) : undefined;

  const why = await stopped;
  if (progress) clearInterval(progress);
  if (watch) clearInterval(watch);
  const report: ProbeReport = await probe.stop(untilOk ? 0 : undefined);
  emit({ type: 'report', stoppedBy: why, ...report });
  if (untilOk) return okSeen || report.ok > 0 ? 0 : 1;
  return 0;
}

main().then((code) => {
  // in-flight sockets must not keep the process alive once the report is out
  process.stdout.write('', () => process.exit(code));
}, (e: unknown) => {
  emit({ type: 'error', message: String(e) });
  process.exit(1);
});
