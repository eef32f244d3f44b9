// The storage pre-flight against real libvirt: two private libvirtds (test/helpers/libvirtd.ts)
// on one machine. Each daemon has its own /var/lib/libvirt (a bind mount), so a dir pool at
// /var/lib/libvirt/images is local storage at the same path on both: a file created in one
// host's directory is provably absent from the other's. A pool on a common temp directory is
// shared storage: the same file (same size, same ctime) from both hosts. Both backends (RPC and
// virsh) answer the same questions. Also: the <cpu> element the XML parser re-serialises is
// accepted by libvirt's CPU comparison.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { HostBackend } from '../../src/drivers/common/backend.js';
import { gatherStorage, judgeDisk } from '../../src/drivers/common/storage.js';
import { parseDomainXml, type DiskFacts } from '../../src/drivers/common/xml.js';
import type { HypervisorDriver } from '../../src/drivers/hypervisor.js';
import { LibvirtDriver } from '../../src/drivers/libvirt/index.js';
import { RpcBackend } from '../../src/drivers/libvirt/backend.js';
import { VirshDriver } from '../../src/drivers/virsh/index.js';
import { VirshBackend } from '../../src/drivers/virsh/backend.js';
import { labGate, startLibvirtd, tinyQemuDomainXml, type LibvirtdHandle } from '../helpers/libvirtd.js';

const fixture = (name: string): string => readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), 'utf8');

const MiB = 1024 * 1024;

if (labGate('storage pre-flight on two private libvirtds', { qemu: true })) {
  describe('storage evidence from real storage pools', () => {
    let a: LibvirtdHandle;
    let b: LibvirtdHandle;
    let shared: string;
    const backends: Record<'rpc' | 'virsh', { a: HostBackend; b: HostBackend }> = {} as never;

    const definePool = async (d: LibvirtdHandle, name: string, dir: string): Promise<void> => {
      // set up with virsh: Tide's RPC client carries storage look-ups only
      const v = new VirshBackend(parseConfig({ hosts: [{ name: 'setup', uri: d.unixUri() }] }).hosts[0]!);
      const xmlFile = join(shared, `${name}-${d.hostUuid}.xml`);
      writeFileSync(xmlFile, `<pool type='dir'><name>${name}</name><target><path>${dir}</path></target></pool>`);
      for (const args of [['pool-define', '--file', xmlFile], ['pool-start', '--pool', name]]) {
        const r = await v.exec(args);
        if (r.code !== 0) throw new Error(`virsh ${args.join(' ')}: ${r.stderr}`);
      }
    };

    beforeAll(async () => {
      [a, b] = await Promise.all([
        startLibvirtd({ hostUuid: '7a110000-0000-4000-8000-00000005a0a0' }),
        startLibvirtd({ hostUuid: '7a110000-0000-4000-8000-00000005b0b0' }),
      ]);
      shared = mkdtempSync(join(tmpdir(), 'tide-shared-pool-'));
      // each daemon's /var/lib/libvirt is its own directory: images/ at the same path, different data
      for (const d of [a, b]) mkdirSync(join(d.dir, 'lib', 'images'), { recursive: true });
      writeFileSync(join(a.dir, 'lib', 'images', 'local.img'), Buffer.alloc(MiB));
      await Promise.all([definePool(a, 'images', '/var/lib/libvirt/images'), definePool(b, 'images', '/var/lib/libvirt/images')]);
      await Promise.all([definePool(a, 'shared', shared), definePool(b, 'shared', shared)]);
      // created after both pools started: only a refresh makes it a volume
      writeFileSync(join(shared, 'disk.img'), Buffer.alloc(2 * MiB));
      const config = parseConfig({ hosts: [{ name: 'sa', uri: a.unixUri() }, { name: 'sb', uri: b.unixUri() }] });
      const [ha, hb] = config.hosts as [typeof config.hosts[0], typeof config.hosts[0]];
      backends.rpc = { a: new RpcBackend(ha), b: new RpcBackend(hb) };
      backends.virsh = { a: new VirshBackend(ha), b: new VirshBackend(hb) };
    }, 180_000);

    afterAll(async () => {
      for (const k of Object.keys(backends) as ('rpc' | 'virsh')[]) await Promise.all([backends[k].a.close(), backends[k].b.close()]);
      await Promise.all([a?.stop(), b?.stop()]);
      if (shared) rmSync(shared, { recursive: true, force: true });
    });

    const file = (dev: string, path: string): DiskFacts => ({ dev, type: 'file', device: 'disk', source: path, readonly: false, shareable: false, src: { file: path } });
    const volume = (dev: string, pool: string, vol: string): DiskFacts => ({
      dev, type: 'volume', device: 'disk', source: `${pool}/${vol}`, readonly: false, shareable: false, src: { pool, volume: vol },
    });

    for (const kind of ['rpc', 'virsh'] as const) {
      it(`${kind}: pools and volumes as libvirt shows them`, async () => {
        const { a: A, b: B } = backends[kind];
        const pools = await A.storagePools!();
        expect(pools.map((p) => [p.name, p.type, p.active, p.targetPath]).sort()).toEqual([
          ['images', 'dir', true, '/var/lib/libvirt/images'], ['shared', 'dir', true, shared],
        ]);
        const v = await A.storageVolume!({ path: '/var/lib/libvirt/images/local.img' }, { refreshPool: 'images' });
        expect(v).toMatchObject({ pool: 'images', name: 'local.img', path: '/var/lib/libvirt/images/local.img', capacityBytes: MiB });
        expect(v!.ctime).toMatch(/^\d+\.\d+$/);
        expect(await B.storageVolume!({ path: '/var/lib/libvirt/images/local.img' }, { refreshPool: 'images' })).toBeNull();
        expect(await B.storageVolume!({ pool: 'nope', name: 'x' })).toBeNull();
        expect(await B.storageVolume!({ pool: 'shared', name: 'disk.img' }, { refreshPool: 'shared' })).toMatchObject({ capacityBytes: 2 * MiB });
      });

      it(`${kind}: verdicts for local, shared, pool-less and volume disks`, async () => {
        const { a: A, b: B } = backends[kind];
        const disks = [
          file('vda', '/var/lib/libvirt/images/local.img'),
          file('vdb', join(shared, 'disk.img')),
          file('vdc', '/srv/no-pool-here/x.img'),
          volume('vdd', 'shared', 'disk.img'),
          volume('vde', 'images', 'local.img'),
          volume('vdf', 'nope', 'x.img'),
        ];
        const facts = await gatherStorage(disks, A, B);
        expect('disks' in facts).toBe(true);
        const verdicts = disks.map((d) => {
          const j = judgeDisk(d, 'disks' in facts ? facts.disks.find((x) => x.dev === d.dev) : undefined, 'sa', 'sb');
          return [d.dev, j.verdict, j.why];
        });
        expect(verdicts).toEqual([
          ['vda', 'not-shared', "sb's storage pool 'images' (/var/lib/libvirt/images) has no local.img: the disk is not visible there"],
          ['vdb', 'shared', expect.stringMatching(/^the same file on both hosts \(2097152 bytes, changed at \d+\.\d+\)$/)],
          ['vdc', 'unknown', 'no active storage pool on sb holds /srv/no-pool-here'],
          ['vdd', 'shared', expect.stringContaining('the same file on both hosts')],
          ['vde', 'not-shared', "storage pool 'images' on sb has no volume 'local.img'"],
          ['vdf', 'not-shared', "sb has no storage pool 'nope'"],
        ]);
      });
    }

    it('a host whose daemon is gone: every disk is "cannot tell", nothing throws', async () => {
      const gone = new RpcBackend(parseConfig({ hosts: [{ name: 'gone', uri: 'qemu+unix:///system?socket=/nonexistent/libvirt-sock' }] }).hosts[0]!);
      const facts = await gatherStorage([file('vda', '/var/lib/libvirt/images/local.img')], backends.rpc.a, gone);
      const d = 'disks' in facts ? facts.disks[0] : undefined;
      expect(judgeDisk(file('vda', '/var/lib/libvirt/images/local.img'), d, 'sa', 'gone')).toMatchObject({
        verdict: 'unknown', why: expect.stringContaining('cannot ask gone about its storage'),
      });
      await gone.close();
    });

    it('through the drivers: pre-flight of shut-off VMs with a local, a shared and a pool-less disk', async () => {
      // defined on host a (never started): offline mode evaluates every check on a shut-off VM
      const setup = backends.virsh.a as VirshBackend;
      const guests: [string, string][] = [['st-local', '/var/lib/libvirt/images/local.img'], ['st-shared', join(shared, 'disk.img')], ['st-nopool', '/srv/no-pool-here/x.img']];
      for (const [vm, disk] of guests) {
        const xml = tinyQemuDomainXml(vm).replace('<devices>', `<devices>\n    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${disk}'/><target dev='vda' bus='virtio'/></disk>`);
        const f = join(shared, `${vm}.xml`);
        writeFileSync(f, xml);
        const r = await setup.exec(['define', '--file', f]);
        expect(r.stderr).toBe('');
      }
      const hosts = parseConfig({ hosts: [{ name: 'sa', uri: a.unixUri() }, { name: 'sb', uri: b.unixUri() }] }).hosts;
      const drivers: [string, HypervisorDriver][] = [['libvirt', new LibvirtDriver(hosts, { connectTimeoutMs: 10_000 })], ['virsh', new VirshDriver(hosts)]];
      for (const [kind, d] of drivers) {
        try {
          const storage = async (vm: string, opts = {}) => (await d.preflight(vm, 'sb', { mode: 'offline', ...opts })).find((c) => c.check === 'storage');
          expect(await storage('st-local'), kind).toEqual({
            check: 'storage', ok: false, code: 'TIDE_PREFLIGHT_FAILED',
            reason: "not on shared storage with sb: vda (/var/lib/libvirt/images/local.img): sb's storage pool 'images' (/var/lib/libvirt/images) has no local.img: the disk is not visible there",
          });
          await expect(d.migrate('st-local', 'sb', { mode: 'offline' }), kind).rejects.toMatchObject({ code: 'TIDE_PREFLIGHT_FAILED' });
          expect(await storage('st-shared'), kind).toEqual({ check: 'storage', ok: true, reason: expect.stringMatching(/^on storage shared with sb: vda \(.*disk\.img\): the same file on both hosts/) });
          expect(await storage('st-nopool'), kind).toEqual({
            check: 'storage', ok: true, verdict: 'unknown',
            reason: expect.stringContaining('cannot tell whether the disks are on shared storage: vda (/srv/no-pool-here/x.img): no active storage pool on sb holds /srv/no-pool-here'),
          });
        } finally {
          await d.close();
        }
      }
    });

    it('libvirt accepts the re-serialised <cpu> of a real domain XML (compareHypervisorCpu)', async () => {
      const f = parseDomainXml(fixture('virsh-dumpxml-tiny-running.xml'));
      for (const k of ['rpc', 'virsh'] as const) {
        const r = await backends[k].b.compareCpu(f.cpu.xml!, { virttype: f.type, arch: f.arch, machine: 'pc' });
        expect(r.result).toBe('compatible');
      }
    });
  });
} else {
  describe('storage pre-flight on two private libvirtds', () => {
    it.skip('needs root, libvirtd and unshare (reason printed above)', () => { /* skipped with a printed reason */ });
  });
}
