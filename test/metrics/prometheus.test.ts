/**
 * Prometheus metrics (src/metrics/prometheus.ts) fed by a real daemon on the simulated office
 * (SimDriver on a VirtualClock, automatic mode, Monday night: it consolidates and powers hosts
 * off): every family is rendered with plausible values, counters match the store, each host has
 * exactly one power state, energy grows; the Hono handler serves the text format.
 */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { chainObservers, createMetrics, estimatedWatts, metricsHandler, POWER_STATES } from '../../src/metrics/prometheus.js';
import { linearPower } from '../../src/core/model/power.js';
import { simDaemon } from '../daemon/helpers.js';

interface Sample { readonly name: string; readonly labels: Record<string, string>; readonly value: number }

/** Parses the exposition text's sample lines (no escaped quotes in our label values). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const of = (s: Sample[], name: string, labels: Record<string, string> = {}): Sample[] =>
  s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
const sum = (s: Sample[]): number => s.reduce((a, x) => a + x.value, 0);

describe('prometheus metrics over a daemon on the simulator', () => {
  it('renders every family with values consistent with the store and the cluster', async () => {
    const metrics = createMetrics({ migrationMode: () => 'live' });
    const d = simDaemon('automatic', { deps: { observer: metrics.observer } });
    const withStore = createMetrics({ store: d.store });
    const energies: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await d.round();
      expect(r.result).toBe('ok');
      energies.push(sum(of(parse(await metrics.render()), 'tide_energy_kwh_total')));
      await d.clock.advance(300_000);
    }
    const s = parse(await metrics.render());
    const hosts = [...new Set(of(s, 'tide_host_cpu_ratio').map((x) => x.labels.host!))];
    expect(hosts.length).toBe(4);

    // Utilisation: a ratio per host and per VM, memory and I/O non-negative.
    for (const x of [...of(s, 'tide_host_cpu_ratio'), ...of(s, 'tide_vm_cpu_ratio')]) expect(x.value >= 0 && x.value <= 1, `${x.name} ${x.value}`).toBe(true);
    expect(sum(of(s, 'tide_host_cpu_ratio'))).toBeGreaterThan(0);
    expect(of(s, 'tide_vm_cpu_ratio').length).toBe((await d.driver.listVms()).length);
    expect(sum(of(s, 'tide_host_memory_used_mib'))).toBeGreaterThan(0);
    expect(of(s, 'tide_host_memory_total_mib').every((x) => x.value > 0)).toBe(true);
    for (const f of ['tide_host_disk_bytes_per_second', 'tide_host_net_bytes_per_second', 'tide_vm_memory_used_mib', 'tide_vm_disk_bytes_per_second', 'tide_vm_net_bytes_per_second']) {
      expect(of(s, f).length, f).toBeGreaterThan(0);
      expect(of(s, f).every((x) => x.value >= 0), f).toBe(true);
    }
    // One series per VM (the gauges are reset each round: a VM that moved leaves no stale series).
    expect(new Set(of(s, 'tide_vm_memory_used_mib').map((x) => x.labels.vm)).size).toBe(of(s, 'tide_vm_memory_used_mib').length);

    // Power state: one state per host, each state exported, and the night consolidation powered a host off.
    for (const h of hosts) {
      expect(of(s, 'tide_host_power_state', { host: h }).map((x) => x.labels.state).sort()).toEqual([...POWER_STATES].sort());
      expect(sum(of(s, 'tide_host_power_state', { host: h }))).toBe(1);
    }
    expect(sum(of(s, 'tide_host_power_state', { state: 'off' }))).toBeGreaterThanOrEqual(1);
    const offHosts = (await d.driver.listHosts()).filter((h) => !h.up).map((h) => h.name).sort();
    expect(of(s, 'tide_host_power_state', { state: 'off' }).filter((x) => x.value === 1).map((x) => x.labels.host).sort()).toEqual(offHosts);

    // Migrations: the counters equal the store's records; the histograms saw each one.
    const recorded = d.store.migrations({ limit: 100_000 });
    expect(recorded.length).toBeGreaterThan(0);
    expect(sum(of(s, 'tide_migrations_total'))).toBe(recorded.length);
    expect(sum(of(s, 'tide_migrations_total', { mode: 'live' }))).toBe(recorded.length);
    expect(sum(of(s, 'tide_migrations_failed_total'))).toBe(recorded.filter((m) => !m.ok).length);
    expect(sum(of(s, 'tide_migration_duration_seconds_count'))).toBe(recorded.length);
    expect(sum(of(s, 'tide_migration_downtime_seconds_count'))).toBe(recorded.filter((m) => m.ok && m.downtimeMs !== null).length);
    expect(of(s, 'tide_migration_duration_seconds_bucket', { le: '+Inf' }).length).toBe(1);

    // Planner latency: one observation per round, positive.
    expect(sum(of(s, 'tide_planner_latency_seconds_count'))).toBe(6);
    expect(sum(of(s, 'tide_planner_latency_seconds_sum'))).toBeGreaterThan(0);
    expect(sum(of(s, 'tide_rounds_total', { result: 'ok' }))).toBe(6);
    expect(sum(of(s, 'tide_power_actions_total', { action: 'powerOff', state: 'succeeded' }))).toBe(offHosts.length);

    // Power and energy: the cluster draw is the hosts' sum, within the models' range; energy grows.
    const w = of(s, 'tide_host_power_watts');
    expect(w.length).toBe(4);
    expect(of(s, 'tide_power_watts')[0]!.value).toBeCloseTo(sum(w), 6);
    for (const x of w) expect(x.value >= 0 && x.value < 1000, `${x.labels.host} ${x.value} W`).toBe(true);
    for (let i = 2; i < energies.length; i++) expect(energies[i]!).toBeGreaterThan(energies[i - 1]!);
    // 5 intervals of 5 min at the draws seen: between the all-off and the all-on-at-full bounds.
    const last = energies[energies.length - 1]!;
    expect(last).toBeGreaterThan(0);
    expect(last).toBeLessThan((4 * 1000 * 5 * 300) / 3.6e6);

    // Frozen: not frozen, with the empty reason.
    expect(of(s, 'tide_frozen')).toEqual([{ name: 'tide_frozen', labels: { reason: '' }, value: 0 }]);

    // Plans by status, from the store at scrape time.
    const p = parse(await withStore.render());
    const done = d.store.listPlans({ status: 'done' }).length;
    expect(done).toBeGreaterThan(0);
    expect(of(p, 'tide_plans', { status: 'done' })[0]!.value).toBe(done);
    expect(sum(of(p, 'tide_plans'))).toBe(d.store.listPlans({ limit: 100_000 }).length);
  });

  it('a host silent for 3 rounds: tide_frozen 1 with its reason code, that host unknown (idle draw), the others on', async () => {
    const metrics = createMetrics();
    const d = simDaemon('recommend', { deps: { observer: metrics.observer } });
    const host = Object.values(d.driver.placement())[0]!;
    d.driver.setReachable(host, false);
    for (let i = 0; i < 4; i++) {
      await d.round();
      await d.clock.advance(300_000);
    }
    expect(d.store.daemonStatus()!.frozen.frozen).toBe(true);
    const s = parse(await metrics.render());
    const f = of(s, 'tide_frozen');
    expect(f).toHaveLength(1);
    expect(f[0]!.value).toBe(1);
    expect(f[0]!.labels.reason).toMatch(/^[a-z-]+(,[a-z-]+)*$/);
    expect(of(s, 'tide_host_power_state', { host, state: 'unknown' })[0]!.value).toBe(1);
    expect(sum(of(s, 'tide_host_power_state', { state: 'on' }))).toBe(3);
  });

  it('frozen gauge carries the reason codes; two registries do not collide', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.observer.onFreeze!({ frozen: true, sinceSec: 10, sinceMs: 10_000, healthyRounds: 0, reason: 'h1 silent', reasons: [{ code: 'silent', reason: 'h1 silent', host: 'h1' }] } as never, 10_000);
    expect(parse(await a.render()).filter((x) => x.name === 'tide_frozen')).toEqual([{ name: 'tide_frozen', labels: { reason: 'silent' }, value: 1 }]);
    expect(parse(await b.render()).filter((x) => x.name === 'tide_frozen')).toEqual([{ name: 'tide_frozen', labels: { reason: '' }, value: 0 }]);
    a.observer.onFreeze!({ frozen: false, sinceSec: null, sinceMs: null, healthyRounds: 2, reason: null, reasons: [] } as never, 20_000);
    expect(parse(await a.render()).filter((x) => x.name === 'tide_frozen')).toEqual([{ name: 'tide_frozen', labels: { reason: '' }, value: 0 }]);
  });

  it('estimated draw follows the power model per state', () => {
    const m = linearPower(100, 300, { offW: 8, bootW: 150, bootSec: 60 });
    expect(estimatedWatts(m, 'on', 0)).toBe(100);
    expect(estimatedWatts(m, 'on', 0.5)).toBeCloseTo(200, 6);
    expect(estimatedWatts(m, 'on', 1)).toBe(300);
    expect(estimatedWatts(m, 'off', 0.9)).toBe(8);
    expect(estimatedWatts(m, 'booting', 0)).toBe(150);
    expect(estimatedWatts(m, 'unknown', 0)).toBe(100);
  });

  it('chainObservers calls each observer even when one throws', () => {
    const seen: string[] = [];
    const o = chainObservers({ onRound: () => { throw new Error('boom'); } }, undefined, { onRound: () => void seen.push('b') });
    o.onRound!({} as never);
    expect(seen).toEqual(['b']);
  });

  it('GET /metrics through Hono: 200, text/plain; version=0.0.4', async () => {
    const metrics = createMetrics();
    const app = new Hono();
    app.get('/metrics', metricsHandler(metrics));
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    expect(body).toContain('# TYPE tide_migrations_total counter');
    expect(body).toContain('# TYPE tide_planner_latency_seconds histogram');
  });
});
