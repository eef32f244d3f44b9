/**
 * The lab itself: two libvirt hosts, guests with a probe-able service, a live migration there
 * and back without a single failed request, and a clean teardown. Needs root and the packages
 * of scripts/install-deps.sh; skipped with a reason otherwise (fails if TIDE_REQUIRE_LAB=1).
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startProbe } from '../../src/probe/index.js';
import { processesMentioning, mountsUnder } from '../../src/lab/proc.js';
import { LAB_HOOK_TIMEOUT_MS, describeLab, labNetnsList, migrate, sharedLab, type TestLab } from '../helpers/lab.js';
import { hostUuid } from '../../src/drivers/common/xml.js';

describeLab('lab', () => {
  let lab: TestLab | undefined;
  let isDown = false;

  beforeAll(async () => {
    lab = await sharedLab({ vms: 2 });
  }, LAB_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    if (lab && !isDown) await lab.down();
  }, LAB_HOOK_TIMEOUT_MS);

  it('runs two libvirt daemons with distinct host UUIDs and hostnames', async () => {
    const cfg = lab!.config();
    expect(cfg.hosts.map((h) => h.name)).toEqual(['lab-a', 'lab-b']);
    const facts = await Promise.all(cfg.hosts.map(async (h) => {
      const caps = await lab!.virshOk(h.name, ['capabilities']);
      return {
        name: h.name,
        uuid: hostUuid(caps),
        hostname: await lab!.virshOk(h.name, ['hostname']),
        uri: h.uri,
      };
    }));
    for (const f of facts) {
      expect(f.uri).toMatch(/^qemu\+unix:\/\/\/system\?socket=/);
      expect(f.uuid).toMatch(/^[0-9a-f-]{36}$/);
      expect(f.hostname).toBe(f.name);
    }
    expect(facts[0]!.uuid).not.toBe(facts[1]!.uuid);
    expect(facts[0]!.hostname).not.toBe(facts[1]!.hostname);
    for (const h of cfg.hosts) {
      expect(h.peerUri).toMatch(/^qemu\+tcp:\/\/10\.77\.0\.\d+\/system$/);
      expect(h.migrationAddress).toMatch(/^tcp:\/\/10\.77\.0\.\d+$/);
    }
  });

  it('runs the guests, whose HTTP service answers the probe from the switch namespace', async () => {
    const cfg = lab!.config();
    // (a lab reused with TIDE_LAB_KEEP=1 may hold more guests, possibly migrated)
    const vms = Object.entries(cfg.vms).filter(([n]) => n === 'vm1' || n === 'vm2');
    expect(vms.map(([n]) => n).sort()).toEqual(['vm1', 'vm2']);
    const where = await Promise.all(vms.map(([n]) => lab!.locate(n)));
    expect(where).not.toContain(null);
    if (!lab!.reusedAtStart) expect(new Set(where)).toEqual(new Set(['lab-a', 'lab-b'])); // round-robin
    for (const [, v] of vms) {
      const p = await startProbe({ target: v.probe!, netns: v.probeNetns, intervalMs: 20 });
      await new Promise((r) => setTimeout(r, 600));
      const rep = await p.stop();
      expect(rep.failed).toBe(0);
      expect(rep.ok).toBeGreaterThan(10);
    }
    const info = await lab!.guestInfo('vm1');
    expect(info.name).toBe('vm1');
    expect(info.boot_id).toMatch(/^[0-9a-f-]{36}$/);
  }, 60_000);

  it('live-migrates a guest A→B and back with zero failed probe requests and the same boot', async () => {
    const vm = 'vm1';
    const home = (await lab!.locate(vm))!;
    const other = lab!.otherHost(home);
    const probe = await lab!.probe(vm, { intervalMs: 20 });
    await new Promise((r) => setTimeout(r, 400)); // baseline
    const there = await migrate(lab!, vm, other);
    expect(there.code, there.stderr).toBe(0);
    expect(await lab!.locate(vm)).toBe(other);
    const jobThere = await lab!.jobInfo(other, vm);
    await new Promise((r) => setTimeout(r, 400));
    const back = await migrate(lab!, vm, home);
    expect(back.code, back.stderr).toBe(0);
    expect(await lab!.locate(vm)).toBe(home);
    const jobBack = await lab!.jobInfo(home, vm);
    await new Promise((r) => setTimeout(r, 400)); // the probe must see the guest answer again
    const rep = await probe.stop();

    process.stderr.write(`[lab] migration ${home}→${other}: wall ${there.wallMs} ms, libvirt total ${jobThere.timeElapsedMs} ms, downtime ${jobThere.totalDowntimeMs} ms, ${jobThere.dataProcessedMiB} MiB\n`);
    process.stderr.write(`[lab] migration ${other}→${home}: wall ${back.wallMs} ms, libvirt total ${jobBack.timeElapsedMs} ms, downtime ${jobBack.totalDowntimeMs} ms, ${jobBack.dataProcessedMiB} MiB\n`);
    process.stderr.write(`[lab] probe: sent ${rep.sent} ok ${rep.ok} failed ${rep.failed} max gap ${rep.maxGapMs} ms at ${rep.maxGapAtMs} ms, errors ${JSON.stringify(rep.errors)}, latency ${JSON.stringify(rep.latencyMs)}, same boot ${rep.sameBoot}, uptime +${rep.uptimeGrowthS} s\n`);

    expect(rep.failed).toBe(0);
    expect(rep.ok).toBeGreaterThan(50);
    expect(rep.sameBoot).toBe(true);
    expect(rep.uptimeGrowthS!).toBeGreaterThan(0);
    expect(rep.maxGapMs).toBeLessThan(5_000);
    expect(typeof jobThere.totalDowntimeMs).toBe('number');
  }, 120_000);

  it('tears down without leaving a process, namespace, link or mount', async () => {
    const dir = lab!.dir;
    const report = await lab!.down({ keep: false });
    isDown = true;
    expect(report.left).toEqual({ processes: [], namespaces: [], links: [], mounts: [] });
    expect(report.destroyedDomains.length).toBeGreaterThanOrEqual(2);
    // independent checks, not through the report
    expect(await labNetnsList()).toEqual([]);
    expect(processesMentioning(dir)).toEqual([]);
    expect(mountsUnder(dir)).toEqual([]);
    expect(existsSync(`${dir}/hosts`)).toBe(false);
    expect(existsSync(`${dir}/cache`)).toBe(true); // the image cache is kept
  }, 60_000);
});
