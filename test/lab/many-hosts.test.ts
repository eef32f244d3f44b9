/**
 * The many-host lab (src/lab/many.ts) with real libvirtds: a few guest-less hosts, each its own
 * daemon in its own network, mount and UTS namespaces with its own host UUID; Tide's libvirt
 * RPC driver and the virsh driver must collect the same inventory from each of them (a
 * cross-check of the two transports over the shared engine); and the teardown must leave no
 * process, namespace, mount or file behind. Holds the lab lease (like every lab test), so it
 * runs alone with the other lab files. Speed is measured in bench/collect.js, not here.
 */
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { HostConfig } from '../../src/config/schema.js';
import { LibvirtDriver, type RpcBackend } from '../../src/drivers/libvirt/index.js';
import { VirshDriver } from '../../src/drivers/virsh/index.js';
import type { HostInfo, HypervisorDriver, VmInfo } from '../../src/drivers/hypervisor.js';
import { labLayout } from '../../src/lab/layout.js';
import { acquireLock } from '../../src/lab/lock.js';
import { ManyHosts, manyNamespaces, manyNetnsPrefix, type ManyDownReport } from '../../src/lab/many.js';
import { isLive, mountsUnder, processesMentioning } from '../../src/lab/proc.js';
import { LAB_HOOK_TIMEOUT_MS, TEST_LAB_DIR, describeLab } from '../helpers/lab.js';

const N = 5;
const PER_HOST = 2;
const DIR = process.env.TIDE_MANY_DIR ?? '/tmp/tide-many-test';
const log = (m: string): void => { process.stderr.write(`[many ${new Date().toISOString().slice(11, 23)}] ${m}\n`); };

/** What both drivers must agree on about a host (cpuMhz left out: the current frequency moves). */
const hostKey = (h: HostInfo): unknown => ({ name: h.name, up: h.up, uuid: h.uuid, hostname: h.hostname, cpuCores: h.cpuCores, memMiB: h.memMiB, cpuModel: h.cpuModel });
const vmKey = (v: VmInfo): unknown => ({ ...v });

describeLab('many-host lab: RPC and virsh drivers agree on every host; teardown leaves nothing', () => {
  let release: (() => void) | undefined;
  let many: ManyHosts | undefined;
  let rpc: HypervisorDriver | undefined;
  let virsh: HypervisorDriver | undefined;
  let daemonPids: number[] = [];
  let down: ManyDownReport | undefined;

  beforeAll(async () => {
    release = await acquireLock(labLayout(TEST_LAB_DIR).leaseFile, {
      what: 'the lab lease', timeoutMs: 14 * 60_000, onWait: (pid) => log(`lab busy (lease held by pid ${pid}); waiting`),
    });
    many = await ManyHosts.start({ n: N, dir: DIR, domainsPerHost: PER_HOST, log });
    daemonPids = many.libvirtdPids();
    const hosts = many.hostConfigs() as HostConfig[];
    rpc = new LibvirtDriver(hosts);
    virsh = new VirshDriver(hosts);
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    try {
      await rpc?.close();
      await virsh?.close();
      if (down === undefined) await ManyHosts.down(DIR, log);
    } finally {
      release?.();
    }
  }, LAB_HOOK_TIMEOUT_MS);

  it('each host is its own libvirtd in its own network, mount and UTS namespaces, with its own UUID', () => {
    expect(daemonPids).toHaveLength(N);
    const netns = daemonPids.map((p) => readlinkSync(`/proc/${p}/ns/net`));
    const mnt = daemonPids.map((p) => readlinkSync(`/proc/${p}/ns/mnt`));
    const uts = daemonPids.map((p) => readlinkSync(`/proc/${p}/ns/uts`));
    for (const ns of [netns, mnt, uts]) {
      expect(new Set(ns).size).toBe(N);
      expect(ns).not.toContain(readlinkSync(`/proc/${process.pid}/ns/${ns === netns ? 'net' : ns === mnt ? 'mnt' : 'uts'}`));
    }
    // the daemon of host i lives in the namespace named for host i
    expect(netns).toEqual(many!.hosts.map((h) => `net:[${statSync(`/run/netns/${h.netns}`).ino}]`));
    expect(new Set(many!.hosts.map((h) => h.uuid)).size).toBe(N);
    expect(manyNamespaces(DIR).sort()).toEqual(many!.hosts.map((h) => h.netns).sort());
  });

  it('the RPC and virsh drivers collect the same hosts and domains, and both match what was set up', async () => {
    const [rh, rv, vh, vv] = await Promise.all([rpc!.listHosts(), rpc!.listVms(), virsh!.listHosts(), virsh!.listVms()]);
    expect(rh.map(hostKey)).toEqual(vh.map(hostKey));
    expect(rv.map(vmKey)).toEqual(vv.map(vmKey));
    // and both are right: every host up with its own UUID and hostname; every domain where it was defined
    expect(rh.map((h) => [h.name, h.up, h.uuid, h.hostname])).toEqual(many!.hosts.map((h) => [h.name, true, h.uuid, h.name]));
    const expected = many!.hosts.flatMap((h) => h.domains.map((d, k) => ({
      name: d, host: h.name, state: 'shutoff', vcpus: k + 1, memMiB: 128 * (k + 1), persistent: true,
    })));
    expect(rv.map(({ uuid: _u, ...v }) => v)).toEqual(expected.sort((a, b) => a.name.localeCompare(b.name)));
    expect(new Set(rv.map((v) => v.uuid)).size).toBe(N * PER_HOST);
  });

  it('per host (hostDomains, asked of that host alone) and in a sample, the two drivers agree too', async () => {
    for (const h of many!.hosts) {
      const [a, b] = await Promise.all([rpc!.hostDomains(h.name), virsh!.hostDomains(h.name)]);
      expect(a).toEqual(b);
      expect(a.map((d) => d.name)).toEqual([...h.domains].sort());
    }
    const [sa, sb] = await Promise.all([rpc!.sample(), virsh!.sample()]);
    const usageKey = (s: typeof sa): unknown => s.hosts.map((u) => [u.host, u.memTotalMiB]).sort();
    expect(sa.hosts).toHaveLength(N);
    expect(usageKey(sa)).toEqual(usageKey(sb));
    // no domain runs: no VM usage from either
    expect([sa.vms, sb.vms]).toEqual([[], []]);
  });

  it('RPC driver, once usage is polled: a controller round (inventory, then usage) is one exchange of 4 calls per host; sample() then asks nothing', async () => {
    const lv = rpc as LibvirtDriver;
    await lv.sample();
    const conns = await Promise.all(lv.backends.map((b) => (b as RpcBackend).connection()));
    const sent = (): number[] => conns.map((c) => c.rpcStats.callsSent);
    for (let round = 0; round < 2; round++) {
      const before = sent();
      const [hosts, vms] = await Promise.all([lv.listHosts(), lv.listVms()]);
      const mid = sent();
      const s = await lv.sample();
      // domain stats with the usage groups, the persistent list, node CPU and memory counters
      expect(mid.map((n, i) => n - before[i]!)).toEqual(Array(N).fill(4));
      expect(sent()).toEqual(mid);
      expect(hosts.filter((h) => h.up)).toHaveLength(N);
      expect(vms).toHaveLength(N * PER_HOST);
      expect(s.hosts.map((u) => u.host).sort()).toEqual(many!.hosts.map((h) => h.name).sort());
    }
  });

  it('teardown stops every daemon and leaves no process, namespace, mount or file behind', async () => {
    await rpc!.close();
    await virsh!.close();
    down = await ManyHosts.down(DIR, log);
    expect(down.left).toEqual({ processes: [], namespaces: [], mounts: [] });
    expect(down.namespacesDeleted).toBe(N);
    // checked independently of the report
    expect(daemonPids.filter(isLive)).toEqual([]);
    const prefix = manyNetnsPrefix(DIR);
    const netns = existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(prefix)) : [];
    expect(netns).toEqual([]);
    expect(processesMentioning(DIR)).toEqual([]);
    expect(mountsUnder(DIR)).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(DIR);
    // only the lock and the capabilities seed for the next start stay
    expect(readdirSync(DIR).filter((e) => e !== 'many.lock' && e !== 'qemucaps')).toEqual([]);
    expect(ManyHosts.open(DIR)).toBeNull();
  }, 60_000);
});
