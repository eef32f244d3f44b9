/**
 * Test fixture: a private libvirtd (and optionally a private sshd) on this machine.
 *
 * `startLibvirtd()` runs libvirtd inside `unshare --mount --propagation private`, with its own
 * /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt bind-mounted
 * from a temp dir, so it never touches (or sees) a system libvirtd. In front of it runs a tiny
 * Python child subreaper that adopts the QEMUs libvirt double-forks, reaps them at once, and
 * kills them when libvirtd exits: stopping the fixture leaves no process, and since every mount
 * lives in the private namespace, no mount either. The daemon's unix socket is a plain file in the
 * temp dir, reachable from the test. Optional listeners bind 127.0.0.1 only.
 *
 * What a fresh Debian 12 box lacks is created idempotently (see `ensureHostPrerequisites`): the
 * bind-mount target directories and the `libvirt-qemu` user libvirt's QEMU driver insists on.
 * No systemd and no virtlogd are needed (stdio_handler = "file").
 *
 * Availability: `libvirtdAvailability()` says why the fixture cannot run (not root, binary
 * missing). Tests use `labGate()` to skip with a printed reason, except when TIDE_REQUIRE_LAB=1
 * (CI), where unavailability is a failure.
 */
import { ensureHostPrerequisites as ensureLabHostPrerequisites } from '../../src/lab/prereq.js';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LibvirtConnection } from '../../src/libvirt/index.js';

const PYTHON_CANDIDATES = ['/usr/bin/python3', 'python3'];
/** Shared QEMU capabilities cache: libvirt probes QEMU for ~4 s on a fresh daemon under TCG. */
const QEMU_CAPS_CACHE = join(tmpdir(), 'tide-test-qemucaps');

function which(bin: string): string | null {
  if (bin.startsWith('/')) return existsSync(bin) ? bin : null;
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = join(dir, bin);
    if (existsSync(p)) return p;
  }
  return null;
}

export interface Availability {
  ok: boolean;
  reason: string;
}

/** Can this machine run the fixture? (root + libvirtd + unshare + python3 [+ qemu]) */
export function libvirtdAvailability(opts: { qemu?: boolean; ssh?: boolean; tls?: boolean } = {}): Availability {
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' };
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { ok: false, reason: 'not running as root (private libvirtd needs mount namespaces)' };
  const need = ['libvirtd', 'unshare', 'nsenter', 'mount'];
  if (opts.qemu) need.push('qemu-system-x86_64');
  if (opts.ssh) need.push('sshd', 'ssh', 'ssh-keygen', 'virt-ssh-helper', 'nc');
  if (opts.tls) need.push('openssl');
  for (const b of need) if (!which(b)) return { ok: false, reason: `'${b}' not found (run scripts/install-deps.sh)` };
  if (!PYTHON_CANDIDATES.some((p) => which(p))) return { ok: false, reason: "'python3' not found" };
  return { ok: true, reason: '' };
}

/**
 * Gate for real-daemon tests: returns `true` to run. When unavailable it prints the reason and
 * returns false (the caller skips), unless TIDE_REQUIRE_LAB=1, where it throws.
 */
export function labGate(what: string, opts: Parameters<typeof libvirtdAvailability>[0] = {}): boolean {
  const a = libvirtdAvailability(opts);
  if (a.ok) return true;
  if (process.env.TIDE_REQUIRE_LAB === '1') throw new Error(`${what}: required lab unavailable (TIDE_REQUIRE_LAB=1): ${a.reason}`);
  console.warn(`[skip] ${what}: ${a.reason}`);
  return false;
}

function run(bin: string, args: string[], input?: string): string {
  return execFileSync(bin, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input, env: { ...process.env, LC_ALL: 'C' } });
}

/** Idempotent host setup a fresh Debian 12 machine needs (shared with `tide lab up`). */
export function ensureHostPrerequisites(): void {
  ensureLabHostPrerequisites(['/run/sshd']);
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean> | boolean, diag: () => string = () => ''): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not ready within ${timeoutMs} ms${diag() ? `\n${diag()}` : ''}`);
}

function canConnect(opts: net.NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(opts);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    // Zombies count as dead: PID 1 here may reap late.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push(Number(e));
    } catch {
      // raced with exit
    }
  }
  return out;
}

// The subreaper: argv = pidfile, then "--" separated bind pairs, then "--", then libvirtd argv.
// It bind-mounts, becomes PR_SET_CHILD_SUBREAPER, runs libvirtd, reaps every orphan at once, and
// when libvirtd ends (SIGTERM forwarded to it, SIGKILL after 10 s) kills what is left (QEMUs).
const REAPER_PY = String.raw`
import ctypes, os, signal, subprocess, sys
args = sys.argv[1:]
pidfile = args[0]
sep = args.index('--', 1)
binds = args[1:sep]
cmd = args[sep + 1:]
for i in range(0, len(binds), 2):
    subprocess.run(['mount', '--bind', binds[i], binds[i + 1]], check=True)
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
child = os.fork()
if child == 0:
    os.execvp(cmd[0], cmd)
with open(pidfile, 'w') as f:
    f.write(str(child))
def on_term(sig, frame):
    try:
        os.kill(child, signal.SIGTERM)
    except ProcessLookupError:
        pass
    signal.alarm(10)
def on_alarm(sig, frame):
    try:
        os.kill(child, signal.SIGKILL)
    except ProcessLookupError:
        pass
signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGALRM, on_alarm)
def my_children():
    me = str(os.getpid())
    out = []
    for e in os.listdir('/proc'):
        if e.isdigit():
            try:
                with open('/proc/%s/stat' % e) as f:
                    s = f.read()
                if s[s.rindex(')') + 2:].split(' ')[1] == me:
                    out.append(int(e))
            except OSError:
                pass
    return out
while True:
    try:
        pid, _ = os.wait()
    except ChildProcessError:
        break
    if pid == child:
        # libvirtd is gone: its guests go with it (a host that died), then we exit.
        for p in my_children():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
`;

export interface LibvirtdOptions {
  /** Also listen on TCP 127.0.0.1:<port> (auth none). true = pick a free port. */
  tcp?: boolean;
  /** Also listen on TLS 127.0.0.1:<port> with a generated PKI. */
  tls?: boolean;
  /** host_uuid in libvirtd.conf (distinct daemons must differ for migration). */
  hostUuid?: string;
  /** Daemon-side keepalive (seconds, count). Default 5 / 5. */
  keepaliveInterval?: number;
  keepaliveCount?: number;
}

export interface Pki {
  /** Directory usable as `pkipath=` (cacert.pem, clientcert.pem, clientkey.pem). */
  clientDir: string;
  cacert: string;
  clientcert: string;
  clientkey: string;
  /** A second client identity signed by a different CA (must be refused). */
  rogueDir: string;
}

export interface LibvirtdHandle {
  dir: string;
  socketPath: string;
  tcpPort: number | null;
  tlsPort: number | null;
  pki: Pki | null;
  hostUuid: string;
  /** `<driver>+unix:///<path>?socket=...` for this daemon. */
  unixUri(driver?: string, path?: string): string;
  /** PID of libvirtd (null when not running). */
  libvirtdPid(): number | null;
  /** PID of the subreaper that owns the mount namespace. */
  reaperPid(): number | null;
  /** Sends a signal to libvirtd itself (SIGKILL = crash, SIGSTOP = hang, SIGCONT). */
  signal(sig: NodeJS.Signals): void;
  /** SIGSTOP, then waits until every libvirtd thread is really stopped (kill() returns earlier). */
  freeze(): Promise<void>;
  /** SIGCONT. */
  thaw(): void;
  /** SIGKILL to libvirtd (a host crash), then waits until the reaper and its guests are gone. */
  crash(): Promise<void>;
  /** libvirtd and its reaper are running (not merely exiting). */
  running(): boolean;
  /** Starts libvirtd again on the same directory (after a crash). */
  restart(): Promise<void>;
  /** Stops everything and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** Tail of libvirtd's log and stderr, for failure messages. */
  diagnostics(): string;
}

function writeConfigs(dir: string, o: LibvirtdOptions, tcpPort: number | null, tlsPort: number | null, hostUuid: string, pkiDir: string | null): void {
  const lines = [
    '# generated by test/helpers/libvirtd.ts',
    `listen_tcp = ${tcpPort !== null ? 1 : 0}`,
    `listen_tls = ${tlsPort !== null ? 1 : 0}`,
    'listen_addr = "127.0.0.1"',
    `tcp_port = "${tcpPort ?? 16509}"`,
    `tls_port = "${tlsPort ?? 16514}"`,
    'auth_tcp = "none"',
    'auth_tls = "none"',
    'auth_unix_ro = "none"',
    'auth_unix_rw = "none"',
    'unix_sock_rw_perms = "0700"',
    `host_uuid = "${hostUuid}"`,
    'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"',
    `keepalive_interval = ${o.keepaliveInterval ?? 5}`,
    `keepalive_count = ${o.keepaliveCount ?? 5}`,
    'max_clients = 200',
    'max_anonymous_clients = 200',
  ];
  if (pkiDir) {
    lines.push(`key_file = "${pkiDir}/serverkey.pem"`, `cert_file = "${pkiDir}/servercert.pem"`, `ca_file = "${pkiDir}/cacert.pem"`);
  }
  writeFileSync(join(dir, 'etc/libvirtd.conf'), `${lines.join('\n')}\n`);
  writeFileSync(join(dir, 'etc/qemu.conf'), [
    'user = "root"',
    'group = "root"',
    'dynamic_ownership = 0',
    'remember_owner = 0',
    'security_driver = "none"',
    'cgroup_controllers = [ ]',
    'namespaces = [ ]',
    'stdio_handler = "file"',
    // No migration_address/migration_host: libvirt refuses loopback addresses there. Migration
    // tests pass migrate_uri=tcp://127.0.0.1 and listen_address=127.0.0.1 per call instead.
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'etc/libvirt.conf'), '');
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

function makeCa(dir: string, cn: string): void {
  mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'cakey.pem', '-out', 'cacert.pem', '-days', '3',
    '-subj', `/O=Tide tests/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

function makeLeaf(caDir: string, outDir: string, name: string, cn: string, ext: string[]): void {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `${name}.ext`), `${ext.join('\n')}\n`);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}key.pem`, '-out', `${name}.csr`, '-subj', `/O=Tide tests/CN=${cn}`], outDir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', join(caDir, 'cacert.pem'), '-CAkey', join(caDir, 'cakey.pem'), '-CAcreateserial',
    '-out', `${name}cert.pem`, '-days', '3', '-extfile', `${name}.ext`], outDir);
}

/** A CA, a server certificate for 127.0.0.1, a client certificate, and a rogue client (other CA). */
function makePki(root: string): { serverDir: string; pki: Pki } {
  const caDir = join(root, 'ca');
  makeCa(caDir, 'Tide test CA');
  const serverDir = join(root, 'server');
  makeLeaf(caDir, serverDir, 'server', '127.0.0.1', [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  cpSync(join(caDir, 'cacert.pem'), join(serverDir, 'cacert.pem'));
  const clientDir = join(root, 'client');
  makeLeaf(caDir, clientDir, 'client', 'tide-test-client', [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth',
  ]);
  cpSync(join(caDir, 'cacert.pem'), join(clientDir, 'cacert.pem'));
  const rogueCa = join(root, 'rogue-ca');
  makeCa(rogueCa, 'Rogue CA');
  const rogueDir = join(root, 'rogue');
  makeLeaf(rogueCa, rogueDir, 'client', 'rogue-client', [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth',
  ]);
  // The rogue trusts the real server CA (so the failure is the server refusing the client).
  cpSync(join(caDir, 'cacert.pem'), join(rogueDir, 'cacert.pem'));
  return {
    serverDir,
    pki: { clientDir, cacert: join(clientDir, 'cacert.pem'), clientcert: join(clientDir, 'clientcert.pem'), clientkey: join(clientDir, 'clientkey.pem'), rogueDir },
  };
}

export async function startLibvirtd(o: LibvirtdOptions = {}): Promise<LibvirtdHandle> {
  ensureHostPrerequisites();
  const python = PYTHON_CANDIDATES.map(which).find((p) => p !== null) as string;
  const dir = mkdtempSync(join(tmpdir(), 'tide-libvirtd-'));
  for (const d of ['etc', 'run', 'lib', 'log', 'cache', 'cache/qemu', 'lib/qemu']) mkdirSync(join(dir, d), { recursive: true });
  if (existsSync(QEMU_CAPS_CACHE)) cpSync(QEMU_CAPS_CACHE, join(dir, 'cache/qemu/capabilities'), { recursive: true });
  const tcpPort = o.tcp ? await freePort() : null;
  const tlsPort = o.tls ? await freePort() : null;
  const hostUuid = o.hostUuid ?? '7a110000-0000-4000-8000-' + Math.floor(Math.random() * 0xffffffffffff).toString(16).padStart(12, '0');
  let pki: Pki | null = null;
  let serverPki: string | null = null;
  if (o.tls) {
    const made = makePki(join(dir, 'pki'));
    pki = made.pki;
    serverPki = made.serverDir;
  }
  writeConfigs(dir, o, tcpPort, tlsPort, hostUuid, serverPki);
  const socketPath = join(dir, 'run/libvirt-sock');
  const pidFile = join(dir, 'libvirtd.pid');
  let reaper: ChildProcess | null = null;
  let reaperExited: Promise<void> = Promise.resolve();
  let stderr = '';
  let stopped = false;

  const launch = async (): Promise<void> => {
    rmSync(pidFile, { force: true });
    rmSync(socketPath, { force: true });
    const binds = [
      join(dir, 'etc'), '/etc/libvirt',
      join(dir, 'run'), '/run/libvirt',
      join(dir, 'lib'), '/var/lib/libvirt',
      join(dir, 'log'), '/var/log/libvirt',
      join(dir, 'cache'), '/var/cache/libvirt',
    ];
    const args = ['--mount', '--propagation', 'private', '--', python, '-c', REAPER_PY, pidFile, ...binds, '--',
      'libvirtd', '--listen', '--config', '/etc/libvirt/libvirtd.conf', '--pid-file', '/run/libvirt/libvirtd.pid'];
    const child = spawn('unshare', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
    reaper = child;
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    reaperExited = new Promise((resolve) => child.once('exit', () => resolve()));
    await waitFor('private libvirtd', 60_000, async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`private libvirtd exited early\n${handle.diagnostics()}`);
      return existsSync(socketPath) && existsSync(pidFile) && (await canConnect({ path: socketPath }));
    }, () => handle.diagnostics());
    // The socket opens before the drivers finish initialising (a broken qemu.conf only fails
    // then); CONNECT_OPEN waits for that, so one real handshake proves the daemon is usable.
    try {
      const c = await LibvirtConnection.open(`qemu+unix:///system?socket=${socketPath}`, { keepalive: false, callTimeoutMs: 60_000 });
      await c.close();
    } catch (e) {
      throw new Error(`private libvirtd does not accept qemu:///system: ${(e as Error).message}\n${handle.diagnostics()}`, { cause: e });
    }
    if (tcpPort !== null) await waitFor('libvirtd TCP listener', 10_000, () => canConnect({ host: '127.0.0.1', port: tcpPort }));
    if (tlsPort !== null) await waitFor('libvirtd TLS listener', 10_000, () => canConnect({ host: '127.0.0.1', port: tlsPort }));
  };

  const handle: LibvirtdHandle = {
    dir,
    socketPath,
    tcpPort,
    tlsPort,
    pki,
    hostUuid,
    unixUri: (driver = 'qemu', path = '/system') => `${driver}+unix://${path}?socket=${socketPath}`,
    libvirtdPid: () => {
      try {
        const pid = Number(readFileSync(pidFile, 'utf8').trim());
        return pid > 0 && alive(pid) ? pid : null;
      } catch {
        return null;
      }
    },
    reaperPid: () => {
      const r = reaper as ChildProcess | null;
      return r && r.pid !== undefined && r.exitCode === null && r.signalCode === null ? r.pid : null;
    },
    signal: (sig) => {
      const pid = handle.libvirtdPid();
      if (pid === null) throw new Error('libvirtd is not running');
      process.kill(pid, sig);
    },
    freeze: async () => {
      const pid = handle.libvirtdPid();
      if (pid === null) throw new Error('libvirtd is not running');
      process.kill(pid, 'SIGSTOP');
      await waitFor('libvirtd threads to stop', 5000, () => {
        try {
          return readdirSync(`/proc/${pid}/task`).every((t) => {
            const st = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
            return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) === 'T';
          });
        } catch {
          return false;
        }
      });
    },
    thaw: () => {
      const pid = handle.libvirtdPid();
      if (pid !== null) process.kill(pid, 'SIGCONT');
    },
    crash: async () => {
      const pid = handle.libvirtdPid();
      if (pid !== null) process.kill(pid, 'SIGKILL');
      await reaperExited;
    },
    running: () => handle.reaperPid() !== null && handle.libvirtdPid() !== null,
    restart: async () => {
      await reaperExited;
      await launch();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      const r = reaper as ChildProcess | null;
      if (r && r.pid !== undefined && r.exitCode === null && r.signalCode === null) {
        const lpid = handle.libvirtdPid();
        if (lpid !== null) {
          try {
            process.kill(lpid, 'SIGCONT'); // a test may have frozen it
          } catch {
            // gone already
          }
        }
        r.kill('SIGTERM');
        const done = await Promise.race([reaperExited.then(() => true), new Promise<boolean>((res) => setTimeout(() => res(false), 15_000))]);
        if (!done) {
          for (const c of childrenOf(r.pid)) {
            try {
              process.kill(c, 'SIGKILL');
            } catch {
              // gone
            }
          }
          r.kill('SIGKILL');
          await reaperExited;
        }
      }
      // Keep the QEMU capabilities cache for the next daemon (libvirt re-validates it).
      const caps = join(dir, 'cache/qemu/capabilities');
      if (!existsSync(QEMU_CAPS_CACHE) && existsSync(caps) && readdirSync(caps).length > 0) {
        // copy then rename, so a concurrent fixture never sees a half-written cache
        const tmp = `${QEMU_CAPS_CACHE}.${process.pid}.${Date.now()}`;
        try {
          cpSync(caps, tmp, { recursive: true });
          renameSync(tmp, QEMU_CAPS_CACHE);
        } catch {
          rmSync(tmp, { recursive: true, force: true }); // another fixture won the race
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
    diagnostics: () => {
      let log: string;
      try {
        log = readFileSync(join(dir, 'log/libvirtd.log'), 'utf8').split('\n').slice(-15).join('\n');
      } catch {
        log = '(no libvirtd.log)';
      }
      return `--- libvirtd.log (tail) ---\n${log}\n--- stderr ---\n${stderr}`;
    },
  };
  try {
    await launch();
  } catch (e) {
    await handle.stop();
    throw e;
  }
  return handle;
}

export interface SshdHandle {
  port: number;
  /** Private key accepted for root. */
  keyfile: string;
  /** known_hosts file containing the server's host key for [127.0.0.1]:port. */
  knownHosts: string;
  /** The host public key line ("ssh-ed25519 AAAA..."). */
  hostPublicKey: string;
  /** sshd's stderr (its log, at the level given to startSshd). */
  diagnostics(): string;
  stop(): Promise<void>;
}

/**
 * A private sshd on 127.0.0.1 that runs INSIDE the daemon's mount namespace, so that on the
 * "remote" side /run/libvirt/libvirt-sock is the private daemon (virt-ssh-helper, nc -U and
 * ssh2's streamlocal forwarding all reach it by its default path). Key-only root login.
 */
export async function startSshd(d: LibvirtdHandle, opts: { logLevel?: string } = {}): Promise<SshdHandle> {
  const reaperPid = d.reaperPid();
  if (reaperPid === null) throw new Error('libvirtd fixture is not running');
  const dir = join(d.dir, 'ssh');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hostKey = join(dir, 'host_ed25519');
  const keyfile = join(dir, 'id_ed25519');
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tide-test-host', '-f', hostKey]);
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tide-test-client', '-f', keyfile]);
  cpSync(`${keyfile}.pub`, join(dir, 'authorized_keys'));
  const port = await freePort();
  const hostPublicKey = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
  const cfg = join(dir, 'sshd_config');
  writeFileSync(cfg, [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'AllowStreamLocalForwarding yes',
    // OpenSSH only permits direct-streamlocal (ssh2's forwardOutStreamLocal) when local TCP
    // forwarding is allowed too ("Received request to connect to path ..., but the request was denied").
    'AllowTcpForwarding local',
    'X11Forwarding no',
    'PrintMotd no',
    `LogLevel ${opts.logLevel ?? 'ERROR'}`,
    '',
  ].join('\n'));
  const sshd = which('sshd') as string;
  const child = spawn('nsenter', [`--mount=/proc/${reaperPid}/ns/mnt`, '--', sshd, '-D', '-e', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-8000);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitFor('private sshd', 10_000, async () => {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${stderr}`);
    return canConnect({ host: '127.0.0.1', port });
  });
  return {
    port,
    keyfile,
    knownHosts,
    hostPublicKey,
    diagnostics: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** A minimal TCG guest: no disk, no NIC; SeaBIOS finds nothing to boot and idles. */
export function tinyQemuDomainXml(name: string, memMiB = 64): string {
  return `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>${memMiB}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <memballoon model='virtio'><stats period='1'/></memballoon>
  </devices>
</domain>`;
}
