/**
 * Helper programs that Tide runs as separate `node` processes (the service probe, the lab's
 * power agent) must be JavaScript. From the build they are in dist/; when Tide runs from its
 * TypeScript sources (vitest, the in-process CLI) their modules — which import only node:* and
 * each other — are transpiled once (TypeScript's transpileModule: a dev dependency, present
 * whenever the sources are) into a cache directory keyed by their names and content.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Transpiles `files` (in `dir`) into `$TMPDIR/<prefix>-<hash>/` if not there yet; returns that directory. */
export async function transpiledCopy(dir: string, files: readonly string[], prefix: string): Promise<string> {
  const sources = files.map((f) => ({ f, text: readFileSync(join(dir, f), 'utf8') }));
  const hash = createHash('sha256').update(sources.map((s) => `${s.f}\0${s.text}`).join('\0')).digest('hex').slice(0, 16);
  const out = join(tmpdir(), `${prefix}-${hash}`);
  if (existsSync(join(out, 'package.json'))) return out;
  const ts = (await import('typescript')).default;
  const tmp = `${out}.${process.pid}.tmp`;
  mkdirSync(tmp, { recursive: true });
  for (const s of sources) {
    const js = ts.transpileModule(s.text, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      fileName: s.f,
    }).outputText;
    writeFileSync(join(tmp, s.f.replace(/\.ts$/, '.js')), js);
  }
  // Written last: its presence marks a complete copy.
  writeFileSync(join(tmp, 'package.json'), '{"type":"module"}\n');
  try {
    renameSync(tmp, out);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another process won the race: same content
  }
  return out;
}
