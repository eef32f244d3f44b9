/**
 * Inventory over the per-host backends: host facts (cached for pre-flight), every host's
 * domains, and where one VM is. A host that does not answer is never taken for an empty one:
 * it is reported unreachable.
 */
import { DriverError, isDriverError } from '../errors.js';
import type { HostInfo, VmInfo } from '../hypervisor.js';
import { JOB_OPERATION, type DomainFacts, type HostBackend, type HostFacts } from './backend.js';
import type { Located } from './run.js';

export class Inventory {
  readonly byName = new Map<string, HostBackend>();
  /** Last facts each host answered with (kept when it stops answering). */
  readonly facts = new Map<string, HostFacts>();

  constructor(readonly backends: readonly HostBackend[]) {
    for (const b of backends) this.byName.set(b.config.name, b);
  }

  async hostFacts(b: HostBackend): Promise<HostFacts> {
    await b.ensure();
    const f = await b.hostFacts();
    this.facts.set(b.config.name, f);
    return f;
  }

  async listHosts(): Promise<HostInfo[]> {
    return Promise.all(this.backends.map(async (b): Promise<HostInfo> => {
      try {
        const f = await this.hostFacts(b);
        return { name: b.config.name, uuid: f.uuid, hostname: f.hostname, cpuCores: f.cpuCores, cpuMhz: f.cpuMhz, memMiB: Math.round(f.memKiB / 1024), cpuModel: f.cpuModel, up: true };
      } catch (e) {
        const f = this.facts.get(b.config.name);
        return {
          reason: (e as Error)?.message ?? String(e),
          name: b.config.name, uuid: f?.uuid ?? '', hostname: f?.hostname ?? '', cpuCores: f?.cpuCores ?? 0, cpuMhz: f?.cpuMhz ?? 0,
          memMiB: f ? Math.round(f.memKiB / 1024) : 0, cpuModel: f?.cpuModel ?? '', up: false,
        };
      }
    }));
  }

  /** Domains of every reachable host (unreachable hosts are listed separately). */
  async allDomains(): Promise<{ per: { backend: HostBackend; doms: DomainFacts[] }[]; unreachable: string[] }> {
    const unreachable: string[] = [];
    const per = (await Promise.all(this.backends.map(async (b) => {
      try {
        await b.ensure();
        return { backend: b, doms: await b.domains() };
      } catch {
        unreachable.push(b.config.name);
        return null;
      }
    }))).filter((x): x is { backend: HostBackend; doms: DomainFacts[] } => x !== null);
    return { per, unreachable };
  }

  /**
   * Picks the owner among the hosts that know a VM: the active copy, and during a migration
   * (active on both) the one whose job is not an incoming migration, running before paused; if no copy is active,
   * the first persistent definition.
   */
  async pickOwner(cands: Located[]): Promise<Located | null> {
    const active = cands.filter((c) => c.dom.active);
    if (active.length === 1) return active[0]!;
    if (active.length > 1) {
      // Left over after a failed migration (no jobs): the running copy, never a paused twin.
      const jobs = await Promise.all(active.map((c) => c.backend.jobStats(c.dom.name).catch(() => null)));
      const notIncoming = active.filter((_, i) => jobs[i]?.fields.operation !== JOB_OPERATION.MIGRATION_IN);
      const pool = notIncoming.length ? notIncoming : active;
      return pool.find((c) => c.dom.state === 'running') ?? pool[0]!;
    }
    return cands.find((c) => c.dom.persistent) ?? cands[0] ?? null;
  }

  async listVms(): Promise<VmInfo[]> {
    const { per } = await this.allDomains();
    const byVm = new Map<string, Located[]>();
    for (const { backend, doms } of per) {
      for (const dom of doms) {
        const l = byVm.get(dom.name) ?? [];
        l.push({ backend, dom });
        byVm.set(dom.name, l);
      }
    }
    const out: VmInfo[] = [];
    for (const [, cands] of byVm) {
      const owner = cands.length === 1 ? cands[0]! : await this.pickOwner(cands);
      if (!owner) continue;
      const d = owner.dom;
      out.push({ name: d.name, uuid: d.uuid, host: owner.backend.config.name, state: d.state, vcpus: d.vcpus, memMiB: Math.round(d.memKiB / 1024), persistent: d.persistent });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async hostDomains(host: string): Promise<VmInfo[]> {
    const b = this.byName.get(host);
    if (!b) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${host}'`, { host });
    let doms: DomainFacts[];
    try {
      await b.ensure();
      doms = await b.domains();
    } catch (e) {
      throw new DriverError('TIDE_HOST_UNREACHABLE', `${host} does not answer: ${(e as Error)?.message ?? String(e)}`, { host }, { cause: e });
    }
    return doms.map((d) => ({ name: d.name, uuid: d.uuid, host, state: d.state, vcpus: d.vcpus, memMiB: Math.round(d.memKiB / 1024), persistent: d.persistent }))
      .sort((a, b2) => a.name.localeCompare(b2.name));
  }

  /** Where `vm` is, and which hosts could not be asked. */
  async locate(vm: string): Promise<{ found: Located | null; unreachable: string[]; active: Located[] }> {
    const unreachable: string[] = [];
    const cands = (await Promise.all(this.backends.map(async (b) => {
      try {
        await b.ensure();
        const dom = await b.domain(vm);
        return dom ? { backend: b, dom } : null;
      } catch (e) {
        if (isDriverError(e) && e.code === 'TIDE_NO_SUCH_VM') return null;
        unreachable.push(b.config.name);
        return null;
      }
    }))).filter((x): x is Located => x !== null);
    return { found: await this.pickOwner(cands), unreachable, active: cands.filter((c) => c.dom.active) };
  }

  async owner(vm: string): Promise<Located> {
    const { found, unreachable } = await this.locate(vm);
    if (!found) {
      throw new DriverError('TIDE_NO_SUCH_VM', `no VM named '${vm}'${unreachable.length ? ` on the reachable hosts (unreachable: ${unreachable.join(', ')})` : ''}`, { vm, unreachable });
    }
    return found;
  }
}
