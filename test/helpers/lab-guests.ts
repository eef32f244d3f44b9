/**
 * Guest checks shared by the lab crash tests (test/e2e/lab-crash*.test.ts): where each guest
 * really runs, asked of virsh on the hosts — never of Tide's own report — and the journal's
 * agreement with it.
 */
import { existsSync } from 'node:fs';
import { expect } from 'vitest';
import type { LabHostName } from '../../src/lab/index.js';
import { openSqliteStore, type StoredStepRun } from '../../src/store/store.js';
import { migrate, type TestLab } from './lab.js';

export interface GuestCopy {
  readonly host: LabHostName;
  /** virsh domstate: 'running', 'paused', … */
  readonly state: string;
}

/** A guest's active copies, as virsh on each of `hosts` reports them (an off host's libvirt does not answer: its guests are gone). */
export async function guestCopies(lab: TestLab, vm: string, hosts: readonly LabHostName[]): Promise<GuestCopy[]> {
  const out: GuestCopy[] = [];
  for (const h of hosts) {
    const r = await lab.virsh(h, ['domstate', '--domain', vm]);
    const st = r.stdout.trim();
    if (r.code === 0 && st !== 'shut off') out.push({ host: h, state: st });
  }
  return out;
}

/**
 * Every guest running on `from`, the state the crash tests start from: one found running on `to`
 * is migrated back; any other state (two copies, paused, none) throws.
 */
export async function guestsBackOn(lab: TestLab, guests: readonly string[], from: LabHostName, to: LabHostName): Promise<void> {
  for (const vm of guests) {
    const c = await guestCopies(lab, vm, [from, to]);
    if (c.length === 1 && c[0]!.host === from && c[0]!.state === 'running') continue;
    if (c.length === 1 && c[0]!.host === to && c[0]!.state === 'running') {
      const r = await migrate(lab, vm, from);
      expect(r.code, `${vm} → ${from}: ${r.stderr}`).toBe(0);
      continue;
    }
    throw new Error(`${vm} is not in a state this test starts from: ${JSON.stringify(c)}`);
  }
}

/**
 * Asserts each guest (with its copies `copies[i]`) is active on exactly one host, running (none
 * paused), and its service answers; returns where each runs. `note` adds context to messages.
 */
export async function expectGuestsRunOnce(lab: TestLab, guests: readonly string[], copies: readonly (readonly GuestCopy[])[], note = ''): Promise<Map<string, LabHostName>> {
  const where = new Map<string, LabHostName>();
  for (const [i, vm] of guests.entries()) {
    const c = copies[i]!;
    expect(c, `${vm}: ${JSON.stringify(c)}${note}`).toHaveLength(1);
    expect(c[0]!.state, `${vm} on ${c[0]!.host}`).toBe('running');
    where.set(vm, c[0]!.host);
    expect((await lab.httpGet(lab.vm(vm).probe, 10)).length, `${vm}'s service answers`).toBeGreaterThan(0);
  }
  return where;
}

/** Asserts the journal is true to virsh: a migrate step succeeded exactly when its guest is on `to`, else it is on `from`. */
export function expectMigrateStepsTrue(rows: readonly StoredStepRun[], where: ReadonlyMap<string, LabHostName>, from: LabHostName, to: LabHostName): void {
  for (const row of rows) {
    if (row.kind !== 'migrate') continue;
    expect(row.state, `step ${row.stepId}`).not.toBe('running');
    expect(where.get(row.vm!), `step ${row.stepId} (${row.vm}) is ${row.state}`).toBe(row.state === 'succeeded' ? to : from);
  }
}

/**
 * Polls the store at `storeFile` (every `pollMs`, up to `timeoutMs`) until step `stepId`'s intent
 * is in it (state 'running'); returns the wall time it was seen, or null if `exited()` or the
 * time ran out first. Never creates the store: it waits for the process under test to.
 */
export async function waitForStepIntent(storeFile: string, stepId: number, exited: () => boolean, { timeoutMs = 120_000, pollMs = 20 } = {}): Promise<number | null> {
  const t0 = Date.now();
  while (!exited() && Date.now() - t0 < timeoutMs) {
    await new Promise((r) => setTimeout(r, pollMs));
    if (!existsSync(storeFile)) continue;
    try {
      const s = openSqliteStore(storeFile);
      try {
        if (s.runningStepRuns().some((r) => r.stepId === stepId)) return Date.now();
      } finally {
        s.close();
      }
    } catch { /* being created by the process under test */ }
  }
  return null;
}
