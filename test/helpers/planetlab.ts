import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The PlanetLab traces every developer and CI machine has at ../shared (DEVELOPERS.md), next to
 * the checkout; TIDE_PLANETLAB_DIR overrides.
 */
const candidates = [
  process.env.TIDE_PLANETLAB_DIR,
  resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/data/planetlab'),
  resolve(process.cwd(), '../shared/data/planetlab'),
].filter((d): d is string => d !== undefined);

export const PLANETLAB_DIR = candidates.find((d) => existsSync(d)) ?? candidates[0]!;

export function planetlabDay(day: string): string {
  const dir = join(PLANETLAB_DIR, day);
  if (!existsSync(dir)) throw new Error(`PlanetLab day ${day} not found at ${dir} (looked in ${candidates.join(', ')}; set TIDE_PLANETLAB_DIR)`);
  return dir;
}
