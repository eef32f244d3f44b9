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
import { dirname, join } from 'node:path';

export interface TranspiledCopyOptions {
  /** Folder the copy is made in (default: the OS temp folder). A copy whose modules import packages goes inside the repository (e.g. node_modules/.cache) so that they resolve. */
  readonly parentDir?: string;
  /** Further files written as they are into the copy (name relative to it → content); part of the cache key. */
  readonly extraFiles?: Readonly<Record<string, string>>;
}

/**
 * Transpiles `files` (paths relative to `dir`, sub-folders kept) into `<parentDir>/<prefix>-<hash>/`
 * if not there yet; returns that directory. The hash covers the files' names and content and the
 * extra files. A copy is complete once its package.json is there (written last, then the folder
 * renamed into place: concurrent callers race harmlessly).
 */
export async function transpiledCopy(dir: string, files: readonly string[], prefix: string, opts: TranspiledCopyOptions = {}): Promise<string> {
  const extras = Object.entries(opts.extraFiles ?? {});
  const sources = files.map((f) => ({ f, text: readFileSync(join(dir, f), 'utf8') }));
  const h = createHash('sha256').update(sources.map((s) => `${s.f}\0${s.text}`).join('\0'));
  for (const [name, text] of extras) h.update(`\0${name}\0${text}`);
  const out = join(opts.parentDir ?? tmpdir(), `${prefix}-${h.digest('hex').slice(0, 16)}`);
  if (existsSync(join(out, 'package.json'))) return out;
  const ts = (await import('typescript')).default;
  const tmp = `${out}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true }); // left by a crashed run of this pid
  const write = (rel: string, text: string): void => {
    const dest = join(tmp, rel);
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, text);
  };
  for (const s of sources) {
    const js = ts.transpileModule(s.text, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      fileName: s.f,
    }).outputText;
    write(s.f.replace(/\.ts$/, '.js'), js);
  }
  for (const [name, text] of extras) write(name, text);
  // Written last: its presence marks a complete copy.
  write('package.json', '{"type":"module"}\n');
  try {
    renameSync(tmp, out);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another process won the race: same content
  }
  return out;
}
