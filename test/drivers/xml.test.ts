// The XML facts the drivers decide on, read from real libvirt output (test/drivers/fixtures,
// see its README) and from odd but valid XML: namespaces, comments, CDATA, entities, quoting,
// whitespace. Malformed XML must throw XmlError, never yield half-read facts.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  XmlError, cpuSummary, escapeXml, hostCpuModel, hostUuid, localDisks, parseCapabilities, parseDomainCapabilities, parseDomainXml, parseXml,
} from '../../src/drivers/common/xml.js';

const fixture = (name: string): string => readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), 'utf8');

describe('real libvirt output', () => {
  it('dumpxml of a running guest: type, arch, machine, the resolved CPU, no disks', () => {
    const f = parseDomainXml(fixture('virsh-dumpxml-tiny-running.xml'));
    expect(f).toMatchObject({ type: 'qemu', arch: 'x86_64', machine: 'pc-i440fx-7.2', disks: [] });
    expect(f.cpu).toMatchObject({ mode: 'custom', model: 'qemu64' });
    // the re-serialised <cpu> holds every feature and parses back to the same facts
    const cpu = parseXml(f.cpu.xml!);
    expect(cpu.name).toBe('cpu');
    expect(cpu.attrs).toEqual({ mode: 'custom', match: 'exact', check: 'full' });
    expect(cpu.children.filter((c) => c.name === 'feature').map((c) => c.attrs.name)).toEqual(['hypervisor', 'lahf_lm']);
    expect(cpuSummary(f.cpu.xml!)).toBe('custom qemu64');
    // the definition (libvirt added the default CPU when it was defined) has no features yet
    const inactive = parseDomainXml(fixture('virsh-dumpxml-tiny-inactive.xml')).cpu;
    expect(inactive).toMatchObject({ mode: 'custom', model: 'qemu64' });
    expect(parseXml(inactive.xml!).attrs.check).toBe('none');
  });

  it('dumpxml with every disk kind, namespaced metadata and qemu:commandline', () => {
    const f = parseDomainXml(fixture('virsh-dumpxml-disks-inactive.xml'));
    // <metadata> holds a default-namespaced <cpu mode="host-passthrough"> and a <devices> with
    // a disk on /wrong; neither is libvirt's (a regex scanner picked the first <cpu> it saw)
    expect(f.cpu.mode).toBe('custom');
    expect(f.cpu.model).toBe('qemu64');
    expect(f.cpu.xml).not.toContain('host-passthrough');
    expect(f.disks.map((d) => [d.dev, d.type, d.device, d.source, d.readonly, d.shareable])).toEqual([
      ['vda', 'file', 'disk', '/srv/tide-pool/root.img', false, false],
      ['vdb', 'volume', 'disk', 'fixpool/data & more.img', false, false],
      ['vdc', 'network', 'disk', 'rbd:rbdpool/img', false, false],
      ['vdd', 'block', 'disk', '/dev/vg0/lv-data', false, true],
      ['sda', 'file', 'cdrom', null, true, false],
    ]);
    expect(f.disks[1]!.src).toEqual({ pool: 'fixpool', volume: 'data & more.img' });
    expect(f.disks[2]!.src).toEqual({
      protocol: 'rbd', name: 'rbdpool/img', hosts: [{ name: 'mon1.example', port: '6789' }, { name: 'mon2.example', port: '6789' }],
    });
    expect(f.disks[4]!.src).toBeUndefined();
    expect(localDisks(f).map((d) => d.dev)).toEqual(['vda', 'vdb', 'vdd']);
  });

  it('capabilities: host UUID, CPU model and arch, guests', () => {
    const xml = fixture('virsh-capabilities.xml');
    const c = parseCapabilities(xml);
    expect(c.uuid).toBe('7a110000-0000-4000-8000-0000000f1001');
    expect(c.arch).toBe('x86_64');
    expect(c.cpuModel).toMatch(/^\S+$/);
    expect(c.guests.some((g) => g.osType === 'hvm' && g.arch === 'x86_64' && g.domainTypes.includes('qemu'))).toBe(true);
    expect(hostUuid(xml)).toBe(c.uuid);
    expect(hostCpuModel(xml)).toEqual({ model: c.cpuModel, arch: 'x86_64' });
  });

  it('domain capabilities: supported CPU modes and the host-model CPU', () => {
    const d = parseDomainCapabilities(fixture('virsh-domcapabilities.xml'));
    expect(d).toMatchObject({ domainType: 'qemu', arch: 'x86_64' });
    expect(d.machine).toMatch(/^pc-i440fx-/);
    expect(d.cpuModes).toContain('custom');
    expect(d.cpuModes).not.toContain('host-passthrough'); // TCG: supported='no'
    expect(d.hostModel).toMatch(/^\S+$/);
  });
});

describe('odd but valid XML', () => {
  it('comments, CDATA, a declaration, double and single quotes, spaces around =, entities and character references', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<!-- made by hand --><domain type = "kvm"   id='7'>
  <name>a&amp;b &apos;c&apos; &#x41;&#66;</name>
  <description><![CDATA[ <cpu mode='host-passthrough'/> ]]></description>
  <os><type arch="x86_64"
            machine='pc-q35-7.2'>hvm</type></os>
  <!-- <cpu mode='maximum'/> -->
  <cpu mode="host-model" check='partial'><model fallback="allow">  Sky&amp;lake  </model></cpu>
  <devices>
    <disk device="disk" type="file"><source file="/img/it&apos;s &quot;a&quot; &lt;disk&gt; &amp;amp;.img"/><target dev="vda"/></disk>
    <disk type='file' device='cdrom'><target dev='hdc'/><readonly
/></disk>
  </devices>
</domain>
`;
    const f = parseDomainXml(xml);
    expect(f).toMatchObject({ type: 'kvm', arch: 'x86_64', machine: 'pc-q35-7.2' });
    expect(f.cpu.mode).toBe('host-model');
    expect(f.cpu.model).toBe('Sky&lake');
    expect(f.disks.map((d) => [d.dev, d.source, d.readonly])).toEqual([
      ['vda', `/img/it's "a" <disk> &amp;.img`, false],
      ['hdc', null, true],
    ]);
    // the serialised CPU re-escapes what needs escaping and parses back to the same model
    expect(parseDomainXml(`<domain>${f.cpu.xml}</domain>`).cpu.model).toBe('Sky&lake');
  });

  it('a default namespace or a prefix on an element makes it not libvirt\'s', () => {
    const xml = `<domain type='kvm' xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0'>
  <q:cpu mode='host-passthrough'/>
  <cpu xmlns='urn:other' mode='maximum'/>
  <devices xmlns='urn:other'><disk type='file'><source file='/not-libvirt'/><target dev='vdz'/></disk></devices>
  <devices>
    <disk type='file'><source file='/yes'/><target dev='vda'/></disk>
    <q:disk type='file'><source file='/no'/><target dev='vdq'/></q:disk>
  </devices>
  <metadata><m:cpu xmlns:m='urn:m' mode='x'/><cpu xmlns='urn:n' mode='y'><inner xmlns=''/></cpu></metadata>
  <cpu xmlns='' mode='custom'><model>qemu64</model></cpu>
</domain>`;
    const f = parseDomainXml(xml);
    expect(f.cpu).toMatchObject({ mode: 'custom', model: 'qemu64' });
    expect(f.disks.map((d) => d.source)).toEqual(['/yes']);
  });

  it('a <cpu> using a prefix declared on <domain> carries the declaration when serialised', () => {
    const xml = `<domain xmlns:t='urn:t'><cpu mode='custom'><model>qemu64</model><t:hint level='1'/></cpu></domain>`;
    const cpuXml = parseDomainXml(xml).cpu.xml!;
    expect(cpuXml).toContain(`xmlns:t="urn:t"`);
    expect(parseXml(cpuXml).children.map((c) => [c.name, c.ns])).toEqual([['model', null], ['t:hint', 'urn:t']]);
  });

  it('network disks with a volume-like name, dir disks and a disk without a target', () => {
    const f = parseDomainXml(`<domain><devices>
      <disk type='network' device='disk'><source protocol='nbd' name='export'><host name='10.0.0.1' port='10809'/></source><target dev='vda'/></disk>
      <disk type='network' device='cdrom'><target dev='sdb'/><readonly/></disk>
      <disk type='dir' device='disk'><source dir='/srv/floppy'/><target dev='fda'/></disk>
      <disk type='volume' device='cdrom'><source pool='isos' volume='debian.iso'/><readonly/></disk>
    </devices></domain>`);
    expect(f.disks.map((d) => [d.dev, d.type, d.source])).toEqual([
      ['vda', 'network', 'nbd:export'], ['sdb', 'network', null], ['fda', 'dir', '/srv/floppy'], ['?', 'volume', 'isos/debian.iso'],
    ]);
    expect(localDisks(f).map((d) => d.source)).toEqual(['/srv/floppy', 'isos/debian.iso']);
  });

  it('any name and path survives escapeXml → parse (property)', () => {
    const chars = fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', '&', '<', '>', "'", '"', ';', '#', 'x', 'é', '😀', '\t', '/'), maxLength: 40 });
    fc.assert(fc.property(chars, chars, (name, file) => {
      const f = parseDomainXml(`<domain><name>${escapeXml(name)}</name><devices><disk type='file'><source file='${escapeXml(file)}'/><target dev='vda'/></disk></devices></domain>`);
      return file === '' ? f.disks[0]!.source === '' : f.disks[0]!.source === file;
    }));
  });
});

describe('malformed or unexpected XML throws XmlError', () => {
  it.each([
    ['unclosed element', `<domain><cpu mode='custom'></domain>`, /line 1/],
    ['unquoted attribute', `<domain type=kvm></domain>`, /domain XML/],
    ['two roots', `<domain/><domain/>`, /domain XML/],
    ['not a domain', `<capabilities/>`, /not <domain>/],
    ['a DOCTYPE', `<!DOCTYPE domain [<!ENTITY x "y">]><domain>&x;</domain>`, /DOCTYPE/],
    ['empty', ``, /domain XML/],
    ['nested 500 deep', `<domain>${'<m>'.repeat(500)}${'</m>'.repeat(500)}</domain>`, /nested/],
  ])('%s', (_, xml, msg) => {
    expect(() => parseDomainXml(xml)).toThrow(XmlError);
    expect(() => parseDomainXml(xml)).toThrow(msg);
  });

  it('capabilities without a host UUID give null, not a guess; broken capabilities throw', () => {
    expect(hostUuid('<capabilities><host><cpu><arch>aarch64</arch></cpu></host></capabilities>')).toBeNull();
    expect(hostCpuModel('<capabilities><host><cpu><arch>aarch64</arch></cpu></host></capabilities>')).toEqual({ model: null, arch: 'aarch64' });
    expect(() => hostUuid('<capabilities><host><uuid>x</host></capabilities>')).toThrow(XmlError);
    expect(cpuSummary('<cpu')).toBe('unparsable CPU definition');
  });
});

describe('hostile input (property)', () => {
  const real = fixture('virsh-dumpxml-disks-inactive.xml');
  const outcome = (xml: string): 'facts' | 'XmlError' => {
    try {
      const f = parseDomainXml(xml);
      // facts are well-typed whatever the input
      for (const d of f.disks) if (typeof d.dev !== 'string' || (d.source !== null && typeof d.source !== 'string')) throw new Error('bad disk facts');
      return 'facts';
    } catch (e) {
      if (e instanceof XmlError) return 'XmlError';
      throw e;
    }
  };

  it('random strings and cut, spliced or duplicated real XML give facts or an XmlError, nothing else', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => { outcome(s); }), { numRuns: 300 });
    fc.assert(fc.property(fc.nat(real.length), fc.nat(real.length), fc.string({ unit: fc.constantFrom('<', '>', '&', '/', '"', "'", '=', ';', 'a', ':', '!', '-', '[', ']', ' '), maxLength: 12 }), (i, j, junk) => {
      const [lo, hi] = i < j ? [i, j] : [j, i];
      outcome(real.slice(0, lo) + junk + real.slice(hi));
      outcome(real.slice(0, lo));
      outcome(real.slice(0, hi) + real.slice(lo));
    }), { numRuns: 300 });
  });
});
