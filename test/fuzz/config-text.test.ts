/**
 * Fuzzing the configuration loader end to end (src/config/load.ts parseConfigText, what `tide
 * config check` and every command run on a file): ≥ 10 000 generated files, as JSON text and as
 * YAML text — config-shaped values with hostile leaves (wrong types, huge and NaN-like numbers,
 * unknown and prototype keys, an inline password), raw YAML with special scalars (`no`, `~`,
 * `0x10`, `1e400`, dates, tags, anchors, aliases) and deep nesting, and mutated JSON. Each one
 * is accepted, or refused with a ConfigError naming the file with LINE[:COL] or a path — never
 * another exception, never a stack trace, never the password.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfigText } from '../../src/config/load.js';

const SECRET = 'pw-Zq81-secret';
const RUNS = { shapedJson: 2500, shapedYaml: 2500, rawYaml: 3000, rawJson: 2000 };

type Outcome = 'accepted' | 'refused';

/**
 * The contract: accepted (and printable as `config check` prints it), or a ConfigError whose
 * every line names the file, then LINE:COL (syntax) or a path (schema).
 */
function judge(text: string, file: string): Outcome {
  let config;
  try {
    config = parseConfigText(text, file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e; // a crash: anything else is a bug
    const m = e.message;
    expect(m).not.toMatch(/^\s+at /m);
    expect(m).not.toContain('[object Object]');
    expect(m).not.toContain(SECRET);
    const f = file.replace('.', '\\.');
    if (m.startsWith('invalid configuration:\n')) {
      // the path: top level, a word, or a quoted key; then ': problem'
      for (const line of m.split('\n').slice(1)) expect(line).toMatch(new RegExp(`^ {2}(${f}: (\\(top level\\)|[A-Za-z_$]|\\[).*: \\S|… and \\d+ more$)`));
    } else if (m.startsWith('not valid YAML:\n')) {
      for (const line of m.split('\n').slice(1)) expect(line).toMatch(new RegExp(`^ {2}${f}:\\d+:\\d+: \\S`));
    } else {
      expect(m).toMatch(new RegExp(`^${f}(:\\d+)?: \\S`));
    }
    return 'refused';
  }
  expect(config.hosts.length).toBeGreaterThan(0);
  expect(() => JSON.stringify(config)).not.toThrow();
  return 'accepted';
}

// ---- config-shaped values with hostile leaves --------------------------------------------------

/** `depth` levels of lists or maps: deeper than the value bound (32) or the text bound (64). */
const nested = (depth: number, map: boolean): unknown => Array.from({ length: depth }).reduce<unknown>((v) => (map ? { a: v } : [v]), 1);
const hostile = fc.constantFrom<unknown>(nested(40, false), nested(40, true), nested(70, false), null, '', ' ', 0, -1, -0, 1e308, 2 ** 31, 2 ** 53 + 1, 0.5, 'NaN', 'Infinity', '1e400', '0x10', 'no', '~',
  '2001-12-14', 'x'.repeat(300), '\u0000', '\ud800', [], {}, true, [[[[[]]]]], { __proto__: { polluted: 1 } }, { constructor: { prototype: {} } });
const maybe = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined, freq: 2 });
const or = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 5, arbitrary: a }, { weight: 1, arbitrary: hostile });
const unknownKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'bogus', 'hasOwnProperty', 'toString', '<<');
const withExtra = (a: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<unknown> =>
  fc.tuple(a, fc.option(fc.tuple(unknownKey, hostile), { freq: 8 })).map(([o, extra]) => {
    if (!extra) return o;
    const copy: Record<string, unknown> = { ...o };
    Object.defineProperty(copy, extra[0], { value: extra[1], enumerable: true, writable: true, configurable: true });
    return copy;
  });

const power = fc.oneof(
  fc.record({ kind: fc.constant('ipmi'), address: or(fc.constant('10.0.0.9')), user: or(fc.constant('admin')), passwordFile: maybe(fc.constant('/etc/tide/bmc')),
    passwordEnv: maybe(fc.constant('BMC')), password: maybe(fc.constant(SECRET)), port: maybe(or(fc.constantFrom(623, 0, 70000))) }, { requiredKeys: ['kind'] }),
  fc.record({ kind: fc.constant('wol'), mac: or(fc.constantFrom('02:77:00:00:00:0a', '02:77:00:00:00', 'zz:zz:zz:zz:zz:zz')),
    off: maybe(fc.constantFrom({ kind: 'ssh', target: 'root@h' }, { kind: 'ssh', target: '-oProxyCommand=x' }, { kind: 'ipmi', address: 'b', user: 'u', password: SECRET })) }, { requiredKeys: ['kind'] }),
  fc.record({ kind: fc.constantFrom('ssh', 'none', 'magic', ''), target: maybe(fc.constantFrom('root@h', '-x', 'a b')) }, { requiredKeys: ['kind'] }),
);
const host = withExtra(fc.record({
  name: or(fc.constantFrom('a', 'b', 'a', 'node-1', 'bad name', '-x')),
  uri: or(fc.constantFrom('qemu:///system', 'qemu+tcp://10.0.0.1/system', 'qemu+ssh://root@h/system', 'qemu+bogus://h/system', 'qemu+tcp://h:99999/system', 'x')),
  power: maybe(or(power)),
  bootSec: maybe(or(fc.constantFrom(0, 180, 3e6, Infinity))),
  tags: maybe(or(fc.array(or(fc.constantFrom('ssd', 'rack-a')), { maxLength: 3 }))),
  maintenance: maybe(or(fc.boolean())),
  migrationAddress: maybe(fc.constantFrom('tcp://10.0.0.2', 'udp://x', 'tcp://')),
}, { requiredKeys: ['name', 'uri'] }));
const rule = fc.oneof(
  fc.record({ kind: fc.constantFrom('affinity', 'antiAffinity', 'pin', 'avoid'), id: or(fc.constantFrom('r1', 'r2', 'r1')), vms: maybe(or(fc.constant(['web', 'db']))),
    vm: maybe(fc.constant('db')), hosts: maybe(or(fc.constantFrom(['a'], ['zz'], []))), strength: maybe(or(fc.constantFrom('hard', 'soft', 'must'))) }, { requiredKeys: ['kind', 'id'] }),
  hostile,
);
const configValue = withExtra(fc.record({
  hosts: or(fc.array(host, { minLength: 0, maxLength: 3 })),
  vms: maybe(or(fc.dictionary(fc.constantFrom('web', 'db', '__proto__', 'constructor'), withExtra(fc.record({
    probe: maybe(or(fc.constantFrom('tcp://10.0.0.5:25', 'http://10.0.0.5/health', 'tcp://10.0.0.5', 'ftp://x'))),
    pinned: maybe(or(fc.boolean())),
  })), { maxKeys: 2 }))),
  rules: maybe(or(fc.array(rule, { maxLength: 3 }))),
  migration: maybe(or(withExtra(fc.record({ maxConcurrent: maybe(or(fc.constantFrom(1, 2, 1e9))), timeoutSec: maybe(or(fc.constantFrom(600, 2147484, 1e12))), mode: maybe(or(fc.constantFrom('live', 'offline', 'teleport'))) })))),
  policy: maybe(or(fc.record({ name: or(fc.constantFrom('tide', 'lr-mmt', 'nope')), args: maybe(or(fc.constantFrom({}, { targetUtil: 0.8 }, { targetUtil: 7 }, { bogus: 1 }, { spareHosts: 1, minOnSec: 3600 }))) }))),
  mode: maybe(or(fc.constantFrom('recommend', 'approve', 'automatic', 'yes'))),
  intervalSec: maybe(or(fc.constantFrom(300, 1e12))),
  store: maybe(or(fc.record({ path: or(fc.constantFrom('t.sqlite', ':memory:')) }))),
  driver: maybe(or(fc.constantFrom('libvirt', 'virsh', 'xen'))),
}, { requiredKeys: ['hosts'] }));

/** Valid configurations in varied shapes, so that acceptance is exercised as well. */
const validConfig = fc.record({
  hosts: fc.constantFrom(
    [{ name: 'a', uri: 'qemu:///system' }, { name: 'b', uri: 'qemu+tcp://10.0.0.2/system', tags: ['ssd'] }],
    [{ name: 'a', uri: 'qemu+ssh://root@a/system', power: { kind: 'ipmi', address: 'bmc-a', user: 'tide', passwordFile: '/etc/tide/bmc' }, bootSec: 240 }],
    [{ name: 'a', uri: 'qemu+tls://a/system', power: { kind: 'wol', mac: '02:77:00:00:00:0a', off: { kind: 'ssh', target: 'root@a' } } }, { name: 'b', uri: 'qemu+tls://b/system', excluded: true }],
  ),
  vms: maybe(fc.constantFrom({}, { web: { probe: 'http://10.0.0.5/health' }, db: { pinned: true } })),
  rules: maybe(fc.constantFrom([], [{ kind: 'antiAffinity', id: 'r', vms: ['web', 'db'] }], [{ kind: 'pin', id: 'p', vm: 'db', hosts: ['a'], strength: 'soft' }])),
  migration: maybe(fc.record({ maxConcurrent: fc.integer({ min: 1, max: 8 }), timeoutSec: fc.integer({ min: 1, max: 2147483 }) })),
  policy: maybe(fc.constantFrom({ name: 'tide', args: { targetUtil: 0.8, spareHosts: 1 } }, { name: 'lr-mmt' })),
  mode: maybe(fc.constantFrom('recommend', 'approve', 'automatic')),
  intervalSec: maybe(fc.integer({ min: 1, max: 86_400 })),
}, { requiredKeys: ['hosts'] });
const shaped = fc.oneof({ weight: 3, arbitrary: configValue }, { weight: 1, arbitrary: validConfig });

// ---- raw YAML: trees of hostile scalars, keys and styles ---------------------------------------

const scalars = ['no', 'yes', 'on', '~', 'null', 'true', '0x10', '0o17', '1e400', '-1e400', '.nan', '.inf', '-.inf', '2001-12-14', '2001-12-14t21:59:43.10-05:00',
  '12:30:45', '-0', '9007199254740993', '1e308', '""', "''", '"\\0"', '"\\ud800"', '!!binary aGVsbG8=', '!!timestamp 2001-12-14', '!!str 5', '!!int "7"', '!!float x',
  '!foo x', '!!set {a, b}', '!!omap [a: 1]', '&a x', '*a', '*nope', 'qemu:///system', 'qemu+tcp://10.0.0.2/system', 'recommend', 'tide', 'ipmi', 'a', 'b', SECRET,
  '[]', '{}', '[a, *a]', '{kind: ipmi}', '"__proto__"', '"x: y"', 'x # comment', '[', '}', '- x', '? x', '%', '@x', '`x', '"unterminated', '\'\'\'', '|', '>'];
const keys = ['hosts', 'name', 'uri', 'power', 'kind', 'address', 'user', 'password', 'passwordFile', 'tags', 'vms', 'rules', 'id', 'vm', 'strength',
  'migration', 'maxConcurrent', 'timeoutSec', 'policy', 'args', 'mode', 'intervalSec', 'store', 'path', 'driver', '__proto__', 'constructor', 'prototype',
  '<<', '"a b"', '? x', '&k hosts', '*a', '!!str hosts', '1', '~', 'hosts'];

type Tree = { s: string } | { map: [string, Tree][] } | { seq: Tree[] };
const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(...scalars).map((s): Tree => ({ s })),
    fc.array(fc.tuple(fc.constantFrom(...keys), tie('tree')), { maxLength: 4 }).map((map): Tree => ({ map })),
    fc.array(tie('tree'), { maxLength: 4 }).map((seq): Tree => ({ seq }))),
}));

/** Block YAML for a tree (flow style when `flow`), with whatever the leaves make of it. */
function emitYaml(t: Tree, indent: string, flow: boolean): string {
  if ('s' in t) return t.s;
  if (flow) return 'map' in t ? `{${t.map.map(([k, v]) => `${k}: ${emitYaml(v, '', true)}`).join(', ')}}` : `[${t.seq.map((v) => emitYaml(v, '', true)).join(', ')}]`;
  const items: string[] = 'map' in t ? t.map.map(([k, v]) => `${indent}${k}:${'s' in v ? ' ' : '\n'}${emitYaml(v, `${indent}  `, false)}`)
    : t.seq.map((v) => `${indent}-${'s' in v ? ' ' : '\n'}${emitYaml(v, `${indent}  `, false)}`);
  return items.length === 0 ? ('map' in t ? `${indent}{}` : `${indent}[]`) : items.join('\n');
}

// ---- raw JSON: trees with hostile numbers and strings, and single-character mutations ----------

const jsonLeaves = ['1e400', '-0', '9007199254740993', '0', '-1', '0.5', 'null', 'true', '"no"', '"~"', '"0x10"', '"__proto__"', '"\\u0000"', '"\\ud800"',
  '"qemu:///system"', '"a"', '"tide"', '"recommend"', `"${SECRET}"`, '[]', '{}'];
function emitJson(t: Tree): string {
  if ('s' in t) return jsonLeaves[t.s.length % jsonLeaves.length]!;
  if ('map' in t) return `{${t.map.map(([k, v]) => `${JSON.stringify(k.replace(/^[?&*!"~ ]+|"/g, '') || 'k')}: ${emitJson(v)}`).join(',\n ')}}`;
  return `[${t.seq.map(emitJson).join(', ')}]`;
}
const mutate = (text: string, at: number, ch: string): string => {
  const i = at % (text.length + 1);
  return ch === '' ? text.slice(0, i) + text.slice(i + 1) : text.slice(0, i) + ch + text.slice(i);
};

describe(`configuration files under hostile input (${Object.values(RUNS).reduce((a, b) => a + b)} generated files)`, () => {
  const seen = { json: { accepted: 0, refused: 0 }, yaml: { accepted: 0, refused: 0 } };

  it('config-shaped values as JSON text: accepted or refused by file and path', () => {
    fc.assert(fc.property(shaped, fc.boolean(), (v, pretty) => {
      seen.json[judge(JSON.stringify(v, null, pretty ? 2 : undefined), 'fuzz.json')]++;
    }), { numRuns: RUNS.shapedJson, seed: 7001 });
  });

  it('config-shaped values as YAML text (block or flow style)', () => {
    fc.assert(fc.property(shaped, fc.boolean(), (v, flow) => {
      seen.yaml[judge(stringify(v, { collectionStyle: flow ? 'flow' : 'block' }), 'fuzz.yaml')]++;
    }), { numRuns: RUNS.shapedYaml, seed: 7002 });
  });

  it('raw YAML with special scalars, tags, anchors and aliases, alone or under a valid head', () => {
    const head = 'hosts:\n  - name: a\n    uri: qemu:///system\n';
    fc.assert(fc.property(tree, fc.boolean(), fc.boolean(), (t, flow, withHead) => {
      const body = emitYaml(t, '', flow);
      seen.yaml[judge(withHead ? `${head}${'map' in t && !flow ? body : `policy:\n  args:\n    x: ${body.replace(/\n/g, '\n      ')}`}\n` : body, 'fuzz.yaml')]++;
    }), { numRuns: RUNS.rawYaml, seed: 7003 });
  });

  it('raw JSON trees and mutated valid JSON: syntax errors name file and line', () => {
    const valid = JSON.stringify({ hosts: [{ name: 'a', uri: 'qemu:///system' }, { name: 'b', uri: 'qemu+tcp://10.0.0.2/system' }], mode: 'approve' }, null, 2);
    fc.assert(fc.property(tree, fc.nat(), fc.constantFrom('', '{', '}', '[', ']', ',', ':', '"', '\\', '#', 'x', '\u0000', '\t'), fc.boolean(), (t, at, ch, raw) => {
      seen.json[judge(raw ? emitJson(t) : mutate(valid, at, ch), 'fuzz.json')]++;
    }), { numRuns: RUNS.rawJson, seed: 7004 });
  });

  it('both formats saw accepted and refused files, ≥ 10 000 in all', () => {
    const total = seen.json.accepted + seen.json.refused + seen.yaml.accepted + seen.yaml.refused;
    console.log(`config fuzz: ${total} files — JSON ${seen.json.accepted} accepted / ${seen.json.refused} refused, YAML ${seen.yaml.accepted} accepted / ${seen.yaml.refused} refused`);
    expect(total).toBeGreaterThanOrEqual(10_000);
    for (const f of [seen.json, seen.yaml]) {
      expect(f.accepted).toBeGreaterThan(50);
      expect(f.refused).toBeGreaterThan(50);
    }
  });
});
