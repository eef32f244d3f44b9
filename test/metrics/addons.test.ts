/**
 * daemonAddons (src/metrics/addons.ts): the metrics of a daemon on the simulator served at
 * GET /metrics by the HTTP API app (createHttpApp's extraRoutes) without a token, while the API
 * itself still wants one; a webhook secret that cannot be read is a ConfigError naming the
 * variable.
 */
import { describe, expect, it } from 'vitest';
import { tideConfigSchema } from '../../src/config/schema.js';
import { createHttpApp } from '../../src/http/app.js';
import { daemonAddons } from '../../src/metrics/addons.js';
import { openSqliteStore } from '../../src/store/store.js';
import { simDaemon } from '../daemon/helpers.js';

describe('daemonAddons', () => {
  it('GET /metrics on the API app: 200 without a token, with the daemon\'s figures', async () => {
    const config = tideConfigSchema.parse({ hosts: [{ name: 'h1', uri: 'qemu:///system' }] });
    const store = openSqliteStore(':memory:');
    const addons = daemonAddons({ config, configFile: null, env: {}, store: () => store, migrationMode: () => config.migration.mode });
    expect(addons.webhooks).toBeNull();
    const d = simDaemon('automatic', { store, deps: { observer: addons.observer } });
    await d.round();
    const app = createHttpApp({ store, config, extraRoutes: (a) => addons.routes(a) });
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const migrations = store.migrations({ limit: 100_000 }).length;
    expect(migrations).toBeGreaterThan(0);
    expect(text).toContain(`tide_migrations_total{mode="live"} ${migrations}`);
    expect(text).toMatch(/tide_plans\{status="done"\} 1/);
    expect((await app.request('/api/v1/hosts')).status).toBe(401);
    await addons.close();
  });

  it('a webhook whose secret variable is unset is refused with the variable\'s name', () => {
    const config = tideConfigSchema.parse({ hosts: [{ name: 'h1', uri: 'qemu:///system' }], webhooks: [{ url: 'http://127.0.0.1:9/h', secretEnv: 'NOPE_SECRET' }] });
    expect(() => daemonAddons({ config, configFile: null, env: {} })).toThrow(/NOPE_SECRET/);
    const ok = daemonAddons({ config, configFile: null, env: { NOPE_SECRET: 'abcdefgh' } });
    expect(ok.webhooks).not.toBeNull();
    return ok.close();
  });
});
