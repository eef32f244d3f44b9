/**
 * `tide demo --serve`'s server (src/api/demo-serve.ts) exposes the Prometheus metrics: after a
 * simulated day run as fast as possible, GET /metrics over real HTTP on 127.0.0.1 (no token)
 * shows every family the issue names, consistent with the store; /api/v1/hosts without a token
 * is 401.
 */
import { describe, expect, it } from 'vitest';
import { serveDemo } from '../../src/api/demo-serve.js';

describe('demo --serve /metrics', () => {
  it('curl 127.0.0.1:P/metrics shows the metrics; the API wants a token', async () => {
    const demo = await serveDemo({ hours: 24, speed: 1e9, staticDir: '/nonexistent' });
    try {
      await demo.done;
      const res = await fetch(`${demo.url}metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      for (const family of [
        'tide_host_cpu_ratio', 'tide_vm_cpu_ratio', 'tide_host_memory_used_mib', 'tide_host_power_state', 'tide_migrations_total', 'tide_migrations_failed_total',
        'tide_migration_duration_seconds', 'tide_migration_downtime_seconds', 'tide_plans', 'tide_planner_latency_seconds', 'tide_power_watts', 'tide_energy_kwh_total', 'tide_frozen',
      ]) expect(text, family).toContain(`# TYPE ${family} `);
      const migrations = demo.store.migrations({ limit: 1_000_000 }).length;
      expect(migrations).toBeGreaterThan(0);
      const total = [...text.matchAll(/^tide_migrations_total\{[^}]*\} (\S+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
      expect(total).toBe(migrations);
      const energy = [...text.matchAll(/^tide_energy_kwh_total\{[^}]*\} (\S+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
      expect(energy).toBeGreaterThan(0);
      // The estimate (power models at the rounds' utilisation) against the simulator's own meter.
      const sim = (await (await fetch(`${demo.url}api/v1/demo`, { headers: { authorization: `Bearer ${demo.adminToken}` } })).json()) as { energyKWh: number };
      console.log(`energy estimate ${energy.toFixed(3)} kWh, simulator ${sim.energyKWh.toFixed(3)} kWh, ${migrations} migrations`);
      expect(Math.abs(energy - sim.energyKWh) / sim.energyKWh).toBeLessThan(0.02);
      expect((await fetch(`${demo.url}api/v1/hosts`)).status).toBe(401);
    } finally {
      await demo.close();
    }
  });
});
