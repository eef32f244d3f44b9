/**
 * The lab's fault-injection helpers, exercised the way e2e tests of Tide will use them:
 * an extra guest dirtying memory, a shaped link so the migration lasts long enough, then the
 * destination libvirtd killed mid-migration, and the destination's link cut mid-migration.
 * In both cases the guest must keep running (and serving) on the source.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { processesInNamespaces } from '../../src/lab/proc.js';
import type { LabHostName } from '../../src/lab/index.js';
import type { RunningProbe } from '../../src/probe/index.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, migrate, sharedLab, type MigrateResult, type TestLab } from '../helpers/lab.js';

const VM = 'fault1';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** QEMU processes running in a lab host's network namespace. */
const qemusOn = (netns: string): number => processesInNamespaces([netns]).filter((p) => p.kind === 'qemu').length;

/** Waits until `cond` holds (polling every 200 ms) or fails after `ms`. */
async function eventually(what: string, ms: number, cond: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(200);
  }
  throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
}

describeLab('lab fault injection', () => {
  let lab: TestLab | undefined;

  beforeAll(async () => {
    lab = await sharedLab({ vms: 0 });
    // a reused lab (TIDE_LAB_KEEP=1) may still have the guest from an earlier run
    if (!lab.vms.some((v) => v.name === VM)) await lab.bootGuest({ name: VM, host: 'lab-a', memMiB: 160 });
    else await lab.setDirty(VM, 0);
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.down();
  }, LAB_HOOK_TIMEOUT_MS);

  // A failed test must not leave a (non-converging) migration or a fault behind for the next.
  afterEach(async () => {
    for (const h of lab?.hostNames ?? []) await lab!.virsh(h, ['domjobabort', VM]);
    await lab?.resetFaults();
  }, 60_000);

  /** Starts a migration of VM to `to` on a 40 Mbit/s link with 24 MiB being dirtied. */
  async function slowMigration(to: LabHostName): Promise<{ probe: RunningProbe; mig: Promise<MigrateResult> }> {
    const info = await lab!.setDirty(VM, 24);
    expect(info.dirty_mib).toBe('24');
    await lab!.shapeLinks(40);
    const probe = await lab!.probe(VM);
    await sleep(300);
    return { probe, mig: migrate(lab!, VM, to) };
  }

  it('survives the destination libvirtd being killed mid-migration', async () => {
    const from = (await lab!.locate(VM))!;
    const to = lab!.otherHost(from);
    const { probe, mig } = await slowMigration(to);
    await lab!.waitForMigrationData(from, VM, 2); // RAM is being copied
    expect(await lab!.locate(VM)).toBe(from);
    const killed = await lab!.killLibvirtd(to);
    expect(killed).not.toBeNull();
    const r = await mig;
    const rep = await probe.stop();
    process.stderr.write(`[lab] kill-dest: virsh rc ${r.code} after ${r.wallMs} ms: ${r.stderr}; probe failed ${rep.failed}, max gap ${rep.maxGapMs} ms\n`);
    expect(r.code).not.toBe(0);
    expect(await lab!.locate(VM)).toBe(from);
    expect(await lab!.virshOk(from, ['domstate', VM])).toBe('running');
    expect(rep.failed).toBe(0);
    expect(rep.sameBoot).toBe(true);

    await lab!.startLibvirtd(to);
    // (an inactive persistent definition may exist there: the guest may have lived there before)
    await eventually(`no leftover incoming domain on ${to}`, 15_000, async () =>
      !(await lab!.virshOk(to, ['list', '--name'])).split('\n').includes(VM));
    // the destination QEMU that was waiting for the stream must not linger as an orphan
    await eventually(`no QEMU left on ${to}`, 15_000, async () => qemusOn(lab!.host(to).netns) === 0);
    await lab!.unshapeLinks();
  }, 120_000);

  it('survives the destination link being cut mid-migration', async () => {
    const from = (await lab!.locate(VM))!;
    const to = lab!.otherHost(from);
    const { probe, mig } = await slowMigration(to);
    await lab!.waitForMigrationData(from, VM, 2);
    await lab!.cutLink(to);
    const r = await mig; // fails once libvirt's keepalive gives up on the peer (~8 s)
    await lab!.restoreLink(to);
    const rep = await probe.stop();
    process.stderr.write(`[lab] cut-link: virsh rc ${r.code} after ${r.wallMs} ms: ${r.stderr}; probe failed ${rep.failed}, max gap ${rep.maxGapMs} ms\n`);
    expect(r.code).not.toBe(0);
    expect(await lab!.locate(VM)).toBe(from);
    expect(rep.failed).toBe(0);
    expect(rep.sameBoot).toBe(true);
    await eventually(`no leftover incoming domain on ${to}`, 30_000, async () =>
      !(await lab!.virshOk(to, ['list', '--name'])).split('\n').includes(VM));
    await eventually(`no QEMU left on ${to}`, 30_000, async () => qemusOn(lab!.host(to).netns) === 0);

    // after the faults, a normal migration (link unshaped, dirtier stopped) works
    await lab!.unshapeLinks();
    await lab!.setDirty(VM, 0);
    const ok = await migrate(lab!, VM, to);
    expect(ok.code, ok.stderr).toBe(0);
    expect(await lab!.locate(VM)).toBe(to);
  }, 180_000);
});
