import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataError } from './errors.js';
import { groupDigest, type ManifestEntry } from './manifest.js';

/**
 * Downloads the files of a checksum manifest into a cache directory laid out as
 * `<dir>/<group>/<name>` (the layout the trace readers take), verifying every file.
 *
 * Guarantees:
 * - A file appears at its final path only once its SHA-256 matched: it is downloaded into a
 *   private `.partial-<pid>-…` directory inside `dir` (same filesystem) and renamed into place.
 *   A cached file whose checksum no longer matches is deleted before it is fetched again, so the
 *   cache never holds an unverified trace file.
 * - Resumable: files already present with the right checksum are not downloaded again; an
 *   interrupted run leaves only verified files plus its partial directory, which the next run
 *   removes once the process that made it is gone.
 * - `<dir>/.verified/<group>` records that every file of a group verified, with the digest of
 *   the group's manifest entries (`groupDigest`); it is written only after a run that fetched
 *   the whole group succeeded, and removed when a run touching the group starts.
 * - Transient failures (HTTP 408/429/5xx, network errors, timeouts, interrupted bodies) are
 *   retried `retries` times with exponential backoff (honouring Retry-After up to 60 s).
 * - Fails fast: after the first final failure no new download starts; the error names the file
 *   and the URL. Requests run at most `concurrency` at a time, each bounded by `timeoutMs` (headers
 *   and body) and by `maxFileBytes`.
 */
export interface FetchDatasetOptions {
  readonly entries: readonly ManifestEntry[];
  /** The entries' whole groups as the manifest lists them: markers are written only for groups
   *  whose every entry was fetched. Defaults to `entries`. */
  readonly manifest?: readonly ManifestEntry[];
  /** http(s) URL under which a file lives at `<group>/<name>` (each component URL-encoded). */
  readonly baseUrl: string;
  readonly dir: string;
  /** Simultaneous requests (default 8). */
  readonly concurrency?: number;
  /** Per request, headers and body together (default 30 000 ms). */
  readonly timeoutMs?: number;
  /** A body larger than this is refused (default 1 MiB; a PlanetLab file is under 1.2 KiB). */
  readonly maxFileBytes?: number;
  /** Further attempts after a transient failure (HTTP 408/429/5xx, network error, timeout,
   *  interrupted body), default 3. A checksum mismatch or another HTTP status is final. */
  readonly retries?: number;
  /** Wait before retry n (1-based): `retryDelayMs × 2^(n-1)`, or the server's Retry-After when
   *  it asks for longer, capped at 60 s (default 1000 ms). */
  readonly retryDelayMs?: number;
  /** Called after each file is settled (verified in the cache or downloaded and verified). */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface FetchDatasetReport {
  readonly dir: string;
  /** Files in the run. */
  readonly files: number;
  /** Files already in the cache with the right checksum (not downloaded). */
  readonly cached: number;
  /** Files downloaded and verified in this run. */
  readonly downloaded: number;
  /** Cached files whose checksum no longer matched; deleted and downloaded again. */
  readonly replaced: number;
  readonly bytesDownloaded: number;
  /** Groups now recorded as complete and verified. */
  readonly verifiedGroups: readonly string[];
}

export const VERIFIED_DIR = '.verified';
const PARTIAL_PREFIX = '.partial-';

/** The URL of one entry under a base URL; every path component is percent-encoded. */
export function entryUrl(baseUrl: string, e: ManifestEntry): string {
  return `${baseUrl.replace(/\/+$/, '')}/${encodeURIComponent(e.group)}/${encodeURIComponent(e.name)}`;
}

/** SHA-256 of a file, or null when it does not exist. Streams, so a stray huge file costs no memory. */
async function fileSha256(path: string): Promise<string | null> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return hash.digest('hex');
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Removes partial directories left by runs whose process is gone (killed mid-download). */
async function removeStalePartials(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const m = /^\.partial-(\d+)-/.exec(name);
    if (m && !processAlive(Number(m[1]))) await rm(join(dir, name), { recursive: true, force: true });
  }
}

function describe(e: unknown, timeoutMs: number): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return `no complete answer within ${timeoutMs} ms`;
  const cause = err.cause;
  if (cause && typeof cause === 'object' && (cause.code || cause.message)) return [cause.code, cause.message].filter(Boolean).join(': ');
  return err.message;
}

/** A failed attempt worth repeating; `retryAfterMs` is the server's Retry-After, if any. */
class Transient extends Error {
  constructor(readonly error: DataError, readonly retryAfterMs?: number) {
    super(error.message);
  }
}

function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const sec = Number(header);
  if (Number.isFinite(sec) && sec >= 0) return sec * 1000;
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);

async function download(url: string, path: string, timeoutMs: number, maxBytes: number): Promise<Buffer> {
  let res: Response;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    res = await fetch(url, { signal, redirect: 'follow' });
  } catch (e) {
    throw new Transient(new DataError('TIDE_DATA_FETCH', `${path}: download failed: ${describe(e, timeoutMs)} (${url})`, { cause: e }));
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    const err = new DataError('TIDE_DATA_FETCH', `${path}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} from ${url}`);
    if (TRANSIENT_STATUS.has(res.status)) throw new Transient(err, retryAfterMs(res.headers.get('retry-after')));
    throw err;
  }
  const tooBig = (): DataError => new DataError('TIDE_DATA_FETCH', `${path}: larger than ${maxBytes} bytes, refused (${url})`);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw tooBig();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  if (res.body) {
    const reader = res.body.getReader();
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > maxBytes) {
          await reader.cancel().catch(() => {});
          throw tooBig();
        }
        chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      }
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw new Transient(new DataError('TIDE_DATA_FETCH', `${path}: download interrupted: ${describe(e, timeoutMs)} (${url})`, { cause: e }));
    }
  }
  return Buffer.concat(chunks, size);
}

export async function fetchDataset(opts: FetchDatasetOptions): Promise<FetchDatasetReport> {
  const concurrency = opts.concurrency ?? 8;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxBytes = opts.maxFileBytes ?? 1 << 20;
  const retries = opts.retries ?? 3;
  const retryDelayMs = opts.retryDelayMs ?? 1000;
  if (!Number.isInteger(retries) || retries < 0 || retries > 10) throw new RangeError(`retries must be an integer in 0..10 (got ${retries})`);
  if (!(retryDelayMs >= 0 && retryDelayMs <= 60_000)) throw new RangeError(`retryDelayMs must be in 0..60000 (got ${retryDelayMs})`);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new RangeError(`concurrency must be an integer in 1..64 (got ${concurrency})`);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1) throw new RangeError(`timeoutMs must be an integer in 1..${2 ** 31 - 1} (got ${timeoutMs})`);
  let base: URL;
  try {
    base = new URL(opts.baseUrl);
  } catch {
    throw new DataError('TIDE_DATA_FETCH', `source '${opts.baseUrl}' is not a URL`);
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new DataError('TIDE_DATA_FETCH', `source '${opts.baseUrl}' is not an http(s) URL`);

  try {
    return await fetchInto(opts, { concurrency, timeoutMs, maxBytes, retries, retryDelayMs });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (!(e instanceof DataError) && typeof err.code === 'string' && typeof err.syscall === 'string') {
      throw new DataError('TIDE_DATA_IO', `cannot use the cache directory ${opts.dir}: ${err.message}`, { cause: e });
    }
    throw e;
  }
}

interface Limits {
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly retries: number;
  readonly retryDelayMs: number;
}

async function fetchInto(opts: FetchDatasetOptions, { concurrency, timeoutMs, maxBytes, retries, retryDelayMs }: Limits): Promise<FetchDatasetReport> {
  const { dir, entries } = opts;
  const manifest = opts.manifest ?? entries;
  const groups = [...new Set(entries.map((e) => e.group))];
  await mkdir(join(dir, VERIFIED_DIR), { recursive: true });
  await removeStalePartials(dir);
  for (const g of groups) await rm(join(dir, VERIFIED_DIR, g), { force: true });
  const partial = join(dir, `${PARTIAL_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(partial);

  let next = 0;
  let settled = 0;
  let failure: unknown;
  let failed = false;
  let cached = 0;
  let downloaded = 0;
  let replaced = 0;
  let bytes = 0;

  const one = async (index: number, e: ManifestEntry): Promise<void> => {
    const rel = `${e.group}/${e.name}`;
    const target = join(dir, e.group, e.name);
    const have = await fileSha256(target);
    if (have === e.sha256) {
      cached++;
      return;
    }
    if (have !== null) {
      await rm(target, { force: true });
      replaced++;
    }
    const url = entryUrl(opts.baseUrl, e);
    let body: Buffer | undefined;
    for (let attempt = 0; body === undefined; attempt++) {
      try {
        body = await download(url, rel, timeoutMs, maxBytes);
      } catch (err) {
        if (!(err instanceof Transient)) throw err;
        if (attempt >= retries || failed) throw retries > 0 ? new DataError('TIDE_DATA_FETCH', `${err.error.message}; gave up after ${attempt + 1} attempts`, { cause: err.error }) : err.error;
        const backoff = retryDelayMs * 2 ** attempt;
        await sleep(Math.min(60_000, Math.max(backoff, err.retryAfterMs ?? 0)));
      }
    }
    const got = createHash('sha256').update(body).digest('hex');
    if (got !== e.sha256) throw new DataError('TIDE_DATA_CHECKSUM', `${rel}: checksum mismatch: expected sha256 ${e.sha256}, got ${got} (${body.length} bytes from ${url}); nothing written`);
    const tmp = join(partial, String(index));
    await writeFile(tmp, body, { flag: 'wx' });
    await mkdir(join(dir, e.group), { recursive: true });
    await rename(tmp, target);
    downloaded++;
    bytes += body.length;
  };

  const worker = async (): Promise<void> => {
    while (!failed && next < entries.length) {
      const index = next++;
      try {
        await one(index, entries[index]!);
      } catch (e) {
        if (!failed) {
          failed = true;
          failure = e;
        }
        return;
      }
      opts.onProgress?.(++settled, entries.length);
    }
  };

  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, entries.length) }, worker));
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  if (failed) throw failure;

  const verifiedGroups: string[] = [];
  for (const g of groups) {
    const all = manifest.filter((e) => e.group === g).length;
    if (entries.filter((e) => e.group === g).length !== all) continue;
    const marker = join(dir, VERIFIED_DIR, g);
    const tmp = join(dir, VERIFIED_DIR, `.${g}.${process.pid}.tmp`);
    await writeFile(tmp, `${groupDigest(manifest, g)}\n`);
    await rename(tmp, marker);
    verifiedGroups.push(g);
  }
  return { dir, files: entries.length, cached, downloaded, replaced, bytesDownloaded: bytes, verifiedGroups };
}
