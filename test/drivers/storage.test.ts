// The storage pre-flight as a pure evaluation of facts (what both hosts' storage pools show),
// and the pool/volume XML it reads (real virsh output in fixtures/). Never a silent ok: a pass
// without proof carries verdict 'unknown' and says who decides.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { printChecks } from '../../src/cli/commands/migrate.js';
import { evaluatePreflight, firstFailure, type PreflightFacts } from '../../src/drivers/common/preflight.js';
import {
  judgeDisk, parsePoolXml, parseVolumeXml, type DiskStorageFacts, type StoragePoolFacts, type StorageVolumeFacts,
} from '../../src/drivers/common/storage.js';
import type { DiskFacts } from '../../src/drivers/common/xml.js';

const fixture = (name: string): string => readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), 'utf8');

describe('pool and volume XML', () => {
  it('a dir pool (real pool-dumpxml): type, target path, no network source', () => {
    expect(parsePoolXml(fixture('virsh-pool-dumpxml-dir.xml'), true)).toEqual({
      name: 'fixpool', uuid: 'dc1e6d37-5826-4acb-8b5b-b45a95fd2c87', type: 'dir', active: true, targetPath: '/srv/tide-pool', sharedSource: null,
    });
  });

  it('network pools are identified by their source, whatever the host order', () => {
    const nfs = (hosts: string) => `<pool type='netfs'><name>n</name><source>${hosts}<dir path='/export/vms'/><format type='nfs'/></source><target><path>/mnt/vms</path></target></pool>`;
    const a = parsePoolXml(nfs(`<host name='nfs1'/>`), true);
    expect(a.sharedSource).toBe('netfs nfs1:/export/vms');
    const rbd = `<pool type="rbd"><name>ceph</name><source><name>rbdpool</name><host name="mon2" port="6789"/><host name="mon1" port="6789"/></source></pool>`;
    const r = parsePoolXml(rbd, false);
    expect(r).toMatchObject({ type: 'rbd', active: false, targetPath: null, sharedSource: 'rbd mon1:6789,mon2:6789:rbdpool' });
    // a local fs pool on a block device is not network storage
    expect(parsePoolXml(`<pool type='fs'><name>f</name><source><device path='/dev/sdb1'/></source><target><path>/srv</path></target></pool>`, true).sharedSource).toBeNull();
  });

  it('a volume (real vol-dumpxml): key, path, capacity in bytes, ctime with nanoseconds', () => {
    expect(parseVolumeXml(fixture('virsh-vol-dumpxml.xml'), 'fixpool')).toEqual({
      pool: 'fixpool', name: 'root.img', key: '/srv/tide-pool/root.img', path: '/srv/tide-pool/root.img', capacityBytes: 33554432, ctime: '1796155164.571536337',
    });
  });
});

const pool = (o: Partial<StoragePoolFacts> = {}): StoragePoolFacts => ({
  name: 'images', uuid: 'u', type: 'dir', active: true, targetPath: '/var/lib/libvirt/images', sharedSource: null, ...o,
});
const vol = (o: Partial<StorageVolumeFacts> = {}): StorageVolumeFacts => ({
  pool: 'images', name: 'vm1.img', key: '/var/lib/libvirt/images/vm1.img', path: '/var/lib/libvirt/images/vm1.img', capacityBytes: 1 << 30, ctime: '1700000000.123456789', ...o,
});
const FILE: DiskFacts = {
  dev: 'vda', type: 'file', device: 'disk', source: '/var/lib/libvirt/images/vm1.img', readonly: false, shareable: false,
  src: { file: '/var/lib/libvirt/images/vm1.img' },
};
const VOLUME: DiskFacts = {
  dev: 'vdb', type: 'volume', device: 'disk', source: 'images/data.img', readonly: false, shareable: false, src: { pool: 'images', volume: 'data.img' },
};

describe('judgeDisk', () => {
  const judge = (d: DiskFacts, f: Omit<DiskStorageFacts, 'dev'>) => judgeDisk(d, { dev: d.dev, ...f }, 'a', 'b');

  it('file disk: no pool on the target holds its directory → cannot tell', () => {
    expect(judge(FILE, { source: { pool: pool(), volume: vol() }, target: { pool: null } })).toEqual({
      verdict: 'unknown', why: 'no active storage pool on b holds /var/lib/libvirt/images',
    });
  });

  it('file disk: the target\'s pool holds the directory but not the file → not shared', () => {
    expect(judge(FILE, { source: { pool: pool(), volume: vol() }, target: { pool: pool(), volume: null } })).toMatchObject({
      verdict: 'not-shared', why: expect.stringContaining("b's storage pool 'images' (/var/lib/libvirt/images) has no vm1.img"),
    });
  });

  it('file disk: same size and same ctime on both → shared; a different size → a different file', () => {
    expect(judge(FILE, { source: { pool: pool(), volume: vol() }, target: { pool: pool(), volume: vol() } }).verdict).toBe('shared');
    expect(judge(FILE, { source: { pool: pool(), volume: vol() }, target: { pool: pool(), volume: vol({ capacityBytes: 2 << 30 }) } })).toMatchObject({
      verdict: 'not-shared', why: expect.stringContaining('different file'),
    });
    // same size, another ctime (a local copy, or an NFS client's cached attributes): no proof either way
    expect(judge(FILE, { source: { pool: pool(), volume: vol() }, target: { pool: pool(), volume: vol({ ctime: '1700000001.0' }) } }).verdict).toBe('unknown');
    // no source view to compare with
    expect(judge(FILE, { source: { pool: null }, target: { pool: pool(), volume: vol() } }).verdict).toBe('unknown');
  });

  it('the same network storage behind both pools → shared, even with different change times', () => {
    const nfs = pool({ type: 'netfs', sharedSource: 'netfs nfs1:/export' });
    expect(judge(FILE, { source: { pool: nfs, volume: vol() }, target: { pool: nfs, volume: vol({ ctime: null }) } })).toMatchObject({
      verdict: 'shared', why: expect.stringContaining('netfs nfs1:/export'),
    });
    const other = pool({ type: 'netfs', sharedSource: 'netfs nfs2:/export' });
    expect(judge(FILE, { source: { pool: nfs, volume: vol() }, target: { pool: other, volume: vol({ ctime: null }) } }).verdict).toBe('unknown');
  });

  it('volume disk: the target needs an active pool of that name holding the volume', () => {
    expect(judge(VOLUME, { source: { pool: pool() }, target: { pool: null } })).toEqual({ verdict: 'not-shared', why: "b has no storage pool 'images'" });
    expect(judge(VOLUME, { source: { pool: pool() }, target: { pool: pool({ active: false }) } }).why).toBe("storage pool 'images' is not active on b");
    expect(judge(VOLUME, { source: { pool: pool() }, target: { pool: pool(), volume: null } }).why).toBe("storage pool 'images' on b has no volume 'data.img'");
    const v = vol({ name: 'data.img', path: '/var/lib/libvirt/images/data.img' });
    expect(judge(VOLUME, { source: { pool: pool(), volume: v }, target: { pool: pool(), volume: v } }).verdict).toBe('shared');
  });

  it('a failed question or a dir disk → cannot tell', () => {
    expect(judge(FILE, { source: { pool: null }, target: { pool: null, error: 'connection reset' } })).toEqual({
      verdict: 'unknown', why: 'cannot ask b about its storage (connection reset)',
    });
    expect(judgeDisk({ ...FILE, type: 'dir', src: { dir: '/srv/fat' } }, { dev: 'vda', source: { pool: null }, target: { pool: pool() } }, 'a', 'b').verdict).toBe('unknown');
    expect(judgeDisk(FILE, undefined, 'a', 'b')).toEqual({ verdict: 'unknown', why: 'b was not asked about it' });
  });
});

describe('storage pre-flight check', () => {
  const base = (): PreflightFacts => ({
    vm: 'vm1', to: 'b', mode: 'live',
    source: { name: 'a', uuid: 'ua' }, unreachable: [],
    dom: { state: 'running', active: true, persistent: true, memKiB: 1024 * 1024, uuid: 'v1', jobActive: false },
    targetKnown: true,
    target: { reachable: true, uuid: 'ub', memTotalKiB: 4 * 2 ** 20, memAvailableKiB: 3 * 2 ** 20, committedKiB: 2 ** 20, domains: [] },
    cpu: { result: 'compatible', reason: 'ok' },
    localDisks: [FILE],
  });
  const storage = (f: PreflightFacts, opts = {}) => evaluatePreflight(f, opts).find((c) => c.check === 'storage')!;

  it('no storage facts → passes as "cannot tell", never silently', () => {
    const c = storage(base());
    expect(c).toMatchObject({ ok: true, verdict: 'unknown' });
    expect(c.reason).toBe("cannot tell whether the disks are on shared storage: b was not asked about its storage; libvirt's own check decides when the migration starts (use --copy-storage for local disks)");
    const u = storage({ ...base(), storage: { unavailable: 'the b driver cannot ask for storage pools' } });
    expect(u).toMatchObject({ ok: true, verdict: 'unknown', reason: expect.stringContaining('vda (/var/lib/libvirt/images/vm1.img): the b driver cannot ask for storage pools') });
    expect(storage(base(), { unsafe: true }).reason).toContain("libvirt's own check is off (--unsafe)");
  });

  it('proof that the target cannot see a disk fails with TIDE_PREFLIGHT_FAILED, also with --unsafe', () => {
    const f = { ...base(), storage: { disks: [{ dev: 'vda', source: { pool: pool(), volume: vol() }, target: { pool: pool(), volume: null } }] } };
    for (const opts of [{}, { unsafe: true }]) {
      const bad = firstFailure(evaluatePreflight(f, opts));
      expect(bad).toMatchObject({ check: 'storage', ok: false, code: 'TIDE_PREFLIGHT_FAILED' });
      expect(bad!.reason).toMatch(/^not on shared storage with b: vda \(\/var\/lib\/libvirt\/images\/vm1\.img\): b's storage pool 'images'.*; use --copy-storage$/);
    }
    // --copy-storage: the disk is copied, so the check passes with a note
    expect(storage(f, { copyStorage: true })).toMatchObject({ ok: true, reason: expect.stringContaining('copies vda') });
  });

  it('proof of sharing passes without a verdict; one unknown disk among shared ones makes it "cannot tell"', () => {
    const shared = { dev: 'vda', source: { pool: pool(), volume: vol() }, target: { pool: pool(), volume: vol() } };
    const ok = storage({ ...base(), storage: { disks: [shared] } });
    expect(ok).toEqual({ check: 'storage', ok: true, reason: expect.stringContaining('on storage shared with b: vda') });
    const two = { ...base(), localDisks: [FILE, { ...FILE, dev: 'vdc', source: '/srv/x.img', src: { file: '/srv/x.img' } }] };
    const mixed = storage({ ...two, storage: { disks: [shared, { dev: 'vdc', source: { pool: null }, target: { pool: null } }] } });
    expect(mixed).toMatchObject({ ok: true, verdict: 'unknown', reason: expect.stringContaining('vdc (/srv/x.img): no active storage pool on b holds /srv') });
  });

  it('tide migrate --dry-run shows a pass without proof as "?", not "yes"', () => {
    let out = '';
    printChecks({ out: (t) => { out += t; }, err: () => undefined, isTty: false, env: {}, cwd: '/' }, evaluatePreflight(base(), {}));
    expect(out).toMatch(/^storage\s+\?\s+cannot tell whether the disks are on shared storage/m);
    expect(out).toMatch(/^memory\s+yes\s/m);
  });

  it('offline mode: proof of absence fails (without suggesting --copy-storage); unknown says nothing checks it', () => {
    const f: PreflightFacts = { ...base(), mode: 'offline', storage: { disks: [{ dev: 'vda', source: { pool: null }, target: { pool: pool(), volume: null } }] } };
    const bad = firstFailure(evaluatePreflight(f, {}));
    expect(bad?.check).toBe('storage');
    expect(bad?.reason).not.toContain('--copy-storage');
    const u = storage({ ...base(), mode: 'offline' });
    expect(u).toMatchObject({ ok: true, verdict: 'unknown', reason: expect.stringContaining('nothing checks it before the VM starts there') });
  });
});
