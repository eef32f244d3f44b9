// Integration tests of the qemu+ssh:// transport: a private sshd on 127.0.0.1 (generated host key,
// key-only root login) running inside the private libvirtd's mount namespace, reached through the
// npm ssh2 package (streamlocal forwarding) and through the system ssh binary (virt-ssh-helper,
// and nc -U with proxy=netcat).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtConnection } from '../../src/libvirt/index.js';
import { labGate, startLibvirtd, startSshd, type LibvirtdHandle, type SshdHandle } from '../helpers/libvirtd.js';
import { rejection } from '../helpers/rejection.js';

const run = labGate('libvirt RPC client over SSH (private sshd + libvirtd)', { ssh: true });

describe.skipIf(!run)('qemu+ssh:// transports', () => {
  let d: LibvirtdHandle;
  let sshd: SshdHandle;
  const conns: LibvirtConnection[] = [];
  const base = (): string => `qemu+ssh://root@127.0.0.1:${sshd.port}/system`;
  const auth = (): string => `keyfile=${sshd.keyfile}&known_hosts=${sshd.knownHosts}`;

  beforeAll(async () => {
    d = await startLibvirtd();
    sshd = await startSshd(d);
  });
  afterAll(async () => {
    for (const c of conns) await c.close();
    await sshd?.stop();
    await d?.stop();
  });

  const open = async (uri: string, o: Parameters<typeof LibvirtConnection.open>[1] = {}): Promise<LibvirtConnection> => {
    const c = await LibvirtConnection.open(uri, { connectTimeoutMs: 10_000, ...o });
    conns.push(c);
    return c;
  };

  it('ssh2: forwards to the remote /run/libvirt/libvirt-sock and reaches the private daemon', async () => {
    const c = await open(`${base()}?${auth()}`);
    expect(c.transportDescription).toMatch(/^ssh\(ssh2\):root@127\.0\.0\.1:\d+\/run\/libvirt\/libvirt-sock$/);
    expect(await c.getHostUuid()).toBe(d.hostUuid);
    expect(await c.getType()).toBe('QEMU');
  });

  it('ssh2: refuses an unknown host key unless no_verify=1', async () => {
    const empty = join(d.dir, 'empty_known_hosts');
    writeFileSync(empty, '');
    const err = await rejection(LibvirtConnection.open(`${base()}?keyfile=${sshd.keyfile}&known_hosts=${empty}`));
    expect(err.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(err.message).toMatch(/not in known_hosts/);
    const wrong = join(d.dir, 'wrong_known_hosts');
    writeFileSync(wrong, `[127.0.0.1]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3RdVu0hVL8F6cRkQ0wIpkzjfgkBdUDsK9Z2u6PbyJq\n`);
    expect((await rejection(LibvirtConnection.open(`${base()}?keyfile=${sshd.keyfile}&known_hosts=${wrong}`))).message).toMatch(/does not match/);
    const c = await open(`${base()}?keyfile=${sshd.keyfile}&known_hosts=${empty}&no_verify=1`);
    expect(await c.getHostUuid()).toBe(d.hostUuid);
  });

  it('ssh2: explicit socket parameter', async () => {
    const c = await open(`${base()}?${auth()}&socket=/run/libvirt/libvirt-sock`);
    expect(await c.getHostUuid()).toBe(d.hostUuid);
  });

  it('system ssh binary + virt-ssh-helper', async () => {
    const c = await open(`${base()}?${auth()}`, { ssh: { implementation: 'system' } });
    expect(c.transportDescription).toMatch(/^ssh\(ssh\):root@127\.0\.0\.1:\d+$/);
    expect(await c.getHostUuid()).toBe(d.hostUuid);
    expect((await c.listAllDomains()).length).toBe(0);
  });

  it('system ssh binary + nc -U (proxy=netcat, chosen by the command parameter)', async () => {
    const c = await open(`${base()}?${auth()}&command=ssh&proxy=netcat&socket=/run/libvirt/libvirt-sock`);
    expect(await c.getHostUuid()).toBe(d.hostUuid);
  });

  it('system ssh: a rejected key surfaces ssh\'s own error', async () => {
    const err = await rejection(LibvirtConnection.open(`${base()}?keyfile=${join(d.dir, 'ssh/host_ed25519')}&known_hosts=${sshd.knownHosts}`, { ssh: { implementation: 'system' } }));
    expect(err.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(err.message).toMatch(/ssh to root@127\.0\.0\.1:\d+ exited with code 255.*Permission denied/);
  });
});
