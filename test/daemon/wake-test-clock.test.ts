/**
 * `tide wake-test HOST` stamps its records with the daemon's Clock (injectable:
 * createWakeTestCommand({ clock })), not Date.now: on a VirtualClock the record's testedMs is
 * the virtual time at which the (30 virtual-second) test ended, and the daemon's controller on
 * the same clock and store refuses to wake the host for exactly wakeRetrySec after it — then
 * plans with it again. Stamped with Date.now (~1.8e12 ms) the refusal would outlast any virtual
 * window.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { createWakeTestCommand, type WakeTester } from '../../src/cli/commands/wake-test.js';
import type { Clock } from '../../src/core/clock.js';
import { openSqliteStore } from '../../src/store/store.js';
import { simDaemon } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-wake-test-clock-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

it('wake-test records carry the injected clock\'s time, and the controller\'s retry window runs on it', async () => {
  const dir = mkdtempSync(join(tmp, 'c-'));
  const cfg = join(dir, 'tide.yaml');
  writeFileSync(cfg, `wakeRetrySec: 3600
hosts:
${['srv-1', 'srv-2', 'srv-3', 'srv-4'].map((h) => `  - { name: ${h}, uri: "qemu:///system" }`).join('\n')}
`);
  const store = openSqliteStore(join(dir, '.tide/tide.sqlite'));
  const d = simDaemon('recommend', { store, settings: { wakeRetrySec: 3600 } });
  const { clock, driver } = d;
  await clock.advance(5_000_000);
  // srv-4 emptied and off (the SimDriver's power)
  for (const v of await driver.hostDomains('srv-4')) driver.removeVm(v.name);
  await clock.drive(driver.powerOff('srv-4'));

  // A BMC whose test takes 30 s on the clock it is given, and fails.
  const seen: Clock[] = [];
  const power = (_config: unknown, c: Clock): WakeTester => {
    seen.push(c);
    return {
      wakeTest: async () => {
        await c.sleep(30_000);
        return { ok: false, method: 'ipmi', reason: 'the BMC did not answer' };
      },
      wakePathKey: () => null, // the SimDriver's key (it has none)
    };
  };
  let out = '';
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (out += t), isTty: false, env: process.env, cwd: dir };
  const cmd = createWakeTestCommand({ clock, power });
  const t0 = clock.now();
  expect(await clock.drive(cmd.run(['--config', cfg, '--json', 'srv-4'], io))).toBe(1);
  expect(seen).toEqual([clock]);
  const rec = store.wakePath('srv-4')!;
  expect(rec).toMatchObject({ host: 'srv-4', ok: false, testedMs: t0 + 30_000 });
  expect((JSON.parse(out) as { wakePaths: { testedMs: number }[] }).wakePaths[0]!.testedMs).toBe(t0 + 30_000);

  const refused = async (): Promise<string | undefined> =>
    (await clock.drive(d.daemon.controller.collect({ record: false }))).hosts.find((h) => h.id === 'srv-4')!.wakeRefused;
  expect(await refused()).toMatch(/its wake failed at .*the BMC did not answer/);
  await clock.advance(rec.testedMs + 3600_000 - 1000 - clock.now()); // 1 s before the window ends
  expect(await refused()).toBeDefined();
  await clock.advance(1000);
  expect(await refused()).toBeUndefined();
  store.close();
});
