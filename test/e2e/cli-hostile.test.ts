/**
 * The hostile-input pass over every command `tide --help` lists: each row runs the CLI with bad
 * input and states the exit status (0 ok, 1 the operation failed, 2 usage or input, 70 bug)
 * and what the message must name. No row may print a stack frame or an internal error. Cluster
 * commands point at loopback ports: port 1 refuses at once; a server that accepts and never
 * answers checks that nothing keeps the process alive after the error is printed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/commands/index.js';
import { classifyError, type CliIo } from '../../src/cli/io.js';
import { reportError } from '../../src/cli/main.js';
import { DriverError } from '../../src/drivers/errors.js';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'tide-hostile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, content: string | Buffer): string => {
  const f = join(tmp, name);
  writeFileSync(f, content);
  return f;
};

const refused = file('refused.json', JSON.stringify({ hosts: [{ name: 'a', uri: 'qemu+tcp://127.0.0.1:1/system' }, { name: 'b', uri: 'qemu+tcp://127.0.0.1:1/system?x=1' }] }));
// the same unreachable hosts with a store of its own (tide reconcile records what stays unknown)
const refusedOwnStore = file('refused-store.json', JSON.stringify({ hosts: [{ name: 'a', uri: 'qemu+tcp://127.0.0.1:1/system' }, { name: 'b', uri: 'qemu+tcp://127.0.0.1:1/system?x=1' }], store: { path: join(tmp, 'reconcile.sqlite') } }));
const nullTrace = file('null.json', 'null');
const nullVm = file('nullvm.json', '{"format":"tide-trace/1","vms":[null]}');
const hugeVm = file('huge.json', JSON.stringify({ format: 'tide-trace/1', vms: [{ id: 'big', cpuPct: [1, 2], mips: 1e6 }] }));
const infTrace = file('inf.json', '{"format":"tide-trace/1","vms":[{"id":"a","cpuPct":[1,1e400]}]}');
const latin1 = file('latin1.csv', Buffer.concat([Buffer.from('vm,cpu_pct\nm'), Buffer.from([0xe9]), Buffer.from(',5\nm\xe9,6\n', 'latin1')]));
const ragged = file('ragged.csv', 'vm,cpu_pct,mem_pct\nmail,10,20\nmail,11\n');
const junkDir = join(tmp, 'planetlab');
mkdirSync(junkDir);
writeFileSync(join(junkDir, 'vm1'), `${Array.from({ length: 287 }, () => '5').join('\n')}\nabc\n`);
// a valid PlanetLab day of four VMs: more than one host can take
const dayDir = join(tmp, 'day');
mkdirSync(dayDir);
for (const vm of ['a', 'b', 'c', 'd']) writeFileSync(join(dayDir, vm), `${Array.from({ length: 288 }, (_, i) => String(i % 100)).join('\n')}\n`);
const fifo = join(tmp, 'fifo.json');
spawnSync('mkfifo', [fifo]);
const zeroLoad = file('zero.json', JSON.stringify({ format: 'tide-trace/1', vms: [{ id: 'a', cpuPct: [0, 0, 0] }] }));
const emptyDir = join(tmp, 'empty');
mkdirSync(emptyDir);
const notDb = file('notdb', 'hello');
const badJson = file('bad.json', '{"hosts": [');
const badConfig = file('badcfg.json', JSON.stringify({ hosts: [{ name: 'a', uri: 'qemu:///system' }], migration: { timeoutSec: 3e6 } }));
// passes the schema; the run-time parsers refuse every one of these (config check used to pass them)
const runtimeBad = file('runtimebad.json', JSON.stringify({ hosts: [{ name: 'a', uri: 'qemu+bogus://h/system' }], vms: { web: { probe: 'tcp://10.0.0.5' } }, policy: { name: 'tide', args: { targetUtil: 7 } } }));

/** [argv, exit status, what stderr must say]. Grouped by command; every command has rows. */
const CASES: [string[], number, RegExp][] = [
  // demo
  [['demo', '--hours', '1e9'], 2, /--hours must be a number in 1\.\.8784 \(got '1e9'\)/],
  [['demo', '--hours', '0'], 2, /--hours must be/],
  [['demo', '--hosts', '7'], 2, /--hosts must be an integer in 2\.\.6/],
  [['demo', '--seed', '0x10'], 2, /--seed must be an integer/],
  [['demo', '--policy', 'tide:targetUtil=NaN'], 2, /targetUtil/],
  [['demo', '--mode', 'yolo'], 2, /--mode must be automatic, approve or recommend/],
  [['demo', '--serve', '--port', '70000'], 2, /--port must be an integer in 0\.\.65535/],
  [['demo', '--serve', '--json'], 2, /--serve and --json do not go together/],
  [['demo', '--token-file', '/tmp/x'], 2, /--port and --token-file need --serve/],
  [['demo', '--store', tmp], 2, /--store: .* is a directory/],
  [['demo', '--store', notDb, '--hours', '1'], 2, /--store: .*notdb exists and is not a SQLite database/],
  [['demo', '--observe-days', 'x'], 2, /--observe-days must be an integer in 0\.\.366 \(got 'x'\)/],
  [['demo', '--observe-days=-1'], 2, /--observe-days must be an integer in 0\.\.366 \(got '-1'\)/],
  [['demo', '--observe-days', '1.5'], 2, /--observe-days must be an integer/],
  [['demo', '--serve', '--observe-days', '300', '--hours', '2000'], 2, /--observe-days 300 and --hours 2000 exceed 366 simulated days together/],
  // simulate
  [['simulate', '--trace', nullTrace, '--policy', 'dvfs'], 2, /null\.json: \(top level\): expected a JSON object/],
  [['simulate', '--trace', nullVm, '--policy', 'dvfs'], 2, /nullvm\.json: vms\[0\]: expected a VM object/],
  [['simulate', '--trace', infTrace, '--policy', 'dvfs'], 2, /inf\.json: vms\[0\]\.cpuPct\[1\]: Infinity is not a number in 0\.\.100/],
  [['simulate', '--trace', hugeVm, '--policy', 'dvfs'], 2, /initial placement: no host can take VM big .* give more hosts/],
  [['simulate', '--trace', latin1, '--policy', 'dvfs'], 2, /latin1\.csv:2: not valid UTF-8/],
  [['simulate', '--trace', ragged, '--policy', 'dvfs'], 2, /ragged\.csv:3: 2 fields, the header has 3/],
  [['simulate', '--trace', junkDir, '--policy', 'dvfs'], 2, /planetlab\/vm1:288: not a CPU percentage: 'abc'/],
  [['simulate', '--trace', emptyDir, '--policy', 'dvfs'], 2, /no trace files/],
  [['simulate', '--trace', dayDir, '--hosts', '1', '--policy', 'lr-mmt'], 2, /initial placement: no host can take VM .* on the 1 host\(s\)/],
  [['simulate', '--trace', fifo, '--policy', 'dvfs'], 2, /fifo\.json: not a regular file/],
  [['simulate', '--trace', zeroLoad, '--policy', 'dvfs', '--json'], 0, /note: .*zero\.json has no CPU load at all; the energy lower bound is 0/],
  [['simulate', '--trace', notDb, '--policy', 'dvfs'], 2, /unknown trace format/],
  [['simulate', '--trace', hugeVm, '--policy', 'dvfs', '--hosts', '1e9'], 2, /--hosts must be an integer in 1\.\.100000/],
  [['simulate', '--scenario', 'office:days=1e9', '--policy', 'tide'], 2, /scenario office: days: Too big/],
  [['simulate', '--scenario', 'office:days=0', '--policy', 'tide'], 2, /days: at least 1\/24/],
  [['simulate', '--scenario', 'office:hosts=0x3', '--policy', 'tide'], 2, /scenario office: hosts: /],
  [['simulate', '--scenario', 'office:days=1,days=2', '--policy', 'tide'], 2, /'days' given twice/],
  [['simulate', '--scenario', 'mars', '--policy', 'tide'], 2, /unknown scenario 'mars'/],
  [['simulate', '--scenario', 'office', '--observe-days', '1e9'], 2, /--observe-days must be an integer in 0\.\.366/],
  [['simulate', '--scenario', 'office', '--observe-days', 'NaN'], 2, /--observe-days must be an integer/],
  [['simulate', '--scenario', 'office:days=366', '--observe-days', '7'], 2, /366 day\(s\) after 7 observed day\(s\) exceed 366 days/],
  [['simulate', '--trace', dayDir, '--policy', 'dvfs', '--observe-days', '1'], 2, /an observation of 1 day\(s\) leaves nothing of .* to act on/],
  [['simulate', '--scenario', 'office', '--policy', 'lr-mmt:0x10'], 2, /parameter '0x10' is not a number/],
  [['simulate', '--scenario', 'office', '--compare', ',,'], 2, /give --policy NAME or --compare/],
  // bench
  [['bench'], 2, /which benchmark\?/],
  [['bench', 'plan', '--hosts', '1e9'], 2, /--hosts must be an integer in 1\.\.100000/],
  [['bench', 'plan', '--hosts', '2', '--vms', '1e7'], 2, /--vms must be an integer in 0\.\.1000000/],
  [['bench', 'plan', '--hosts', '1', '--vms', '1000000'], 2, /do not fit in the memory of 1 hosts/],
  [['bench', 'migrate'], 2, /--vm VM\[,VM…\] is required/],
  [['bench', 'migrate', '--vm', 'x', '--runs', '1e9'], 2, /--runs must be an integer in 1\.\.1000/],
  [['bench', 'migrate', '--vm', 'x', '--timeout', '1e12'], 2, /--timeout must be a number in 0\.001\.\.2147483/],
  [['bench', 'loop', '--hosts', '0'], 2, /--hosts must be an integer in 1\.\.100000 \(got '0'\)/],
  [['bench', 'loop', '--hosts', '2', '--vms=-1'], 2, /--vms must be an integer in 0\.\.1000000/],
  [['bench', 'loop', '--hosts', '1', '--vms', '1000000'], 2, /do not fit in the memory of 1 hosts/],
  [['bench', 'loop', '--rounds', '0'], 2, /--rounds must be an integer in 1\.\.1000/],
  [['bench', 'loop', '--rounds', '2.5'], 2, /--rounds must be an integer/],
  [['bench', 'loop', '--interval', '1e9'], 2, /--interval must be an integer in 1\.\.86400/],
  [['bench', 'loop', '--max-concurrent', 'x'], 2, /--max-concurrent must be/],
  [['bench', 'loop', '--max-per-host', '0'], 2, /--max-per-host must be an integer in 1\.\.1000/],
  [['bench', 'loop', '--store', ''], 2, /--store: '' is not a usable file name/],
  [['bench', 'loop', '--hosts', '2', '--vms', '4', '--policy', 'nope'], 2, /nope/],
  [['bench', 'loop', '--bogus'], 2, /bogus/],
  // lab (validation happens before anything needs root)
  [['lab'], 2, /expected up, down, status, virsh or demo/],
  [['lab', 'up', '--vms', '1000'], 2, /--vms must be an integer in 0\.\.89/],
  [['lab', 'up', '--mem-mib', '1e9'], 2, /--mem-mib must be an integer in 64\.\.65536/],
  [['lab', 'up', '--accel', 'warp'], 2, /accel/],
  [['lab', 'virsh', 'lab-c', 'list'], 2, /lab-a\|lab-b/],
  [['lab', 'status', '--dir', join(tmp, 'nolab')], 1, /^$/],
  // hosts, vms (unreachable hosts: the operation failed, with the reason)
  [['--config', join(tmp, 'nothere.json'), 'hosts'], 2, /cannot read config file .*nothere\.json/],
  [['--config', badJson, 'hosts'], 2, /bad\.json: not valid JSON/],
  [['--config', refused, 'hosts', '--interval-ms=-5'], 2, /--interval-ms must be an integer in 0\.\.3600000/],
  [['--config', refused, 'hosts', '--no-usage'], 1, /^$/],
  [['--config', refused, 'vms', '--interval-ms', '1e10'], 2, /--interval-ms must be/],
  [['--config', refused, 'vms', '--host', 'zzz'], 2, /no host named 'zzz'/],
  // migrate
  [['--config', refused, 'migrate'], 2, /which VM\?/],
  [['--config', refused, 'migrate', 'x'], 2, /--to HOST is required/],
  [['--config', refused, 'migrate', 'x', '--to', 'b', '--probe', 'ftp://x'], 2, /unsupported probe target 'ftp:\/\/x'/],
  [['--config', refused, 'migrate', 'x', '--to', 'b', '--timeout', '3000000'], 2, /--timeout must be a number in 0\.001\.\.2147483/],
  [['--config', refused, 'migrate', 'x', '--to', 'b', '--bandwidth', 'Infinity'], 2, /--bandwidth must be a number/],
  [['--config', refused, 'migrate', 'x', '--to', 'b'], 1, /ECONNREFUSED/],
  // evacuate
  [['--config', refused, 'evacuate'], 2, /which host\?/],
  [['--config', refused, 'evacuate', 'a', '--concurrency', '0'], 2, /--concurrency must be an integer/],
  [['--config', refused, 'evacuate', 'a', '--dry-run'], 1, /ECONNREFUSED/],
  // place
  [['--config', refused, 'place'], 2, /which VM\?/],
  [['--config', refused, 'place', 'x', '--interval-ms', 'NaN'], 2, /--interval-ms must be an integer/],
  [['--config', refused, 'place', 'x'], 1, /ECONNREFUSED/],
  // reconcile (a host that refuses leaves the outcome unknown: exit 1, reported on stdout)
  [['--config', refused, 'reconcile', 'x', 'y'], 2, /one VM at most/],
  [['--config', refused, 'reconcile', '--from', 'a'], 2, /need a VM/],
  [['--config', refused, 'reconcile', 'x', '--from', 'a', '--to', 'zzz'], 2, /no host named 'zzz'/],
  [['--config', refused, 'reconcile', 'x', '--settle-ms=-1'], 2, /--settle-ms must be an integer/],
  [['--config', refused, 'reconcile', 'x'], 2, /no unknown migration of x is recorded: name its source and target/],
  [['--config', refusedOwnStore, 'reconcile', 'x', '--from', 'a', '--to', 'b'], 1, /^$/],
  // wake-test (hosts without a power method fail the test: exit 1)
  [['--config', refused, 'wake-test'], 2, /name a host/],
  [['--config', refused, 'wake-test', 'zzz'], 2, /no host named 'zzz'/],
  [['--config', refused, 'wake-test', '--all', '--list'], 2, /at most one of/],
  [['--config', refusedOwnStore, 'wake-test', 'a'], 1, /^$/],
  // daemon (refused before it runs; --once: one round, the hosts refuse, the error is in the log on stdout)
  [['--config', refused, 'daemon', '--log-format', 'xml'], 2, /--log-format is auto, json or text/],
  [['--config', refused, 'daemon', '--stop-grace=-1'], 2, /--stop-grace must be a number/],
  [['--config', refused, 'daemon', 'extra'], 2, /nexpected argument 'extra'/],
  [['--config', refusedOwnStore, 'daemon', '--once'], 1, /^$/],
  // status, plans, plan, approve, reject, host (the store only)
  [['--config', refusedOwnStore, 'status', 'extra'], 2, /nexpected argument 'extra'/],
  [['--config', refusedOwnStore, 'status'], 0, /^$/],
  [['--config', refusedOwnStore, 'plans', '--status', 'bogus'], 2, /--status is one of proposed/],
  [['--config', refusedOwnStore, 'plans', '--limit', '1e9'], 2, /--limit must be an integer/],
  [['--config', refusedOwnStore, 'plan'], 2, /tide plan show ID/],
  [['--config', refusedOwnStore, 'plan', 'show', '0x1'], 2, /a plan id is a positive integer \(got '0x1'\)/],
  [['--config', refusedOwnStore, 'plan', 'show', '99999'], 1, /no plan with id 99999 .*\[TIDE_NO_SUCH_PLAN\]/],
  [['--config', refusedOwnStore, 'approve'], 2, /which plan\?/],
  [['--config', refusedOwnStore, 'approve', 'NaN'], 2, /a plan id is a positive integer/],
  [['--config', refusedOwnStore, 'approve', '99999'], 1, /no plan with id 99999/],
  [['--config', refusedOwnStore, 'reject', '1e3'], 2, /a plan id is a positive integer/],
  [['--config', refusedOwnStore, 'host'], 2, /tide host maintenance on\|off HOST/],
  [['--config', refusedOwnStore, 'host', 'maintenance', 'on', 'zzz'], 1, /no host named 'zzz' in the configuration/],
  [['--config', refusedOwnStore, 'host', 'maintenance', 'off', 'a', '--show-plan'], 2, /--show-plan goes with on/],
  // token (the store only; usage errors → 2)
  [['--config', refusedOwnStore, 'token'], 2, /tide token create\|list\|revoke/],
  [['--config', refusedOwnStore, 'token', 'bogus'], 2, /unknown subcommand 'bogus'/],
  [['--config', refusedOwnStore, 'token', 'create'], 2, /--role is one of viewer, operator, admin/],
  [['--config', refusedOwnStore, 'token', 'create', '--role', 'root'], 2, /--role is one of/],
  [['--config', refusedOwnStore, 'token', 'create', '--role', 'viewer', '--name', ''], 2, /--name is 1 to 100 characters/],
  [['--config', refusedOwnStore, 'token', 'list', 'extra'], 2, /unexpected argument 'extra'/],
  [['--config', refusedOwnStore, 'token', 'revoke', '0x1'], 2, /tide token revoke ID/],
  [['--config', refusedOwnStore, 'token', 'revoke', '99999'], 2, /no API token with id 99999/],
  // config
  [['config'], 2, /expected 'schema' or 'check'/],
  [['config', 'check'], 2, /needs --config FILE/],
  [['config', 'schema', 'extra'], 2, /unexpected argument 'extra'/],
  [['--config', badConfig, 'config', 'check'], 2, /badcfg\.json: migration\.timeoutSec: at most 2147483 s/],
  [['--config', runtimeBad, 'config', 'check'], 2, /runtimebad\.json: hosts\[0\]\.uri: invalid libvirt URI[^]*vms\.web\.probe: tcp probe target needs a port[^]*policy: .*targetUtil/],
  [['--config', tmp, 'config', 'check'], 2, /it is a directory/],
  // data (never reaches the network: every row is refused before)
  [['data'], 2, /expected 'fetch' or 'status'/],
  [['data', 'fetch'], 2, /fetch what\?/],
  [['data', 'fetch', 'planetlab', '--concurrency', '1e9'], 2, /--concurrency/],
  [['data', 'fetch', 'planetlab', '--source', 'ftp://x', '--dir', join(tmp, 'dd')], 2, /--source must be an http\(s\) URL/],
  // the dispatcher
  [['frobnicate'], 2, /unknown command 'frobnicate'/],
  [['--config'], 2, /--config needs a file/],
];

describe('hostile input over every command', () => {
  it('has rows for every command tide --help lists', () => {
    const covered = new Set(CASES.map(([argv]) => argv.find((a, i) => !a.startsWith('-') && argv[i - 1] !== '--config')));
    for (const name of Object.keys(commands)) expect(covered, `no hostile-input row for '${name}'`).toContain(name);
  });

  for (const [argv, status, re] of CASES) {
    it(`tide ${argv.map((a) => a.replace(tmp, '$TMP')).join(' ')} → ${status}`, async () => {
      const r = await runCli(argv);
      expect(r.err, r.out).toMatch(re);
      expect(r.code, r.err).toBe(status);
      expect(`${r.out}${r.err}`).not.toMatch(/^\s+at |internal error/m);
      expect(r.out).not.toMatch(/NaN/);
    });
  }
});

describe('exit statuses by error class', () => {
  const capture = (): CliIo & { text: () => string } => {
    let text = '';
    return { out: (t) => void (text += t), err: (t) => void (text += t), isTty: false, env: {}, cwd: tmp, text: () => text };
  };

  it('maps input codes to 2, handled failures to 1, everything else (a bug) to 70', () => {
    expect(classifyError(new DriverError('TIDE_INVALID_ARGUMENT', 'x')).status).toBe(2);
    expect(classifyError(new DriverError('TIDE_HOST_UNREACHABLE', 'x')).status).toBe(1);
    expect(classifyError(Object.assign(new Error('x'), { code: 'TIDE_TRACE' })).status).toBe(2);
    expect(classifyError(Object.assign(new Error('EACCES'), { code: 'EACCES', syscall: 'open' })).status).toBe(1);
    expect(classifyError(new TypeError("Cannot read properties of null (reading 'id')")).status).toBe(70);
    expect(classifyError(new RangeError('Invalid typed array length')).status).toBe(70);
    expect(classifyError('a string').status).toBe(70);
  });

  it('an internal error asks for a report and shows the stack only with TIDE_DEBUG=1', () => {
    const io = capture();
    expect(reportError(new TypeError('boom'), 'tide x', io)).toBe(70);
    expect(io.text()).toMatch(/tide x: internal error: boom\nThis is a bug in Tide\. Please report it .*TIDE_DEBUG=1/);
    expect(io.text()).not.toMatch(/^\s+at /m);
    const dbg = { ...capture(), env: { TIDE_DEBUG: '1' } };
    let text = '';
    dbg.err = (t) => void (text += t);
    expect(reportError(new TypeError('boom'), 'tide x', dbg)).toBe(70);
    expect(text).toMatch(/^\s+at /m);
  });
});

describe('a libvirt host that accepts TCP and never answers', () => {
  const bin = fileURLToPath(new URL('../../bin/tide.js', import.meta.url));
  const built = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  it('is reported at the connect timeout, and the process exits then (not when the call timeout fires)', async () => {
    // The built CLI is the subject (a process that must exit); npm test builds it first.
    expect(existsSync(built), `${built} is missing: run npm run build first`).toBe(true);
    server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    const port = await new Promise<number>((r) => server!.listen(0, '127.0.0.1', () => r((server!.address() as { port: number }).port)));
    const config = file('silent.json', JSON.stringify({ hosts: [{ name: 'mute', uri: `qemu+tcp://127.0.0.1:${port}/system` }] }));
    const child = spawn(process.execPath, [bin, '--config', config, 'migrate', 'vm1', '--to', 'mute'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // The connect timeout is 10 s and the RPC call timeout 60 s: before the fix the process
    // lived until the call timeout (~61 s). 30 s bounds a hang, not speed.
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('exit', (c, s) => r([c, s])));
    clearTimeout(killer);
    expect(signal, `still alive after 30 s; output so far:\n${out}`).toBeNull();
    expect(code).toBe(1);
    expect(out).toMatch(/mute: no answer from qemu\+tcp:\/\/127\.0\.0\.1:\d+\/system within 10000 ms/);
    expect(out).not.toMatch(/^\s+at /m);
  }, 45_000);
});
