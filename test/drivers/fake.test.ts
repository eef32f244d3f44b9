// The contract suite against the FakeDriver, plus the fake's own test controls (injected
// failures, clock-driven migrations, concurrency counters) that tests of upper layers rely on.
import { describe, expect, it } from 'vitest';
import { FakeDriver, ManualClock } from '../../src/drivers/fake/index.js';
import type { MigrationProgress } from '../../src/drivers/hypervisor.js';
import { expectDriverError, runDriverContract } from './contract.js';

runDriverContract('fake', async () => {
  const driver = new FakeDriver({ hosts: [{ name: 'a' }, { name: 'b' }], vms: [{ name: 'vm1', host: 'a', memMiB: 1024 }] });
  return {
    driver,
    hosts: ['a', 'b'],
    vm: 'vm1',
    teardown: () => driver.close(),
    breakHost: async (host) => {
      driver.setHostUp(host, false);
      return async () => driver.setHostUp(host, true);
    },
    createVm: async (name, host) => driver.addVm({ name, host }),
    removeVm: async (name) => driver.removeVm(name),
  };
});

describe('FakeDriver test controls', () => {
  const twoHosts = (): FakeDriver => new FakeDriver({
    hosts: [{ name: 'a', memMiB: 4096 }, { name: 'b', memMiB: 4096 }],
    vms: [{ name: 'vm1', host: 'a', memMiB: 1024 }, { name: 'vm2', host: 'a', memMiB: 1024 }],
  });

  it('records calls in order, without callbacks', async () => {
    const d = twoHosts();
    await d.listVms();
    await d.migrate('vm1', 'b', { mode: 'live', onProgress: () => {} });
    expect(d.calls.map((c) => c.method)).toEqual(['listVms', 'migrate']);
    expect(d.callsOf('migrate')[0]!.args).toEqual(['vm1', 'b', { mode: 'live' }]);
  });

  it('an injected failure fails the next matching call once, and the VM stays', async () => {
    const d = twoHosts();
    d.inject({ method: 'migrate', vm: 'vm1', code: 'TIDE_MIGRATION_FAILED', message: 'boom' });
    const e = await expectDriverError(d.migrate('vm1', 'b', { mode: 'live' }), 'TIDE_MIGRATION_FAILED');
    expect(e.message).toBe('boom');
    expect(d.vm('vm1')!.host).toBe('a');
    await d.migrate('vm2', 'b', { mode: 'live' }); // other VM unaffected
    await d.migrate('vm1', 'b', { mode: 'live' }); // consumed
    expect(d.vm('vm1')!.host).toBe('b');
  });

  it('a mid-way failure of a clock-driven migration leaves the VM running on the source', async () => {
    const clock = new ManualClock();
    const d = new FakeDriver({ hosts: [{ name: 'a' }, { name: 'b' }], vms: [{ name: 'vm1', host: 'a', memMiB: 100 }], clock, migrationMiBps: 100 });
    d.inject({ method: 'migrate', vm: 'vm1', code: 'TIDE_MIGRATION_FAILED', at: 'midway' });
    const seen: MigrationProgress[] = [];
    const p = d.migrate('vm1', 'b', { mode: 'live', onProgress: (x) => seen.push(x) });
    p.catch(() => {});
    await clock.advance(2000);
    await expectDriverError(p, 'TIDE_MIGRATION_FAILED');
    expect(seen.some((x) => x.dataProcessedBytes >= 50 * 2 ** 20)).toBe(true);
    expect(d.vm('vm1')).toMatchObject({ host: 'a', state: 'running' });
  });

  it('clock-driven: a VM dirtying faster than the link never converges without help; post-copy finishes it', async () => {
    const clock = new ManualClock();
    const d = new FakeDriver({
      hosts: [{ name: 'a' }, { name: 'b' }], clock, migrationMiBps: 100,
      vms: [{ name: 'vm1', host: 'a', memMiB: 200, dirtyMiBps: 150 }],
    });
    const plain = d.migrate('vm1', 'b', { mode: 'live', timeoutSec: 30 });
    plain.catch(() => {});
    await clock.advance(31_000);
    await expectDriverError(plain, 'TIDE_TIMEOUT');
    expect(d.vm('vm1')!.host).toBe('a');

    const pc = d.migrate('vm1', 'b', { mode: 'live', postCopyAfterIterations: 2, timeoutSec: 30 });
    await clock.advance(31_000);
    const r = await pc;
    expect(r.postCopy).toBe(true);
    expect(r.iterations).toBeGreaterThan(2);
    expect(d.vm('vm1')!.host).toBe('b');
  });

  it('clock-driven: auto-converge throttles the guest until the migration converges', async () => {
    const clock = new ManualClock();
    const d = new FakeDriver({
      hosts: [{ name: 'a' }, { name: 'b' }], clock, migrationMiBps: 100,
      vms: [{ name: 'vm1', host: 'a', memMiB: 200, dirtyMiBps: 150 }],
    });
    const p = d.migrate('vm1', 'b', { mode: 'live', autoConverge: true, timeoutSec: 120 });
    await clock.advance(121_000);
    const r = await p;
    expect(r.postCopy).toBe(false);
    expect(d.vm('vm1')!.host).toBe('b');
    expect(r.bytes!).toBeGreaterThan(200 * 2 ** 20);
  });

  it('counts concurrent migrations overall and per host', async () => {
    const clock = new ManualClock();
    const d = new FakeDriver({
      hosts: [{ name: 'a' }, { name: 'b' }, { name: 'c' }], clock, migrationMiBps: 100,
      vms: [{ name: 'vm1', host: 'a', memMiB: 100 }, { name: 'vm2', host: 'a', memMiB: 100 }],
    });
    const ps = [d.migrate('vm1', 'b', { mode: 'live' }), d.migrate('vm2', 'c', { mode: 'live' })];
    await clock.advance(5000);
    await Promise.all(ps);
    expect(d.maxConcurrent).toBe(2);
    expect(d.maxPerHost.get('a')).toBe(2);
    expect(d.maxPerHost.get('b')).toBe(1);
  });

  it('offline mode needs forceOff for a guest that ignores ACPI', async () => {
    const d = new FakeDriver({ hosts: [{ name: 'a' }, { name: 'b' }], vms: [{ name: 'vm1', host: 'a', ignoresAcpi: true }] });
    await expectDriverError(d.migrate('vm1', 'b', { mode: 'offline', shutdownTimeoutSec: 0.05 }), 'TIDE_TIMEOUT');
    expect(d.vm('vm1')).toMatchObject({ host: 'a', state: 'running' });
    const r = await d.migrate('vm1', 'b', { mode: 'offline', forceOff: true });
    expect(r.mode).toBe('offline');
    expect(d.vm('vm1')).toMatchObject({ host: 'b', state: 'running' });
  });

  it('local disks need copy-storage (or unsafe); offline mode cannot copy them', async () => {
    const d = new FakeDriver({
      hosts: [{ name: 'a' }, { name: 'b' }],
      vms: [{ name: 'vm1', host: 'a', disks: [{ dev: 'vda', path: '/var/lib/libvirt/images/vm1.img', shared: false }] }],
    });
    const e = await expectDriverError(d.migrate('vm1', 'b', { mode: 'live' }), 'TIDE_PREFLIGHT_FAILED');
    expect(e.message).toContain('shared storage');
    const off = await d.preflight('vm1', 'b', { mode: 'offline', copyStorage: true });
    expect(off.find((c) => c.check === 'storage')?.ok).toBe(false);
    await d.migrate('vm1', 'b', { mode: 'live', copyStorage: true });
    expect(d.vm('vm1')!.host).toBe('b');
  });
});
