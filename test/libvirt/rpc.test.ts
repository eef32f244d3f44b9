// Unit tests of the RPC dispatcher against a scripted fake peer: serial matching with
// out-of-order replies, pipelining, timeouts, remote errors, keepalive in both directions,
// dead-peer detection, connection loss and protocol violations. Also event routing by
// callback id through LibvirtConnection.
import { afterEach, describe, expect, it } from 'vitest';
import { LibvirtConnection } from '../../src/libvirt/connection.js';
import type { Packet } from '../../src/libvirt/packet.js';
import { eventMsgs, KEEPALIVE_PROGRAM, procs } from '../../src/libvirt/protocol.js';
import { RpcClient } from '../../src/libvirt/rpc.js';
import { decode, encode, xdr } from '../../src/libvirt/xdr.js';
import { fakePair, type FakePeer } from './fake-peer.js';
import { rejection } from '../helpers/rejection.js';

let cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

async function setup(opts: ConstructorParameters<typeof RpcClient>[1] = {}): Promise<{ rpc: RpcClient; peer: FakePeer }> {
  const { client, peer, cleanup } = await fakePair();
  cleanups.push(cleanup);
  return { rpc: new RpcClient(client, opts), peer };
}

const nameRet = (name: string): Buffer => encode(procs.CONNECT_GET_HOSTNAME.ret, { hostname: name });

describe('dispatcher', () => {
  it('matches replies to calls by serial, whatever the reply order', async () => {
    const { rpc, peer } = await setup();
    const calls = [0, 1, 2].map(() => rpc.call(procs.CONNECT_GET_HOSTNAME, undefined));
    await peer.waitFor(3);
    const sent = peer.calls();
    expect(new Set(sent.map((p) => p.header.serial)).size).toBe(3);
    // answer in reverse order, each with a name derived from its own serial
    for (const p of [...sent].reverse()) peer.reply(p, nameRet(`host-${p.header.serial}`));
    const got = await Promise.all(calls);
    expect(got.map((r) => r.hostname)).toEqual(sent.map((p) => `host-${p.header.serial}`));
  });

  it('pipelines many concurrent calls and delivers shuffled replies correctly', async () => {
    const { rpc, peer } = await setup();
    const n = 300;
    const calls = Array.from({ length: n }, (_, i) => rpc.call(procs.CONNECT_SUPPORTS_FEATURE, { feature: i }));
    await peer.waitFor(n);
    const sent = peer.calls();
    // reply "supported = feature * 2" in a scrambled order
    const order = sent.map((p, i) => ({ p, k: (i * 7919) % n })).sort((a, b) => a.k - b.k).map((x) => x.p);
    for (const p of order) {
      const { feature } = decode(procs.CONNECT_SUPPORTS_FEATURE.args, p.body);
      peer.reply(p, encode(procs.CONNECT_SUPPORTS_FEATURE.ret, { supported: feature * 2 }));
    }
    const got = await Promise.all(calls);
    expect(got.map((r) => r.supported)).toEqual(Array.from({ length: n }, (_, i) => i * 2));
    expect(rpc.pendingCalls).toBe(0);
  });

  it('times out a call, drops its late reply, and keeps the connection usable', async () => {
    const { rpc, peer } = await setup();
    const t0 = Date.now();
    const err = await rejection(rpc.call(procs.CONNECT_GET_HOSTNAME, undefined, { timeoutMs: 80 }));
    expect(err.tideCode).toBe('TIDE_TIMEOUT');
    expect(err.message).toMatch(/CONNECT_GET_HOSTNAME: no reply within 80 ms/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(75);
    const late = peer.calls()[0] as Packet;
    peer.reply(late, nameRet('late'));
    const next = rpc.call(procs.CONNECT_GET_HOSTNAME, undefined);
    await peer.waitFor(2);
    peer.reply(peer.calls()[1] as Packet, nameRet('fresh'));
    expect((await next).hostname).toBe('fresh');
    expect(rpc.stats.lateReplies).toBe(1);
  });

  it('turns remote_error into LibvirtError with code, domain, level, message and Tide code', async () => {
    const { rpc, peer } = await setup();
    peer.handler = (p) => peer.replyError(p, { code: 42, domain: 10, level: 2, message: "Domain not found: no domain with matching name 'nope'", str1: 'nope' });
    const err = await rejection(rpc.call(procs.DOMAIN_LOOKUP_BY_NAME, { name: 'nope' }));
    expect(err).toMatchObject({ code: 42, domain: 10, level: 2, tideCode: 'TIDE_NO_SUCH_VM', origin: 'remote', procedure: 'DOMAIN_LOOKUP_BY_NAME', str1: 'nope' });
    expect(err.message).toContain("no domain with matching name 'nope'");
  });

  it("maps 'unknown procedure' (VIR_ERR_RPC) to TIDE_UNSUPPORTED", async () => {
    const { rpc, peer } = await setup();
    peer.handler = (p) => peer.replyError(p, { code: 39, domain: 7, message: 'unknown procedure: 442' });
    const err = await rejection(rpc.call(procs.DOMAIN_ABORT_JOB_FLAGS, { dom: { name: 'a', uuid: '00000000-0000-0000-0000-000000000001', id: 1 }, flags: 0 }));
    expect(err.tideCode).toBe('TIDE_UNSUPPORTED');
  });

  it('rejects every pending call with TIDE_HOST_UNREACHABLE when the peer goes away, and later calls at once', async () => {
    const { rpc, peer } = await setup();
    const a = rpc.call(procs.CONNECT_GET_HOSTNAME, undefined);
    const b = rpc.call(procs.CONNECT_GET_TYPE, undefined);
    await peer.waitFor(2);
    peer.socket.destroy();
    const [ea, eb] = await Promise.all([rejection(a), rejection(b)]);
    expect(ea.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(eb.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(eb.message).toMatch(/CONNECT_GET_TYPE/);
    const c = await rejection(rpc.call(procs.CONNECT_GET_HOSTNAME, undefined));
    expect(c.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(rpc.closed).toBe(true);
  });

  it('treats a malformed packet as a protocol error and drops the connection', async () => {
    const { rpc, peer } = await setup();
    const a = rpc.call(procs.CONNECT_GET_HOSTNAME, undefined);
    await peer.waitFor(1);
    peer.socket.write(Buffer.from('00000005ffffffff', 'hex'));
    const err = await rejection(a);
    expect(err.message).toMatch(/invalid packet length 5/);
  });

  it('rejects a reply whose body does not match the procedure layout', async () => {
    const { rpc, peer } = await setup();
    peer.handler = (p) => peer.reply(p, Buffer.from('00000001', 'hex'));
    const err = await rejection(rpc.call(procs.CONNECT_GET_HOSTNAME, undefined));
    expect(err.message).toMatch(/CONNECT_GET_HOSTNAME: malformed reply/);
    expect(err.tideCode).toBe('TIDE_LIBVIRT_ERROR');
  });

  it('honours an AbortSignal', async () => {
    const { rpc } = await setup();
    const ac = new AbortController();
    const p = rpc.call(procs.CONNECT_GET_HOSTNAME, undefined, { signal: ac.signal });
    ac.abort();
    expect((await rejection(p)).tideCode).toBe('TIDE_ABORTED');
  });
});

describe('keepalive', () => {
  it('answers the peer PING with PONG', async () => {
    const { peer } = await setup();
    peer.keepalive(1);
    await peer.waitFor(1);
    const p = peer.received[0] as Packet;
    expect(p.header).toMatchObject({ prog: KEEPALIVE_PROGRAM, proc: 2, type: 2 });
  });

  it('stays up while the peer answers our PINGs', async () => {
    const { rpc, peer } = await setup();
    peer.handler = (p) => {
      if (p.header.prog === KEEPALIVE_PROGRAM && p.header.proc === 1) peer.keepalive(2);
    };
    // margins survive a loaded machine: a stalled event loop must not look like a dead peer
    rpc.startKeepalive({ intervalMs: 100, count: 3 });
    await new Promise((r) => setTimeout(r, 700));
    expect(rpc.closed).toBe(false);
    expect(rpc.stats.pingsSent).toBeGreaterThanOrEqual(3);
    expect(rpc.stats.pongsReceived).toBeGreaterThanOrEqual(rpc.stats.pingsSent - 1); // last PONG may be in flight
  });

  it('declares a silent peer dead after count unanswered PINGs and fails pending calls', async () => {
    const { rpc, peer } = await setup();
    rpc.startKeepalive({ intervalMs: 50, count: 3 });
    const t0 = Date.now();
    const pending = rpc.call(procs.CONNECT_GET_HOSTNAME, undefined);
    const err = await rejection(pending);
    const elapsed = Date.now() - t0;
    expect(err.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(err.message).toMatch(/keepalive/);
    // dead after interval * (count + 1) of silence, not before
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(2000);
    expect(rpc.stats.pingsSent).toBe(3);
    expect(peer.received.filter((p) => p.header.prog === KEEPALIVE_PROGRAM && p.header.proc === 1)).toHaveLength(3);
  });
});

describe('LibvirtConnection over a fake daemon', () => {
  /** Minimal daemon: auth none, keepalive supported, open ok, callbacks numbered from 100. */
  function fakeDaemon(peer: FakePeer): { registered: Array<{ eventID: number; callbackID: number }> } {
    const registered: Array<{ eventID: number; callbackID: number }> = [];
    peer.handler = (p) => {
      if (p.header.prog !== 0x20008086) return;
      switch (p.header.proc) {
        case procs.AUTH_LIST.proc:
          peer.reply(p, encode(procs.AUTH_LIST.ret, { types: [0] }));
          break;
        case procs.CONNECT_SUPPORTS_FEATURE.proc:
          peer.reply(p, encode(procs.CONNECT_SUPPORTS_FEATURE.ret, { supported: 1 }));
          break;
        case procs.CONNECT_OPEN.proc:
        case procs.CONNECT_CLOSE.proc:
          peer.reply(p);
          break;
        case procs.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.proc: {
          const { eventID } = decode(procs.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.args, p.body);
          const callbackID = 100 + registered.length;
          registered.push({ eventID, callbackID });
          peer.reply(p, encode(procs.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY.ret, { callbackID }));
          break;
        }
        default:
          peer.replyError(p, { code: 39, domain: 7, message: `unknown procedure: ${p.header.proc}` });
      }
    };
    return { registered };
  }

  const dom = { name: 'vm1', uuid: '11111111-2222-3333-4444-555555555555', id: 3 };

  it('opens with AUTH_LIST, SUPPORTS_FEATURE(keepalive), CONNECT_OPEN(remote name) and routes events by callback id', async () => {
    const { client, peer, cleanup } = await fakePair();
    cleanups.push(cleanup);
    const { registered } = fakeDaemon(peer);
    const conn = await LibvirtConnection.open('qemu+tcp://example.invalid/system?no_verify=1', { connectStream: async () => client, keepalive: false });
    const opened = peer.calls().map((p) => p.header.proc);
    expect(opened).toEqual([66, 1]); // keepalive disabled: no SUPPORTS_FEATURE
    const openArgs = decode(procs.CONNECT_OPEN.args, (peer.calls()[1] as Packet).body);
    expect(openArgs).toEqual({ name: 'qemu:///system', flags: 0 });

    const lifecycle: unknown[] = [];
    const iterations: number[] = [];
    await conn.onDomainEvent('lifecycle', (ev) => lifecycle.push(ev));
    await conn.onDomainEvent('migration-iteration', (ev) => iterations.push(ev.iteration));
    expect(registered).toEqual([{ eventID: 0, callbackID: 100 }, { eventID: 20, callbackID: 101 }]);

    peer.message(318, encode(eventMsgs.LIFECYCLE.codec, { callbackID: 100, msg: { dom, event: 3, detail: 0 } }));
    peer.message(359, encode(eventMsgs.MIGRATION_ITERATION.codec, { callbackID: 101, dom, iteration: 4 }));
    peer.message(318, encode(eventMsgs.LIFECYCLE.codec, { callbackID: 999, msg: { dom, event: 4, detail: 0 } })); // unknown id: ignored
    peer.message(362, encode(xdr.struct({ reason: xdr.int }), { reason: 100 })); // not an event proc: ignored
    await new Promise((r) => setTimeout(r, 50));
    expect(lifecycle).toEqual([{ dom, event: 3, detail: 0 }]);
    expect(iterations).toEqual([4]);
    await conn.close();
    expect(conn.state).toBe('closed');
  });

  it('refuses SASL-only daemons with TIDE_UNSUPPORTED', async () => {
    const { client, peer, cleanup } = await fakePair();
    cleanups.push(cleanup);
    peer.handler = (p) => peer.reply(p, encode(procs.AUTH_LIST.ret, { types: [1] }));
    const err = await rejection(LibvirtConnection.open('qemu:///system', { connectStream: async () => client }));
    expect(err.tideCode).toBe('TIDE_UNSUPPORTED');
    expect(err.message).toMatch(/SASL/);
  });
});
