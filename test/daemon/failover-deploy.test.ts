/**
 * The 3-controller example (deploy/ha): its Tide configuration passes `tide config check` with
 * a PostgreSQL store whose password comes from a file; the systemd unit runs that configuration
 * and restarts a deposed leader; Prometheus scrapes the three controllers at the configured
 * port; pg_hba admits exactly three controllers, over TLS with SCRAM.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const HA = join(import.meta.dirname, '../../deploy/ha');
const read = (f: string): string => readFileSync(join(HA, f), 'utf8');

describe('deploy/ha', () => {
  it('tide config check accepts tide.yaml: a postgres store, password from a file, automatic mode, HTTP on every node', async () => {
    const r = await runCli(['--config', join(HA, 'tide.yaml'), 'config', 'check']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const c = JSON.parse(r.out) as { store: Record<string, unknown>; mode: string; intervalSec: number; http: { port: number; listen: string } };
    expect(c.store).toMatchObject({ kind: 'postgres', database: 'tide', user: 'tide', passwordFile: '/etc/tide/pg.pass', ssl: true });
    expect(c.store.password).toBeUndefined();
    expect(c.mode).toBe('automatic');
    expect(c.http.listen).toBe('0.0.0.0');
    expect(read('tide.yaml')).not.toMatch(/^\s*password:/m);
  });

  it('the systemd unit runs tide daemon on that file and restarts a deposed leader', () => {
    const unit = read('tide-controller.service');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/tide daemon --config \/etc\/tide\/tide\.yaml$/m);
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^User=tide$/m);
  });

  it('Prometheus scrapes the three controllers on the configured HTTP port', async () => {
    const port = (JSON.parse((await runCli(['--config', join(HA, 'tide.yaml'), 'config', 'check'])).out) as { http: { port: number } }).http.port;
    const prom = parse(read('prometheus/tide-controllers.yml')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
    const targets = prom.scrape_configs.flatMap((s) => s.static_configs.flatMap((x) => x.targets));
    expect(targets).toHaveLength(3);
    for (const t of targets) expect(t.endsWith(`:${port}`)).toBe(true);
  });

  it('PostgreSQL: pg_hba admits the tide role from three addresses over TLS with SCRAM; the role ends idle transactions', () => {
    const rules = read('postgresql/pg_hba.conf.snippet').split('\n').filter((l) => l.trim() && !l.trim().startsWith('#')).map((l) => l.trim().split(/\s+/));
    expect(rules).toHaveLength(3);
    for (const r of rules) expect([r[0], r[1], r[2], r[4]]).toEqual(['hostssl', 'tide', 'tide', 'scram-sha-256']);
    expect(read('postgresql/tide.sql')).toMatch(/idle_in_transaction_session_timeout/);
  });
});
