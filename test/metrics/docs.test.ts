/**
 * docs/metrics.md cannot drift from the exporter: every metric family createMetrics registers
 * (src/metrics/prometheus.ts, with every option that adds families: store, leader) has a row in
 * the reference table, with its type, and every row names a family that exists.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/prometheus.js';
import { openSqliteStore } from '../../src/store/store.js';

const doc = readFileSync(fileURLToPath(new URL('../../docs/metrics.md', import.meta.url)), 'utf8');
/** Reference rows: | `tide_name` | type | labels | meaning | */
const rows = new Map([...doc.matchAll(/^\| `(tide_[a-z_]+)` \| ([a-z]+) \|/gm)].map((m) => [m[1]!, m[2]!]));

describe('docs/metrics.md', () => {
  it('lists every family the daemon exports, with its type, and nothing else', async () => {
    const store = openSqliteStore(':memory:');
    try {
      const m = createMetrics({ store, leader: () => ({ cluster: 'c', node: 'n', role: 'standby', lease: null }) });
      const families = new Map((await m.registry.getMetricsAsJSON()).map((f) => [f.name, String(f.type)]));
      expect(families.size).toBeGreaterThan(20);
      for (const [name, type] of families) expect(rows.get(name), `docs/metrics.md has no row for ${name}`).toBe(type);
      for (const name of rows.keys()) expect(families.has(name), `docs/metrics.md lists ${name}, which is not exported`).toBe(true);
    } finally {
      store.close();
    }
  });
});
