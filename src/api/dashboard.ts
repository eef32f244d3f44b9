/**
 * Where the built dashboard is (web/ → dist/web by `npm run build:web`), for createHttpApp's
 * staticDir: dist/web of this package, found from src/api and dist/api alike. Undefined when it
 * has not been built (the API is then served alone).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/web of this package (whether or not it exists). */
export function dashboardDirPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'web');
}

/** dist/web when its index.html exists, else undefined. */
export function dashboardDir(dir: string = dashboardDirPath()): string | undefined {
  return existsSync(join(dir, 'index.html')) ? dir : undefined;
}
