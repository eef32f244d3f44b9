// One collection round of the libvirt (RPC) driver is one round trip per host (issue 9 item 5):
// the round the controller makes (listHosts + listVms, then the metrics source's sample()) and
// the one bench/collect.js makes (all three at once) send GET_ALL_DOMAIN_STATS once, with the
// persistent list and the node's CPU and memory counters, in one write, and sample() then asks
// nothing more. Against a scripted daemon (test/libvirt/fake-peer.ts) so the calls can be
// counted; the same driver runs the contract suite on real libvirtds (libvirt.test.ts).
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { HostConfig } from '../../src/config/schema.js';
import { LibvirtDriver } from '../../src/drivers/libvirt/index.js';
import { procs } from '../../src/libvirt/protocol.js';
import { decode, encode } from '../../src/libvirt/xdr.js';
import { fakePair, type FakePeer } from '../libvirt/fake-peer.js';

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const NAME_OF = new Map<number, string>(Object.values(procs).map((p) => [p.proc, p.name]));
const VM1 = { name: 'vm1', uuid: '11111111-2222-3333-4444-555555555555', id: 1 };
const VM2 = { name: 'vm2', uuid: '66666666-7777-8888-9999-000000000000', id: -1 };
const CAPS = '<capabilities><host><uuid>aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee</uuid><cpu><arch>x86_64</arch><model>EPYC</model></cpu></host></capabilities>';

/** A daemon with one running (vm1) and one shut-off (vm2) persistent domain; counters grow per call. */
function daemon(peer: FakePeer): void {
  let tick = 0;
  const u = (n: number) => ({ type: 4 as const, value: BigInt(n) });
  const i = (n: number) => ({ type: 1 as const, value: n });
  peer.handler = (p) => {
    const name = NAME_OF.get(p.header.proc);
    const ok = (body?: Buffer): void => peer.reply(p, body);
    switch (name) {
      case 'AUTH_LIST': return ok(encode(procs.AUTH_LIST.ret, { types: [0] }));
      case 'CONNECT_OPEN': case 'CONNECT_CLOSE': return ok();
      case 'CONNECT_GET_CAPABILITIES': return ok(encode(procs.CONNECT_GET_CAPABILITIES.ret, { capabilities: CAPS }));
      case 'CONNECT_GET_HOSTNAME': return ok(encode(procs.CONNECT_GET_HOSTNAME.ret, { hostname: 'h1.example' }));
      case 'NODE_GET_INFO': return ok(encode(procs.NODE_GET_INFO.ret, { model: 'x86_64', memory: 8n * 1024n * 1024n, cpus: 4, mhz: 2000, nodes: 1, sockets: 1, cores: 4, threads: 1 }));
      case 'NODE_GET_CPU_STATS': case 'NODE_GET_MEMORY_STATS': {
        const cpu = name === 'NODE_GET_CPU_STATS';
        const fields = cpu
          ? [['user', 1000 * tick], ['kernel', 500 * tick], ['idle', 10_000 * tick], ['iowait', 0]] as const
          : [['total', 8 * 1024 * 1024], ['free', 4 * 1024 * 1024], ['buffers', 0], ['cached', 0]] as const;
        const nparams = decode(procs.NODE_GET_CPU_STATS.args, p.body).nparams;
        if (cpu) tick++;
        if (nparams === 0) return ok(encode(procs.NODE_GET_CPU_STATS.ret, { params: [], nparams: fields.length }));
        return ok(encode(procs.NODE_GET_CPU_STATS.ret, { params: fields.map(([field, v]) => ({ field, value: BigInt(v) })), nparams: fields.length }));
      }
      case 'CONNECT_LIST_ALL_DOMAINS': return ok(encode(procs.CONNECT_LIST_ALL_DOMAINS.ret, { domains: [VM1, VM2], ret: 2 }));
      case 'CONNECT_GET_ALL_DOMAIN_STATS': {
        const { stats, flags } = decode(procs.CONNECT_GET_ALL_DOMAIN_STATS.args, p.body);
        const usage = (stats & 2) !== 0; // VIR_DOMAIN_STATS_CPU_TOTAL
        const activeOnly = (flags & 32) !== 0; // VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
        const rec = (dom: typeof VM1, state: number) => ({
          dom,
          params: [
            { field: 'state.state', value: i(state) }, { field: 'state.reason', value: i(1) },
            { field: 'balloon.maximum', value: u(1024 * 1024) }, { field: 'vcpu.current', value: i(2) },
            ...(usage && state === 1 ? [{ field: 'cpu.time', value: u(2e9 * tick) }, { field: 'balloon.rss', value: u(512 * 1024) }] : []),
          ],
        });
        const retStats = activeOnly ? [rec(VM1, 1)] : [rec(VM1, 1), rec(VM2, 5)];
        return ok(encode(procs.CONNECT_GET_ALL_DOMAIN_STATS.ret, { retStats }));
      }
      default: return peer.replyError(p, { code: 39, domain: 7, message: `unsupported by the scripted daemon: ${name ?? p.header.proc}` });
    }
  };
}

/** Counts the socket writes (one per _write/_writev) and the calls in each. */
function countWrites(s: Socket): number[] {
  const seen: number[] = [];
  const w = s as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const write = w._write.bind(s);
  const writev = w._writev.bind(s);
  w._write = (...a: unknown[]) => { seen.push(1); write(...a); };
  w._writev = (...a: unknown[]) => { seen.push((a[0] as unknown[]).length); writev(...a); };
  return seen;
}

async function setup(shareCountersMs?: number): Promise<{ driver: LibvirtDriver; peer: FakePeer; writes: number[]; calls: () => string[] }> {
  const { client, peer, cleanup } = await fakePair();
  daemon(peer);
  const writes = countWrites(client);
  const host = { name: 'h1', uri: 'qemu+tcp://h1.example/system' } as HostConfig;
  const driver = new LibvirtDriver([host], { connection: { connectStream: async () => client, keepalive: false }, shareCountersMs });
  cleanups.push(cleanup, () => driver.close());
  let seen = 0;
  /** Procedure names the daemon received since the last call of calls(). */
  const calls = (): string[] => {
    const all = peer.calls().map((p) => NAME_OF.get(p.header.proc) ?? String(p.header.proc));
    const fresh = all.slice(seen);
    seen = all.length;
    return fresh;
  };
  return { driver, peer, writes, calls };
}

const ONE_EXCHANGE = ['CONNECT_GET_ALL_DOMAIN_STATS', 'CONNECT_LIST_ALL_DOMAINS', 'NODE_GET_CPU_STATS', 'NODE_GET_MEMORY_STATS'];

describe('libvirt driver: one round trip per host and round', () => {
  it('controller round (inventory, then usage): after the first round, one exchange of four calls in one write; sample() asks nothing', async () => {
    const { driver, writes, calls } = await setup();
    // first round: connect, host facts, inventory, then sample's own counters (usage not yet known to be wanted)
    await Promise.all([driver.listHosts(), driver.listVms()]);
    await driver.sample();
    calls();
    for (let round = 0; round < 3; round++) {
      const w0 = writes.length;
      const [hosts, vms] = await Promise.all([driver.listHosts(), driver.listVms()]);
      expect(calls().sort()).toEqual(ONE_EXCHANGE);
      expect(writes.slice(w0)).toEqual([4]);
      const s = await driver.sample();
      expect(calls()).toEqual([]);
      expect(hosts.map((h) => [h.name, h.up])).toEqual([['h1', true]]);
      expect(vms.map((v) => [v.name, v.state, v.persistent])).toEqual([['vm1', 'running', true], ['vm2', 'shutoff', true]]);
      // the counters came with the inventory and still give rates (vm1 burns 2 s of CPU per daemon tick)
      expect(s.hosts.map((h) => h.host)).toEqual(['h1']);
      expect(s.vms.map((v) => v.vm)).toEqual(['vm1']);
      expect(s.vms[0]!.cpuPct).not.toBeNull();
      expect(s.hosts[0]!.cpuPct).toBeCloseTo((1500 / 11_500) * 100, 0); // 13 %: busy 1500 of 11 500 ns per daemon tick
    }
  });

  it('bench round (listHosts, listVms and sample at once): one exchange; the next round asks again', async () => {
    const { driver, writes, calls } = await setup();
    await Promise.all([driver.listHosts(), driver.listVms(), driver.sample()]);
    calls();
    for (let round = 0; round < 2; round++) {
      const w0 = writes.length;
      const [, vms, s] = await Promise.all([driver.listHosts(), driver.listVms(), driver.sample()]);
      expect(calls().sort()).toEqual(ONE_EXCHANGE);
      expect(writes.slice(w0)).toEqual([4]);
      expect(vms).toHaveLength(2);
      expect(s.vms.map((v) => v.vm)).toEqual(['vm1']);
    }
  });

  it('counters are used once: a second sample() asks the daemon; listVms() never reuses an earlier answer', async () => {
    const { driver, calls } = await setup();
    await driver.sample();
    await driver.listVms();
    calls();
    await driver.sample();
    expect(calls()).toEqual([]);
    await driver.sample();
    expect(calls().sort()).toEqual(['CONNECT_GET_ALL_DOMAIN_STATS', 'NODE_GET_CPU_STATS', 'NODE_GET_MEMORY_STATS']);
    await driver.listVms();
    await driver.listVms();
    expect(calls().sort()).toEqual([...ONE_EXCHANGE, ...ONE_EXCHANGE].sort());
  });

  it('counters older than shareCountersMs are not used', async () => {
    const { driver, calls } = await setup(1);
    await driver.sample();
    await driver.listVms();
    calls();
    await new Promise((r) => setTimeout(r, 20));
    await driver.sample();
    expect(calls().sort()).toEqual(['CONNECT_GET_ALL_DOMAIN_STATS', 'NODE_GET_CPU_STATS', 'NODE_GET_MEMORY_STATS']);
  });

  it('without usage polling (e.g. Prometheus as the metrics source) the inventory asks only for inventory', async () => {
    const { driver, calls } = await setup();
    await Promise.all([driver.listHosts(), driver.listVms()]);
    calls();
    await Promise.all([driver.listHosts(), driver.listVms()]);
    expect(calls().sort()).toEqual(['CONNECT_GET_ALL_DOMAIN_STATS', 'CONNECT_LIST_ALL_DOMAINS']);
  });

  it('shareCountersMs 0: inventory and usage are separate exchanges', async () => {
    const { driver, calls } = await setup(0);
    await driver.sample();
    calls();
    await driver.listVms();
    await driver.sample();
    const seen = calls();
    expect(seen.slice(0, 2).sort()).toEqual(['CONNECT_GET_ALL_DOMAIN_STATS', 'CONNECT_LIST_ALL_DOMAINS']);
    expect(seen.slice(2).sort()).toEqual(['CONNECT_GET_ALL_DOMAIN_STATS', 'NODE_GET_CPU_STATS', 'NODE_GET_MEMORY_STATS']);
  });
});
