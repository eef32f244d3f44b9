import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DataError } from './errors.js';

/**
 * A checksum manifest: the files a data set consists of and the SHA-256 of each, in the format
 * `sha256sum` writes and `sha256sum -c` checks (`<64 hex>  <day>/<file name>`, one per line), so
 * a user can verify a cache without Tide. Paths are always `<group>/<file>`: one directory level
 * (for PlanetLab, the day), names taken verbatim (they may contain spaces).
 */
export interface ManifestEntry {
  /** The first path component: for PlanetLab, the day (`20110303`). */
  readonly group: string;
  /** The file name inside the group, verbatim. */
  readonly name: string;
  /** Lower-case hex SHA-256 of the file's bytes. */
  readonly sha256: string;
}

const LINE = /^([0-9a-f]{64}) [ *]([^/]+)\/([^/]+)$/;

/** A path component that can neither escape the cache nor be hidden from the trace reader. */
function safeComponent(s: string): boolean {
  return s !== '' && s !== '.' && s !== '..' && !s.startsWith('.') && !s.includes('\\') && !s.includes('\0');
}

/**
 * Parses manifest text. Every line must be a valid entry (blank lines are allowed); an error
 * names the source and the line. Duplicate paths are an error: a cache path has one checksum.
 */
export function parseManifest(text: string, source: string): ManifestEntry[] {
  const entries: ManifestEntry[] = [];
  const seen = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const m = LINE.exec(line);
    if (!m) throw new DataError('TIDE_DATA_MANIFEST', `${source}:${i + 1}: expected '<sha256 hex>  <group>/<file>' (sha256sum format)`);
    const [, sha256, group, name] = m as unknown as [string, string, string, string];
    if (!safeComponent(group) || !safeComponent(name)) throw new DataError('TIDE_DATA_MANIFEST', `${source}:${i + 1}: unsafe path '${group}/${name}'`);
    const key = `${group}/${name}`;
    if (seen.has(key)) throw new DataError('TIDE_DATA_MANIFEST', `${source}:${i + 1}: '${key}' listed twice`);
    seen.add(key);
    entries.push({ group, name, sha256 });
  }
  if (entries.length === 0) throw new DataError('TIDE_DATA_MANIFEST', `${source}: no entries`);
  return entries;
}

export function readManifest(file: string): ManifestEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError('TIDE_DATA_MANIFEST', `cannot read manifest ${file}: ${(e as Error).message}`, { cause: e });
  }
  return parseManifest(text, file);
}

/** The groups (days) of a manifest, in first-seen order. */
export function manifestGroups(entries: readonly ManifestEntry[]): string[] {
  return [...new Set(entries.map((e) => e.group))];
}

/**
 * A digest of one group's entries (names and checksums, in byte order of the names). A cache
 * records it when the whole group verified, so a changed manifest invalidates the record.
 */
export function groupDigest(entries: readonly ManifestEntry[], group: string): string {
  const lines = entries.filter((e) => e.group === group).map((e) => `${e.sha256}  ${e.group}/${e.name}\n`);
  lines.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(lines.join('')).digest('hex');
}
