/**
 * What a plan assumed about the cluster, in one comparable text: which VMs exist and where
 * each is, each host's power state and whether it is in maintenance or excluded. A plan waiting
 * for approval is executed only while a fresh collect gives the same fingerprint; usage is not
 * part of it (it changes every round; the executor re-checks each step's premise anyway).
 */
import type { ClusterSnapshot } from '../core/model/types.js';
import type { Plan } from '../core/plan/types.js';

interface Parts {
  /** host → "on", "off+maintenance", … */
  readonly h: Record<string, string>;
  /** VM → host */
  readonly v: Record<string, string>;
}

function sorted(entries: [string, string][]): Record<string, string> {
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function fingerprintOf(snapshot: Pick<ClusterSnapshot, 'hosts' | 'vms'>): string {
  const parts: Parts = {
    h: sorted(snapshot.hosts.map((h) => [h.id, [h.powerState, ...(h.maintenance ? ['maintenance'] : []), ...(h.excluded ? ['excluded'] : [])].join('+')])),
    v: sorted(snapshot.vms.map((v) => [v.id, v.host ?? '-'])),
  };
  return JSON.stringify(parts);
}

function parse(fp: string): Parts | null {
  try {
    const p = JSON.parse(fp) as Parts;
    return p && typeof p.h === 'object' && typeof p.v === 'object' ? p : null;
  } catch {
    return null;
  }
}

/**
 * What changed from `before` to `after`, in words (at most `max` items, then "and N more");
 * null when they are the same.
 */
export function describeChange(before: string, after: string, max = 4): string | null {
  if (before === after) return null;
  const a = parse(before);
  const b = parse(after);
  if (!a || !b) return 'the cluster changed (fingerprint unreadable)';
  const out: string[] = [];
  for (const [vm, host] of Object.entries(b.v)) {
    const was = a.v[vm];
    if (was === undefined) out.push(`${vm} appeared on ${host}`);
    else if (was !== host) out.push(`${vm} moved ${was} → ${host}`);
  }
  for (const [vm, host] of Object.entries(a.v)) if (!(vm in b.v)) out.push(`${vm} is gone from ${host}`);
  for (const [h, st] of Object.entries(b.h)) {
    const was = a.h[h];
    if (was === undefined) out.push(`host ${h} appeared (${st})`);
    else if (was !== st) out.push(`host ${h} ${was} → ${st}`);
  }
  for (const h of Object.keys(a.h)) if (!(h in b.h)) out.push(`host ${h} is gone`);
  if (out.length === 0) return 'the cluster changed';
  return out.length > max ? `${out.slice(0, max).join('; ')} and ${out.length - max} more` : out.join('; ');
}

/** The plan's steps as one text: two plans with the same signature do the same thing. */
export function planSignature(plan: Pick<Plan, 'steps'>): string {
  return plan.steps.map((s) => {
    const deps = `[${[...s.deps].sort((x, y) => x - y).join(',')}]`;
    if (s.kind === 'migrate') return `${s.id}:migrate ${s.vm} ${s.from}>${s.to}${deps}`;
    if (s.kind === 'place') return `${s.id}:place ${s.vm} >${s.to}${deps}`;
    return `${s.id}:${s.kind} ${s.host}${deps}`;
  }).join(';');
}
