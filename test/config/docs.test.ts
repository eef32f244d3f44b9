/**
 * docs/configuration.md cannot drift from the schema: every field of the JSON Schema that
 * `tide config schema` prints (derived from the zod schema) has a row in the reference tables,
 * every row names a field that exists, and a row's documented default is the schema's.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../src/config/load.js';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
}

/**
 * Every field path of the schema with its defaults: `hosts[].bootSec`, `vms.<vm>.probe` (a
 * record's key is written `<vm>`). A union of objects told apart by `kind` (power, rules) is
 * written per variant — `hosts[].power:ipmi.address` is `address` of a power section whose
 * kind is ipmi — and its `kind` once, with the variants as its values.
 */
function schemaFields(root: JsonSchema): Map<string, { defaults: unknown[]; values: unknown[] }> {
  const out = new Map<string, { defaults: unknown[]; values: unknown[] }>();
  const field = (p: string): { defaults: unknown[]; values: unknown[] } => {
    const f = out.get(p) ?? { defaults: [], values: [] };
    out.set(p, f);
    return f;
  };
  const walk = (s: JsonSchema, path: string): void => {
    for (const v of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) {
      const kind = v.properties?.kind?.const;
      if (typeof kind === 'string') {
        field(`${path}.kind`).values.push(kind);
        walk({ ...v, properties: Object.fromEntries(Object.entries(v.properties ?? {}).filter(([k]) => k !== 'kind')) }, `${path}:${kind}`);
      } else walk(v, path);
    }
    if (s.items) walk(s.items, `${path}[]`);
    for (const [k, v] of Object.entries(s.properties ?? {})) {
      const p = path === '' ? k : `${path}.${k}`;
      const f = field(p);
      if (v.default !== undefined) f.defaults.push(v.default);
      f.values.push(...(v.enum ?? []));
      walk(v, p);
    }
    if (typeof s.additionalProperties === 'object' && s.additionalProperties.properties) walk(s.additionalProperties, `${path}.<${path === 'vms' ? 'vm' : 'name'}>`);
  };
  walk(root, '');
  return out;
}

const doc = readFileSync(fileURLToPath(new URL('../../docs/configuration.md', import.meta.url)), 'utf8');
/** Reference rows: `| \`path\` | type | default | meaning |`. */
const rows = new Map([...doc.matchAll(/^\| `([^`]+)` \| ([^|]*) \| ([^|]*) \|/gm)].map((m) => [m[1]!, { type: m[2]!.trim(), def: m[3]!.trim() }]));

describe('docs/configuration.md', () => {
  const fields = schemaFields(configJsonSchema() as JsonSchema);

  it('has a row for every field of the schema', () => {
    const missing = [...fields.keys()].filter((f) => !rows.has(f));
    expect(missing, `add rows to docs/configuration.md for: ${missing.join(', ')}`).toEqual([]);
  });

  it('has no row for a field the schema does not have', () => {
    const stale = [...rows.keys()].filter((r) => !fields.has(r));
    expect(stale, `remove or rename rows in docs/configuration.md: ${stale.join(', ')}`).toEqual([]);
  });

  it('states the default the schema has (scalar defaults; "—" when there is none)', () => {
    for (const [path, { defaults }] of fields) {
      const row = rows.get(path);
      if (!row) continue;
      const scalars = defaults.filter((d) => d === null || typeof d !== 'object');
      if (scalars.length === 0) continue;
      for (const d of new Set(scalars)) expect(row.def, `${path}: default ${JSON.stringify(d)}`).toContain(`\`${typeof d === 'string' ? d : JSON.stringify(d)}\``);
    }
  });

  it('lists every value of an enumeration and every kind of a union in the type column', () => {
    for (const [path, { values }] of fields) {
      const row = rows.get(path);
      if (!row) continue;
      for (const v of new Set(values)) expect(row.type, `${path}: value ${String(v)}`).toContain(`\`${String(v)}\``);
    }
  });

  it('links the examples and says which file formats are read', () => {
    for (const f of ['minimal.yaml', 'minimal.json', 'lab.yaml', 'production.yaml']) expect(doc).toContain(`../examples/${f}`);
    expect(doc).toMatch(/YAML/);
  });
});
