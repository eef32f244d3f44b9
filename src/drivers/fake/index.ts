/**
 * FakeDriver: an in-memory HypervisorDriver for tests of everything above the driver (API,
 * CLI, executor) and for the contract suite itself. It follows the same contract as the real
 * drivers (same pre-flight evaluator, same error codes, same state rules) and adds:
 *
 * - `calls`: every driver call in order, with its arguments (no callbacks or signals);
 * - `inject(…)`: the next matching call(s) fail with a given DriverError code; migrations can
 *   fail before anything moved ('start') or half-way ('midway'); the VM stays on its source;
 * - migrations that are instant (default) or clock-driven: with `migrationMiBps` set, data
 *   moves at min(bandwidthMiBps, migrationMiBps) per second of `clock` time, in ticks of
 *   `tickMs`, while each VM re-dirties `dirtyMiBps`; so convergence, auto-converge (the dirty
 *   rate shrinks by 20 % per pass from the 3rd) and post-copy behave as on a real hypervisor;
 * - `ManualClock` to drive clock-driven migrations step by step from a test;
 * - concurrency counters (`maxConcurrent`, `maxPerHost`) to check migration limits.
 */
import { evaluatePreflight, firstFailure, type PreflightFacts } from '../common/preflight.js';
import { DriverError, type DriverErrorCode } from '../errors.js';
import type {
  HostInfo, HostUsage, HypervisorDriver, MigrateOptions, MigrationProgress, MigrationResult, PreflightCheck, VmInfo, VmState, VmUsage,
} from '../hypervisor.js';

export interface FakeClock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: FakeClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** A clock that only moves when a test calls advance(). */
export class ManualClock implements FakeClock {
  private t = 0;
  private sleepers: { at: number; wake: () => void }[] = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((wake) => this.sleepers.push({ at: this.t + ms, wake }));
  }

  /** Moves time forward by `ms`, waking sleepers in order (yielding to them between steps). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.sleepers.sort((a, b) => a.at - b.at);
      const next = this.sleepers[0];
      if (!next || next.at > end) break;
      this.sleepers.shift();
      this.t = next.at;
      next.wake();
      for (let i = 0; i < 5; i++) await Promise.resolve();
      await new Promise((r) => setImmediate(r));
    }
    this.t = end;
  }

  /** Sleepers waiting (a migration in progress has one). */
  get pending(): number {
    return this.sleepers.length;
  }
}

export interface FakeHostSpec {
  name: string;
  uuid?: string;
  hostname?: string;
  cpuCores?: number;
  cpuMhz?: number;
  memMiB?: number;
  cpuModel?: string;
  /** CPU models guests may use here (default: [cpuModel]). */
  cpuModels?: string[];
  up?: boolean;
}

export interface FakeDisk {
  dev: string;
  path: string;
  /** Visible from every host (NFS…); false: local to the VM's host. */
  shared: boolean;
}

export interface FakeVmSpec {
  name: string;
  host: string;
  uuid?: string;
  state?: VmState;
  vcpus?: number;
  memMiB?: number;
  persistent?: boolean;
  /** Guest CPU model (null: the default model every host runs). */
  cpuModel?: string | null;
  disks?: FakeDisk[];
  /** The guest ignores ACPI shutdown requests (offline mode then needs forceOff). */
  ignoresAcpi?: boolean;
  /** MiB/s the guest re-dirties during a live migration (clock-driven migrations). */
  dirtyMiBps?: number;
  cpuPct?: number;
  memUsedMiB?: number;
  diskReadBytesPerSec?: number;
  diskWriteBytesPerSec?: number;
  netRxBytesPerSec?: number;
  netTxBytesPerSec?: number;
}

export type FakeHost = Required<FakeHostSpec>;
export type FakeVm = Required<Omit<FakeVmSpec, 'cpuModel'>> & { cpuModel: string | null };

export interface FakeCall {
  method: string;
  args: unknown[];
}

export interface FakeFailure {
  /** Driver method; for migrate, `at` says when it fails. */
  method: 'listHosts' | 'listVms' | 'hostDomains' | 'sample' | 'preflight' | 'migrate' | 'start' | 'stop' | 'suspend' | 'resume';
  code: DriverErrorCode;
  message?: string;
  /** Only calls about this VM. */
  vm?: string;
  /** migrate: 'start' (default, nothing moved) or 'midway' (after half the data). */
  at?: 'start' | 'midway';
  /** How many matching calls fail (default 1). */
  times?: number;
}

export interface FakeDriverOptions {
  hosts: FakeHostSpec[];
  vms?: FakeVmSpec[];
  clock?: FakeClock;
  /** Migration speed without a bandwidth cap, MiB/s; Infinity (default) = instant. */
  migrationMiBps?: number;
  /** Progress tick of clock-driven migrations, ms (default 100). */
  tickMs?: number;
  /** Simulated live switch-over downtime, ms (default 30). */
  downtimeMs?: number;
}

let uuidCounter = 0;
function fakeUuid(kind: number): string {
  uuidCounter++;
  return `fa4e0000-0000-4000-8000-${kind.toString(16).padStart(4, '0')}${uuidCounter.toString(16).padStart(8, '0')}`;
}

const isActive = (s: VmState): boolean => s === 'running' || s === 'paused' || s === 'suspended';

export class FakeDriver implements HypervisorDriver {
  readonly kind = 'fake';
  readonly calls: FakeCall[] = [];
  private readonly hosts = new Map<string, FakeHost>();
  private readonly vms = new Map<string, FakeVm>();
  private readonly failures: (FakeFailure & { left: number })[] = [];
  private readonly migrating = new Set<string>();
  private readonly clock: FakeClock;
  private readonly speed: number;
  private readonly tickMs: number;
  private readonly downtime: number;
  private lastSampleAt: number | null = null;
  /**
   * Like a counter-based driver, the fake needs two readings for a rate: the host each VM was
   * last sampled on, and the hosts sampled before. A VM first seen (or first seen on a new
   * host, after a migration) and a host first seen report null rates.
   */
  private readonly sampledOn = new Map<string, string>();
  private readonly sampledHosts = new Set<string>();
  private active = 0;
  private readonly activePerHost = new Map<string, number>();
  /** Highest number of migrations at once, overall and per host (as source or target). */
  maxConcurrent = 0;
  readonly maxPerHost = new Map<string, number>();
  closed = false;

  constructor(opts: FakeDriverOptions) {
    this.clock = opts.clock ?? realClock;
    this.speed = opts.migrationMiBps ?? Infinity;
    this.tickMs = opts.tickMs ?? 100;
    this.downtime = opts.downtimeMs ?? 30;
    for (const h of opts.hosts) this.addHost(h);
    for (const v of opts.vms ?? []) this.addVm(v);
  }

  // ---------------------------------------------------------------- test controls

  addHost(h: FakeHostSpec): void {
    const cpuModel = h.cpuModel ?? 'Skylake-Server';
    this.hosts.set(h.name, {
      name: h.name, uuid: h.uuid ?? fakeUuid(1), hostname: h.hostname ?? h.name, cpuCores: h.cpuCores ?? 8, cpuMhz: h.cpuMhz ?? 2400,
      memMiB: h.memMiB ?? 16384, cpuModel, cpuModels: h.cpuModels ?? [cpuModel], up: h.up ?? true,
    });
  }

  addVm(v: FakeVmSpec): void {
    if (!this.hosts.has(v.host)) throw new Error(`fake: no host ${v.host}`);
    if (this.vms.has(v.name)) throw new Error(`fake: VM ${v.name} exists`);
    const memMiB = v.memMiB ?? 1024;
    this.vms.set(v.name, {
      name: v.name, host: v.host, uuid: v.uuid ?? fakeUuid(2), state: v.state ?? 'running', vcpus: v.vcpus ?? 1, memMiB,
      persistent: v.persistent ?? true, cpuModel: v.cpuModel ?? null, disks: v.disks ?? [], ignoresAcpi: v.ignoresAcpi ?? false,
      dirtyMiBps: v.dirtyMiBps ?? 0, cpuPct: v.cpuPct ?? 10, memUsedMiB: v.memUsedMiB ?? Math.round(memMiB / 2),
      diskReadBytesPerSec: v.diskReadBytesPerSec ?? 0, diskWriteBytesPerSec: v.diskWriteBytesPerSec ?? 0,
      netRxBytesPerSec: v.netRxBytesPerSec ?? 0, netTxBytesPerSec: v.netTxBytesPerSec ?? 0,
    });
  }

  removeVm(name: string): void {
    this.vms.delete(name);
  }

  /** A copy of the VM's state (undefined if unknown). */
  vm(name: string): FakeVm | undefined {
    const v = this.vms.get(name);
    return v ? { ...v, disks: [...v.disks] } : undefined;
  }

  host(name: string): FakeHost | undefined {
    const h = this.hosts.get(name);
    return h ? { ...h } : undefined;
  }

  setHostUp(name: string, up: boolean): void {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`fake: no host ${name}`);
    h.up = up;
  }

  updateVm(name: string, patch: Partial<Omit<FakeVm, 'name'>>): void {
    const v = this.vms.get(name);
    if (!v) throw new Error(`fake: no VM ${name}`);
    Object.assign(v, patch);
  }

  inject(f: FakeFailure): void {
    this.failures.push({ ...f, left: f.times ?? 1 });
  }

  /** Calls of one method. */
  callsOf(method: string): FakeCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args: args.map((a) => (typeof a === 'object' && a !== null ? stripFunctions(a) : a)) });
  }

  /** Throws (and consumes) a matching injected failure. */
  private failIfInjected(method: FakeFailure['method'], vm?: string, at: 'start' | 'midway' = 'start'): void {
    const i = this.failures.findIndex((f) => f.method === method && f.left > 0 && (f.vm === undefined || f.vm === vm) && (f.at ?? 'start') === at);
    if (i < 0) return;
    const f = this.failures[i]!;
    f.left--;
    if (f.left === 0) this.failures.splice(i, 1);
    throw new DriverError(f.code, f.message ?? `injected failure of ${method}${vm ? ` (${vm})` : ''}`, { injected: true, vm });
  }

  // ---------------------------------------------------------------- inventory

  async listHosts(): Promise<HostInfo[]> {
    this.record('listHosts');
    this.failIfInjected('listHosts');
    return [...this.hosts.values()].map((h) => ({
      name: h.name, uuid: h.uuid, hostname: h.hostname, cpuCores: h.cpuCores, cpuMhz: h.cpuMhz, memMiB: h.memMiB, cpuModel: h.cpuModel, up: h.up,
      ...(h.up ? {} : { reason: `${h.name} does not answer` }),
    }));
  }

  private visibleVms(): FakeVm[] {
    return [...this.vms.values()].filter((v) => this.hosts.get(v.host)?.up);
  }

  async listVms(): Promise<VmInfo[]> {
    this.record('listVms');
    this.failIfInjected('listVms');
    return this.visibleVms()
      .map((v) => ({ name: v.name, uuid: v.uuid, host: v.host, state: v.state, vcpus: v.vcpus, memMiB: v.memMiB, persistent: v.persistent }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async hostDomains(host: string): Promise<VmInfo[]> {
    this.record('hostDomains');
    this.failIfInjected('hostDomains');
    const h = this.hosts.get(host);
    if (!h) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${host}'`, { host });
    if (!h.up) throw new DriverError('TIDE_HOST_UNREACHABLE', `${host} does not answer`, { host });
    return [...this.vms.values()].filter((v) => v.host === host)
      .map((v) => ({ name: v.name, uuid: v.uuid, host: v.host, state: v.state, vcpus: v.vcpus, memMiB: v.memMiB, persistent: v.persistent }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async sample(): Promise<{ hosts: HostUsage[]; vms: VmUsage[] }> {
    this.record('sample');
    this.failIfInjected('sample');
    const atMs = Date.now();
    this.lastSampleAt = atMs;
    const vms: VmUsage[] = this.visibleVms().filter((v) => isActive(v.state)).map((v) => {
      const known = this.sampledOn.get(v.name) === v.host;
      this.sampledOn.set(v.name, v.host);
      const running = v.state === 'running';
      const rate = (x: number): number | null => (!known ? null : running ? x : 0);
      return {
        vm: v.name, host: v.host, atMs,
        cpuPct: rate(v.cpuPct),
        memUsedMiB: v.memUsedMiB,
        diskReadBytesPerSec: rate(v.diskReadBytesPerSec),
        diskWriteBytesPerSec: rate(v.diskWriteBytesPerSec),
        netRxBytesPerSec: rate(v.netRxBytesPerSec),
        netTxBytesPerSec: rate(v.netTxBytesPerSec),
      };
    });
    const hosts: HostUsage[] = [...this.hosts.values()].filter((h) => h.up).map((h) => {
      const mine = vms.filter((u) => u.host === h.name);
      // The host's own counters see every guest, also those whose own rate is not known yet.
      const busyCores = mine.reduce((s, u) => {
        const v = this.vms.get(u.vm);
        return s + (v?.state === 'running' ? (v.cpuPct / 100) * v.vcpus : 0);
      }, 0);
      const known = this.sampledHosts.has(h.name);
      this.sampledHosts.add(h.name);
      return {
        host: h.name, atMs,
        cpuPct: known ? Math.round(Math.min(100, (busyCores / h.cpuCores) * 100) * 10) / 10 : null,
        memUsedMiB: mine.reduce((s, u) => s + (this.vms.get(u.vm)?.memMiB ?? 0), 0),
        memTotalMiB: h.memMiB,
      };
    });
    // A host that did not answer loses its readings (as the real drivers forget its counters).
    for (const h of this.hosts.values()) if (!h.up) this.sampledHosts.delete(h.name);
    for (const [vm, host] of this.sampledOn) if (!this.hosts.get(host)?.up || this.vms.get(vm)?.host !== host) this.sampledOn.delete(vm);
    return { hosts, vms };
  }

  // ---------------------------------------------------------------- preflight

  private facts(vm: string, to: string, opts: MigrateOptions): PreflightFacts {
    const v = this.vms.get(vm);
    const src = v ? this.hosts.get(v.host) : undefined;
    const found = v && src?.up ? v : undefined;
    const t = this.hosts.get(to);
    const onTarget = [...this.vms.values()].filter((x) => x.host === to);
    const activeOnTarget = onTarget.filter((x) => isActive(x.state) && x.name !== vm);
    const committed = activeOnTarget.reduce((s, x) => s + x.memMiB, 0);
    let cpu: PreflightFacts['cpu'] = null;
    if (found && t?.up) {
      cpu = found.cpuModel === null ? { result: 'compatible', reason: 'default CPU model' }
        : t.cpuModels.includes(found.cpuModel) ? { result: 'compatible', reason: `${to} can provide ${found.cpuModel}` }
          : { result: 'incompatible', reason: `${to} cannot provide the guest's CPU (${found.cpuModel})` };
    }
    return {
      vm, to, mode: opts.mode,
      source: found && src ? { name: src.name, uuid: src.uuid } : null,
      unreachable: [...this.hosts.values()].filter((h) => !h.up).map((h) => h.name),
      dom: found ? { state: found.state, active: isActive(found.state), persistent: found.persistent, memKiB: found.memMiB * 1024, uuid: found.uuid, jobActive: this.migrating.has(vm) } : null,
      targetKnown: t !== undefined,
      target: !t ? null : !t.up ? { reachable: false, reason: 'host is down', uuid: null, memTotalKiB: 0, memAvailableKiB: 0, committedKiB: 0, domains: [] } : {
        reachable: true, uuid: t.uuid, memTotalKiB: t.memMiB * 1024, memAvailableKiB: (t.memMiB - committed) * 1024, committedKiB: committed * 1024,
        domains: onTarget.map((x) => ({ name: x.name, uuid: x.uuid, active: isActive(x.state) })),
      },
      cpu,
      localDisks: found ? found.disks.filter((d) => !d.shared).map((d) => ({ dev: d.dev, type: 'file', device: 'disk', source: d.path, readonly: false, shareable: false })) : null,
    };
  }

  async preflight(vm: string, to: string, opts: MigrateOptions): Promise<PreflightCheck[]> {
    this.record('preflight', vm, to, opts);
    this.failIfInjected('preflight', vm);
    return evaluatePreflight(this.facts(vm, to, opts), opts);
  }

  // ---------------------------------------------------------------- migration

  async migrate(vm: string, to: string, opts: MigrateOptions, signal?: AbortSignal): Promise<MigrationResult> {
    this.record('migrate', vm, to, opts);
    const t0 = this.clock.now();
    if (signal?.aborted) throw new DriverError('TIDE_ABORTED', `migration of ${vm} aborted before it started`, { vm });
    const checks = evaluatePreflight(this.facts(vm, to, opts), opts);
    const bad = firstFailure(checks);
    if (bad) {
      const failed = checks.filter((c) => !c.ok && !c.reason.startsWith('not checked'));
      throw new DriverError(bad.code as DriverErrorCode, `cannot migrate ${vm} to ${to}: ${failed.map((c) => `${c.check}: ${c.reason}`).join('; ')}`, { vm, to, checks });
    }
    const v = this.vms.get(vm)!;
    const from = v.host;
    // libvirt refuses local disks that are neither copied nor declared safe, before moving anything
    const local = v.disks.filter((d) => !d.shared);
    if (opts.mode !== 'offline' && local.length && !opts.copyStorage && !opts.unsafe) {
      throw new DriverError('TIDE_PREFLIGHT_FAILED', `cannot migrate ${vm}: migration without shared storage is unsafe (${local.map((d) => d.dev).join(', ')}); use copy-storage`, { vm, check: 'storage' });
    }
    this.failIfInjected('migrate', vm, 'start');
    this.migrating.add(vm);
    this.begin(from, to);
    try {
      if (opts.mode === 'offline') return await this.offline(v, from, to, opts, signal, t0);
      return await this.transfer(v, from, to, opts, signal, t0);
    } finally {
      this.migrating.delete(vm);
      this.end(from, to);
    }
  }

  private begin(from: string, to: string): void {
    this.active++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.active);
    for (const h of [from, to]) {
      const n = (this.activePerHost.get(h) ?? 0) + 1;
      this.activePerHost.set(h, n);
      this.maxPerHost.set(h, Math.max(this.maxPerHost.get(h) ?? 0, n));
    }
  }

  private end(from: string, to: string): void {
    this.active--;
    for (const h of [from, to]) this.activePerHost.set(h, (this.activePerHost.get(h) ?? 1) - 1);
  }

  /** Live and suspend modes: pre-copy passes at the simulated speed, optional post-copy. */
  private async transfer(v: FakeVm, from: string, to: string, opts: MigrateOptions, signal: AbortSignal | undefined, t0: number): Promise<MigrationResult> {
    const live = opts.mode === 'live';
    const wasState = v.state;
    const pausedAt = !live && wasState === 'running' ? this.clock.now() : null;
    if (pausedAt !== null) v.state = 'paused';
    const speed = Math.min(this.speed, opts.bandwidthMiBps ?? Infinity);
    const total = v.memMiB;
    let dirty = live ? v.dirtyMiBps : 0;
    let remaining = total;
    let processed = 0;
    let passLeft = total;
    let iteration = 1;
    let postCopy = false;
    const postCopyAfter = live ? opts.postCopyAfterIterations ?? 0 : 0;
    const budget = speed * ((opts.maxDowntimeMs ?? 300) / 1000);
    const progress = (phase: MigrationProgress['phase']): void => {
      try {
        opts.onProgress?.({
          vm: v.name, phase, iteration, dataTotalBytes: Math.round(total * 2 ** 20), dataProcessedBytes: Math.round(processed * 2 ** 20),
          dataRemainingBytes: Math.round(remaining * 2 ** 20), elapsedMs: Math.round(this.clock.now() - t0),
        });
      } catch { /* callbacks must not break the migration */ }
    };
    const failMidway = (): void => {
      try {
        this.failIfInjected('migrate', v.name, 'midway');
      } catch (e) {
        if (pausedAt !== null) v.state = wasState;
        throw e;
      }
    };
    const deadline = opts.timeoutSec !== undefined ? t0 + opts.timeoutSec * 1000 : Infinity;
    progress('precopy');
    let midwayChecked = false;
    if (Number.isFinite(speed)) {
      while (remaining > budget && !postCopy) {
        if (signal?.aborted || this.clock.now() >= deadline) {
          if (pausedAt !== null) v.state = wasState;
          throw signal?.aborted
            ? new DriverError('TIDE_ABORTED', `migration of ${v.name} from ${from} to ${to} aborted; ${v.name} keeps running on ${from}`, { vm: v.name, vmOn: from })
            : new DriverError('TIDE_TIMEOUT', `migration of ${v.name} timed out after ${opts.timeoutSec} s; ${v.name} keeps running on ${from}`, { vm: v.name, vmOn: from });
        }
        await this.clock.sleep(this.tickMs);
        const moved = Math.min(passLeft, speed * (this.tickMs / 1000));
        processed += moved;
        passLeft -= moved;
        remaining = Math.min(total, remaining - moved + dirty * (this.tickMs / 1000));
        if (!midwayChecked && processed >= total / 2) {
          midwayChecked = true;
          progress('precopy');
          failMidway();
        }
        if (passLeft <= 0) {
          iteration++;
          passLeft = remaining;
          if (opts.autoConverge && iteration >= 3) dirty *= 0.8;
          if (postCopyAfter > 0 && iteration > postCopyAfter) {
            postCopy = true;
            progress('postcopy');
          }
        }
        progress(postCopy ? 'postcopy' : 'precopy');
      }
    }
    if (!midwayChecked) failMidway();
    progress('completing');
    processed += Number.isFinite(speed) ? remaining : total;
    remaining = 0;
    v.host = to;
    if (pausedAt !== null) v.state = wasState;
    return {
      vm: v.name, from, to, mode: opts.mode,
      totalMs: Math.round(this.clock.now() - t0),
      downtimeMs: pausedAt !== null ? Math.round(this.clock.now() - pausedAt) : this.downtime,
      bytes: Math.round(processed * 2 ** 20),
      iterations: iteration,
      postCopy,
    };
  }

  private async offline(v: FakeVm, from: string, to: string, opts: MigrateOptions, signal: AbortSignal | undefined, t0: number): Promise<MigrationResult> {
    const wasActive = isActive(v.state);
    const downAt = wasActive ? this.clock.now() : null;
    if (wasActive) {
      if (v.ignoresAcpi && !opts.forceOff) {
        await this.clock.sleep((opts.shutdownTimeoutSec ?? 120) * 1000);
        throw new DriverError('TIDE_TIMEOUT', `${v.name} did not shut down within ${opts.shutdownTimeoutSec ?? 120} s (does the guest handle ACPI?); it keeps running on ${from}`, { vm: v.name, vmOn: from });
      }
      v.state = 'shutoff';
    }
    if (signal?.aborted) {
      if (wasActive) v.state = 'running';
      throw new DriverError('TIDE_ABORTED', `offline migration of ${v.name} aborted (it stays on ${from})`, { vm: v.name, vmOn: from });
    }
    try {
      this.failIfInjected('migrate', v.name, 'midway');
    } catch (e) {
      if (wasActive) v.state = 'running';
      throw e;
    }
    v.host = to;
    if (wasActive) v.state = 'running';
    return {
      vm: v.name, from, to, mode: 'offline', totalMs: Math.round(this.clock.now() - t0),
      downtimeMs: downAt === null ? null : Math.round(this.clock.now() - downAt), bytes: null, iterations: null, postCopy: false,
    };
  }

  // ---------------------------------------------------------------- lifecycle

  private owned(vm: string): FakeVm {
    const v = this.vms.get(vm);
    if (!v || !this.hosts.get(v.host)?.up) throw new DriverError('TIDE_NO_SUCH_VM', `no VM named '${vm}'`, { vm });
    return v;
  }

  async start(vm: string): Promise<void> {
    this.record('start', vm);
    this.failIfInjected('start', vm);
    const v = this.owned(vm);
    if (isActive(v.state)) throw new DriverError('TIDE_VM_STATE', `${vm} is already ${v.state} on ${v.host}`, { vm });
    v.state = 'running';
  }

  async stop(vm: string, opts: { force?: boolean } = {}): Promise<void> {
    this.record('stop', vm, opts);
    this.failIfInjected('stop', vm);
    const v = this.owned(vm);
    if (!isActive(v.state)) throw new DriverError('TIDE_VM_STATE', `${vm} is not running (${v.state})`, { vm });
    if (opts.force || !v.ignoresAcpi) v.state = 'shutoff';
  }

  async suspend(vm: string): Promise<void> {
    this.record('suspend', vm);
    this.failIfInjected('suspend', vm);
    const v = this.owned(vm);
    if (v.state !== 'running') throw new DriverError('TIDE_VM_STATE', `cannot suspend ${vm}: it is ${v.state}`, { vm });
    v.state = 'paused';
  }

  async resume(vm: string): Promise<void> {
    this.record('resume', vm);
    this.failIfInjected('resume', vm);
    const v = this.owned(vm);
    if (v.state !== 'paused') throw new DriverError('TIDE_VM_STATE', `cannot resume ${vm}: it is ${v.state}`, { vm });
    v.state = 'running';
  }

  async close(): Promise<void> {
    this.record('close');
    this.closed = true;
  }
}

/** Call arguments without functions (onProgress) or signals, for `calls`. */
function stripFunctions(o: object): unknown {
  if (o instanceof AbortSignal) return '[AbortSignal]';
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v !== 'function') out[k] = v;
  return out;
}
