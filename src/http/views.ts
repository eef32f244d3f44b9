/**
 * What /hosts and /vms show "now": the daemon's last round (its ClusterSnapshot, kept by the
 * EventBus) when this process runs the daemon; otherwise the store's latest raw metrics (the
 * daemon records them each round) and the configuration. Percentages are 0..100.
 */
import type { TickResult } from '../app/controller.js';
import type { TideConfig } from '../config/schema.js';
import type { Store } from '../store/store.js';

export interface HostView {
  readonly name: string;
  /** on | off | standby | waking | unknown ('unknown' also when no round was seen yet). */
  readonly powerState: string;
  readonly maintenance: boolean;
  /** Who set maintenance and why (the store's record), null: from the configuration or off. */
  readonly maintenanceBy: string | null;
  readonly maintenanceReason: string | null;
  readonly excluded: boolean;
  readonly tags: readonly string[];
  readonly cpuCores: number | null;
  readonly memMiB: number | null;
  readonly cpuPct: number | null;
  readonly memUsedMiB: number | null;
  readonly memPct: number | null;
  readonly vms: number | null;
  /** 'round' (the last round in this process), 'store' (stored metrics), 'none'. */
  readonly source: 'round' | 'store' | 'none';
  /** When the figures were measured, ms (null: none). */
  readonly sampledMs: number | null;
}

const pct = (x: number): number => Math.round(x * 10) / 10;

export function hostsNow(store: Store, config: TideConfig, tick: TickResult | null, nowMs: number): HostView[] {
  const states = new Map(store.hostStates().map((s) => [s.host, s]));
  // Latest raw sample per host within the last hour (the store fallback).
  const latest = new Map<string, { atMs: number; cpuPct: number | null; memMiB: number | null }>();
  if (!tick) {
    for (const p of store.metricsHistory({ kind: 'host', sinceMs: nowMs - 3_600_000, res: 'raw' })) latest.set(p.name, p);
  }
  return config.hosts.map((hc): HostView => {
    const st = states.get(hc.name);
    const maintenance = st ? st.maintenance : hc.maintenance;
    const base = {
      name: hc.name, maintenance, maintenanceBy: st?.maintenance ? st.by : null, maintenanceReason: st?.maintenance ? st.reason : null,
      excluded: hc.excluded, tags: hc.tags,
    };
    const h = tick?.snapshot.hosts.find((x) => x.id === hc.name);
    if (tick && h) {
      const vms = tick.snapshot.vms.filter((v) => v.host === h.id);
      const capMips = h.cpuCores * h.mipsPerCore;
      const usedMips = h.cpuUsedMips ?? vms.reduce((s, v) => s + v.demand.cpuMips, 0);
      const memUsed = vms.reduce((s, v) => s + v.memMiB, 0);
      return {
        ...base, powerState: h.powerState, cpuCores: h.cpuCores, memMiB: h.memMiB,
        cpuPct: capMips > 0 ? pct(Math.min(100, (100 * usedMips) / capMips)) : null, memUsedMiB: memUsed,
        memPct: h.memMiB > 0 ? pct((100 * memUsed) / h.memMiB) : null, vms: vms.length, source: 'round', sampledMs: tick.at,
      };
    }
    const m = latest.get(hc.name);
    return {
      ...base, powerState: 'unknown', cpuCores: null, memMiB: null, cpuPct: m?.cpuPct ?? null, memUsedMiB: m?.memMiB ?? null, memPct: null, vms: null,
      source: m ? 'store' : 'none', sampledMs: m?.atMs ?? null,
    };
  });
}

export interface VmView {
  readonly name: string;
  readonly host: string | null;
  readonly vcpus: number;
  readonly memMiB: number;
  /** Share of its vCPUs busy now. */
  readonly cpuPct: number;
  readonly pinned: boolean;
  readonly tags: readonly string[];
}

export function vmsNow(config: TideConfig, tick: TickResult | null): VmView[] {
  if (!tick) return [];
  return tick.snapshot.vms.map((v) => {
    const cap = v.vcpus * v.mipsPerVcpu;
    return {
      name: v.id, host: v.host, vcpus: v.vcpus, memMiB: v.memMiB, cpuPct: cap > 0 ? pct(Math.min(100, (100 * v.demand.cpuMips) / cap)) : 0,
      pinned: config.vms[v.id]?.pinned ?? false, tags: v.tags,
    };
  });
}
