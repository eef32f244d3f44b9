/**
 * Property test of the command line: random argv arrays built from each command's flags and
 * hostile values (1e9, -0, NaN, '', ' 5', '0x10', 2^53+1 …), run in-process. Every run ends
 * with status 0, 1 or 2 — never 70 (a bug) — prints no stack frame, no NaN and no Infinity on
 * stdout, and a status 2 says what is wrong. Bounded: valid values are small, so a run that is
 * accepted is short; fixed numRuns.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-fuzz-argv-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const trace = join(tmp, 't.json');
writeFileSync(trace, JSON.stringify({ format: 'tide-trace/1', vms: [{ id: 'a', cpuPct: [10, 50, 90] }, { id: 'b', cpuPct: [5, 5, 5] }] }));
// Port 1 on loopback refuses at once: cluster commands fail fast and handled (status 1).
const config = join(tmp, 'tide.json');
writeFileSync(config, JSON.stringify({ hosts: [{ name: 'a', uri: 'qemu+tcp://127.0.0.1:1/system' }, { name: 'b', uri: 'qemu+tcp://127.0.0.1:1/system?x=1' }] }));

const HOSTILE = ['1e9', '-0', 'NaN', '', ' 5', '0x10', 'Infinity', '-1', '0.5', '9007199254740993', 'abc', '1e-9', '1', '2', '3', '--json'];
const value = fc.constantFrom(...HOSTILE);

/** Values a flag accepts (so that accepted runs are generated too; all small and fast). */
const VALID: Record<string, string[]> = {
  '--hours': ['1', '2'], '--hosts': ['2', '3', '20'], '--seed': ['0', '7'], '--mode': ['automatic', 'recommend', 'live'], '--policy': ['tide', 'dvfs', 'lr-mmt:1.2', 'thr-mu:0.8'],
  '--accounting': ['cloudsim', 'realistic'], '--vms': ['0', '5', '40'], '--interval-ms': ['0'], '--timeout': ['5'], '--bandwidth': ['100'],
  '--max-downtime': ['300'], '--postcopy-after': ['0'], '--concurrency': ['1'], '--max-per-host': ['1'], '--probe': ['none'], '--host': ['a'],
  '--mem-mib': ['128'], '--dirty-mib': ['0'], '--accel': ['bogus'], '--placement': ['lab-a'],
};

/** Per command: fixed leading words, flags that take a value, boolean flags. */
const COMMANDS: { words: string[]; flags: string[]; bools: string[]; fixed?: string[] }[] = [
  // --observe-days 0: the default week in recommend mode would make every accepted run long
  // (its hostile values are rows of test/e2e/cli-hostile.test.ts)
  { words: ['demo'], flags: ['--hours', '--hosts', '--seed', '--mode', '--policy'], bools: ['--json', '--quiet'], fixed: ['--quiet', '--observe-days', '0'] },
  { words: ['simulate', '--scenario'], flags: ['--policy', '--accounting'], bools: ['--json'], fixed: ['--observe-days', '0'] },
  { words: ['simulate', '--trace', trace], flags: ['--policy', '--hosts', '--accounting'], bools: ['--json'] },
  { words: ['bench', 'plan'], flags: ['--hosts', '--vms', '--seed', '--policy'], bools: ['--json'] },
  { words: ['--config', config, 'hosts'], flags: ['--interval-ms'], bools: ['--json', '--no-usage'] },
  { words: ['--config', config, 'vms'], flags: ['--interval-ms', '--host'], bools: ['--json'] },
  { words: ['--config', config, 'migrate', 'vm1', '--to', 'b'], flags: ['--timeout', '--bandwidth', '--max-downtime', '--postcopy-after', '--mode', '--probe'], bools: ['--dry-run', '--json'] },
  { words: ['--config', config, 'evacuate', 'a'], flags: ['--concurrency', '--max-per-host', '--timeout', '--interval-ms'], bools: ['--dry-run', '--json'] },
  // --accel bogus is always added: a lab up that passed validation would need root and minutes
  { words: ['lab', 'up'], flags: ['--vms', '--mem-mib', '--dirty-mib', '--placement'], bools: [], fixed: ['--accel', 'bogus'] },
];

const flagValue = (flag: string): fc.Arbitrary<[string, string]> =>
  fc.oneof(value, fc.constantFrom(...(VALID[flag] ?? ['1']))).map((v) => [flag, v]);

const argvArb = fc.integer({ min: 0, max: COMMANDS.length - 1 }).chain((i) => {
  const c = COMMANDS[i]!;
  const scenario = c.words.at(-1) === '--scenario'
    ? fc.tuple(fc.oneof(value, fc.constantFrom('0.25', '0.5')), fc.oneof(value, fc.constantFrom('2', '3'))).map(([d, h]) => [`office:days=${d},hosts=${h}`])
    : fc.constant([] as string[]);
  return fc.tuple(
    scenario,
    fc.uniqueArray(fc.constantFrom(...c.flags), { minLength: 1, maxLength: 3 }).chain((flags) => fc.tuple(...flags.map(flagValue))),
    fc.subarray(c.bools),
  ).map(([sc, pairs, bools]) => {
    const argv = [...c.words, ...sc, ...pairs.flat(), ...bools, ...(c.fixed ?? [])];
    // simulate needs a policy: a default unless the flags give one
    if (c.words[0] === 'simulate' && !pairs.some(([f]) => f === '--policy')) argv.push('--policy', 'dvfs');
    return argv;
  });
});

describe('the command line under hostile argv', () => {
  it('ends with 0, 1 or 2, no stack trace, no NaN/Infinity on stdout, and a status 2 says why', async () => {
    await fc.assert(fc.asyncProperty(argvArb, async (argv) => {
      const r = await runCli(argv);
      const all = `${r.out}\n${r.err}`;
      expect(all, argv.join(' ')).not.toMatch(/^\s+at /m);
      expect([0, 1, 2], `${argv.join(' ')}\n${r.err}`).toContain(r.code);
      expect(r.out).not.toMatch(/NaN|Infinity/);
      if (r.code === 2) expect(r.err.length).toBeGreaterThan(10);
    }), { numRuns: 120, seed: 91 });
  });

  it('rejects the numbers of issue 6 with a usage error naming the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['demo', '--hours', '1e9'], /--hours must be a number in 1\.\.8784 \(got '1e9'\)/],
      [['bench', 'plan', '--hosts', '1e9'], /--hosts must be an integer in 1\.\.100000/],
      [['bench', 'plan', '--hosts', '2', '--vms', '0x10'], /--vms must be an integer/],
      [['demo', '--hosts', ' 5'], /--hosts must be an integer in 2\.\.6 \(got ' 5'\)/],
      [['demo', '--seed', ''], /--seed must be an integer/],
      [['simulate', '--trace', trace, '--policy', 'dvfs', '--hosts', 'NaN'], /--hosts must be an integer/],
      [['--config', config, 'migrate', 'x', '--to', 'b', '--timeout', '3000000'], /--timeout must be a number in 0\.001\.\.2147483/],
      [['--config', config, 'hosts', '--interval-ms', '1e10'], /--interval-ms must be an integer in 0\.\.3600000/],
    ];
    for (const [argv, re] of cases) expect(await runCli(argv)).toMatchObject({ code: 2, err: expect.stringMatching(re) });
  });
});
