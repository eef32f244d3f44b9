import { defineConfig } from 'vitest/config';

// Test categories (see test/README.md): unit (pure, fast), integration (real processes on
// loopback or in namespaces), e2e (the built CLI). All run in CI; none is skipped silently.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
