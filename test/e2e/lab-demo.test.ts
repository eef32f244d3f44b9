/**
 * `tide lab demo --json` end to end on the lab with IPMI power (`tide lab up --power`), through
 * the real CLI in-process: an office day compressed to 5 minutes (the story, Mon 16:00 → Tue
 * 09:00, about 3.5 min), real guests with their load generator, real live migrations, hosts
 * powered off and woken through ipmitool against the lab's ipmi_sim BMCs. Checked: no probe
 * request to any guest failed, no guest lost or running twice (virsh on both hosts, not Tide),
 * at least one host powered off and one woken by Tide, the evening consolidation and the
 * morning spread in the timeline, and the figures `tide demo --json` prints.
 * Needs root and the lab: skipped with a printed reason otherwise, a failure under
 * TIDE_REQUIRE_LAB=1.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LabDemoSummary } from '../../src/api/lab-demo.js';
import { Lab } from '../../src/lab/index.js';
import { timelineFigures } from '../../src/sim/timeline.js';
import { runCli } from '../helpers/cli.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, sharedLab, type TestLab } from '../helpers/lab.js';

const log = (m: string): void => { process.stderr.write(`[e2e] ${m}\n`); };
const H = 3600;

describeLab('tide lab demo', () => {
  let lab: TestLab | undefined;

  beforeAll(async () => {
    lab = await sharedLab({ vms: 4, power: { method: 'ipmi' } });
    // Guests booted from an image older than the load generator: recreate (we hold the lease).
    const ok = await lab.httpGet(`http://${lab.vm('vm1').ip}/cgi-bin/load?pct=0`, 10).then(() => true, () => false);
    if (!ok) {
      log('the lab guests have no /cgi-bin/load: recreating the lab');
      await Lab.up({ dir: lab.dir, vms: 4, power: { method: 'ipmi' }, recreate: true, log });
    }
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.down();
  }, LAB_HOOK_TIMEOUT_MS);

  it('a compressed office day: consolidation and power-off in the evening, wake and spread in the morning, no request lost', async () => {
    const t0 = performance.now();
    const r = await runCli(['lab', 'demo', '--json', '--minutes', '5', '--dir', lab!.dir]);
    const wallSec = Math.round((performance.now() - t0) / 1000);
    if (r.code !== 0) log(`rc ${r.code}; stderr: ${r.err.slice(-2000)}`);
    const s = JSON.parse(r.out) as LabDemoSummary;
    log(`lab demo in ${wallSec} s: ${JSON.stringify({ ...s, timeline: undefined })}`);
    for (const e of s.timeline) log(`  ${e.t} ${e.kind} ${e.vm ?? e.host} ${e.from ? `${e.from}→${e.to}` : ''} — ${e.reason}`);
    expect(r.code).toBe(0);
    // The service never stopped, nothing was lost or duplicated, nothing failed.
    expect(s.probeSent).toBeGreaterThan(1000);
    expect(s.probeFailed).toBe(0);
    expect(s.vmsLost).toBe(0);
    expect(s.failedSteps).toBe(0);
    // Real power through IPMI, both ways, by Tide.
    expect(s.powerMethod).toBe('ipmi');
    expect(s.hostsPoweredOff).toBeGreaterThanOrEqual(1);
    expect(s.hostsWoken).toBeGreaterThanOrEqual(1);
    // The evening consolidation (in the 18:00–07:00 window) and the morning spread (after 07:00).
    expect(s.consolidatedAtSec).not.toBeNull();
    expect(s.spreadAtSec).not.toBeNull();
    const hourOf = (t: number): number => (t % 86_400) / H;
    expect(hourOf(s.consolidatedAtSec!) >= 18 || hourOf(s.consolidatedAtSec!) < 7).toBe(true);
    expect(s.spreadAtSec!).toBeGreaterThan(24 * H + 7 * H);
    // The figures of `tide demo --json`, consistent with the timeline.
    expect(s.timeline.length).toBe(s.migrations + s.powerOns + s.powerOffs);
    const f = timelineFigures(s.timeline);
    expect(s.maxMovesPerVmPerDay).toBe(f.maxMovesPerVmPerDay);
    expect(s.shortestOffSec).toBe(f.shortestOffSec);
    expect(s.lowerBoundKWh).toBeGreaterThan(0);
    expect(s.lowerBoundKWh).toBeLessThanOrEqual(s.energyKWh);
    expect(s.energyKWh).toBeLessThan(s.alwaysOnKWh);
    // real guests can saturate the machine (three at full load on one host): counted, not zero by construction
    expect(Number.isInteger(s.saturatedHostIntervals)).toBe(true);
    expect(s.saturatedHostIntervals).toBeLessThan(s.rounds * s.hosts);
    expect(s.rounds).toBeGreaterThan(50);
  }, 10 * 60_000);
});
