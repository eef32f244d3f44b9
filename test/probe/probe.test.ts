/**
 * The service probe against loopback servers (no root, no lab): counting, gap/downtime
 * accounting, info parsing, and the netns-capable child-process entry point.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { Probe, parseProbeTarget, probeCliPath, startProbe, waitForService } from '../../src/probe/index.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
});

/** HTTP server on 127.0.0.1: `/` answers unless `down`, /info answers key=value tokens. */
async function httpServer(): Promise<{ url: string; setDown(d: boolean): void }> {
  let down = false;
  const s = createServer((req, res) => {
    if (down) { res.statusCode = 503; res.end('down'); return; }
    if (req.url === '/info') { res.end('name=t uptime=12.5 boot_id=abc\n'); return; }
    res.end('ok\n');
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, setDown: (d) => { down = d; } };
}

describe('probe', () => {
  it('parses targets', () => {
    expect(parseProbeTarget('http://10.0.0.1/x?y=1')).toEqual({ kind: 'http', host: '10.0.0.1', port: 80, path: '/x?y=1' });
    expect(parseProbeTarget('tcp://h:22')).toEqual({ kind: 'tcp', host: 'h', port: 22, path: '' });
    expect(() => parseProbeTarget('tcp://h')).toThrow(/port/);
    expect(() => parseProbeTarget('ftp://h/')).toThrow(/unsupported/);
  });

  it('counts successes and reports an outage as the longest gap', async () => {
    const srv = await httpServer();
    const p = new Probe({ target: srv.url, intervalMs: 10, infoPath: '/info', infoEvery: 5 }).start();
    await sleep(200);
    srv.setDown(true);
    await sleep(300);
    srv.setDown(false);
    await sleep(200);
    const rep = await p.stop();
    expect(rep.sent).toBeGreaterThan(40);
    expect(rep.failed).toBeGreaterThan(10);
    expect(rep.errors.HTTP_503).toBe(rep.failed);
    expect(rep.ok + rep.failed + rep.abandoned).toBe(rep.sent);
    expect(rep.maxGapMs).toBeGreaterThanOrEqual(250);
    expect(rep.maxGapMs).toBeLessThan(600);
    expect(rep.downtimeMs).toBe(rep.maxGapMs);
    expect(rep.infoFirst).toEqual({ name: 't', uptime: '12.5', boot_id: 'abc' });
    expect(rep.sameBoot).toBe(true);
  });

  it('does not stall while the service hangs (requests are not serialised)', async () => {
    const sockets: Socket[] = [];
    const hang = createTcpServer((sock) => { sockets.push(sock); /* accept, never answer */ });
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const { port } = hang.address() as AddressInfo;
    const p = new Probe({ target: `http://127.0.0.1:${port}/`, intervalMs: 10, timeoutMs: 100 }).start();
    await sleep(300);
    const rep = await p.stop();
    for (const s of sockets) s.destroy();
    hang.close();
    expect(rep.sent).toBeGreaterThan(20); // kept firing although nothing ever answered
    expect(rep.ok).toBe(0);
    expect(rep.errors.TIMEOUT).toBeGreaterThan(10);
    expect(rep.downtimeMs).toBeGreaterThanOrEqual(290);
  });

  it('reports a service that stays down at the end as downtime', async () => {
    const srv = await httpServer();
    const p = new Probe({ target: srv.url, intervalMs: 10 }).start();
    await sleep(100);
    srv.setDown(true);
    await sleep(300);
    const rep = await p.stop();
    expect(rep.downtimeMs).toBeGreaterThanOrEqual(250);
  });

  it('probes tcp:// targets and waits for a service', async () => {
    const srv = await httpServer();
    const port = new URL(srv.url).port;
    const p = await startProbe({ target: `tcp://127.0.0.1:${port}`, intervalMs: 10 });
    await sleep(100);
    const rep = await p.stop();
    expect(rep.ok).toBeGreaterThan(5);
    expect(rep.failed).toBe(0);
    expect(await waitForService({ target: srv.url, timeoutMs: 2000 })).not.toBeNull();
    expect(await waitForService({ target: 'tcp://127.0.0.1:1', timeoutMs: 200 })).toBeNull();
  });

  it('runs as a child process streaming JSON lines until stdin closes', async () => {
    const srv = await httpServer();
    const cli = await probeCliPath();
    const child = spawn(process.execPath, [cli, srv.url, '--interval-ms', '10', '--report-ms', '50'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    for (let i = 0; i < 200 && !out.includes('"started"'); i++) await sleep(25);
    await sleep(300);
    child.stdin.end();
    const code = await new Promise<number | null>((r) => child.on('close', r));
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; ok?: number; stoppedBy?: string });
    expect(code).toBe(0);
    expect(lines[0]!.type).toBe('started');
    expect(lines.some((l) => l.type === 'progress')).toBe(true);
    const last = lines[lines.length - 1]!;
    expect(last.type).toBe('report');
    expect(last.stoppedBy).toBe('stdin closed');
    expect(last.ok).toBeGreaterThan(5);
  });
});
