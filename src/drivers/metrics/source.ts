/**
 * The metrics source: where the controller reads host and VM utilisation (CPU, memory, disk,
 * network). Inventory (which hosts answer, which VMs run where) and every action still go
 * through the HypervisorDriver; a metrics source only says how busy they are.
 *
 * Implementations (one contract suite for both: test/drivers/metrics-contract.ts):
 * - DriverPollingSource (this file): polls the hypervisor driver's counters (libvirt's bulk
 *   domain stats and node stats, src/drivers/common/usage.ts) — the default, `metrics.source:
 *   libvirt`.
 * - PrometheusSource (prometheus.ts): queries a Prometheus server fed by node-exporter (hosts)
 *   and libvirt-exporter (VMs).
 *
 * Contract of read(inventory): every host the inventory lists as up, and every running or
 * paused VM listed on such a host, is accounted for exactly once — as a usage sample (whose
 * rates may still be null: "not known yet", e.g. a counter seen only once) or as a gap with a
 * typed outcome ('missing': no sample at all; 'stale': the newest sample is older than the
 * source's threshold) and a reason. A gap is never reported as 0 % usage. read() rejects only
 * on a bug; an unreachable metrics backend is a gap for every series.
 */
import type { HostInfo, HostUsage, HypervisorDriver, VmInfo, VmUsage } from '../hypervisor.js';

/** What the controller already knows when it asks for usage (from the hypervisor driver). */
export interface MetricsInventory {
  readonly hosts: readonly HostInfo[];
  readonly vms: readonly VmInfo[];
}

/** A series the source could not provide (per host, or per VM on a host). */
export interface SeriesGap {
  readonly kind: 'host' | 'vm';
  /** The Tide host the series belongs to (for a VM: the host the inventory lists it on). */
  readonly host: string;
  /** The VM (kind 'vm' only). */
  readonly vm?: string;
  /** missing: no sample at all; stale: the newest sample is older than the threshold. */
  readonly outcome: 'missing' | 'stale';
  /** Age of the newest sample, s (stale only). */
  readonly ageSec?: number;
  /** One sentence: which series, where it was looked for, why it is absent. */
  readonly reason: string;
}

export interface MetricsReading {
  readonly hosts: HostUsage[];
  readonly vms: VmUsage[];
  readonly gaps: SeriesGap[];
}

export interface MetricsSource {
  /** 'libvirt' (polling the hypervisor driver) | 'prometheus'. */
  readonly kind: 'libvirt' | 'prometheus';
  /**
   * Whether a gap freezes moves (src/core/freeze.ts, codes metrics-missing / metrics-stale).
   * The polling source reads the same daemons as the inventory: a gap there is a hypervisor
   * fault the inventory and the host-silent rule already see, so its gaps only make usage
   * unknown (the behaviour before metrics sources existed). A separate metrics pipeline can
   * fail on its own while libvirt answers: its gaps freeze.
   */
  readonly freezeOnGaps: boolean;
  read(inventory: MetricsInventory): Promise<MetricsReading>;
  close(): Promise<void>;
}

/** Is this VM expected to have usage series (it has a QEMU process)? */
export function expectsUsage(v: VmInfo): boolean {
  return v.state === 'running' || v.state === 'paused';
}

/**
 * The gaps implied by a reading: hosts up in the inventory without a host sample, and VMs
 * expected to have usage (on such hosts) without a VM sample from the host they are listed on.
 * `why(kind, host, vm)` gives the reason for each.
 */
export function missingAgainst(
  inv: MetricsInventory, hosts: readonly HostUsage[], vms: readonly VmUsage[],
  why: (kind: 'host' | 'vm', host: string, vm?: string) => string,
): SeriesGap[] {
  const gaps: SeriesGap[] = [];
  const hostSeen = new Set(hosts.map((h) => h.host));
  // host → VM names sampled there (no per-VM key strings: 200 000 VMs a round)
  const vmSeen = new Map<string, Set<string>>();
  for (const v of vms) {
    const on = vmSeen.get(v.host);
    if (on) on.add(v.vm);
    else vmSeen.set(v.host, new Set([v.vm]));
  }
  const up = new Set(inv.hosts.filter((h) => h.up).map((h) => h.name));
  for (const h of up) if (!hostSeen.has(h)) gaps.push({ kind: 'host', host: h, outcome: 'missing', reason: why('host', h) });
  for (const v of inv.vms) {
    if (!up.has(v.host) || !expectsUsage(v) || vmSeen.get(v.host)?.has(v.name)) continue;
    gaps.push({ kind: 'vm', host: v.host, vm: v.name, outcome: 'missing', reason: why('vm', v.host, v.name) });
  }
  return gaps;
}

/**
 * The polling source: HypervisorDriver.sample() (libvirt/virsh counters through the UsageTracker,
 * or the fake and simulated drivers' own), unchanged. Does not own the driver (close() is a no-op).
 */
export class DriverPollingSource implements MetricsSource {
  readonly kind = 'libvirt' as const;
  readonly freezeOnGaps = false;

  constructor(private readonly driver: Pick<HypervisorDriver, 'sample' | 'kind'>) {}

  async read(inv: MetricsInventory): Promise<MetricsReading> {
    const s = await this.driver.sample();
    const gaps = missingAgainst(inv, s.hosts, s.vms, (kind, host, vm) => (kind === 'host'
      ? `the ${this.driver.kind} driver read no counters from ${host}`
      : `the ${this.driver.kind} driver read no counters of ${vm} on ${host}`));
    return { hosts: s.hosts, vms: s.vms, gaps };
  }

  async close(): Promise<void> { /* the driver belongs to the caller */ }
}

/**
 * The gaps as freeze causes, one per host and outcome (a Prometheus outage must not become
 * 200 000 reasons): "metrics of lab-a stale: host series (age 12 s > 5 s); 3 VMs (vm1, vm2, vm3)".
 */
export function gapFreezeReasons(gaps: readonly SeriesGap[]): { code: 'metrics-missing' | 'metrics-stale'; host: string; reason: string }[] {
  const by = new Map<string, SeriesGap[]>();
  for (const g of gaps) {
    const k = `${g.outcome}\0${g.host}`;
    const l = by.get(k) ?? [];
    l.push(g);
    by.set(k, l);
  }
  const out: { code: 'metrics-missing' | 'metrics-stale'; host: string; reason: string }[] = [];
  for (const l of by.values()) {
    const { host, outcome } = l[0]!;
    const hostGap = l.find((g) => g.kind === 'host');
    const vmGaps = l.filter((g) => g.kind === 'vm');
    const parts: string[] = [];
    if (hostGap) parts.push(`host series: ${hostGap.reason}`);
    if (vmGaps.length > 0) {
      const names = vmGaps.slice(0, 5).map((g) => g.vm).join(', ');
      parts.push(`${vmGaps.length} VM series (${names}${vmGaps.length > 5 ? ', …' : ''}): ${vmGaps[0]!.reason}`);
    }
    out.push({ code: outcome === 'stale' ? 'metrics-stale' : 'metrics-missing', host, reason: `metrics of ${host} ${outcome}: ${parts.join('; ')}` });
  }
  return out;
}
