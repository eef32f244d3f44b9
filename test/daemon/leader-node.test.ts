/**
 * Node ids and the leader gauges, for two controllers of one cluster on ONE machine (same
 * hostname, same pid: the in-process case is the hardest one for "which node is this").
 *
 * - nodeIdOf: daemon.nodeId wins; else hostname + a hash of the configuration file's path —
 *   the same for the same file (a restart), different for two files on one machine.
 * - statusReport: "this node" is matched by node id, not hostname (two controllers on one host).
 * - End to end (src/cli main, in-process): two `tide daemon`s with their own configuration
 *   files and one SQLite store: the lease row names the leader's node id; `tide status` with
 *   each file says leader / standby for its own node; GET /api/v1/status says the same;
 *   /metrics has tide_leader 1 on the leader and 0 on the standby, tide_fencing_token with the
 *   leader's token on both, tide_lease_renew_age_seconds below the TTL. The leader stops: the
 *   standby leads, with a new fencing token and a larger acquisition time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { parseConfig } from '../../src/config/load.js';
import { clusterLabelOf, nodeIdOf } from '../../src/daemon/node-id.js';
import { statusReport } from '../../src/daemon/ops.js';
import { createToken } from '../../src/http/tokens.js';
import { withClusterLock } from '../../src/store/lock.js';
import { openSqliteStore } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-leader-node-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const hosts = [{ name: 'a', uri: 'qemu:///system?socket=/nonexistent/sock' }];

describe('node id', () => {
  it('daemon.nodeId wins; else hostname + a hash of the file path: stable for one file, distinct for two', () => {
    const cfg = parseConfig({ hosts });
    const a1 = nodeIdOf(cfg, '/etc/tide/a.yaml', 'ctl');
    expect(a1).toMatch(/^ctl-[0-9a-f]{6}$/);
    expect(nodeIdOf(cfg, '/etc/tide/a.yaml', 'ctl')).toBe(a1);
    expect(nodeIdOf(cfg, '/etc/tide/../tide/a.yaml', 'ctl')).toBe(a1);
    expect(nodeIdOf(cfg, '/etc/tide/b.yaml', 'ctl')).not.toBe(a1);
    expect(nodeIdOf(parseConfig({ hosts, daemon: { nodeId: 'ctl-blue' } }), '/etc/tide/a.yaml', 'ctl')).toBe('ctl-blue');
    expect(() => parseConfig({ hosts, daemon: { nodeId: '-x' } })).toThrow(/daemon\.nodeId/);
    expect(() => parseConfig({ hosts, daemon: { nodeId: 'a b' } })).toThrow(/daemon\.nodeId/);
    expect(() => parseConfig({ hosts, daemon: { other: 1 } })).toThrow(/daemon/);
  });

  it('statusReport: two controllers on one host are told apart by node id (the lease row carries it)', async () => {
    const store = openSqliteStore(':memory:');
    const cfg = parseConfig({ hosts });
    let release!: () => void;
    const held = withClusterLock(store, { pid: process.pid, host: hostname(), command: 'tide daemon', startedMs: Date.now(), node: 'ctl-a' }, () => new Promise<void>((r) => { release = r; }), { ttlMs: 60_000 });
    await new Promise((r) => setTimeout(r, 20));
    expect(store.clusterLock()?.holder.node).toBe('ctl-a');
    const asA = statusReport(store, cfg, Date.now(), 'ctl-a');
    const asB = statusReport(store, cfg, Date.now(), 'ctl-b');
    expect(asA.thisNode).toEqual({ host: hostname(), node: 'ctl-a', role: 'leader' });
    expect(asB.thisNode).toEqual({ host: hostname(), node: 'ctl-b', role: 'standby' });
    expect(asB.leader?.node).toBe('ctl-a');
    release();
    await held;
    store.close();
  });
});

interface Metric { name: string; labels: Record<string, string>; value: number }
function parseMetrics(text: string): Metric[] {
  const out: Metric[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function capture(): { io: CliIo; text: () => string } {
  let text = '';
  return { io: { out: (t) => void (text += t), err: (t) => void (text += t), isTty: false, env: process.env, cwd: tmp }, text: () => text };
}

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('a node id used twice', () => {
  it('tide daemon warns when the live lease holder has its node id (another controller), and waits as a standby', async () => {
    const dir = mkdtempSync(join(tmp, 'dup-'));
    const storePath = join(dir, 'shared.sqlite');
    const file = join(dir, 'b.yaml');
    writeFileSync(file, `mode: recommend\nintervalSec: 1\nhosts:\n  - name: a\n    uri: qemu:///system?socket=${dir}/no-such/sock\nstore: { path: ${storePath} }\ndaemon: { nodeId: ctl-shared }\n`);
    const store = openSqliteStore(storePath);
    let release!: () => void;
    // the other controller: another machine (alive by its TTL), the same node id
    const held = withClusterLock(store, { pid: 1, host: 'ctl-elsewhere', command: 'tide daemon', startedMs: 1, node: 'ctl-shared' }, () => new Promise<void>((r) => { release = r; }), { ttlMs: 60_000 });
    const before = new Set(process.listeners('SIGTERM'));
    const b = capture();
    const run = main(['--config', file, 'daemon', '--log-format', 'json', '--poll-ms', '0', '--stop-grace', '0'], b.io);
    try {
      await until('the standby line', () => (b.text().includes('"event":"standby"') ? true : undefined));
      const warn = b.text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event?: string; msg?: string; node?: string }).find((l) => l.event === 'node-id');
      expect(warn?.node).toBe('ctl-shared');
      expect(JSON.stringify(warn)).toContain('node id ctl-shared is also used by tide daemon (pid 1 on ctl-elsewhere)');
    } finally {
      for (const l of [...process.listeners('SIGTERM')]) if (!before.has(l)) (l as () => void)();
      expect(await run).toBe(0);
      release();
      await held;
      store.close();
    }
    // the other controller gone (lease released): no warning, and it leads
    const c = capture();
    const before2 = new Set(process.listeners('SIGTERM'));
    const run2 = main(['--config', file, 'daemon', '--log-format', 'json', '--poll-ms', '0', '--stop-grace', '0'], c.io);
    try {
      await until('the leader line', () => (c.text().includes('"event":"leader"') ? true : undefined));
      expect(c.text()).not.toContain('"event":"node-id"');
    } finally {
      for (const l of [...process.listeners('SIGTERM')]) if (!before2.has(l)) (l as () => void)();
      expect(await run2).toBe(0);
    }
  }, 60_000);
});

describe('two tide daemons on one machine, one store', () => {
  it('lease row, tide status, GET /status and /metrics name each node and its role; the standby takes over with a newer token', async () => {
    const dir = mkdtempSync(join(tmp, 'pair-'));
    const storePath = join(dir, 'shared.sqlite');
    const files = ['a', 'b'].map((n) => {
      const f = join(dir, `${n}.yaml`);
      writeFileSync(f, `mode: recommend\nintervalSec: 1\nhosts:\n  - name: a\n    uri: qemu:///system?socket=${dir}/no-such/sock\nstore: { path: ${storePath} }\nhttp: { port: 0 }\n`);
      return f;
    });
    const ids = files.map((f) => nodeIdOf(parseConfig({ hosts }), f));
    expect(ids[0]).not.toBe(ids[1]);
    const cluster = clusterLabelOf(parseConfig({ hosts, store: { path: storePath } }), files[0]!);
    const token = createToken(openSqliteStore(storePath), { role: 'viewer', by: 'test' }).token;
    const auth = { authorization: `Bearer ${token}` };

    const before = new Set(process.listeners('SIGTERM'));
    const a = capture();
    const runA = main(['--config', files[0]!, 'daemon', '--log-format', 'json', '--poll-ms', '0', '--stop-grace', '0'], a.io);
    const urlA = await until('A serving', () => /HTTP API on (http:\/\/127\.0\.0\.1:\d+)\/api\/v1/.exec(a.text())?.[1]);
    const stopA = [...process.listeners('SIGTERM')].filter((l) => !before.has(l));
    const store = openSqliteStore(storePath);
    await until('A leads', () => (store.clusterLock()?.holder.node === ids[0] ? true : undefined));
    const b = capture();
    const runB = main(['--config', files[1]!, 'daemon', '--log-format', 'json', '--poll-ms', '0', '--stop-grace', '0'], b.io);
    try {
      const urlB = await until('B serving', () => /HTTP API on (http:\/\/127\.0\.0\.1:\d+)\/api\/v1/.exec(b.text())?.[1]);
      await until('B standby', () => (b.text().includes('"event":"standby"') ? true : undefined));
      const lease = store.clusterLock()!;
      expect(lease.holder).toMatchObject({ node: ids[0], host: hostname(), pid: process.pid });

      // tide status, from each controller's configuration file
      const stA = await runCli(['--config', files[0]!, 'status', '--json']);
      const stB = await runCli(['--config', files[1]!, 'status', '--json']);
      expect(JSON.parse(stA.out).thisNode).toEqual({ host: hostname(), node: ids[0], role: 'leader' });
      expect(JSON.parse(stB.out).thisNode).toEqual({ host: hostname(), node: ids[1], role: 'standby' });
      expect(JSON.parse(stB.out).leader.node).toBe(ids[0]);
      const text = await runCli(['--config', files[1]!, 'status']);
      expect(text.out).toContain(`this node: ${ids[1]} (on ${hostname()}), standby`);
      expect(text.out).toContain(`leader:   node ${ids[0]}, `);

      // the API of each daemon: its own node
      const apiA = await (await fetch(`${urlA}/api/v1/status`, { headers: auth })).json() as { thisNode: { node: string; role: string } };
      const apiB = await (await fetch(`${urlB}/api/v1/status`, { headers: auth })).json() as { thisNode: { node: string; role: string } };
      expect(apiA.thisNode).toMatchObject({ node: ids[0], role: 'leader' });
      expect(apiB.thisNode).toMatchObject({ node: ids[1], role: 'standby' });

      // /metrics: leader 1 / standby 0, the same token on both, a fresh renewal
      const mA = parseMetrics(await (await fetch(`${urlA}/metrics`)).text());
      const mB = parseMetrics(await (await fetch(`${urlB}/metrics`)).text());
      expect(mA.filter((m) => m.name === 'tide_leader')).toEqual([{ name: 'tide_leader', labels: { cluster, node: ids[0] }, value: 1 }]);
      expect(mB.filter((m) => m.name === 'tide_leader')).toEqual([{ name: 'tide_leader', labels: { cluster, node: ids[1] }, value: 0 }]);
      for (const [m, id] of [[mA, ids[0]], [mB, ids[1]]] as const) {
        expect(m.filter((x) => x.name === 'tide_fencing_token')).toEqual([{ name: 'tide_fencing_token', labels: { cluster, node: id, token: lease.token }, value: lease.acquiredMs / 1000 }]);
        const age = m.filter((x) => x.name === 'tide_lease_renew_age_seconds');
        expect(age).toHaveLength(1);
        expect(age[0]!.labels).toEqual({ cluster, node: id });
        expect(age[0]!.value).toBeGreaterThanOrEqual(0);
        expect(age[0]!.value).toBeLessThan(lease.ttlMs / 1000);
      }

      // the leader stops: B takes over with a new lease
      for (const l of stopA) (l as () => void)();
      expect(await runA).toBe(0);
      await until('B leads', () => (store.clusterLock()?.holder.node === ids[1] ? true : undefined), 15_000);
      const lease2 = store.clusterLock()!;
      expect(lease2.token).not.toBe(lease.token);
      expect(lease2.acquiredMs).toBeGreaterThan(lease.acquiredMs);
      const mB2 = parseMetrics(await (await fetch(`${urlB}/metrics`)).text());
      expect(mB2.find((m) => m.name === 'tide_leader')?.value).toBe(1);
      expect(mB2.find((m) => m.name === 'tide_fencing_token')).toEqual({ name: 'tide_fencing_token', labels: { cluster, node: ids[1], token: lease2.token }, value: lease2.acquiredMs / 1000 });
      expect(JSON.parse((await runCli(['--config', files[1]!, 'status', '--json'])).out).thisNode.role).toBe('leader');
      expect(JSON.parse((await runCli(['--config', files[0]!, 'status', '--json'])).out).thisNode.role).toBe('standby');
    } finally {
      for (const l of [...process.listeners('SIGTERM')]) if (!before.has(l)) (l as () => void)();
      await Promise.allSettled([runA, runB]);
      store.close();
    }
    expect(await runB).toBe(0);
  }, 60_000);
});
