/**
 * Hosts Tide cannot power (power.kind 'none'; ssh: off but never on): the controller marks
 * them (Host.powerOffRefused / Host.wakeRefused from PowerDriver.canPower), so the planner
 * consolidates VMs but never proposes to power them off, and the plan ends 'done' instead of
 * 'failed' on the executor's refusal.
 */
import { describe, expect, it } from 'vitest';
import type { PowerConfig } from '../../src/config/schema.js';
import { ClusterPowerDriver } from '../../src/drivers/power/cluster.js';
import { officeScenario } from '../../src/sim/office.js';
import { simDaemon } from './helpers.js';

function powerFor(kind: (id: string, i: number) => PowerConfig) {
  const hosts = officeScenario({ hosts: 4, days: 2 }).hosts.map((h, i) => ({ name: h.id, power: kind(h.id, i), bootSec: 240 }));
  return new ClusterPowerDriver(hosts);
}

describe('hosts without a power method', () => {
  it('the sim power driver (no canPower): the same round powers hosts off (the baseline this test relies on)', async () => {
    const d = simDaemon('automatic');
    const r = await d.round();
    expect(r.tick!.plan.steps.some((s) => s.kind === 'powerOff')).toBe(true);
  });

  it("power.kind none: the round consolidates, proposes no powerOff, the plan ends 'done', the verdict says why", async () => {
    const d = simDaemon('automatic', { deps: { power: powerFor(() => ({ kind: 'none' })) } });
    const before = d.driver.placement();
    const r = await d.round();
    expect(r.result).toBe('ok');
    const plan = r.tick!.plan;
    expect(plan.steps.some((s) => s.kind === 'migrate')).toBe(true);
    expect(plan.steps.filter((s) => s.kind === 'powerOff' || s.kind === 'powerOn')).toEqual([]);
    expect(r.tick!.run!.failed).toBe(0);
    expect(d.store.getPlan(r.planId!)!.status).toBe('done');
    expect(d.driver.placement()).not.toEqual(before);
    for (const h of r.tick!.snapshot.hosts) expect(h.powerOffRefused).toBe('it cannot be powered off: no power method configured (power.kind none)');
    const kept = plan.hosts.filter((v) => /power\.kind none/.test(v.reason));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept[0]!.reason).toContain('not powered off because it cannot be powered off: no power method configured (power.kind none)');
  });

  it('canPower: none neither, ssh off but not on (so never planned off), wol without off on only, ipmi both', () => {
    const p = powerFor((_id, i) => [
      { kind: 'none' } as const,
      { kind: 'ssh', target: 'root@192.0.2.1' } as unknown as PowerConfig,
      { kind: 'wol', mac: '52:54:00:00:00:01', broadcast: '192.0.2.255', port: 9, statusPort: 22 } as unknown as PowerConfig,
      { kind: 'ipmi', address: '192.0.2.9', port: 623, user: 'u', passwordEnv: 'X', interface: 'lanplus', off: 'soft' } as unknown as PowerConfig,
    ][i]!);
    const [a, b, c, e] = p.hosts();
    expect(p.canPower(a!)).toMatchObject({ off: false, on: false });
    expect(p.canPower(b!)).toMatchObject({ off: true, on: false });
    expect(p.canPower(c!)).toMatchObject({ off: false, on: true });
    expect(p.canPower(e!)).toEqual({ off: true, on: true });
    expect(p.canPower('nope')).toMatchObject({ off: false, on: false });
  });
});
