/**
 * A scriptable HostBackend for fast tests of the migration engine's logic (recovery above
 * all) on virtual time. Several ScriptedHosts share one ScriptedWorld: the truth about every
 * copy of every VM, which a host reports only while it is reachable. A test scripts what
 * `migrate()` does to the world (pause the source, create or resume a copy on the target, make
 * a host stop answering, reject…) and asserts what the engine did: the world logs every
 * state-changing call and records a violation whenever a call leaves a VM running on two hosts.
 *
 * This is a fake for logic tests only; the real engine runs against libvirt in the driver
 * contract suite and the lab.
 */
import { parseConfig } from '../../src/config/load.js';
import type { HostConfig } from '../../src/config/schema.js';
import { DriverError } from '../../src/drivers/errors.js';
import type { VmState } from '../../src/drivers/hypervisor.js';
import type {
  CpuCompare, DomainFacts, HostBackend, HostCounters, HostFacts, JobFacts, MigrateCall,
} from '../../src/drivers/common/backend.js';

/** VIR_DOMAIN_STATE numbers for the states used here. */
const STATE_CODE: Record<VmState, number> = { running: 1, paused: 3, shutoff: 5, crashed: 6, suspended: 7, other: 0 };

export interface Copy {
  state: VmState;
  /** VIR_DOMAIN_{RUNNING,PAUSED}_* reason (0 when the backend does not know, as virsh). */
  reason: number;
  persistent: boolean;
  /** The job libvirt would report for this copy (null: none). */
  job: JobFacts | null;
  /** The last finished job's statistics (jobStats with `completed`). */
  lastJob?: JobFacts | null;
}

/** A running (type 2 = unbounded) migration job; operation 5 = out, 4 = in. */
export const migrationJob = (direction: 'out' | 'in', fields: Record<string, number> = {}): JobFacts =>
  ({ type: 2, fields: { operation: direction === 'out' ? 5 : 4, ...fields } });

export class ScriptedWorld {
  /** host → vm → copy */
  readonly copies = new Map<string, Map<string, Copy>>();
  /** Every state-changing call, in order: "resume lab-a tvm", "destroy lab-b tvm"… */
  readonly log: string[] = [];
  /** Moments when a VM ran on more than one host right after a call. */
  readonly violations: string[] = [];

  on(host: string): Map<string, Copy> {
    let m = this.copies.get(host);
    if (!m) this.copies.set(host, (m = new Map()));
    return m;
  }

  /** Sets (or with null removes) the copy of `vm` on `host`. */
  set(host: string, vm: string, copy: Partial<Copy> | null): void {
    if (copy === null) {
      this.on(host).delete(vm);
    } else {
      const old = this.on(host).get(vm);
      this.on(host).set(vm, { state: 'running', reason: 1, persistent: true, job: null, ...old, ...copy });
    }
    this.check(vm, `set ${host}`);
  }

  copy(host: string, vm: string): Copy | undefined {
    return this.copies.get(host)?.get(vm);
  }

  /** Hosts on which `vm` runs (state running). */
  runningOn(vm: string): string[] {
    return [...this.copies].filter(([, m]) => m.get(vm)?.state === 'running').map(([h]) => h);
  }

  check(vm: string, after: string): void {
    const on = this.runningOn(vm);
    if (on.length > 1) this.violations.push(`${vm} running on ${on.join(' and ')} after ${after}`);
  }
}

export interface HostScript {
  /** The source's migrate(): change the world, then resolve or reject. */
  migrate?: (vm: string, call: MigrateCall) => Promise<void>;
  startPostCopy?: (vm: string) => Promise<void>;
}

export class ScriptedHost implements HostBackend {
  /** false: every call rejects with TIDE_HOST_UNREACHABLE (libvirtd stopped, link cut). */
  reachable = true;
  script: HostScript = {};

  constructor(readonly world: ScriptedWorld, readonly config: HostConfig, private readonly uuid: string) {
    world.on(config.name);
  }

  get up(): boolean {
    return this.reachable;
  }

  private get name(): string {
    return this.config.name;
  }

  private gate(): void {
    if (!this.reachable) throw new DriverError('TIDE_HOST_UNREACHABLE', `${this.name}: no answer (scripted)`, { host: this.name });
  }

  private facts(vm: string, c: Copy): DomainFacts {
    return {
      name: vm, uuid: `00000000-0000-4000-8000-${vm.padStart(12, '0').slice(-12).replace(/[^0-9a-f]/g, '0')}`,
      state: c.state, stateCode: STATE_CODE[c.state], reason: c.reason, active: c.state !== 'shutoff' && c.state !== 'crashed',
      persistent: c.persistent, vcpus: 1, memKiB: 65_536,
    };
  }

  private mine(vm: string): Copy {
    const c = this.world.copy(this.name, vm);
    if (!c) throw new DriverError('TIDE_NO_SUCH_VM', `${this.name}: no domain ${vm}`, { vm });
    return c;
  }

  async ensure(): Promise<void> {
    this.gate();
  }

  async hostFacts(): Promise<HostFacts> {
    this.gate();
    return { uuid: this.uuid, hostname: this.name, cpuCores: 4, cpuMhz: 2000, memKiB: 8 * 1024 * 1024, cpuModel: 'qemu64', arch: 'x86_64' };
  }

  async domains(): Promise<DomainFacts[]> {
    this.gate();
    return [...this.world.on(this.name)].map(([vm, c]) => this.facts(vm, c));
  }

  async domain(vm: string): Promise<DomainFacts | null> {
    this.gate();
    const c = this.world.copy(this.name, vm);
    return c ? this.facts(vm, c) : null;
  }

  async counters(): Promise<HostCounters> {
    this.gate();
    return { atMs: 0, monoMs: 0, cpuBusyNs: 0, cpuTotalNs: 1, memTotalKiB: 8 * 1024 * 1024, memAvailableKiB: 7 * 1024 * 1024, vms: [] };
  }

  async memory(): Promise<{ totalKiB: number; availableKiB: number }> {
    this.gate();
    return { totalKiB: 8 * 1024 * 1024, availableKiB: 7 * 1024 * 1024 };
  }

  async domainXml(vm: string): Promise<string> {
    this.gate();
    this.mine(vm);
    return `<domain type='kvm'><name>${vm}</name><memory unit='KiB'>65536</memory><os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>`;
  }

  async jobStats(vm: string, completed = false): Promise<JobFacts | null> {
    this.gate();
    const c = this.world.copy(this.name, vm);
    return (completed ? c?.lastJob : c?.job) ?? null;
  }

  async compareCpu(): Promise<CpuCompare> {
    this.gate();
    return { result: 'compatible', reason: 'scripted' };
  }

  async migrate(vm: string, call: MigrateCall): Promise<void> {
    this.gate();
    this.world.log.push(`migrate ${this.name} ${vm} → ${call.dest.name}`);
    if (!this.script.migrate) throw new Error('ScriptedHost: no migrate script');
    await this.script.migrate(vm, call);
  }

  async startPostCopy(vm: string): Promise<void> {
    this.gate();
    this.world.log.push(`postcopy ${this.name} ${vm}`);
    if (this.script.startPostCopy) await this.script.startPostCopy(vm);
  }

  async setMaxDowntime(): Promise<void> {
    this.gate();
  }

  async abortJob(vm: string): Promise<void> {
    this.gate();
    this.world.log.push(`abort ${this.name} ${vm}`);
  }

  private change(what: string, vm: string, f: (c: Copy) => void): void {
    this.gate();
    const c = this.mine(vm);
    this.world.log.push(`${what} ${this.name} ${vm}`);
    f(c);
    this.world.check(vm, `${what} on ${this.name}`);
  }

  async start(vm: string): Promise<void> {
    this.change('start', vm, (c) => {
      if (c.state !== 'shutoff') throw new DriverError('TIDE_VM_STATE', `${vm} is ${c.state}`, { vm });
      c.state = 'running';
      c.reason = 1;
    });
  }

  async shutdown(vm: string): Promise<void> {
    this.change('shutdown', vm, (c) => { c.state = 'shutoff'; c.reason = 1; });
  }

  async destroy(vm: string): Promise<void> {
    this.change('destroy', vm, (c) => {
      if (c.state === 'shutoff') throw new DriverError('TIDE_VM_STATE', `${vm} is not running`, { vm });
      c.job = null;
      if (c.persistent) {
        c.state = 'shutoff';
        c.reason = 2;
      } else this.world.on(this.name).delete(vm);
    });
  }

  /** libvirt's undefine: an inactive copy disappears, an active one becomes transient. */
  async undefine(vm: string): Promise<void> {
    this.change('undefine', vm, (c) => {
      if (!c.persistent) throw new DriverError('TIDE_VM_STATE', `${vm} is not persistent`, { vm });
      if (c.state === 'shutoff' || c.state === 'crashed') this.world.on(this.name).delete(vm);
      else c.persistent = false;
    });
  }

  async suspend(vm: string): Promise<void> {
    this.change('suspend', vm, (c) => { c.state = 'paused'; c.reason = 1; });
  }

  async resume(vm: string): Promise<void> {
    this.change('resume', vm, (c) => {
      if (c.state !== 'paused') throw new DriverError('TIDE_VM_STATE', `${vm} is ${c.state}`, { vm });
      c.state = 'running';
      c.reason = 5;
    });
  }

  async close(): Promise<void> { /* nothing to close */ }
}

/** Two scripted hosts, `a` and `b`, in one world. */
export function scriptedPair(): { world: ScriptedWorld; a: ScriptedHost; b: ScriptedHost } {
  const world = new ScriptedWorld();
  const cfg = parseConfig({
    hosts: [
      { name: 'host-a', uri: 'qemu+tcp://127.0.0.1:16509/system', migrationAddress: 'tcp://127.0.0.1' },
      { name: 'host-b', uri: 'qemu+tcp://127.0.0.1:16510/system', migrationAddress: 'tcp://127.0.0.1' },
    ],
  });
  return {
    world,
    a: new ScriptedHost(world, cfg.hosts[0]!, '7a110000-0000-4000-8000-00000000000a'),
    b: new ScriptedHost(world, cfg.hosts[1]!, '7a110000-0000-4000-8000-00000000000b'),
  };
}
