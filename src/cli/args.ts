import { parseArgs, type ParseArgsConfig } from 'node:util';
import { MAX_TIMER_MS, parseNumberText } from '../input/schema.js';
import { UsageError } from './io.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** util.parseArgs with errors turned into UsageError (exit status 2, message names the flag). */
export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export function parse(argv: string[], options: Options, allowPositionals = false): Parsed {
  try {
    const r = parseArgs({ args: argv, options: { config: { type: 'string' }, ...options }, allowPositionals, strict: true });
    return { values: r.values as Parsed['values'], positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^.*?: /, ''));
  }
}

/**
 * A numeric flag through the input schema (src/input/schema.ts): decimal notation, finite,
 * within min..max (max defaults to 2^31-1, the longest setTimeout Node honours, so no count
 * or millisecond value can overflow a timer or an allocation). Unset → fallback.
 */
export function num(value: string | undefined, flag: string, fallback: number, opts: { min?: number; max?: number; int?: boolean } = {}): number {
  if (value === undefined) return fallback;
  return parseNumberText(value, flag, { min: opts.min ?? -MAX_TIMER_MS, max: opts.max ?? MAX_TIMER_MS, int: opts.int });
}

/** A progress bar on stderr, drawn only on a terminal. */
export function progressBar(io: { err(t: string): void; isTty: boolean }, label: string): { update(f: number): void; done(): void } {
  if (!io.isTty) return { update: () => {}, done: () => {} };
  let last = -1;
  return {
    update(f) {
      const pct = Math.floor(f * 100);
      if (pct === last) return;
      last = pct;
      const width = 30;
      const fill = Math.round((f * width));
      io.err(`\r${label} [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ${String(pct).padStart(3)} %`);
    },
    done() {
      io.err('\r\x1b[2K');
    },
  };
}

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n') + '\n';
}
