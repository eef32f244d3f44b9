/**
 * The lab power add-on's fast parts (no root, no lab): the config section `tide lab up --power`
 * writes validates against the schema for both methods, the ipmi_sim hook command line refuses
 * what a shell would re-interpret, the hook client (power-agent.js in hook mode, transpiled from
 * the sources as the lab does) relays requests and fails closed, and the lab's process
 * classification knows the agent and the BMC (so `down` sweeps them).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { labLayout } from '../../src/lab/layout.js';
import { agentScript, hookCommand, labBootSec, labPowerConfig, type LabPowerState } from '../../src/lab/power.js';
import { bmcIp } from '../../src/lab/power-layout.js';
import { classify } from '../../src/lab/proc.js';
import { runCli } from '../helpers/cli.js';

const layout = labLayout('/tmp/tide-lab');
const st = (method: 'ipmi' | 'wol'): LabPowerState => ({ method, bootDelayMs: 3000, user: 'admin', passwordFile: '/tmp/tide-lab/power/bmc-password' });

describe('lab power config', () => {
  it('ipmi: one BMC per host at .101/.102, ipmitool in the switch netns, password by file; the whole config validates', () => {
    const hosts = layout.hosts.map((h) => ({ name: h.name, uri: h.uri, power: labPowerConfig(h, st('ipmi')), bootSec: labBootSec(st('ipmi')) }));
    const cfg = parseConfig({ hosts }, '/tmp/tide-lab/tide.json');
    expect(cfg.hosts.map((h) => h.power)).toEqual(layout.hosts.map((h) => expect.objectContaining({
      kind: 'ipmi', address: bmcIp(h), port: 623, user: 'admin', passwordFile: '/tmp/tide-lab/power/bmc-password', cipherSuite: 3, netns: 'tide-lab-sw',
    })));
    expect(cfg.hosts.map((h) => h.power.kind === 'ipmi' && h.power.address)).toEqual(['10.77.0.101', '10.77.0.102']);
    expect(cfg.hosts[0]!.bootSec).toBe(13);
    expect(JSON.stringify(hosts)).not.toMatch(/"password"/);
  });

  it('wol: the host MAC, the lab broadcast, sent from the switch netns; off and status through the host\'s IPMI', () => {
    const hosts = layout.hosts.map((h) => ({ name: h.name, uri: h.uri, power: labPowerConfig(h, st('wol')) }));
    const cfg = parseConfig({ hosts }, '/tmp/tide-lab/tide.json');
    const p = cfg.hosts[1]!.power;
    expect(p).toMatchObject({ kind: 'wol', mac: '02:77:00:00:00:0b', broadcast: '10.77.0.255', port: 9, netns: 'tide-lab-sw' });
    expect(p.kind === 'wol' && p.off).toMatchObject({ kind: 'ipmi', address: '10.77.0.102', netns: 'tide-lab-sw' });
  });

  it('the hook command line is made of shell-inert words only (ipmi_sim runs it through /bin/sh)', () => {
    expect(hookCommand('/tmp/x/power-agent.js', '/tmp/tide-lab/power/lab-a/agent.sock').split(' ').slice(1))
      .toEqual(['/tmp/x/power-agent.js', 'hook', '/tmp/tide-lab/power/lab-a/agent.sock']);
    for (const bad of ['/tmp/my lab/agent.sock', '/tmp/$(reboot)/agent.sock', "/tmp/it's/agent.sock", '/tmp/a;b/agent.sock', '/tmp/a"b/agent.sock']) {
      expect(() => hookCommand('/tmp/x/power-agent.js', bad)).toThrow(/cannot carry/);
    }
  });

  it('tide lab up refuses a bad --power method and --boot-delay-sec without --power (usage, before touching anything)', async () => {
    const bad = await runCli(['lab', 'up', '--power=redfish', '--dir', '/nonexistent/tide-lab-x']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--power is ipmi \(default\) or wol/);
    const lone = await runCli(['lab', 'up', '--boot-delay-sec', '2', '--dir', '/nonexistent/tide-lab-x']);
    expect(lone.code).toBe(2);
    expect(lone.err).toMatch(/--boot-delay-sec needs --power/);
    const neg = await runCli(['lab', 'up', '--power', '--boot-delay-sec', '-1', '--dir', '/nonexistent/tide-lab-x']);
    expect(neg.code).toBe(2);
  });

  it('classifies the power agent and ipmi_sim as lab processes (down sweeps them)', () => {
    expect(classify(['/usr/bin/node', '/tmp/tide-lab-power-0123456789abcdef/power-agent.js', 'serve', 'lab-a', '/tmp/tide-lab', '3000'])).toBe('power');
    expect(classify(['/usr/bin/node', '/work/main/dist/lab/power-agent.js', 'hook', '/tmp/tide-lab/power/lab-a/agent.sock', 'get', 'power'])).toBe('power');
    expect(classify(['ipmi_sim', '-n', '-c', '/tmp/tide-lab/power/lab-a/lan.conf'])).toBe('bmc');
    expect(classify(['/usr/bin/node', '/srv/other-agent.js'])).toBeNull();
  });
});

describe('the chassis_control hook client (power-agent.js hook)', () => {
  let dir = '';
  let server: Server;
  let script = '';
  const seen: string[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tide-hook-'));
    script = await agentScript();
    server = createServer((c) => {
      c.on('data', (b: Buffer) => {
        const line = b.toString('utf8').trim();
        seen.push(line);
        c.end(line === 'get power' ? 'power:1\n' : line === 'set power 0' ? '' : 'error: refused\n');
      });
    });
    await new Promise<void>((r) => server.listen(join(dir, 'agent.sock'), () => r()));
  });
  afterAll(() => {
    server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const hook = (args: string[]): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
    const c = spawn(process.execPath, [script, 'hook', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    c.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    c.on('close', (code) => resolve({ code, out, err }));
  });

  it('relays the request as one line and prints the reply (exit 0)', async () => {
    const r = await hook([join(dir, 'agent.sock'), 'get', 'power']);
    expect(r).toMatchObject({ code: 0, out: 'power:1\n' });
    const s = await hook([join(dir, 'agent.sock'), 'set', 'power', '0']);
    expect(s).toMatchObject({ code: 0, out: '' });
    expect(seen).toEqual(['get power', 'set power 0']);
  });

  it('fails closed (exit 1, nothing on stdout) when the agent refuses or is not there', async () => {
    const refused = await hook([join(dir, 'agent.sock'), 'set', 'power', '1']);
    expect(refused.code).toBe(1);
    expect(refused.out).toBe('');
    expect(refused.err).toContain('refused');
    const absent = await hook([join(dir, 'no-agent.sock'), 'get', 'power']);
    expect(absent.code).toBe(1);
    expect(absent.out).toBe('');
    expect(absent.err).toMatch(/ENOENT/);
  });
});
