/**
 * The simulator's datacenter behind the same driver interfaces as real hosts: a hypervisor
 * (VMs whose CPU demand follows their traces) and a power controller (hosts boot for
 * bootSec). Time is the injected Clock's, normally a VirtualClock, so a daemon loop can run a
 * simulated day in milliseconds. It meters energy as it goes.
 *
 * Model: a VM's demand at time t is its trace sample for t (traces loop); a host delivers at
 * most its capacity; a migration takes memory ÷ half the link and holds the VM's memory on
 * both hosts meanwhile; its switch-over downtime grows with how busy the guest is.
 */
import type { Clock } from '../../core/clock.js';
import { powerAt } from '../../core/model/power.js';
import type { SimScenario, SimVmSpec } from '../../sim/scenario.js';
import { DriverError } from '../errors.js';
import type {
  HostInfo, HostUsage, HypervisorDriver, MigrateOptions, MigrationResult, PreflightCheck, ReconcileResult, VmInfo, VmState, VmUsage,
} from '../hypervisor.js';
import type { HostPower, PowerDriver } from '../power.js';

interface SimHost {
  readonly idx: number;
  power: 'on' | 'off' | 'booting';
  bootToken: number;
}

interface SimVm {
  readonly idx: number;
  host: number;
  state: VmState;
  migratingTo: number;
  removed: boolean;
}

export interface SimDriverOptions {
  /** Hosts that start powered off (default: those without VMs stay on). */
  readonly offHosts?: readonly string[];
  /** Initial placement: VM id → host id (default: first fit on memory, in scenario order). */
  readonly placement?: Readonly<Record<string, string>>;
  /**
   * Meter energy (default true). False (`tide bench loop`: loop overhead at 10,000 hosts, where
   * integrating every host at each migration's start and end would dominate): energyKWh() throws.
   */
  readonly meterEnergy?: boolean;
}

export class SimDriver implements HypervisorDriver, PowerDriver {
  readonly kind = 'sim';
  private readonly hosts: SimHost[];
  private readonly vms: SimVm[];
  /** VM specs: the scenario's, plus any added with addVm (tests). */
  private readonly specs: SimVmSpec[];
  private readonly unreachable = new Set<number>();
  private readonly hostByName: Map<string, number>;
  private readonly vmByName: Map<string, number>;
  /**
   * Per host index: the VMs (not removed) on it or migrating to it, ascending VM index, so
   * per-host sums visit VMs in the same order as a scan of all VMs would (same float result).
   */
  private readonly byHost: number[][];
  private readonly metering: boolean;
  private readonly t0: number;
  private meteredAt: number;
  private energyWs = 0;
  private closed = false;

  constructor(readonly scenario: SimScenario, private readonly clock: Clock, opts: SimDriverOptions = {}) {
    this.t0 = clock.now();
    this.meteredAt = this.t0;
    this.hostByName = new Map(scenario.hosts.map((h, i) => [h.id, i]));
    this.vmByName = new Map(scenario.vms.map((v, i) => [v.id, i]));
    this.specs = [...scenario.vms];
    const off = new Set(opts.offHosts ?? []);
    this.hosts = scenario.hosts.map((h, idx) => ({ idx, power: off.has(h.id) ? 'off' : 'on', bootToken: 0 }));
    const memFree = scenario.hosts.map((h) => h.memMiB);
    this.vms = scenario.vms.map((v, idx) => {
      let host: number;
      const wanted = opts.placement?.[v.id];
      if (wanted !== undefined) {
        host = this.hostByName.get(wanted) ?? -1;
        if (host < 0) throw new Error(`placement: unknown host '${wanted}' for VM '${v.id}'`);
      } else {
        host = memFree.findIndex((free, h) => free >= v.memMiB && this.hosts[h]!.power === 'on' && scenario.hosts[h]!.mipsPerCore >= v.mipsPerVcpu);
        if (host < 0) throw new Error(`sim: no host has room for VM '${v.id}'`);
      }
      memFree[host]! -= v.memMiB;
      return { idx, host, state: 'running' as VmState, migratingTo: -1, removed: false };
    });
    this.byHost = scenario.hosts.map(() => []);
    for (const vm of this.vms) this.byHost[vm.host]!.push(vm.idx);
    this.metering = opts.meterEnergy ?? true;
  }

  /** Adds VM v to host h's index (keeps it ascending; no duplicate). */
  private indexAdd(h: number, v: number): void {
    const l = this.byHost[h]!;
    let i = l.length;
    while (i > 0 && l[i - 1]! > v) i--;
    if (l[i - 1] !== v) l.splice(i, 0, v);
  }

  private indexRemove(h: number, v: number): void {
    const l = this.byHost[h]!;
    const i = l.indexOf(v);
    if (i >= 0) l.splice(i, 1);
  }

  /** The VMs (not removed) on host h or migrating to it, ascending index. */
  private touching(h: number): readonly SimVm[] {
    return this.byHost[h]!.map((v) => this.vms[v]!);
  }

  // ------------------------------------------------------------------ test controls

  /** Adds a running VM with a flat load (tests: e.g. names with shell metacharacters). */
  addVm(name: string, host: string, opts: { vcpus?: number; memMiB?: number; cpuPct?: number } = {}): void {
    if (this.vmByName.has(name)) throw new DriverError('TIDE_INVALID_ARGUMENT', `a VM named '${name}' exists`);
    const h = this.hostIndex(host);
    const spec: SimVmSpec = {
      id: name, vcpus: opts.vcpus ?? 1, mipsPerVcpu: this.scenario.hosts[h]!.mipsPerCore, memMiB: opts.memMiB ?? 256,
      cpu: new Float64Array(this.scenario.samples).fill((opts.cpuPct ?? 5) / 100),
    };
    this.specs.push(spec);
    this.vmByName.set(name, this.specs.length - 1);
    this.vms.push({ idx: this.specs.length - 1, host: h, state: 'running', migratingTo: -1, removed: false });
    this.indexAdd(h, this.specs.length - 1);
  }

  removeVm(name: string): void {
    const v = this.vmIndex(name);
    const vm = this.vms[v]!;
    this.indexRemove(vm.host, v);
    if (vm.migratingTo >= 0) this.indexRemove(vm.migratingTo, v);
    vm.removed = true;
    this.vmByName.delete(name);
  }

  /** Makes a host unreachable (as if its hypervisor stopped answering) or reachable again. */
  setReachable(host: string, reachable: boolean): void {
    const h = this.hostIndex(host);
    if (reachable) this.unreachable.delete(h);
    else this.unreachable.add(h);
  }

  private up(h: number): boolean {
    return this.hosts[h]!.power === 'on' && !this.unreachable.has(h);
  }

  private live(): SimVm[] {
    return this.vms.filter((vm) => !vm.removed);
  }

  // ------------------------------------------------------------------ model

  private sampleAt(ms: number): number {
    const sec = (ms - this.t0) / 1000;
    return Math.floor(sec / this.scenario.intervalSec) % this.scenario.samples;
  }

  /** CPU demand of VM v at time ms, MIPS (0 unless running). */
  private demand(v: number, ms: number): number {
    const vm = this.vms[v]!;
    if (vm.state !== 'running') return 0;
    const spec = this.specs[v]!;
    return spec.cpu[this.sampleAt(ms)]! * spec.vcpus * spec.mipsPerVcpu;
  }

  private hostCapacity(h: number): number {
    const s = this.scenario.hosts[h]!;
    return s.cpuCores * s.mipsPerCore;
  }

  /** Utilisation of host h at time ms, 0..1 (VMs migrating in count 10 % of their demand). */
  private hostUtil(h: number, ms: number): number {
    let d = 0;
    for (const v of this.byHost[h]!) {
      const vm = this.vms[v]!;
      if (vm.host === h) d += this.demand(v, ms);
      else if (vm.migratingTo === h) d += 0.1 * this.demand(v, ms);
    }
    return Math.min(1, d / this.hostCapacity(h));
  }

  /** Integrates energy up to now: piecewise constant between trace samples and state changes. */
  private meter(): void {
    if (!this.metering) return;
    const now = this.clock.now();
    const stepMs = this.scenario.intervalSec * 1000;
    let t = this.meteredAt;
    while (t < now) {
      const next = Math.min(now, this.t0 + (Math.floor((t - this.t0) / stepMs) + 1) * stepMs);
      const dt = (next - t) / 1000;
      for (const host of this.hosts) {
        const model = this.scenario.hosts[host.idx]!.power;
        const w = host.power === 'on' ? powerAt(model, this.hostUtil(host.idx, t)) : host.power === 'booting' ? model.bootW : model.offW;
        this.energyWs += w * dt;
      }
      t = next;
    }
    this.meteredAt = now;
  }

  /** Energy drawn by all hosts since the driver was created, kWh. */
  energyKWh(): number {
    if (!this.metering) throw new Error('sim: energy is not metered (meterEnergy: false)');
    this.meter();
    return this.energyWs / 3.6e6;
  }

  /** Current placement, VM → host (for reports and tests). */
  placement(): Record<string, string> {
    return Object.fromEntries(this.live().map((vm) => [this.specs[vm.idx]!.id, this.scenario.hosts[vm.host]!.id]));
  }

  hostPower(): Record<string, HostPower> {
    return Object.fromEntries(this.hosts.map((h) => [this.scenario.hosts[h.idx]!.id, h.power]));
  }

  private vmIndex(name: string): number {
    const v = this.vmByName.get(name);
    if (v === undefined) throw new DriverError('TIDE_NO_SUCH_VM', `no VM named '${name}'`, { vm: name });
    return v;
  }

  private hostIndex(name: string): number {
    const h = this.hostByName.get(name);
    if (h === undefined) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${name}'`, { host: name });
    return h;
  }

  private check(): void {
    if (this.closed) throw new DriverError('TIDE_HOST_UNREACHABLE', 'driver closed');
  }

  // ------------------------------------------------------------------ HypervisorDriver

  async listHosts(): Promise<HostInfo[]> {
    this.check();
    return this.scenario.hosts.map((s, h) => ({
      name: s.id,
      uuid: `5a000000-0000-4000-8000-${h.toString(16).padStart(12, '0')}`,
      hostname: s.id,
      cpuCores: s.cpuCores,
      cpuMhz: s.mipsPerCore,
      memMiB: s.memMiB,
      cpuModel: 'sim',
      up: this.up(h),
      ...(this.up(h) ? {} : { reason: this.unreachable.has(h) ? `${s.id} does not answer` : `${s.id} is ${this.hosts[h]!.power}` }),
    }));
  }

  async listVms(): Promise<VmInfo[]> {
    this.check();
    return this.live()
      .filter((vm) => this.up(vm.host))
      .map((vm) => this.vmInfo(vm));
  }

  private vmInfo(vm: SimVm): VmInfo {
    const s = this.specs[vm.idx]!;
    return { name: s.id, uuid: `5b000000-0000-4000-8000-${vm.idx.toString(16).padStart(12, '0')}`, host: this.scenario.hosts[vm.host]!.id, state: vm.state, vcpus: s.vcpus, memMiB: s.memMiB, persistent: true };
  }

  async hostDomains(host: string): Promise<VmInfo[]> {
    this.check();
    const h = this.hostIndex(host);
    if (!this.up(h)) {
      throw new DriverError('TIDE_HOST_UNREACHABLE', this.unreachable.has(h) ? `${host} does not answer` : `${host} is ${this.hosts[h]!.power}`, { host });
    }
    // listVms' entries for this host, in the same (VM index) order
    return this.touching(h).filter((vm) => vm.host === h).map((vm) => this.vmInfo(vm));
  }

  /**
   * The simulator knows every VM's demand exactly (its trace, no counters to difference), so
   * no rate is ever unknown here, also right after a migration: nothing is null.
   */
  async sample(): Promise<{ hosts: HostUsage[]; vms: VmUsage[] }> {
    this.check();
    this.meter();
    const now = this.clock.now();
    const si = this.sampleAt(now);
    const hosts: HostUsage[] = [];
    for (const host of this.hosts) {
      if (!this.up(host.idx)) continue;
      const spec = this.scenario.hosts[host.idx]!;
      let mem = 0;
      for (const v of this.byHost[host.idx]!) mem += this.specs[v]!.memMiB;
      hosts.push({ host: spec.id, atMs: now, cpuPct: 100 * this.hostUtil(host.idx, now), memUsedMiB: Math.min(mem, spec.memMiB), memTotalMiB: spec.memMiB });
    }
    const vms: VmUsage[] = [];
    for (const vm of this.live()) {
      if (!this.up(vm.host)) continue;
      const spec = this.specs[vm.idx]!;
      const running = vm.state === 'running';
      vms.push({
        vm: spec.id,
        host: this.scenario.hosts[vm.host]!.id,
        atMs: now,
        cpuPct: running ? 100 * spec.cpu[si]! : 0,
        memUsedMiB: (spec.mem ? spec.mem[si]! : 1) * spec.memMiB,
        diskReadBytesPerSec: running ? (spec.diskBytesPerSec?.[si] ?? 0) / 2 : 0,
        diskWriteBytesPerSec: running ? (spec.diskBytesPerSec?.[si] ?? 0) / 2 : 0,
        netRxBytesPerSec: running ? (spec.netBytesPerSec?.[si] ?? 0) / 2 : 0,
        netTxBytesPerSec: running ? (spec.netBytesPerSec?.[si] ?? 0) / 2 : 0,
      });
    }
    return { hosts, vms };
  }

  async preflight(vm: string, to: string, opts: MigrateOptions): Promise<PreflightCheck[]> {
    this.check();
    const checks: PreflightCheck[] = [];
    const v = this.vmByName.get(vm);
    const h = this.hostByName.get(to);
    checks.push(v === undefined ? { check: 'vm-exists', ok: false, code: 'TIDE_NO_SUCH_VM', reason: `no VM named '${vm}'` } : { check: 'vm-exists', ok: true, reason: `${vm} exists` });
    checks.push(h === undefined ? { check: 'target-exists', ok: false, code: 'TIDE_NO_SUCH_HOST', reason: `no host named '${to}'` } : { check: 'target-exists', ok: true, reason: `${to} exists` });
    if (v === undefined || h === undefined) return checks;
    const vmState = this.vms[v]!;
    const spec = this.specs[v]!;
    const target = this.scenario.hosts[h]!;
    checks.push(this.up(h)
      ? { check: 'target-reachable', ok: true, reason: `${to} is on` }
      : { check: 'target-reachable', ok: false, code: 'TIDE_HOST_UNREACHABLE', reason: this.unreachable.has(h) ? `${to} does not answer` : `${to} is ${this.hosts[h]!.power}` });
    checks.push(vmState.host !== h
      ? { check: 'not-same-host', ok: true, reason: `${vm} runs on ${this.scenario.hosts[vmState.host]!.id}` }
      : { check: 'not-same-host', ok: false, code: 'TIDE_PREFLIGHT_FAILED', reason: `${vm} already runs on ${to}` });
    checks.push(spec.mipsPerVcpu <= target.mipsPerCore
      ? { check: 'cpu-compatible', ok: true, reason: `${to}'s cores (${target.mipsPerCore} MHz) run ${vm}'s vCPUs (${spec.mipsPerVcpu} MHz)` }
      : { check: 'cpu-compatible', ok: false, code: 'TIDE_PREFLIGHT_FAILED', reason: `${to}'s cores (${target.mipsPerCore} MHz) are slower than ${vm}'s vCPUs (${spec.mipsPerVcpu} MHz)` });
    let used = 0;
    for (const o of this.byHost[h]!) used += this.specs[o]!.memMiB;
    const free = target.memMiB - used;
    checks.push(free >= spec.memMiB
      ? { check: 'memory', ok: true, reason: `${to} has ${free} MiB free for ${spec.memMiB} MiB` }
      : { check: 'memory', ok: false, code: 'TIDE_PREFLIGHT_FAILED', reason: `${to} has ${free} MiB free, ${vm} needs ${spec.memMiB} MiB` });
    checks.push({ check: 'storage', ok: true, reason: opts.copyStorage ? 'disks are copied' : 'simulated storage is shared' });
    checks.push({ check: 'name-clash', ok: true, reason: `no other VM named ${vm} on ${to}` });
    const movable = opts.mode === 'offline' || vmState.state === 'running' || vmState.state === 'paused';
    checks.push(vmState.migratingTo >= 0
      ? { check: 'vm-state', ok: false, code: 'TIDE_PREFLIGHT_FAILED', reason: `${vm} is already migrating` }
      : movable
        ? { check: 'vm-state', ok: true, reason: `${vm} is ${vmState.state}` }
        : { check: 'vm-state', ok: false, code: 'TIDE_PREFLIGHT_FAILED', reason: `${vm} is ${vmState.state}: only an offline move applies` });
    return checks;
  }

  async migrate(vm: string, to: string, opts: MigrateOptions, signal?: AbortSignal): Promise<MigrationResult> {
    const checks = await this.preflight(vm, to, opts);
    const bad = checks.find((c) => !c.ok);
    if (bad) {
      const code = bad.code === 'TIDE_NO_SUCH_VM' || bad.code === 'TIDE_NO_SUCH_HOST' || bad.code === 'TIDE_HOST_UNREACHABLE' ? bad.code : 'TIDE_PREFLIGHT_FAILED';
      throw new DriverError(code, `cannot migrate ${vm} to ${to}: ${bad.reason}`, { checks });
    }
    if (signal?.aborted) throw new DriverError('TIDE_ABORTED', `migration of ${vm} aborted before it started`);
    const v = this.vmIndex(vm);
    const h = this.hostIndex(to);
    const state = this.vms[v]!;
    const spec = this.specs[v]!;
    const from = state.host;
    const target = this.scenario.hosts[h]!;
    const started = this.clock.now();
    const util = spec.cpu[this.sampleAt(started)]!;
    // Live: copy memory over half the link, plus the pages dirtied meanwhile (busier guests
    // dirty more); offline and suspend: the guest is down for the whole move.
    const link = Math.min(target.netBytesPerSec / 2, opts.bandwidthMiBps !== undefined ? opts.bandwidthMiBps * 1048576 : Infinity);
    const copySec = (spec.memMiB * 1048576) / link;
    const running = state.state === 'running';
    const sec = opts.mode === 'live' ? copySec * (1 + 0.5 * util) + 0.2 : running ? copySec + (opts.mode === 'offline' ? 20 : 2) : 0.5;
    this.meter();
    state.migratingTo = h;
    this.indexAdd(h, v);
    try {
      if (opts.timeoutSec !== undefined && sec > opts.timeoutSec) {
        await this.clock.sleep(opts.timeoutSec * 1000, signal);
        throw new DriverError('TIDE_TIMEOUT', `migration of ${vm} did not finish within ${opts.timeoutSec} s`);
      }
      const stepMs = 1000;
      let done = 0;
      while (done < sec * 1000) {
        const d = Math.min(stepMs, sec * 1000 - done);
        await this.clock.sleep(d, signal);
        done += d;
        opts.onProgress?.({
          vm, phase: 'precopy', iteration: 1, elapsedMs: done,
          dataTotalBytes: spec.memMiB * 1048576, dataProcessedBytes: Math.round((spec.memMiB * 1048576 * done) / (sec * 1000)),
          dataRemainingBytes: Math.round(spec.memMiB * 1048576 * (1 - done / (sec * 1000))),
        });
      }
    } catch (e) {
      this.meter();
      state.migratingTo = -1;
      if (state.host !== h) this.indexRemove(h, v);
      if (e instanceof DriverError) throw e;
      throw new DriverError('TIDE_ABORTED', `migration of ${vm} to ${to} aborted; it keeps running on ${this.scenario.hosts[from]!.id}`, undefined, { cause: e });
    }
    this.meter();
    state.migratingTo = -1;
    if (from !== h) this.indexRemove(from, v);
    state.host = h;
    const totalMs = Math.round(this.clock.now() - started);
    // Live: the switch-over pause; suspend and offline: the VM is down for the whole move.
    const downtimeMs = !running && opts.mode === 'offline' ? null : opts.mode === 'live' ? Math.round(30 + 250 * util) : totalMs;
    return {
      vm, from: this.scenario.hosts[from]!.id, to, mode: opts.mode, totalMs, downtimeMs,
      bytes: Math.round(spec.memMiB * 1048576 * (opts.mode === 'live' ? 1 + 0.5 * util : 1)), iterations: opts.mode === 'live' ? 2 : null, postCopy: false,
    };
  }

  private setVmState(vm: string, from: VmState[], to: VmState): void {
    this.check();
    const v = this.vms[this.vmIndex(vm)]!;
    if (!from.includes(v.state)) throw new DriverError('TIDE_VM_STATE', `${vm} is ${v.state}, expected ${from.join(' or ')}`);
    this.meter();
    v.state = to;
  }

  async start(vm: string): Promise<void> {
    this.setVmState(vm, ['shutoff', 'crashed'], 'running');
  }

  async stop(vm: string, _opts?: { force?: boolean }): Promise<void> {
    this.setVmState(vm, ['running', 'paused'], 'shutoff');
  }

  async suspend(vm: string): Promise<void> {
    this.setVmState(vm, ['running'], 'paused');
  }

  async resume(vm: string): Promise<void> {
    this.setVmState(vm, ['paused'], 'running');
  }

  /**
   * Where a VM is after a migration its caller lost track of (the process running it died; the
   * simulated world went on, as libvirt's peer-to-peer jobs do). The simulator has no unknown
   * outcomes, only jobs still running: it waits up to `settleMs` (default 0) for the VM's
   * migration to end, then reports the one host it is on; while the job runs the outcome is
   * 'unknown' and nothing is done. A copy left paused is resumed only when `wasState` says the
   * VM ran before (never a second copy: the simulator holds one).
   */
  async reconcile(vm: string, o: { from?: string; to?: string; settleMs?: number; wasState?: VmState | null } = {}): Promise<ReconcileResult> {
    this.check();
    const v = this.vms[this.vmIndex(vm)]!;
    const here = (): string => this.scenario.hosts[v.host]!.id;
    const from = o.from ?? here();
    const to = o.to ?? (v.migratingTo >= 0 ? this.scenario.hosts[v.migratingTo]!.id : here());
    const end = this.clock.now() + (o.settleMs ?? 0);
    while (v.migratingTo >= 0 && this.clock.now() < end) await this.clock.sleep(Math.min(1000, end - this.clock.now()));
    if (v.migratingTo >= 0) {
      return { vm, from, to, outcome: 'unknown', actions: [], vmOn: null, reason: `a migration job of ${vm} from ${here()} to ${this.scenario.hosts[v.migratingTo]!.id} still runs` };
    }
    const on = here();
    if (!this.up(v.host)) return { vm, from, to, outcome: 'unknown', actions: [], vmOn: null, reason: `${on} does not answer; where ${vm} runs is unknown` };
    const actions: string[] = [];
    if (v.state === 'paused' && o.wasState === 'running') {
      await this.resume(vm);
      actions.push(`resumed ${vm} on ${on}`);
    }
    const outcome = on === to ? 'target' : on === from ? 'source' : 'none';
    const active = v.state === 'running' || v.state === 'paused';
    if (!active) return { vm, from, to, outcome: 'none', actions, vmOn: null, reason: `${vm} is ${v.state} on ${on}, active on neither ${from} nor ${to}` };
    return { vm, from, to, outcome, actions, vmOn: outcome === 'none' ? null : on, reason: outcome === 'none' ? `${vm} runs on ${on}, neither ${from} nor ${to}` : `${vm} is ${v.state} on ${on}` };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  // ------------------------------------------------------------------ PowerDriver

  async status(host: string): Promise<HostPower> {
    return this.hosts[this.hostIndex(host)]!.power;
  }

  async powerOn(host: string): Promise<void> {
    const h = this.hosts[this.hostIndex(host)]!;
    if (h.power !== 'off') return;
    this.meter();
    h.power = 'booting';
    const token = ++h.bootToken;
    const bootMs = this.scenario.hosts[h.idx]!.power.bootSec * 1000;
    void this.clock.sleep(bootMs).then(() => {
      if (h.bootToken !== token || h.power !== 'booting') return;
      this.meter();
      h.power = 'on';
    });
  }

  async powerOff(host: string): Promise<void> {
    const h = this.hostIndex(host);
    const on = this.touching(h).map((vm) => this.specs[vm.idx]!.id);
    if (on.length > 0) throw new DriverError('TIDE_POWER_FAILED', `refusing to power off ${host}: ${on.length} VM(s) on it (${on.slice(0, 3).join(', ')})`);
    const state = this.hosts[h]!;
    if (state.power === 'off') return;
    this.meter();
    state.power = 'off';
    state.bootToken++;
  }
}
