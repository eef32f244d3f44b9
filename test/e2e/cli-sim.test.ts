import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { splitPolicyList } from '../../src/cli/commands/simulate.js';
import { runCli } from '../helpers/cli.js';
import { planetlabDay } from '../helpers/planetlab.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('tide simulate', () => {
  it('runs the tide policy when neither --policy nor --compare is given', async () => {
    const r = await runCli(['simulate', '--scenario', 'office:hosts=3,days=1', '--json']);
    expect(r.code, r.err).toBe(0);
    const rows = r.out.trim().split('\n').map((l) => JSON.parse(l) as { policy: string });
    expect(rows.map((x) => x.policy)).toEqual(['tide']);
  });

  it('--json prints one object per run with the documented fields', async () => {
    const r = await runCli(['simulate', '--trace', planetlabDay('20110306'), '--compare', 'dvfs,npa', '--json']);
    expect(r.code).toBe(0);
    const rows = r.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((x) => x.policy)).toEqual(['dvfs', 'npa']);
    for (const row of rows) {
      for (const k of ['policy', 'hosts', 'vms', 'energyKWh', 'migrations', 'slatahPct', 'pdmPct', 'slav', 'esv', 'hostShutdowns', 'wallMs']) expect(row).toHaveProperty(k);
      expect(typeof row.slav).toBe('number');
      expect(row.esv as number).toBeCloseTo((row.energyKWh as number) * (row.slav as number), 6);
    }
    expect(rows[0]).toMatchObject({ hosts: 800, vms: 898, migrations: 0 });
    expect(rows[0]!.energyKWh).toBeCloseTo(625.53, 2);
  });

  it('prints a side-by-side table, and progress only on a terminal', async () => {
    const plain = await runCli(['simulate', '--scenario', 'office:hosts=3,days=1', '--compare', 'tide,dvfs']);
    expect(plain.code).toBe(0);
    expect(plain.out).toMatch(/policy\s+energy kWh\s+×bound\s+migrations/);
    expect(plain.out).toMatch(/^tide\s+\d+\.\d+/m);
    expect(plain.err).toBe('');
    const tty = await runCli(['simulate', '--scenario', 'office:hosts=3,days=1', '--policy', 'tide'], { tty: true });
    expect(tty.err).toMatch(/\[#+ *\] +\d+ %/);
  });

  it('--compare keeps key=value arguments with their policy', async () => {
    expect(splitPolicyList('lr-mmt:param=1.2,faithful=true, tide,thr-mmt:0.8')).toEqual(['lr-mmt:param=1.2,faithful=true', 'tide', 'thr-mmt:0.8']);
    expect(splitPolicyList('tide:targetUtil=0.8,spareHosts=1,dvfs')).toEqual(['tide:targetUtil=0.8,spareHosts=1', 'dvfs']);
    const r = await runCli(['simulate', '--scenario', 'office:hosts=3,days=1', '--accounting', 'realistic', '--compare', 'thr-mmt:param=0.8,faithful=true,thr-mmt:0.8', '--json']);
    expect(r.code).toBe(0);
    const rows = r.out.trim().split('\n').map((l) => JSON.parse(l) as { policy: string });
    expect(rows.map((x) => x.policy)).toEqual(['thr-mmt:param=0.8,faithful=true', 'thr-mmt:0.8']);
  });

  it('rejects bad arguments with exit status 2 and says what is wrong', async () => {
    expect(await runCli(['simulate', '--trace', join(tmp, 'missing'), '--policy', 'tide'])).toMatchObject({ code: 2, err: expect.stringMatching(/trace not found: .*missing/) });
    expect(await runCli(['simulate', '--scenario', 'office', '--policy', 'nope'])).toMatchObject({ code: 2, err: expect.stringMatching(/unknown policy 'nope'/) });
    expect(await runCli(['simulate', '--scenario', 'office', '--compare', ','])).toMatchObject({ code: 2, err: expect.stringMatching(/give --policy/) });
    expect(await runCli(['simulate', '--scenario', 'office', '--policy', 'tide', '--compare', 'npa'])).toMatchObject({ code: 2, err: expect.stringMatching(/either --policy or --compare/) });
    expect(await runCli(['simulate', '--scenario', 'office', '--policy', 'tide', '--accounting', 'x'])).toMatchObject({ code: 2, err: expect.stringMatching(/--accounting must be cloudsim or realistic/) });
    expect(await runCli(['simulate', '--bogus'])).toMatchObject({ code: 2, err: expect.stringMatching(/bogus/) });
    expect(await runCli(['frobnicate'])).toMatchObject({ code: 2, err: expect.stringMatching(/unknown command 'frobnicate'/) });
  });

  it('names the file and line of a malformed trace', async () => {
    writeFileSync(join(tmp, 'bad.csv'), 'vm,cpu_pct\nmail,12\nmail,1e\n');
    const r = await runCli(['simulate', '--trace', join(tmp, 'bad.csv'), '--policy', 'dvfs']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/bad\.csv:3: cpu_pct '1e' is not a number/);
  });
});

describe('tide bench plan', () => {
  it('--json prints hosts, vms, migrations, planMs and peakRssMiB', async () => {
    const r = await runCli(['bench', 'plan', '--hosts', '200', '--vms', '4000', '--json']);
    expect(r.code).toBe(0);
    const row = JSON.parse(r.out) as Record<string, number>;
    expect(row).toMatchObject({ hosts: 200, vms: 4000 });
    expect(row.migrations).toBeGreaterThan(0);
    expect(row.planMs).toBeGreaterThan(0);
    expect(row.planCpuMs).toBeGreaterThan(0);
    expect(row.peakRssMiB).toBeGreaterThan(0);
    expect((await runCli(['bench', 'plan', '--hosts', '0'])).err).toMatch(/--hosts must be an integer in 1\.\.100000 \(got '0'\)/);
  });
});

describe('tide demo', () => {
  it('runs the loop on the simulated office and reports energy against the datacenter left alone', async () => {
    const r = await runCli(['demo', '--hours', '24', '--json', '--observe-days', '0']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as Record<string, number>;
    expect(s.energyKWh).toBeLessThan(s.baselineEnergyKWh!);
    expect(s.migrations).toBeGreaterThan(0);
    const text = await runCli(['demo', '--hours', '12', '--observe-days', '0']);
    expect(text.out).toMatch(/Mon \d\d:\d\d {2}power off srv-\d/);
    expect(text.out).toMatch(/energy saved: \d+\.\d %/);
  });
});
