/**
 * ssh power driver. `systemctl poweroff` is never run for real here: a stand-in `ssh` program
 * records its argv and answers as ssh would, and "the host" is a TCP listener on 127.0.0.1 whose
 * closing stands for the machine going down.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SshPowerConfig } from '../../src/config/schema.js';
import { SshPowerDriver, sshHost } from '../../src/drivers/power/ssh.js';
import { driverRejection as rejection } from '../helpers/rejection.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'tide-ssh-power-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in ssh: records argv (one per line) to `<name>.argv`, prints `stderr`, exits `code`. */
function fakeSsh(name: string, code: number, stderr = ''): { bin: string; argv: () => string[] | null } {
  const bin = join(dir, name);
  const out = join(dir, `${name}.argv`);
  writeFileSync(bin, `#!/bin/sh\nprintf '%s\\n' "$@" > '${out}'\nprintf '%s\\n' '${stderr}' >&2\nexit ${code}\n`);
  chmodSync(bin, 0o755);
  return { bin, argv: () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').slice(0, -1) : null) };
}

async function listener(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const cfg = (over: Partial<SshPowerConfig> = {}): SshPowerConfig => ({ kind: 'ssh', target: 'root@127.0.0.1', offTimeoutSec: 10, ...over });


describe('ssh power driver', () => {
  it('argv: BatchMode, identity and port as options, "--" before the target, then systemctl poweroff', () => {
    const d = new SshPowerDriver({ h: cfg({ target: 'admin@srv-1', identityFile: '/etc/tide/id_ed25519', port: 2222 }) });
    expect(d.argv('h')).toEqual(['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-i', '/etc/tide/id_ed25519', '-p', '2222', '--', 'admin@srv-1', 'systemctl', 'poweroff']);
    expect(sshHost('admin@srv-1')).toBe('srv-1');
  });

  it('powerOn is TIDE_UNSUPPORTED and says what to configure instead', async () => {
    const e = await rejection(new SshPowerDriver({ h: cfg() }).powerOn('h'));
    expect(e.code).toBe('TIDE_UNSUPPORTED');
    expect(e.message).toMatch(/wol/);
    expect((await rejection(new SshPowerDriver({}).powerOn('x'))).code).toBe('TIDE_NO_SUCH_HOST');
  });

  it('status: an answering port is on, a refusing one unknown (never on)', async () => {
    const l = await listener();
    const d = new SshPowerDriver({ h: cfg({ statusPort: l.port }) });
    expect(await d.status('h')).toBe('on');
    await l.close();
    expect(await d.status('h')).toBe('unknown');
  });

  it('powerOff runs ssh with that argv and resolves once the host stops answering', async () => {
    const l = await listener();
    const ssh = fakeSsh('ssh-ok', 0);
    const d = new SshPowerDriver({ h: cfg({ statusPort: l.port }) }, { ssh: ssh.bin, pollMs: 50 });
    const off = d.powerOff('h');
    // "The machine goes down" once the command was issued (bounded wait for the stand-in).
    for (let i = 0; i < 200 && ssh.argv() === null; i++) await new Promise((r) => setTimeout(r, 25));
    await l.close();
    await off;
    expect(ssh.argv()).toEqual(d.argv('h').slice(1));
  });

  it('ssh exit 255 with a session that dropped (poweroff under way) is accepted once the host is gone', async () => {
    const l = await listener();
    const ssh = fakeSsh('ssh-dropped', 255, 'Connection to 127.0.0.1 closed by remote host.');
    const d = new SshPowerDriver({ h: cfg({ statusPort: l.port }) }, { ssh: ssh.bin, pollMs: 50 });
    const off = d.powerOff('h');
    for (let i = 0; i < 200 && ssh.argv() === null; i++) await new Promise((r) => setTimeout(r, 25));
    await l.close();
    await off;
  });

  it('refused key, unreachable host, failing systemctl and a host that stays up are errors with stable codes', async () => {
    const l = await listener();
    const cases: [string, number, string, string][] = [
      ['ssh-denied', 255, 'root@127.0.0.1: Permission denied (publickey).', 'TIDE_POWER_FAILED'],
      ['ssh-noroute', 255, 'ssh: connect to host 127.0.0.1 port 22: No route to host', 'TIDE_HOST_UNREACHABLE'],
      ['ssh-systemctl', 1, 'Failed to power off system via logind: Access denied', 'TIDE_POWER_FAILED'],
    ];
    for (const [name, code, msg, want] of cases) {
      const d = new SshPowerDriver({ h: cfg({ statusPort: l.port }) }, { ssh: fakeSsh(name, code, msg).bin });
      const e = await rejection(d.powerOff('h'));
      expect(e.code, name).toBe(want);
      expect(e.message).toContain('h:');
    }
    // The command "succeeded" but the host still answers after offTimeoutSec.
    const d = new SshPowerDriver({ h: cfg({ statusPort: l.port, offTimeoutSec: 0.2 }) }, { ssh: fakeSsh('ssh-liar', 0).bin, pollMs: 50 });
    const e = await rejection(d.powerOff('h'));
    expect(e.code).toBe('TIDE_POWER_FAILED');
    expect(e.message).toMatch(/still answering/);
    await l.close();
  });
});
