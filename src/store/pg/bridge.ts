/**
 * A synchronous door to PostgreSQL. The Store interface is synchronous (better-sqlite3 set it,
 * and the controller, the executor's journal and the HTTP API call it so); the `pg` client is
 * asynchronous. So the client runs in a worker thread and the calling thread blocks on
 * Atomics.wait until the worker answers (the technique synckit uses; ~40 lines here, so that
 * the same code runs from src under vitest and from dist without a transpile step).
 *
 * Contract:
 * - one worker, one connection per bridge: calls are serial, a transaction spans calls;
 * - every call answers within `timeoutMs` or throws DriverError TIDE_STORE_UNAVAILABLE naming
 *   host:port; a call that timed out kills the worker (the server rolls its transaction back
 *   when the connection drops) and the next call starts a new one — a write that timed out may
 *   or may not have committed, so it is never retried here;
 * - a connection lost while idle is replaced by the next call (reconnect);
 * - `batch` runs several statements in one round trip; with `tx` inside BEGIN … COMMIT, and a
 *   statement marked `mustMatch` that matches no row rolls the whole batch back (the fence).
 * The password travels only in workerData, never in a message or an error.
 */
import { createRequire } from 'node:module';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { DriverError } from '../../drivers/errors.js';

export interface PgConnection {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  /** TLS to the server (`true`: verify it against the system CAs). */
  readonly ssl: boolean;
  /** Schema (search_path) holding Tide's tables; created if missing. */
  readonly schema: string;
  /** Longest a call may take (connect included), ms. */
  readonly timeoutMs: number;
}

export interface Stmt {
  readonly text: string;
  readonly values?: readonly unknown[];
  /** The batch is rolled back and fails with `mismatch` when this statement returns or changes no row. */
  readonly mustMatch?: boolean;
}

export interface StmtResult {
  readonly rows: Record<string, unknown>[];
  readonly rowCount: number;
}

/** A batch refused because a `mustMatch` statement matched nothing (index into the batch). */
export class BatchMismatch extends Error {
  constructor(readonly index: number) {
    super(`statement ${index} of the batch matched no row; the batch was rolled back`);
  }
}

/** The worker: plain JavaScript run with `eval` (CommonJS), `pg` loaded from the path the main thread resolved. */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const pg = require(workerData.pgPath);
const c = workerData.conn;
const port = workerData.port;
const flag = new Int32Array(workerData.flag);
// int8 (bigint) and numeric as JavaScript numbers: Tide stores ms and counts well below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));
let client = null;
async function connect() {
  if (client) return client;
  const cl = new pg.Client({
    host: c.host, port: c.port, database: c.database, user: c.user, password: c.password,
    ssl: c.ssl ? { rejectUnauthorized: true } : false,
    // The server cancels a statement at timeoutMs (statement_timeout: its transaction rolls back,
    // nothing written); the client gives up on a silent server a little later (query_timeout).
    connectionTimeoutMillis: c.timeoutMs, query_timeout: c.timeoutMs + 500, statement_timeout: c.timeoutMs, keepAlive: true,
    application_name: 'tide',
  });
  cl.on('error', () => { if (client === cl) client = null; });
  cl.on('end', () => { if (client === cl) client = null; });
  try {
    await cl.connect();
    if (c.schema) {
      const id = '"' + c.schema.replace(/"/g, '""') + '"';
      // two controllers creating it at once: the loser's unique violation is harmless
      await cl.query('CREATE SCHEMA IF NOT EXISTS ' + id).catch((e) => { if (e.code !== '23505' && e.code !== '42P06') throw e; });
      await cl.query('SET search_path TO ' + id);
    }
  } catch (e) {
    cl.end().catch(() => {});
    throw e;
  }
  client = cl;
  return cl;
}
function reply(msg) {
  port.postMessage(msg);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}
port.on('message', async (req) => {
  if (req.ping) {
    reply({ id: req.id, results: [] });
    return;
  }
  if (req.close) {
    if (client) await client.end().catch(() => {});
    client = null;
    reply({ id: req.id, results: [] });
    return;
  }
  let cl = null;
  let inTx = false;
  try {
    try {
      cl = await connect();
    } catch (e) {
      // Refused, unreachable, timed out, bad password, no such database: unavailable, told as such.
      reply({ id: req.id, error: { message: 'cannot connect: ' + String(e.message || e), code: typeof e.code === 'string' ? e.code : null, lost: true } });
      return;
    }
    const results = [];
    if (req.tx) { await cl.query('BEGIN'); inTx = true; }
    for (let i = 0; i < req.stmts.length; i++) {
      const s = req.stmts[i];
      const r = await cl.query(s.text, s.values || []);
      if (s.mustMatch && !(r.rowCount > 0)) {
        if (inTx) { await cl.query('ROLLBACK'); inTx = false; }
        reply({ id: req.id, mismatch: i });
        return;
      }
      results.push({ rows: r.rows || [], rowCount: r.rowCount || 0 });
    }
    if (inTx) await cl.query('COMMIT');
    reply({ id: req.id, results });
  } catch (e) {
    // SQLSTATE class 08 (connection), 57P (shutdown) or no SQLSTATE (socket, timeout): the
    // connection is not trusted again.
    const code = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : null;
    const lost = code === null || code.startsWith('08') || code.startsWith('57P');
    if (inTx && !lost && cl) await cl.query('ROLLBACK').catch(() => {});
    if (lost && cl) { if (client === cl) client = null; cl.end().catch(() => {}); }
    reply({ id: req.id, error: { message: String(e.message || e), code, lost, cancelled: code === '57014' } });
  }
});
`;

const pgPath = createRequire(import.meta.url).resolve('pg');

export class SyncPg {
  private worker: Worker | null = null;
  private port: MessagePort | null = null;
  private flag: Int32Array | null = null;
  private nextId = 1;
  private closed = false;
  /** Counts connections dropped by this side (timeouts): a transaction begun under another epoch is gone. */
  epoch = 0;

  constructor(private readonly conn: PgConnection) {}

  /** "PostgreSQL store at db1:5432 (database tide)": for messages; never the password. */
  get where(): string {
    return `PostgreSQL store at ${this.conn.host}:${this.conn.port} (database ${this.conn.database}, user ${this.conn.user})`;
  }

  private start(): void {
    const shared = new SharedArrayBuffer(4);
    const { port1, port2 } = new MessageChannel();
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { pgPath, conn: this.conn, port: port2, flag: shared },
      transferList: [port2],
    });
    // A store left open must not keep the process alive; the worker's errors surface as call timeouts.
    this.worker.unref();
    this.worker.on('error', () => this.drop());
    this.port = port1;
    this.port.unref();
    this.flag = new Int32Array(shared);
  }

  private drop(): void {
    this.epoch++;
    const w = this.worker;
    this.worker = null;
    this.port?.close();
    this.port = null;
    this.flag = null;
    if (w) void w.terminate();
  }

  /** Runs `stmts` in one round trip (in one transaction when `tx`); throws BatchMismatch, DriverError or Error (SQL). */
  batch(stmts: readonly Stmt[], tx: boolean): StmtResult[] {
    if (this.closed) throw new Error(`${this.where}: the store is closed`);
    if (!this.worker) this.start();
    const id = this.nextId++;
    const flag = this.flag!;
    Atomics.store(flag, 0, 0);
    this.port!.postMessage({ id, stmts, tx });
    const deadline = Date.now() + this.conn.timeoutMs + 1000;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(flag, 0, 0, left) === 'timed-out') {
        this.drop();
        throw new DriverError('TIDE_STORE_UNAVAILABLE', `${this.where}: no answer within ${this.conn.timeoutMs} ms (connection dropped; a write in flight may or may not have committed)`, {
          host: this.conn.host, port: this.conn.port,
        });
      }
      const got = receiveMessageOnPort(this.port!);
      if (!got) {
        Atomics.store(flag, 0, 0);
        continue;
      }
      const msg = got.message as { id: number; results?: StmtResult[]; mismatch?: number; error?: { message: string; code: string | null; lost: boolean; cancelled?: boolean } };
      if (msg.id !== id) continue; // an answer to a call that timed out earlier cannot arrive (that worker is gone), but be strict
      if (msg.error) {
        if (msg.error.cancelled) {
          throw new DriverError('TIDE_STORE_UNAVAILABLE', `${this.where}: no answer within ${this.conn.timeoutMs} ms (the server cancelled the statement: nothing written)`, {
            host: this.conn.host, port: this.conn.port, sqlstate: msg.error.code,
          });
        }
        if (msg.error.lost) {
          throw new DriverError('TIDE_STORE_UNAVAILABLE', `${this.where}: ${msg.error.message}`, { host: this.conn.host, port: this.conn.port, sqlstate: msg.error.code });
        }
        throw Object.assign(new Error(`${this.where}: ${msg.error.message}`), { sqlstate: msg.error.code });
      }
      if (msg.mismatch !== undefined) throw new BatchMismatch(msg.mismatch);
      return msg.results!;
    }
  }

  /** A round trip to the worker and back, no database: the bridge's own cost (bench/store.js). */
  ping(): void {
    if (!this.worker) this.start();
    const id = this.nextId++;
    Atomics.store(this.flag!, 0, 0);
    this.port!.postMessage({ id, ping: true });
    if (Atomics.wait(this.flag!, 0, 0, this.conn.timeoutMs) === 'timed-out') throw new DriverError('TIDE_STORE_UNAVAILABLE', `${this.where}: the store's worker thread did not answer`);
    receiveMessageOnPort(this.port!);
  }

  query(text: string, values: readonly unknown[] = []): StmtResult {
    return this.batch([{ text, values }], false)[0]!;
  }

  close(): void {
    if (this.closed) return;
    try {
      if (this.worker) this.closeConn();
    } catch { /* closing anyway */ }
    this.closed = true;
    this.drop();
  }

  private closeConn(): void {
    const id = this.nextId++;
    Atomics.store(this.flag!, 0, 0);
    this.port!.postMessage({ id, close: true });
    Atomics.wait(this.flag!, 0, 0, 2000);
  }
}
