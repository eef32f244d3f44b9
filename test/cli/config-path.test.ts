import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configPath } from '../../src/cli/cluster.js';
import type { CliIo } from '../../src/cli/io.js';

const dirs: string[] = [];
const dirWith = (...names: string[]): string => {
  const d = mkdtempSync(join(tmpdir(), 'tide-cfgpath-'));
  dirs.push(d);
  for (const n of names) writeFileSync(join(d, n), '{}');
  return d;
};
const io = (cwd: string, env: Record<string, string> = {}): CliIo => ({ out: () => {}, err: () => {}, isTty: false, env, cwd });

describe('configPath', () => {
  afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

  it('finds ./tide.yaml, ./tide.yml or ./tide.json when nothing names a file', () => {
    for (const n of ['tide.yaml', 'tide.yml', 'tide.json']) {
      const d = dirWith(n);
      expect(configPath({}, io(d))).toBe(join(d, n));
    }
  });

  it('refuses to guess between several, and says what to put where when there is none', () => {
    const both = dirWith('tide.yaml', 'tide.json');
    expect(() => configPath({}, io(both))).toThrow(/several configurations here \(tide\.yaml, tide\.json\)/);
    expect(() => configPath({}, io(dirWith()))).toThrow(/tide\.yaml or tide\.yml or tide\.json/);
  });

  it('--config, then $TIDE_CONFIG, win over the working directory', () => {
    const d = dirWith('tide.yaml');
    expect(configPath({ config: 'x.yml' }, io(d, { TIDE_CONFIG: '/etc/tide.yaml' }))).toBe(join(d, 'x.yml'));
    expect(configPath({}, io(d, { TIDE_CONFIG: '/etc/tide.yaml' }))).toBe('/etc/tide.yaml');
  });
});
