/** The per-host power section of the config: accepted shapes, defaults, and refusals named by path. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';

const SECRET = 'hunter2-secret-value';
const cfg = (power: unknown): unknown => ({ hosts: [{ name: 'a', uri: 'qemu:///system', power }] });
const refusal = (power: unknown): string => {
  try {
    parseConfig(cfg(power), 'tide.json');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('config was accepted');
};

describe('config: hosts[].power', () => {
  it('an inline IPMI password is refused with a path-named error that does not repeat it', () => {
    const m = refusal({ kind: 'ipmi', address: '10.0.0.1', user: 'admin', password: SECRET });
    expect(m).toContain('tide.json: hosts[0].power.password');
    expect(m).toMatch(/inline password is refused/);
    expect(m).not.toContain(SECRET);
  });

  it('an inline password in a WoL host\'s IPMI off method is refused too', () => {
    const m = refusal({ kind: 'wol', mac: '02:77:00:00:00:0a', off: { kind: 'ipmi', address: 'b', user: 'u', password: SECRET } });
    expect(m).toContain('hosts[0].power.off.password');
    expect(m).not.toContain(SECRET);
  });

  it('passwordFile and passwordEnv together are refused', () => {
    expect(refusal({ kind: 'ipmi', address: 'x', user: 'u', passwordFile: '/etc/tide/bmc', passwordEnv: 'BMC' })).toContain('hosts[0].power.passwordFile: give passwordFile or passwordEnv, not both');
  });

  it('IPMI defaults: port 623, lanplus, cipher 3, soft off with a grace; neither password source → none set (driver uses TIDE_IPMI_PASSWORD)', () => {
    const p = parseConfig(cfg({ kind: 'ipmi', address: '10.0.0.1', user: 'admin', passwordFile: '/etc/tide/bmc-a' }), 't').hosts[0]!.power;
    expect(p).toEqual({ kind: 'ipmi', address: '10.0.0.1', port: 623, user: 'admin', passwordFile: '/etc/tide/bmc-a', interface: 'lanplus', cipherSuite: 3, off: 'soft', softGraceSec: 300, timeoutSec: 15 });
  });

  it('only the lanplus interface is accepted', () => {
    expect(refusal({ kind: 'ipmi', address: 'x', user: 'u', interface: 'lan' })).toContain('hosts[0].power.interface');
  });

  it('WoL with an ssh off method and a status port; ssh target may not look like an option', () => {
    const p = parseConfig(cfg({ kind: 'wol', mac: '02:77:00:00:00:0A', off: { kind: 'ssh', target: 'root@h1' }, statusAddress: 'h1' }), 't').hosts[0]!.power;
    expect(p).toMatchObject({ kind: 'wol', broadcast: '255.255.255.255', port: 9, statusPort: 22, off: { kind: 'ssh', target: 'root@h1', offTimeoutSec: 120 } });
    expect(refusal({ kind: 'ssh', target: '-oProxyCommand=x' })).toContain('hosts[0].power.target');
    expect(refusal({ kind: 'wol', mac: '02:77:00:00:0a' })).toContain('hosts[0].power.mac');
  });

  it('no power section means kind none', () => {
    expect(parseConfig({ hosts: [{ name: 'a', uri: 'qemu:///system' }] }, 't').hosts[0]!.power).toEqual({ kind: 'none' });
  });

  it('a WoL broadcast must be an IPv4 address', () => {
    expect(refusal({ kind: 'wol', mac: '02:77:00:00:00:0a', broadcast: 'everyone' })).toContain("hosts[0].power.broadcast: 'everyone' is not an IPv4 broadcast address");
  });

  it('loadConfig makes passwordFile and identityFile absolute against the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-power-cfg-'));
    try {
      const file = join(dir, 'tide.json');
      writeFileSync(file, JSON.stringify({ hosts: [
        { name: 'a', uri: 'qemu:///system', power: { kind: 'ipmi', address: 'bmc-a', user: 'admin', passwordFile: 'secrets/bmc-a' } },
        { name: 'b', uri: 'qemu:///system', power: { kind: 'wol', mac: '02:77:00:00:00:0b', off: { kind: 'ssh', target: 'root@b', identityFile: 'keys/id' } } },
      ] }));
      const c = loadConfig(file);
      expect(c.hosts[0]!.power).toMatchObject({ passwordFile: join(dir, 'secrets/bmc-a') });
      expect(c.hosts[1]!.power).toMatchObject({ off: { identityFile: join(dir, 'keys/id') } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
