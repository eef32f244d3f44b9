/**
 * The one-shot cluster commands (`tide hosts`, `tide vms`, `tide evacuate --dry-run`: the
 * programmatic API in src/api/cluster.ts) read utilisation from the configured metrics source —
 * the daemon's factory, createMetricsSource — not from the hypervisor driver, when the
 * configuration says `metrics.source: prometheus`. The driver (a FakeDriver under the CLI)
 * still gives the inventory; its sample() is never called.
 *
 * 1. Prometheus not answering (a closed loopback port): usage is unknown with the source's
 *    reason, never the driver's counters.
 * 2. Real Prometheus + prometheus-node-exporter on loopback (test/helpers/prometheus.ts): the
 *    host's memory total is this machine's (node-exporter's), not the FakeDriver's 16 GiB.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeDriver } from '../../src/drivers/fake/index.js';
import { setDriverFactory } from '../../src/drivers/index.js';
import { runCli } from '../helpers/cli.js';
import { freePort, prometheusGate, startNodeExporter, startPrometheus, type ExporterHandle, type PrometheusHandle } from '../helpers/prometheus.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-cli-metrics-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** FakeDriver's host memory: far from any real machine's total, so the source is visible. */
const FAKE_MEM_MIB = 16_384 + 123;

function writeConfig(name: string, prometheus: { url: string; node: string }): string {
  const f = join(tmp, name);
  writeFileSync(f, JSON.stringify({
    hosts: [{ name: 'a', uri: 'test:///a' }, { name: 'b', uri: 'test:///b' }],
    store: { path: join(tmp, `${name}.sqlite`) },
    metrics: {
      source: 'prometheus',
      prometheus: { url: prometheus.url, timeoutSec: 2, hosts: { a: { node: prometheus.node, libvirt: '127.0.0.1:1' }, b: { node: '127.0.0.1:2', libvirt: '127.0.0.1:3' } } },
    },
  }));
  return f;
}

let fake: FakeDriver;
beforeEach(() => {
  fake = new FakeDriver({
    hosts: [{ name: 'a', memMiB: FAKE_MEM_MIB }, { name: 'b', memMiB: FAKE_MEM_MIB }],
    vms: [{ name: 'vm1', host: 'a', memMiB: 1024, cpuPct: 40 }, { name: 'vm2', host: 'b', memMiB: 2048, cpuPct: 10 }],
  });
  setDriverFactory(() => fake);
});
afterEach(() => setDriverFactory(null));

const sampled = (): number => fake.calls.filter((c) => c.method === 'sample').length;

interface HostJson { name: string; usage: { memTotalMiB: number; cpuPct: number | null } | null; usageGap?: string }
interface VmJson { name: string; usage: unknown; usageGap?: string }

describe('cluster commands with metrics.source prometheus, Prometheus down', () => {
  it('tide hosts / vms: usage unknown with the source\'s reason; the driver is never sampled', async () => {
    const port = await freePort(); // closed: nothing listens on it
    const cfg = writeConfig('down.json', { url: `http://127.0.0.1:${port}`, node: '127.0.0.1:9' });
    const h = await runCli(['--config', cfg, 'hosts', '--json', '--interval-ms', '0']);
    expect(h.code, h.err).toBe(0);
    const hosts = JSON.parse(h.out) as HostJson[];
    expect(hosts.map((x) => x.name)).toEqual(['a', 'b']);
    for (const x of hosts) {
      expect(x.usage).toBeNull();
      expect(x.usageGap).toContain(`Prometheus at http://127.0.0.1:${port}`);
    }
    const v = await runCli(['--config', cfg, 'vms', '--json', '--interval-ms', '0']);
    expect(v.code, v.err).toBe(0);
    const { vms } = JSON.parse(v.out) as { vms: VmJson[] };
    expect(vms.map((x) => [x.name, x.usage])).toEqual([['vm1', null], ['vm2', null]]);
    expect(vms.every((x) => typeof x.usageGap === 'string' && x.usageGap.length > 0)).toBe(true);
    expect(sampled()).toBe(0);
  });

  it('without the metrics section the same commands poll the driver (the default source)', async () => {
    const f = join(tmp, 'libvirt.json');
    writeFileSync(f, JSON.stringify({ hosts: [{ name: 'a', uri: 'test:///a' }, { name: 'b', uri: 'test:///b' }], store: { path: join(tmp, 'libvirt.sqlite') } }));
    const h = await runCli(['--config', f, 'hosts', '--json', '--interval-ms', '0']);
    expect(h.code, h.err).toBe(0);
    const hosts = JSON.parse(h.out) as HostJson[];
    expect(hosts[0]!.usage!.memTotalMiB).toBe(FAKE_MEM_MIB);
    expect(sampled()).toBeGreaterThanOrEqual(2);
  });
});

if (prometheusGate('cluster commands read the Prometheus metrics source')) {
  describe('cluster commands with metrics.source prometheus (real Prometheus + node-exporter on loopback)', () => {
    let node: ExporterHandle;
    let prom: PrometheusHandle;
    let cfg: string;
    beforeAll(async () => {
      node = await startNodeExporter();
      prom = await startPrometheus({ targets: { node: [node.address] } });
      // two scrapes at least: the CPU rate needs two samples in its window
      await prom.waitFor(`count_over_time(node_memory_MemTotal_bytes{instance="${node.address}"}[1m])`, (r) => Number(r[0]?.value[1] ?? 0) >= 3);
      cfg = writeConfig('prom.json', { url: prom.url, node: node.address });
    }, 90_000);
    afterAll(async () => {
      await prom?.stop();
      await node?.stop();
    }, 30_000);

    it('tide hosts: host a\'s memory and CPU come from node-exporter; b (no target) is unknown with a reason; no driver sample', async () => {
      const h = await runCli(['--config', cfg, 'hosts', '--json', '--interval-ms', '0']);
      expect(h.code, h.err).toBe(0);
      const hosts = JSON.parse(h.out) as HostJson[];
      const a = hosts.find((x) => x.name === 'a')!;
      expect(a.usage, JSON.stringify(a)).not.toBeNull();
      const realMiB = totalmem() / 2 ** 20;
      expect(a.usage!.memTotalMiB).not.toBe(FAKE_MEM_MIB);
      expect(Math.abs(a.usage!.memTotalMiB - realMiB) / realMiB).toBeLessThan(0.05);
      expect(a.usage!.cpuPct).not.toBeNull();
      const b = hosts.find((x) => x.name === 'b')!;
      expect(b.usage).toBeNull();
      expect(b.usageGap).toContain('127.0.0.1:2');
      expect(sampled()).toBe(0);
    });

    it('tide evacuate --dry-run (the controller\'s snapshot) reads the same source: no driver sample', async () => {
      const e = await runCli(['--config', cfg, 'evacuate', 'a', '--dry-run', '--json', '--interval-ms', '0']);
      expect([0, 1]).toContain(e.code);
      expect(e.out.length, e.err).toBeGreaterThan(0);
      expect(sampled()).toBe(0);
      expect(fake.calls.some((c) => c.method === 'listVms')).toBe(true);
    });
  });
}
