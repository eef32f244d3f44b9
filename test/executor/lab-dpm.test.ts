/**
 * DPM safety rules on the real lab with real power (`tide lab up --power`: per host an ipmi_sim
 * BMC reached with the real ipmitool from the lab's switch namespace; powering a host off stops
 * its libvirtd, powering it on starts it again after the boot delay). The executor uses the
 * cluster power driver built from the lab's configuration, exactly as the daemon does:
 * - a wrong BMC password fails the wake-path test: the power-off is refused, the failure is
 *   recorded, and the host stays on (libvirt still answers); the password is in no error text;
 * - the right password: the wake path is tested (once), the empty host is really powered off,
 *   and waking it succeeds only once its libvirtd answers (measured), not when the BMC says on.
 * Needs root and the lab's packages; skipped with the reason printed otherwise (a failure under
 * TIDE_REQUIRE_LAB=1).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { HostConfig } from '../../src/config/schema.js';
import type { Plan, Step } from '../../src/core/plan/types.js';
import { createDriver } from '../../src/drivers/index.js';
import type { HypervisorDriver } from '../../src/drivers/hypervisor.js';
import { createPowerDriver } from '../../src/drivers/power/index.js';
import { systemClock } from '../../src/executor/clock.js';
import { runPlan, type PlanRun } from '../../src/executor/executor.js';
import { POWER_BINARIES } from '../../src/lab/power.js';
import { openSqliteStore, type Store } from '../../src/store/store.js';
import { bmcGate } from '../helpers/bmc.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, sharedLab, type TestLab } from '../helpers/lab.js';

const BOOT_DELAY_S = 2;
const POWER_OK = bmcGate('DPM rules on the lab (tide lab up --power)', POWER_BINARIES);

const plan = (steps: Step[]): Plan => ({ policy: 'test', time: 0, steps, hosts: [], notMoved: [] });
const off = (host: string): Step => ({ id: 1, kind: 'powerOff', host, deps: [], reason: 'test', by: 'test' });
const on = (host: string): Step => ({ id: 1, kind: 'powerOn', host, deps: [], reason: 'test', by: 'test' });

describeLab('DPM rules with real IPMI power on the lab', () => {
  if (!POWER_OK) {
    it.skip('needs ipmi_sim, ipmitool and wakeonlan (the reason is printed above)', () => {});
    return;
  }
  let lab: TestLab | undefined;
  let driver: HypervisorDriver | undefined;
  let store: Store | undefined;
  let scratch = '';
  const L = (): TestLab => lab!;

  beforeAll(async () => {
    lab = await sharedLab({ vms: 1, placement: 'lab-a', power: { method: 'ipmi', bootDelaySec: BOOT_DELAY_S } });
    scratch = mkdtempSync(join(tmpdir(), 'tide-lab-dpm-'));
    driver = createDriver(lab.config());
    store = openSqliteStore(':memory:');
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    store?.close();
    await driver?.close();
    // leave both hosts on for the next user of the shared lab
    if (lab) {
      for (const h of lab.hostNames) if ((await lab.powerStatus(h)).state === 'off') await lab.powerAction(h, 'on');
      for (const h of lab.hostNames) await lab.waitHostUp(h, 60_000);
      await lab.down();
    }
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, LAB_HOOK_TIMEOUT_MS);

  const exec = (steps: Step[], hosts: readonly HostConfig[]): Promise<PlanRun> => runPlan(plan(steps), {
    hypervisor: driver!, power: createPowerDriver(hosts), clock: systemClock, limits: { maxConcurrent: 1, maxPerHost: 1 },
    migrate: { mode: 'live' }, bootTimeoutSec: BOOT_DELAY_S + 60, wakePaths: store!,
  });

  it('wrong BMC password: the wake-path test fails, the power-off is refused and recorded, lab-b stays on; no password in any text', async () => {
    const cfg = L().config();
    const password = readFileSync(L().power!.passwordFile, 'utf8').trim();
    const wrong = join(scratch, 'wrong-password');
    writeFileSync(wrong, 'wrong-lab-secret-99\n', { mode: 0o600 });
    const hosts = cfg.hosts.map((h) => (h.power.kind === 'ipmi' ? { ...h, power: { ...h.power, passwordFile: wrong } } : h));
    const r = await exec([off('lab-b')], hosts);
    const step = r.steps[0]!;
    expect(step).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
    expect(step.error!.message).toMatch(/not powering off lab-b: its wake path failed its test \(ipmi\): .*refused the credentials/);
    for (const t of [step.error!.message, store!.wakePath('lab-b')!.reason]) {
      expect(t).not.toContain(password);
      expect(t).not.toContain('wrong-lab-secret-99');
    }
    expect(store!.wakePath('lab-b')).toMatchObject({ ok: false, method: 'ipmi' });
    expect((await L().powerStatus('lab-b')).state).toBe('on');
    expect((await L().virsh('lab-b', ['hostname'], { timeoutMs: 10_000 })).code).toBe(0);
    // A different configuration (the right password file) is a different wake path: the record
    // for the wrong one does not count for it. Forget it, as `tide wake-test --forget` would.
    store!.clearWakePath('lab-b');
  }, 120_000);

  it('right password: wake path tested and recorded, empty lab-b really powered off; woken, it is back only when its libvirtd answers', async () => {
    const hosts = L().config().hosts;
    expect(await L().locate('vm1')).toBe('lab-a');
    const r1 = await exec([off('lab-b')], hosts);
    expect(r1.steps[0]!.state, JSON.stringify(r1.steps[0]!.error)).toBe('succeeded');
    expect(store!.wakePath('lab-b')).toMatchObject({ ok: true, method: 'ipmi' });
    expect((await L().powerStatus('lab-b')).state).toBe('off');
    expect((await L().virsh('lab-b', ['hostname'], { timeoutMs: 10_000 })).code).not.toBe(0);

    const t0 = performance.now();
    const r2 = await exec([on('lab-b')], hosts);
    const wakeMs = Math.round(performance.now() - t0);
    expect(r2.steps[0]!.state, JSON.stringify(r2.steps[0]!.error)).toBe('succeeded');
    // the BMC reports on at once; the step waited for the emulated boot and libvirtd's start
    expect(wakeMs).toBeGreaterThanOrEqual(BOOT_DELAY_S * 1000);
    expect((await driver!.hostDomains('lab-b'))).toEqual([]);
    process.stderr.write(`[lab dpm] powerOn lab-b until libvirt answered: ${wakeMs} ms (boot delay ${BOOT_DELAY_S} s)\n`);

    // the vm1 host (lab-a) is never powered off: it holds a running guest
    const r3 = await exec([off('lab-a')], hosts);
    expect(r3.steps[0]).toMatchObject({ state: 'failed', error: { code: 'TIDE_POWER_REFUSED' } });
    expect(r3.steps[0]!.error!.message).toMatch(/still holds vm1 \(running\)/);
    expect((await L().powerStatus('lab-a')).state).toBe('on');
  }, 300_000);
});
