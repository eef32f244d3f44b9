/**
 * `tide wake-test` in-process against a real BMC (ipmi_sim on 127.0.0.1, test/helpers/bmc.ts):
 * a wrong password fails (exit 1, recorded, the password in no output), the fixed password
 * passes and replaces the record (exit 0), --list prints them, --forget deletes them; a host
 * without a power method fails. Skips with a printed reason without ipmi_sim/ipmitool (fails
 * under TIDE_REQUIRE_LAB=1).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/store.js';
import { bmcGate, startBmc, type Bmc } from '../helpers/bmc.js';
import { runCli } from '../helpers/cli.js';

const RUN = bmcGate('tide wake-test against ipmi_sim');

describe.runIf(RUN)('tide wake-test (real BMC)', () => {
  let bmc: Bmc;
  let tmp: string;
  let cfg: string;
  let pwFile: string;
  let storePath: string;
  beforeAll(async () => {
    bmc = await startBmc({ initial: 'on' });
    tmp = mkdtempSync(join(tmpdir(), 'tide-wake-test-'));
    pwFile = join(tmp, 'bmc-pw');
    storePath = join(tmp, 'tide.sqlite');
    cfg = join(tmp, 'tide.json');
    const { kind: _k, ...ipmi } = bmc.config({ passwordFile: pwFile, timeoutSec: 10 });
    writeFileSync(cfg, JSON.stringify({
      hosts: [{ name: 'srv1', uri: 'test:///default', power: { kind: 'ipmi', ...ipmi } }, { name: 'srv2', uri: 'test:///default' }],
      store: { path: storePath },
    }));
  });
  afterAll(async () => {
    await bmc?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  const records = () => {
    const s = openSqliteStore(storePath);
    try {
      return s.wakePaths();
    } finally {
      s.close();
    }
  };

  it('wrong password → FAILED, exit 1, recorded; right password → ok, exit 0, replaces it; --list; --forget', async () => {
    writeFileSync(pwFile, 'wrong-secret-17\n', { mode: 0o600 });
    const r1 = await runCli(['--config', cfg, 'wake-test', 'srv1']);
    expect(r1.code, r1.err).toBe(1);
    expect(r1.out).toMatch(/^srv1: FAILED \(ipmi, .*\) — .*refused the credentials of user/);
    for (const t of [r1.out, r1.err]) {
      expect(t).not.toContain('wrong-secret-17');
      expect(t).not.toContain(bmc.password);
    }
    expect(records()).toMatchObject([{ host: 'srv1', ok: false, method: 'ipmi' }]);

    writeFileSync(pwFile, `${bmc.password}\n`, { mode: 0o600 });
    const r2 = await runCli(['--config', cfg, 'wake-test', 'srv1', '--json']);
    expect(r2.code, r2.err).toBe(0);
    const j = JSON.parse(r2.out) as { wakePaths: { host: string; ok: boolean; reason: string }[] };
    expect(j.wakePaths).toMatchObject([{ host: 'srv1', ok: true }]);
    expect(j.wakePaths[0]!.reason).toMatch(/answered chassis power status \(on\)/);
    expect(r2.out).not.toContain(bmc.password);
    expect(records()).toMatchObject([{ host: 'srv1', ok: true }]);

    // --all: srv2 has no power method → fails, exit 1; both recorded
    const r3 = await runCli(['--config', cfg, 'wake-test', '--all']);
    expect(r3.code).toBe(1);
    expect(r3.out).toMatch(/^srv1: ok .*\nsrv2: FAILED \(none, .*\) — srv2 has no power method/);
    const list = await runCli(['--config', cfg, 'wake-test', '--list']);
    expect(list.code).toBe(0);
    expect(list.out.trim().split('\n')).toHaveLength(2);

    const f = await runCli(['--config', cfg, 'wake-test', '--forget', 'srv2']);
    expect(f.code).toBe(0);
    expect(f.out).toMatch(/forgot the wake-path test of srv2/);
    expect(records().map((r) => r.host)).toEqual(['srv1']);
  });
});
