import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('tide config', () => {
  it('prints a JSON Schema derived from the zod schema', async () => {
    const r = await runCli(['config', 'schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.out) as { type: string; required: string[]; properties: Record<string, unknown> };
    expect(schema.type).toBe('object');
    expect(schema.required).toContain('hosts');
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['hosts', 'vms', 'migration', 'policy', 'mode']));
  });

  it('fills in defaults for a valid file and names the field of an invalid one', async () => {
    const good = join(tmp, 'good.json');
    writeFileSync(good, JSON.stringify({ hosts: [{ name: 'a', uri: 'qemu:///system' }] }));
    const ok = await runCli(['--config', good, 'config', 'check']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ mode: 'recommend', migration: { mode: 'live', maxConcurrent: 2 }, hosts: [{ name: 'a', power: { kind: 'none' } }] });
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ hosts: [{ name: 'a', uri: 'qemu:///system' }, { name: 'a', uri: 'x' }], migration: { maxConcurrent: 0 } }));
    const r = await runCli(['--config', bad, 'config', 'check']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/bad\.json: migration\.maxConcurrent: /);
    writeFileSync(bad, JSON.stringify({ hosts: [{ name: 'a', uri: 'qemu:///system' }, { name: 'a', uri: 'x' }] }));
    expect((await runCli(['--config', bad, 'config', 'check'])).err).toMatch(/hosts\[1\]\.name: duplicate host name 'a'/);
    expect((await runCli(['--config', join(tmp, 'none.json'), 'config', 'check'])).err).toMatch(/cannot read config file .*none\.json/);
  });
});
