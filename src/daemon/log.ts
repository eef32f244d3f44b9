/**
 * The daemon's structured log (pino): one JSON object per line when the output is not a
 * terminal (journald, files, log shippers), a short readable line on a terminal. Every line
 * goes through a scrubber that replaces each known secret (BMC passwords read from their
 * files or environment variables) with "[redacted]", so no code path — an error message that
 * echoes a command line, a config dump — can put one in the log. Fields named password or
 * passwordFile are redacted by pino too.
 *
 * Conventions (what tests and operators key on): `msg` is a sentence; `event` names the kind
 * (round, plan, step-start, step-end, power, plan-status, reload, signal, error, start, stop);
 * errors carry their Tide `code`.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import pino from 'pino';
import type { TideConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';

export type DaemonLogger = pino.Logger;

export interface LogOptions {
  /** Where each finished line goes (with its trailing newline). */
  readonly write: (line: string) => void;
  /** Readable lines instead of JSON. */
  readonly tty: boolean;
  /** pino level (default 'info'). */
  readonly level?: string;
  /** Time source of each line's `time`, ms (default Date.now; the demo passes its virtual clock). */
  readonly clock?: Pick<Clock, 'now'>;
  /**
   * Values that must never appear in a line (shorter than 4 characters: ignored, they would mangle
   * ordinary text). A function is asked at each line: a reload (SIGHUP) may bring new secrets.
   */
  readonly secrets?: readonly string[] | (() => readonly string[]);
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'event']);

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** "2026-12-01 22:40:01 INFO  msg  key=value …" for a terminal (UTC; the JSON keeps epoch ms). */
export function formatTtyLine(o: Record<string, unknown>): string {
  const t = typeof o.time === 'number' ? new Date(o.time) : null;
  const at = t && !Number.isNaN(t.getTime())
    ? `${t.getUTCFullYear()}-${pad2(t.getUTCMonth() + 1)}-${pad2(t.getUTCDate())} ${pad2(t.getUTCHours())}:${pad2(t.getUTCMinutes())}:${pad2(t.getUTCSeconds())}`
    : '-';
  const level = (LEVELS[o.level as number] ?? String(o.level)).padEnd(5);
  const extra = Object.entries(o).filter(([k, v]) => !SKIP.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
  return `${at} ${level} ${String(o.msg ?? '')}${extra.length ? `  ${extra.join(' ')}` : ''}\n`;
}

export function createLogger(opts: LogOptions): DaemonLogger {
  const listOf = (l: readonly string[]): string[] => [...new Set(l.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length);
  const given = opts.secrets;
  const fixed = typeof given === 'function' ? null : listOf(given ?? []);
  const scrub = (line: string): string => {
    let out = line;
    for (const s of fixed ?? listOf((given as () => readonly string[])())) {
      // In JSON a secret may appear escaped; scrub both spellings.
      for (const form of new Set([s, JSON.stringify(s).slice(1, -1)])) out = out.split(form).join('[redacted]');
    }
    return out;
  };
  const stream = {
    write(line: string): void {
      if (!opts.tty) {
        opts.write(scrub(line));
        return;
      }
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        opts.write(scrub(line));
        return;
      }
      opts.write(scrub(formatTtyLine(obj)));
    },
  };
  const clock = opts.clock;
  return pino({
    level: opts.level ?? 'info',
    base: { pid: process.pid },
    redact: { paths: ['password', 'passwordFile', '*.password', '*.passwordFile'], censor: '[redacted]' },
    ...(clock ? { timestamp: () => `,"time":${Math.round(clock.now())}` } : {}),
  }, stream);
}

/**
 * The secrets a configuration refers to, read the way the power drivers read them: each IPMI
 * section's passwordFile (first line; relative to the configuration file) or passwordEnv
 * (default TIDE_IPMI_PASSWORD). Unreadable ones are skipped (the driver reports those).
 */
export function configSecrets(config: TideConfig, configFile: string | null, env: Readonly<Record<string, string | undefined>>): string[] {
  const out: string[] = [];
  const base = configFile ? dirname(resolve(configFile)) : process.cwd();
  const ipmiOf = (p: TideConfig['hosts'][number]['power']): { passwordFile?: string; passwordEnv?: string }[] => {
    if (p.kind === 'ipmi') return [p];
    if (p.kind === 'wol' && p.off?.kind === 'ipmi') return [p.off];
    return [];
  };
  for (const h of config.hosts) {
    for (const p of ipmiOf(h.power)) {
      if (p.passwordFile !== undefined) {
        try {
          const f = isAbsolute(p.passwordFile) ? p.passwordFile : resolve(base, p.passwordFile);
          const first = readFileSync(f, 'utf8').split(/\r?\n/)[0];
          if (first) out.push(first);
        } catch { /* the driver reports an unreadable file */ }
      } else {
        const v = env[p.passwordEnv ?? 'TIDE_IPMI_PASSWORD'];
        if (v) out.push(v);
      }
    }
  }
  return out;
}
