/**
 * The dashboard's live state: one fetch of every read route, refreshed when the event stream
 * says something changed (debounced) and, as a fallback, every few seconds.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  ApiError, client, historyFromRecent, listOf, normHistory, normHost, normMigration, normPlan, normSchedule, normVm, streamEvents,
  type Client, type HistoryPoint, type Host, type Migration, type Plan, type Role, type ScheduleView, type Vm,
} from './api';
import { energyAt, type EnergyMark } from './saving';

export interface DemoStatus {
  simMs: number | null;
  /** Added to the daemon's clock (plan times) to read it as a date. */
  epochMs: number;
  speed: number | null;
  energyKWh: number | null;
  alwaysOnKWh: number | null;
  migrations: number | null;
  mode: string | null;
  /** Days observed in recommend mode before acting (`--observe-days`; 0: none). */
  observeDays: number;
  /** Where acting began (simulated ms on the epoch, like simMs); null: not a demo that says so. */
  actingFromMs: number | null;
  /** The cumulative energy at actingFromMs, read once from the history (see useCluster); null until known. */
  actingStart: EnergyMark | null;
}

export interface ClusterState {
  loaded: boolean;
  hosts: Host[];
  vms: Vm[];
  migrations: Migration[];
  plans: Plan[];
  schedule: ScheduleView | null;
  history: HistoryPoint[];
  demo: DemoStatus | null;
  live: boolean;
  error: string | null;
  updatedMs: number;
}

const EMPTY: ClusterState = {
  loaded: false, hosts: [], vms: [], migrations: [], plans: [], schedule: null, history: [], demo: null, live: false, error: null, updatedMs: 0,
};

/** GET that yields null for a route this server does not offer (404/405/501). */
async function optional<T>(api: Client, path: string): Promise<T | null> {
  try {
    return await api.get<T>(path);
  } catch (e) {
    if (e instanceof ApiError && [404, 405, 501].includes(e.status)) return null;
    throw e;
  }
}

export async function whoami(token: string): Promise<{ role: Role; name: string }> {
  const r = await client(token).get<{ role?: string; name?: string; token?: { role?: string; name?: string } }>('/whoami');
  const role = (r.role ?? r.token?.role ?? 'viewer') as Role;
  return { role: ['viewer', 'operator', 'admin'].includes(role) ? role : 'viewer', name: r.name ?? r.token?.name ?? '' };
}

function demoOf(x: unknown): DemoStatus | null {
  if (typeof x !== 'object' || x === null) return null;
  const o = x as Record<string, unknown>;
  const n = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return {
    simMs: n(o.simMs), epochMs: n(o.epochMs) ?? 0, speed: n(o.speed), energyKWh: n(o.energyKWh), alwaysOnKWh: n(o.alwaysOnKWh), migrations: n(o.migrations),
    mode: typeof o.mode === 'string' ? o.mode : null,
    observeDays: n(o.observeDays) ?? 0, actingFromMs: n(o.actingFromMs), actingStart: null,
  };
}

/** A history as the API sends it: the demo's own points as they are, anything else normalised. */
function historyOf(raw: unknown): HistoryPoint[] {
  return Array.isArray(raw) && raw.every((p) => 'hostCpuPct' in (p as object)) ? raw as HistoryPoint[] : normHistory(raw);
}

export function useCluster(token: string, onUnauthorized: () => void, withHistory: boolean): [ClusterState, () => void] {
  // Read by load() through a ref: the History page alone pulls the (long) per-round history.
  const historyWanted = useRef(withHistory);
  historyWanted.current = withHistory;
  const [state, setState] = useState<ClusterState>(EMPTY);
  const timer = useRef<number | undefined>(undefined);
  const inflight = useRef(false);
  const again = useRef(false);
  // The demo's energy where acting began: fixed once the history has passed it, so read once.
  const actingStart = useRef<EnergyMark | null>(null);

  const load = async (): Promise<void> => {
    if (inflight.current) {
      again.current = true;
      return;
    }
    inflight.current = true;
    const api = client(token);
    try {
      const [hosts, vms, plans, schedule, demo] = await Promise.all([
        api.get('/hosts'), api.get('/vms'), optional(api, '/plans?limit=10'), optional(api, '/schedule'), optional(api, historyWanted.current ? '/demo?history=1' : '/demo'),
      ]);
      const rows = listOf(plans, 'plans').map(normPlan);
      // The plan in focus (pending or executing, else the newest) with its steps and why-nots.
      const focus = rows.find((p) => ['proposed', 'approved', 'running'].includes(p.status) && p.stepCount > 0) ?? rows[0];
      const detail = focus ? normPlan(await api.get<Record<string, unknown>>(`/plans/${focus.id}`)) : null;
      const d = demoOf(demo);
      let rawHistory: unknown = demo && typeof demo === 'object' ? (demo as { history?: unknown }).history : undefined;
      const hostList = listOf(hosts, 'hosts').map(normHost);
      // Not the demo: the History page reads each host's stored metrics (last 48 h).
      if (historyWanted.current && rawHistory === undefined && demo === null) {
        const recent = await Promise.all(hostList.map((h) => optional(api, `/hosts/${encodeURIComponent(h.id)}?hours=48`)));
        rawHistory = historyFromRecent(Object.fromEntries(hostList.map((h, i) => [h.id, recent[i]])));
      }
      // A demo that observed days first: the acting period's saving needs the energy at its start,
      // from the history (the History page's, else fetched here until the history has reached it).
      if (d && d.observeDays > 0 && d.actingFromMs !== null) {
        if (actingStart.current === null && d.simMs !== null && d.simMs >= d.actingFromMs) {
          const raw = rawHistory ?? (await optional<{ history?: unknown }>(api, '/demo?history=1'))?.history;
          if (raw !== undefined) actingStart.current = energyAt(historyOf(raw), d.actingFromMs);
        }
        d.actingStart = actingStart.current;
      }
      setState((s) => ({
        ...s,
        loaded: true,
        hosts: hostList,
        vms: listOf(vms, 'vms').map(normVm),
        plans: rows.map((p) => (detail && p.id === detail.id ? detail : p)),
        schedule: schedule ? normSchedule(schedule) : null,
        demo: d,
        history: rawHistory === undefined ? s.history : historyOf(rawHistory),
        error: null,
        updatedMs: Date.now(),
      }));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) onUnauthorized();
      setState((s) => ({ ...s, error: e instanceof Error ? e.message : String(e) }));
    } finally {
      inflight.current = false;
      if (again.current) {
        again.current = false;
        void load();
      }
    }
  };
  // Live migrations from the event stream: step-start adds, progress updates, step-end marks it
  // finished (100 %, or failed/aborted) and removes it LINGER_MS later, so that even a short
  // migration's bar is seen to complete.
  const running = useRef(new Map<number, Migration>());
  const publish = (): void => setState((s) => ({ ...s, migrations: [...running.current.values()] }));
  const LINGER_MS = 2500;
  const onMigrationEvent = (type: string, data: string): void => {
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return;
    }
    const step = typeof e.step === 'number' ? e.step : null;
    if (step === null) return;
    if (type === 'step-start' && e.kind === 'migrate') {
      running.current.set(step, { ...normMigration(e, step), key: `${e.vm}-${step}`, progressPct: 0 });
      publish();
    } else if (type === 'progress' && running.current.has(step)) {
      const m = normMigration(e, step);
      running.current.set(step, { ...running.current.get(step)!, progressPct: m.progressPct });
      publish();
    } else if (type === 'progress' && typeof e.vm === 'string' && typeof e.to === 'string') {
      // a migration that started before this page connected
      running.current.set(step, { ...normMigration(e, step), key: `${e.vm}-${step}`, state: 'running' });
      publish();
    } else if (type === 'step-end' && running.current.has(step)) {
      const m = running.current.get(step)!;
      const state = typeof e.state === 'string' ? e.state : 'done';
      const aborted = (e.error as { code?: string } | null)?.code === 'TIDE_ABORTED';
      running.current.set(step, { ...m, state: aborted ? 'aborted' : state, progressPct: state === 'succeeded' ? 100 : m.progressPct });
      publish();
      window.setTimeout(() => {
        if (running.current.get(step)?.key === m.key) {
          running.current.delete(step);
          publish();
        }
      }, LINGER_MS);
    } else if (type === 'round' && running.current.size > 20) {
      running.current.clear();
      publish();
    }
  };
  const refresh = (): void => {
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => void load(), 150);
  };

  useEffect(() => {
    void load();
    const ctl = new AbortController();
    let stopped = false;
    // Live: the event stream triggers a refresh; on loss, reconnect with a short back-off.
    const connect = async (): Promise<void> => {
      while (!stopped) {
        try {
          await streamEvents(token, (type, data) => {
            onMigrationEvent(type, data);
            if (type !== 'progress') refresh();
          }, ctl.signal, () => setState((s) => ({ ...s, live: true })));
        } catch (e) {
          if (e instanceof ApiError && e.status === 401) {
            onUnauthorized();
            return;
          }
        }
        setState((s) => ({ ...s, live: false }));
        if (!stopped) await new Promise((r) => setTimeout(r, 2000));
      }
    };
    void connect();
    const poll = window.setInterval(() => void load(), 5000);
    return () => {
      stopped = true;
      ctl.abort();
      window.clearInterval(poll);
      window.clearTimeout(timer.current);
    };
  }, [token]);

  return [state, refresh];
}
