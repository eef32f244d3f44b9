/**
 * Pre-flight gathering: the facts about the VM, its source and the target that
 * evaluatePreflight (preflight.ts) judges. Changes nothing.
 */
import type { MigrateOptions, PreflightCheck } from '../hypervisor.js';
import type { HostBackend } from './backend.js';
import type { Inventory } from './inventory.js';
import { evaluatePreflight, type PreflightFacts } from './preflight.js';
import type { Located } from './run.js';
import { gatherStorage } from './storage.js';
import { localDisks, parseDomainXml, type DomainXmlFacts } from './xml.js';

export interface Gathered {
  checks: PreflightCheck[];
  src: Located | null;
  dst: HostBackend | null;
  xml: DomainXmlFacts | null;
}

export async function gather(inv: Inventory, vm: string, to: string, opts: MigrateOptions): Promise<Gathered> {
  const dstBackend = inv.byName.get(to) ?? null;
  const [{ found, unreachable }, target] = await Promise.all([
    inv.locate(vm),
    (async (): Promise<PreflightFacts['target']> => {
      if (!dstBackend) return null;
      try {
        const [f, mem, doms] = await Promise.all([inv.hostFacts(dstBackend), dstBackend.memory(), dstBackend.domains()]);
        return {
          reachable: true,
          uuid: f.uuid,
          memTotalKiB: mem.totalKiB,
          memAvailableKiB: mem.availableKiB,
          committedKiB: doms.filter((d) => d.active && d.name !== vm).reduce((s, d) => s + d.memKiB, 0),
          domains: doms.map((d) => ({ name: d.name, uuid: d.uuid, active: d.active })),
        };
      } catch (e) {
        return { reachable: false, reason: (e as Error).message, uuid: null, memTotalKiB: 0, memAvailableKiB: 0, committedKiB: 0, domains: [] };
      }
    })(),
  ]);
  let xml: DomainXmlFacts | null = null;
  let jobActive = false;
  let cpu: PreflightFacts['cpu'] = null;
  let srcUuid: string | null = null;
  let storage: PreflightFacts['storage'] = null;
  if (found) {
    const b = found.backend;
    const [x, job, f] = await Promise.all([
      b.domainXml(vm).then(parseDomainXml).catch(() => null),
      found.dom.active ? b.jobStats(vm).catch(() => null) : Promise.resolve(null),
      inv.hostFacts(b).catch(() => null),
    ]);
    xml = x;
    jobActive = job !== null && (job.type === 1 || job.type === 2);
    srcUuid = f?.uuid ?? null;
    if (xml && dstBackend && target?.reachable && to !== b.config.name) {
      // storage evidence (storage.ts) only when it matters: local disks that are not copied
      const disks = opts.copyStorage ? [] : localDisks(xml);
      [cpu, storage] = await Promise.all([
        compareCpu(inv, xml, b, dstBackend),
        disks.length ? gatherStorage(disks, b, dstBackend).catch((e: unknown) => ({ unavailable: (e as Error).message })) : Promise.resolve(null),
      ]);
    }
  }
  const facts: PreflightFacts = {
    vm,
    to,
    mode: opts.mode,
    source: found ? { name: found.backend.config.name, uuid: srcUuid } : null,
    unreachable,
    dom: found ? { state: found.dom.state, active: found.dom.active, persistent: found.dom.persistent, memKiB: found.dom.memKiB, uuid: found.dom.uuid, jobActive } : null,
    targetKnown: dstBackend !== null,
    target,
    cpu,
    localDisks: xml ? localDisks(xml) : null,
    storage,
  };
  return { checks: evaluatePreflight(facts, opts), src: found, dst: dstBackend, xml };
}

async function compareCpu(inv: Inventory, xml: DomainXmlFacts, src: HostBackend, dst: HostBackend): Promise<PreflightFacts['cpu']> {
  const mode = xml.cpu.mode;
  if (mode === 'host-passthrough' || mode === 'maximum') {
    const [a, b] = [inv.facts.get(src.config.name), inv.facts.get(dst.config.name)];
    if (!a || !b) return { result: 'unknown', reason: 'host CPU models unknown' };
    return a.cpuModel === b.cpuModel && a.arch === b.arch
      ? { result: 'compatible', reason: `${mode}: both hosts have a ${a.cpuModel} CPU` }
      : { result: 'incompatible', reason: `${mode} needs identical host CPUs: ${src.config.name} has ${a.cpuModel}, ${dst.config.name} has ${b.cpuModel}` };
  }
  if (xml.cpu.xml === null) return { result: 'compatible', reason: 'default CPU model' };
  try {
    return await dst.compareCpu(xml.cpu.xml, { virttype: xml.type, arch: xml.arch, machine: xml.machine });
  } catch (e) {
    return { result: 'unknown', reason: (e as Error).message };
  }
}
