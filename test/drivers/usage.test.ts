// "No sample yet" is unknown (null), never 0: the counter-based UsageTracker of the libvirt and
// virsh drivers, and the fake that upper-layer tests run on, agree on when a rate is known.
import { describe, expect, it } from 'vitest';
import type { HostCounters, VmCounters } from '../../src/drivers/common/backend.js';
import { UsageTracker, vmCountersFromStats } from '../../src/drivers/common/usage.js';
import { FakeDriver } from '../../src/drivers/fake/index.js';

const GiB_KiB = 2 ** 20;

/** One VM's counters: cpu.time (ns), 2 vCPUs, 512 MiB in use, disk/net byte counters. */
const vmc = (name: string, uuid: string, cpuNs: number, bytes: number): VmCounters => vmCountersFromStats(name, uuid, {
  'cpu.time': cpuNs, 'vcpu.current': 2, 'balloon.rss': 512 * 1024,
  'block.count': 1, 'block.0.rd.bytes': bytes, 'block.0.wr.bytes': bytes, 'net.count': 1, 'net.0.rx.bytes': bytes, 'net.0.tx.bytes': bytes,
});
const hostc = (monoMs: number, busyNs: number, totalNs: number, vms: VmCounters[]): HostCounters => ({
  atMs: 1_000_000 + monoMs, monoMs, cpuBusyNs: busyNs, cpuTotalNs: totalNs, memTotalKiB: 8 * GiB_KiB, memAvailableKiB: 6 * GiB_KiB, vms,
});

describe('UsageTracker: unknown is null, not 0', () => {
  it('the first sample of a host and a VM has null rates but a known memory level', () => {
    const t = new UsageTracker();
    const u = t.update('a', hostc(0, 5e9, 10e9, [vmc('vm1', 'u1', 7e9, 1e6)]));
    expect(u.host.cpuPct).toBeNull();
    expect(u.host.memUsedMiB).toBe(2048);
    expect(u.vms[0]).toMatchObject({
      vm: 'vm1', host: 'a', cpuPct: null, memUsedMiB: 512,
      diskReadBytesPerSec: null, diskWriteBytesPerSec: null, netRxBytesPerSec: null, netTxBytesPerSec: null,
    });
  });

  it('the second sample gives the rates over the interval', () => {
    const t = new UsageTracker();
    t.update('a', hostc(0, 0, 0, [vmc('vm1', 'u1', 0, 0)]));
    // 4 s later: 2 s of CPU over 2 vCPUs = 25 %; 4 MiB per counter = 1 MiB/s; host 40 % busy
    const u = t.update('a', hostc(4000, 4e9, 10e9, [vmc('vm1', 'u1', 2e9, 4 * 2 ** 20)]));
    expect(u.host.cpuPct).toBe(40);
    expect(u.vms[0]).toMatchObject({ cpuPct: 25, diskReadBytesPerSec: 2 ** 20, netTxBytesPerSec: 2 ** 20 });
  });

  it('a VM that migrated is unknown on its new host until it has two readings there', () => {
    const t = new UsageTracker();
    t.update('a', hostc(0, 0, 10e9, [vmc('vm1', 'u1', 0, 0)]));
    t.update('b', hostc(0, 0, 10e9, []));
    expect(t.update('a', hostc(1000, 1e9, 20e9, [vmc('vm1', 'u1', 1e9, 0)])).vms[0]!.cpuPct).toBe(50);
    // moved to b: the target's QEMU starts its counters from zero
    const a = t.update('a', hostc(2000, 2e9, 30e9, []));
    const b = t.update('b', hostc(2000, 1e9, 30e9, [vmc('vm1', 'u1', 1e8, 0)]));
    expect(a.vms).toEqual([]);
    expect(b.host.cpuPct).not.toBeNull();
    expect(b.vms[0]).toMatchObject({ host: 'b', cpuPct: null, netRxBytesPerSec: null, memUsedMiB: 512 });
    expect(t.update('b', hostc(3000, 2e9, 40e9, [vmc('vm1', 'u1', 1.1e9, 0)])).vms[0]!.cpuPct).toBe(50);
  });

  it('a counter that went backwards (VM restarted) and a host that was forgotten are unknown again', () => {
    const t = new UsageTracker();
    t.update('a', hostc(0, 0, 10e9, [vmc('vm1', 'u1', 5e9, 9e6)]));
    const u = t.update('a', hostc(1000, 1e9, 20e9, [vmc('vm1', 'u1', 1e8, 1e3)]));
    expect(u.vms[0]).toMatchObject({ cpuPct: null, diskReadBytesPerSec: null });
    t.forgetHost('a');
    const again = t.update('a', hostc(2000, 2e9, 30e9, [vmc('vm1', 'u1', 2e8, 2e3)]));
    expect(again.host.cpuPct).toBeNull();
    expect(again.vms[0]!.cpuPct).toBeNull();
  });
});

describe('FakeDriver.sample follows the same rule', () => {
  it('first sample null, then the configured values; after a migration null again on the target', async () => {
    const d = new FakeDriver({ hosts: [{ name: 'a' }, { name: 'b' }], vms: [{ name: 'vm1', host: 'a', cpuPct: 40, netRxBytesPerSec: 1000 }] });
    const first = await d.sample();
    expect(first.vms[0]).toMatchObject({ cpuPct: null, netRxBytesPerSec: null });
    expect(first.vms[0]!.memUsedMiB).toBeGreaterThan(0);
    expect(first.hosts.every((h) => h.cpuPct === null)).toBe(true);
    const second = await d.sample();
    expect(second.vms[0]).toMatchObject({ cpuPct: 40, netRxBytesPerSec: 1000 });
    expect(second.hosts.find((h) => h.host === 'a')!.cpuPct).toBe(5);
    await d.migrate('vm1', 'b', { mode: 'live' });
    const moved = await d.sample();
    expect(moved.vms[0]).toMatchObject({ host: 'b', cpuPct: null, netRxBytesPerSec: null });
    // the host's own counters see the guest at once
    expect(moved.hosts.find((h) => h.host === 'b')!.cpuPct).toBe(5);
    expect((await d.sample()).vms[0]!.cpuPct).toBe(40);
  });

  it('a host that stopped answering starts over when it is back', async () => {
    const d = new FakeDriver({ hosts: [{ name: 'a' }], vms: [{ name: 'vm1', host: 'a', cpuPct: 40 }] });
    await d.sample();
    expect((await d.sample()).vms[0]!.cpuPct).toBe(40);
    d.setHostUp('a', false);
    expect(await d.sample()).toEqual({ hosts: [], vms: [] });
    d.setHostUp('a', true);
    const back = await d.sample();
    expect(back.hosts[0]!.cpuPct).toBeNull();
    expect(back.vms[0]!.cpuPct).toBeNull();
  });
});
