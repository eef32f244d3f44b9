// The RPC client's two collection-speed properties (issue 9 item 5; measured in bench/collect.js):
//  - calls issued in the same tick leave in one write (one wake-up of the daemon, not one per call),
//    later calls in a later write, in the order they were made;
//  - NODE_GET_CPU_STATS / NODE_GET_MEMORY_STATS ask libvirt for the field count once per
//    connection, so a later call is one round trip; a remembered count the daemon refuses is
//    asked again.
import { afterEach, describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import { LibvirtConnection } from '../../src/libvirt/connection.js';
import { procs } from '../../src/libvirt/protocol.js';
import { RpcClient } from '../../src/libvirt/rpc.js';
import { decode, encode } from '../../src/libvirt/xdr.js';
import { fakePair, type FakePeer } from './fake-peer.js';

let cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

/** Counts the socket-level writes (one _write or one _writev each) and the packets in them. */
function countWrites(s: Socket): { writes: number[] } {
  const seen = { writes: [] as number[] };
  const w = s as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const write = w._write.bind(s);
  const writev = w._writev.bind(s);
  w._write = (...a: unknown[]) => { seen.writes.push(1); write(...a); };
  w._writev = (...a: unknown[]) => { seen.writes.push((a[0] as unknown[]).length); writev(...a); };
  return seen;
}

const hostnameRet = (name: string): Buffer => encode(procs.CONNECT_GET_HOSTNAME.ret, { hostname: name });

describe('write batching', () => {
  it('five calls made in one tick leave in one write, in order; a call in a later tick in another', async () => {
    const { client, peer, cleanup } = await fakePair();
    cleanups.push(cleanup);
    const rpc = new RpcClient(client);
    const seen = countWrites(client);
    const first = Array.from({ length: 5 }, () => rpc.call(procs.CONNECT_GET_HOSTNAME, undefined));
    await peer.waitFor(5);
    expect(seen.writes).toEqual([5]);
    const serials = peer.calls().map((p) => p.header.serial);
    expect(serials).toEqual([...serials].sort((a, b) => a - b));
    for (const p of peer.calls()) peer.reply(p, hostnameRet(`h${p.header.serial}`));
    expect((await Promise.all(first)).map((r) => r.hostname)).toEqual(serials.map((s) => `h${s}`));

    const later = rpc.call(procs.CONNECT_GET_HOSTNAME, undefined);
    await peer.waitFor(6);
    expect(seen.writes).toEqual([5, 1]);
    peer.reply(peer.calls()[5]!, hostnameRet('x'));
    expect((await later).hostname).toBe('x');
    await rpc.close();
  });
});

describe('node statistics: the field count is asked once per connection', () => {
  /** A daemon with `fields` CPU and memory fields; any other non-zero nparams is refused, as libvirt does. */
  function statsDaemon(peer: FakePeer, fields: { cpu: number; mem: number }): void {
    peer.handler = (p) => {
      const proc = p.header.proc;
      if (proc === procs.AUTH_LIST.proc) peer.reply(p, encode(procs.AUTH_LIST.ret, { types: [0] }));
      else if (proc === procs.CONNECT_OPEN.proc || proc === procs.CONNECT_CLOSE.proc) peer.reply(p);
      else if (proc === procs.NODE_GET_CPU_STATS.proc || proc === procs.NODE_GET_MEMORY_STATS.proc) {
        const cpu = proc === procs.NODE_GET_CPU_STATS.proc;
        const nparams = cpu ? decode(procs.NODE_GET_CPU_STATS.args, p.body).nparams : decode(procs.NODE_GET_MEMORY_STATS.args, p.body).nparams;
        const n = cpu ? fields.cpu : fields.mem;
        // both procedures reply with the same layout ({ params, nparams })
        const ret = procs.NODE_GET_CPU_STATS.ret;
        if (nparams === 0) peer.reply(p, encode(ret, { params: [], nparams: n }));
        else if (nparams !== n) peer.replyError(p, { code: 8, domain: 0, message: `invalid argument: nparams must be ${n}` });
        else peer.reply(p, encode(ret, { params: Array.from({ length: n }, (_, i) => ({ field: `f${i}`, value: BigInt(i) })), nparams: n }));
      } else peer.replyError(p, { code: 39, domain: 7, message: `unknown procedure: ${proc}` });
    };
  }
  /** nparams of every NODE_GET_*_STATS call the daemon received, in order. */
  const statsCalls = (peer: FakePeer): number[] => peer.calls().flatMap((p) => {
    if (p.header.proc === procs.NODE_GET_CPU_STATS.proc) return [decode(procs.NODE_GET_CPU_STATS.args, p.body).nparams];
    if (p.header.proc === procs.NODE_GET_MEMORY_STATS.proc) return [decode(procs.NODE_GET_MEMORY_STATS.args, p.body).nparams];
    return [];
  });

  it('first call: count then fetch; later calls: one fetch each; a refused count is asked again', async () => {
    const { client, peer, cleanup } = await fakePair();
    cleanups.push(cleanup);
    const fields = { cpu: 4, mem: 3 };
    statsDaemon(peer, fields);
    const conn = await LibvirtConnection.open('qemu+tcp://example.invalid/system?no_verify=1', { connectStream: async () => client, keepalive: false });
    const expectCpu = (n: number): Record<string, bigint> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, BigInt(i)]));
    expect(await conn.nodeGetCpuStats()).toEqual(expectCpu(4));
    expect(await conn.nodeGetMemoryStats()).toEqual(expectCpu(3));
    expect(statsCalls(peer)).toEqual([0, 4, 0, 3]);
    expect(await conn.nodeGetCpuStats()).toEqual(expectCpu(4));
    expect(await conn.nodeGetMemoryStats()).toEqual(expectCpu(3));
    expect(statsCalls(peer)).toEqual([0, 4, 0, 3, 4, 3]);
    // the daemon changed its mind (e.g. upgraded behind the same connection): refused, recounted, fetched
    fields.cpu = 5;
    expect(await conn.nodeGetCpuStats()).toEqual(expectCpu(5));
    expect(statsCalls(peer)).toEqual([0, 4, 0, 3, 4, 3, 4, 0, 5]);
    await conn.close();
  });
});
