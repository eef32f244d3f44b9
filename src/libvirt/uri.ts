/**
 * libvirt connection URIs, parsed the way virsh / libvirt's remote driver takes them:
 *
 *   driver[+transport]://[user@][host][:port]/[path][?param=value&...]
 *
 * e.g. qemu:///system, qemu+unix:///system?socket=/path, qemu+tcp://h:16509/system,
 * qemu+tls://h/system?pkipath=/dir&no_verify=1, qemu+ssh://root@h:22/system?keyfile=/k,
 * test:///default. Without a transport, a URI with a host means TLS and one without means the
 * local unix socket (libvirt's rule). Parameters the client itself consumes (socket, pkipath,
 * no_verify, keyfile, ...) are removed from the name sent to the daemon in CONNECT_OPEN; any other
 * parameter is passed through, as libvirt does. Query values are percent-decoded only ('+' stays).
 */

export type Transport = 'unix' | 'tcp' | 'tls' | 'ssh';

export interface LibvirtUri {
  /** The URI as given. */
  readonly uri: string;
  /** Hypervisor driver: qemu, test, lxc, xen, ... */
  readonly driver: string;
  readonly transport: Transport;
  /** Whether the transport was written explicitly (`qemu+unix://`) or implied. */
  readonly explicitTransport: boolean;
  readonly user: string | null;
  /** Host name or address (IPv6 without brackets); null for local URIs. */
  readonly host: string | null;
  /** Port, or null for the transport's default. */
  readonly port: number | null;
  /** Path, e.g. "/system". */
  readonly path: string;
  /** All query parameters in order (percent-decoded). */
  readonly params: ReadonlyArray<readonly [string, string]>;
  /** Name sent to the daemon in CONNECT_OPEN (transport, host and client-side params removed). */
  readonly remoteName: string;
}

export class LibvirtUriError extends Error {
  constructor(uri: string, problem: string) {
    super(`invalid libvirt URI '${uri}': ${problem}`);
    this.name = 'LibvirtUriError';
  }
}

export const DEFAULT_PORTS: Readonly<Record<Transport, number | null>> = { unix: null, tcp: 16509, tls: 16514, ssh: 22 };

/** Parameters interpreted by the client (libvirt's remote driver), never sent to the daemon. */
const CLIENT_PARAMS = new Set([
  'name', 'command', 'socket', 'auth', 'netcat', 'keyfile', 'sshauth', 'known_hosts', 'known_hosts_verify',
  'no_sanity', 'no_verify', 'no_tty', 'pkipath', 'tls_priority', 'mode', 'proxy', 'tls',
]);
/** Client parameters this implementation rejects rather than silently ignoring. */
const UNSUPPORTED_PARAMS: Readonly<Record<string, string>> = {
  tls_priority: 'GnuTLS priority strings are not supported (Node uses OpenSSL)',
  auth: 'client-side auth selection (SASL) is not supported',
};

const SUPPORTED_TRANSPORTS: readonly Transport[] = ['unix', 'tcp', 'tls', 'ssh'];

function pctDecode(uri: string, s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new LibvirtUriError(uri, `bad percent-encoding in '${s}'`);
  }
}

export function parseLibvirtUri(uri: string): LibvirtUri {
  if (typeof uri !== 'string' || uri.trim() === '') throw new LibvirtUriError(String(uri), 'empty URI');
  const m = /^([A-Za-z][A-Za-z0-9.-]*)(?:\+([A-Za-z0-9]+))?:(.*)$/.exec(uri);
  if (!m) throw new LibvirtUriError(uri, 'expected driver[+transport]://[user@][host][:port]/[path][?params]');
  const driver = (m[1] as string).toLowerCase();
  const transportRaw = m[2]?.toLowerCase();
  let rest = m[3] as string;
  if (!rest.startsWith('//')) throw new LibvirtUriError(uri, `expected '//' after '${driver}${transportRaw ? `+${transportRaw}` : ''}:'`);
  rest = rest.slice(2);
  if (rest.includes('#')) throw new LibvirtUriError(uri, 'fragments (#...) are not allowed');

  const qpos = rest.indexOf('?');
  const query = qpos >= 0 ? rest.slice(qpos + 1) : '';
  const beforeQuery = qpos >= 0 ? rest.slice(0, qpos) : rest;
  const slash = beforeQuery.indexOf('/');
  const authority = slash >= 0 ? beforeQuery.slice(0, slash) : beforeQuery;
  const path = slash >= 0 ? beforeQuery.slice(slash) : '';

  let user: string | null = null;
  let hostport = authority;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    user = pctDecode(uri, authority.slice(0, at));
    if (user === '') throw new LibvirtUriError(uri, "empty user name before '@'");
    hostport = authority.slice(at + 1);
  }
  let host: string | null;
  let port: number | null = null;
  let portStr: string | undefined;
  if (hostport.startsWith('[')) {
    const close = hostport.indexOf(']');
    if (close < 0) throw new LibvirtUriError(uri, "unterminated '[' in IPv6 host");
    host = hostport.slice(1, close);
    const after = hostport.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) throw new LibvirtUriError(uri, `unexpected '${after}' after IPv6 host`);
      portStr = after.slice(1);
    }
  } else {
    const colon = hostport.indexOf(':');
    if (colon >= 0) {
      host = hostport.slice(0, colon);
      portStr = hostport.slice(colon + 1);
    } else {
      host = hostport;
    }
  }
  if (host === '') host = null;
  else if (host !== null) {
    host = pctDecode(uri, host);
    if (!/^[A-Za-z0-9._:%-]+$/.test(host)) throw new LibvirtUriError(uri, `invalid host '${host}'`);
  }
  if (portStr !== undefined && portStr !== '') {
    if (!/^\d+$/.test(portStr)) throw new LibvirtUriError(uri, `port '${portStr}' is not a number`);
    port = Number(portStr);
    if (port < 1 || port > 65535) throw new LibvirtUriError(uri, `port ${port} is out of range 1..65535`);
  }

  const params: Array<[string, string]> = [];
  if (query !== '') {
    for (const part of query.split(/[&;]/)) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const k = pctDecode(uri, eq >= 0 ? part.slice(0, eq) : part);
      const v = eq >= 0 ? pctDecode(uri, part.slice(eq + 1)) : '';
      if (k === '') throw new LibvirtUriError(uri, `empty parameter name in '${part}'`);
      params.push([k, v]);
    }
  }
  for (const [k, v] of params) {
    const why = UNSUPPORTED_PARAMS[k];
    if (why) throw new LibvirtUriError(uri, `parameter '${k}': ${why}`);
    if ((k === 'no_verify' || k === 'no_tty') && !/^[01]$/.test(v)) {
      throw new LibvirtUriError(uri, `parameter '${k}' must be 0 or 1, got '${v}'`);
    }
    if (k === 'proxy' && !['auto', 'netcat', 'native'].includes(v)) {
      throw new LibvirtUriError(uri, `parameter 'proxy' must be auto, netcat or native, got '${v}'`);
    }
    if (k === 'mode' && !['auto', 'legacy', 'direct'].includes(v)) {
      throw new LibvirtUriError(uri, `parameter 'mode' must be auto, legacy or direct, got '${v}'`);
    }
    if ((k === 'socket' || k === 'pkipath' || k === 'keyfile' || k === 'known_hosts') && v === '') {
      throw new LibvirtUriError(uri, `parameter '${k}' needs a value`);
    }
  }

  let transport: Transport;
  if (transportRaw === undefined) {
    transport = host !== null ? 'tls' : 'unix';
  } else if ((SUPPORTED_TRANSPORTS as readonly string[]).includes(transportRaw)) {
    transport = transportRaw as Transport;
  } else if (['libssh', 'libssh2', 'ext'].includes(transportRaw)) {
    throw new LibvirtUriError(uri, `transport '${transportRaw}' is not supported (use ssh, which runs via ssh2 or the ssh binary)`);
  } else {
    throw new LibvirtUriError(uri, `unknown transport '${transportRaw}' (expected one of ${SUPPORTED_TRANSPORTS.join(', ')})`);
  }
  if (transport === 'unix' && (host !== null || port !== null || user !== null)) {
    throw new LibvirtUriError(uri, 'a unix-socket URI takes no user, host or port (did you mean +ssh or +tcp?)');
  }
  if (transport !== 'unix' && host === null) {
    // libvirt defaults the server to localhost for network transports.
    host = 'localhost';
  }
  if (transport !== 'ssh' && user !== null) {
    throw new LibvirtUriError(uri, `a user name only makes sense with the ssh transport, not ${transport}`);
  }
  if (path !== '' && !path.startsWith('/')) throw new LibvirtUriError(uri, `path '${path}' must start with '/'`);

  const nameParam = params.find(([k]) => k === 'name')?.[1];
  const passthrough = params.filter(([k]) => !CLIENT_PARAMS.has(k));
  const remoteQuery = passthrough.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  const remoteName = nameParam ?? `${driver}://${path}${remoteQuery ? `?${remoteQuery}` : ''}`;

  return { uri, driver, transport, explicitTransport: transportRaw !== undefined, user, host, port, path, params, remoteName };
}

/** Last value of a parameter, or undefined. */
export function uriParam(u: LibvirtUri, key: string): string | undefined {
  let v: string | undefined;
  for (const [k, val] of u.params) if (k === key) v = val;
  return v;
}

/** Effective port: explicit or the transport's default. */
export function uriPort(u: LibvirtUri): number | null {
  return u.port ?? DEFAULT_PORTS[u.transport];
}
