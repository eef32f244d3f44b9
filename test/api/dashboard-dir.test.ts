import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dashboardDir, dashboardDirPath } from '../../src/api/dashboard.js';

describe('dashboardDir (the built dashboard createHttpApp serves)', () => {
  it('is dist/web of this package', () => {
    expect(dashboardDirPath()).toBe(join(process.cwd(), 'dist', 'web'));
    expect(dashboardDirPath().endsWith(`${sep}dist${sep}web`)).toBe(true);
  });
  it('is undefined until index.html is there (the API is then served alone)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tide-web-'));
    try {
      expect(dashboardDir(dir)).toBeUndefined();
      writeFileSync(join(dir, 'index.html'), '<div id="app"></div>');
      expect(dashboardDir(dir)).toBe(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
