/**
 * SIGHUP reloads the webhooks too (issue 7): `tide daemon` (in-process, src/cli; its own SIGHUP
 * listener is called, no real signal) with a webhook to a real receiver on 127.0.0.1. An
 * approval made by another process (a plan saved 'approved' through a second store connection,
 * as `tide approve` does) is announced (plan.approved) at the next round:
 *   - before the reload: to /one, signed with the first secret;
 *   - after a reload whose webhook is /two with another secret: to /two, signed with the new
 *     secret; /one gets nothing more;
 *   - after a reload whose webhook secret cannot be read: the old configuration stays whole
 *     (the error names the variable; /two still gets the next approval, the mode is unchanged).
 * No secret appears in the log. The hosts' libvirt sockets do not exist: rounds fail, the loop
 * goes on (the sweep of approved plans runs at the end of every round).
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { CliIo } from '../../src/cli/io.js';
import { openSqliteStore } from '../../src/store/store.js';
import { verifySignature } from '../../src/webhooks/webhooks.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-reload-webhooks-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const S1 = 'first-Secret-0a1b2c3d';
const S2 = 'second-Secret-9f8e7d6c';

interface Hit { path: string; event: string; signature: string; body: string }

async function receiver(): Promise<{ url: string; hits: Hit[]; close(): Promise<void> }> {
  const hits: Hit[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (b: Buffer) => { body += b.toString(); });
    req.on('end', () => {
      hits.push({ path: req.url ?? '', event: String(req.headers['x-tide-event']), signature: String(req.headers['x-tide-signature']), body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, hits, close: () => new Promise((r) => server.close(() => r())) };
}

async function until<T>(what: string, f: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

it('SIGHUP puts the reloaded webhooks (URL, secret) in force; an unreadable secret keeps the old ones', async () => {
  const rx = await receiver();
  const dir = mkdtempSync(join(tmp, 'd-'));
  const cfg = join(dir, 'tide.yaml');
  const yaml = (mode: string, path: string, secretEnv: string): string => `mode: ${mode}
intervalSec: 1
hosts:
  - name: a
    uri: qemu:///system?socket=${dir}/no-such/sock-a
webhooks:
  - url: ${rx.url}${path}
    secretEnv: ${secretEnv}
    events: [plan.approved]
    maxAttempts: 1
`;
  writeFileSync(cfg, yaml('approve', '/one', 'TIDE_T_S1'));
  let text = '';
  const io: CliIo = { out: (t) => void (text += t), err: (t) => void (text += t), isTty: false, env: { ...process.env, TIDE_T_S1: S1, TIDE_T_S2: S2, TIDE_T_UNSET: undefined }, cwd: dir };
  const before = { term: new Set(process.listeners('SIGTERM')), hup: new Set(process.listeners('SIGHUP')) };
  const run = main(['--config', cfg, 'daemon', '--log-format', 'json', '--poll-ms', '0', '--stop-grace', '0'], io);
  let code: number | undefined;
  void run.then((c) => { code = c; });
  const lines = (): Record<string, unknown>[] => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const hup = (): void => {
    for (const l of process.listeners('SIGHUP')) if (!before.hup.has(l)) (l as () => void)();
  };
  // An approval by another process: a plan saved 'approved' in the daemon's store.
  const approve = (): number => {
    const s = openSqliteStore(join(dir, '.tide/tide.sqlite'));
    try {
      return s.savePlan({ policy: 'tide', time: 0, steps: [], hosts: [], notMoved: [] }, { createdMs: Date.now(), mode: 'approve', status: 'approved' });
    } finally {
      s.close();
    }
  };
  const announced = (id: number): Hit | undefined => rx.hits.find((h) => h.event === 'plan.approved' && (JSON.parse(h.body) as { data: { planId: number } }).data.planId === id);
  try {
    await until('the first round', () => (lines().some((l) => typeof l.round === 'number') ? true : code !== undefined ? (() => { throw new Error(text); })() : undefined));
    const p1 = approve();
    const h1 = await until(`plan ${p1} announced`, () => announced(p1));
    expect(h1.path).toBe('/one');
    expect(verifySignature(S1, h1.body, h1.signature)).toBe(true);

    // Reload: a new URL and a new secret.
    writeFileSync(cfg, yaml('approve', '/two', 'TIDE_T_S2'));
    hup();
    expect(lines().some((l) => l.event === 'reload' && l.code === 'TIDE_CONFIG'), text).toBe(false);
    const p2 = approve();
    const h2 = await until(`plan ${p2} announced`, () => announced(p2));
    expect(h2.path).toBe('/two');
    expect(verifySignature(S2, h2.body, h2.signature)).toBe(true);
    expect(verifySignature(S1, h2.body, h2.signature)).toBe(false);

    // Reload with a secret that cannot be read: refused whole — neither the webhooks nor the mode change.
    writeFileSync(cfg, yaml('recommend', '/three', 'TIDE_T_UNSET'));
    hup();
    const bad = await until('the failed reload', () => lines().find((l) => l.event === 'reload' && l.code === 'TIDE_CONFIG'));
    expect(String(bad.error)).toMatch(/TIDE_T_UNSET/);
    const p3 = approve();
    const h3 = await until(`plan ${p3} announced`, () => announced(p3));
    expect(h3.path).toBe('/two');
    expect(verifySignature(S2, h3.body, h3.signature)).toBe(true);
    const s = openSqliteStore(join(dir, '.tide/tide.sqlite'));
    try {
      expect(s.daemonStatus()!.mode).toBe('approve');
    } finally {
      s.close();
    }
    expect(rx.hits.filter((h) => h.path === '/one').length).toBe(1);
    expect(rx.hits.some((h) => h.path === '/three')).toBe(false);
  } finally {
    for (const l of process.listeners('SIGTERM')) if (!before.term.has(l)) (l as () => void)();
    await run;
    await rx.close();
  }
  expect(code).toBe(0);
  expect(text).not.toContain(S1);
  expect(text).not.toContain(S2);
}, 60_000);
