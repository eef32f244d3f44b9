/**
 * `tide daemon` (in-process, src/cli) with an http section and a webhook: GET /metrics on its
 * HTTP server answers without a token with the daemon's round counters (the hosts' libvirt
 * sockets do not exist: every round fails with TIDE_HOST_UNREACHABLE, and the loop goes on);
 * the webhook secret never appears in the log; an unreadable webhook secret stops the daemon
 * before it starts, naming the variable.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { CliIo } from '../../src/cli/io.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-metrics-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const SECRET = 'wh-Secret-7c1d0e55';

function config(dir: string): string {
  const f = join(dir, 'tide.yaml');
  writeFileSync(f, `mode: approve
intervalSec: 1
hosts:
  - name: a
    uri: qemu:///system?socket=${dir}/no-such/sock-a
http: { port: 0 }
webhooks:
  - url: http://127.0.0.1:9/hook
    secretEnv: TIDE_TEST_WEBHOOK_SECRET
`);
  return f;
}

function io(env: Record<string, string | undefined>): { io: CliIo; text: () => string } {
  let text = '';
  return { io: { out: (t) => void (text += t), err: (t) => void (text += t), isTty: false, env, cwd: tmp }, text: () => text };
}

async function until<T>(f: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('tide daemon serves /metrics', () => {
  it('GET /metrics without a token shows the failing rounds; the webhook secret is not logged', async () => {
    const dir = mkdtempSync(join(tmp, 'd-'));
    const cfg = config(dir);
    const c = io({ ...process.env, TIDE_TEST_WEBHOOK_SECRET: SECRET });
    const before = new Set(process.listeners('SIGTERM'));
    const run = main(['--config', cfg, 'daemon', '--log-format', 'json', '--poll-ms', '0', '--stop-grace', '0'], c.io);
    let code: number | undefined;
    void run.then((x) => { code = x; });
    try {
      const url = await until(() => /HTTP API on (http:\/\/127\.0\.0\.1:\d+)\/api\/v1/.exec(c.text())?.[1] ?? (code !== undefined ? 'exited' : undefined));
      expect(url, c.text()).not.toBe('exited');
      const body = await until(async () => {
        const r = await fetch(`${url}/metrics`);
        const t = await r.text();
        return r.status === 200 && /tide_rounds_total\{result="error"\} [2-9]/.test(t) ? t : undefined;
      });
      expect(body).toMatch(/tide_round_errors_total\{code="TIDE_HOST_UNREACHABLE"\} \d+/);
      expect(body).toContain('# TYPE tide_host_power_state gauge');
      expect((await fetch(`${url}/api/v1/hosts`)).status).toBe(401);
    } finally {
      // The daemon's own SIGTERM handler (not a real signal: nothing else in this process hears it).
      for (const l of process.listeners('SIGTERM')) if (!before.has(l)) (l as () => void)();
      await run;
    }
    expect(code).toBe(0);
    expect(c.text()).not.toContain(SECRET);
  });

  it('an unset webhook secret variable: the daemon does not start, and says which variable', async () => {
    const dir = mkdtempSync(join(tmp, 'e-'));
    const c = io({ ...process.env, TIDE_TEST_WEBHOOK_SECRET: undefined });
    const code = await main(['--config', config(dir), 'daemon', '--log-format', 'json'], c.io);
    expect(code).not.toBe(0);
    expect(c.text()).toMatch(/TIDE_TEST_WEBHOOK_SECRET/);
  });
});
