// Unit tests of URI parsing (virsh's forms), transport argument building, host-key checking,
// the error-code table and typed-parameter conversion.
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MIGRATE_PARAM_TYPES } from '../../src/libvirt/constants.js';
import { LibvirtError, TIDE_CODE_BY_VIR_ERR, tideCodeFor, VIR_ERR } from '../../src/libvirt/errors.js';
import { localSocketPath, remoteProxyCommand, shellQuote, systemSshArgs, tlsFilePaths, verifyHostKey } from '../../src/libvirt/transport.js';
import { decodeTypedParams, encodeTypedParams, tp } from '../../src/libvirt/typed-params.js';
import { parseLibvirtUri, uriParam, uriPort } from '../../src/libvirt/uri.js';

describe('parseLibvirtUri', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['qemu:///system', { driver: 'qemu', transport: 'unix', explicitTransport: false, host: null, port: null, user: null, path: '/system', remoteName: 'qemu:///system' }],
    ['qemu:///session', { transport: 'unix', path: '/session', remoteName: 'qemu:///session' }],
    ['qemu+unix:///system?socket=/tmp/x/libvirt-sock', { transport: 'unix', explicitTransport: true, remoteName: 'qemu:///system' }],
    ['qemu+tcp://10.0.0.5/system', { transport: 'tcp', host: '10.0.0.5', port: null, remoteName: 'qemu:///system' }],
    ['qemu+tcp://h:16609/system', { transport: 'tcp', host: 'h', port: 16609 }],
    ['qemu+tls://h.example/system?pkipath=/p&no_verify=1', { transport: 'tls', host: 'h.example', remoteName: 'qemu:///system' }],
    ['qemu://h.example/system', { transport: 'tls', explicitTransport: false, host: 'h.example' }],
    ['qemu+ssh://root@[::1]:2222/system?keyfile=/k&no_verify=1&socket=/s', { transport: 'ssh', user: 'root', host: '::1', port: 2222, remoteName: 'qemu:///system' }],
    ['test:///default', { driver: 'test', transport: 'unix', path: '/default', remoteName: 'test:///default' }],
    ['qemu+tcp:///system', { transport: 'tcp', host: 'localhost' }],
    // unknown params go to the daemon, client params do not; '+' is not a space
    ['qemu+tcp://h/system?foo=a+b&no_verify=0', { remoteName: 'qemu:///system?foo=a%2Bb' }],
    ['qemu+ssh://h/system?name=qemu:///session', { remoteName: 'qemu:///session' }],
  ];
  for (const [uri, want] of cases) {
    it(`parses ${uri}`, () => {
      expect(parseLibvirtUri(uri)).toMatchObject(want);
    });
  }

  it('exposes params in order, percent-decoded, and default ports per transport', () => {
    const u = parseLibvirtUri('qemu+ssh://u@h/system?socket=%2Fa%20b&keyfile=/k&socket=/c');
    expect(u.params).toEqual([['socket', '/a b'], ['keyfile', '/k'], ['socket', '/c']]);
    expect(uriParam(u, 'socket')).toBe('/c');
    expect(uriPort(u)).toBe(22);
    expect(uriPort(parseLibvirtUri('qemu+tls://h/system'))).toBe(16514);
    expect(uriPort(parseLibvirtUri('qemu+tcp://h/system'))).toBe(16509);
  });

  const bad: Array<[string, RegExp]> = [
    ['', /empty URI/],
    ['/system', /expected driver\[\+transport\]/],
    ['qemu:/system', /expected '\/\/' after 'qemu:'/],
    ['qemu+foo:///system', /unknown transport 'foo'/],
    ['qemu+libssh2://h/system', /transport 'libssh2' is not supported/],
    ['qemu+unix://host/system', /unix-socket URI takes no user, host or port/],
    ['qemu+tcp://h:abc/system', /port 'abc' is not a number/],
    ['qemu+tcp://h:70000/system', /port 70000 is out of range/],
    ['qemu+tcp://root@h/system', /user name only makes sense with the ssh transport/],
    ['qemu+tls://h/system?no_verify=yes', /'no_verify' must be 0 or 1/],
    ['qemu+ssh://h/system?proxy=magic', /'proxy' must be auto, netcat or native/],
    ['qemu+unix:///system?socket=', /'socket' needs a value/],
    ['qemu+tls://h/system?tls_priority=NORMAL', /GnuTLS priority strings are not supported/],
    ['qemu+tcp://[::1/system', /unterminated '\['/],
    ['qemu+tcp://h/system#frag', /fragments/],
    ['qemu+tcp://h%zz/system', /bad percent-encoding/],
  ];
  for (const [uri, re] of bad) {
    it(`rejects '${uri}' naming the problem`, () => {
      expect(() => parseLibvirtUri(uri)).toThrow(re);
      expect(() => parseLibvirtUri(uri)).toThrow(/invalid libvirt URI/);
    });
  }
});

describe('transport argument building', () => {
  it('uses the socket parameter, else the session or system socket', () => {
    expect(localSocketPath(parseLibvirtUri('qemu+unix:///system?socket=/x/sock'))).toBe('/x/sock');
    expect(localSocketPath(parseLibvirtUri('qemu:///session'), false, { XDG_RUNTIME_DIR: '/run/user/5' })).toBe('/run/user/5/libvirt/libvirt-sock');
    expect(localSocketPath(parseLibvirtUri('qemu:///session'), true, { HOME: '/home/u' })).toBe('/home/u/.cache/libvirt/libvirt-sock-ro');
  });

  it('finds TLS files in pkipath or libvirt defaults', () => {
    expect(tlsFilePaths(parseLibvirtUri('qemu+tls://h/system?pkipath=/pki'))).toEqual({ cacert: '/pki/cacert.pem', clientcert: '/pki/clientcert.pem', clientkey: '/pki/clientkey.pem' });
    if (process.getuid?.() === 0) {
      expect(tlsFilePaths(parseLibvirtUri('qemu+tls://h/system'))).toEqual({
        cacert: '/etc/pki/CA/cacert.pem', clientcert: '/etc/pki/libvirt/clientcert.pem', clientkey: '/etc/pki/libvirt/private/clientkey.pem',
      });
    }
  });

  it('builds the system ssh argv without a local shell, quoting only the remote command', () => {
    const u = parseLibvirtUri("qemu+ssh://root@h:2222/system?keyfile=/k/id&no_verify=1&known_hosts=/kh");
    expect(systemSshArgs(u)).toEqual([
      '-p', '2222', '-l', 'root', '-i', '/k/id', '-o', 'UserKnownHostsFile=/kh', '-o', 'StrictHostKeyChecking=no',
      '-T', '-e', 'none', '-o', 'BatchMode=yes', '--', 'h', 'virt-ssh-helper qemu:///system',
    ]);
    const nc = parseLibvirtUri("qemu+ssh://h/system?socket=/run/my sock/x'y");
    expect(remoteProxyCommand(nc)).toEqual(['nc', '-U', "/run/my sock/x'y"]);
    expect(systemSshArgs(nc).at(-1)).toBe(`nc -U '/run/my sock/x'\\''y'`);
    expect(remoteProxyCommand(parseLibvirtUri('qemu+ssh://h/system?socket=/s&proxy=native'))).toEqual(['virt-ssh-helper', 'qemu:///system?socket=/s']);
    expect(remoteProxyCommand(parseLibvirtUri('qemu+ssh://h/system?proxy=netcat&netcat=ncat'), true)).toEqual(['ncat', '-U', '/run/libvirt/libvirt-sock-ro']);
    expect(shellQuote('$(reboot)')).toBe(`'$(reboot)'`);
  });

  describe('known_hosts verification (ssh2 transport)', () => {
    const key = randomBytes(51);
    const other = randomBytes(51);
    const b64 = key.toString('base64');
    it('accepts a plain or hashed matching entry, with [host]:port for non-22 ports', () => {
      expect(verifyHostKey(`[127.0.0.1]:2222 ssh-ed25519 ${b64}\n`, '127.0.0.1', 2222, key, 'normal')).toBeNull();
      expect(verifyHostKey(`h1,127.0.0.1 ssh-ed25519 ${b64}\n`, '127.0.0.1', 22, key, 'normal')).toBeNull();
      const salt = randomBytes(20);
      const hash = createHmac('sha1', salt).update('[127.0.0.1]:2222').digest('base64');
      expect(verifyHostKey(`|1|${salt.toString('base64')}|${hash} ssh-ed25519 ${b64}\n`, '127.0.0.1', 2222, key, 'normal')).toBeNull();
    });
    it('refuses a changed key even in auto mode, and an unknown host in normal mode', () => {
      expect(verifyHostKey(`[127.0.0.1]:2222 ssh-ed25519 ${b64}\n`, '127.0.0.1', 2222, other, 'auto')).toMatch(/does not match/);
      expect(verifyHostKey(`# nothing\n`, '127.0.0.1', 2222, key, 'normal')).toMatch(/not in known_hosts/);
      expect(verifyHostKey(`# nothing\n`, '127.0.0.1', 2222, key, 'auto')).toBeNull();
      expect(verifyHostKey(`@revoked * ssh-ed25519 ${b64}\n`, '127.0.0.1', 22, key, 'auto')).toMatch(/revoked/);
      expect(verifyHostKey(`127.0.0.1 ssh-ed25519 ${b64}\n`, '127.0.0.1', 2222, key, 'normal')).toMatch(/not in known_hosts/);
    });
  });
});

describe('error table', () => {
  it('maps libvirt codes to stable Tide codes in one table', () => {
    expect(TIDE_CODE_BY_VIR_ERR[VIR_ERR.NO_DOMAIN]).toBe('TIDE_NO_SUCH_VM');
    expect(tideCodeFor(VIR_ERR.OPERATION_INVALID, 'domain is not running')).toBe('TIDE_VM_STATE');
    expect(tideCodeFor(VIR_ERR.NO_SUPPORT, 'x')).toBe('TIDE_UNSUPPORTED');
    expect(tideCodeFor(VIR_ERR.RPC, 'unknown procedure: 442')).toBe('TIDE_UNSUPPORTED');
    expect(tideCodeFor(VIR_ERR.RPC, 'cannot write data')).toBe('TIDE_LIBVIRT_ERROR');
    expect(tideCodeFor(VIR_ERR.OPERATION_ABORTED, 'x')).toBe('TIDE_ABORTED');
    expect(tideCodeFor(VIR_ERR.INTERNAL_ERROR, 'x')).toBe('TIDE_LIBVIRT_ERROR');
  });

  it('withTideCode keeps libvirt details', () => {
    const e = new LibvirtError({ tideCode: 'TIDE_LIBVIRT_ERROR', message: 'm', code: 38, domain: 7, origin: 'remote' });
    expect(e.withTideCode('TIDE_MIGRATION_FAILED')).toMatchObject({ tideCode: 'TIDE_MIGRATION_FAILED', code: 38, domain: 7, origin: 'remote', message: 'm' });
  });
});

describe('typed parameters', () => {
  it('decodes to plain values with bigint for 64-bit and boolean for booleans', () => {
    expect(decodeTypedParams([
      { field: 'state.state', value: { type: 1, value: 1 } },
      { field: 'cpu.time', value: { type: 4, value: 123n } },
      { field: 'x.b', value: { type: 6, value: 1 } },
      { field: 'x.s', value: { type: 7, value: 'v' } },
      { field: 'x.d', value: { type: 5, value: 0.5 } },
    ])).toEqual({ 'state.state': 1, 'cpu.time': 123n, 'x.b': true, 'x.s': 'v', 'x.d': 0.5 });
  });

  it('encodes migration params from the known-type table, repeats allowed', () => {
    expect(encodeTypedParams(Object.entries({ migrate_uri: 'tcp://127.0.0.1', bandwidth: 5, migrate_disks: ['vda', 'vdb'], 'auto_converge.initial': 20 }), MIGRATE_PARAM_TYPES)).toEqual([
      { field: 'migrate_uri', value: { type: 7, value: 'tcp://127.0.0.1' } },
      { field: 'bandwidth', value: { type: 4, value: 5n } },
      { field: 'migrate_disks', value: { type: 7, value: 'vda' } },
      { field: 'migrate_disks', value: { type: 7, value: 'vdb' } },
      { field: 'auto_converge.initial', value: { type: 1, value: 20 } },
    ]);
    expect(encodeTypedParams([['custom', tp.boolean(true)]])).toEqual([{ field: 'custom', value: { type: 6, value: 1 } }]);
    expect(() => encodeTypedParams([['mystery', 1]])).toThrow(/unknown type/);
    expect(() => encodeTypedParams([['bandwidth', 'fast']], MIGRATE_PARAM_TYPES)).toThrow(/does not fit/);
  });
});
