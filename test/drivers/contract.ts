/**
 * The HypervisorDriver contract suite: one set of behavioural tests every driver must pass
 * (fake, sim, libvirt, virsh). A driver's test file calls
 *
 *   runDriverContract('fake', async () => ({
 *     driver,                 // the HypervisorDriver under test
 *     hosts: ['a', 'b'],      // two distinct hosts the driver manages
 *     vm: 'vm1',              // a running, persistent VM on hosts[0]
 *     teardown: async () => { … },
 *     // optional:
 *     unsupported: { 'migrate-offline': 'why not here' },  // cases to skip, reason printed
 *     slowBandwidthMiBps: 1,  // bandwidth cap that makes migrating `vm` last ≥ 1 s (abort case)
 *     breakHost: async (host) => async () => { … },       // make host unreachable; returns the repair
 *     createVm: async (name, host) => { … },               // a running persistent VM with exactly this name
 *     removeVm: async (name) => { … },
 *     timeoutMs: 120_000,     // per case (default 60 s)
 *   }));
 *
 * `setup` runs once (beforeAll) and `teardown` once (afterAll). The suite moves, suspends,
 * stops and restarts `vm`; before every case it brings it back to hosts[0], running. Cases a
 * harness cannot support (no `breakHost`, no `createVm`, or listed in `unsupported`) are
 * skipped with a printed reason (`[skip] <driver> contract: <case>: <reason>`).
 *
 * Case names (keys of `unsupported`): inventory, sample, preflight, errors, migrate-live,
 * migrate-suspend, migrate-offline, migrate-abort, unreachable-host, lifecycle, metachar-names.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, type TestContext } from 'vitest';
import { DriverError } from '../../src/drivers/errors.js';
import type { HypervisorDriver, MigrateOptions, MigrationProgress, VmInfo } from '../../src/drivers/hypervisor.js';

export type ContractCase =
  | 'inventory' | 'sample' | 'preflight' | 'errors' | 'migrate-live' | 'migrate-suspend' | 'migrate-offline'
  | 'migrate-abort' | 'unreachable-host' | 'lifecycle' | 'metachar-names';

export interface ContractHarness {
  driver: HypervisorDriver;
  hosts: readonly [string, string];
  vm: string;
  teardown(): Promise<void>;
  unsupported?: Partial<Record<ContractCase, string>>;
  slowBandwidthMiBps?: number;
  breakHost?(host: string): Promise<() => Promise<void>>;
  createVm?(name: string, host: string): Promise<void>;
  removeVm?(name: string): Promise<void>;
  timeoutMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Expects `p` to reject with a DriverError of one of `codes`; returns it. */
export async function expectDriverError(p: Promise<unknown>, ...codes: string[]): Promise<DriverError> {
  let err: unknown = null;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected a DriverError ${codes.join('|')}`).toBeInstanceOf(DriverError);
  expect(codes).toContain((err as DriverError).code);
  return err as DriverError;
}

/** Polls `fn` until it returns true (every 250 ms, up to `ms`). */
async function until(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export function runDriverContract(name: string, setup: () => Promise<ContractHarness>): void {
  describe(`${name} driver contract`, () => {
    let h: ContractHarness | undefined;

    beforeAll(async () => {
      h = await setup();
    }, 300_000);

    afterAll(async () => {
      await h?.teardown();
    }, 300_000);

    const H = (): ContractHarness => {
      if (!h) throw new Error('contract setup failed');
      return h;
    };
    const copies = async (vm: string): Promise<VmInfo[]> => (await H().driver.listVms()).filter((v) => v.name === vm);
    /** The one VmInfo of `vm` (fails when it is listed twice or not at all). */
    const only = async (vm: string): Promise<VmInfo> => {
      const c = await copies(vm);
      expect(c.map((v) => v.host), `${vm} must be listed exactly once`).toHaveLength(1);
      return c[0]!;
    };

    /** Brings the contract VM back to hosts[0], running. */
    const home = async (): Promise<void> => {
      const { driver, vm, hosts } = H();
      let v = (await copies(vm))[0];
      if (!v) throw new Error(`${name}: contract VM ${vm} vanished`);
      if (v.host !== hosts[0]) {
        await driver.migrate(vm, hosts[0], v.state === 'shutoff' ? { mode: 'offline' } : { mode: 'live' });
        v = await only(vm);
      }
      if (v.state === 'paused') await driver.resume(vm);
      if (v.state === 'shutoff' || v.state === 'crashed') await driver.start(vm);
    };

    beforeEach(async () => {
      if (h) await home();
    }, 300_000);

    /** it() for one case: skipped with a printed reason when the harness cannot do it. */
    const c = (kase: ContractCase, title: string, fn: (ctx: TestContext) => Promise<void>, needs?: keyof ContractHarness): void => {
      it(`${kase}: ${title}`, async (ctx) => {
        const hh = H();
        const reason = hh.unsupported?.[kase] ?? (needs && hh[needs] === undefined ? `the harness has no ${needs}()` : undefined);
        if (reason !== undefined) {
          console.warn(`[skip] ${name} contract: ${kase}: ${reason}`);
          ctx.skip(reason);
        }
        await fn(ctx);
      }, h?.timeoutMs ?? 180_000);
    };

    c('inventory', 'listHosts reports both hosts up, with distinct UUIDs and capacities', async () => {
      const { driver, hosts } = H();
      const all = await driver.listHosts();
      const mine = hosts.map((n) => all.find((x) => x.name === n));
      for (const x of mine) {
        expect(x).toBeDefined();
        expect(x!.up).toBe(true);
        expect(x!.uuid).not.toBe('');
        expect(x!.cpuCores).toBeGreaterThan(0);
        expect(x!.memMiB).toBeGreaterThan(0);
      }
      expect(mine[0]!.uuid).not.toBe(mine[1]!.uuid);
    });

    c('inventory', 'listVms lists the VM once, on hosts[0], running, with its size', async () => {
      const { vm, hosts } = H();
      const v = await only(vm);
      expect(v.host).toBe(hosts[0]);
      expect(v.state).toBe('running');
      expect(v.vcpus).toBeGreaterThan(0);
      expect(v.memMiB).toBeGreaterThan(0);
      expect(v.persistent).toBe(true);
      expect(v.uuid).not.toBe('');
    });

    c('sample', 'utilisation of hosts and VMs is in range, consecutive samples move forward', async () => {
      const { driver, vm, hosts } = H();
      const first = await driver.sample();
      await sleep(300);
      const second = await driver.sample();
      for (const n of hosts) {
        const hu = second.hosts.find((x) => x.host === n);
        expect(hu, `host usage of ${n}`).toBeDefined();
        expect(hu!.cpuPct).toBeGreaterThanOrEqual(0);
        expect(hu!.cpuPct).toBeLessThanOrEqual(100);
        expect(hu!.memTotalMiB).toBeGreaterThan(0);
        expect(hu!.memUsedMiB).toBeGreaterThanOrEqual(0);
        expect(hu!.memUsedMiB).toBeLessThanOrEqual(hu!.memTotalMiB);
      }
      const u = second.vms.filter((x) => x.vm === vm);
      expect(u).toHaveLength(1);
      expect(u[0]!.host).toBe(hosts[0]);
      expect(u[0]!.cpuPct).toBeGreaterThanOrEqual(0);
      expect(u[0]!.cpuPct).toBeLessThanOrEqual(100);
      expect(u[0]!.memUsedMiB).toBeGreaterThan(0);
      for (const k of ['diskReadBytesPerSec', 'diskWriteBytesPerSec', 'netRxBytesPerSec', 'netTxBytesPerSec'] as const) expect(u[0]![k]).toBeGreaterThanOrEqual(0);
      const before = first.vms.find((x) => x.vm === vm);
      if (before) expect(u[0]!.atMs).toBeGreaterThanOrEqual(before.atMs);
    });

    c('preflight', 'a valid move passes all nine checks and changes nothing', async () => {
      const { driver, vm, hosts } = H();
      const checks = await driver.preflight(vm, hosts[1], { mode: 'live' });
      expect(checks.map((x) => x.check).sort()).toEqual(['cpu-compatible', 'memory', 'name-clash', 'not-same-host', 'storage', 'target-exists', 'target-reachable', 'vm-exists', 'vm-state']);
      for (const x of checks) expect(x.ok, `${x.check}: ${x.reason}`).toBe(true);
      expect((await only(vm)).host).toBe(hosts[0]);
    });

    c('preflight', 'unknown VM, unknown host and same host fail with a code and a reason', async () => {
      const { driver, vm, hosts } = H();
      const byCheck = async (v: string, to: string, check: string): Promise<{ ok: boolean; code?: string; reason: string }> => {
        const r = (await driver.preflight(v, to, { mode: 'live' })).find((x) => x.check === check);
        expect(r, check).toBeDefined();
        return r!;
      };
      const noVm = await byCheck('tide-contract-no-such-vm', hosts[1], 'vm-exists');
      expect(noVm.ok).toBe(false);
      expect(noVm.code).toBe('TIDE_NO_SUCH_VM');
      expect(noVm.reason).toContain('tide-contract-no-such-vm');
      const noHost = await byCheck(vm, 'tide-contract-no-such-host', 'target-exists');
      expect(noHost.ok).toBe(false);
      expect(noHost.code).toBe('TIDE_NO_SUCH_HOST');
      const same = await byCheck(vm, hosts[0], 'not-same-host');
      expect(same.ok).toBe(false);
      expect(same.code).toBe('TIDE_PREFLIGHT_FAILED');
    });

    c('errors', 'migrate rejects an unknown VM, an unknown host and its own host; the VM stays', async () => {
      const { driver, vm, hosts } = H();
      await expectDriverError(driver.migrate('tide-contract-no-such-vm', hosts[1], { mode: 'live' }), 'TIDE_NO_SUCH_VM');
      await expectDriverError(driver.migrate(vm, 'tide-contract-no-such-host', { mode: 'live' }), 'TIDE_NO_SUCH_HOST');
      const e = await expectDriverError(driver.migrate(vm, hosts[0], { mode: 'live' }), 'TIDE_PREFLIGHT_FAILED');
      expect(Array.isArray(e.detail?.checks)).toBe(true);
      const v = await only(vm);
      expect(v.host).toBe(hosts[0]);
      expect(v.state).toBe('running');
    });

    c('errors', 'lifecycle calls on an unknown VM fail with TIDE_NO_SUCH_VM, wrong states with TIDE_VM_STATE', async () => {
      const { driver, vm } = H();
      for (const call of [() => driver.start('tide-contract-no-such-vm'), () => driver.stop('tide-contract-no-such-vm', { force: true }),
        () => driver.suspend('tide-contract-no-such-vm'), () => driver.resume('tide-contract-no-such-vm')]) {
        await expectDriverError(call(), 'TIDE_NO_SUCH_VM');
      }
      await expectDriverError(driver.resume(vm), 'TIDE_VM_STATE');
      await expectDriverError(driver.start(vm), 'TIDE_VM_STATE');
      expect((await only(vm)).state).toBe('running');
    });

    c('migrate-live', 'moves the VM there and back, with progress, and it runs exactly once on the target', async () => {
      const { driver, vm, hosts } = H();
      const progress: MigrationProgress[] = [];
      const r = await driver.migrate(vm, hosts[1], { mode: 'live', onProgress: (p) => progress.push(p) });
      expect(r).toMatchObject({ vm, from: hosts[0], to: hosts[1], mode: 'live', postCopy: false });
      expect(r.totalMs).toBeGreaterThanOrEqual(0);
      if (r.downtimeMs !== null) expect(r.downtimeMs).toBeGreaterThanOrEqual(0);
      if (r.bytes !== null) expect(r.bytes).toBeGreaterThan(0);
      expect(progress.length).toBeGreaterThan(0);
      for (const p of progress) expect(p.vm).toBe(vm);
      let v = await only(vm);
      expect(v.host).toBe(hosts[1]);
      expect(v.state).toBe('running');
      expect(v.persistent).toBe(true);
      const back = await driver.migrate(vm, hosts[0], { mode: 'live', autoConverge: true });
      expect(back).toMatchObject({ from: hosts[1], to: hosts[0] });
      v = await only(vm);
      expect(v.host).toBe(hosts[0]);
      expect(v.state).toBe('running');
    });

    c('migrate-suspend', 'suspend mode moves the VM paused and resumes it on the target', async () => {
      const { driver, vm, hosts } = H();
      const r = await driver.migrate(vm, hosts[1], { mode: 'suspend' });
      expect(r).toMatchObject({ vm, from: hosts[0], to: hosts[1], mode: 'suspend' });
      expect(r.downtimeMs).not.toBeNull();
      expect(r.downtimeMs!).toBeGreaterThanOrEqual(0);
      expect(r.downtimeMs!).toBeLessThanOrEqual(r.totalMs);
      const v = await only(vm);
      expect(v.host).toBe(hosts[1]);
      expect(v.state).toBe('running');
    });

    c('migrate-offline', 'offline mode stops the VM, moves its definition and starts it on the target', async () => {
      const { driver, vm, hosts } = H();
      const o: MigrateOptions = { mode: 'offline', shutdownTimeoutSec: 2, forceOff: true };
      const r = await driver.migrate(vm, hosts[1], o);
      expect(r).toMatchObject({ vm, from: hosts[0], to: hosts[1], mode: 'offline', postCopy: false });
      expect(r.downtimeMs).not.toBeNull();
      const v = await only(vm);
      expect(v.host).toBe(hosts[1]);
      expect(v.state).toBe('running');
      expect(v.persistent).toBe(true);
      // a shut-off VM moves as a definition and stays off
      await driver.stop(vm, { force: true });
      const r2 = await driver.migrate(vm, hosts[0], o);
      expect(r2.downtimeMs).toBeNull();
      const off = await only(vm);
      expect(off.host).toBe(hosts[0]);
      expect(off.state).toBe('shutoff');
    });

    c('migrate-abort', 'an AbortSignal aborts a running migration: TIDE_ABORTED, the VM keeps running on the source', async () => {
      const { driver, vm, hosts } = H();
      const ac = new AbortController();
      let sawJob = false;
      const p = driver.migrate(vm, hosts[1], {
        mode: 'live', bandwidthMiBps: H().slowBandwidthMiBps ?? 1,
        onProgress: (x) => { if (x.phase !== 'preparing' || x.dataTotalBytes > 0) sawJob = true; },
      }, ac.signal);
      p.catch(() => { /* asserted below */ });
      const end = Date.now() + 10_000;
      while (!sawJob && Date.now() < end) await sleep(50);
      ac.abort();
      const e = await expectDriverError(p, 'TIDE_ABORTED');
      expect(e.message).toContain(vm);
      const v = await only(vm);
      expect(v.host).toBe(hosts[0]);
      expect(v.state).toBe('running');
      // an already aborted signal never starts anything
      await expectDriverError(driver.migrate(vm, hosts[1], { mode: 'live' }, AbortSignal.abort()), 'TIDE_ABORTED');
      expect((await only(vm)).host).toBe(hosts[0]);
    });

    c('migrate-abort', 'timeoutSec aborts a migration that takes too long: TIDE_TIMEOUT, the VM stays', async () => {
      const { driver, vm, hosts } = H();
      await expectDriverError(driver.migrate(vm, hosts[1], { mode: 'live', bandwidthMiBps: H().slowBandwidthMiBps ?? 1, timeoutSec: 0.5 }), 'TIDE_TIMEOUT');
      const v = await only(vm);
      expect(v.host).toBe(hosts[0]);
      expect(v.state).toBe('running');
    });

    c('unreachable-host', 'an unreachable target is reported down, refused with TIDE_HOST_UNREACHABLE, and comes back', async () => {
      const { driver, vm, hosts } = H();
      const repair = await H().breakHost!(hosts[1]);
      try {
        const down = (await driver.listHosts()).find((x) => x.name === hosts[1]);
        expect(down?.up).toBe(false);
        const reach = (await driver.preflight(vm, hosts[1], { mode: 'live' })).find((x) => x.check === 'target-reachable');
        expect(reach?.ok).toBe(false);
        await expectDriverError(driver.migrate(vm, hosts[1], { mode: 'live' }), 'TIDE_HOST_UNREACHABLE');
        const v = await only(vm);
        expect(v.host).toBe(hosts[0]);
        expect(v.state).toBe('running');
      } finally {
        await repair();
      }
      await until(`${hosts[1]} up again`, 60_000, async () => (await driver.listHosts()).find((x) => x.name === hosts[1])?.up === true);
    }, 'breakHost');

    c('lifecycle', 'suspend, resume, stop (force) and start change the state; repeats are refused', async () => {
      const { driver, vm } = H();
      await driver.suspend(vm);
      expect((await only(vm)).state).toBe('paused');
      await expectDriverError(driver.suspend(vm), 'TIDE_VM_STATE');
      await driver.resume(vm);
      expect((await only(vm)).state).toBe('running');
      await driver.stop(vm, { force: true });
      expect((await only(vm)).state).toBe('shutoff');
      await expectDriverError(driver.stop(vm, { force: true }), 'TIDE_VM_STATE');
      await expectDriverError(driver.suspend(vm), 'TIDE_VM_STATE');
      await driver.start(vm);
      expect((await only(vm)).state).toBe('running');
    });

    c('metachar-names', 'VM names with shell metacharacters are passed verbatim, never interpreted', async () => {
      const { driver, hosts } = H();
      const canary = `tide-canary-${process.pid}-${Date.now()}`;
      const nasty = `--tide;touch ${canary} $(touch ${canary}x)&|'"\`touch ${canary}y\` *`;
      await expectDriverError(driver.migrate(`${nasty}-missing`, hosts[1], { mode: 'live' }), 'TIDE_NO_SUCH_VM');
      await expectDriverError(driver.suspend(`${nasty}-missing`), 'TIDE_NO_SUCH_VM');
      await H().createVm!(nasty, hosts[0]);
      try {
        const listed = (await driver.listVms()).filter((v) => v.name === nasty);
        expect(listed).toHaveLength(1);
        const r = await driver.migrate(nasty, hosts[1], { mode: 'live' });
        expect(r.vm).toBe(nasty);
        const v = await only(nasty);
        expect(v.host).toBe(hosts[1]);
        expect(v.state).toBe('running');
        await driver.suspend(nasty);
        await driver.resume(nasty);
      } finally {
        await H().removeVm?.(nasty);
      }
      for (const dir of [process.cwd(), '/', '/tmp']) {
        for (const f of [canary, `${canary}x`, `${canary}y`]) expect(existsSync(join(dir, f)), `${dir}/${f} must not exist`).toBe(false);
      }
    }, 'createVm');
  });
}
