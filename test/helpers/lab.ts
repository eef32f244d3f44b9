/**
 * The lab for end-to-end tests (see docs/lab.md).
 *
 *   import { describeLab, sharedLab, migrate, type TestLab } from '../helpers/lab.js';
 *
 *   describeLab('my e2e', () => {
 *     let lab: TestLab;
 *     beforeAll(async () => { lab = await sharedLab({ vms: 2 }); }, LAB_HOOK_TIMEOUT_MS);
 *     afterAll(async () => { await lab?.down(); }, LAB_HOOK_TIMEOUT_MS);
 *     it('…', async () => {
 *       const from = (await lab.locate('vm1'))!;
 *       const r = await migrate(lab, 'vm1', lab.otherHost(from));
 *       …
 *     }, 120_000);
 *   });
 *
 * There is one lab per machine (fixed namespace names), so `sharedLab` takes a *lease*: test
 * files that use the lab run one after another (the others wait in beforeAll, hence the long
 * hook timeout), and each gets the lab with faults undone (links restored, shaping removed,
 * daemons running). `lab.down()` tears the lab down and hands the lease on; with
 * TIDE_LAB_KEEP=1 it only hands the lease on, so the next file (or run) reuses the lab.
 *
 * Everything else is a method of Lab (src/lab/lab.ts):
 *   lab.virsh(host, argv) / lab.virshOk(host, argv)      virsh, LC_ALL=C, argv array
 *   lab.bootGuest({ host, name?, memMiB?, dirtyMiB?, disk? })   an extra guest
 *   lab.killLibvirtd(host, signal?) / lab.startLibvirtd(host) / lab.restartLibvirtd(host)
 *   lab.killHost(host)                                   power loss (guests die too)
 *   lab.cutLink(host) / lab.restoreLink(host)            pull / plug the host's uplink
 *   lab.shapeLinks(mbit, hosts?) / lab.unshapeLinks()    tc tbf on the uplinks
 *   lab.setDirty(vm, mib)                                guest rewrites mib MiB of RAM
 *   lab.probe(vm) → { stop(): ProbeReport }              service probe from the switch netns
 *   lab.locate(vm), lab.jobInfo(host, vm), lab.guestInfo(vm), lab.configFile
 */
import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { TideConfig } from '../../src/config/schema.js';
import {
  DEFAULT_LAB_DIR, Lab, labLayout, labPrerequisiteProblem,
  type DownReport, type LabHostName, type LabUpOptions,
} from '../../src/lab/index.js';
import { run } from '../../src/lab/exec.js';
import { acquireLabLease, describeLeaseHolder } from '../../src/lab/lock.js';

/** beforeAll/afterAll timeout for lab hooks: covers waiting for another file's lease. */
export const LAB_HOOK_TIMEOUT_MS = 15 * 60_000;

/** The lab directory tests use (TIDE_LAB_DIR, default /tmp/tide-lab). */
export const TEST_LAB_DIR = process.env.TIDE_LAB_DIR ?? DEFAULT_LAB_DIR;

const labLog = (m: string): void => { process.stderr.write(`[lab ${new Date().toISOString().slice(11, 23)}] ${m}\n`); };

/** Why lab tests cannot run here (null = they can). */
export function labSkipReason(): string | null {
  return labPrerequisiteProblem(labLayout(TEST_LAB_DIR).cacheDir);
}

/**
 * describe() for tests that need the lab. When the lab cannot run here the suite is skipped
 * and the reason printed, unless TIDE_REQUIRE_LAB=1 (CI): then it fails with that reason.
 */
export function describeLab(name: string, fn: () => void): void {
  const reason = labSkipReason();
  if (reason === null) {
    describe(name, fn);
  } else if (process.env.TIDE_REQUIRE_LAB === '1') {
    describe(name, () => {
      it('needs the lab (TIDE_REQUIRE_LAB=1)', () => { throw new Error(`lab unavailable: ${reason}`); });
    });
  } else {
    process.stderr.write(`SKIP ${name}: lab unavailable: ${reason}\n`);
    describe.skip(name, fn);
  }
}

export class TestLab extends Lab {
  private release: (() => void) | undefined;
  /** True when sharedLab() found this lab already up and reused it. */
  reusedAtStart = false;

  /** @internal set by sharedLab */
  holdLease(release: () => void): void {
    this.release = release;
  }

  /** The lab's Tide config file, parsed and validated. */
  config(): TideConfig {
    return loadConfig(this.configFile);
  }

  /**
   * Tears the lab down (unless `keep`, default TIDE_LAB_KEEP=1) and releases the lease.
   * Returns the teardown report (`kept: true` and nothing else when kept).
   */
  override async down(opts: { purge?: boolean; keep?: boolean } = {}): Promise<DownReport> {
    try {
      if (opts.keep ?? process.env.TIDE_LAB_KEEP === '1') {
        await this.resetFaults().catch(() => { /* the next user recreates it if needed */ });
        return {
          dir: this.dir, kept: true, destroyedDomains: [], killed: [], namespacesDeleted: [], runNetnsUnmounted: false,
          left: { processes: [], namespaces: [], links: [], mounts: [] },
        };
      }
      return await Lab.down({ dir: this.dir, purge: opts.purge, log: labLog });
    } finally {
      this.release?.();
      this.release = undefined;
    }
  }
}

export interface SharedLabOptions extends Omit<LabUpOptions, 'log' | 'recreate' | 'dir'> {
  /** Lab directory (default TEST_LAB_DIR). */
  dir?: string;
  /** How long to wait for another test file's lease (default 14 min). */
  waitMs?: number;
  /** Progress lines on stderr (default true). */
  verbose?: boolean;
}

/**
 * Brings the lab up (or reuses the one that is up, with faults undone and vm1…vmN running)
 * and holds the lab lease until `lab.down()`.
 */
export async function sharedLab(opts: SharedLabOptions = {}): Promise<TestLab> {
  const dir = opts.dir ?? TEST_LAB_DIR;
  const log = opts.verbose === false ? undefined : labLog;
  mkdirSync(dir, { recursive: true });
  // The lease `tide lab up|down|demo` take too (src/lab/lock.ts): a CLI user and a test take turns.
  let testPath: string | undefined;
  try {
    testPath = expect.getState().testPath;
  } catch { /* outside a test */ }
  const release = await acquireLabLease(labLayout(dir).leaseFile, {
    holder: `lab test ${testPath ? testPath.replace(/^.*?\/test\//, 'test/') : `(pid ${process.pid})`}`,
    waitMs: opts.waitMs ?? 14 * 60_000,
    onWait: (h) => log?.(`lab busy (lease held by ${describeLeaseHolder(h)}); waiting`),
  });
  try {
    const existing = TestLab.open(dir, log);
    let recreate = false;
    if (existing) {
      try {
        await existing.resetFaults();
      } catch (e) {
        log?.(`could not reset the existing lab (${(e as Error).message}); recreating it`);
      }
      const problems = await existing.healthProblems();
      if (problems.length > 0) {
        log?.(`existing lab unhealthy (${problems.join('; ')}); recreating it`);
        recreate = true;
      }
    }
    const { waitMs: _w, verbose: _v, ...up } = opts;
    const { reused } = await Lab.up({ ...up, dir, recreate, log });
    const lab = TestLab.open(dir, log);
    if (!lab) throw new Error(`lab in ${dir} vanished right after up`);
    lab.reusedAtStart = reused;
    lab.holdLease(release);
    return lab;
  } catch (e) {
    release();
    throw e;
  }
}

export interface MigrateResult {
  vm: string;
  from: LabHostName;
  to: LabHostName;
  /** virsh exit status (0 = migrated). */
  code: number | null;
  stderr: string;
  /** Wall time around `virsh migrate`. */
  wallMs: number;
}

/**
 * `virsh -c <source uri> migrate --live --p2p [extra…] VM <destination peerUri>`, with the
 * URIs taken from the lab's Tide config file (exactly what Tide itself would use).
 */
export async function migrate(lab: TestLab, vm: string, to: LabHostName, extra: readonly string[] = [], timeoutMs = 300_000): Promise<MigrateResult> {
  const from = await lab.locate(vm);
  if (from === null) throw new Error(`${vm} is not running anywhere`);
  const cfg = lab.config();
  const src = cfg.hosts.find((h) => h.name === from);
  const dst = cfg.hosts.find((h) => h.name === to);
  if (!src || !dst) throw new Error(`host ${from} or ${to} missing from ${lab.configFile}`);
  const t0 = performance.now();
  const r = await run(['virsh', '-c', src.uri, 'migrate', '--live', '--p2p', ...extra, vm, dst.peerUri ?? dst.uri], {
    env: { ...process.env, LC_ALL: 'C' }, timeoutMs,
  });
  return { vm, from, to, code: r.code, stderr: r.stderr.trim(), wallMs: Math.round(performance.now() - t0) };
}

/** Network namespaces named like the lab's that exist now (`ip netns list`). */
export async function labNetnsList(): Promise<string[]> {
  const r = await run(['ip', 'netns', 'list']);
  return r.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith('tide-lab-'));
}
