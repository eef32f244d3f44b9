// The virsh driver's cap on parallel virsh processes (issue 9 item 5: ~450 processes per round at
// 50 hosts blocked the event loop long enough to drop RPC keepalives in the same process).
// ProcessLimit on its own (order, hand-over, errors), then the driver with a stand-in virsh
// program that records how many of its copies run at once.
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { HostConfig } from '../../src/config/schema.js';
import { DEFAULT_VIRSH_PROCESSES, ProcessLimit, VirshBackend, VirshDriver } from '../../src/drivers/virsh/index.js';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

/** A promise with its resolve/reject outside. */
function deferred<T = void>(): { p: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const p = new Promise<T>((a, b) => { resolve = a; reject = b; });
  return { p, resolve, reject };
}

const flush = async (): Promise<void> => { for (let i = 0; i < 5; i++) await Promise.resolve(); };

describe('ProcessLimit', () => {
  it('runs at most max at once, the rest in call order as slots free up', async () => {
    const limit = new ProcessLimit(3);
    const gates = Array.from({ length: 10 }, () => deferred());
    const started: number[] = [];
    const runs = gates.map((g, i) => limit.run(async () => { started.push(i); await g.p; return i; }));
    await flush();
    expect(started).toEqual([0, 1, 2]);
    expect([limit.running, limit.waiting]).toEqual([3, 7]);
    gates[1]!.resolve();
    await flush();
    expect(started).toEqual([0, 1, 2, 3]);
    gates[0]!.resolve();
    gates[2]!.resolve();
    await flush();
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    for (const g of gates) g.resolve();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([limit.running, limit.waiting, limit.peak]).toEqual([0, 0, 3]);
  });

  it('a failed call frees its slot and keeps its error', async () => {
    const limit = new ProcessLimit(1);
    const a = limit.run(async () => { throw new Error('boom'); });
    const b = limit.run(async () => 'b');
    await expect(a).rejects.toThrow('boom');
    expect(await b).toBe('b');
    expect(limit.running).toBe(0);
  });

  it('refuses a limit that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new ProcessLimit(bad)).toThrow(RangeError);
  });
});

/**
 * A stand-in virsh: each copy marks itself running in `dir`, appends how many copies run now
 * to `dir/seen`, waits 100 ms, and exits 0 printing its argv.
 */
function fakeVirsh(): { bin: string; dir: string; seen: () => number[] } {
  const dir = mkdtempSync(join(tmpdir(), 'tide-virsh-limit-'));
  dirs.push(dir);
  const runDir = join(dir, 'run');
  const bin = join(dir, 'virsh');
  writeFileSync(bin, [
    '#!/bin/sh',
    `mkdir -p '${runDir}'`,
    `touch '${runDir}/'$$`,
    `ls '${runDir}' | wc -l >> '${dir}/seen'`,
    'sleep 0.1',
    `rm -f '${runDir}/'$$`,
    'echo "$@"',
    '',
  ].join('\n'));
  chmodSync(bin, 0o755);
  const seen = (): number[] => readFileSync(join(dir, 'seen'), 'utf8').trim().split('\n').map(Number);
  return { bin, dir: runDir, seen };
}

const hosts = (n: number): HostConfig[] => Array.from({ length: n }, (_, i) => ({ name: `h${i}`, uri: `qemu+tcp://h${i}.example/system` }) as HostConfig);

describe('virsh driver: parallel processes are capped', () => {
  it('24 calls over 6 hosts of one driver (maxProcesses 3): never more than 3 virsh processes at once, every call answered', async () => {
    const v = fakeVirsh();
    const driver = new VirshDriver(hosts(6), { virsh: v.bin, maxProcesses: 3 });
    const backends = driver.backends as VirshBackend[];
    const calls = backends.flatMap((b) => [0, 1, 2, 3].map((i) => b.exec(['list', `--n${i}`])));
    await flush();
    expect(driver.processLimit.running).toBe(3);
    expect(driver.processLimit.waiting).toBe(21);
    const results = await Promise.all(calls);
    expect(results.every((r) => r.code === 0)).toBe(true);
    expect(results.map((r) => r.stdout.trim())).toEqual(backends.flatMap((b) => [0, 1, 2, 3].map((i) => `-c ${b.config.uri} list --n${i}`)));
    const seen = v.seen();
    expect(seen).toHaveLength(24);
    expect(Math.max(...seen)).toBeLessThanOrEqual(3);
    expect(driver.processLimit.peak).toBe(3);
    expect(readdirSync(v.dir)).toEqual([]);
  }, 60_000);

  it('calls without a timeout (migrations) are not counted: a long one does not hold up the others', async () => {
    const v = fakeVirsh();
    const driver = new VirshDriver(hosts(1), { virsh: v.bin, maxProcesses: 1 });
    const b = driver.backends[0] as VirshBackend;
    const migration = b.exec(['migrate'], 0);
    const other = b.exec(['list']);
    await flush();
    expect(driver.processLimit.running).toBe(1); // `list`; the migration runs outside the limit
    expect((await other).code).toBe(0);
    expect((await migration).code).toBe(0);
  }, 60_000);

  it('defaults: 8 processes per driver, one limit shared by its hosts; a lone backend has its own', () => {
    const driver = new VirshDriver(hosts(3));
    expect(DEFAULT_VIRSH_PROCESSES).toBe(8);
    expect(driver.processLimit.max).toBe(8);
    expect(new Set(driver.backends.map((b) => (b as VirshBackend).limit)).size).toBe(1);
    expect((driver.backends[0] as VirshBackend).limit).toBe(driver.processLimit);
    expect(new VirshBackend(hosts(1)[0]!, { maxProcesses: 2 }).limit.max).toBe(2);
  });
});
