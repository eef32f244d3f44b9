import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPlanetlabDay, planetlabCacheDir, planetlabDir, planetlabSearchPath } from '../../src/data/index.js';

/**
 * Where tests find the PlanetLab traces, in order: TIDE_PLANETLAB_DIR (when set, only there);
 * the download cache of `tide data fetch planetlab`, for days a fetch verified; a `shared/data/
 * planetlab` directory next to the checkout (the CI machines keep a copy there).
 */
const FALLBACKS = [
  resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/data/planetlab'),
  resolve(process.cwd(), '../shared/data/planetlab'),
];

function tryDir(): string {
  try {
    return planetlabDir({ fallbacks: FALLBACKS });
  } catch {
    return process.env.TIDE_PLANETLAB_DIR || planetlabCacheDir();
  }
}

/** The directory of PlanetLab days the tests use (see the lookup order above). */
export const PLANETLAB_DIR = tryDir();

/** One day's directory; throws naming every place it looked and how to get the traces. */
export function planetlabDay(day: string): string {
  const dir = findPlanetlabDay(day, { fallbacks: FALLBACKS });
  if (dir === undefined) {
    const where = planetlabSearchPath({ fallbacks: FALLBACKS }).map((d) => join(d, day));
    throw new Error(`PlanetLab day ${day} not found (looked in ${where.join(', ')}): run \`tide data fetch planetlab\` (or set TIDE_PLANETLAB_DIR)`);
  }
  return dir;
}
