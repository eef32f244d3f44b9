/**
 * Metrics sources without real parts (the real-parts contract is in metrics-libvirt.test.ts and
 * metrics-prometheus.test.ts): the `metrics` configuration section and createMetricsSource, the
 * PromQL the Prometheus source sends (instance values escaped, the rate window), the polling
 * source's gaps, and how gaps become freeze causes.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { freezeCauses } from '../../src/core/freeze.js';
import { FakeDriver } from '../../src/drivers/fake/index.js';
import { createMetricsSource, defaultMapping, DriverPollingSource, gapFreezeReasons, PrometheusSource, type SeriesGap } from '../../src/drivers/metrics/index.js';
import { cluster, host } from '../helpers/cluster.js';

const hosts = [{ name: 'hv1', uri: 'qemu+ssh://root@hv1.example.net/system' }, { name: 'hv2', uri: 'qemu:///system' }];

describe('metrics configuration', () => {
  it('absent or source libvirt: the polling source, whose gaps do not freeze', () => {
    const d = new FakeDriver({ hosts: [{ name: 'hv1' }] });
    for (const metrics of [undefined, { source: 'libvirt' }]) {
      const s = createMetricsSource(parseConfig({ hosts, ...(metrics ? { metrics } : {}) }), d);
      expect(s).toBeInstanceOf(DriverPollingSource);
      expect(s.freezeOnGaps).toBe(false);
    }
  });

  it('source prometheus needs its section; defaults for the rest', () => {
    expect(() => parseConfig({ hosts, metrics: { source: 'prometheus' } })).toThrow(/metrics\.prometheus.*prometheus section/s);
    expect(() => parseConfig({ hosts, metrics: { source: 'prometheus', prometheus: { url: 'ftp://x' } } })).toThrow(/metrics\.prometheus\.url/);
    const c = parseConfig({ hosts, metrics: { source: 'prometheus', prometheus: { url: 'http://127.0.0.1:9090' } } });
    expect(c.metrics?.prometheus).toMatchObject({ staleSec: 120, rateWindowSec: 120, timeoutSec: 10, instanceLabel: 'instance', domainLabel: 'domain', hosts: {} });
    expect(createMetricsSource(c, new FakeDriver({ hosts: [{ name: 'hv1' }] })).freezeOnGaps).toBe(true);
  });

  it('default instance labels come from the libvirt URI host (Debian ports); a socket URI has none', () => {
    expect(defaultMapping('qemu+ssh://root@hv1.example.net/system')).toEqual({ node: 'hv1.example.net:9100', libvirt: 'hv1.example.net:9177' });
    expect(defaultMapping('qemu+tcp://10.0.0.2/system')).toEqual({ node: '10.0.0.2:9100', libvirt: '10.0.0.2:9177' });
    expect(defaultMapping('qemu:///system')).toBeNull();
  });
});

describe('PrometheusSource queries (recorded, answered with empty vectors)', () => {
  it('selects the configured instances (regex-escaped), rates over the window; no series: every expected series is a missing gap', async () => {
    const seen: string[] = [];
    const fakeFetch = (async (u: URL | string, init?: RequestInit) => {
      expect(String(u)).toBe('http://127.0.0.1:9090/api/v1/query');
      seen.push(new URLSearchParams(String(init?.body)).get('query')!);
      return new Response(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }), { status: 200 });
    }) as typeof fetch;
    const c = parseConfig({ hosts, metrics: { source: 'prometheus', prometheus: { url: 'http://127.0.0.1:9090', rateWindowSec: 30, hosts: { hv1: { node: 'a.b:9100', libvirt: 'a.b:9177' } } } } });
    const src = new PrometheusSource({ ...c.metrics!.prometheus!, hosts: { hv1: c.metrics!.prometheus!.hosts.hv1! }, fetch: fakeFetch });
    const info = { uuid: 'u', hostname: 'h', cpuCores: 2, cpuMhz: 2000, memMiB: 4096, cpuModel: 'm', up: true };
    const r = await src.read({
      hosts: [{ name: 'hv1', ...info }, { name: 'hv2', ...info }],
      vms: [{ name: 'vm1', uuid: 'v', host: 'hv1', state: 'running', vcpus: 1, memMiB: 512, persistent: true }],
    });
    expect(seen.some((q) => q.includes('node_cpu_seconds_total{instance=~"a\\\\.b:9100",mode!~"idle|iowait"}[30s]'))).toBe(true);
    expect(seen.some((q) => q.startsWith('rate(libvirt_domain_info_cpu_time_seconds_total{instance=~"a\\\\.b:9177"}[30s])'))).toBe(true);
    expect(r.hosts).toEqual([]);
    expect(r.vms).toEqual([]);
    const byKey = Object.fromEntries(r.gaps.map((g) => [`${g.kind}:${g.host}:${g.vm ?? ''}`, g]));
    expect(byKey['host:hv1:']!.reason).toContain('no node-exporter target with instance="a.b:9100"');
    expect(byKey['host:hv2:']!.reason).toContain('no Prometheus instance labels configured for hv2');
    expect(byKey['vm:hv1:vm1']!.outcome).toBe('missing');
  });

  it('an API error is a missing gap for everything, with the server\'s message', async () => {
    const fakeFetch = (async () => new Response(JSON.stringify({ status: 'error', error: 'parse error' }), { status: 400 })) as typeof fetch;
    const src = new PrometheusSource({ url: 'http://127.0.0.1:1', hosts: { hv1: { node: 'n', libvirt: 'l' } }, staleSec: 10, rateWindowSec: 10, timeoutSec: 1, fetch: fakeFetch });
    const r = await src.read({ hosts: [{ name: 'hv1', uuid: 'u', hostname: 'h', cpuCores: 1, cpuMhz: 1, memMiB: 1, cpuModel: 'm', up: true }], vms: [] });
    expect(r.gaps).toEqual([{ kind: 'host', host: 'hv1', outcome: 'missing', reason: 'Prometheus at http://127.0.0.1:1 did not answer a query (HTTP 400: parse error)' }]);
  });
});

describe('gaps', () => {
  it('the polling source reports hosts and running VMs the driver did not sample', async () => {
    const d = new FakeDriver({ hosts: [{ name: 'h1' }], vms: [{ name: 'v1', host: 'h1' }] });
    const src = new DriverPollingSource(d);
    const inv = { hosts: await d.listHosts(), vms: await d.listVms() };
    const ghost = { ...inv.hosts[0]!, name: 'h2' };
    const r = await src.read({ hosts: [...inv.hosts, ghost], vms: [...inv.vms, { ...inv.vms[0]!, name: 'v2', host: 'h2' }] });
    expect(r.hosts.map((h) => h.host)).toEqual(['h1']);
    expect(r.vms.map((v) => v.vm)).toEqual(['v1']);
    expect(r.gaps.map((g) => `${g.kind}:${g.host}:${g.vm ?? ''}:${g.outcome}`).sort()).toEqual(['host:h2::missing', 'vm:h2:v2:missing']);
  });

  it('become one freeze cause per host and outcome, naming at most five VMs', () => {
    const gaps: SeriesGap[] = [
      { kind: 'host', host: 'a', outcome: 'stale', ageSec: 12, reason: 'node sample 12.0 s old' },
      ...Array.from({ length: 7 }, (_, i): SeriesGap => ({ kind: 'vm', host: 'a', vm: `vm${i}`, outcome: 'missing', reason: 'target down' })),
    ];
    const causes = gapFreezeReasons(gaps);
    expect(causes.map((c) => [c.code, c.host])).toEqual([['metrics-stale', 'a'], ['metrics-missing', 'a']]);
    expect(causes[0]!.reason).toBe('metrics of a stale: host series: node sample 12.0 s old');
    expect(causes[1]!.reason).toBe('metrics of a missing: 7 VM series (vm0, vm1, vm2, vm3, vm4, …): target down');
    const snap = cluster([host('a')], []);
    const reasons = freezeCauses(snap, { silentRounds: {}, sinceLastRoundSec: null, monotonicSinceLastRoundSec: null, metricsGaps: causes });
    expect(reasons.map((x) => x.code)).toEqual(['metrics-stale', 'metrics-missing']);
    expect(freezeCauses(snap, { silentRounds: {}, sinceLastRoundSec: null, monotonicSinceLastRoundSec: null })).toEqual([]);
  });
});
