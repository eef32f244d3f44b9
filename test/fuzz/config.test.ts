/**
 * Property tests of the configuration (src/config): random and hostile config objects either
 * validate into a config every run-time parser accepts (libvirt URI, probe target, policy,
 * timers within 2^31-1 ms), or are refused with a ConfigError naming the source and the path.
 * `tide config check` runs the same parse (exit 0 or 2, never a stack trace).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { compilePolicy } from '../../src/core/policy.js';
import { MAX_TIMER_MS } from '../../src/input/schema.js';
import { parseLibvirtUri } from '../../src/libvirt/uri.js';
import { parseProbeTarget } from '../../src/probe/probe.js';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-fuzz-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const hostile = fc.constantFrom(null, '', ' ', 0, -1, -0, 1e308, 2 ** 31, 2 ** 53, 0.5, 'x', [], {}, true);
const uri = fc.constantFrom('qemu:///system', 'qemu+tcp://10.0.0.1/system', 'qemu+ssh://root@h/system?keyfile=/k', 'qemu+tls://h/system?tls_priority=NORMAL',
  'qemu+tcp://h:99999/system', 'qemu+bogus://h/system', 'qemu://', 'x', 'qemu+tcp:///system', 'qemu+unix://host/system', 'qemu+ssh://h/system?auth=sasl');
const probe = fc.constantFrom('tcp://10.0.0.5:25', 'http://10.0.0.5/health', 'tcp://10.0.0.5', 'tcp://h:99999', 'http://', 'ftp://x', 'tcp://[::1]:22');
const policy = fc.constantFrom('tide', 'lr-mmt', 'nope', 'thr-mmt', 'npa');
const args = fc.constantFrom({}, { targetUtil: 0.8 }, { targetUtil: 7 }, { param: 0.9 }, { bogus: 1 }, { __proto__: null, constructor: 1 });
const hostArb = fc.record({
  name: fc.oneof(fc.constantFrom('a', 'b', 'a', 'bad name', ''), hostile),
  uri: fc.oneof({ weight: 4, arbitrary: uri }, hostile),
  migrationAddress: fc.option(fc.constantFrom('tcp://10.0.0.2', 'tcp://10.0.0.2:49152', 'udp://x', 'tcp://', 'nonsense'), { nil: undefined }),
  bootSec: fc.option(fc.oneof(fc.constantFrom(0, 180, 3e6, Infinity), hostile), { nil: undefined }),
}, { requiredKeys: ['name', 'uri'] });
const configArb = fc.record({
  hosts: fc.oneof({ weight: 5, arbitrary: fc.array(hostArb, { minLength: 0, maxLength: 3 }) }, hostile),
  vms: fc.option(fc.dictionary(fc.constantFrom('web', 'db', '__proto__'), fc.record({ probe: fc.option(probe, { nil: undefined }) })), { nil: undefined }),
  migration: fc.option(fc.record({
    timeoutSec: fc.option(fc.oneof(fc.constantFrom(1, 600, 2 ** 31 / 1000, 2147483, 2147484, 1e12), hostile), { nil: undefined }),
    maxConcurrent: fc.option(fc.oneof(fc.constantFrom(1, 2, 1e9), hostile), { nil: undefined }),
  }, { requiredKeys: [] }), { nil: undefined }),
  policy: fc.option(fc.record({ name: policy, args }), { nil: undefined }),
  intervalSec: fc.option(fc.oneof(fc.constantFrom(300, 1e12), hostile), { nil: undefined }),
  driver: fc.option(fc.constantFrom('libvirt', 'virsh', 'xen'), { nil: undefined }),
}, { requiredKeys: ['hosts'] });

describe('configuration under hostile input', () => {
  it('validates into what the run-time parsers accept, or names source and path', () => {
    let ok = 0;
    // mostly valid files too, so the success branch is exercised
    const nearlyValid = fc.record({
      hosts: fc.constant([{ name: 'a', uri: 'qemu:///system' }, { name: 'b', uri: 'qemu+tcp://10.0.0.2/system' }]),
      migration: fc.record({ timeoutSec: fc.constantFrom(1, 600, 2147483, 2147484) }),
      policy: fc.record({ name: fc.constantFrom('tide', 'lr-mmt'), args: fc.constantFrom({}, { targetUtil: 0.8 }) }),
      vms: fc.constant({ web: { probe: 'tcp://10.0.0.5:80' } }),
    });
    fc.assert(fc.property(fc.oneof({ weight: 6, arbitrary: configArb }, { weight: 3, arbitrary: nearlyValid }, fc.jsonValue({ maxDepth: 3 })), (value) => {
      let c;
      try {
        c = parseConfig(value, 'fuzz.json');
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        expect(e.message).toMatch(/fuzz\.json: /);
        expect(e.message).not.toMatch(/\[object Object\]/);
        return;
      }
      ok++;
      expect(c.migration.timeoutSec * 1000).toBeLessThanOrEqual(MAX_TIMER_MS);
      expect(c.intervalSec * 1000).toBeLessThanOrEqual(MAX_TIMER_MS);
      for (const h of c.hosts) {
        expect(h.bootSec * 1000).toBeLessThanOrEqual(MAX_TIMER_MS);
        if (c.driver === 'libvirt') expect(() => parseLibvirtUri(h.uri)).not.toThrow();
      }
      for (const v of Object.values(c.vms)) if (v.probe) expect(() => parseProbeTarget(v.probe!)).not.toThrow();
      expect(() => compilePolicy(c.policy.name, c.policy.args)).not.toThrow();
    }), { numRuns: 400, seed: 81 });
    expect(ok).toBeGreaterThan(0);
  });

  it('refuses what run time refused while config check passed it (issue 6)', () => {
    const base = { hosts: [{ name: 'a', uri: 'qemu:///system' }] };
    const cases: [unknown, RegExp][] = [
      [{ hosts: [{ name: 'a', uri: 'qemu+bogus://h/system' }] }, /hosts\[0\]\.uri: invalid libvirt URI/],
      [{ ...base, vms: { web: { probe: 'tcp://10.0.0.5' } } }, /vms\.web\.probe: tcp probe target needs a port/],
      [{ ...base, policy: { name: 'tide', args: { targetUtil: 7 } } }, /policy: policy 'tide': invalid arguments: targetUtil/],
      [{ ...base, policy: { name: 'nope' } }, /policy: unknown policy 'nope'/],
      [{ ...base, migration: { timeoutSec: 2 ** 31 / 1000 + 1 } }, /migration\.timeoutSec: at most 2147483 s/],
      [{ hosts: [{ name: 'a', uri: 'qemu:///system', migrationAddress: 'udp://x' }] }, /hosts\[0\]\.migrationAddress: /],
    ];
    for (const [value, re] of cases) expect(() => parseConfig(value, 'c.json')).toThrow(re);
  });

  it('tide config check exits 2 with the path, 0 for a good file, and refuses a store path that is not SQLite', async () => {
    const write = (name: string, value: unknown): string => {
      const f = join(tmp, name);
      writeFileSync(f, typeof value === 'string' ? value : JSON.stringify(value));
      return f;
    };
    const good = await runCli(['--config', write('good.json', { hosts: [{ name: 'a', uri: 'qemu+tcp://127.0.0.1/system' }], store: { path: 'state/t.sqlite' } }), 'config', 'check']);
    expect(good.code).toBe(0);
    const bad = await runCli(['--config', write('bad.json', { hosts: [{ name: 'a', uri: 'qemu+tcp://127.0.0.1/system' }], migration: { timeoutSec: 1e7 } }), 'config', 'check']);
    expect(bad).toMatchObject({ code: 2, err: expect.stringMatching(/bad\.json: migration\.timeoutSec: /) });
    writeFileSync(join(tmp, 'notdb'), 'hello');
    const store = await runCli(['--config', write('store.json', { hosts: [{ name: 'a', uri: 'qemu:///system' }], store: { path: 'notdb' } }), 'config', 'check']);
    expect(store).toMatchObject({ code: 2, err: expect.stringMatching(/store\.path: .*notdb exists and is not a SQLite database/) });
    const bom = await runCli(['--config', write('bom.json', `\uFEFF${JSON.stringify({ hosts: [{ name: 'a', uri: 'qemu:///system' }] })}`), 'config', 'check']);
    expect(bom.code).toBe(0);
    const dir = await runCli(['--config', tmp, 'config', 'check']);
    expect(dir).toMatchObject({ code: 2, err: expect.stringMatching(/cannot read config file .*: it is a directory/) });
    for (const r of [good, bad, store, bom, dir]) expect(r.err).not.toMatch(/^\s+at /m);
  });
});
