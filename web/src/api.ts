/**
 * The dashboard's view of Tide's HTTP API (/api/v1, bearer token). Every response is read
 * through a small normaliser so the pages depend on one shape (the types below) rather than on
 * each route's exact envelope: a list may come bare or as { items | hosts | vms | ... }.
 */

export type Role = 'viewer' | 'operator' | 'admin';

export interface Host {
  id: string;
  /** on | off | booting | waking | shuttingDown | unknown */
  power: string;
  maintenance: boolean;
  cpuPct: number | null;
  memUsedMiB: number | null;
  memMiB: number | null;
  cpuCores: number | null;
}

export interface Vm {
  id: string;
  host: string | null;
  memMiB: number;
  cpuPct: number | null;
  state: string;
}

export interface Migration {
  key: string;
  vm: string;
  from: string;
  to: string;
  /** 0..100, null when unknown. */
  progressPct: number | null;
  state: string;
}

export interface PlanStep {
  id: number;
  kind: string;
  vm?: string;
  host?: string;
  from?: string;
  to?: string;
  reason: string;
  state?: string;
}

export interface Plan {
  id: number;
  /** Steps in the plan (a list row carries the count only; `steps` needs the plan's detail). */
  stepCount: number;
  summary: string | null;
  status: string;
  mode: string | null;
  createdMs: number | null;
  steps: PlanStep[];
  notMoved: { vm: string; reason: string }[];
  reason: string | null;
}

export interface ScheduleView {
  nowMs: number | null;
  windows: { kind: string; startMs: number; endMs: number; label?: string }[];
  current: { kind: string; label?: string } | null;
  nextConsolidationMs: number | null;
  preWakeMs: number | null;
}

export interface HistoryPoint {
  tMs: number;
  hostsOn: number | null;
  energyKWh: number | null;
  alwaysOnKWh: number | null;
  migrations: number | null;
  /** Per host: CPU busy, % (0 when off). */
  hostCpuPct: Record<string, number>;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export interface Client {
  get<T = unknown>(path: string): Promise<T>;
  post<T = unknown>(path: string, body?: unknown): Promise<T>;
}

export function client(token: string, base = 'api/v1'): Client {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string }; code?: string; message?: string } | null) ?? {};
      const code = err.error?.code ?? err.code ?? `HTTP_${res.status}`;
      throw new ApiError(res.status, code, err.error?.message ?? err.message ?? res.statusText);
    }
    return json as T;
  };
  return { get: (p) => call('GET', p), post: (p, b) => call('POST', p, b ?? {}) };
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const num = (...xs: unknown[]): number | null => {
  for (const x of xs) if (typeof x === 'number' && Number.isFinite(x)) return x;
  return null;
};
const str = (...xs: unknown[]): string | null => {
  for (const x of xs) if (typeof x === 'string' && x !== '') return x;
  return null;
};

/** A list however the route wraps it. */
export function listOf(x: unknown, ...keys: string[]): Obj[] {
  if (Array.isArray(x)) return x.filter(isObj);
  if (isObj(x)) {
    for (const k of [...keys, 'items', 'data', 'results']) if (Array.isArray(x[k])) return (x[k] as unknown[]).filter(isObj);
  }
  return [];
}

export function normHost(h: Obj): Host {
  const usage = isObj(h.usage) ? h.usage : {};
  const memMiB = num(h.memMiB, h.memoryMiB, h.memTotalMiB);
  const memPct = num(usage.memPct, h.memPct);
  return {
    id: str(h.id, h.name) ?? '?',
    power: str(h.powerState, h.power, h.state) ?? 'unknown',
    maintenance: h.maintenance === true,
    cpuPct: num(usage.cpuPct, h.cpuPct),
    memUsedMiB: num(usage.memUsedMiB, h.memUsedMiB) ?? (memPct !== null && memMiB !== null ? (memPct / 100) * memMiB : null),
    memMiB,
    cpuCores: num(h.cpuCores, h.cores),
  };
}

export function normVm(v: Obj): Vm {
  const usage = isObj(v.usage) ? v.usage : {};
  return {
    id: str(v.id, v.name) ?? '?',
    host: str(v.host, v.hostId),
    memMiB: num(v.memMiB, v.memoryMiB) ?? 512,
    cpuPct: num(usage.cpuPct, v.cpuPct),
    state: str(v.state, v.powerState) ?? 'running',
  };
}

export function normMigration(m: Obj, i: number): Migration {
  const done = num(m.dataProcessedBytes, m.processedBytes);
  const total = num(m.dataTotalBytes, m.totalBytes);
  const pct = num(m.progressPct, m.percent) ?? (done !== null && total ? (100 * done) / total : null);
  return {
    key: `${str(m.vm) ?? i}-${num(m.startedMs, m.startMs) ?? i}`,
    vm: str(m.vm) ?? '?',
    from: str(m.from, m.source) ?? '?',
    to: str(m.to, m.target, m.dest) ?? '?',
    progressPct: pct === null ? null : Math.max(0, Math.min(100, pct)),
    state: str(m.state, m.status, m.outcome) ?? 'running',
  };
}

export function normPlan(p: Obj): Plan {
  const inner = isObj(p.plan) ? p.plan : p;
  const steps = listOf(inner.stepDetails ?? inner.steps).map((s, i): PlanStep => ({
    id: num(s.id) ?? i,
    kind: str(s.kind) ?? '?',
    vm: str(s.vm) ?? undefined,
    host: str(s.host) ?? undefined,
    from: str(s.from) ?? undefined,
    to: str(s.to) ?? undefined,
    reason: str(s.reason) ?? '',
    state: str(s.state, s.status) ?? undefined,
  }));
  const notMovedRaw = listOf(inner.notMoved ?? inner.whyNot ?? inner.unmoved ?? p.notMoved ?? p.whyNot);
  return {
    stepCount: num(p.steps) ?? steps.length,
    summary: str(p.summary),
    id: num(p.id, inner.id) ?? 0,
    status: str(p.status, inner.status) ?? 'proposed',
    mode: str(p.mode, inner.mode),
    createdMs: num(p.createdMs, inner.createdMs),
    steps,
    notMoved: notMovedRaw.map((n) => ({ vm: str(n.vm, n.id) ?? '?', reason: str(n.reason, n.why) ?? '' })),
    reason: str(inner.reason, p.statusReason, p.reason),
  };
}

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const hhmm = (x: unknown): number => {
  const m = typeof x === 'string' ? /^(\d\d):(\d\d)$/.exec(x) : null;
  return m ? (Number(m[1]) * 60 + Number(m[2])) * 60_000 : 0;
};

/**
 * The configured windows laid out over [fromMs, fromMs + spanMs) (UTC days; a window whose
 * `to` ≤ `from` runs into the next day), the next consolidate start after `nowMs`, and the
 * end of the consolidation in force (when hosts switched off are woken again).
 */
export function scheduleFromConfig(cfg: Obj, nowMs: number): Pick<ScheduleView, 'windows' | 'nextConsolidationMs' | 'preWakeMs'> {
  const windows: ScheduleView['windows'] = [];
  const day0 = Math.floor(nowMs / 86_400_000) * 86_400_000;
  for (let d = -1; d < 9; d++) {
    const dayMs = day0 + d * 86_400_000;
    const wd = DAYS[new Date(dayMs).getUTCDay()];
    for (const w of listOf(cfg.windows)) {
      if (!Array.isArray(w.days) || !w.days.includes(wd)) continue;
      const from = hhmm(w.from);
      let to = hhmm(w.to);
      if (to <= from) to += 86_400_000;
      windows.push({ kind: str(w.kind) ?? 'window', startMs: dayMs + from, endMs: dayMs + to, label: str(w.name) ?? undefined });
    }
  }
  windows.sort((a, b) => a.startMs - b.startMs);
  // Adjacent windows of one kind read as one span (a weekend after Friday night).
  const merged: ScheduleView['windows'] = [];
  for (const w of windows) {
    const last = merged[merged.length - 1];
    if (last && last.kind === w.kind && w.startMs <= last.endMs) last.endMs = Math.max(last.endMs, w.endMs);
    else merged.push({ ...w });
  }
  const cons = merged.filter((w) => w.kind === 'consolidate');
  const next = cons.find((w) => w.startMs > nowMs);
  const current = cons.find((w) => w.startMs <= nowMs && nowMs < w.endMs);
  return { windows: merged, nextConsolidationMs: next?.startMs ?? null, preWakeMs: current?.endMs ?? next?.endMs ?? null };
}

export function normSchedule(s: unknown): ScheduleView {
  const o = isObj(s) ? s : {};
  const nowMs = num(o.nowMs);
  if (isObj(o.schedule) && nowMs !== null) {
    const cur = isObj(o.current) ? o.current : null;
    return { nowMs, current: cur ? { kind: str(cur.kind) ?? 'window', label: str(cur.name) ?? undefined } : null, ...scheduleFromConfig(o.schedule, nowMs) };
  }
  return {
    nowMs: num(o.nowMs),
    windows: listOf(o.windows).map((w) => ({
      kind: str(w.kind, w.mode) ?? 'window',
      startMs: num(w.startMs, w.fromMs) ?? 0,
      endMs: num(w.endMs, w.toMs) ?? 0,
      label: str(w.label, w.name) ?? undefined,
    })),
    current: isObj(o.current) ? { kind: str(o.current.kind, o.current.mode) ?? 'window', label: str(o.current.label) ?? undefined } : null,
    nextConsolidationMs: num(o.nextConsolidationMs),
    preWakeMs: num(o.preWakeMs, o.predictedPreWakeMs),
  };
}

export function normHistory(h: unknown): HistoryPoint[] {
  return listOf(h, 'points', 'history').map((p) => ({
    tMs: num(p.tMs, p.atMs, p.timeMs) ?? 0,
    hostsOn: num(p.hostsOn),
    energyKWh: num(p.energyKWh),
    alwaysOnKWh: num(p.alwaysOnKWh, p.baselineKWh),
    migrations: num(p.migrations),
    hostCpuPct: isObj(p.hostCpuPct) ? Object.fromEntries(Object.entries(p.hostCpuPct).filter(([, v]) => typeof v === 'number')) as Record<string, number> : {},
  }));
}

/**
 * Server-sent events over fetch (EventSource cannot send an Authorization header). Calls
 * `onEvent` per event; resolves when the stream ends, rejects on an HTTP error.
 */
export async function streamEvents(token: string, onEvent: (type: string, data: string) => void, signal: AbortSignal, onOpen?: () => void, base = 'api/v1'): Promise<void> {
  const res = await fetch(`${base}/events`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal });
  if (!res.ok || !res.body) throw new ApiError(res.status, `HTTP_${res.status}`, 'event stream refused');
  onOpen?.();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  while (true) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let idx: number;
    while ((idx = buf.search(/\r?\n\r?\n/)) >= 0) {
      const chunk = buf.slice(0, idx);
      buf = buf.slice(idx).replace(/^\r?\n\r?\n/, '');
      let type = 'message';
      const data: string[] = [];
      for (const line of chunk.split(/\r?\n/)) {
        if (line.startsWith('event:')) type = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length > 0 || type !== 'message') onEvent(type, data.join('\n'));
    }
  }
}

/**
 * History from the stored metrics (a daemon without the demo's history): each host's recent CPU
 * (GET /hosts/{host} → recent[]), merged on the sample times.
 */
export function historyFromRecent(byHost: Record<string, unknown>): HistoryPoint[] {
  const at = new Map<number, Record<string, number>>();
  for (const [host, body] of Object.entries(byHost)) {
    for (const r of listOf(isObj(body) ? body.recent : undefined)) {
      const t = num(r.atMs);
      const cpu = num(r.cpuPct);
      if (t === null || cpu === null) continue;
      const row = at.get(t) ?? {};
      row[host] = cpu;
      at.set(t, row);
    }
  }
  return [...at.entries()].sort((a, b) => a[0] - b[0])
    .map(([tMs, hostCpuPct]) => ({ tMs, hostsOn: null, energyKWh: null, alwaysOnKWh: null, migrations: null, hostCpuPct }));
}
