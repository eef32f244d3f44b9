// Integration tests against a real, private libvirtd (test/helpers/libvirtd.ts): the handshake
// over unix socket, TCP and TLS (certificates generated here, loopback only), the test:///default
// driver through the daemon, errors as libvirt reports them, pipelining and keepalive.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LibvirtConnection,
  RpcClient,
  procs,
  REMOTE_PROGRAM,
  VIR_CONNECT_LIST_DOMAINS,
  VIR_DOMAIN_EVENT,
  VIR_DOMAIN_STATE,
} from '../../src/libvirt/index.js';
import { freePort, labGate, startLibvirtd, type LibvirtdHandle } from '../helpers/libvirtd.js';
import { rejection } from '../helpers/rejection.js';

const run = labGate('libvirt RPC client against a private libvirtd', { tls: true });

describe.skipIf(!run)('private libvirtd: transports and the test driver', () => {
  let d: LibvirtdHandle;
  const conns: LibvirtConnection[] = [];
  const open = async (uri: string, o: Parameters<typeof LibvirtConnection.open>[1] = {}): Promise<LibvirtConnection> => {
    const c = await LibvirtConnection.open(uri, o);
    conns.push(c);
    return c;
  };

  beforeAll(async () => {
    d = await startLibvirtd({ tcp: true, tls: true, keepaliveInterval: 1, keepaliveCount: 2 });
  });
  afterAll(async () => {
    for (const c of conns) await c.close();
    await d?.stop();
  });

  it('opens qemu+unix:///system?socket=... and reaches exactly this daemon', async () => {
    const c = await open(d.unixUri());
    expect(c.transportDescription).toBe(`unix:${d.socketPath}`);
    expect(await c.getType()).toBe('QEMU');
    expect(await c.getHostUuid()).toBe(d.hostUuid);
    const lib = await c.getLibVersion();
    expect(lib).toBeGreaterThanOrEqual(1_000_000n); // major * 1e6
    expect(typeof (await c.getHostname())).toBe('string');
  });

  it('opens qemu+tcp://127.0.0.1:<port>/system', async () => {
    const c = await open(`qemu+tcp://127.0.0.1:${d.tcpPort}/system`);
    expect(c.transportDescription).toBe(`tcp:127.0.0.1:${d.tcpPort}`);
    expect(await c.getHostUuid()).toBe(d.hostUuid);
  });

  it('opens qemu+tls://127.0.0.1:<port>/system with client certificates from pkipath', async () => {
    const pki = d.pki;
    if (!pki) throw new Error('fixture has no PKI');
    const c = await open(`qemu+tls://127.0.0.1:${d.tlsPort}/system?pkipath=${pki.clientDir}`);
    expect(c.transportDescription).toBe(`tls:127.0.0.1:${d.tlsPort}`);
    expect(await c.getHostUuid()).toBe(d.hostUuid);
    // the server certificate names localhost too: host name verification passes
    const byName = await open(`qemu+tls://localhost:${d.tlsPort}/system?pkipath=${pki.clientDir}`);
    expect(await byName.getType()).toBe('QEMU');
  });

  it('TLS: the daemon refuses a client certificate from another CA', async () => {
    const pki = d.pki as NonNullable<LibvirtdHandle['pki']>;
    const err = await rejection(LibvirtConnection.open(`qemu+tls://127.0.0.1:${d.tlsPort}/system?pkipath=${pki.rogueDir}`, { connectTimeoutMs: 5000 }));
    expect(err.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(err.message).toMatch(/tls 127\.0\.0\.1/);
  });

  it('TLS: we refuse a server certificate our CA did not sign, unless no_verify=1', async () => {
    const pki = d.pki as NonNullable<LibvirtdHandle['pki']>;
    const dir = mkdtempSync(join(tmpdir(), 'tide-pki-'));
    try {
      cpSync(join(d.dir, 'pki/rogue-ca/cacert.pem'), join(dir, 'cacert.pem'));
      cpSync(pki.clientcert, join(dir, 'clientcert.pem'));
      cpSync(pki.clientkey, join(dir, 'clientkey.pem'));
      const err = await rejection(LibvirtConnection.open(`qemu+tls://127.0.0.1:${d.tlsPort}/system?pkipath=${dir}`));
      expect(err.tideCode).toBe('TIDE_HOST_UNREACHABLE');
      expect(err.message).toMatch(/certificate/i);
      const c = await open(`qemu+tls://127.0.0.1:${d.tlsPort}/system?pkipath=${dir}&no_verify=1`);
      expect(await c.getHostUuid()).toBe(d.hostUuid);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports unreachable endpoints as TIDE_HOST_UNREACHABLE with the cause', async () => {
    const port = await freePort();
    const e1 = await rejection(LibvirtConnection.open(`qemu+tcp://127.0.0.1:${port}/system`));
    expect(e1.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(e1.message).toMatch(/ECONNREFUSED/);
    const e2 = await rejection(LibvirtConnection.open(`qemu+unix:///system?socket=${d.dir}/missing-sock`));
    expect(e2.message).toMatch(/ENOENT/);
    const e3 = await rejection(LibvirtConnection.open(`qemu+tls://127.0.0.1:${d.tlsPort}/system?pkipath=${d.dir}/nowhere`));
    expect(e3.tideCode).toBe('TIDE_INVALID_ARGUMENT');
    expect(e3.message).toMatch(/cannot read the CA certificate/);
  });

  it('test:///default through the daemon: inventory, lifecycle, state, events', async () => {
    const c = await open(d.unixUri('test', '/default'));
    expect(await c.getType()).toBe('TEST');
    const doms = await c.listAllDomains();
    const test = doms.find((x) => x.name === 'test');
    expect(test).toBeDefined();
    const dom = test as NonNullable<typeof test>;
    expect(dom.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(await c.lookupDomainByUuid(dom.uuid)).toEqual(dom);
    expect((await c.listAllDomains(VIR_CONNECT_LIST_DOMAINS.INACTIVE)).map((x) => x.name)).not.toContain('test');

    const events: Array<{ event: number; detail: number; name: string }> = [];
    const sub = await c.onDomainEvent('lifecycle', (ev) => events.push({ event: ev.event, detail: ev.detail, name: ev.dom.name }));
    expect(sub.callbackId).not.toBeNull();

    await c.suspend('test');
    expect((await c.getDomainState(dom)).state).toBe(VIR_DOMAIN_STATE.PAUSED);
    expect((await c.getDomainInfo(dom)).state).toBe(VIR_DOMAIN_STATE.PAUSED);
    await c.resume(dom);
    expect((await c.getDomainState(dom)).state).toBe(VIR_DOMAIN_STATE.RUNNING);
    const deadline = Date.now() + 5000;
    while (events.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(events).toEqual([
      { event: VIR_DOMAIN_EVENT.SUSPENDED, detail: 0, name: 'test' },
      { event: VIR_DOMAIN_EVENT.RESUMED, detail: 0, name: 'test' },
    ]);
    await sub.off();
    await c.suspend(dom);
    await c.resume(dom);
    await new Promise((r) => setTimeout(r, 100));
    expect(events).toHaveLength(2); // no delivery after off()

    // define / start / destroy / undefine a persistent domain
    const xml = (await c.getDomainXml(dom)).replace(/<name>test<\/name>/, '<name>tide-def</name>').replace(/<uuid>[^<]*<\/uuid>/, '');
    const def = await c.defineXml(xml);
    expect(def.id).toBe(-1);
    expect(await c.isDomainPersistent(def)).toBe(true);
    expect(await c.isDomainActive(def)).toBe(false);
    await c.setAutostart(def, true);
    expect(await c.getDomainAutostart(def)).toBe(true);
    const started = await c.createWithFlags(def);
    expect(started.id).toBeGreaterThan(0);
    expect(await c.isDomainActive(def)).toBe(true);
    await c.destroy(started);
    expect((await c.getDomainState(def)).state).toBe(VIR_DOMAIN_STATE.SHUTOFF);
    await c.undefine(def);
    expect((await rejection(c.lookupDomainByName('tide-def'))).tideCode).toBe('TIDE_NO_SUCH_VM');
  });

  it('nonexistent domain -> LibvirtError code 42 (VIR_ERR_NO_DOMAIN) -> TIDE_NO_SUCH_VM', async () => {
    const c = await open(d.unixUri());
    const err = await rejection(c.lookupDomainByName('tide-no-such-vm'));
    expect(err.code).toBe(42);
    expect(err.tideCode).toBe('TIDE_NO_SUCH_VM');
    expect(err.origin).toBe('remote');
    expect(err.level).toBe(2);
    expect(err.domain).toBeGreaterThan(0);
    expect(err.message).toContain('tide-no-such-vm');
    // by name through a method that takes a DomainRef
    expect((await rejection(c.suspend('tide-no-such-vm'))).tideCode).toBe('TIDE_NO_SUCH_VM');
  });

  it('driver without the API -> VIR_ERR_NO_SUPPORT -> TIDE_UNSUPPORTED; read-only connection refuses writes', async () => {
    const c = await open(d.unixUri('test', '/default'));
    const err = await rejection(c.getJobStats('test'));
    expect(err.code).toBe(3);
    expect(err.tideCode).toBe('TIDE_UNSUPPORTED');
    const ro = await open(d.unixUri('test', '/default'), { readonly: true });
    expect((await ro.listAllDomains()).length).toBeGreaterThan(0);
    const denied = await rejection(ro.suspend('test'));
    expect(denied.code).toBe(29); // VIR_ERR_OPERATION_DENIED
  });

  it('an unknown procedure number -> TIDE_UNSUPPORTED (as older daemons answer new procedures)', async () => {
    const sock = net.createConnection({ path: d.socketPath });
    await new Promise<void>((r, j) => {
      sock.once('connect', () => r());
      sock.once('error', j);
    });
    const rpc = new RpcClient(sock, { callTimeoutMs: 10_000 });
    try {
      await rpc.call(procs.AUTH_LIST, undefined);
      await rpc.call(procs.CONNECT_OPEN, { name: 'test:///default', flags: 0 });
      const err = await rejection(rpc.callRaw(REMOTE_PROGRAM, 1, 9999, Buffer.alloc(0)));
      expect(err.message).toMatch(/unknown procedure/i);
      expect(err.tideCode).toBe('TIDE_UNSUPPORTED');
    } finally {
      await rpc.close();
    }
  });

  it('pipelines 300 concurrent calls on one connection', async () => {
    const c = await open(d.unixUri('test', '/default'));
    const results = await Promise.all(Array.from({ length: 300 }, () => c.listAllDomains()));
    const names = results.map((r) => r.map((x) => x.name).sort().join(','));
    expect(new Set(names).size).toBe(1);
    expect(names[0]).toContain('test');
  });

  it('keepalive: the daemon answers our PINGs with PONGs', async () => {
    const c = await open(d.unixUri('test', '/default'), { keepalive: { intervalMs: 150, count: 3 } });
    await new Promise((r) => setTimeout(r, 1000));
    const s = c.rpcStats;
    expect(s.pingsSent).toBeGreaterThanOrEqual(3);
    expect(s.pongsReceived).toBeGreaterThanOrEqual(s.pingsSent - 1); // the last PONG may be in flight
    expect(c.state).toBe('open');
  });

  it('keepalive: we answer the daemon PINGs, so it keeps an idle connection (interval 1 s, count 2)', async () => {
    // advertise keepalive (so the daemon starts pinging us) but never ping it ourselves
    const c = await open(d.unixUri('test', '/default'), { keepalive: { intervalMs: 600_000, count: 1 } });
    await new Promise((r) => setTimeout(r, 4500)); // an unresponsive client is dropped after ~3 s
    expect(c.rpcStats.pingsReceived).toBeGreaterThanOrEqual(3);
    expect(c.rpcStats.pingsSent).toBe(0);
    expect(c.state).toBe('open');
    expect(await c.getType()).toBe('TEST');
  });
});
