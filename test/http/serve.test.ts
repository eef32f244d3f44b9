/**
 * Serving for real (sockets on loopback only): HTTPS with a certificate made by openssl for the
 * test; the dashboard's static files under / (index.html for client-side routes); routes added
 * by extraRoutes (with requireRole); a port already in use is an error, not a hang.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tideConfigSchema } from '../../src/config/schema.js';
import { createHttpApp } from '../../src/http/app.js';
import { serveHttp, type HttpServer } from '../../src/http/serve.js';
import { createToken } from '../../src/http/tokens.js';
import { openSqliteStore } from '../../src/store/store.js';

const config = tideConfigSchema.parse({ hosts: [{ name: 'a', uri: 'test:///default' }] });
const servers: HttpServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

function httpsGet(url: string, ca: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => void (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serveHttp', () => {
  it('TLS: with a certificate and key the API is HTTPS only (a plain HTTP request gets no API answer)', async () => {
    const ssl = spawnSync('openssl', ['version']);
    if (ssl.status !== 0) {
      if (process.env.CI) throw new Error('openssl is needed for the TLS test');
      console.warn('skipped: openssl not found');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'tide-tls-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    expect(gen.status, gen.stderr).toBe(0);
    const store = openSqliteStore(':memory:');
    const { token } = createToken(store, { role: 'viewer', by: 'test' });
    const srv = await serveHttp(createHttpApp({ store, config }), { port: 0, tls: { certFile: cert, keyFile: key } });
    servers.push(srv);
    expect(srv.url).toBe(`https://127.0.0.1:${srv.port}`);
    const ca = readFileSync(cert);
    expect((await httpsGet(`${srv.url}/api/v1/hosts`, ca)).status).toBe(401);
    const ok = await httpsGet(`${srv.url}/api/v1/hosts`, ca, { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ hosts: [{ name: 'a' }] });
    const plain = await fetch(`http://127.0.0.1:${srv.port}/api/v1/hosts`).then((r) => r.status, () => 'refused');
    expect(plain === 'refused' || plain === 400).toBe(true);
  });

  it('a missing certificate file is a clear error naming it', async () => {
    await expect(serveHttp(createHttpApp({ store: openSqliteStore(':memory:'), config }), { port: 0, tls: { certFile: '/nonexistent/cert.pem', keyFile: '/nonexistent/key.pem' } }))
      .rejects.toThrow(/TLS certificate or key.*nonexistent/);
  });

  it('a port in use is refused (EADDRINUSE), not a hang', async () => {
    const a = await serveHttp(createHttpApp({ store: openSqliteStore(':memory:'), config }), { port: 0 });
    servers.push(a);
    await expect(serveHttp(createHttpApp({ store: openSqliteStore(':memory:'), config }), { port: a.port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});

describe('createHttpApp options', () => {
  it('staticDir: files under /, index.html for client routes; /api/ stays the API (JSON 404, auth)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-static-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Tide</title>');
    writeFileSync(join(dir, 'assets', 'app.js'), 'console.log(1)');
    const app = createHttpApp({ store: openSqliteStore(':memory:'), config, staticDir: dir });
    const idx = await app.request('/');
    expect(idx.status).toBe(200);
    expect(await idx.text()).toContain('<title>Tide</title>');
    expect(await (await app.request('/assets/app.js')).text()).toBe('console.log(1)');
    expect(await (await app.request('/plans/12')).text()).toContain('<title>Tide</title>');
    expect((await app.request('/api/v1/hosts')).status).toBe(401);
    const nf = await app.request('/api/v2/x');
    expect(nf.status).toBe(404);
    expect(nf.headers.get('content-type')).toMatch(/json/);
    expect((await app.request('/../../etc/passwd')).status).not.toBe(500);
  });

  it('extraRoutes: a route added with requireRole is authenticated and role-checked like the others', async () => {
    const store = openSqliteStore(':memory:');
    const viewer = createToken(store, { role: 'viewer', by: 't' }).token;
    const admin = createToken(store, { role: 'admin', by: 't' }).token;
    const app = createHttpApp({
      store, config,
      extraRoutes: (a, { requireRole }) => {
        a.get('/api/v1/x/secret', requireRole('admin'), (c) => c.json({ ok: true }));
        a.get('/metrics', (c) => c.text('tide_up 1\n'));
      },
    });
    expect((await app.request('/api/v1/x/secret')).status).toBe(401);
    expect((await app.request('/api/v1/x/secret', { headers: { authorization: `Bearer ${viewer}` } })).status).toBe(403);
    expect(await (await app.request('/api/v1/x/secret', { headers: { authorization: `Bearer ${admin}` } })).json()).toEqual({ ok: true });
    expect(await (await app.request('/metrics')).text()).toBe('tide_up 1\n');
  });
});
