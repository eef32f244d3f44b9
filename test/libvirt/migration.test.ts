// Integration test of managed peer-to-peer live migration between two private libvirtds on this
// machine (distinct host UUIDs, migration over 127.0.0.1): progress/completion events, job stats,
// and aborting a migration. The fuller lab (two network namespaces, a guest with a real OS) is
// exercised elsewhere; this checks the client's PERFORM3_PARAMS encoding and event decoding.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LibvirtConnection,
  LibvirtError,
  VIR_DOMAIN_EVENT,
  VIR_DOMAIN_EVENT_STOPPED,
  VIR_DOMAIN_JOB,
  VIR_DOMAIN_JOB_STATS,
  VIR_DOMAIN_STATE,
  VIR_MIGRATE,
  VIR_MIGRATE_PARAM,
  type TypedParams,
} from '../../src/libvirt/index.js';
import { labGate, startLibvirtd, tinyQemuDomainXml, type LibvirtdHandle } from '../helpers/libvirtd.js';

const run = labGate('libvirt RPC client: live migration between two private libvirtds', { qemu: true });

describe.skipIf(!run)('P2P live migration between two private daemons', () => {
  let a: LibvirtdHandle;
  let b: LibvirtdHandle;
  let ca: LibvirtConnection;
  let cb: LibvirtConnection;

  beforeAll(async () => {
    // allSettled: if one daemon fails to start, the other is still stopped in afterAll
    const [ra, rb] = await Promise.allSettled([startLibvirtd(), startLibvirtd()]);
    if (ra.status === 'fulfilled') a = ra.value;
    if (rb.status === 'fulfilled') b = rb.value;
    if (ra.status === 'rejected') throw ra.reason;
    if (rb.status === 'rejected') throw rb.reason;
    [ca, cb] = await Promise.all([LibvirtConnection.open(a.unixUri()), LibvirtConnection.open(b.unixUri())]);
  }, 120_000);
  afterAll(async () => {
    await ca?.close();
    await cb?.close();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  const flags = VIR_MIGRATE.LIVE | VIR_MIGRATE.PEER2PEER | VIR_MIGRATE.PERSIST_DEST | VIR_MIGRATE.UNDEFINE_SOURCE;

  it('migrates a running guest A -> B with progress (job stats, iteration events), completion event and STOPPED/MIGRATED', async () => {
    expect(await ca.getHostUuid()).not.toBe(await cb.getHostUuid());
    const vm = await ca.createXml(tinyQemuDomainXml('tide-mig-1'));
    const completed: TypedParams[] = [];
    const lifecycle: Array<[number, number]> = [];
    const s1 = await ca.onDomainEvent('job-completed', (ev) => completed.push(ev.params), { domain: vm });
    const s2 = await ca.onDomainEvent('lifecycle', (ev) => lifecycle.push([ev.event, ev.detail]), { domain: vm });
    const iterations: number[] = [];
    const s3 = await ca.onDomainEvent('migration-iteration', (ev) => iterations.push(ev.iteration), { domain: vm });
    const t0 = Date.now();
    const migration = ca.migratePerform3Params(vm, b.unixUri(), {
      [VIR_MIGRATE_PARAM.URI]: 'tcp://127.0.0.1',
      [VIR_MIGRATE_PARAM.LISTEN_ADDRESS]: '127.0.0.1', // the destination QEMU listens on loopback only
      [VIR_MIGRATE_PARAM.BANDWIDTH]: 2, // MiB/s: slow enough to watch progress
    }, flags, { timeoutMs: 90_000 });
    let finished = false;
    void migration.then(() => (finished = true), () => (finished = true));
    // progress polling on the same connection while PERFORM3_PARAMS is in flight
    const samples: Array<{ type: number; operation: unknown }> = [];
    while (!finished) {
      try {
        const js = await ca.getJobStats(vm, 0, { timeoutMs: 5000 });
        samples.push({ type: js.type, operation: js.params.operation });
      } catch {
        // the domain leaves the source at the end: "domain is not running"
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await migration;
    const wallMs = Date.now() - t0;
    expect(samples).toContainEqual({ type: VIR_DOMAIN_JOB.UNBOUNDED, operation: 5 }); // VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT
    // on B: running and persistent; on A: gone
    const onB = await cb.lookupDomainByName('tide-mig-1');
    expect(onB.uuid).toBe(vm.uuid);
    expect((await cb.getDomainState(onB)).state).toBe(VIR_DOMAIN_STATE.RUNNING);
    expect(await cb.isDomainPersistent(onB)).toBe(true);
    expect((await ca.listAllDomains()).map((d) => d.name)).not.toContain('tide-mig-1');
    const end = Date.now() + 5000;
    while ((completed.length === 0 || !lifecycle.some(([e]) => e === VIR_DOMAIN_EVENT.STOPPED)) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(lifecycle).toContainEqual([VIR_DOMAIN_EVENT.STOPPED, VIR_DOMAIN_EVENT_STOPPED.MIGRATED]);
    expect(completed).toHaveLength(1);
    const stats = completed[0] as TypedParams;
    expect(typeof stats.time_elapsed).toBe('bigint');
    expect(Number(stats.time_elapsed)).toBeGreaterThan(0);
    expect(Number(stats.time_elapsed)).toBeLessThanOrEqual(wallMs + 1000);
    expect(typeof stats.data_processed).toBe('bigint');
    expect(stats.data_remaining).toBe(0n);
    // the destination keeps the completed job's statistics
    const js = await cb.getJobStats(onB, VIR_DOMAIN_JOB_STATS.COMPLETED);
    expect(js.type).toBe(VIR_DOMAIN_JOB.COMPLETED);
    expect(iterations.length).toBeGreaterThanOrEqual(1);
    expect(iterations).toEqual([...iterations].sort((x, y) => x - y));
    await s1.off();
    await s2.off();
    await s3.off();
    await cb.destroy(onB);
    await cb.undefine(onB);
  });

  it('abortJob during a migration makes PERFORM3_PARAMS reject with TIDE_ABORTED; the guest stays on A', async () => {
    const vm = await ca.createXml(tinyQemuDomainXml('tide-mig-2'));
    const migration = ca.migratePerform3Params(vm, b.unixUri(), {
      [VIR_MIGRATE_PARAM.URI]: 'tcp://127.0.0.1',
      [VIR_MIGRATE_PARAM.LISTEN_ADDRESS]: '127.0.0.1',
      [VIR_MIGRATE_PARAM.BANDWIDTH]: 1,
    }, flags, { timeoutMs: 90_000 });
    const outcome = migration.then(() => null, (e: unknown) => e);
    // wait until the job is visible, then abort it
    let jobSeen = false;
    const end = Date.now() + 20_000;
    while (!jobSeen && Date.now() < end) {
      const js = await ca.getJobStats(vm, 0, { timeoutMs: 5000 });
      jobSeen = js.type !== VIR_DOMAIN_JOB.NONE;
      if (!jobSeen) await new Promise((r) => setTimeout(r, 10));
    }
    expect(jobSeen).toBe(true);
    await ca.abortJob(vm);
    const err = await outcome;
    // at 1 MiB/s the destination is still being prepared when the abort lands
    expect(err).toBeInstanceOf(LibvirtError);
    const le = err as LibvirtError;
    expect(le.code).toBe(78); // VIR_ERR_OPERATION_ABORTED
    expect(le.tideCode).toBe('TIDE_ABORTED');
    expect((await ca.getDomainState(vm)).state).toBe(VIR_DOMAIN_STATE.RUNNING);
    expect((await cb.listAllDomains()).map((d) => d.name)).not.toContain('tide-mig-2');
    await ca.destroy(vm);
  });
});
