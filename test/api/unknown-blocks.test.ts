// tide evacuate / place and tide migrate with unknown migrations (src/app/reconcile.ts): an
// unresolved record keeps its VM where it is and its hosts out of every plan; a migration that
// ends with TIDE_MIGRATION_UNKNOWN is recorded. Cluster API over the FakeDriver.
import { describe, expect, it } from 'vitest';
import { Cluster } from '../../src/api/cluster.js';
import { parseConfig } from '../../src/config/load.js';
import { FakeDriver, type FakeDriverOptions } from '../../src/drivers/fake/index.js';
import { openSqliteStore, type Store } from '../../src/store/store.js';

function cluster(fake: FakeDriverOptions): { c: Cluster; d: FakeDriver; store: Store } {
  const d = new FakeDriver(fake);
  const store = openSqliteStore(':memory:');
  const config = parseConfig({ hosts: fake.hosts.map((h) => ({ name: h.name, uri: `test:///${h.name}` })) });
  return { c: Cluster.open(config, { driver: d, store }), d, store };
}

const world = (): FakeDriverOptions => ({
  hosts: [{ name: 'a', memMiB: 8192 }, { name: 'b', memMiB: 8192 }, { name: 'c', memMiB: 8192 }],
  vms: [{ name: 'vm1', host: 'a', memMiB: 512 }, { name: 'vm2', host: 'a', memMiB: 512 }, { name: 'off', host: 'c', memMiB: 512, state: 'shutoff' }],
});

describe('unknown migrations in evacuate, place and migrate', () => {
  it('evacuate: the VM of an open record is not moved (migration-unknown, with why) and its other host takes nothing', async () => {
    const { c, store } = cluster(world());
    const free = await c.planEvacuation({ host: 'a', intervalMs: 0 });
    expect(free.moves.map((m) => m.vm).sort()).toEqual(['vm1', 'vm2']);
    expect(free.moves.some((m) => m.to === 'b')).toBe(true); // b is a usable target without the record
    store.recordUnknownMigration({ vm: 'vm1', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r' });
    const p = await c.planEvacuation({ host: 'a', intervalMs: 0 });
    expect(p.moves.map((m) => [m.vm, m.to])).toEqual([['vm2', 'c']]);
    expect(p.notMoved).toEqual([expect.objectContaining({ vm: 'vm1', code: 'migration-unknown', reason: expect.stringMatching(/vm1 from a to b has an unknown outcome/) })]);
  });

  it('place: never onto a host of an open record; a VM with an open record is refused', async () => {
    const { c, store } = cluster(world());
    store.recordUnknownMigration({ vm: 'vm1', from: 'a', to: 'b', planId: null, sinceMs: 0, reason: 'r' });
    const p = await c.planPlace({ vm: 'off', intervalMs: 0 });
    expect(p.to).toBe('c');
    for (const h of p.hosts.filter((x) => x.host === 'a' || x.host === 'b')) {
      expect(h.fits).toBe(false);
      expect(h.reason).toMatch(/unknown outcome/);
    }
    store.recordUnknownMigration({ vm: 'off', from: 'c', to: 'a', planId: null, sinceMs: 0, reason: 'r' });
    await expect(c.planPlace({ vm: 'off', intervalMs: 0 })).rejects.toMatchObject({ code: 'TIDE_MIGRATION_UNKNOWN' });
  });

  it('migrate: a migration that ends with TIDE_MIGRATION_UNKNOWN is recorded in the store (others are not)', async () => {
    const { c, d, store } = cluster(world());
    d.inject({ method: 'migrate', vm: 'vm2', code: 'TIDE_MIGRATION_FAILED' });
    expect((await c.migrate({ vm: 'vm2', to: 'b' })).error?.code).toBe('TIDE_MIGRATION_FAILED');
    expect(store.unknownMigrations()).toEqual([]);
    d.inject({ method: 'migrate', vm: 'vm1', code: 'TIDE_MIGRATION_UNKNOWN', message: 'b does not answer' });
    const r = await c.migrate({ vm: 'vm1', to: 'b' });
    expect(r.error?.code).toBe('TIDE_MIGRATION_UNKNOWN');
    expect(store.unknownMigrations()).toEqual([expect.objectContaining({ vm: 'vm1', from: 'a', to: 'b', status: 'open' })]);
  });
});
