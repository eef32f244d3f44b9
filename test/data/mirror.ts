import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What the mirror does for one file instead of serving it. */
export type Fault =
  | 'missing' // 404
  | 'corrupt' // the right length, one byte changed
  | 'cut' // headers with the full Content-Length, half the body, then the connection is destroyed
  | 'hang' // never answers
  | 'huge'; // a body of 2 MiB

/**
 * A loopback HTTP mirror of CloudSim's trace layout (`/<prefix>/<day>/<file>`, components
 * percent-encoded) over a private copy of some trace files. Counts requests per file and the
 * most requests it ever had open at once.
 */
export class Mirror {
  readonly root = mkdtempSync(join(tmpdir(), 'tide-mirror-'));
  readonly faults = new Map<string, Fault>();
  readonly requests = new Map<string, number>();
  /** File name → how many more requests for it get 503 (Retry-After: 0) before it is served. */
  readonly unavailable = new Map<string, number>();
  delayMs = 0;
  inFlight = 0;
  maxInFlight = 0;
  private server?: Server;
  private port = 0;

  /** Copies `names` of `day` from `srcDayDir` into the mirror. */
  add(srcDayDir: string, day: string, names: readonly string[]): void {
    mkdirSync(join(this.root, day), { recursive: true });
    for (const n of names) copyFileSync(join(srcDayDir, n), join(this.root, day, n));
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}/workload/planetlab`;
  }

  requestCount(): number {
    return [...this.requests.values()].reduce((a, b) => a + b, 0);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const m = /^\/workload\/planetlab\/([^/]+)\/([^/]+)$/.exec(path);
      const rel = m ? `${m[1]}/${m[2]}` : path;
      this.requests.set(rel, (this.requests.get(rel) ?? 0) + 1);
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      res.on('close', () => void this.inFlight--);
      const fault = m ? this.faults.get(m[2]!) : undefined;
      if (fault === 'hang') return;
      const left = m ? this.unavailable.get(m[2]!) ?? 0 : 0;
      if (left > 0) {
        this.unavailable.set(m![2]!, left - 1);
        res.writeHead(503, { 'retry-after': '0' }).end('busy');
        return;
      }
      setTimeout(() => {
        let body: Buffer;
        try {
          if (!m || fault === 'missing') throw new Error('404');
          body = readFileSync(join(this.root, m[1]!, m[2]!));
        } catch {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('404: Not Found');
          return;
        }
        if (fault === 'corrupt') {
          body = Buffer.from(body);
          body[0] = body[0] === 0x39 ? 0x38 : 0x39;
        }
        if (fault === 'huge') body = Buffer.alloc(2 << 20, 0x30);
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
        if (fault === 'cut') {
          res.write(body.subarray(0, body.length >> 1), () => res.destroy());
          return;
        }
        res.end(body);
      }, this.delayMs);
    });
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }
}
