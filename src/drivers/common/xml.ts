/**
 * The few facts the drivers read from libvirt's domain XML (virDomainGetXMLDesc / virsh
 * dumpxml). libvirt formats its XML regularly (one element per line, attributes in single or
 * double quotes, entities escaped), so a small tolerant scanner is enough; no XML dependency.
 */

export interface DiskFacts {
  /** Target device, e.g. "vda". */
  dev: string;
  /** libvirt disk type: file, block, network, volume, dir, nvme… */
  type: string;
  /** disk, cdrom, floppy, lun */
  device: string;
  /** File or block device path (network disks: protocol/name), null when the drive is empty. */
  source: string | null;
  readonly: boolean;
  shareable: boolean;
}

export interface CpuFacts {
  /** custom | host-model | host-passthrough | maximum; null when the XML has no <cpu>. */
  mode: string | null;
  model: string | null;
  /** The whole <cpu> element, for virConnectCompareHypervisorCPU. */
  xml: string | null;
}

export interface DomainXmlFacts {
  /** Domain type: kvm, qemu (TCG)… */
  type: string | null;
  arch: string | null;
  machine: string | null;
  cpu: CpuFacts;
  disks: DiskFacts[];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', apos: "'", quot: '"' };

export function unescapeXml(s: string): string {
  return s.replace(/&(amp|lt|gt|apos|quot|#x[0-9a-fA-F]+|#\d+);/g, (_, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? '';
  });
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

/** Value of attribute `name` in the start tag `tag` (its text up to '>'), unescaped. */
export function attr(tag: string, name: string): string | null {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:'([^']*)'|"([^"]*)")`).exec(tag);
  if (!m) return null;
  return unescapeXml(m[1] ?? m[2] ?? '');
}

/** The first `<name …>…</name>` or `<name …/>` element in `xml`, or null. */
export function element(xml: string, name: string): string | null {
  const start = new RegExp(`<${name}(?=[\\s/>])`).exec(xml);
  if (!start) return null;
  const from = start.index;
  const endOfTag = xml.indexOf('>', from);
  if (endOfTag < 0) return null;
  if (xml[endOfTag - 1] === '/') return xml.slice(from, endOfTag + 1);
  const close = xml.indexOf(`</${name}>`, endOfTag);
  return close < 0 ? null : xml.slice(from, close + name.length + 3);
}

/** Every top-level occurrence of element `name` (not nested in itself). */
export function elements(xml: string, name: string): string[] {
  const out: string[] = [];
  let rest = xml;
  for (;;) {
    const el = element(rest, name);
    if (el === null) return out;
    out.push(el);
    rest = rest.slice(rest.indexOf(el) + el.length);
  }
}

function startTag(el: string): string {
  return el.slice(0, el.indexOf('>') + 1);
}

export function parseDomainXml(xml: string): DomainXmlFacts {
  const domainTag = /<domain[\s>][^>]*>/.exec(xml)?.[0] ?? '';
  const os = element(xml, 'os') ?? '';
  const osType = /<type[\s>][^>]*>/.exec(os)?.[0] ?? '';
  const cpuEl = element(xml, 'cpu');
  const cpu: CpuFacts = cpuEl === null
    ? { mode: null, model: null, xml: null }
    : {
      mode: attr(startTag(cpuEl), 'mode') ?? 'custom',
      model: (() => {
        const m = /<model[^>]*>([^<]*)<\/model>/.exec(cpuEl);
        return m?.[1] !== undefined ? unescapeXml(m[1].trim()) : null;
      })(),
      xml: cpuEl,
    };
  const devices = element(xml, 'devices') ?? '';
  const disks: DiskFacts[] = elements(devices, 'disk').map((d) => {
    const tag = startTag(d);
    const srcEl = element(d, 'source');
    const srcTag = srcEl === null ? '' : startTag(srcEl);
    const source = srcEl === null ? null : attr(srcTag, 'file') ?? attr(srcTag, 'dev') ?? attr(srcTag, 'name') ?? attr(srcTag, 'volume') ?? attr(srcTag, 'dir');
    const target = element(d, 'target');
    return {
      dev: target === null ? '?' : attr(startTag(target), 'dev') ?? '?',
      type: attr(tag, 'type') ?? 'file',
      device: attr(tag, 'device') ?? 'disk',
      source,
      readonly: /<readonly\s*\/>/.test(d),
      shareable: /<shareable\s*\/>/.test(d),
    };
  });
  return {
    type: attr(domainTag, 'type'),
    arch: attr(osType, 'arch'),
    machine: attr(osType, 'machine'),
    cpu,
    disks,
  };
}

/**
 * Disks whose data lives on the host (file/block/volume/dir with a source): these must be on
 * storage the target sees too, or be copied (copy-storage). Network disks (rbd, iscsi, nbd,
 * gluster…) and empty drives travel with the definition.
 */
export function localDisks(f: DomainXmlFacts): DiskFacts[] {
  return f.disks.filter((d) => d.source !== null && d.type !== 'network');
}

/** Host CPU model from the capabilities XML (<host><cpu><model>), or null. */
export function hostCpuModel(capabilities: string): { model: string | null; arch: string | null } {
  const host = element(capabilities, 'host') ?? '';
  const cpu = element(host, 'cpu') ?? '';
  const model = /<model[^>]*>([^<]*)<\/model>/.exec(cpu)?.[1] ?? null;
  const arch = /<arch>([^<]*)<\/arch>/.exec(cpu)?.[1] ?? null;
  return { model: model === null ? null : unescapeXml(model.trim()), arch };
}

/** Host UUID from the capabilities XML (<host><uuid>), lower-case, or null. */
export function hostUuid(capabilities: string): string | null {
  const m = /<host>\s*<uuid>([0-9a-fA-F-]{32,36})<\/uuid>/.exec(capabilities);
  return m?.[1] !== undefined ? m[1].toLowerCase() : null;
}
