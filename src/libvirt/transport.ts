/**
 * Transports: one function, `openTransport(uri) -> Duplex`, for every way of reaching a libvirt
 * daemon: unix socket, TCP, TLS with client certificates, and SSH (the npm `ssh2` package
 * forwarding to the remote unix socket, or the system `ssh` binary running `virt-ssh-helper` or
 * `nc -U`). Child processes are spawned with argv arrays; the only shell string is the remote
 * command that ssh itself hands to the remote login shell, built from shell-quoted words.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { localError } from './errors.js';
import { type LibvirtUri, uriParam, uriPort } from './uri.js';

export interface TransportOptions {
  /** Open the read-only socket (libvirt-sock-ro) for local/remote unix sockets. */
  readonly?: boolean;
  /** Milliseconds to establish the byte stream (socket connect, TLS/SSH handshake). Default 15000. */
  connectTimeoutMs?: number;
  /** TLS material overriding the files (PEM). */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
  ssh?: {
    /** 'ssh2' (default; pure JS) or 'system' (the ssh binary; also chosen by the `command` URI param). */
    implementation?: 'ssh2' | 'system';
    privateKey?: string | Buffer;
    passphrase?: string;
    password?: string;
    /** Extra ssh(1) arguments placed before the destination (system implementation only). */
    extraArgs?: string[];
  };
  /** Environment used to find defaults (HOME, XDG_RUNTIME_DIR, SSH_AUTH_SOCK). Default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface TransportHandle {
  stream: Duplex;
  /** Human-readable description, e.g. "unix:/run/libvirt/libvirt-sock". */
  description: string;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
const SYSTEM_SOCKET_DIR = '/run/libvirt';

/** libvirt's default PKI locations for a root client. */
export const DEFAULT_PKI = {
  cacert: '/etc/pki/CA/cacert.pem',
  clientcert: '/etc/pki/libvirt/clientcert.pem',
  clientkey: '/etc/pki/libvirt/private/clientkey.pem',
} as const;

/**
 * Local unix socket for a URI: the `socket` parameter, else the per-user session socket for
 * `/session`, else the system socket (the monolithic libvirtd's, or the modular virt<driver>d's
 * when only that one exists).
 */
export function localSocketPath(u: LibvirtUri, readonly = false, env: NodeJS.ProcessEnv = process.env): string {
  const explicit = uriParam(u, 'socket');
  if (explicit) return explicit;
  const suffix = readonly ? 'sock-ro' : 'sock';
  if (u.path === '/session') {
    const base = env.XDG_RUNTIME_DIR ? `${env.XDG_RUNTIME_DIR}/libvirt` : `${env.HOME ?? homedir()}/.cache/libvirt`;
    return `${base}/libvirt-${suffix}`;
  }
  const legacy = `${SYSTEM_SOCKET_DIR}/libvirt-${suffix}`;
  const modular = `${SYSTEM_SOCKET_DIR}/virt${u.driver}d-${suffix}`;
  if (!existsSync(legacy) && existsSync(modular)) return modular;
  return legacy;
}

/** Socket path on the far side of an SSH connection (cannot be probed from here). */
export function remoteSocketPath(u: LibvirtUri, readonly = false): string {
  return uriParam(u, 'socket') ?? `${SYSTEM_SOCKET_DIR}/libvirt-${readonly ? 'sock-ro' : 'sock'}`;
}

/** TLS certificate/key file paths for a URI (pkipath parameter, per-user dir, or system dirs). */
export function tlsFilePaths(u: LibvirtUri, env: NodeJS.ProcessEnv = process.env): { cacert: string; clientcert: string; clientkey: string } {
  const pki = uriParam(u, 'pkipath');
  if (pki) return { cacert: `${pki}/cacert.pem`, clientcert: `${pki}/clientcert.pem`, clientkey: `${pki}/clientkey.pem` };
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const userDir = `${env.HOME ?? homedir()}/.pki/libvirt`;
  if (!isRoot && existsSync(`${userDir}/clientcert.pem`)) {
    return { cacert: `${userDir}/cacert.pem`, clientcert: `${userDir}/clientcert.pem`, clientkey: `${userDir}/clientkey.pem` };
  }
  return { ...DEFAULT_PKI };
}

export async function openTransport(u: LibvirtUri, opts: TransportOptions = {}): Promise<TransportHandle> {
  const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const env = opts.env ?? process.env;
  switch (u.transport) {
    case 'unix': {
      const path = localSocketPath(u, opts.readonly, env);
      const stream = await connectSocket(() => net.createConnection({ path }), `unix socket ${path}`, timeoutMs);
      return { stream, description: `unix:${path}` };
    }
    case 'tcp': {
      const host = u.host as string;
      const port = uriPort(u) as number;
      const stream = await connectSocket(() => net.createConnection({ host, port }), `tcp ${host}:${port}`, timeoutMs);
      (stream as net.Socket).setNoDelay(true);
      return { stream, description: `tcp:${host}:${port}` };
    }
    case 'tls':
      return connectTls(u, opts, timeoutMs, env);
    case 'ssh': {
      const impl = uriParam(u, 'command') ? 'system' : (opts.ssh?.implementation ?? 'ssh2');
      return impl === 'system' ? connectSystemSsh(u, opts, env) : connectSsh2(u, opts, timeoutMs, env);
    }
  }
}

function connectSocket(make: () => net.Socket, what: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = make();
    const timer = setTimeout(() => {
      sock.destroy();
      reject(localError.unreachable(`cannot connect to libvirt at ${what}: no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(localError.unreachable(`cannot connect to libvirt at ${what}: ${err.message}`, err));
    });
  });
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw localError.invalid(`TLS: cannot read the ${what} '${path}': ${(e as Error).message} (set pkipath=DIR in the URI)`);
  }
}

async function connectTls(u: LibvirtUri, opts: TransportOptions, timeoutMs: number, env: NodeJS.ProcessEnv): Promise<TransportHandle> {
  const host = u.host as string;
  const port = uriPort(u) as number;
  const noVerify = uriParam(u, 'no_verify') === '1';
  const files = tlsFilePaths(u, env);
  const ca = opts.tls?.ca ?? readPem(files.cacert, 'CA certificate');
  const cert = opts.tls?.cert ?? readPem(files.clientcert, 'client certificate');
  const key = opts.tls?.key ?? readPem(files.clientkey, 'client key');
  const what = `tls ${host}:${port}`;
  const sock = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({
      host,
      port,
      ca,
      cert,
      key,
      // libvirt checks the server certificate against the CA and the host name; no_verify=1 skips both.
      rejectUnauthorized: !noVerify,
      servername: net.isIP(host) ? undefined : host,
    });
    const timer = setTimeout(() => {
      s.destroy();
      reject(localError.unreachable(`cannot connect to libvirt at ${what}: no TLS session within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(localError.unreachable(`cannot connect to libvirt at ${what}: ${err.message}`, err));
    });
  });
  // After the handshake the daemon checks OUR certificate (and address) and, if it accepts us,
  // sends a single byte 0x01 before any RPC traffic. Anything else means we were refused.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`no certificate confirmation within ${timeoutMs} ms`)), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      sock.removeListener('readable', onReadable);
      sock.removeListener('error', fail);
      sock.removeListener('end', onEnd);
    };
    function fail(err: Error): void {
      cleanup();
      sock.destroy();
      reject(localError.unreachable(`libvirt at ${what} refused the TLS session: ${err.message}`, err));
    }
    function onEnd(): void {
      fail(new Error('the server closed the connection (it rejected our client certificate or address)'));
    }
    function onReadable(): void {
      const b = sock.read(1) as Buffer | null;
      if (b === null) return;
      if (b[0] !== 1) {
        fail(new Error(`unexpected confirmation byte ${b[0]}`));
        return;
      }
      cleanup();
      resolve();
    }
    sock.on('readable', onReadable);
    sock.once('error', fail);
    sock.once('end', onEnd);
  });
  sock.setNoDelay(true);
  return { stream: sock, description: `tls:${host}:${port}` };
}

// ---------------------------------------------------------------------------------------------
// SSH
// ---------------------------------------------------------------------------------------------

/** Quotes one word for a POSIX shell (the remote login shell ssh hands its command to). */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_\-./:=@%+,]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command ssh runs remotely: `virt-ssh-helper URI` (libvirt >= 6.x) or `nc -U SOCKET`.
 * proxy=auto picks nc when a `socket` is given (older virt-ssh-helpers ignore that parameter),
 * virt-ssh-helper otherwise.
 */
export function remoteProxyCommand(u: LibvirtUri, readonly = false): string[] {
  const proxy = uriParam(u, 'proxy') ?? 'auto';
  const socket = uriParam(u, 'socket');
  const useNetcat = proxy === 'netcat' || (proxy === 'auto' && socket !== undefined);
  if (useNetcat) return [uriParam(u, 'netcat') ?? 'nc', '-U', remoteSocketPath(u, readonly)];
  const helperUri = socket ? `${u.remoteName}${u.remoteName.includes('?') ? '&' : '?'}socket=${socket}` : u.remoteName;
  return readonly ? ['virt-ssh-helper', '--readonly', helperUri] : ['virt-ssh-helper', helperUri];
}

/** argv (without the binary) for the system ssh client. */
export function systemSshArgs(u: LibvirtUri, opts: TransportOptions = {}): string[] {
  const args: string[] = [];
  if (u.port !== null) args.push('-p', String(u.port));
  if (u.user !== null) args.push('-l', u.user);
  const keyfile = uriParam(u, 'keyfile');
  if (keyfile) args.push('-i', keyfile);
  const knownHosts = uriParam(u, 'known_hosts');
  if (knownHosts) args.push('-o', `UserKnownHostsFile=${knownHosts}`);
  if (uriParam(u, 'no_verify') === '1') args.push('-o', 'StrictHostKeyChecking=no');
  // No terminal to answer prompts: fail instead of hanging (libvirt adds -T -e none too).
  args.push('-T', '-e', 'none', '-o', 'BatchMode=yes');
  args.push(...(opts.ssh?.extraArgs ?? []));
  args.push('--', u.host as string, remoteProxyCommand(u, opts.readonly).map(shellQuote).join(' '));
  return args;
}

/** A Duplex over a child's stdio that fails with the child's stderr when it exits non-zero. */
class ChildProcessDuplex extends Duplex {
  private stderrTail = '';

  constructor(private readonly child: ChildProcess, private readonly what: string) {
    super();
    const out = child.stdout as NodeJS.ReadableStream & { pause(): void; resume(): void };
    out.on('data', (d: Buffer) => {
      if (!this.push(d)) out.pause();
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString('utf8')).slice(-2000);
    });
    child.stdin?.on('error', () => undefined); // EPIPE after the child died: reported via 'close'
    child.on('error', (err) => this.destroy(new Error(`${what}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) this.push(null);
      else {
        const why = this.stderrTail.trim().split('\n').slice(-3).join(' / ');
        this.destroy(new Error(`${what} exited with ${code !== null ? `code ${code}` : `signal ${signal}`}${why ? `: ${why}` : ''}`));
      }
    });
  }

  override _read(): void {
    (this.child.stdout as NodeJS.ReadableStream & { resume(): void }).resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.child.stdin || this.child.stdin.destroyed) {
      cb(new Error(`${this.what}: stdin closed`));
      return;
    }
    this.child.stdin.write(chunk, (err) => cb(err ?? null));
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.child.stdin?.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    cb(err);
  }
}

function connectSystemSsh(u: LibvirtUri, opts: TransportOptions, env: NodeJS.ProcessEnv): TransportHandle {
  const bin = uriParam(u, 'command') ?? 'ssh';
  const args = systemSshArgs(u, opts);
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  const where = `${u.user ? `${u.user}@` : ''}${u.host}${u.port ? `:${u.port}` : ''}`;
  return { stream: new ChildProcessDuplex(child, `ssh to ${where}`), description: `ssh(${bin}):${where}` };
}

interface KnownHostEntry {
  marker: string | null;
  patterns: string;
  keyType: string;
  key: string;
}

function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    let marker: string | null = null;
    if (parts[0]?.startsWith('@')) marker = parts.shift() as string;
    if (parts.length < 3) continue;
    out.push({ marker, patterns: parts[0] as string, keyType: parts[1] as string, key: parts[2] as string });
  }
  return out;
}

function hostPatternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}

/** Whether `name` (host or "[host]:port") matches a comma-separated known_hosts pattern list. */
export function knownHostsPatternMatches(patterns: string, name: string): boolean {
  let matched = false;
  for (const p of patterns.split(',')) {
    if (p.startsWith('!')) {
      if (hostPatternMatches(p.slice(1), name)) return false;
    } else if (hostPatternMatches(p, name)) {
      matched = true;
    }
  }
  return matched;
}

/**
 * Host-key check for the ssh2 transport, against an OpenSSH known_hosts file.
 * Returns null when the key is accepted, else the reason for refusing it.
 */
export function verifyHostKey(knownHostsText: string, host: string, port: number, keyBlob: Buffer, mode: 'normal' | 'auto'): string | null {
  const name = port === 22 ? host : `[${host}]:${port}`;
  const b64 = keyBlob.toString('base64');
  let sawHost = false;
  for (const e of parseKnownHosts(knownHostsText)) {
    if (e.marker === '@cert-authority') continue;
    if (!knownHostsPatternMatches(e.patterns, name)) continue;
    if (e.marker === '@revoked') {
      if (e.key === b64) return `host key of ${name} is marked @revoked`;
      continue;
    }
    sawHost = true;
    if (e.key === b64) return null;
  }
  if (sawHost) return `host key of ${name} does not match known_hosts (possible man-in-the-middle)`;
  if (mode === 'auto') return null;
  return `host ${name} is not in known_hosts (add its key, or use known_hosts_verify=auto / no_verify=1)`;
}

function defaultPrivateKey(env: NodeJS.ProcessEnv): Buffer | undefined {
  const dir = `${env.HOME ?? homedir()}/.ssh`;
  for (const f of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    const p = `${dir}/${f}`;
    if (existsSync(p)) return readFileSync(p);
  }
  return undefined;
}

async function connectSsh2(u: LibvirtUri, opts: TransportOptions, timeoutMs: number, env: NodeJS.ProcessEnv): Promise<TransportHandle> {
  const { default: ssh2 } = await import('ssh2');
  const host = u.host as string;
  const port = uriPort(u) as number;
  const username = u.user ?? env.USER ?? env.LOGNAME ?? 'root';
  const keyfile = uriParam(u, 'keyfile');
  let privateKey: string | Buffer | undefined = opts.ssh?.privateKey;
  if (!privateKey && keyfile) {
    try {
      privateKey = readFileSync(keyfile);
    } catch (e) {
      throw localError.invalid(`ssh: cannot read keyfile '${keyfile}': ${(e as Error).message}`);
    }
  }
  if (!privateKey && !opts.ssh?.password && !env.SSH_AUTH_SOCK) privateKey = defaultPrivateKey(env);
  const verifyMode = uriParam(u, 'no_verify') === '1' ? 'ignore' : (uriParam(u, 'known_hosts_verify') ?? 'normal');
  if (!['normal', 'auto', 'ignore'].includes(verifyMode)) {
    throw localError.invalid(`ssh: known_hosts_verify must be normal, auto or ignore, got '${verifyMode}'`);
  }
  const knownHostsPath = uriParam(u, 'known_hosts') ?? `${env.HOME ?? homedir()}/.ssh/known_hosts`;
  let hostKeyProblem: string | null = null;
  const socketPath = remoteSocketPath(u, opts.readonly);
  const where = `${username}@${host}:${port}`;

  const client = new ssh2.Client();
  const channel = await new Promise<Duplex>((resolve, reject) => {
    const fail = (msg: string, cause?: unknown): void => {
      client.end();
      reject(localError.unreachable(`ssh to ${where}: ${msg}`, cause));
    };
    client.once('error', (err: Error) => fail(hostKeyProblem ?? err.message, err));
    client.once('ready', () => {
      client.openssh_forwardOutStreamLocal(socketPath, (err, ch) => {
        if (err) {
          fail(`cannot open ${socketPath} on the remote host: ${err.message}`, err);
          return;
        }
        resolve(ch);
      });
    });
    client.connect({
      host,
      port,
      username,
      privateKey,
      passphrase: opts.ssh?.passphrase,
      password: opts.ssh?.password,
      agent: privateKey ? undefined : env.SSH_AUTH_SOCK,
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer): boolean => {
        if (verifyMode === 'ignore') return true;
        let text: string;
        try {
          text = readFileSync(knownHostsPath, 'utf8');
        } catch {
          text = ''; // no known_hosts file: every host is unknown
        }
        hostKeyProblem = verifyHostKey(text, host, port, key, verifyMode as 'normal' | 'auto');
        return hostKeyProblem === null;
      },
    });
  });
  channel.once('close', () => client.end());
  client.on('error', (err: Error) => channel.destroy(err));
  return { stream: channel, description: `ssh(ssh2):${where}${socketPath}` };
}
