/**
 * Reading configuration files (src/config/load.ts): YAML with comments and JSON, the format by
 * extension or content, and errors that name the file and the LINE:COL (syntax) or the path and
 * line (schema). Hostile YAML features — duplicate keys, alias bombs, cycles, tags, deep
 * nesting — are refused with a ConfigError before validation.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, detectFormat, loadConfig, MAX_YAML_ALIASES, parseConfigText, scanJson } from '../../src/config/load.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-config-load-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const TWO_HOSTS = `# two hosts
hosts:
  - name: a            # first
    uri: qemu:///system
  - name: b
    uri: qemu+tcp://10.0.0.2/system
`;

/** The ConfigError message of parsing `text` as `file` (fails the test when it is accepted). */
function refusal(text: string, file = 'tide.yaml'): string {
  try {
    parseConfigText(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).not.toMatch(/^\s+at /m);
    return (e as Error).message;
  }
  throw new Error(`accepted: ${text}`);
}

describe('config files: YAML and JSON', () => {
  it('reads YAML with comments and fills in defaults; the same config as JSON gives the same value', () => {
    const y = parseConfigText(TWO_HOSTS, 'tide.yaml');
    expect(y.hosts.map((h) => h.name)).toEqual(['a', 'b']);
    expect(y).toMatchObject({ mode: 'recommend', migration: { mode: 'live' }, hosts: [{ power: { kind: 'none' } }, { bootSec: 180 }] });
    const j = parseConfigText(JSON.stringify({ hosts: [{ name: 'a', uri: 'qemu:///system' }, { name: 'b', uri: 'qemu+tcp://10.0.0.2/system' }] }), 'tide.json');
    expect(j).toEqual(y);
  });

  it('picks the format by extension, else by the first character', () => {
    expect(detectFormat('x.yaml', '{}')).toBe('yaml');
    expect(detectFormat('x.YML', '{}')).toBe('yaml');
    expect(detectFormat('x.json', 'a: 1')).toBe('json');
    expect(detectFormat('tide.conf', '  \n{"hosts": []}')).toBe('json');
    expect(detectFormat('tide.conf', 'hosts: []')).toBe('yaml');
    // a .json file is strict JSON: YAML syntax in it is an error naming JSON
    expect(refusal(TWO_HOSTS, 'tide.json')).toMatch(/^tide\.json: not valid JSON at line 1, column 1: .*\(JSON has no comments: write the file as YAML/);
    // YAML reads JSON (a subset of YAML 1.2)
    expect(parseConfigText('{"hosts": [{"name": "a", "uri": "qemu:///system"}]}', 'tide.yaml').hosts).toHaveLength(1);
  });

  it('a YAML syntax error names file:LINE:COL', () => {
    expect(refusal('hosts:\n  - name: a\n\turi: x\n')).toMatch(/tide\.yaml:3:1: Tabs are not allowed as indentation/);
    expect(refusal('hosts: [\n')).toMatch(/not valid YAML:\n {2}tide\.yaml:\d+:\d+: /);
    expect(refusal('a: 1\n---\nb: 2\n')).toMatch(/tide\.yaml:2:1: more than one YAML document/);
  });

  it('a JSON syntax error names file, line and column', () => {
    expect(refusal('{\n  "hosts": [\n    {"name": "a",}\n  ]\n}', 'c.json')).toMatch(/^c\.json: not valid JSON at line 3, column 18: /);
  });

  it('a schema error names the path and the line it is written on (YAML and JSON)', () => {
    const bad = `${TWO_HOSTS}    bootSec: -1\nmigration:\n  maxConcurrent: 0\n`;
    const m = refusal(bad);
    expect(m).toMatch(/^invalid configuration:/);
    expect(m).toMatch(/ {2}tide\.yaml: hosts\[1\]\.bootSec: .*>=0 \(line 7, column 5\)/);
    expect(m).toMatch(/ {2}tide\.yaml: migration\.maxConcurrent: .*\(line 9, column 3\)/);
    // run-time parser failures (the libvirt URI) are placed as well
    expect(refusal(TWO_HOSTS.replace('qemu+tcp', 'qemu+bogus'))).toMatch(/tide\.yaml: hosts\[1\]\.uri: invalid libvirt URI .*\(line 6, column 5\)/);
    // an unknown key is placed at the key
    expect(refusal(`${TWO_HOSTS}    colour: red\n`)).toMatch(/hosts\[1\]\.colour: Unrecognized key: "colour" \(line 7, column 5\)/);
    const json = '{\n  "hosts": [\n    {"name": "a", "uri": "qemu:///system"},\n    {"name": "b", "uri": 7}\n  ]\n}';
    expect(refusal(json, 'c.json')).toMatch(/c\.json: hosts\[1\]\.uri: .*expected string.*\(line 4, column 19\)/);
  });

  it('duplicate keys are refused in YAML and in JSON (JSON.parse would keep the last silently)', () => {
    expect(refusal(`${TWO_HOSTS}mode: automatic\nmode: recommend\n`)).toMatch(/tide\.yaml:8:1: duplicate key/);
    expect(refusal('{"hosts": [{"name": "a", "uri": "qemu:///system", "uri": "x"}]}', 'c.json')).toMatch(/c\.json: not valid JSON at line 1, column 51: duplicate key/);
    // the same key spelled with an escape is the same key
    expect(refusal('{"mode": "approve", "mod\\u0065": "automatic", "hosts": []}', 'c.json')).toMatch(/duplicate key/);
  });

  it('YAML 1.2 scalars: `no` and dates stay strings, `~` is null, 0x10 is 16, 1e400 and .nan are refused as numbers', () => {
    expect(refusal(`${TWO_HOSTS}mode: no\n`)).toMatch(/mode: Invalid option: expected one of/);
    expect(refusal(`${TWO_HOSTS}    maintenance: yes\n`)).toMatch(/hosts\[1\]\.maintenance: .*expected boolean, received string/);
    expect(parseConfigText(`${TWO_HOSTS}    tags: [2026-12-01, no, off, 1.0.0]\n`, 't.yaml').hosts[1]!.tags).toEqual(['2026-12-01', 'no', 'off', '1.0.0']);
    expect(refusal(`${TWO_HOSTS}    tags: [0o17]\n`)).toMatch(/hosts\[1\]\.tags\[0\]: .*expected string, received number/);
    expect(refusal(`${TWO_HOSTS}mode: ~\n`)).toMatch(/mode: Invalid option/);
    expect(parseConfigText(`${TWO_HOSTS}migration: {maxConcurrent: 0x10}\n`, 't.yaml').migration.maxConcurrent).toBe(16);
    expect(refusal(`${TWO_HOSTS}intervalSec: 1e400\n`)).toMatch(/intervalSec: /);
    expect(refusal(`${TWO_HOSTS}intervalSec: .nan\n`)).toMatch(/intervalSec: /);
  });

  it('anchors and aliases work, an alias bomb is refused, and so is a cycle', () => {
    const anchored = `hosts:\n  - &h {name: a, uri: "qemu:///system", tags: &t [x]}\n  - {name: b, uri: "qemu:///system", tags: *t}\n`;
    expect(parseConfigText(anchored, 't.yaml').hosts[1]!.tags).toEqual(['x']);
    // billion laughs: 10 × 10 × 10 × 10 expansions
    const lol = ['a: &a [x,x,x,x,x,x,x,x,x,x]', ...['b', 'c', 'd'].map((k, i) => `${k}: &${k} [${Array(10).fill(`*${'abc'[i]}`).join(',')}]`)].join('\n');
    expect(refusal(lol)).toMatch(new RegExp(`tide\\.yaml: aliases expand too much \\(more than ${MAX_YAML_ALIASES} times\\)`));
    expect(refusal('hosts: &h [*h]\n')).toMatch(/tide\.yaml: hosts\[0\]: an alias refers to a value that contains it \(a cycle\)/);
  });

  it('tags that build objects (!!binary, !!timestamp), unknown tags and collection keys are refused', () => {
    expect(refusal(`${TWO_HOSTS}policy: {args: {x: !!binary aGVsbG8=}}\n`)).toMatch(/policy\.args\.x: only plain values/);
    expect(refusal(`${TWO_HOSTS}policy: {args: {x: !!timestamp 2001-12-14}}\n`)).toMatch(/policy\.args\.x: only plain values/);
    expect(refusal(`${TWO_HOSTS}mode: !secret recommend\n`)).toMatch(/tide\.yaml:7:7: Unresolved tag: !secret/);
    expect(refusal('? [a, b]\n: 1\n')).toMatch(/tide\.yaml:1:3: a map key must be a plain scalar/);
  });

  it('prototype keys are ordinary unknown keys: refused by path, nothing polluted', () => {
    expect(refusal(`${TWO_HOSTS}__proto__: {polluted: true}\n`)).toMatch(/tide\.yaml: __proto__: Unrecognized key/);
    expect(refusal(`${TWO_HOSTS}    constructor: {prototype: {polluted: true}}\n`)).toMatch(/hosts\[1\]\.constructor: Unrecognized key/);
    expect(refusal('{"hosts": [{"name": "a", "uri": "qemu:///system", "__proto__": {"x": 1}}]}', 'c.json')).toMatch(/hosts\[0\]\.__proto__: Unrecognized key/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('deep nesting is refused before parsing, with the line', () => {
    expect(refusal(`${TWO_HOSTS}policy: {args: {x: ${'['.repeat(100_000)}}}\n`)).toMatch(/tide\.yaml:7: nested too deeply \(open \[ and \{ > 64\)/);
    expect(refusal(`${'- '.repeat(50_000)}x\n`)).toMatch(/tide\.yaml:1: nested too deeply/);
    expect(refusal(`a:\n${Array.from({ length: 300 }, (_, i) => `${' '.repeat(i + 1)}b${i}:`).join('\n')}\n`)).toMatch(/nested too deeply \(indentation/);
    expect(refusal(`${'['.repeat(100_000)}${']'.repeat(100_000)}`, 'c.json')).toMatch(/c\.json:1: nested too deeply/);
    // 40 levels pass the text bound but not the value bound (32)
    expect(refusal(`${TWO_HOSTS}policy: {args: {x: ${'['.repeat(40)}${']'.repeat(40)}}}\n`)).toMatch(/policy\.args\.x(\[0\])+: nested deeper than 32 levels/);
  });

  it('an inline IPMI password in YAML is refused by path and never echoed', () => {
    const secret = 'Sw0rdfish-9f3a';
    const m = refusal(`hosts:\n  - name: a\n    uri: qemu:///system\n    power: {kind: ipmi, address: bmc, user: admin, password: ${secret}}\n`);
    expect(m).toMatch(/tide\.yaml: hosts\[0\]\.power\.password: .*\(line 4, column \d+\)/);
    expect(m).not.toContain(secret);
    // a syntax error on the password's line does not echo it either
    expect(refusal(`hosts:\n  - power: {password: "${secret}}\n`)).not.toContain(secret);
  });

  it('an empty file says so', () => {
    expect(refusal('')).toBe("tide.yaml: the file is empty (a configuration needs at least 'hosts')");
    expect(refusal('# only a comment\n')).toMatch(/the file is empty/);
  });

  it('loadConfig reads .yaml, .yml, .json and extension-less files by content', () => {
    const files: [string, string][] = [
      ['t.yaml', TWO_HOSTS], ['t.yml', TWO_HOSTS], ['t.json', '{"hosts": [{"name": "a", "uri": "qemu:///system"}]}'],
      ['tide-conf', TWO_HOSTS], ['tide-conf-json', '\n {"hosts": [{"name": "a", "uri": "qemu:///system"}]}'],
    ];
    for (const [name, text] of files) {
      writeFileSync(join(tmp, name), text);
      expect(loadConfig(join(tmp, name)).hosts[0]!.name).toBe('a');
    }
    writeFileSync(join(tmp, 'bad.yaml'), `${TWO_HOSTS}mode: sometimes\n`);
    expect(() => loadConfig(join(tmp, 'bad.yaml'))).toThrow(new RegExp(`${tmp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/bad\\.yaml: mode: Invalid option.*\\(line 7, column 1\\)`));
  });
});

describe('scanJson', () => {
  it('finds the first offending character of invalid JSON, and the end for valid JSON or a truncated one', () => {
    const cases: [string, number][] = [
      ['{"a": }', 6], ['{"a": 1,}', 8], ['# c\n{}', 0], ['{"a" 1}', 5], ['[1, 2', 5], ['{"a": tru}', 6], ['{"a": "x\ny"}', 8],
      ['[1] x', 4], ['{"a": 01}', 7], ['{"a": "\\q"}', 8], ['[1, 2]', 6], ['{"a": {"b": [true, null, -1.5e3]}}', 34], ['', 0],
    ];
    for (const [text, at] of cases) expect([text, scanJson(text).errorAt ?? text.length]).toEqual([text, at]);
  });

  it('finds the first duplicate key of one object (the same key in another object is no duplicate)', () => {
    expect(scanJson('{"a": 1, "b": {"a": 2}, "c": [{"a": 3}]}')).toEqual({});
    expect(scanJson('{"a": 1, "b": {"a": 2}, "a": 3}').duplicateAt).toBe(24);
    expect(scanJson('[{"x": 1, "y": 2, "\\u0078": 3}]').duplicateAt).toBe(18);
  });
});

describe('tide config check on YAML', () => {
  it('exits 0 with defaults filled in, or 2 naming file, path and line — no stack trace', async () => {
    const { runCli } = await import('../helpers/cli.js');
    writeFileSync(join(tmp, 'ok.yaml'), TWO_HOSTS);
    const ok = await runCli(['--config', join(tmp, 'ok.yaml'), 'config', 'check']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ hosts: [{ name: 'a' }, { name: 'b' }], mode: 'recommend' });
    writeFileSync(join(tmp, 'no.yaml'), `${TWO_HOSTS}migration:\n  maxConcurrent: 0\n`);
    const no = await runCli(['--config', join(tmp, 'no.yaml'), 'config', 'check']);
    expect(no).toMatchObject({ code: 2, out: '' });
    expect(no.err).toMatch(/no\.yaml: migration\.maxConcurrent: .*\(line 8, column 3\)/);
    writeFileSync(join(tmp, 'syntax.yaml'), 'hosts:\n  - name: a\n uri: x\n');
    const syntax = await runCli(['--config', join(tmp, 'syntax.yaml'), 'config', 'check']);
    expect(syntax.code).toBe(2);
    expect(syntax.err).toMatch(/syntax\.yaml:3:\d+: /);
    for (const r of [ok, no, syntax]) expect(r.err).not.toMatch(/^\s+at /m);
  });
});
