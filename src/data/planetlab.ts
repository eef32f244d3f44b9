import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError } from './errors.js';
import { fetchDataset, VERIFIED_DIR, type FetchDatasetReport } from './fetch.js';
import { groupDigest, manifestGroups, readManifest, type ManifestEntry } from './manifest.js';

/**
 * The PlanetLab CPU traces (Beloglazov & Buyya, CCPE 2012; CoMon measurements of March/April
 * 2011) as CloudSim ships them: one directory per day, one file per VM, 288 five-minute CPU
 * percentages per file.
 *
 * Source: CloudSim's public repository at the commit that last changed the trace folder
 * (4529b632, 5 Jan 2012); the files there are byte for byte those of the `cloudsim-3.0.3` tag,
 * whose numbers bench/cloudsim-reference.json holds. Pinned to a commit, not a branch, so the
 * checksums in data/planetlab.sha256 stay valid.
 */
export const PLANETLAB_SOURCE =
  'https://raw.githubusercontent.com/Cloudslab/cloudsim/4529b632fc2d11b0f4d17610a546cee433b01a22/modules/cloudsim-examples/src/main/resources/workload/planetlab';

/** The checksum manifest kept in the repository (src/data → ../../data; the same from dist/data). */
export const PLANETLAB_MANIFEST = resolve(dirname(fileURLToPath(import.meta.url)), '../../data/planetlab.sha256');

let manifestCache: ManifestEntry[] | undefined;

/** The repository's PlanetLab manifest, read once. */
export function planetlabManifest(): ManifestEntry[] {
  manifestCache ??= readManifest(PLANETLAB_MANIFEST);
  return manifestCache;
}

/** The days the repository's manifest lists (the ones `tide data fetch planetlab` can fetch). */
export function planetlabDays(): string[] {
  return manifestGroups(planetlabManifest());
}

type Env = Readonly<Record<string, string | undefined>>;

/** `$XDG_CACHE_HOME/tide/planetlab`, or `~/.cache/tide/planetlab` (a relative XDG_CACHE_HOME is ignored, as the XDG spec asks). */
export function planetlabCacheDir(env: Env = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.cache');
  return join(base, 'tide', 'planetlab');
}

/** True when a completed fetch recorded `day` as verified in `dir` against the current manifest. */
export function isDayVerified(dir: string, day: string, manifest: readonly ManifestEntry[] = planetlabManifest()): boolean {
  try {
    return readFileSync(join(dir, VERIFIED_DIR, day), 'utf8').trim() === groupDigest(manifest, day);
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export interface PlanetlabLookup {
  readonly env?: Env;
  /** Directories tried last, in order (e.g. a copy next to a CI checkout). */
  readonly fallbacks?: readonly string[];
}

/** Where a lookup looks, in order, for messages. */
export function planetlabSearchPath(opts: PlanetlabLookup = {}): string[] {
  const env = opts.env ?? process.env;
  if (env.TIDE_PLANETLAB_DIR) return [env.TIDE_PLANETLAB_DIR];
  return [planetlabCacheDir(env), ...(opts.fallbacks ?? [])];
}

/**
 * The directory holding one PlanetLab day, or undefined. Order: `TIDE_PLANETLAB_DIR` when set
 * (and then only there: an explicit choice is never silently replaced by another copy); the
 * download cache, only for a day a fetch verified completely; then the fallbacks.
 */
export function findPlanetlabDay(day: string, opts: PlanetlabLookup = {}): string | undefined {
  const env = opts.env ?? process.env;
  if (env.TIDE_PLANETLAB_DIR) {
    const d = join(env.TIDE_PLANETLAB_DIR, day);
    return isDir(d) ? d : undefined;
  }
  const cache = planetlabCacheDir(env);
  if (isDay(day) && isDayVerified(cache, day)) return join(cache, day);
  for (const f of opts.fallbacks ?? []) if (isDir(join(f, day))) return join(f, day);
  return undefined;
}

function isDay(day: string): boolean {
  return planetlabDays().includes(day);
}

/**
 * The directory of PlanetLab days to use when a caller wants one directory (benchmarks):
 * `TIDE_PLANETLAB_DIR` when set, the cache when it holds at least one verified day, else the
 * first fallback that exists. Throws TIDE_DATA_MISSING naming where it looked.
 */
export function planetlabDir(opts: PlanetlabLookup = {}): string {
  const env = opts.env ?? process.env;
  if (env.TIDE_PLANETLAB_DIR) return env.TIDE_PLANETLAB_DIR;
  const cache = planetlabCacheDir(env);
  if (planetlabDays().some((d) => isDayVerified(cache, d))) return cache;
  const found = (opts.fallbacks ?? []).find((f) => existsSync(f));
  if (found) return found;
  throw new DataError('TIDE_DATA_MISSING', `no PlanetLab traces found (looked in ${planetlabSearchPath(opts).join(', ')}): run \`tide data fetch planetlab\` or set TIDE_PLANETLAB_DIR`);
}

export interface FetchPlanetlabOptions {
  /** Cache directory (default `planetlabCacheDir()`). */
  readonly dir?: string;
  /** Days to fetch (default: every day of the manifest). */
  readonly days?: readonly string[];
  /** Base URL (default PLANETLAB_SOURCE): a file is fetched from `<source>/<day>/<file>`. */
  readonly source?: string;
  /** Checksum manifest to use instead of the repository's (sha256sum format). */
  readonly manifestFile?: string;
  readonly concurrency?: number;
  readonly timeoutMs?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

/** Downloads and verifies PlanetLab days (see `fetchDataset` for the guarantees). */
export async function fetchPlanetlab(opts: FetchPlanetlabOptions = {}): Promise<FetchDatasetReport> {
  const manifest = opts.manifestFile ? readManifest(opts.manifestFile) : planetlabManifest();
  const known = manifestGroups(manifest);
  const days = opts.days ?? known;
  const unknown = days.filter((d) => !known.includes(d));
  if (unknown.length > 0) {
    throw new DataError('TIDE_DATA_UNKNOWN', `no checksums for day${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} in ${opts.manifestFile ?? PLANETLAB_MANIFEST} (it lists ${known.join(', ')})`);
  }
  const wanted = new Set(days);
  return fetchDataset({
    entries: manifest.filter((e) => wanted.has(e.group)),
    manifest,
    baseUrl: opts.source ?? PLANETLAB_SOURCE,
    dir: opts.dir ?? planetlabCacheDir(),
    concurrency: opts.concurrency,
    timeoutMs: opts.timeoutMs,
    onProgress: opts.onProgress,
  });
}
