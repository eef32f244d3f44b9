/**
 * The drivers' own settings are configuration fields (src/config/schema.ts `libvirt`, `virsh`):
 * validated with the rest of the file, defaults filled in, and passed by createDriver's factory
 * to the driver it builds — `virsh.maxProcesses` becomes the virsh driver's shared process cap,
 * `libvirt.shareCountersMs` every RPC backend's counter-sharing window. No daemon is contacted:
 * neither driver connects or spawns before its first call.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { defaultDriverFactory } from '../../src/drivers/index.js';
import type { HypervisorDriver } from '../../src/drivers/hypervisor.js';
import type { RpcBackend } from '../../src/drivers/libvirt/index.js';
import { DEFAULT_SHARE_COUNTERS_MS, LibvirtDriver } from '../../src/drivers/libvirt/index.js';
import type { VirshBackend } from '../../src/drivers/virsh/index.js';
import { DEFAULT_VIRSH_PROCESSES, VirshDriver } from '../../src/drivers/virsh/index.js';

const HOSTS = `hosts:
  - name: a
    uri: qemu+tcp://10.0.0.1/system
  - name: b
    uri: qemu+tcp://10.0.0.2/system
`;

let opened: HypervisorDriver[] = [];
afterEach(async () => {
  for (const d of opened) await d.close();
  opened = [];
});

function build(extra: string): HypervisorDriver {
  const d = defaultDriverFactory(parseConfigText(HOSTS + extra, 'tide.yaml'));
  opened.push(d);
  return d;
}

/** The ConfigError message of `extra` appended to a valid file (fails the test when accepted). */
function refusal(extra: string): string {
  try {
    parseConfigText(HOSTS + extra, 'tide.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error(`accepted: ${extra}`);
}

describe('driver settings in the configuration', () => {
  it('defaults are filled in for both sections (8 virsh processes, 1000 ms of counter sharing)', () => {
    const c = parseConfigText(HOSTS, 'tide.yaml');
    expect(c.virsh).toEqual({ maxProcesses: DEFAULT_VIRSH_PROCESSES });
    expect(c.libvirt).toEqual({ shareCountersMs: DEFAULT_SHARE_COUNTERS_MS });
    expect([DEFAULT_VIRSH_PROCESSES, DEFAULT_SHARE_COUNTERS_MS]).toEqual([8, 1000]);
  });

  it('virsh.maxProcesses reaches the virsh driver: one limit of that size shared by all its hosts', () => {
    const d = build('driver: virsh\nvirsh:\n  maxProcesses: 3\n');
    expect(d).toBeInstanceOf(VirshDriver);
    const v = d as VirshDriver;
    expect(v.processLimit.max).toBe(3);
    expect(v.backends.map((b) => (b as VirshBackend).limit)).toEqual([v.processLimit, v.processLimit]);
    expect((build('driver: virsh\n') as VirshDriver).processLimit.max).toBe(8);
  });

  it('libvirt.shareCountersMs reaches every RPC backend (0 turns sharing off)', () => {
    for (const [extra, want] of [['libvirt:\n  shareCountersMs: 250\n', 250], ['libvirt:\n  shareCountersMs: 0\n', 0], ['', 1000]] as const) {
      const d = build(extra);
      expect(d).toBeInstanceOf(LibvirtDriver);
      const backends = (d as LibvirtDriver).backends as RpcBackend[];
      expect(backends.map((b) => b.shareCountersMs)).toEqual([want, want]);
    }
  });

  it("the other driver's section is accepted and does not change the selected driver", () => {
    const d = build('driver: virsh\nvirsh:\n  maxProcesses: 2\nlibvirt:\n  shareCountersMs: 5\n') as VirshDriver;
    expect(d.processLimit.max).toBe(2);
    const l = build('virsh:\n  maxProcesses: 2\nlibvirt:\n  shareCountersMs: 5\n') as LibvirtDriver;
    expect((l.backends[0] as RpcBackend).shareCountersMs).toBe(5);
  });

  it('bad values are refused with an error naming the field and its line', () => {
    const cases: Array<[string, RegExp]> = [
      ['virsh:\n  maxProcesses: 0\n', /tide\.yaml: virsh\.maxProcesses: .*>=1.*\(line 7, column 3\)/],
      ['virsh:\n  maxProcesses: 2.5\n', /virsh\.maxProcesses: .*expected int/],
      ['virsh:\n  maxProcesses: 257\n', /virsh\.maxProcesses: .*<=256/],
      ['virsh:\n  maxProcesses: "8"\n', /virsh\.maxProcesses: .*number/],
      ['virsh:\n  maxProcess: 8\n', /virsh\.maxProcess: Unrecognized key/],
      ['libvirt:\n  shareCountersMs: -1\n', /tide\.yaml: libvirt\.shareCountersMs: .*>=0/],
      ['libvirt:\n  shareCountersMs: 60001\n', /libvirt\.shareCountersMs: .*<=60000/],
      ['libvirt:\n  shareCountersMs: 0.5\n', /libvirt\.shareCountersMs: .*expected int/],
      ['libvirt:\n  shareCountersSec: 1\n', /libvirt\.shareCountersSec: Unrecognized key/],
      ['libvirt: 1000\n', /libvirt: .*object/],
    ];
    for (const [extra, want] of cases) expect(refusal(extra), extra).toMatch(want);
  });
});
