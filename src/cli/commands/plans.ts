import type { TideConfig } from '../../config/schema.js';
import { openConfigStore } from '../../daemon/config.js';
import { listPlanRows } from '../../daemon/ops.js';
import type { PlanStatus, Store } from '../../store/store.js';
import { num, parse, table } from '../args.js';
import { clusterConfig } from '../cluster.js';
import { UsageError, type CliIo, type Command } from '../io.js';

const STATUSES: readonly PlanStatus[] = ['proposed', 'approved', 'running', 'done', 'failed', 'rejected', 'superseded', 'expired'];

const usage = `tide [--config FILE] plans [--status S] [--limit N] [--json]

  The plans in the store (newest first): what the daemon proposed, executed, or retired, with
  each plan's status and why. Statuses: ${STATUSES.join(', ')}.
  A proposed plan awaits \`tide approve ID\` (approve mode); see \`tide plan show ID\`.

  --status S   only plans with this status
  --limit N    at most N plans (default 20)
  --json       one JSON array`;

/** "2026-12-01 22:40:01Z" (UTC). */
export function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

export function parseStatus(v: unknown): PlanStatus | undefined {
  if (v === undefined) return undefined;
  if (!STATUSES.includes(v as PlanStatus)) throw new UsageError(`--status is one of ${STATUSES.join(', ')} (got '${String(v)}')`);
  return v as PlanStatus;
}

/** A plan id argument: a positive integer. */
export function planId(v: string | undefined, what: string): number {
  if (v === undefined) throw new UsageError(`which plan? (${what})`);
  if (!/^[1-9]\d{0,15}$/.test(v)) throw new UsageError(`a plan id is a positive integer (got '${v}')`);
  return Number(v);
}

/** Runs `fn` on the store the configuration names, closing it afterwards. */
export async function withConfigStore<T>(values: Record<string, unknown>, io: CliIo, fn: (store: Store, config: TideConfig, file: string) => Promise<T> | T): Promise<T> {
  const { config, file } = clusterConfig(values, io);
  const store = openConfigStore(config, file);
  try {
    return await fn(store, config, file);
  } finally {
    store.close();
  }
}

export const plansCommand: Command = {
  summary: 'list the plans the daemon proposed, executed or retired, with their status',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { status: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const status = parseStatus(values.status);
    const limit = num(values.limit as string | undefined, '--limit', 20, { min: 1, max: 10_000, int: true });
    return withConfigStore(values, io, (store) => {
      const rows = listPlanRows(store, { ...(status ? { status } : {}), limit });
      if (values.json) {
        io.out(`${JSON.stringify(rows, null, 2)}\n`);
        return 0;
      }
      if (rows.length === 0) {
        io.out(`no plans${status ? ` with status ${status}` : ''}\n`);
        return 0;
      }
      io.out(table(['id', 'created', 'mode', 'status', 'steps', 'what / why'],
        rows.map((r) => [r.id, fmtTime(r.createdMs), r.mode, r.status, r.steps, r.statusReason ? `${r.summary} — ${r.statusReason}` : r.summary])));
      return 0;
    });
  },
};
