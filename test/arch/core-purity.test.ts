/**
 * The lint rule that keeps the core pure must actually fire: a core module that imports a
 * driver, a store, node:* or reads the clock fails `npm run lint` (and so the build).
 */
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: process.cwd() });

async function problems(code: string, filePath: string): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath });
  return r!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

describe('core purity lint rule', () => {
  it.each([
    ["import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n", /no-restricted-imports: .*core is pure/],
    ["import fs from 'fs';\nexport const x = fs;\n", /no-restricted-imports/],
    ["import { SimDriver } from '../drivers/sim/sim-driver.js';\nexport const x = SimDriver;\n", /must not import the drivers layer/],
    ["import { openSqliteStore } from '../store/store.js';\nexport const x = openSqliteStore;\n", /must not import the store layer/],
    ['export const now = (): number => Date.now();\n', /no-restricted-globals: .*must not read the clock/],
    ['export const r = (): number => Math.random();\n', /no-restricted-properties: .*seeded/],
    ['export const e = (): string | undefined => process.env.HOME;\n', /no-restricted-globals: .*process/],
  ])('rejects %s', async (code, expected) => {
    const found = await problems(code, 'src/core/strategies/example.ts');
    expect(found.join('\n')).toMatch(expected);
  });

  it('accepts pure code in the core, and the same imports outside it', async () => {
    expect(await problems("import { z } from 'zod';\nexport const s = z.number();\n", 'src/core/strategies/example.ts')).toEqual([]);
    expect(await problems("import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n", 'src/sim/example.ts')).toEqual([]);
  });

  it('keeps the libvirt client free of the rest of Tide', async () => {
    const found = await problems("import { plan } from '../core/policy.js';\nexport const x = plan;\n", 'src/libvirt/example.ts');
    expect(found.join('\n')).toMatch(/standalone/);
  });
});
