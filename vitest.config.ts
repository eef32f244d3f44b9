import { readdirSync, readFileSync } from 'node:fs';
import { configDefaults, defineConfig } from 'vitest/config';

// Test categories (see test/README.md): unit (pure, fast), integration (real processes on
// loopback or in namespaces), e2e (the built CLI). All run in CI; none is skipped silently.
//
// Two projects split the same files, each file in exactly one, so `vitest run` runs every file
// once and `vitest run --project unit` (`npm run test:unit`) runs what needs no root:
//  - system: files that use the private-libvirtd, lab or PostgreSQL fixtures (root, libvirt,
//    QEMU; the postgresql server package, run as the postgres user);
//  - unit: every other test file.
// A file is classified by what it imports, so a new libvirt test lands in `system` by itself.
const NEEDS_SYSTEM = /from '(?:\.\.\/helpers\/(?:libvirtd|lab|postgres)|\.\/fixture)\.js'/;
const testFiles = (readdirSync('test', { recursive: true, encoding: 'utf8' }))
  .map((f) => `test/${f.split('\\').join('/')}`)
  .filter((f) => f.endsWith('.test.ts'));
const system = testFiles.filter((f) => NEEDS_SYSTEM.test(readFileSync(f, 'utf8')));

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    setupFiles: ['test/setup/fast-check.ts'],
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...system] } },
      { extends: true, test: { name: 'system', include: system } },
    ],
  },
});
