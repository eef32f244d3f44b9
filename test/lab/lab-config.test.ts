/**
 * The configuration `tide lab up` writes (src/lab/lab.ts labConfigInput; no root, no lab):
 * migrations without auto-converge (under TCG it corrupted lab guests' memory after the
 * switch-over; docs/drivers.md, "Auto-converge under TCG") — with and without the power add-on
 * and shared disks — and it validates against the schema. test/e2e/lab-crash.test.ts checks the
 * file a real `lab up` wrote.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { labConfigInput } from '../../src/lab/lab.js';
import { labLayout } from '../../src/lab/layout.js';

const layout = labLayout('/tmp/tide-lab');
const vm = (name: string, shared: boolean) => ({ name, probe: `http://10.77.0.10/`, ...(shared ? { disk: { mode: 'shared' } } : {}) }) as never;

describe('lab config', () => {
  for (const [label, state] of [
    ['plain', { vms: [vm('vm1', false)], power: null }],
    ['shared disks', { vms: [vm('vm1', true)], power: null }],
    ['power (ipmi)', { vms: [vm('vm1', false)], power: { method: 'ipmi', bootDelayMs: 3000, user: 'admin', passwordFile: '/tmp/tide-lab/power/bmc-password' } }],
  ] as const) {
    it(`${label}: migration.autoConverge is false, and the config validates`, () => {
      const input = labConfigInput(layout, state as never);
      expect(input.migration?.autoConverge).toBe(false);
      const cfg = parseConfig(input, '/tmp/tide-lab/tide.json');
      expect(cfg.migration.autoConverge).toBe(false);
      expect(cfg.migration.unsafe).toBe(label === 'shared disks');
      expect(cfg.hosts.map((h) => h.name)).toEqual(layout.hosts.map((h) => h.name));
    });
  }
});
