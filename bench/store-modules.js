// The Store modules and the tests' PostgreSQL fixture, transpiled from the sources into a temp
// directory (TypeScript's transpileModule, node_modules linked), so the store benchmarks
// (bench/store.js, bench/metrics-history.js) measure the sources as they are, without a build.
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FILES = ['src/store/store.ts', 'src/store/rows.ts', 'src/store/pg/bridge.ts', 'src/store/pg/schema.ts', 'src/store/pg/store.ts', 'src/drivers/errors.ts', 'test/helpers/postgres.ts'];

/** Writes the transpiled tree to a new temp directory (name starts with `prefix`) and returns it. */
export function transpileStoreModules(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const rel of FILES) {
    const out = ts.transpileModule(readFileSync(join(ROOT, rel), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    }).outputText;
    const to = join(dir, rel.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, out);
  }
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}
