/**
 * PrometheusSource: host and VM utilisation from a Prometheus server (HTTP API
 * /api/v1/query, POSTed with Node's fetch) fed by prometheus-node-exporter on each host and
 * prometheus-libvirt-exporter (Debian 12: 0.2.0) next to each libvirtd.
 *
 * Series used (names checked against the Debian packages' exporters, see docs/drivers.md):
 *   host CPU %   100 × Σ rate(node_cpu_seconds_total{mode!~"idle|iowait"}) / Σ rate(node_cpu_seconds_total)
 *   host memory  node_memory_MemTotal_bytes, node_memory_MemAvailable_bytes
 *   VM CPU %     100 × rate(libvirt_domain_info_cpu_time_seconds_total) / libvirt_domain_info_virtual_cpus
 *   VM memory    libvirt_domain_info_memory_usage_bytes (the domain's current memory: the exporter
 *                reports no guest-side balloon figures)
 *   VM disk      Σ over devices rate(libvirt_domain_block_stats_{read,write}_bytes_total)
 *   VM network   Σ over devices rate(libvirt_domain_interface_stats_{receive,transmit}_bytes_total)
 * Rates are over `rateWindowSec`; a rate needs two samples in the window, so a series seen once
 * gives null ("not known yet"), never 0. A VM without any block (interface) series while its
 * CPU series is fresh has no disk (NIC): its disk (network) rate is 0 — the exporter reports
 * every device in the same scrape as the domain.
 *
 * Mapping: each Tide host names its node-exporter's and its libvirt-exporter's `instance` label
 * values (metrics.prometheus.hosts; default HOSTNAME:9100 / HOSTNAME:9177 from the host's
 * libvirt URI). A VM's series are read from the libvirt-exporter of the host the inventory lists
 * it on, by its `domain` label (= the libvirt domain name = the Tide VM name), so a VM caught
 * mid-migration is never measured on the wrong host.
 *
 * Freshness: a series whose newest sample (timestamp(), Prometheus's clock) is older than
 * `staleSec` at the query's evaluation time (also Prometheus's clock: no skew with Tide's) is
 * a 'stale' gap; an absent one is 'missing' (a failed scrape ends a series at once through
 * Prometheus's staleness markers), with `up` of the target in the reason. A query that fails
 * (server down, timeout, error) makes every series a 'missing' gap: fail closed.
 */
import type { HostUsage, VmUsage } from '../hypervisor.js';
import { expectsUsage, type MetricsInventory, type MetricsReading, type MetricsSource, type SeriesGap } from './source.js';

export interface PrometheusHostMapping {
  /** Value of the instance label of this host's node-exporter target (e.g. "hv1.example:9100"). */
  readonly node: string;
  /** Value of the instance label of this host's libvirt-exporter target (e.g. "hv1.example:9177"). */
  readonly libvirt: string;
}

export interface PrometheusSourceOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:9090 (the path /api/v1/query is appended). */
  readonly url: string;
  /** Tide host name → its exporters' instance label values. Hosts without an entry have no series (gaps). */
  readonly hosts: Readonly<Record<string, PrometheusHostMapping>>;
  /** A sample older than this, s, is stale. */
  readonly staleSec: number;
  /** Window of rate(), s: at least two scrape intervals. */
  readonly rateWindowSec: number;
  /** Bound on each HTTP query, s. */
  readonly timeoutSec: number;
  /** Label naming the scrape target (default 'instance'). */
  readonly instanceLabel?: string;
  /** Label of libvirt-exporter naming the domain (default 'domain'). */
  readonly domainLabel?: string;
  /** Replaces global fetch (tests). */
  readonly fetch?: typeof fetch;
}

interface PromSample { metric: Record<string, string>; value: [number, string] }
type Vector = PromSample[];

const MiB = 1024 * 1024;
const clampPct = (x: number): number => Math.min(100, Math.max(0, x));
const round1 = (x: number): number => Math.round(x * 10) / 10;

/** A PromQL string literal holding an RE2 pattern that matches exactly one of `values`. */
function anyOf(values: readonly string[]): string {
  const re = values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  return JSON.stringify(re.length > 0 ? re : '$^');
}

/** Default instance labels from a libvirt URI's host name (Debian ports 9100 and 9177); null for a local socket URI. */
export function defaultMapping(uri: string): PrometheusHostMapping | null {
  try {
    const h = new URL(uri).hostname;
    if (!h) return null;
    return { node: `${h}:9100`, libvirt: `${h}:9177` };
  } catch {
    return null;
  }
}

export class PrometheusSource implements MetricsSource {
  readonly kind = 'prometheus' as const;
  readonly freezeOnGaps = true;
  private readonly il: string;
  private readonly dl: string;

  constructor(private readonly o: PrometheusSourceOptions) {
    this.il = o.instanceLabel ?? 'instance';
    this.dl = o.domainLabel ?? 'domain';
  }

  /** One instant query; rejects with the reason on any failure. Returns the vector and the evaluation time, s. */
  private async query(q: string): Promise<Vector> {
    const u = new URL('api/v1/query', this.o.url.endsWith('/') ? this.o.url : `${this.o.url}/`);
    const f = this.o.fetch ?? fetch;
    // POST (form-encoded, as the API allows): a selector naming thousands of instances does not fit a URL
    const res = await f(u, {
      method: 'POST', body: new URLSearchParams({ query: q }), signal: AbortSignal.timeout(this.o.timeoutSec * 1000),
      headers: { accept: 'application/json' },
    });
    const body = await res.json().catch(() => null) as { status?: string; error?: string; data?: { resultType?: string; result?: unknown } } | null;
    if (!res.ok || body?.status !== 'success') throw new Error(`HTTP ${res.status}${body?.error ? `: ${body.error}` : ''}`);
    if (body.data?.resultType !== 'vector' || !Array.isArray(body.data.result)) throw new Error(`expected a vector, got ${body.data?.resultType ?? 'nothing'}`);
    return body.data.result as Vector;
  }

  async read(inv: MetricsInventory): Promise<MetricsReading> {
    const up = inv.hosts.filter((h) => h.up);
    const mapped = up.filter((h) => this.o.hosts[h.name] !== undefined);
    const nodeOf = new Map<string, string>(); // node instance → host
    const libvirtOf = new Map<string, string>(); // libvirt instance → host
    for (const h of mapped) {
      nodeOf.set(this.o.hosts[h.name]!.node, h.name);
      libvirtOf.set(this.o.hosts[h.name]!.libvirt, h.name);
    }
    const il = this.il;
    const dl = this.dl;
    const N = `${il}=~${anyOf([...nodeOf.keys()])}`;
    const L = `${il}=~${anyOf([...libvirtOf.keys()])}`;
    const W = `[${Math.max(1, Math.round(this.o.rateWindowSec))}s]`;
    const sumVm = (m: string): string => `sum by (${il}, ${dl}) (rate(${m}{${L}}${W}))`;
    const countVm = (m: string): string => `count by (${il}, ${dl}) (${m}{${L}})`;
    const queries = {
      hostCpu: `sum by (${il}) (rate(node_cpu_seconds_total{${N},mode!~"idle|iowait"}${W})) / sum by (${il}) (rate(node_cpu_seconds_total{${N}}${W}))`,
      memTotal: `node_memory_MemTotal_bytes{${N}}`,
      memAvail: `node_memory_MemAvailable_bytes{${N}}`,
      hostTs: `timestamp(node_memory_MemTotal_bytes{${N}})`,
      up: `up{${il}=~${anyOf([...nodeOf.keys(), ...libvirtOf.keys()])}}`,
      vmCpu: `rate(libvirt_domain_info_cpu_time_seconds_total{${L}}${W})`,
      vmTs: `timestamp(libvirt_domain_info_cpu_time_seconds_total{${L}})`,
      vcpus: `libvirt_domain_info_virtual_cpus{${L}}`,
      vmMem: `libvirt_domain_info_memory_usage_bytes{${L}}`,
      rd: sumVm('libvirt_domain_block_stats_read_bytes_total'),
      wr: sumVm('libvirt_domain_block_stats_write_bytes_total'),
      rx: sumVm('libvirt_domain_interface_stats_receive_bytes_total'),
      tx: sumVm('libvirt_domain_interface_stats_transmit_bytes_total'),
      disks: countVm('libvirt_domain_block_stats_read_bytes_total'),
      nics: countVm('libvirt_domain_interface_stats_receive_bytes_total'),
    } as const;
    type Key = keyof typeof queries;
    let r: Record<Key, Vector>;
    try {
      const entries = await Promise.all((Object.keys(queries) as Key[]).map(async (k) => [k, await this.query(queries[k])] as const));
      r = Object.fromEntries(entries) as Record<Key, Vector>;
    } catch (e) {
      const why = `Prometheus at ${this.o.url} did not answer a query (${(e as Error).message})`;
      return { hosts: [], vms: [], gaps: this.everything(inv, why) };
    }
    const byHost = (v: Vector, of: Map<string, string>): Map<string, PromSample> => {
      const m = new Map<string, PromSample>();
      for (const s of v) {
        const h = of.get(s.metric[il] ?? '');
        if (h !== undefined) m.set(h, s);
      }
      return m;
    };
    const byVm = (v: Vector): Map<string, PromSample> => {
      const m = new Map<string, PromSample>();
      for (const s of v) {
        const h = libvirtOf.get(s.metric[il] ?? '');
        const d = s.metric[dl];
        if (h !== undefined && d !== undefined) m.set(`${h}\0${d}`, s);
      }
      return m;
    };
    const num = (s: PromSample | undefined): number | null => {
      if (!s) return null;
      const x = Number(s.value[1]);
      return Number.isFinite(x) ? x : null;
    };
    const upOf = new Map(r.up.map((s) => [s.metric[il] ?? '', num(s)]));
    const target = (inst: string, what: string): string => {
      const u = upOf.get(inst);
      return u === undefined ? `no ${what} target with ${il}="${inst}" in Prometheus`
        : u === 0 ? `the ${what} target ${il}="${inst}" is down (up = 0: the last scrape failed)`
          : `the ${what} target ${il}="${inst}" is up but has no such series`;
    };

    const hosts: HostUsage[] = [];
    const vms: VmUsage[] = [];
    const gaps: SeriesGap[] = [];
    const hostCpu = byHost(r.hostCpu, nodeOf);
    const memTotal = byHost(r.memTotal, nodeOf);
    const memAvail = byHost(r.memAvail, nodeOf);
    const hostTs = byHost(r.hostTs, nodeOf);
    for (const h of up) {
      const m = this.o.hosts[h.name];
      if (!m) {
        gaps.push({ kind: 'host', host: h.name, outcome: 'missing', reason: `no Prometheus instance labels configured for ${h.name} (metrics.prometheus.hosts)` });
        continue;
      }
      const ts = hostTs.get(h.name);
      const total = num(memTotal.get(h.name));
      const avail = num(memAvail.get(h.name));
      if (!ts || total === null || avail === null) {
        gaps.push({ kind: 'host', host: h.name, outcome: 'missing', reason: `node_memory_MemTotal_bytes/MemAvailable_bytes of ${il}="${m.node}" absent: ${target(m.node, 'node-exporter')}` });
        continue;
      }
      const sampleSec = num(ts)!;
      const ageSec = ts.value[0] - sampleSec;
      if (ageSec > this.o.staleSec) {
        gaps.push({ kind: 'host', host: h.name, outcome: 'stale', ageSec, reason: `newest node-exporter sample of ${il}="${m.node}" is ${ageSec.toFixed(1)} s old (> ${this.o.staleSec} s)` });
        continue;
      }
      const cpu = num(hostCpu.get(h.name));
      hosts.push({
        host: h.name, atMs: Math.round(sampleSec * 1000),
        cpuPct: cpu === null ? null : round1(clampPct(cpu * 100)),
        memUsedMiB: Math.round((total - Math.min(total, avail)) / MiB),
        memTotalMiB: Math.round(total / MiB),
      });
    }

    const vmCpu = byVm(r.vmCpu);
    const vmTs = byVm(r.vmTs);
    const vcpus = byVm(r.vcpus);
    const vmMem = byVm(r.vmMem);
    const [rd, wr, rx, tx, disks, nics] = [byVm(r.rd), byVm(r.wr), byVm(r.rx), byVm(r.tx), byVm(r.disks), byVm(r.nics)] as const;
    const upNames = new Set(up.map((h) => h.name));
    for (const v of inv.vms) {
      if (!upNames.has(v.host) || !expectsUsage(v)) continue;
      const m = this.o.hosts[v.host];
      if (!m) {
        gaps.push({ kind: 'vm', host: v.host, vm: v.name, outcome: 'missing', reason: `no Prometheus instance labels configured for ${v.host} (metrics.prometheus.hosts)` });
        continue;
      }
      const k = `${v.host}\0${v.name}`;
      const ts = vmTs.get(k);
      if (!ts) {
        gaps.push({ kind: 'vm', host: v.host, vm: v.name, outcome: 'missing', reason: `libvirt_domain_info_cpu_time_seconds_total{${dl}="${v.name}"} of ${il}="${m.libvirt}" absent: ${target(m.libvirt, 'libvirt-exporter')}` });
        continue;
      }
      const sampleSec = num(ts)!;
      const ageSec = ts.value[0] - sampleSec;
      if (ageSec > this.o.staleSec) {
        gaps.push({ kind: 'vm', host: v.host, vm: v.name, outcome: 'stale', ageSec, reason: `newest libvirt-exporter sample of ${v.name} at ${il}="${m.libvirt}" is ${ageSec.toFixed(1)} s old (> ${this.o.staleSec} s)` });
        continue;
      }
      const cpuS = num(vmCpu.get(k));
      const n = num(vcpus.get(k)) ?? v.vcpus;
      const mem = num(vmMem.get(k));
      /** A rate; 0 when the VM has no such device at all, null when it has one but no rate yet. */
      const io = (rate: Map<string, PromSample>, count: Map<string, PromSample>): number | null => {
        const x = num(rate.get(k));
        if (x !== null) return Math.round(Math.max(0, x));
        return count.has(k) ? null : 0;
      };
      vms.push({
        vm: v.name, host: v.host, atMs: Math.round(sampleSec * 1000),
        cpuPct: cpuS === null || !(n > 0) ? null : round1(clampPct((cpuS / n) * 100)),
        memUsedMiB: mem === null ? v.memMiB : Math.round(mem / MiB),
        diskReadBytesPerSec: io(rd, disks), diskWriteBytesPerSec: io(wr, disks),
        netRxBytesPerSec: io(rx, nics), netTxBytesPerSec: io(tx, nics),
      });
    }
    return { hosts, vms, gaps };
  }

  /** Every expected series as a 'missing' gap with one reason (the server did not answer). */
  private everything(inv: MetricsInventory, reason: string): SeriesGap[] {
    const up = new Set(inv.hosts.filter((h) => h.up).map((h) => h.name));
    return [
      ...[...up].map((host): SeriesGap => ({ kind: 'host', host, outcome: 'missing', reason })),
      ...inv.vms.filter((v) => up.has(v.host) && expectsUsage(v)).map((v): SeriesGap => ({ kind: 'vm', host: v.host, vm: v.name, outcome: 'missing', reason })),
    ];
  }

  async close(): Promise<void> { /* fetch keeps no state to release */ }
}
