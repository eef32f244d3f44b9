/**
 * Serves an HTTP app (createHttpApp) with @hono/node-server: on 127.0.0.1 unless told
 * otherwise, over HTTPS when a certificate and key are given. Resolves once listening, with
 * the bound address (port 0 → the port the system chose) and a close() that ends open
 * connections (SSE streams) too.
 */
import { createAdaptorServer } from '@hono/node-server';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { DriverError } from '../drivers/errors.js';

export interface ServeOptions {
  /** Default 127.0.0.1 (this machine only). */
  readonly host?: string;
  /** 0: any free port. */
  readonly port: number;
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
}

export interface HttpServer {
  readonly host: string;
  readonly port: number;
  /** http://127.0.0.1:PORT (https:// with TLS; IPv6 in brackets). */
  readonly url: string;
  close(): Promise<void>;
}

export async function serveHttp(app: { fetch: (req: Request, env: never) => Response | Promise<Response> }, opts: ServeOptions): Promise<HttpServer> {
  const host = opts.host ?? '127.0.0.1';
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (opts.tls) {
    try {
      tls = { cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) };
    } catch (e) {
      throw new DriverError('TIDE_INVALID_ARGUMENT', `cannot read the TLS certificate or key: ${(e as Error).message}`);
    }
  }
  const server = createAdaptorServer({
    fetch: app.fetch as never,
    ...(tls ? { createServer: createHttpsServer, serverOptions: { cert: tls.cert, key: tls.key } } : {}),
  }) as Server;
  // Bounds on slow or idle clients (SSE streams write keep-alives, so they stay open).
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve({
        host: a.address, port: a.port, url: `${tls ? 'https' : 'http'}://${shown}:${a.port}`,
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
      });
    });
  });
}
