/**
 * A live migration of a guest that keeps rewriting memory, on the real lab (TCG), with links at
 * 80 Mbit and auto-converge on (Tide's default): what the daemon's first evacuation met. In the
 * lab (QEMU 7.2) the guest's kernel usually oopses or panics on the target within seconds of the
 * switch-over (QEMU corrupts a TCG guest's memory under auto-converge; docs/drivers.md), so
 * this test does not require the guest to survive. It requires what Tide guarantees either way:
 * the VM is defined on exactly one host (the target), never active on two, and Tide's report
 * agrees with what libvirt shows: ok with the VM active on the target, or TIDE_MIGRATION_FAILED
 * saying the move completed and the guest stopped on the target, whose definition is kept.
 * Needs root and the lab: skipped with a printed reason otherwise, a failure under
 * TIDE_REQUIRE_LAB=1.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { MigrateReport } from '../../src/api/cluster.js';
import type { LabHostName } from '../../src/lab/index.js';
import { runCli } from '../helpers/cli.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, sharedLab, type TestLab } from '../helpers/lab.js';

const log = (m: string): void => { process.stderr.write(`[e2e dirty] ${m}\n`); };
const VM = 'vm1';
/** The migration's own bound (`tide migrate --timeout`), well inside the test's 300 s. */
const MIGRATION_TIMEOUT_SEC = 200;

describeLab('live migration of a memory-dirtying TCG guest at 80 Mbit: defined once, the report matches libvirt', () => {
  let lab: TestLab | undefined;
  const L = (): TestLab => lab!;

  /** Hosts that hold a definition of VM (any state), and those where it is active. */
  const where = async (): Promise<{ defined: LabHostName[]; active: LabHostName[] }> => {
    const defined: LabHostName[] = [];
    const active: LabHostName[] = [];
    for (const h of ['lab-a', 'lab-b'] as const) {
      const r = await L().virsh(h, ['domstate', VM]);
      if (r.code !== 0) continue;
      defined.push(h);
      if (!/shut off/.test(r.stdout)) active.push(h);
    }
    return { defined, active };
  };

  beforeAll(async () => {
    lab = await sharedLab({ vms: 1 });
    // a fresh boot: an earlier migration may have left the guest corrupt or shut off
    const { defined } = await where();
    expect(defined).toHaveLength(1);
    await L().virsh(defined[0]!, ['destroy', VM]);
    await L().virshOk(defined[0]!, ['start', VM]);
    const end = Date.now() + 120_000;
    for (;;) {
      try {
        await L().guestInfo(VM);
        break;
      } catch (e) {
        if (Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.unshapeLinks().catch(() => { /* best effort */ });
    await lab?.setDirty(VM, 0).catch(() => { /* the guest may be down */ });
    await lab?.down();
  }, LAB_HOOK_TIMEOUT_MS);

  it('tide migrate (auto-converge): one definition, on the target; ok ⇒ active there; failed ⇒ says the guest stopped there', async () => {
    const from = (await L().locate(VM))!;
    const to = L().otherHost(from);
    await L().setDirty(VM, 16);
    await L().shapeLinks(80);
    // (the lab's configuration turns auto-converge off since it corrupted TCG guests: this test reproduces that on purpose)
    // Bounded below the test's own timeout: on CI one run converged in 57 s, another took 300 s
    // (268 passes); a migration past its timeout is aborted and must leave the guest on its source.
    const r = await runCli(['--config', L().configFile, 'migrate', VM, '--to', to, '--auto-converge', '--timeout', String(MIGRATION_TIMEOUT_SEC), '--json']);
    await L().unshapeLinks();
    const rep = JSON.parse(r.out) as MigrateReport;
    log(`${from} → ${to}: ${r.out.trim()}`);
    const now = await where();
    log(`defined on ${now.defined.join(',')}, active on ${now.active.join(',') || 'none'}`);
    expect(now.active.length).toBeLessThanOrEqual(1);
    if (rep.error?.code === 'TIDE_TIMEOUT') {
      // aborted at the timeout, before the switch-over: the guest keeps running once, on its source
      expect(now.defined).toEqual([from]);
      expect(now.active).toEqual([from]);
      return;
    }
    expect(now.defined).toEqual([to]);
    if (rep.ok) {
      // verification saw it active on the target (the guest may still crash later: QEMU's)
      expect(rep.iterations).toBeGreaterThan(1);
    } else {
      expect(rep.error?.code, r.out).toBe('TIDE_MIGRATION_FAILED');
      expect(rep.error?.message).toContain(`was migrated to ${to}`);
      expect(rep.error?.message).toContain(`its only definition, on ${to}, is kept`);
      expect(now.active).toEqual([]);
    }
  }, 300_000);
});
