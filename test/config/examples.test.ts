/**
 * Every configuration in examples/ is valid: `tide config check` exits 0 on each (CI runs this
 * test), and the YAML ones carry comments — they are meant to be read and copied.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const dir = fileURLToPath(new URL('../../examples/', import.meta.url));
const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();

describe('examples/', () => {
  it('holds a minimal, the lab-like and a production-like configuration', () => {
    expect(files).toEqual(expect.arrayContaining(['minimal.yaml', 'minimal.json', 'lab.yaml', 'production.yaml']));
  });

  it.each(files)('tide config check %s exits 0', async (f) => {
    const r = await runCli(['--config', join(dir, f), 'config', 'check']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const config = JSON.parse(r.out) as { hosts: unknown[] };
    expect(config.hosts.length).toBeGreaterThanOrEqual(2);
    if (f.endsWith('.yaml')) expect(readFileSync(join(dir, f), 'utf8')).toMatch(/^\s*#/m);
  });

  it('the production example uses rules of every kind, IPMI, Wake-on-LAN and no power, policy args and limits', async () => {
    const r = await runCli(['--config', join(dir, 'production.yaml'), 'config', 'check']);
    const c = JSON.parse(r.out) as { hosts: { power: { kind: string } }[]; rules: { kind: string; strength: string }[]; vms: Record<string, { pinned: boolean }>; policy: { args: object }; mode: string };
    expect(new Set(c.rules.map((x) => x.kind))).toEqual(new Set(['affinity', 'antiAffinity', 'pin']));
    expect(new Set(c.rules.map((x) => x.strength))).toEqual(new Set(['hard', 'soft']));
    expect(new Set(c.hosts.map((h) => h.power.kind))).toEqual(new Set(['ipmi', 'wol', 'none']));
    expect(Object.values(c.vms).some((v) => v.pinned)).toBe(true);
    expect(Object.keys(c.policy.args).length).toBeGreaterThan(0);
    expect(c.mode).toBe('approve');
  });
});
