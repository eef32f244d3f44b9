/**
 * The metrics-source contract (src/drivers/metrics/source.ts), run against every source on real
 * parts: the libvirt polling source on a private libvirtd with a running guest
 * (metrics-libvirt.test.ts), and the Prometheus source on real Prometheus + node-exporter +
 * libvirt-exporter scraping that same kind of libvirtd (metrics-prometheus.test.ts).
 *
 * Also here: the one-host harness both use (a private libvirtd whose guest has a file-backed
 * disk, so the disk series exist) and the two sources' harness builders.
 */
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { HostInfo, VmInfo } from '../../src/drivers/hypervisor.js';
import { LibvirtDriver } from '../../src/drivers/libvirt/index.js';
import { DriverPollingSource, PrometheusSource, type MetricsInventory, type MetricsReading, type MetricsSource } from '../../src/drivers/metrics/index.js';
import { LibvirtConnection } from '../../src/libvirt/index.js';
import { startLibvirtd, tinyQemuDomainXml, type LibvirtdHandle } from '../helpers/libvirtd.js';
import { startLibvirtExporter, startNodeExporter, startPrometheus, type ExporterHandle, type PrometheusHandle } from '../helpers/prometheus.js';

export const METRICS_HOST = 'mx-a';
export const METRICS_VM = 'tide-metrics-vm';

export interface MetricsHarness {
  readonly source: MetricsSource;
  readonly host: string;
  readonly vm: string;
  /** The inventory as the controller gets it (the libvirt driver's listHosts / listVms). */
  inventory(): Promise<MetricsInventory>;
  teardown(): Promise<void>;
}

export interface OneHost {
  readonly daemon: LibvirtdHandle;
  readonly driver: LibvirtDriver;
  inventory(): Promise<MetricsInventory>;
  stop(): Promise<void>;
}

/** A private libvirtd (host METRICS_HOST) running METRICS_VM: 64 MiB, 1 vCPU, one raw 8 MiB disk, no NIC. */
export async function oneHostWithGuest(): Promise<OneHost> {
  const daemon = await startLibvirtd({ hostUuid: '7a110000-0000-4000-8000-00000000e7a1' });
  try {
    const disk = join(daemon.dir, 'mx-disk.img');
    writeFileSync(disk, Buffer.alloc(8 << 20));
    const xml = tinyQemuDomainXml(METRICS_VM, 64).replace('<memballoon',
      `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${disk}'/><target dev='vda' bus='virtio'/></disk>\n    <memballoon`);
    const c = await LibvirtConnection.open(daemon.unixUri(), { keepalive: false });
    try {
      await c.createWithFlags(await c.defineXml(xml));
    } finally {
      await c.close();
    }
  } catch (e) {
    await daemon.stop();
    throw e;
  }
  const config = parseConfig({ hosts: [{ name: METRICS_HOST, uri: daemon.unixUri() }] });
  const driver = new LibvirtDriver(config.hosts, { connectTimeoutMs: 10_000 });
  return {
    daemon,
    driver,
    inventory: async () => {
      const [hosts, vms] = await Promise.all([driver.listHosts(), driver.listVms()]);
      return { hosts, vms };
    },
    stop: async () => {
      await driver.close();
      await daemon.stop();
    },
  };
}

export async function pollingHarness(): Promise<MetricsHarness> {
  const h = await oneHostWithGuest();
  return { source: new DriverPollingSource(h.driver), host: METRICS_HOST, vm: METRICS_VM, inventory: h.inventory, teardown: h.stop };
}

export interface PrometheusParts extends OneHost {
  readonly prometheus: PrometheusHandle;
  readonly node: ExporterHandle;
  readonly libvirt: ExporterHandle;
  /** A Prometheus source over these parts (staleSec / rateWindowSec overridable). */
  source(o?: { staleSec?: number; rateWindowSec?: number; url?: string }): PrometheusSource;
}

/** oneHostWithGuest + node-exporter + libvirt-exporter (on the private daemon's socket) + Prometheus scraping both every 1 s. */
export async function prometheusParts(): Promise<PrometheusParts> {
  const h = await oneHostWithGuest();
  const started: { stop(): Promise<void> }[] = [];
  try {
    const node = await startNodeExporter();
    started.push(node);
    const libvirt = await startLibvirtExporter(h.daemon.unixUri());
    started.push(libvirt);
    const prometheus = await startPrometheus({ targets: { node: [node.address], libvirt: [libvirt.address] }, scrapeIntervalSec: 1 });
    started.push(prometheus);
    return {
      ...h, prometheus, node, libvirt,
      source: (o = {}) => new PrometheusSource({
        url: o.url ?? prometheus.url, hosts: { [METRICS_HOST]: { node: node.address, libvirt: libvirt.address } },
        staleSec: o.staleSec ?? 10, rateWindowSec: o.rateWindowSec ?? 5, timeoutSec: 5,
      }),
      stop: async () => {
        for (const s of started.reverse()) await s.stop();
        await h.stop();
      },
    };
  } catch (e) {
    for (const s of started.reverse()) await s.stop();
    await h.stop();
    throw e;
  }
}

export async function prometheusHarness(): Promise<MetricsHarness> {
  const p = await prometheusParts();
  return { source: p.source(), host: METRICS_HOST, vm: METRICS_VM, inventory: p.inventory, teardown: p.stop };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Reads until the host and the VM have every rate (two readings / two scrapes in the window), up to timeoutMs. */
export async function warmReading(h: MetricsHarness, timeoutMs = 45_000): Promise<{ inv: MetricsInventory; r: MetricsReading }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const inv = await h.inventory();
    const r = await h.source.read(inv);
    const host = r.hosts.find((u) => u.host === h.host);
    const vm = r.vms.find((u) => u.vm === h.vm);
    const ready = host?.cpuPct != null && vm?.cpuPct != null && vm.diskReadBytesPerSec != null && vm.netRxBytesPerSec != null;
    if (ready && r.gaps.length === 0) return { inv, r };
    if (Date.now() > until) throw new Error(`no warm reading within ${timeoutMs} ms: ${JSON.stringify(r)}`);
    await sleep(1000);
  }
}

const ghostVm = (host: string, name: string, state: VmInfo['state'] = 'running'): VmInfo => ({ name, uuid: '00000000-0000-4000-8000-00000000dead', host, state, vcpus: 1, memMiB: 64, persistent: true });
const ghostHost = (name: string): HostInfo => ({ name, uuid: '00000000-0000-4000-8000-00000000beef', hostname: name, cpuCores: 4, cpuMhz: 2000, memMiB: 8192, cpuModel: 'x', up: true });

export function runMetricsContract(name: string, make: () => Promise<MetricsHarness>): void {
  describe(`metrics-source contract: ${name}`, () => {
    let h: MetricsHarness;
    let warm: { inv: MetricsInventory; r: MetricsReading };

    beforeAll(async () => {
      h = await make();
      warm = await warmReading(h);
    }, 180_000);
    afterAll(async () => { await h?.teardown(); }, 60_000);

    it('accounts for every up host and every running VM exactly once: a sample or a gap', async () => {
      const inv = await h.inventory();
      const r = await h.source.read(inv);
      for (const host of inv.hosts.filter((x) => x.up)) {
        const n = r.hosts.filter((u) => u.host === host.name).length + r.gaps.filter((g) => g.kind === 'host' && g.host === host.name).length;
        expect(n, host.name).toBe(1);
      }
      const running = inv.vms.filter((v) => v.state === 'running' || v.state === 'paused');
      expect(running.map((v) => v.name)).toContain(h.vm);
      for (const v of running) {
        const n = r.vms.filter((u) => u.vm === v.name && u.host === v.host).length + r.gaps.filter((g) => g.kind === 'vm' && g.vm === v.name).length;
        expect(n, v.name).toBe(1);
      }
    });

    it('host usage: CPU 0..100 %, memory within the total libvirt reports, a recent sample time', () => {
      const u = warm.r.hosts.find((x) => x.host === h.host)!;
      const info = warm.inv.hosts.find((x) => x.name === h.host)!;
      expect(u.cpuPct).not.toBeNull();
      expect(u.cpuPct!).toBeGreaterThanOrEqual(0);
      expect(u.cpuPct!).toBeLessThanOrEqual(100);
      // node-exporter and libvirt read the same machine's memory: within 2 %
      expect(Math.abs(u.memTotalMiB - info.memMiB)).toBeLessThanOrEqual(info.memMiB * 0.02);
      expect(u.memUsedMiB).toBeGreaterThan(0);
      expect(u.memUsedMiB).toBeLessThanOrEqual(u.memTotalMiB);
      expect(Math.abs(Date.now() - u.atMs)).toBeLessThan(60_000);
    });

    it('VM usage: measured on the host the inventory lists, CPU 0..100 %, memory > 0, every rate known', () => {
      const u = warm.r.vms.find((x) => x.vm === h.vm)!;
      const v = warm.inv.vms.find((x) => x.name === h.vm)!;
      expect(u.host).toBe(v.host);
      expect(u.cpuPct!).toBeGreaterThanOrEqual(0);
      expect(u.cpuPct!).toBeLessThanOrEqual(100);
      expect(u.memUsedMiB).toBeGreaterThan(0);
      for (const x of [u.diskReadBytesPerSec, u.diskWriteBytesPerSec, u.netRxBytesPerSec, u.netTxBytesPerSec]) {
        expect(x).not.toBeNull();
        expect(x!).toBeGreaterThanOrEqual(0);
      }
      // the guest has no NIC: no traffic, known as such (0, not unknown)
      expect(u.netRxBytesPerSec).toBe(0);
      expect(Math.abs(Date.now() - u.atMs)).toBeLessThan(60_000);
    });

    it('a running VM the source cannot see is a missing gap, never a 0 % sample', async () => {
      const inv = await h.inventory();
      const ghost = ghostVm(h.host, 'tide-metrics-ghost');
      const r = await h.source.read({ hosts: inv.hosts, vms: [...inv.vms, ghost] });
      expect(r.vms.find((u) => u.vm === ghost.name)).toBeUndefined();
      const g = r.gaps.find((x) => x.kind === 'vm' && x.vm === ghost.name);
      expect(g).toMatchObject({ host: h.host, outcome: 'missing' });
      expect(g!.reason).toContain(ghost.name);
      // the real VM is still measured
      expect(r.vms.find((u) => u.vm === h.vm)).toBeDefined();
    });

    it('a VM that is not running needs no sample (no gap, no usage)', async () => {
      const inv = await h.inventory();
      const off = ghostVm(h.host, 'tide-metrics-off', 'shutoff');
      const r = await h.source.read({ hosts: inv.hosts, vms: [...inv.vms, off] });
      expect(r.vms.find((u) => u.vm === off.name)).toBeUndefined();
      expect(r.gaps.find((g) => g.vm === off.name)).toBeUndefined();
    });

    it('a host up in the inventory whose usage cannot be read is a missing gap; a host down is not asked', async () => {
      const inv = await h.inventory();
      const ghost = ghostHost('mx-ghost');
      const down: HostInfo = { ...ghostHost('mx-down'), up: false };
      const r = await h.source.read({ hosts: [...inv.hosts, ghost, down], vms: [...inv.vms, ghostVm(ghost.name, 'tide-on-ghost')] });
      expect(r.hosts.find((u) => u.host === ghost.name)).toBeUndefined();
      expect(r.gaps.filter((g) => g.host === ghost.name).map((g) => [g.kind, g.outcome]).sort()).toEqual([['host', 'missing'], ['vm', 'missing']]);
      expect(r.gaps.find((g) => g.host === down.name)).toBeUndefined();
      expect(r.hosts.find((u) => u.host === h.host)).toBeDefined();
    });
  });
}
