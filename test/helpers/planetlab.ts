import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The PlanetLab traces every developer and CI machine has at ../shared (DEVELOPERS.md). */
export const PLANETLAB_DIR = process.env.TIDE_PLANETLAB_DIR ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/data/planetlab');

export function planetlabDay(day: string): string {
  const dir = join(PLANETLAB_DIR, day);
  if (!existsSync(dir)) throw new Error(`PlanetLab day ${day} not found at ${dir} (set TIDE_PLANETLAB_DIR)`);
  return dir;
}
