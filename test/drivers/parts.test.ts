// Pure parts of the drivers: domain-XML facts, virsh output parsers and error mapping, the
// virsh migrate argv, usage from counters, and the pre-flight evaluator.
import { describe, expect, it } from 'vitest';
import { listenAddressOf } from '../../src/drivers/common/backend.js';
import { evaluatePreflight, firstFailure, type PreflightFacts } from '../../src/drivers/common/preflight.js';
import { UsageTracker, vmCountersFromStats } from '../../src/drivers/common/usage.js';
import { hostCpuModel, hostUuid, localDisks, parseDomainXml } from '../../src/drivers/common/xml.js';
import { VIR_MIGRATE } from '../../src/libvirt/constants.js';
import { migrateArgv } from '../../src/drivers/virsh/backend.js';
import { classifyVirshError, parseDomstats, parseRawJob, parseUuidNames, virshErrorMessage } from '../../src/drivers/virsh/parse.js';

const DOMAIN_XML = `<domain type='qemu' id='3'>
  <name>a&amp;b</name>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
  </os>
  <cpu mode='custom' match='exact' check='full'>
    <model fallback='forbid'>qemu64</model>
    <feature policy='require' name='hypervisor'/>
  </cpu>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/a&amp;b.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='network' device='disk'>
      <source protocol='rbd' name='pool/img'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
  </devices>
</domain>`;

describe('domain XML facts', () => {
  it('reads type, arch, machine, CPU and disks; local disks exclude network disks and empty drives', () => {
    const f = parseDomainXml(DOMAIN_XML);
    expect(f).toMatchObject({ type: 'qemu', arch: 'x86_64', machine: 'pc-i440fx-7.2' });
    expect(f.cpu).toMatchObject({ mode: 'custom', model: 'qemu64' });
    expect(f.cpu.xml).toMatch(/^<cpu[\s\S]*<\/cpu>$/);
    expect(f.disks.map((d) => [d.dev, d.type, d.device, d.source, d.readonly])).toEqual([
      ['vda', 'file', 'disk', '/var/lib/libvirt/images/a&b.img', false],
      ['vdb', 'network', 'disk', 'rbd:pool/img', false],
      ['hdc', 'file', 'cdrom', null, true],
    ]);
    expect(localDisks(f).map((d) => d.dev)).toEqual(['vda']);
    expect(parseDomainXml('<domain type="kvm"><os><type>hvm</type></os></domain>').cpu).toEqual({ mode: null, model: null, xml: null });
  });

  it('reads the host UUID and CPU from capabilities', () => {
    const caps = `<capabilities><host><uuid>7A110000-0000-4000-8000-00000000000A</uuid><cpu><arch>x86_64</arch><model>kvm64</model></cpu></host><guest/></capabilities>`;
    expect(hostUuid(caps)).toBe('7a110000-0000-4000-8000-00000000000a');
    expect(hostCpuModel(caps)).toEqual({ model: 'kvm64', arch: 'x86_64' });
  });

  it('listen_address only for IP literals', () => {
    expect(listenAddressOf('tcp://10.77.0.2')).toBe('10.77.0.2');
    expect(listenAddressOf('tcp://10.77.0.2:49152')).toBe('10.77.0.2');
    expect(listenAddressOf('tcp://[fd00::2]')).toBe('fd00::2');
    expect(listenAddressOf('tcp://host-b.example')).toBeNull();
    expect(listenAddressOf(undefined)).toBeNull();
  });
});

describe('virsh parsers', () => {
  it('domstats --raw: names with quotes and metacharacters, numbers and strings', () => {
    const text = "Domain: 'x'\n  state.state=1\n  net.0.name=vnet0\n  net.count=1\n\nDomain: '--a'b;$(c)'\n  state.state=5\n";
    expect(parseDomstats(text)).toEqual([
      { name: 'x', fields: { 'state.state': 1, 'net.count': 1 }, strings: { 'net.0.name': 'vnet0' } },
      { name: "--a'b;$(c)", fields: { 'state.state': 5 }, strings: {} },
    ]);
  });

  it('domjobinfo --rawstats and list --uuid --name', () => {
    expect(parseRawJob('Job type: 2\n\noperation: 5\ndata_total: 67641344\nmemory_iteration: 3\n')).toEqual({ type: 2, fields: { operation: 5, data_total: 67641344, memory_iteration: 3 } });
    expect([...parseUuidNames('e6bbd287-aaa5-4c93-9503-be58172c5862 a name with spaces\n\n')]).toEqual([['a name with spaces', 'e6bbd287-aaa5-4c93-9503-be58172c5862']]);
  });

  it('maps libvirt messages to driver codes by context', () => {
    const msg = (s: string): string => virshErrorMessage(s);
    expect(msg('error: failed to get domain \'x\'\n')).toBe("failed to get domain 'x'");
    expect(classifyVirshError(msg("error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/x': No such file\n"), 'TIDE_MIGRATION_FAILED')).toBe('TIDE_HOST_UNREACHABLE');
    expect(classifyVirshError("failed to get domain 'x'", 'TIDE_POWER_FAILED')).toBe('TIDE_NO_SUCH_VM');
    expect(classifyVirshError('operation aborted: migration out: canceled by client', 'TIDE_MIGRATION_FAILED')).toBe('TIDE_ABORTED');
    expect(classifyVirshError('Requested operation is not valid: domain is not running', 'TIDE_POWER_FAILED')).toBe('TIDE_VM_STATE');
    expect(classifyVirshError('Unsafe migration: Migration without shared storage is unsafe', 'TIDE_MIGRATION_FAILED')).toBe('TIDE_PREFLIGHT_FAILED');
    expect(classifyVirshError('internal error: client socket is closed', 'TIDE_MIGRATION_FAILED')).toBe('TIDE_MIGRATION_FAILED');
    expect(classifyVirshError('operation failed: Timed out during operation', 'TIDE_MIGRATION_FAILED')).toBe('TIDE_MIGRATION_FAILED');
  });

  it('builds the migrate argv: flags as options, the name as --domain, no shell', () => {
    const argv = migrateArgv("-x; rm -rf /", {
      dest: { name: 'b', uri: 'qemu:///b', peerUri: 'qemu+tcp://10.0.0.2/system', migrationAddress: 'tcp://10.0.0.2', power: { kind: 'none' }, bootSec: 1, tags: [], maintenance: false, excluded: false },
      flags: VIR_MIGRATE.LIVE | VIR_MIGRATE.PEER2PEER | VIR_MIGRATE.AUTO_CONVERGE | VIR_MIGRATE.POSTCOPY,
      params: { migrate_uri: 'tcp://10.0.0.2', listen_address: '10.0.0.2', bandwidth: 100, 'bandwidth.postcopy': 100 },
    });
    expect(argv).toEqual(['migrate', '--live', '--p2p', '--auto-converge', '--postcopy', '--migrateuri', 'tcp://10.0.0.2', '--listen-address', '10.0.0.2',
      '--bandwidth', '100', '--postcopy-bandwidth', '100', '--domain', '-x; rm -rf /', '--desturi', 'qemu+tcp://10.0.0.2/system']);
  });
});

describe('usage from counters', () => {
  const counters = (monoMs: number, cpuTimeNs: number, rx: number, busy: number, total: number) => ({
    atMs: 1000 + monoMs, monoMs, cpuBusyNs: busy, cpuTotalNs: total, memTotalKiB: 4 * 2 ** 20, memAvailableKiB: 3 * 2 ** 20,
    vms: [vmCountersFromStats('vm1', 'u1', { 'cpu.time': cpuTimeNs, 'vcpu.current': 2, 'balloon.rss': 512 * 1024, 'net.count': 1, 'net.0.rx.bytes': rx })],
  });

  it('first sample primes (rates unknown, not 0); then CPU % per vCPU, bytes/s, host CPU from busy/total', () => {
    const t = new UsageTracker();
    const first = t.update('h', counters(0, 0, 0, 0, 0));
    expect(first.vms[0]!.cpuPct).toBeNull();
    expect(first.host.memUsedMiB).toBe(1024);
    // 2 s later: 1 s of CPU over 2 vCPUs = 25 %, 2 MiB received = 1 MiB/s, host 30 % busy
    const next = t.update('h', counters(2000, 1e9, 2 * 2 ** 20, 3e9, 10e9));
    expect(next.vms[0]).toMatchObject({ cpuPct: 25, memUsedMiB: 512, netRxBytesPerSec: 2 ** 20 });
    expect(next.host.cpuPct).toBe(30);
    // a counter going backwards (VM restarted) gives unknown, not a negative rate or a 0
    expect(t.update('h', counters(3000, 1e8, 0, 4e9, 12e9)).vms[0]).toMatchObject({ cpuPct: null, netRxBytesPerSec: null });
  });

  it('memory: the guest view (available − unused) when the balloon reports it', () => {
    expect(vmCountersFromStats('v', 'u', { 'balloon.available': 1000, 'balloon.unused': 400, 'balloon.rss': 900 }).memUsedKiB).toBe(600);
    expect(vmCountersFromStats('v', 'u', { 'balloon.current': 700 }).memUsedKiB).toBe(700);
  });
});

describe('pre-flight evaluator', () => {
  const base = (): PreflightFacts => ({
    vm: 'vm1', to: 'b', mode: 'live',
    source: { name: 'a', uuid: 'ua' }, unreachable: [],
    dom: { state: 'running', active: true, persistent: true, memKiB: 1024 * 1024, uuid: 'v1', jobActive: false },
    targetKnown: true,
    target: { reachable: true, uuid: 'ub', memTotalKiB: 4 * 2 ** 20, memAvailableKiB: 3 * 2 ** 20, committedKiB: 2 ** 20, domains: [] },
    cpu: { result: 'compatible', reason: 'ok' },
    localDisks: [],
  });

  it('passes a valid move', () => {
    const checks = evaluatePreflight(base(), {});
    expect(checks).toHaveLength(9);
    expect(checks.every((c) => c.ok)).toBe(true);
    expect(firstFailure(checks)).toBeNull();
  });

  it('memory: free memory and uncommitted memory both count', () => {
    const f = base();
    f.target!.memAvailableKiB = 512 * 1024;
    expect(evaluatePreflight(f, {}).find((c) => c.check === 'memory')).toMatchObject({ ok: false, reason: expect.stringContaining('512 MiB free') });
    const g = base();
    g.target!.committedKiB = 3.5 * 2 ** 20;
    expect(evaluatePreflight(g, {}).find((c) => c.check === 'memory')).toMatchObject({ ok: false, reason: expect.stringContaining('not committed') });
  });

  it('same machine by host UUID, name clash, CPU, state, storage', () => {
    const same = base();
    same.target!.uuid = 'ua';
    expect(firstFailure(evaluatePreflight(same, {}))?.check).toBe('not-same-host');
    const clash = base();
    clash.target!.domains = [{ name: 'vm1', uuid: 'other', active: false }];
    expect(firstFailure(evaluatePreflight(clash, {}))?.check).toBe('name-clash');
    const stale = base();
    stale.target!.domains = [{ name: 'vm1', uuid: 'v1', active: false }];
    expect(firstFailure(evaluatePreflight(stale, {}))).toBeNull();
    const cpu = base();
    cpu.cpu = { result: 'incompatible', reason: 'b cannot provide EPYC' };
    expect(firstFailure(evaluatePreflight(cpu, {}))).toMatchObject({ check: 'cpu-compatible', reason: 'b cannot provide EPYC' });
    const off = base();
    off.dom!.state = 'shutoff';
    off.dom!.active = false;
    expect(firstFailure(evaluatePreflight(off, {}))?.reason).toContain('--mode offline');
    expect(firstFailure(evaluatePreflight({ ...off, mode: 'offline' }, {}))).toBeNull();
    const busy = base();
    busy.dom!.jobActive = true;
    expect(firstFailure(evaluatePreflight(busy, {}))?.check).toBe('vm-state');
    const disk = base();
    disk.localDisks = [{ dev: 'vda', type: 'file', device: 'disk', source: '/x.img', readonly: false, shareable: false }];
    expect(evaluatePreflight(disk, { copyStorage: true }).find((c) => c.check === 'storage')?.reason).toContain('copies vda');
    expect(firstFailure(evaluatePreflight({ ...disk, mode: 'offline' }, { copyStorage: true }))?.check).toBe('storage');
  });

  it('a missing VM or target fails first with its own code and marks the rest not checked', () => {
    const f = base();
    f.source = null;
    f.dom = null;
    f.localDisks = null;
    const checks = evaluatePreflight(f, {});
    expect(firstFailure(checks)).toMatchObject({ check: 'vm-exists', code: 'TIDE_NO_SUCH_VM' });
    expect(checks.find((c) => c.check === 'memory')?.reason).toMatch(/^not checked/);
    const g = base();
    g.targetKnown = false;
    g.target = null;
    expect(firstFailure(evaluatePreflight(g, {}))).toMatchObject({ check: 'target-exists', code: 'TIDE_NO_SUCH_HOST' });
    const h = base();
    h.target = { ...h.target!, reachable: false, reason: 'connection refused' };
    expect(firstFailure(evaluatePreflight(h, {}))).toMatchObject({ check: 'target-reachable', code: 'TIDE_HOST_UNREACHABLE' });
  });
});
