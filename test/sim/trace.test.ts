import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTrace } from '../../src/sim/trace.js';
import { planetlabDay } from '../helpers/planetlab.js';

const root = mkdtempSync(join(tmpdir(), 'tide-trace-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  const p = join(root, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, text);
  return p;
};
const lines = (n: number, v = '5'): string => Array(n).fill(v).join('\n') + '\n';

describe('PlanetLab directories', () => {
  it('reads the given days in byte order of file names, values as fractions', () => {
    const t = readTrace(planetlabDay('20110303'));
    expect(t.vms).toHaveLength(1052);
    expect(t.samples).toBe(288);
    // A space sorts before letters and '_' (byte order, not locale order).
    const names = t.vms.map((v) => v.id);
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(names.indexOf('aladdin_planetlab_extranet_uni-passau_de_ rnp_dcc_ufjf')).toBeLessThan(names.indexOf('aladdin_planetlab_extranet_uni-passau_de_tsinghua_xyz'));
    expect(t.vms.every((v) => v.cpu.every((x) => x >= 0 && x <= 1))).toBe(true);
  });

  it('names the file and line of a malformed value', () => {
    write('bad/vm1', lines(288));
    write('bad/vm2', lines(10) + 'x7\n' + lines(277));
    expect(() => readTrace(join(root, 'bad'))).toThrow(/bad\/vm2:11: not a CPU percentage: 'x7'/);
  });

  it('names the file with a wrong line count and rejects values above 100', () => {
    write('short/vm1', lines(287));
    expect(() => readTrace(join(root, 'short'))).toThrow(/short\/vm1: has 287 lines, expected 288/);
    write('big/vm1', lines(5) + '101\n' + lines(282));
    expect(() => readTrace(join(root, 'big'))).toThrow(/big\/vm1:6: CPU 101 % is above 100/);
  });

  it('says what is missing', () => {
    expect(() => readTrace(join(root, 'nope'))).toThrow(/trace not found: .*nope/);
    mkdirSync(join(root, 'empty'));
    expect(() => readTrace(join(root, 'empty'))).toThrow(/no trace files/);
  });
});

describe('Tide trace formats', () => {
  it('reads JSON with sizes and optional series', () => {
    const f = write('t.json', JSON.stringify({ format: 'tide-trace/1', intervalSec: 60, vms: [{ id: 'mail', cpuPct: [10, 20, 30], mips: 2000, memMiB: 4096, memPct: [50, 50, 60] }, { id: 'web', cpuPct: [0, 100, 50] }] }));
    const t = readTrace(f);
    expect(t).toMatchObject({ intervalSec: 60, samples: 3 });
    expect([...t.vms[0]!.cpu]).toEqual([0.1, 0.2, 0.3]);
    expect(t.vms[0]).toMatchObject({ mips: 2000, memMiB: 4096 });
    expect([...t.vms[0]!.mem!]).toEqual([0.5, 0.5, 0.6]);
  });

  it('reports JSON errors with the path to the bad value', () => {
    expect(() => readTrace(write('a.json', '{"format":"tide-trace/1","vms":[{"id":"x","cpuPct":[1,"q"]}]}'))).toThrow(/a\.json: vms\[0\]\.cpuPct\[1\]: "q" is not a number/);
    expect(() => readTrace(write('b.json', '{"format":"tide-trace/1","vms":[{"id":"x","cpuPct":[1,2]},{"id":"y","cpuPct":[1]}]}'))).toThrow(/vms\[1\]\.cpuPct: has 1 samples, expected 2/);
    expect(() => readTrace(write('c.json', '{"vms":[]}'))).toThrow(/"format" must be "tide-trace\/1"/);
    expect(() => readTrace(write('d.json', '{nope'))).toThrow(/d\.json: not valid JSON/);
  });

  it('reads long-form CSV and names the line of a bad row', () => {
    const t = readTrace(write('t.csv', '# interval_sec=120\nvm,cpu_pct,mips\nmail,10,1000\nweb,20,500\nmail,30,1000\nweb,40,500\n'));
    expect(t.intervalSec).toBe(120);
    expect(t.vms.map((v) => [v.id, [...v.cpu], v.mips])).toEqual([['mail', [0.1, 0.3], 1000], ['web', [0.2, 0.4], 500]]);
    expect(() => readTrace(write('e.csv', 'vm,cpu_pct\nmail,10\nmail,abc\n'))).toThrow(/e\.csv:3: cpu_pct 'abc' is not a number/);
    expect(() => readTrace(write('f.csv', 'vm,cpu,zzz\n'))).toThrow(/f\.csv:1: unknown column 'cpu'/);
  });
});
