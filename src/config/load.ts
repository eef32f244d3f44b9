/**
 * Loading the configuration file: YAML 1.2 (with comments) or JSON, then one validation —
 * the zod schema (src/config/schema.ts) and the run-time parsers. Every error is a
 * ConfigError (code TIDE_CONFIG, exit status 2) whose lines read `FILE[:LINE:COL]: path: problem`.
 */
import { readFileSync, statSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type YAMLError } from 'yaml';
import { z } from 'zod';
import { compilePolicy } from '../core/policy.js';
import { checkStorePath, decodeUtf8 } from '../input/schema.js';
import { parseLibvirtUri } from '../libvirt/uri.js';
import { parseProbeTarget } from '../probe/probe.js';
import { tideConfigSchema, type PowerConfig, type TideConfig } from './schema.js';

/** A config file that cannot be read or does not validate. Message names the file and the field. */
export class ConfigError extends Error {
  readonly code = 'TIDE_CONFIG';
}

/** The two file formats: YAML 1.2 (comments, anchors) and JSON (which YAML also reads). */
export type ConfigFormat = 'yaml' | 'json';

/** Largest configuration file read, bytes. */
export const MAX_CONFIG_BYTES = 16 * 2 ** 20;
/** Deepest nesting of a configuration value (the schema itself needs 5 levels). */
export const MAX_CONFIG_DEPTH = 32;
/** YAML alias expansions allowed per file (billion-laughs bound; the yaml package's default). */
export const MAX_YAML_ALIASES = 100;
/** Nesting a configuration text may show before it is parsed (see checkNesting). */
export const MAX_TEXT_NESTING = 64;

/** Maps a path inside the value to ' (line L, column C)' of where it is written ('' when unknown). */
type Locate = (path: readonly PropertyKey[]) => string;
const nowhere: Locate = () => '';

/**
 * The format of a configuration file: by extension (.yaml/.yml, .json), else by content — a
 * file whose first non-blank character is '{' or '[' is JSON, anything else YAML.
 */
export function detectFormat(file: string, text: string): ConfigFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  return /^\s*[[{]/.test(text) ? 'json' : 'yaml';
}

/**
 * Validates a configuration value: the zod schema (types, ranges, defaults), then the same
 * parsers run time uses — libvirt URIs (src/libvirt/uri.ts, libvirt driver), probe targets
 * (parseProbeTarget), migration addresses and the policy with its arguments (compilePolicy) —
 * so `tide config check` passes exactly the files a run accepts. Every error line reads
 * `source[:LINE:COL]: path: problem` (the position when the value came from a file).
 */
export function parseConfig(value: unknown, source = '<config>', locate: Locate = nowhere): TideConfig {
  // `source: path: problem (line L, column C)`: the path first, as for every other input.
  const line = (path: readonly PropertyKey[], problem: string): string => `  ${source}: ${configPath(path)}: ${problem}${locate(path)}`;
  const r = tideConfigSchema.safeParse(value);
  if (!r.success) {
    const lines = r.error.issues.slice(0, 10).map((i) => {
      // An unknown key is placed where the key is written, not at its object.
      const path = i.code === 'unrecognized_keys' && i.keys.length > 0 ? [...i.path, i.keys[0]!] : i.path;
      return line(path, i.message);
    });
    if (r.error.issues.length > 10) lines.push(`  … and ${r.error.issues.length - 10} more`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const config = r.data;
  const issues: string[] = [];
  const check = (path: PropertyKey[], fn: () => unknown): void => {
    try {
      fn();
    } catch (e) {
      issues.push(line(path, (e as Error).message));
    }
  };
  const names = new Set<string>();
  for (const [i, h] of config.hosts.entries()) {
    if (names.has(h.name)) issues.push(line(['hosts', i, 'name'], `duplicate host name '${h.name}'`));
    names.add(h.name);
    // virsh parses its own URIs (and knows more client options): checked only for our client.
    if (config.driver === 'libvirt') check(['hosts', i, 'uri'], () => parseLibvirtUri(h.uri));
    if (h.migrationAddress !== undefined) check(['hosts', i, 'migrationAddress'], () => parseMigrationAddress(h.migrationAddress!));
    const power = h.power;
    if (power.kind === 'wol') check(['hosts', i, 'power', 'broadcast'], () => { if (!isIPv4(power.broadcast)) throw new Error(`'${power.broadcast}' is not an IPv4 broadcast address`); });
  }
  for (const [vm, v] of Object.entries(config.vms)) {
    if (v.probe !== undefined) check(['vms', vm, 'probe'], () => parseProbeTarget(v.probe!));
  }
  check(['policy'], () => compilePolicy(config.policy.name, config.policy.args));
  // Rules name VMs freely (a VM may not exist yet), but hosts must be configured ones, and ids
  // must be unique: explanations name rules by id.
  const ruleIds = new Set<string>();
  for (const [i, r] of config.rules.entries()) {
    if (ruleIds.has(r.id)) issues.push(line(['rules', i, 'id'], `duplicate rule id '${r.id}'`));
    ruleIds.add(r.id);
    if (r.kind === 'pin') for (const h of r.hosts) if (!names.has(h)) issues.push(line(['rules', i, 'hosts'], `no host named '${h}' in hosts`));
  }
  if (issues.length > 0) throw new ConfigError(`invalid configuration:\n${issues.join('\n')}`);
  return config;
}

/** tcp://HOST[:PORT] (or rdma://), the form QEMU's migrate_uri takes. */
function parseMigrationAddress(text: string): void {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`'${text}' is not tcp://HOST[:PORT]`);
  }
  if (u.protocol !== 'tcp:' && u.protocol !== 'rdma:') throw new Error(`'${text}': the migration address is tcp://HOST[:PORT] (or rdma://)`);
  if (u.hostname === '') throw new Error(`'${text}': no host`);
}

/** ':LINE:COL' (1-based) of a character offset. */
function lineCol(counter: LineCounter, offset: number): string {
  const { line, col } = counter.linePos(offset);
  return `:${line}:${col}`;
}

/**
 * A locator over a parsed YAML document: walks the path through maps (by scalar key) and
 * sequences (by index) and answers the position of the deepest node it reaches — the key of a
 * map entry, so `hosts[1].uri` points at `uri:`. Aliases are not followed.
 */
function yamlLocator(doc: Document, counter: LineCounter): Locate {
  return (path) => {
    let node: unknown = doc.contents;
    let offset = isNode(node) && node.range ? node.range[0] : undefined;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        if (isScalar(pair.key) && pair.key.range) offset = pair.key.range[0];
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
        node = node.items[seg];
        if (isNode(node) && node.range) offset = node.range[0];
      } else break;
    }
    if (offset === undefined) return '';
    const { line, col } = counter.linePos(offset);
    return ` (line ${line}, column ${col})`;
  };
}

/**
 * The value must be plain data: null, booleans, finite-or-not numbers, strings, arrays and
 * plain objects (no YAML !!binary/!!timestamp objects), not nested beyond MAX_CONFIG_DEPTH,
 * and not cyclic (a YAML alias inside its own anchor). Checked before zod sees it, so neither
 * validation nor printing the config can recurse without bound.
 */
function checkPlain(value: unknown, source: string, locate: Locate): void {
  const ancestors = new Set<object>();
  const walk = (v: unknown, path: PropertyKey[]): void => {
    if (v === null || typeof v !== 'object') return;
    const fail = (problem: string): never => {
      throw new ConfigError(`invalid configuration:\n  ${source}: ${configPath(path)}: ${problem}${locate(path)}`);
    };
    if (ancestors.has(v)) fail('an alias refers to a value that contains it (a cycle)');
    if (path.length >= MAX_CONFIG_DEPTH) fail(`nested deeper than ${MAX_CONFIG_DEPTH} levels`);
    const proto = Object.getPrototypeOf(v) as unknown;
    if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) fail('only plain values (strings, numbers, booleans, lists, maps) are allowed; remove the YAML tag');
    ancestors.add(v);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], [...path, k]);
    ancestors.delete(v);
  };
  walk(value, []);
}

/**
 * Refuses text nested deeper than MAX_TEXT_NESTING before a parser sees it: the yaml parser's
 * memory grows steeply with nesting (20 000 `- ` on one line exhausts the heap, a fatal error
 * no catch can stop). Counted conservatively — every `[`/`{` not yet closed, the indentation,
 * and `- `/`? `/`: ` indicators on one line — so a real configuration is never near the bound.
 */
function checkNesting(text: string, source: string): void {
  let flow = 0;
  let line = 1;
  let lineStart = 0;
  const fail = (what: string): never => {
    throw new ConfigError(`${source}:${line}: nested too deeply (${what} > ${MAX_TEXT_NESTING}); a configuration needs a few levels`);
  };
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x0a;
    if (c === 0x5b || c === 0x7b) {
      if (++flow > MAX_TEXT_NESTING) fail('open [ and {');
    } else if (c === 0x5d || c === 0x7d) {
      if (flow > 0) flow--;
    } else if (c === 0x0a) {
      const l = text.slice(lineStart, i);
      const indent = /^[ \t]*/.exec(l)![0].length;
      if (indent > MAX_TEXT_NESTING * 4) fail('indentation');
      const indicators = l.match(/(?:^|[ \t])[-?:](?=[ \t]|$)/g)?.length ?? 0;
      if (indicators > MAX_TEXT_NESTING) fail('- ? : indicators on one line');
      line++;
      lineStart = i + 1;
    }
  }
}

/**
 * The yaml package's message without the source text some of them quote (`Unexpected scalar
 * token in YAML stream: "…"`): that text may be a secret, e.g. an inline password on a broken line.
 */
function yamlProblem(e: YAMLError): string {
  if (e.code === 'DUPLICATE_KEY') return 'duplicate key (each key may appear once in a map)';
  if (e.code === 'MULTIPLE_DOCS') return 'more than one YAML document (---): a configuration is one document';
  if (e.code === 'TAG_RESOLVE_FAILED') return `${e.message} (only the YAML 1.2 core tags are read)`;
  return e.message.replace(/(?:: |escape sequence ).*$/s, '').slice(0, 200);
}

/** `hosts[1].uri`; a key that is not a plain word is quoted (`vms["web.example"]`), so a line stays one line. */
function configPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(String(k))) out += out === '' ? String(k) : `.${String(k)}`;
    else out += `[${JSON.stringify(String(k).slice(0, 80))}]`;
  }
  return out;
}

/**
 * Reads YAML text: YAML 1.2 core schema (`no` and `2001-12-14` stay strings, `~` is null),
 * one document, unique keys, scalar keys only, at most MAX_YAML_ALIASES alias expansions;
 * unknown tags are errors, not warnings. Errors name file:LINE:COL.
 */
function readYaml(text: string, source: string): { value: unknown; locate: Locate } {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: false, strict: true, version: '1.2', merge: false, logLevel: 'error' });
  const problems = [...doc.errors, ...doc.warnings].map((e) => `  ${source}${lineCol(counter, e.pos[0])}: ${yamlProblem(e)}`);
  visit(doc, {
    Pair(_, pair) {
      if (!isScalar(pair.key) && pair.key !== null) {
        const at = isNode(pair.key) && pair.key.range ? lineCol(counter, pair.key.range[0]) : '';
        problems.push(`  ${source}${at}: a map key must be a plain scalar, not a list or map`);
      }
    },
  });
  if (problems.length > 0) throw new ConfigError(`not valid YAML:\n${problems.slice(0, 10).join('\n')}`);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (e) {
    // The yaml package throws a ReferenceError when aliases expand beyond maxAliasCount.
    throw new ConfigError(`${source}: ${e instanceof ReferenceError ? `aliases expand too much (more than ${MAX_YAML_ALIASES} times)` : `cannot read: ${(e as Error).message}`}`);
  }
  return { value, locate: yamlLocator(doc, counter) };
}

/** What scanJson found: the first syntax error's offset, the first duplicate key's offset. */
export interface JsonScan {
  readonly errorAt?: number;
  readonly duplicateAt?: number;
}

type JsonFrame = { open: '['; index: number } | { open: '{'; keys: Set<string>; key: string };

/**
 * A JSON grammar walk, used because JSON.parse neither reports duplicate keys (it keeps the
 * last) nor, on Node 20, a position for most syntax errors. `onNode(path, offset)` is called for
 * every object member (at its key) and array element (at its value) when given — that is how
 * errors are placed at LINE:COL. Containers live on an explicit stack; value() recurses only into
 * first elements, which checkNesting has bounded to MAX_TEXT_NESTING.
 */
export function scanJson(text: string, onNode?: (path: readonly PropertyKey[], offset: number) => void): JsonScan {
  let i = 0;
  let duplicateAt: number | undefined;
  const stack: JsonFrame[] = [];
  const path = (): PropertyKey[] => stack.map((f) => (f.open === '[' ? f.index : f.key));
  const ws = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const str = (): void => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const member = (frame: JsonFrame & { open: '{' }): void => {
    ws();
    const start = i;
    str();
    const key = JSON.parse(text.slice(start, i)) as string;
    if (frame.keys.has(key)) duplicateAt ??= start;
    frame.keys.add(key);
    frame.key = key;
    onNode?.(path(), start);
    ws();
    if (text[i] !== ':') fail();
    i++;
    value();
  };
  // value() returns after a container's first element; the loop below reads the rest.
  const element = (): void => {
    ws();
    onNode?.(path(), i);
    value();
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '"') return str();
    if (c === '[' || c === '{') {
      i++;
      ws();
      if (text[i] === (c === '[' ? ']' : '}')) {
        i++;
        return;
      }
      if (c === '[') {
        const frame: JsonFrame = { open: '[', index: 0 };
        stack.push(frame);
        return element();
      }
      const frame: JsonFrame = { open: '{', keys: new Set(), key: '' };
      stack.push(frame);
      return member(frame);
    }
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) fail();
    i += m![0].length;
  };
  try {
    onNode?.([], 0);
    value();
    for (;;) {
      ws();
      const top = stack.at(-1);
      if (top === undefined) break;
      if (text[i] === ',') {
        i++;
        if (top.open === '{') member(top);
        else {
          top.index++;
          element();
        }
      } else if (text[i] === (top.open === '[' ? ']' : '}')) {
        stack.pop();
        i++;
      } else fail();
    }
    ws();
    return i < text.length ? { errorAt: i, duplicateAt } : { duplicateAt };
  } catch (e) {
    if (typeof e === 'number') return { errorAt: Math.min(e, text.length), duplicateAt };
    throw e;
  }
}

/** Line and column (1-based) of a character offset. */
function linePos(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: offset - start + 1 };
}

/**
 * Reads JSON text with JSON.parse (exact JSON semantics) and scanJson: duplicate keys, which
 * JSON.parse would silently merge, are refused; errors are placed at LINE:COL.
 */
function readJson(text: string, source: string): { value: unknown; locate: Locate } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const { line, col } = linePos(text, scanJson(text).errorAt ?? text.length);
    const hint = /^\s*(#|\/\/)/m.test(text) ? ' (JSON has no comments: write the file as YAML, e.g. tide.yaml)' : '';
    throw new ConfigError(`${source}: not valid JSON at line ${line}, column ${col}: ${(e as Error).message.split('\n')[0]}${hint}`);
  }
  const { duplicateAt } = scanJson(text);
  if (duplicateAt !== undefined) {
    const { line, col } = linePos(text, duplicateAt);
    throw new ConfigError(`${source}: not valid JSON at line ${line}, column ${col}: duplicate key (each key may appear once in an object)`);
  }
  // Built on the first refusal only: where each path is written; a path not written (a missing
  // key) is placed at its nearest written parent.
  let where: Map<string, number> | undefined;
  const pathKey = (p: readonly PropertyKey[]): string => p.map(String).join('\u0000');
  const locate: Locate = (want) => {
    if (!where) {
      const w = new Map<string, number>();
      scanJson(text, (p, offset) => void w.set(pathKey(p), offset));
      where = w;
    }
    for (let n = want.length; n >= 0; n--) {
      const at = where.get(pathKey(want.slice(0, n)));
      if (at === undefined) continue;
      const { line, col } = linePos(text, at);
      return ` (line ${line}, column ${col})`;
    }
    return '';
  };
  return { value, locate };
}

/**
 * Parses configuration text (the file's content) in the given format — by default the one
 * detectFormat picks for `file` — and validates it with parseConfig. `file` names the source
 * in every error. Throws ConfigError; never anything else for any text.
 */
export function parseConfigText(text: string, file: string, format: ConfigFormat = detectFormat(file, text)): TideConfig {
  let read: { value: unknown; locate: Locate };
  checkNesting(text, file);
  try {
    read = format === 'json' ? readJson(text, file) : readYaml(text, file);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    // A stack overflow in a parser on absurd nesting is bad input, not a bug of ours.
    if (e instanceof RangeError) throw new ConfigError(`${file}: cannot read: nested too deeply`);
    throw e;
  }
  if (read.value === null || read.value === undefined) throw new ConfigError(`${file}: the file is empty (a configuration needs at least 'hosts')`);
  checkPlain(read.value, file, read.locate);
  return parseConfig(read.value, file, read.locate);
}

/** Reads, parses and validates a configuration file (.yaml, .yml or .json; see detectFormat). */
export function loadConfig(file: string): TideConfig {
  const path = resolve(file);
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new Error(st.isDirectory() ? 'it is a directory' : 'not a regular file');
    if (st.size > MAX_CONFIG_BYTES) throw new Error(`${Math.round(st.size / 2 ** 20)} MiB is too large for a configuration file`);
    text = decodeUtf8(readFileSync(path), path, (m) => new ConfigError(m));
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  const config = parseConfigText(text, path);
  // Power secret and key files are relative to the configuration file, like the store.
  for (const h of config.hosts) resolvePowerPaths(h.power, dirname(path));
  // The store lives next to the configuration (src/store/lock.ts storePathFor).
  const store = config.store.path;
  try {
    checkStorePath(store === ':memory:' || isAbsolute(store) ? store : resolve(dirname(path), store), `${path}: store.path`);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  return config;
}

/** Makes passwordFile / identityFile (also of a WoL host's off method) absolute against `dir`. */
function resolvePowerPaths(p: PowerConfig, dir: string): void {
  if (p.kind === 'wol' && p.off) resolvePowerPaths(p.off, dir);
  if (p.kind === 'ipmi' && p.passwordFile !== undefined && !isAbsolute(p.passwordFile)) p.passwordFile = resolve(dir, p.passwordFile);
  if (p.kind === 'ssh' && p.identityFile !== undefined && !isAbsolute(p.identityFile)) p.identityFile = resolve(dir, p.identityFile);
}

export function configJsonSchema(): unknown {
  return z.toJSONSchema(tideConfigSchema, { io: 'input' });
}
