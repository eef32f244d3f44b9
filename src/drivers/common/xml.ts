/**
 * The facts the drivers read from libvirt's XML: domain XML (virDomainGetXMLDesc / virsh
 * dumpxml) and capabilities XML (virConnectGetCapabilities / virsh capabilities).
 *
 * Parsing is done by a real XML parser (fast-xml-parser, validated first, so malformed input
 * throws an XmlError naming line and column). On top of its ordered tree this module builds a
 * small element tree with resolved namespaces: libvirt's own elements are in no namespace, so a
 * lookup only matches un-namespaced elements. An element inside <metadata> that declares a
 * default namespace, or a <qemu:commandline>, is never mistaken for libvirt's <cpu> or <disk>.
 * Entities: the five XML entities and numeric character references are decoded (in one pass,
 * so "&amp;lt;" stays "&lt;"); CDATA is literal; comments are ignored. A DOCTYPE is refused:
 * libvirt never emits one, and refusing it keeps entity-expansion tricks out.
 */
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';

export interface DiskSource {
  /** <source file=…> (type file) */
  file?: string;
  /** <source dev=…> (type block) */
  dev?: string;
  /** <source dir=…> (type dir) */
  dir?: string;
  /** <source pool=… volume=…> (type volume): the storage pool and the volume's name in it. */
  pool?: string;
  volume?: string;
  /** <source protocol=… name=…> (type network), with its <host name port> entries. */
  protocol?: string;
  name?: string;
  hosts?: { name: string; port: string | null }[];
}

export interface DiskFacts {
  /** Target device, e.g. "vda". */
  dev: string;
  /** libvirt disk type: file, block, network, volume, dir, nvme… */
  type: string;
  /** disk, cdrom, floppy, lun */
  device: string;
  /**
   * One-line summary of where the data is, null when the drive is empty: the path (file,
   * block, dir), "POOL/VOLUME" (volume), "PROTOCOL:NAME" (network).
   */
  source: string | null;
  readonly: boolean;
  shareable: boolean;
  /** The <source> element's attributes as parsed (absent: the drive is empty). */
  src?: DiskSource;
}

export interface CpuFacts {
  /** custom | host-model | host-passthrough | maximum; null when the XML has no <cpu>. */
  mode: string | null;
  model: string | null;
  /** The whole <cpu> element re-serialised (well-formed), for virConnectCompareHypervisorCPU. */
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

/** Malformed or unexpected XML (not well-formed, wrong root element, DOCTYPE). */
export class XmlError extends Error {
  override readonly name = 'XmlError';
}

// ---------------------------------------------------------------------------------------------
// Element tree
// ---------------------------------------------------------------------------------------------

/** One element: qualified name, local name, resolved namespace URI (null: none). */
export interface XmlElement {
  name: string;
  local: string;
  ns: string | null;
  /** Attributes by qualified name, entity-decoded. */
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated direct character data (text and CDATA), untrimmed. */
  text: string;
  /** In-scope prefix → URI bindings ('' is the default namespace). */
  scope: Record<string, string>;
  /** fast-xml-parser's ordered node, for re-serialisation. */
  raw: OrderedNode;
}

type OrderedNode = Record<string, unknown>;

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', apos: "'", quot: '"' };
const ENTITY_RE = /&(amp|lt|gt|apos|quot|#x[0-9a-fA-F]+|#[0-9]+);/g;

/** XML's predefined entities and character references, decoded in one pass. */
function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(ENTITY_RE, (_, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return XML_ENTITIES[e] ?? '';
  });
}

/** The decoder interface fast-xml-parser calls for text and attribute values. */
const xmlEntityDecoder = {
  setExternalEntities(): void { /* no DTD entities: a DOCTYPE is refused before parsing */ },
  addInputEntities(): void { /* idem */ },
  reset(): void { /* stateless */ },
  setXmlVersion(): void { /* same rules for 1.0 and 1.1 here */ },
  decode: decodeEntities,
};

const TEXT = '#text';
const CDATA = '#cdata';
const COMMENT = '#comment';
const ATTRS = ':@';

const PARSE_OPTIONS = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  cdataPropName: CDATA,
  commentPropName: COMMENT,
  ignoreDeclaration: true,
  ignorePiTags: true,
  entityDecoder: xmlEntityDecoder,
} as const;

const parser = new XMLParser(PARSE_OPTIONS);
const builder = new XMLBuilder({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  cdataPropName: CDATA,
  commentPropName: COMMENT,
  suppressEmptyNode: true,
  processEntities: true,
});

function tagOf(node: OrderedNode): string | null {
  for (const k of Object.keys(node)) if (k !== ATTRS) return k;
  return null;
}

function build(node: OrderedNode, parentScope: Record<string, string>): XmlElement {
  const name = tagOf(node)!;
  const attrs: Record<string, string> = {};
  const rawAttrs = (node[ATTRS] ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(rawAttrs)) attrs[k] = String(v);
  let scope = parentScope;
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'xmlns' || k.startsWith('xmlns:')) {
      if (scope === parentScope) scope = { ...parentScope };
      scope[k === 'xmlns' ? '' : k.slice(6)] = v;
    }
  }
  const colon = name.indexOf(':');
  const prefix = colon < 0 ? '' : name.slice(0, colon);
  const local = colon < 0 ? name : name.slice(colon + 1);
  const uri = scope[prefix];
  // An unbound prefix is still a namespace (never libvirt's); xmlns="" means none.
  const ns = uri === undefined ? (prefix ? `unbound:${prefix}` : null) : uri === '' ? null : uri;
  const el: XmlElement = { name, local, ns, attrs, children: [], text: '', scope, raw: node };
  for (const c of (node[name] ?? []) as OrderedNode[]) {
    if (TEXT in c) el.text += String(c[TEXT]);
    else if (CDATA in c) el.text += ((c[CDATA] ?? []) as OrderedNode[]).map((t) => String(t[TEXT] ?? '')).join('');
    else if (COMMENT in c) continue;
    else if (tagOf(c) !== null) el.children.push(build(c, scope));
  }
  return el;
}

/** Does the prolog (before the root element: whitespace, comments, PIs) hold a DOCTYPE? */
function hasDoctype(xml: string): boolean {
  let i = 0;
  for (;;) {
    while (i < xml.length && /\s/.test(xml[i]!)) i++;
    if (xml.startsWith('<?', i)) i = xml.indexOf('?>', i) < 0 ? xml.length : xml.indexOf('?>', i) + 2;
    else if (xml.startsWith('<!--', i)) i = xml.indexOf('-->', i) < 0 ? xml.length : xml.indexOf('-->', i) + 3;
    else return xml.startsWith('<!DOCTYPE', i);
  }
}

/** Parses a whole document and returns its root element; throws XmlError when malformed. */
export function parseXml(xml: string, what = 'XML'): XmlElement {
  if (typeof xml !== 'string') throw new XmlError(`${what}: not a string`);
  if (hasDoctype(xml)) throw new XmlError(`${what}: a DOCTYPE is not accepted (libvirt never emits one)`);
  const v = XMLValidator.validate(xml);
  if (v !== true) throw new XmlError(`${what}: ${v.err.msg} (line ${v.err.line}, column ${v.err.col})`);
  let nodes: OrderedNode[];
  try {
    nodes = parser.parse(xml) as OrderedNode[];
  } catch (e) {
    // the parser's own limits (e.g. more than 100 nested elements; libvirt nests < 20)
    throw new XmlError(`${what}: ${(e as Error).message}`, { cause: e });
  }
  const roots = nodes.filter((n) => tagOf(n) !== null && !(TEXT in n) && !(COMMENT in n) && !(CDATA in n));
  if (roots.length !== 1) throw new XmlError(`${what}: expected one root element, found ${roots.length}`);
  return build(roots[0]!, {});
}

/** First child of `el` named `local` in libvirt's (empty) namespace, or null. */
export function child(el: XmlElement | null | undefined, local: string): XmlElement | null {
  return el?.children.find((c) => c.local === local && c.ns === null) ?? null;
}

/** Every child of `el` named `local` in libvirt's namespace. */
export function childrenNamed(el: XmlElement | null | undefined, local: string): XmlElement[] {
  return el ? el.children.filter((c) => c.local === local && c.ns === null) : [];
}

/** Follows a path of child names (libvirt's namespace) from `el`. */
export function path(el: XmlElement | null, ...names: string[]): XmlElement | null {
  let cur = el;
  for (const n of names) cur = child(cur, n);
  return cur;
}

/** Trimmed text of an element, null when the element is absent or empty. */
export function textOf(el: XmlElement | null): string | null {
  const t = el?.text.trim();
  return t ? t : null;
}

/** Unprefixed attribute of an element, null when absent. */
export function attrOf(el: XmlElement | null, name: string): string | null {
  return el?.attrs[name] ?? null;
}

/**
 * The element as a standalone, well-formed document: entities re-escaped, and namespace
 * prefixes it uses but that were declared on an ancestor declared on it.
 */
export function serialise(el: XmlElement): string {
  const used = new Set<string>();
  const walk = (e: XmlElement): void => {
    const i = e.name.indexOf(':');
    if (i > 0) used.add(e.name.slice(0, i));
    for (const k of Object.keys(e.attrs)) {
      const j = k.indexOf(':');
      if (j > 0 && !k.startsWith('xmlns')) used.add(k.slice(0, j));
    }
    e.children.forEach(walk);
  };
  walk(el);
  let node = el.raw;
  const own = (node[ATTRS] ?? {}) as Record<string, unknown>;
  const extra: Record<string, string> = {};
  for (const p of used) if (p !== 'xml' && el.scope[p] !== undefined && own[`xmlns:${p}`] === undefined) extra[`xmlns:${p}`] = el.scope[p];
  if (Object.keys(extra).length) node = { ...node, [ATTRS]: { ...own, ...extra } };
  return builder.build([node]) as string;
}

// ---------------------------------------------------------------------------------------------
// Domain XML
// ---------------------------------------------------------------------------------------------

/** For building XML (never for parsing): the five XML entities escaped. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

function diskSource(s: XmlElement): DiskSource {
  const out: DiskSource = {};
  for (const k of ['file', 'dev', 'dir', 'pool', 'volume', 'protocol', 'name'] as const) {
    const v = attrOf(s, k);
    if (v !== null) out[k] = v;
  }
  const hosts = childrenNamed(s, 'host');
  if (hosts.length) out.hosts = hosts.map((h) => ({ name: attrOf(h, 'name') ?? '', port: attrOf(h, 'port') }));
  return out;
}

function summary(type: string, s: DiskSource): string | null {
  if (type === 'volume' && s.pool !== undefined && s.volume !== undefined) return `${s.pool}/${s.volume}`;
  if (type === 'network') return s.protocol !== undefined || s.name !== undefined ? `${s.protocol ?? '?'}:${s.name ?? ''}` : null;
  return s.file ?? s.dev ?? s.dir ?? s.name ?? s.volume ?? null;
}

function disk(d: XmlElement): DiskFacts {
  const type = attrOf(d, 'type') ?? 'file';
  const srcEl = child(d, 'source');
  const src = srcEl ? diskSource(srcEl) : undefined;
  const source = src ? summary(type, src) : null;
  return {
    dev: attrOf(child(d, 'target'), 'dev') ?? '?',
    type,
    device: attrOf(d, 'device') ?? 'disk',
    source,
    readonly: child(d, 'readonly') !== null,
    shareable: child(d, 'shareable') !== null,
    ...(src && source !== null ? { src } : {}),
  };
}

/** Facts of a domain's XML; throws XmlError when it is not well-formed or not a <domain>. */
export function parseDomainXml(xml: string): DomainXmlFacts {
  const root = parseXml(xml, 'domain XML');
  if (root.local !== 'domain' || root.ns !== null) throw new XmlError(`domain XML: root element is <${root.name}>, not <domain>`);
  const osType = path(root, 'os', 'type');
  const cpuEl = child(root, 'cpu');
  const cpu: CpuFacts = cpuEl === null
    ? { mode: null, model: null, xml: null }
    : { mode: attrOf(cpuEl, 'mode') ?? 'custom', model: textOf(child(cpuEl, 'model')), xml: serialise(cpuEl) };
  return {
    type: attrOf(root, 'type'),
    arch: attrOf(osType, 'arch'),
    machine: attrOf(osType, 'machine'),
    cpu,
    disks: childrenNamed(child(root, 'devices'), 'disk').map(disk),
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

/** "MODE MODEL" of a <cpu> element, for messages; tolerant of bad input (a message must not throw). */
export function cpuSummary(cpuXml: string): string {
  try {
    const cpu = parseXml(cpuXml, 'CPU XML');
    const mode = attrOf(cpu, 'mode') ?? 'custom';
    const model = textOf(child(cpu, 'model'));
    return model ? `${mode} ${model}` : mode;
  } catch {
    return 'unparsable CPU definition';
  }
}

// ---------------------------------------------------------------------------------------------
// Capabilities XML
// ---------------------------------------------------------------------------------------------

export interface CapabilitiesFacts {
  /** <host><uuid>, lower-case. */
  uuid: string | null;
  /** <host><cpu><model> and <arch>. */
  cpuModel: string | null;
  arch: string | null;
  /** <guest> entries: OS type, architecture and the domain types (kvm, qemu…) it offers. */
  guests: { osType: string | null; arch: string | null; domainTypes: string[] }[];
}

/** Facts of the capabilities XML; throws XmlError when it is not well-formed or not <capabilities>. */
export function parseCapabilities(xml: string): CapabilitiesFacts {
  const root = parseXml(xml, 'capabilities XML');
  if (root.local !== 'capabilities' || root.ns !== null) throw new XmlError(`capabilities XML: root element is <${root.name}>, not <capabilities>`);
  const host = child(root, 'host');
  const cpu = child(host, 'cpu');
  const uuid = textOf(child(host, 'uuid'));
  return {
    uuid: uuid === null ? null : uuid.toLowerCase(),
    cpuModel: textOf(child(cpu, 'model')),
    arch: textOf(child(cpu, 'arch')),
    guests: childrenNamed(root, 'guest').map((g) => {
      const arch = child(g, 'arch');
      return {
        osType: textOf(child(g, 'os_type')),
        arch: attrOf(arch, 'name'),
        domainTypes: childrenNamed(arch, 'domain').map((d) => attrOf(d, 'type') ?? '?'),
      };
    }),
  };
}

/** Host CPU model from the capabilities XML (<host><cpu><model>), or null. */
export function hostCpuModel(capabilities: string): { model: string | null; arch: string | null } {
  const c = parseCapabilities(capabilities);
  return { model: c.cpuModel, arch: c.arch };
}

/** Host UUID from the capabilities XML (<host><uuid>), lower-case, or null. */
export function hostUuid(capabilities: string): string | null {
  return parseCapabilities(capabilities).uuid;
}

// ---------------------------------------------------------------------------------------------
// Domain capabilities XML (virConnectGetDomainCapabilities / virsh domcapabilities)
// ---------------------------------------------------------------------------------------------

export interface DomainCapabilitiesFacts {
  domainType: string | null;
  arch: string | null;
  machine: string | null;
  /** CPU modes the hypervisor supports (<cpu><mode name supported='yes'>). */
  cpuModes: string[];
  /** The CPU model host-model expands to, or null. */
  hostModel: string | null;
}

export function parseDomainCapabilities(xml: string): DomainCapabilitiesFacts {
  const root = parseXml(xml, 'domain capabilities XML');
  if (root.local !== 'domainCapabilities' || root.ns !== null) throw new XmlError(`domain capabilities XML: root element is <${root.name}>, not <domainCapabilities>`);
  const modes = childrenNamed(child(root, 'cpu'), 'mode');
  const hm = modes.find((m) => attrOf(m, 'name') === 'host-model');
  return {
    domainType: textOf(child(root, 'domain')),
    arch: textOf(child(root, 'arch')),
    machine: textOf(child(root, 'machine')),
    cpuModes: modes.filter((m) => attrOf(m, 'supported') === 'yes').map((m) => attrOf(m, 'name') ?? '?'),
    hostModel: hm && attrOf(hm, 'supported') === 'yes' ? textOf(child(hm, 'model')) : null,
  };
}
