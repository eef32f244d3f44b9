/**
 * The What-if page (POST /api/v1/whatif: this cluster's recorded history replayed through other
 * policies, energy / SLA / migrations side by side, with a chart) and the Policy & rules page
 * (GET /policy, /rules with where they come from; admins edit the rules and revert API edits).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { client, type Role } from './api';

export interface WhatIfRow {
  policy: string;
  label: string;
  configured: boolean;
  energyKWh: number;
  savedVsAlwaysOnPct: number;
  migrations: number;
  slaViolationPct: number;
  meanActiveHosts: number;
  powerOffs: number;
}

export interface WhatIfResult {
  fromMs: number;
  toMs: number;
  samples: number;
  intervalSec: number;
  hosts: number;
  vms: number;
  alwaysOnKWh: number;
  results: WhatIfRow[];
}

interface Props { token: string; role: Role; notify: (m: string, err?: boolean) => void }

const CANDIDATES: { name: string; args?: Record<string, unknown>; title: string }[] = [
  { name: 'npa', title: 'npa — every host on, no moves' },
  { name: 'lr-mmt', title: 'lr-mmt — CloudSim local regression' },
  { name: 'thr-mmt', title: 'thr-mmt — static threshold' },
  { name: 'tide', args: { targetUtil: 0.6 }, title: 'tide, targetUtil 0.6 (gentler)' },
  { name: 'tide', args: { targetUtil: 0.85 }, title: 'tide, targetUtil 0.85 (denser)' },
];
const SERIES = ['#0f766e', '#2563eb', '#d97706', '#9333ea', '#db2777'];

/** Grouped bars: per policy, energy (kWh) and migrations, always-on as a dashed reference. */
function WhatIfChart({ r }: { r: WhatIfResult }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current) return;
    const x = r.results.map((_, i) => i);
    const bars = uPlot.paths.bars?.({ size: [0.5, 80] });
    const plot = new uPlot({
      width: Math.max(360, el.current.clientWidth), height: 260,
      scales: { x: { time: false, range: [-0.6, r.results.length - 0.4] }, kwh: { range: (_u, _min, max) => [0, Math.max(max, r.alwaysOnKWh) * 1.1] } },
      axes: [
        { values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? r.results[t]?.label ?? '' : '')), incrs: [1], size: 48 },
        { scale: 'kwh', label: 'kWh' },
      ],
      series: [
        {},
        { label: 'energy, kWh', scale: 'kwh', fill: 'rgba(15,118,110,0.75)', stroke: '#0f766e', paths: bars, points: { show: false } },
        { label: 'always on, kWh', scale: 'kwh', stroke: '#94a3b8', dash: [6, 4], width: 2, points: { show: false } },
      ],
      legend: { live: false },
      cursor: { show: false },
    }, [x, r.results.map((p) => p.energyKWh), r.results.map(() => r.alwaysOnKWh)], el.current);
    return () => plot.destroy();
  }, [r]);
  return <div class="card chart" data-testid="whatif-chart"><h3>Energy by policy (bars) vs always-on (dashed)</h3><div ref={el} /></div>;
}

export function WhatIfPage({ token, notify }: Props) {
  const [hours, setHours] = useState(24);
  const [picked, setPicked] = useState<number[]>([0, 1]);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<WhatIfResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const policies = picked.map((i) => ({ name: CANDIDATES[i]!.name, ...(CANDIDATES[i]!.args ? { args: CANDIDATES[i]!.args } : {}) }));
      setResult(await client(token).post<WhatIfResult>('/whatif', { hours, policies }));
    } catch (err) {
      setError((err as Error).message);
      notify((err as Error).message, true);
    } finally {
      setBusy(false);
    }
  };
  const best = result ? Math.min(...result.results.map((r) => r.energyKWh)) : 0;
  return (
    <div class="whatif">
      <form class="card whatif-form" onSubmit={run}>
        <div>
          <h2>What if…</h2>
          <p class="muted small">Replays this cluster's recorded history (its hosts, its VMs, their measured CPU) through other policies. Nothing is changed.</p>
        </div>
        <label class="field inline">
          <span>History</span>
          <select name="hours" value={String(hours)} onChange={(e) => setHours(Number((e.target as HTMLSelectElement).value))}>
            {[1, 6, 12, 24, 72, 168].map((h) => <option key={h} value={String(h)}>last {h < 24 ? `${h} h` : `${h / 24} day${h > 24 ? 's' : ''}`}</option>)}
          </select>
        </label>
        <fieldset class="choices">
          <legend class="muted small">Compare the configured policy with</legend>
          {CANDIDATES.map((c, i) => (
            <label key={i} class="choice">
              <input type="checkbox" name="policy" value={String(i)} checked={picked.includes(i)}
                onChange={(e) => setPicked((p) => ((e.target as HTMLInputElement).checked ? [...p, i].slice(-4) : p.filter((x) => x !== i)))} />
              <span>{c.title}</span>
            </label>
          ))}
        </fieldset>
        <button class="btn primary" type="submit" data-action="whatif" disabled={busy || picked.length === 0}>{busy ? 'Replaying…' : 'Compare'}</button>
        {error && <div class="alert" role="alert">{error}</div>}
      </form>
      {result && (
        <>
          <div class="card" data-testid="whatif-results">
            <h3>{result.samples} samples every {Math.round(result.intervalSec / 60)} min · {result.hosts} hosts · {result.vms} VMs · always-on {result.alwaysOnKWh.toFixed(2)} kWh</h3>
            <table class="table">
              <thead><tr><th>Policy</th><th class="num">Energy, kWh</th><th class="num">Saved vs always-on</th><th class="num">SLA violation</th><th class="num">Migrations</th><th class="num">Hosts on (mean)</th><th class="num">Power-offs</th></tr></thead>
              <tbody>
                {result.results.map((r, i) => (
                  <tr key={i} data-policy={r.policy} class={r.energyKWh === best ? 'best' : ''}>
                    <td><i class="swatch" style={{ background: SERIES[i % SERIES.length] }} /><b>{r.label}</b>{r.configured && <span class="pill tiny status-done">configured</span>}</td>
                    <td class="num">{r.energyKWh.toFixed(2)}</td>
                    <td class="num">{r.savedVsAlwaysOnPct.toFixed(1)} %</td>
                    <td class="num">{r.slaViolationPct.toFixed(2)} %</td>
                    <td class="num">{r.migrations}</td>
                    <td class="num">{r.meanActiveHosts.toFixed(1)}</td>
                    <td class="num">{r.powerOffs}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <WhatIfChart r={result} />
        </>
      )}
    </div>
  );
}

interface Source { source: 'file' | 'api'; setMs: number | null; setBy: string | null; ignored?: { setBy: string; reason: string } }
interface PolicyView extends Source { name: string; label: string; args: Record<string, unknown> }
interface RulesView extends Source { rules: Record<string, unknown>[]; pinnedVms: string[] }

function SourceNote({ s }: { s: Source }) {
  return (
    <p class="muted small" data-testid="source" data-source={s.source}>
      {s.source === 'api' ? <>Set through the API by <b>{s.setBy}</b>{s.setMs !== null ? ` at ${new Date(s.setMs).toISOString().slice(0, 16).replace('T', ' ')}` : ''} — kept in the store, in force over the configuration file's.</>
        : <>From the configuration file.</>}
      {s.ignored && <> An API edit by {s.ignored.setBy} is not in force: {s.ignored.reason}.</>}
    </p>
  );
}

function ruleText(r: Record<string, unknown>): string {
  const strength = r.strength === 'soft' ? 'should' : 'must';
  if (r.kind === 'pin') return `${String(r.vm)} ${strength} run on ${(r.hosts as string[]).join(' or ')}`;
  if (r.kind === 'affinity') return `${(r.vms as string[]).join(', ')} ${strength} run together`;
  return `${(r.vms as string[]).join(', ')} ${strength} run on different hosts`;
}

export function RulesPage({ token, role, notify }: Props) {
  const [policy, setPolicy] = useState<PolicyView | null>(null);
  const [rules, setRules] = useState<RulesView | null>(null);
  const [draft, setDraft] = useState('');
  const [busy, setBusy] = useState(false);
  const load = async (): Promise<void> => {
    const api = client(token);
    const [p, r] = await Promise.all([api.get<PolicyView>('/policy'), api.get<RulesView>('/rules')]);
    setPolicy(p);
    setRules(r);
    setDraft(JSON.stringify({ rules: r.rules, pinnedVms: r.pinnedVms }, null, 2));
  };
  useEffect(() => { load().catch((e: Error) => notify(e.message, true)); }, [token]);
  const act = async (f: () => Promise<unknown>, done: string): Promise<void> => {
    setBusy(true);
    try {
      await f();
      notify(done);
      await load();
    } catch (e) {
      notify((e as Error).message, true);
    } finally {
      setBusy(false);
    }
  };
  const save = (): Promise<void> => act(async () => {
    let body: unknown;
    try {
      body = JSON.parse(draft);
    } catch {
      throw new Error('The rules are not valid JSON.');
    }
    return client(token).post('/rules', body);
  }, 'Rules saved: in force from the next round');
  if (!policy || !rules) return <div class="card empty">Loading…</div>;
  return (
    <div class="plan-layout">
      <div class="card" data-testid="rules">
        <h2>Placement rules</h2>
        <SourceNote s={rules} />
        <ul class="why-not">
          {rules.rules.map((r) => <li key={String(r.id)}><span class="mono">{String(r.id)}</span> {ruleText(r)}</li>)}
          {rules.pinnedVms.map((v) => <li key={`pin-${v}`}><span class="mono">{v}</span> is never moved automatically (opted out)</li>)}
          {rules.rules.length === 0 && rules.pinnedVms.length === 0 && <li class="muted">No rules.</li>}
        </ul>
        {role === 'admin' ? (
          <>
            <h3>Edit (admin)</h3>
            <textarea class="editor mono" name="rules" rows={12} value={draft} onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)} />
            <div class="plan-actions">
              <button class="btn primary" data-action="save-rules" disabled={busy} onClick={() => void save()}>Save rules</button>
              {rules.source === 'api' && <button class="btn ghost" data-action="revert-rules" disabled={busy} onClick={() => void act(() => client(token).post('/rules/revert', {}), "Rules: back to the configuration file's")}>Revert to the file's</button>}
            </div>
          </>
        ) : <p class="muted small">Only admins edit rules.</p>}
      </div>
      <div class="card" data-testid="policy">
        <h2>Policy</h2>
        <p><b class="mono">{policy.label}</b></p>
        <SourceNote s={policy} />
        {role === 'admin' && policy.source === 'api' && (
          <button class="btn ghost small" data-action="revert-policy" disabled={busy} onClick={() => void act(() => client(token).post('/policy/revert', {}), "Policy: back to the configuration file's")}>Revert to the file's policy</button>
        )}
      </div>
    </div>
  );
}
