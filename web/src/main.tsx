/** Tide's dashboard: login with a token, then the cluster, the plan, the schedule and history, live. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, client, type Host, type Plan, type Role, type Vm } from './api';
import { HistoryCharts, type ChartMarker } from './charts';
import { RulesPage, WhatIfPage } from './pages';
import { demoSavings, type Saving } from './saving';
import { useCluster, whoami, type ClusterState } from './state';
import './styles.css';

const TOKEN_KEY = 'tide.token';
type Page = 'cluster' | 'plan' | 'schedule' | 'history' | 'whatif' | 'rules';
const PAGES: { id: Page; label: string }[] = [
  { id: 'cluster', label: 'Cluster' }, { id: 'plan', label: 'Plan' }, { id: 'schedule', label: 'Schedule' }, { id: 'history', label: 'History' },
  { id: 'whatif', label: 'What-if' }, { id: 'rules', label: 'Policy & rules' },
];

const canAct = (role: Role): boolean => role === 'operator' || role === 'admin';

function pageFromHash(): Page {
  const h = location.hash.replace(/^#\/?/, '');
  return (PAGES.find((p) => p.id === h)?.id ?? 'cluster');
}

function fmtClock(ms: number | null): string {
  if (ms === null) return '—';
  const d = new Date(ms);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  return `${days[d.getUTCDay()]} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
}

/** CPU % → colour: calm teal through amber to red. */
function cpuColour(pct: number | null): string {
  if (pct === null) return 'var(--idle)';
  const p = Math.max(0, Math.min(100, pct));
  const hue = 172 - (p / 100) * 166;
  return `hsl(${hue} 62% ${46 - p * 0.06}%)`;
}

function Login({ onToken }: { onToken: (t: string, role: Role) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const me = await whoami(token.trim());
      onToken(token.trim(), me.role);
    } catch (err) {
      setError(err instanceof ApiError && (err.status === 401 || err.status === 403) ? 'That token was not accepted.' : `Cannot reach Tide: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="login">
      <form class="card login-card" onSubmit={submit}>
        <div class="brand big"><Logo /> Tide</div>
        <p class="muted">DRS and power management for libvirt. Sign in with an API token (<code>tide token create --role viewer</code>).</p>
        <label class="field">
          <span>API token</span>
          <input name="token" type="password" autocomplete="off" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} placeholder="tide_…" required />
        </label>
        {error && <div class="alert" role="alert">{error}</div>}
        <button class="btn primary" type="submit" disabled={busy || token.trim() === ''}>{busy ? 'Checking…' : 'Sign in'}</button>
      </form>
    </div>
  );
}

function Logo() {
  return (
    <svg class="logo" viewBox="0 0 32 32" aria-hidden="true">
      <rect width="32" height="32" rx="8" fill="currentColor" />
      <path d="M5 19c4-5 7-5 11 0s7 5 11 0" stroke="white" stroke-width="3" fill="none" stroke-linecap="round" />
    </svg>
  );
}

const POWER_LABEL: Record<string, string> = {
  on: 'On', off: 'Off', standby: 'Standby', booting: 'Booting', waking: 'Waking', shuttingDown: 'Shutting down', poweringOff: 'Powering off', unknown: 'Unknown',
};

function Bar({ label, pct, detail }: { label: string; pct: number | null; detail: string }) {
  const p = pct === null ? 0 : Math.max(0, Math.min(100, pct));
  return (
    <div class="bar">
      <div class="bar-head"><span>{label}</span><span class="num">{detail}</span></div>
      <div class="bar-track"><div class={`bar-fill ${p > 85 ? 'hot' : ''}`} style={{ width: `${p}%` }} /></div>
    </div>
  );
}

function HostColumn({ host, vms, role, onMaintenance, moving, onPick, picked }: {
  host: Host; vms: Vm[]; role: Role; onMaintenance: (h: Host) => void; moving: Set<string>; onPick: (vm: Vm) => void; picked: string | null;
}) {
  const memTotal = host.memMiB ?? Math.max(1024, vms.reduce((a, v) => a + v.memMiB, 0));
  const used = host.memUsedMiB ?? vms.reduce((a, v) => a + v.memMiB, 0);
  const state = host.power in POWER_LABEL ? host.power : 'unknown';
  return (
    <section class={`host power-${state}`} data-host={host.id} data-power={host.power}>
      <header class="host-head">
        <div class="host-name">{host.id}</div>
        <span class={`pill ${state}`} data-testid="power">{POWER_LABEL[state] ?? host.power}</span>
      </header>
      <div class="host-badges">
        {host.maintenance && <span class="badge warn">Maintenance</span>}
        <span class="muted small">{vms.length} VM{vms.length === 1 ? '' : 's'}</span>
      </div>
      <Bar label="CPU" pct={host.power === 'on' ? host.cpuPct : 0} detail={host.cpuPct === null || host.power !== 'on' ? '—' : `${host.cpuPct.toFixed(0)} %`} />
      <Bar label="Memory" pct={host.power === 'on' ? (100 * used) / memTotal : 0} detail={host.power === 'on' ? `${(used / 1024).toFixed(1)} / ${(memTotal / 1024).toFixed(0)} GiB` : '—'} />
      <div class="vm-stack" style={{ '--host-mem': memTotal } as Record<string, number>}>
        {vms.map((v) => (
          <div
            key={v.id}
            class={`vm ${moving.has(v.id) ? 'moving' : ''} ${picked === v.id ? 'picked' : ''} ${canAct(role) ? 'clickable' : ''}`}
            onClick={canAct(role) ? () => onPick(v) : undefined}
            data-vm={v.id}
            title={`${v.id} — ${v.memMiB} MiB, CPU ${v.cpuPct === null ? '?' : v.cpuPct.toFixed(0)} %`}
            style={{ flexGrow: v.memMiB, minHeight: `${Math.max(22, (v.memMiB / memTotal) * 260)}px`, background: cpuColour(v.cpuPct) }}
          >
            <span class="vm-name">{v.id}</span>
            <span class="vm-meta">{v.memMiB >= 1024 ? `${(v.memMiB / 1024).toFixed(v.memMiB % 1024 ? 1 : 0)} GiB` : `${v.memMiB} MiB`}</span>
          </div>
        ))}
        {vms.length === 0 && <div class="vm-empty">{host.power === 'on' ? 'idle' : 'powered off'}</div>}
      </div>
      <footer class="host-foot">
        {canAct(role) ? (
          <button class="btn small ghost" data-action="maintenance" onClick={() => onMaintenance(host)}>
            {host.maintenance ? 'End maintenance' : 'Enter maintenance'}
          </button>
        ) : <span class="muted small">read-only</span>}
      </footer>
    </section>
  );
}

const days = (n: number): string => `${n} observed day${n === 1 ? '' : 's'}`;
const pctText = (x: Saving | null): string => (x === null ? '—' : `${x.pct.toFixed(1)} %`);

/**
 * Energy saved vs always-on. A demo that observed days first (recommend mode: every host on,
 * nothing saved) shows the acting period's saving, and the whole run's (observed days
 * included) below it, each labelled; without observed days the two are the same figure.
 */
function EnergyKpi({ s }: { s: ClusterState }) {
  const d = s.demo;
  const { all, acting } = demoSavings(d);
  const observed = d !== null && d.observeDays > 0;
  if (!observed) {
    return (
      <div class="kpi"><span class="kpi-label">Energy saved</span><span class="kpi-value" data-testid="saved-all">{pctText(all)}</span>
        {all && <span class="kpi-sub">{all.energyKWh.toFixed(2)} kWh vs {all.alwaysOnKWh.toFixed(2)} always-on</span>}</div>
    );
  }
  return (
    <div class="kpi" data-testid="energy-kpi">
      <span class="kpi-label">Energy saved while acting{d.actingFromMs !== null ? ` (since ${fmtClock(d.actingFromMs)})` : ''}</span>
      <span class="kpi-value" data-testid="saved-acting" data-pct={acting ? acting.pct.toFixed(1) : ''}>{pctText(acting)}</span>
      <span class="kpi-sub">{acting ? `${acting.energyKWh.toFixed(2)} kWh vs ${acting.alwaysOnKWh.toFixed(2)} always-on` : 'known after the first acting round'}</span>
      <span class="kpi-sub" data-testid="saved-all" data-pct={all ? all.pct.toFixed(1) : ''}>whole run, incl. {days(d.observeDays)}: {pctText(all)}</span>
    </div>
  );
}

function Kpis({ s }: { s: ClusterState }) {
  const on = s.hosts.filter((h) => h.power === 'on').length;
  const pending = s.plans.find((p) => p.status === 'proposed' && p.stepCount > 0);
  return (
    <div class="kpis">
      <div class="kpi"><span class="kpi-label">Hosts on</span><span class="kpi-value" data-testid="hosts-on">{on}<small> / {s.hosts.length}</small></span></div>
      <div class="kpi"><span class="kpi-label">VMs</span><span class="kpi-value">{s.vms.length}</span></div>
      <div class="kpi"><span class="kpi-label">Live migrations</span><span class="kpi-value">{s.migrations.filter((m) => m.state === 'running').length}</span></div>
      <EnergyKpi s={s} />
      <div class="kpi"><span class="kpi-label">Plan</span><span class="kpi-value small">{pending ? <a href="#/plan">{pending.stepCount} steps awaiting approval</a> : 'Nothing pending'}</span></div>
    </div>
  );
}

function Migrations({ s, role, token, notify }: Pick<PageProps, 's' | 'role' | 'token' | 'notify'>) {
  if (s.migrations.length === 0) return null;
  const abort = async (vm: string): Promise<void> => {
    try {
      await client(token).post(`/migrations/${encodeURIComponent(vm)}/abort`, {});
      notify(`Aborting the migration of ${vm}: it stays on its source`);
    } catch (e) {
      notify((e as Error).message, true);
    }
  };
  const label: Record<string, string> = { succeeded: 'done', failed: 'failed', aborted: 'aborted', skipped: 'skipped', cancelled: 'cancelled' };
  return (
    <div class="card migrations" data-testid="migrations">
      <h3>Live migrations</h3>
      {s.migrations.map((m) => {
        const running = m.state === 'running';
        return (
          <div class={`migration state-${m.state}`} key={m.key} data-migration={m.vm} data-state={m.state} data-progress={m.progressPct ?? ''}>
            <span class="mono">{m.vm}</span><span class="muted">{m.from} → {m.to}</span>
            <div class="bar-track"><div class={`bar-fill ${m.state === 'succeeded' ? 'done' : running ? 'accent' : 'bad'}`} style={{ width: `${m.progressPct ?? 0}%` }} /></div>
            <span class="num small">{running ? (m.progressPct === null ? '…' : `${m.progressPct.toFixed(0)} %`) : label[m.state] ?? m.state}</span>
            {running && canAct(role) && <button class="btn small ghost" data-action="abort" onClick={() => void abort(m.vm)}>Abort</button>}
          </div>
        );
      })}
    </div>
  );
}

function ClusterPage({ s, role, token, refresh, notify }: PageProps) {
  const moving = new Set(s.migrations.map((m) => m.vm));
  const toggle = async (h: Host): Promise<void> => {
    try {
      await client(token).post(`/hosts/${encodeURIComponent(h.id)}/maintenance`, { on: !h.maintenance });
      notify(`${h.id}: maintenance ${h.maintenance ? 'ended' : 'started'}`);
      refresh();
    } catch (e) {
      notify((e as Error).message, true);
    }
  };
  // Keep the id, not the record: the VM may move between the click and the submit, and the
  // picker must offer the hosts other than where it is *now*.
  const [pickedId, setPickedId] = useState<string | null>(null);
  const picked: Vm | null = s.vms.find((v) => v.id === pickedId) ?? null;
  const setPicked = (v: Vm | null): void => setPickedId(v?.id ?? null);
  const [target, setTarget] = useState('best');
  const [busy, setBusy] = useState(false);
  const migrate = async (): Promise<void> => {
    if (!picked) return;
    setBusy(true);
    try {
      const r = await client(token).post<{ to?: string; planId?: number }>('/migrations', { vm: picked.id, to: target });
      notify(`Moving ${picked.id} to ${r.to ?? target} (plan #${r.planId ?? '?'})`);
      setPicked(null);
      refresh();
    } catch (e) {
      notify((e as Error).message, true);
    } finally {
      setBusy(false);
    }
  };
  const targets = s.hosts.filter((h) => picked && h.id !== picked.host && h.power === 'on' && !h.maintenance);
  return (
    <>
      <Kpis s={s} />
      <Migrations s={s} role={role} token={token} notify={notify} />
      {picked && (
        <div class="card migrate-bar" data-testid="migrate-bar">
          <span>Migrate <b class="mono">{picked.id}</b> <span class="muted">from {picked.host ?? '?'} to</span></span>
          <select name="target" value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
            <option value="best">the best host (Tide chooses)</option>
            {targets.map((h) => <option key={h.id} value={h.id}>{h.id}</option>)}
          </select>
          <button class="btn primary small" data-action="migrate" disabled={busy} onClick={() => void migrate()}>Migrate</button>
          <button class="btn ghost small" onClick={() => setPicked(null)}>Cancel</button>
        </div>
      )}
      <div class="hosts">
        {s.hosts.map((h) => (
          <HostColumn key={h.id} host={h} vms={s.vms.filter((v) => v.host === h.id)} role={role} onMaintenance={toggle} moving={moving}
            picked={picked?.id ?? null} onPick={(v) => { setPicked(v); setTarget('best'); }} />
        ))}
      </div>
      <Legend />
    </>
  );
}

function Legend() {
  return (
    <div class="legend muted small">
      <span>VM blocks: height ∝ memory, colour = CPU{' · '}operators: click a VM to migrate it</span>
      <span class="scale"><i style={{ background: cpuColour(0) }} />0 %<i style={{ background: cpuColour(50) }} />50 %<i style={{ background: cpuColour(100) }} />100 %</span>
    </div>
  );
}

function stepText(st: Plan['steps'][number]): string {
  if (st.kind === 'migrate') return `Move ${st.vm} from ${st.from} to ${st.to}`;
  if (st.kind === 'place') return `Place ${st.vm} on ${st.to}`;
  if (st.kind === 'powerOff') return `Power off ${st.host}`;
  if (st.kind === 'powerOn') return `Power on ${st.host}`;
  return `${st.kind} ${st.vm ?? st.host ?? ''}`;
}

function PlanPage({ s, role, token, refresh, notify }: PageProps) {
  const plan = s.plans.find((p) => ['proposed', 'approved', 'running'].includes(p.status) && p.stepCount > 0) ?? s.plans[0];
  const [busy, setBusy] = useState(false);
  const act = async (verb: 'approve' | 'reject'): Promise<void> => {
    if (!plan) return;
    setBusy(true);
    try {
      await client(token).post(`/plans/${plan.id}/${verb}`, {});
      notify(`Plan #${plan.id} ${verb === 'approve' ? 'approved' : 'rejected'}`);
      refresh();
    } catch (e) {
      notify((e as Error).message, true);
    } finally {
      setBusy(false);
    }
  };
  if (!plan) return <div class="card empty">No plan yet: the daemon has not proposed anything.</div>;
  const pending = plan.status === 'proposed';
  return (
    <div class="plan-layout">
      <div class="card plan" data-plan={plan.id} data-status={plan.status}>
        <div class="plan-head">
          <div>
            <h2>Plan #{plan.id}</h2>
            <div class="muted small">{plan.mode ? `mode ${plan.mode} · ` : ''}{plan.createdMs !== null ? `proposed ${fmtClock(plan.createdMs + (s.demo?.epochMs ?? 0))}` : ''}</div>
          </div>
          <span class={`pill status-${plan.status}`} data-testid="plan-status">{plan.status}</span>
        </div>
        {plan.reason && <p class="muted">{plan.reason}</p>}
        <ol class="steps">
          {plan.steps.map((st) => (
            <li key={st.id} class={`step kind-${st.kind}`}>
              <div class="step-title">{stepText(st)}{st.state && <span class={`pill tiny status-${st.state}`}>{st.state}</span>}</div>
              <div class="step-reason">{st.reason}</div>
            </li>
          ))}
          {plan.steps.length === 0 && <li class="muted">No steps: the cluster is where the policy wants it.</li>}
        </ol>
        {pending && plan.stepCount > 0 && (
          <div class="plan-actions">
            {canAct(role) ? (
              <>
                <button class="btn primary" data-action="approve" disabled={busy} onClick={() => void act('approve')}>Approve and run</button>
                <button class="btn ghost" data-action="reject" disabled={busy} onClick={() => void act('reject')}>Reject</button>
              </>
            ) : <span class="muted small" data-testid="viewer-note">Viewers cannot approve plans. Ask an operator.</span>}
          </div>
        )}
      </div>
      <div class="card">
        <h3>Why these VMs stay</h3>
        {plan.notMoved.length === 0 ? <p class="muted small">No VM was held back.</p> : (
          <ul class="why-not">{plan.notMoved.map((n) => <li key={n.vm}><span class="mono">{n.vm}</span> {n.reason}</li>)}</ul>
        )}
        <h3>Earlier plans</h3>
        {s.plans.length < 2 && <p class="muted small">None yet.</p>}
        <ul class="plan-list">
          {s.plans.filter((p) => p !== plan).slice(0, 8).map((p) => (
            <li key={p.id}><span class="mono">#{p.id}</span> <span class={`pill tiny status-${p.status}`}>{p.status}</span> <span class="muted small">{p.summary ?? `${p.stepCount} steps`}</span></li>
          ))}
        </ul>
      </div>
    </div>
  );
}

function SchedulePage({ s }: PageProps) {
  const sch = s.schedule;
  const now = sch?.nowMs ?? s.demo?.simMs ?? null;
  if (!sch || now === null) return <div class="card empty">No schedule is configured: Tide consolidates whenever the policy allows.</div>;
  const dayStart = Math.floor(now / 86_400_000) * 86_400_000;
  const span = 2 * 86_400_000;
  const x = (ms: number): string => `${Math.max(0, Math.min(100, ((ms - dayStart) / span) * 100))}%`;
  const w = (a: number, b: number): string => `${Math.max(0, Math.min(100, ((Math.min(b, dayStart + span) - Math.max(a, dayStart)) / span) * 100))}%`;
  return (
    <div class="card">
      <h2>Schedule</h2>
      <div class="sched-facts">
        <div><span class="kpi-label">Now</span><b>{fmtClock(now)}</b>{sch.current && <span class={`pill kind-${sch.current.kind}`}>{sch.current.label ?? sch.current.kind}</span>}</div>
        <div><span class="kpi-label">Next consolidation</span><b>{fmtClock(sch.nextConsolidationMs)}</b></div>
        <div><span class="kpi-label">Hosts woken by</span><b>{fmtClock(sch.preWakeMs)}</b></div>
      </div>
      <div class="timeline" data-testid="timeline">
        {sch.windows.filter((win) => win.endMs > dayStart && win.startMs < dayStart + span).map((win, i) => (
          <div key={i} class={`tl-window kind-${win.kind}`} style={{ left: x(win.startMs), width: w(win.startMs, win.endMs) }} title={win.label ?? win.kind}>{win.label ?? win.kind}</div>
        ))}
        {sch.preWakeMs !== null && <div class="tl-mark prewake" style={{ left: x(sch.preWakeMs) }} title="hosts woken by" />}
        <div class="tl-mark now" style={{ left: x(now) }} />
      </div>
      <div class="tl-axis">{Array.from({ length: 9 }, (_, i) => <span key={i}>{fmtClock(dayStart + i * 6 * 3_600_000)}</span>)}</div>
    </div>
  );
}

interface PageProps { s: ClusterState; role: Role; token: string; refresh: () => void; notify: (m: string, err?: boolean) => void }

function Dashboard({ token, role, onLogout }: { token: string; role: Role; onLogout: () => void }) {
  const [page, setPage] = useState<Page>(pageFromHash());
  const [s, refresh] = useCluster(token, onLogout, page === 'history');
  // Entering History loads its data at once.
  useEffect(() => {
    if (page === 'history') refresh();
  }, [page]);
  const [toast, setToast] = useState<{ m: string; err: boolean } | null>(null);
  useEffect(() => {
    const on = (): void => setPage(pageFromHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  useEffect(() => {
    if (!toast) return;
    const t = setTimeout(() => setToast(null), 4000);
    return () => clearTimeout(t);
  }, [toast]);
  const notify = (m: string, err = false): void => setToast({ m, err });
  const props: PageProps = { s, role, token, refresh, notify };
  return (
    <div class="shell">
      <header class="top">
        <div class="brand"><Logo /> Tide</div>
        <nav>{PAGES.map((p) => <a key={p.id} href={`#/${p.id}`} class={page === p.id ? 'active' : ''} data-page={p.id}>{p.label}</a>)}</nav>
        <div class="top-right">
          {s.demo?.simMs != null && <span class="clock" title="simulated time">{fmtClock(s.demo.simMs)}{s.demo.speed ? <small> ×{Math.round(s.demo.speed)}</small> : null}</span>}
          <span class={`live ${s.live ? 'on' : ''}`} data-testid="live">{s.live ? 'Live' : 'Reconnecting'}</span>
          <span class="badge role" data-testid="role">{role}</span>
          <button class="btn small ghost" onClick={onLogout}>Sign out</button>
        </div>
      </header>
      <main class="content">
        {s.error && <div class="alert">{s.error}</div>}
        {!s.loaded ? <div class="card empty">Loading…</div>
          : page === 'cluster' ? <ClusterPage {...props} />
            : page === 'plan' ? <PlanPage {...props} />
              : page === 'schedule' ? <SchedulePage {...props} />
                : page === 'whatif' ? <WhatIfPage token={token} role={role} notify={notify} />
                  : page === 'rules' ? <RulesPage token={token} role={role} notify={notify} />
                    : <HistoryPage s={s} />}
      </main>
      {toast && <div class={`toast ${toast.err ? 'err' : ''}`} role="status">{toast.m}</div>}
    </div>
  );
}

/**
 * The history charts; for a demo that observed days first, the span observed in recommend mode
 * is shaded and where acting began is marked on every chart, and a line says what each part is.
 */
function HistoryPage({ s }: { s: ClusterState }) {
  const d = s.demo;
  const observed = d !== null && d.observeDays > 0 && d.actingFromMs !== null;
  const markers: ChartMarker[] = observed
    ? [{ tMs: d.actingFromMs!, label: `acting from ${fmtClock(d.actingFromMs)}`, before: `observed · recommend mode`, testid: 'acting-marker' }]
    : [];
  const { all, acting } = demoSavings(d);
  return (
    <>
      {observed && (
        <div class="card history-note" data-testid="acting-note">
          <b>{days(d.observeDays)}</b> in recommend mode (plans recommended, nothing executed), then acting in {d.mode ?? 'the configured'} mode
          from <b>{fmtClock(d.actingFromMs)}</b>. Saved vs always-on while acting: <b data-testid="history-saved-acting">{pctText(acting)}</b>;
          over the whole run, observed days included: <b data-testid="history-saved-all">{pctText(all)}</b>.
        </div>
      )}
      <HistoryCharts points={s.history} markers={markers} />
    </>
  );
}

function App() {
  const [auth, setAuth] = useState<{ token: string; role: Role } | null>(null);
  const [checked, setChecked] = useState(false);
  useEffect(() => {
    const t = sessionStorage.getItem(TOKEN_KEY);
    if (!t) {
      setChecked(true);
      return;
    }
    whoami(t).then((me) => setAuth({ token: t, role: me.role }), () => sessionStorage.removeItem(TOKEN_KEY)).finally(() => setChecked(true));
  }, []);
  if (!checked) return null;
  if (!auth) return <Login onToken={(token, role) => { sessionStorage.setItem(TOKEN_KEY, token); setAuth({ token, role }); }} />;
  return <Dashboard token={auth.token} role={auth.role} onLogout={() => { sessionStorage.removeItem(TOKEN_KEY); setAuth(null); }} />;
}

render(<App />, document.getElementById('app')!);
