// Integration tests with a real QEMU guest (TCG, no disk) in a private libvirtd: lifecycle,
// bulk stats with typed params, node stats, events, job/migration controls, save/restore, and a
// peer-to-peer migration to an unreachable destination failing cleanly.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LibvirtConnection,
  type LibvirtError,
  VIR_CPU_COMPARE,
  VIR_DOMAIN_EVENT,
  VIR_DOMAIN_EVENT_SUSPENDED,
  VIR_DOMAIN_JOB,
  VIR_DOMAIN_STATE,
  VIR_DOMAIN_STATS,
  VIR_MIGRATE,
  VIR_MIGRATE_PARAM,
  type Domain,
} from '../../src/libvirt/index.js';
import { freePort, labGate, startLibvirtd, tinyQemuDomainXml, type LibvirtdHandle } from '../helpers/libvirtd.js';
import { rejection } from '../helpers/rejection.js';

const run = labGate('libvirt RPC client with a real QEMU guest', { qemu: true });

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(!run)('QEMU guest in a private libvirtd', () => {
  let d: LibvirtdHandle;
  let c: LibvirtConnection;
  let vm: Domain;

  beforeAll(async () => {
    d = await startLibvirtd();
    c = await LibvirtConnection.open(d.unixUri(), { callTimeoutMs: 60_000 });
    vm = await c.createXml(tinyQemuDomainXml('tide-rpc-vm1'));
  }, 120_000);
  afterAll(async () => {
    await c?.close();
    await d?.stop();
  });

  it('creates a transient domain that runs and is listed', async () => {
    expect(vm.name).toBe('tide-rpc-vm1');
    expect(vm.id).toBeGreaterThan(0);
    const listed = await c.listAllDomains();
    expect(listed).toContainEqual(vm);
    const info = await c.getDomainInfo(vm);
    expect(info.state).toBe(VIR_DOMAIN_STATE.RUNNING);
    expect(info.nrVirtCpu).toBe(1);
    expect(info.maxMemKiB).toBe(65536n);
    expect(await c.isDomainPersistent(vm)).toBe(false);
    expect(await c.getDomainXml(vm)).toContain("<domain type='qemu'");
    expect((await c.getDomainControlInfo(vm)).state).toBe(0); // VIR_DOMAIN_CONTROL_OK
  });

  it('bulk stats: typed params with cpu.time, balloon.current, state, vcpu; one call == per-VM calls', async () => {
    const all = await c.getAllDomainStats();
    const rec = all.find((r) => r.dom.uuid === vm.uuid);
    expect(rec).toBeDefined();
    const p = (rec as NonNullable<typeof rec>).params;
    expect(p['state.state']).toBe(VIR_DOMAIN_STATE.RUNNING);
    expect(typeof p['cpu.time']).toBe('bigint');
    expect(p['cpu.time'] as bigint).toBeGreaterThan(0n);
    expect(p['balloon.current']).toBe(65536n);
    expect(p['balloon.maximum']).toBe(65536n);
    expect(p['vcpu.current']).toBe(1);
    const only = await c.getAllDomainStats(VIR_DOMAIN_STATS.STATE | VIR_DOMAIN_STATS.BALLOON, 0, [vm]);
    expect(only).toHaveLength(1);
    expect(Object.keys(only[0]?.params ?? {}).some((k) => k.startsWith('cpu.'))).toBe(false);
    expect(only[0]?.params['balloon.current']).toBe(65536n);
    // cpu.time grows while the guest runs
    await until('cpu.time to grow', async () => {
      const again = await c.getAllDomainStats(VIR_DOMAIN_STATS.CPU_TOTAL, 0, [vm]);
      return (again[0]?.params['cpu.time'] as bigint) > (p['cpu.time'] as bigint);
    });
  });

  it('node info and stats (count-then-fetch conventions)', async () => {
    const info = await c.nodeGetInfo();
    expect(info.model).toBe('x86_64');
    expect(info.cpus).toBeGreaterThan(0);
    expect(info.memoryKiB).toBeGreaterThan(0n);
    const cpu = await c.nodeGetCpuStats();
    for (const k of ['user', 'kernel', 'idle']) expect(typeof cpu[k]).toBe('bigint');
    const mem = await c.nodeGetMemoryStats();
    expect(mem.total as bigint).toBeGreaterThan(mem.free as bigint);
    const free = await c.nodeGetFreeMemory();
    expect(free).toBeGreaterThan(0n);
    expect(free).toBeLessThanOrEqual((mem.total as bigint) * 1024n);
    expect((await c.nodeGetCellsFreeMemory(0, 1)).length).toBe(1);
    expect(await c.getVersion()).toBeGreaterThanOrEqual(2_000_000n); // QEMU >= 2
  });

  it('capabilities, domain capabilities, sysinfo and CPU comparison', async () => {
    const caps = await c.getCapabilities();
    expect(caps).toContain('<capabilities>');
    expect(await c.getHostUuid()).toBe(d.hostUuid);
    expect(await c.getDomainCapabilities({ virttype: 'qemu', arch: 'x86_64' })).toContain('<domainCapabilities>');
    const r = await c.compareHypervisorCpu("<cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model></cpu>", { virttype: 'qemu', arch: 'x86_64' });
    expect([VIR_CPU_COMPARE.IDENTICAL, VIR_CPU_COMPARE.SUPERSET, VIR_CPU_COMPARE.INCOMPATIBLE]).toContain(r);
    const bogus = await rejection(c.compareHypervisorCpu('<cpu><model>no-such-model</model></cpu>', { virttype: 'qemu', arch: 'x86_64' }));
    expect(bogus.origin).toBe('remote');
    // legacy host-CPU comparison: a result or a daemon-side error, never a protocol error
    try {
      expect([-1, 0, 1, 2]).toContain(await c.compareCpu("<cpu><arch>x86_64</arch><model>qemu64</model></cpu>"));
    } catch (e) {
      expect((e as LibvirtError).origin).toBe('remote');
    }
    try {
      expect(await c.getSysinfo()).toContain('<sysinfo');
    } catch (e) {
      // no SMBIOS in this VM (no /dev/mem): libvirt says so, as a remote error
      expect((e as LibvirtError).origin).toBe('remote');
    }
  });

  it('suspend/resume produce lifecycle events for the subscribed domain', async () => {
    const events: Array<[number, number]> = [];
    const sub = await c.onDomainEvent('lifecycle', (ev) => events.push([ev.event, ev.detail]), { domain: vm });
    await c.suspend(vm);
    expect((await c.getDomainState(vm)).state).toBe(VIR_DOMAIN_STATE.PAUSED);
    await c.resume(vm);
    await until('two lifecycle events', () => events.length >= 2);
    expect(events.slice(0, 2)).toEqual([
      [VIR_DOMAIN_EVENT.SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED.PAUSED],
      [VIR_DOMAIN_EVENT.RESUMED, 0],
    ]);
    await sub.off();
  });

  it('job and migration controls outside a migration', async () => {
    const js = await c.getJobStats(vm);
    expect(js.type).toBe(VIR_DOMAIN_JOB.NONE);
    expect((await c.getJobInfo(vm)).type).toBe(VIR_DOMAIN_JOB.NONE);
    await c.migrateSetMaxSpeed(vm, 123);
    expect(await c.migrateGetMaxSpeed(vm)).toBe(123n);
    await c.migrateSetMaxDowntime(vm, 450);
    expect(await c.migrateGetMaxDowntime(vm)).toBe(450n);
    const noJob = await rejection(c.abortJob(vm));
    expect(noJob.code).toBe(55); // VIR_ERR_OPERATION_INVALID: no job is active
    expect(noJob.tideCode).toBe('TIDE_VM_STATE');
    const noMig = await rejection(c.migrateStartPostCopy(vm));
    expect(noMig.tideCode).toBe('TIDE_VM_STATE');
    const noJobFlags = await rejection(c.abortJobFlags(vm, 0)); // procedure 442 exists since libvirt 8.5
    expect(noJobFlags.code).toBe(55);
  });

  it('PERFORM3_PARAMS (p2p) to an unreachable destination fails with a clean LibvirtError, VM keeps running', async () => {
    const port = await freePort();
    const flags = VIR_MIGRATE.LIVE | VIR_MIGRATE.PEER2PEER | VIR_MIGRATE.PERSIST_DEST | VIR_MIGRATE.UNDEFINE_SOURCE;
    const t0 = Date.now();
    const err = await rejection(c.migratePerform3Params(vm, `qemu+tcp://127.0.0.1:${port}/system`, {
      [VIR_MIGRATE_PARAM.URI]: 'tcp://127.0.0.1',
      [VIR_MIGRATE_PARAM.BANDWIDTH]: 10,
    }, flags, { timeoutMs: 30_000 }));
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(err.origin).toBe('remote');
    expect(err.code).toBeGreaterThan(0);
    expect(err.tideCode).toBe('TIDE_MIGRATION_FAILED');
    expect(err.procedure).toBe('DOMAIN_MIGRATE_PERFORM3_PARAMS');
    expect(err.message).toMatch(/127\.0\.0\.1|connect|refused/i);
    expect((await c.getDomainState(vm)).state).toBe(VIR_DOMAIN_STATE.RUNNING);
    // a bad parameter type never leaves the client
    const bad = await rejection(c.migratePerform3Params(vm, 'qemu+tcp://127.0.0.1/system', { bandwidth: 'fast' }, flags));
    expect(bad.tideCode).toBe('TIDE_INVALID_ARGUMENT');
  });

  it('save to a file and restore', async () => {
    const file = join(d.dir, 'lib', 'tide-rpc-vm1.save');
    await c.save(vm, file);
    expect(existsSync(file)).toBe(true);
    expect((await rejection(c.lookupDomainByName(vm.name))).tideCode).toBe('TIDE_NO_SUCH_VM'); // transient: gone
    await c.restore(file);
    vm = await c.lookupDomainByName('tide-rpc-vm1');
    expect((await c.getDomainState(vm)).state).toBe(VIR_DOMAIN_STATE.RUNNING);
  });

  it('persistent domain: define, start, shutdown request, destroy, undefine', async () => {
    const def = await c.defineXml(tinyQemuDomainXml('tide-rpc-persist', 32));
    expect(await c.isDomainPersistent(def)).toBe(true);
    expect((await c.getDomainState(def)).state).toBe(VIR_DOMAIN_STATE.SHUTOFF);
    const events: number[] = [];
    const sub = await c.onDomainEvent('lifecycle', (ev) => {
      if (ev.dom.name === 'tide-rpc-persist') events.push(ev.event);
    });
    const running = await c.createWithFlags(def);
    expect(running.id).toBeGreaterThan(0);
    await c.shutdown(running); // ACPI request; this guest has no OS to honour it
    await c.destroy(running);
    expect((await c.getDomainState(def)).state).toBe(VIR_DOMAIN_STATE.SHUTOFF);
    await c.undefine(def);
    await until('started/stopped/undefined events', () => events.includes(VIR_DOMAIN_EVENT.UNDEFINED));
    expect(events).toEqual(expect.arrayContaining([VIR_DOMAIN_EVENT.STARTED, VIR_DOMAIN_EVENT.STOPPED, VIR_DOMAIN_EVENT.UNDEFINED]));
    await sub.off();
  });

  it('destroy of the running guest', async () => {
    await c.destroy(vm);
    expect((await rejection(c.getDomainInfo(vm))).tideCode).toBe('TIDE_NO_SUCH_VM');
  });
});
