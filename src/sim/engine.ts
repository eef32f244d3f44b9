/**
 * The trace-driven datacenter simulator. Time is virtual: rounds every `intervalSec`, with
 * extra updates at migration completions and power transitions. Every round the simulator
 * builds a ClusterSnapshot, asks the policy for a plan (the same pure planner the daemon
 * uses) and carries the plan out.
 *
 * Two accountings (docs/simulator.md):
 *  - 'cloudsim' reproduces CloudSim 3.0.3's PlanetLab experiments, oddities included: VMs hold
 *    no memory after t = 0; a host whose interval starts at 0 utilisation draws 0 W; waking is
 *    free; a migration target counts as "in violation" for SLATAH; VMs whose demand reaches
 *    exactly 0 are removed for good; a plan's migrations all start at once.
 *  - 'realistic': every VM's memory is reserved on its host (and on the target while it
 *    migrates); hosts are on, off or waking: an on host draws at least idle power, an off one
 *    its standby power, a waking one boot power for bootSec before it can take VMs; power
 *    steps and step dependencies are honoured; SLATAH counts only real saturation; idle VMs
 *    stay.
 * Host CPU allocation, migration cost (10 % degradation on the source, 10 % reservation on the
 * target, duration RAM ÷ half the link) and the metric formulas are CloudSim's in both.
 */
import { powerAt } from '../core/model/power.js';
import type { ClusterSnapshot, Host, PowerState, Vm } from '../core/model/types.js';
import type { Plan, Step } from '../core/plan/types.js';
import { DemandRecorder } from '../core/predict/forecast.js';
import { activeWindow, SIM_MONDAY_EPOCH_SEC } from '../core/schedule.js';
import { InputError } from '../input/errors.js';
import type { SimScenario } from './scenario.js';
import type { TimelineEntry } from './timeline.js';
import { MinHeap } from '../core/util/heap.js';

export type Accounting = 'cloudsim' | 'realistic';
export type InitialPlacement = 'pabfd' | 'first-fit';

export interface EngineOptions {
  readonly accounting: Accounting;
  readonly initialPlacement: InitialPlacement;
  /** Non-power-aware datacenter (CloudSim's NPA): every host draws its full power all the time. */
  readonly nonPowerAware?: boolean;
  /** Called once per round with the fraction done (for progress bars). */
  readonly onProgress?: (fraction: number) => void;
  /** Realistic accounting: host power-on time and draw, standby draw (defaults: from the power model). */
  readonly bootSec?: number;
  /**
   * Realistic accounting: keep every host on from the start, even one the initial placement
   * left empty (the always-on reference run: with no planner nothing is ever powered off).
   */
  readonly allHostsOn?: boolean;
  /** Realistic accounting: learn demand profiles and put `forecast` in each snapshot (default true). */
  readonly forecast?: boolean;
  /**
   * Recommend mode first (s, default 0): the rounds before this time build the snapshot (so the
   * demand profiles learn) and ask the planner, but carry out nothing — no VM moves, no host
   * changes power; a plan with steps counts in `recommendedPlans`. At the first round at or after
   * it the run switches to acting and every metric restarts from zero, so the figures cover the
   * acting period only (the lower bound too).
   */
  readonly observeSec?: number;
}

export type Planner = (snapshot: ClusterSnapshot, now: number) => Plan;

export interface SimMetrics {
  readonly energyKWh: number;
  readonly migrations: number;
  /** SLA violation Time per Active Host, % (cloudsim: CloudSim's definition; realistic: real saturation). */
  readonly slatahPct: number;
  /** Performance degradation due to migration, % (global ratio, as CloudSim computes it). */
  readonly pdmPct: number;
  /** SLATAH × PDM as fractions. */
  readonly slav: number;
  /** Energy (kWh) × SLAV. */
  readonly esv: number;
  readonly hostShutdowns: number;
  readonly overallSlaViolationPct: number;
  readonly avgSlaViolationPct: number;
  /** Lower bound on energy: the fewest hosts holding each interval's demand, packed perfectly, kWh. */
  readonly lowerBoundKWh: number;
  /** Host-on-time average (hosts drawing power), over the integrated span. */
  readonly meanActiveHosts: number;
  readonly powerOns: number;
  readonly powerOffs: number;
  /** VMs removed because their demand reached exactly 0 (cloudsim accounting only). */
  readonly vmsRemoved: number;
  readonly rounds: number;
  /** Seconds of virtual time the energy was integrated over. */
  readonly integratedSec: number;
  /** Plan steps that could not be carried out (target not on, dependency failed, superseded). */
  readonly stepsDropped: number;
  /** Times a host's reserved memory exceeded its RAM (realistic; a planner bug if > 0). */
  readonly memoryOvercommits: number;
  /**
   * Migrations of a VM that an earlier step of the same plan had already moved (CloudSim's
   * exclusion bug makes the faithful ports do this; docs/simulator.md, CloudSim's quirks). Counted in
   * `migrations` too.
   */
  readonly repeatMigrations: number;
  /** Host-rounds in which the CPU demand of the VMs a host holds exceeded its capacity (sampled at each round). */
  readonly saturatedHostIntervals: number;
  /** Plan steps that were due but could not be carried out (a failed dependency, a vanished VM, a host not empty); superseded steps are not counted. */
  readonly stepsFailed: number;
  /** Every migration started and power action taken, in time order, with the step's reason. */
  readonly timeline: readonly TimelineEntry[];
  /** Seconds observed in recommend mode before acting (EngineOptions.observeSec; 0: none). */
  readonly observedSec: number;
  /** Plans with at least one step the planner recommended during the observation (none carried out). */
  readonly recommendedPlans: number;
}

interface Event {
  readonly t: number;
  readonly seq: number;
  readonly kind: 'round' | 'migrated' | 'wake';
  readonly vm: number;
  readonly host: number;
  readonly step: number;
  /** Which plan the step belongs to (step ids are only unique within a plan). */
  readonly gen: number;
}

/** Events by (t, seq): equal times run in the order they were scheduled (CloudSim's). */
class EventQueue {
  private readonly heap = new MinHeap<Event>(less);
  private seq = 0;
  get size(): number {
    return this.heap.size;
  }
  push(e: Omit<Event, 'seq'>): void {
    this.heap.push({ ...e, seq: this.seq++ });
  }
  peek(): Event | undefined {
    return this.heap.peek();
  }
  pop(): Event | undefined {
    return this.heap.pop();
  }
  /** Any pending event of this kind at exactly time t? */
  hasAt(kind: Event['kind'], t: number): boolean {
    return this.heap.items.some((e) => e.kind === kind && e.t === t);
  }
}

function less(a: Event, b: Event): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}

const HIST = 30;

export class Engine {
  readonly sc: SimScenario;
  readonly opts: EngineOptions;
  private readonly realistic: boolean;
  private readonly nh: number;
  private readonly nv: number;
  // Hosts
  private readonly hMips: Float64Array;
  private readonly hList: number[][];
  private readonly hU: Float64Array;
  private readonly hPrevU: Float64Array;
  private readonly hState: PowerState[];
  private readonly hRec: { t: number; alloc: number; req: number; active: boolean }[];
  private readonly hPrevActive: Uint8Array;
  private readonly hSharedHost: Host[];
  /** When each host was last seen coming on (for DPM hysteresis), and whether it was on. */
  private readonly hOnSince: Float64Array;
  private readonly hWasOn: Uint8Array;
  /** When each host was last powered off by a plan step (NaN: not since the start), s. */
  private readonly hOffSince: Float64Array;
  // VMs
  private readonly vReq: Float64Array;
  private readonly vOwner: Int32Array;
  private readonly vInMig: Uint8Array;
  private readonly vTargets: number[][];
  private readonly vRemoved: Uint8Array;
  private readonly vHist: Float64Array;
  private readonly vHistLen: Int32Array;
  private readonly vLastMig: Float64Array;
  /** The plan (gen) that last started a migration of each VM. */
  private readonly vMigGen: Int32Array;
  /** Start times of each VM's migrations in the last 24 h, s (pruned as snapshots are built). */
  private readonly vMoveTimes: number[][];
  /** Start times of all migrations in the last hour, s (pruned as snapshots are built). */
  private moveTimes: number[] = [];
  private readonly vRec: { t: number; alloc: number; req: number; inMig: boolean }[];
  private readonly vmSize: Float64Array;
  // Accumulators
  private energyWs = 0;
  private lowerWs = 0;
  private activeHostSec = 0;
  private integratedSec = 0;
  private slaTime = 0;
  private activeTime = 0;
  private shutdowns = 0;
  private vTotReq = 0;
  private vTotAlloc = 0;
  private vUnderMig = 0;
  private vViolSum = 0;
  private vViolCount = 0;
  private migrations = 0;
  private powerOns = 0;
  private powerOffs = 0;
  private vmsRemoved = 0;
  private rounds = 0;
  private stepsDropped = 0;
  private memoryOvercommits = 0;
  private repeatMigrations = 0;
  private saturatedHostIntervals = 0;
  private stepsFailed = 0;
  private recommendedPlans = 0;
  private readonly timeline: TimelineEntry[] = [];
  private lastProcess = 0;
  private firstUpdateDone = false;
  private readonly q = new EventQueue();
  // Realistic execution of the current plan.
  private running: { gen: number; plan: Plan; done: Set<number>; started: Set<number>; failed: Set<number>; byId: Map<number, Step> } | null = null;
  private gen = 0;
  private readonly hostIdx: Map<string, number>;
  private readonly vmIdx: Map<string, number>;
  private readonly vmObjs: (Vm | undefined)[] = [];
  /** Per-VM memory-used series in MiB (from the trace's fractions), when the trace has one. */
  private readonly memSeriesMiB: (Float64Array | undefined)[];
  /**
   * Learned demand profiles (realistic accounting only): each round's demand is recorded and the
   * forecast of the next hours goes into the snapshot, as the controller does. CloudSim
   * accounting reproduces CloudSim, which has no such thing.
   */
  private readonly demand: DemandRecorder | null;

  constructor(scenario: SimScenario, opts: EngineOptions) {
    this.sc = scenario;
    this.opts = opts;
    this.realistic = opts.accounting === 'realistic';
    const nh = (this.nh = scenario.hosts.length);
    const nv = (this.nv = scenario.vms.length);
    this.hMips = Float64Array.from(scenario.hosts, (h) => h.cpuCores * h.mipsPerCore);
    this.hList = Array.from({ length: nh }, () => []);
    this.hU = new Float64Array(nh);
    this.hPrevU = new Float64Array(nh);
    this.hState = scenario.hosts.map(() => 'on');
    this.hRec = scenario.hosts.map(() => ({ t: -1, alloc: 0, req: 0, active: false }));
    this.hPrevActive = new Uint8Array(nh).fill(1);
    this.hOnSince = new Float64Array(nh).fill(-Infinity);
    this.hWasOn = new Uint8Array(nh).fill(1);
    this.hOffSince = new Float64Array(nh).fill(NaN);
    this.hSharedHost = scenario.hosts.map((h) => ({
      id: h.id, cpuCores: h.cpuCores, mipsPerCore: h.mipsPerCore, memMiB: h.memMiB,
      diskBytesPerSec: h.diskBytesPerSec, netBytesPerSec: h.netBytesPerSec, power: h.power,
      powerState: 'on', maintenance: false, excluded: false, tags: h.tags ?? [],
    }));
    this.vReq = new Float64Array(nv);
    this.vOwner = new Int32Array(nv).fill(-1);
    this.vInMig = new Uint8Array(nv);
    this.vTargets = Array.from({ length: nv }, () => []);
    this.vRemoved = new Uint8Array(nv);
    this.vHist = new Float64Array(nv * HIST);
    this.vHistLen = new Int32Array(nv);
    this.vLastMig = new Float64Array(nv).fill(-Infinity);
    this.vMigGen = new Int32Array(nv);
    this.vMoveTimes = Array.from({ length: nv }, () => []);
    this.vRec = scenario.vms.map(() => ({ t: -1, alloc: 0, req: 0, inMig: false }));
    this.vmSize = Float64Array.from(scenario.vms, (v) => v.vcpus * v.mipsPerVcpu);
    this.memSeriesMiB = scenario.vms.map((v) => (v.mem ? Float64Array.from(v.mem, (f) => f * v.memMiB) : undefined));
    this.hostIdx = new Map(scenario.hosts.map((h, i) => [h.id, i]));
    this.vmIdx = new Map(scenario.vms.map((v, i) => [v.id, i]));
    this.demand = this.realistic && opts.forecast !== false ? new DemandRecorder({ offsetSec: scenario.startSec, stepSec: scenario.intervalSec }) : null;
  }

  /** Trace value of VM v at time t, fraction of its size (CloudSim's interpolation). */
  private util(v: number, t: number): number {
    const data = this.sc.vms[v]!.cpu;
    const iv = this.sc.intervalSec;
    const last = data.length - 1;
    const at = (i: number): number => data[Math.min(i, last)]!;
    if (t % iv === 0) return at(Math.trunc(t / iv));
    const t1 = Math.floor(t / iv);
    const t2 = Math.ceil(t / iv);
    const u1 = at(t1);
    const u2 = at(t2);
    const delta = (u2 - u1) / ((t2 - t1) * iv);
    return u1 + delta * (t - t1 * iv);
  }

  private sampleIndex(t: number): number {
    return Math.min(Math.floor(t / this.sc.intervalSec), this.sc.samples - 1);
  }

  private memOf(v: number, t: number): number {
    const vm = this.sc.vms[v]!;
    return vm.mem ? vm.mem[this.sampleIndex(t)]! * vm.memMiB : vm.memMiB;
  }

  // ---------------------------------------------------------------- initial placement

  /**
   * Places every VM at t = 0 as CloudSim does: each VM requests its full MIPS, full RAM and
   * its bandwidth; 'pabfd' picks the host with the least power increase from idle (which
   * spreads VMs out), 'first-fit' the first suitable host in index order.
   */
  placeInitial(): void {
    const nh = this.nh;
    const alloc = new Float64Array(nh);
    const ram = new Float64Array(nh);
    const bw = new Float64Array(nh);
    const full = this.sc.fullCpuAtCreation === true;
    for (let v = 0; v < this.nv; v++) {
      const vm = this.sc.vms[v]!;
      const mips = vm.vcpus * vm.mipsPerVcpu;
      let best = -1;
      let bestDelta = Infinity;
      for (let h = 0; h < nh; h++) {
        const host = this.sc.hosts[h]!;
        if (host.mipsPerCore < vm.mipsPerVcpu) continue;
        if (full && this.hMips[h]! - alloc[h]! < mips) continue;
        if (ram[h]! + vm.memMiB > host.memMiB) continue;
        if (host.bwUnits !== undefined && vm.bwUnits !== undefined && bw[h]! + vm.bwUnits > host.bwUnits) continue;
        if (this.opts.initialPlacement === 'first-fit') {
          best = h;
          break;
        }
        const delta = powerAt(host.power, Math.min(1, (alloc[h]! + mips) / this.hMips[h]!)) - powerAt(host.power, 0);
        if (delta < bestDelta) {
          bestDelta = delta;
          best = h;
        }
      }
      // The scenario does not fit its datacenter (e.g. `--hosts 1` for a PlanetLab day): an input error.
      if (best < 0) throw new InputError(`initial placement: no host can take VM ${vm.id} (${mips} MIPS, ${vm.memMiB} MiB) on the ${this.sc.hosts.length} host(s) of ${this.sc.name}; give more hosts`, 'TIDE_SCENARIO');
      alloc[best]! += mips;
      ram[best]! += vm.memMiB;
      bw[best]! += vm.bwUnits ?? 0;
      this.hList[best]!.push(v);
      this.vOwner[v] = best;
    }
    if (this.realistic && !this.opts.allHostsOn) {
      for (let h = 0; h < nh; h++) if (this.hList[h]!.length === 0) this.hState[h] = 'off';
    }
  }

  // ---------------------------------------------------------------- host update

  /** Recomputes host h's CPU allocation at time t (HostDynamicWorkload.updateVmsProcessing). */
  private updateHost(h: number, t: number): void {
    if (this.hList[h]!.length === 0 && this.hU[h] === 0 && this.hPrevU[h] === 0) {
      // An empty, idle host: its next record would repeat an inactive one, which changes no
      // metric (inactive time is not counted, repeated inactivity is no new shutdown).
      const r = this.hRec[h]!;
      const active = this.realistic && this.hState[h] === 'on';
      if (r.t >= 0 && !r.active && !active) return;
    }
    this.hPrevU[h] = this.hU[h]!;
    const mips = this.hMips[h]!;
    const peMips = this.sc.hosts[h]!.mipsPerCore;
    const list = this.hList[h]!;
    let sum = 0;
    for (const v of list) {
      const capped = Math.min(this.vReq[v]!, this.sc.vms[v]!.vcpus * peMips);
      sum += this.vTargets[v]!.includes(h) ? capped * 0.1 : capped;
    }
    const over = sum > mips;
    const factor = over ? mips / sum : 1;
    let U = 0;
    let reqH = 0;
    let allocSla = 0;
    let reqSla = 0;
    for (const v of list) {
      const req = this.vReq[v]!;
      const capped = Math.min(req, this.sc.vms[v]!.vcpus * peMips);
      const isIn = this.vTargets[v]!.includes(h);
      const isOut = !isIn && this.vInMig[v] === 1;
      let alloc: number;
      if (over) alloc = isIn ? Math.floor(capped * 0.1 * factor) : isOut ? Math.floor(capped * factor * 0.9) : Math.floor(capped * factor);
      else alloc = isIn ? capped * 0.1 : isOut ? capped * 0.9 : capped;
      if (isIn) {
        U += alloc;
      } else {
        this.recordVm(v, t, alloc, req, isOut);
        const contribution = isOut ? alloc / 0.9 : alloc;
        U += contribution;
        allocSla += contribution;
        reqSla += req;
      }
      reqH += req;
    }
    this.hU[h] = U;
    // Real saturation only: a migrating VM's 90 % share divided back by 0.9 may come out one
    // ulp short of its request, which is not starvation (CloudSim's accounting counts it).
    if (this.realistic && allocSla < reqSla && allocSla >= reqSla * (1 - 1e-9)) allocSla = reqSla;
    if (this.realistic) this.recordHost(h, t, allocSla, reqSla, this.hState[h] === 'on');
    else this.recordHost(h, t, U, reqH, U > 0);
  }

  private recordHost(h: number, t: number, alloc: number, req: number, active: boolean): void {
    const r = this.hRec[h]!;
    if (r.t === t) {
      r.alloc = alloc;
      r.req = req;
      r.active = active;
      return;
    }
    if (r.t >= 0) this.closeHostRecord(h, t - r.t);
    r.t = t;
    r.alloc = alloc;
    r.req = req;
    r.active = active;
  }

  /** Accounts the pending record of host h over dt seconds (dt = 0 for the final record). */
  private closeHostRecord(h: number, dt: number): void {
    const r = this.hRec[h]!;
    if (this.hPrevActive[h] && !r.active) this.shutdowns++;
    this.hPrevActive[h] = r.active ? 1 : 0;
    if (r.active && dt > 0) {
      this.activeTime += dt;
      if (r.alloc < r.req) this.slaTime += dt;
    }
  }

  private recordVm(v: number, t: number, alloc: number, req: number, inMig: boolean): void {
    const r = this.vRec[v]!;
    if (r.t === t) {
      r.alloc = alloc;
      r.req = req;
      r.inMig = inMig;
      return;
    }
    if (r.t >= 0) {
      const dt = t - r.t;
      this.vTotAlloc += r.alloc * dt;
      this.vTotReq += r.req * dt;
      if (r.alloc < r.req) {
        this.vViolSum += (r.req - r.alloc) / r.req;
        this.vViolCount++;
        if (r.inMig) this.vUnderMig += (r.req - r.alloc) * dt;
      }
    }
    r.t = t;
    r.alloc = alloc;
    r.req = req;
    r.inMig = inMig;
  }

  // ---------------------------------------------------------------- datacenter update

  /**
   * UPDATE(t) (PowerDatacenter.updateCloudetProcessingWithoutSchedulingFutureEventsForce):
   * recompute every host, integrate energy over [lastProcess, t], remove VMs with zero
   * demand (cloudsim accounting). At round times each VM also records a history sample.
   */
  private update(t: number, round: boolean): void {
    const dt = t - this.lastProcess;
    for (let v = 0; v < this.nv; v++) {
      if (this.vRemoved[v] || this.vOwner[v]! < 0) continue;
      const u = this.util(v, t);
      this.vReq[v] = u * this.vmSize[v]!;
      if (round) this.pushHistory(v, u * this.vmSize[v]!);
    }
    for (let h = 0; h < this.nh; h++) this.updateHost(h, t);
    if (dt > 0 && this.firstUpdateDone) this.integrate(dt);
    if (!this.firstUpdateDone && dt > 0) this.firstUpdateDone = true;
    if (!this.realistic) {
      for (let h = 0; h < this.nh; h++) {
        const list = this.hList[h]!;
        for (let i = list.length - 1; i >= 0; i--) {
          const v = list[i]!;
          if (this.vInMig[v] || this.vTargets[v]!.length > 0 || this.vReq[v] !== 0 || this.vOwner[v] !== h) continue;
          list.splice(i, 1);
          this.vRemoved[v] = 1;
          this.vOwner[v] = -1;
          this.vmsRemoved++;
        }
      }
    }
    this.lastProcess = t;
  }

  private integrate(dt: number): void {
    let e = 0;
    let active = 0;
    for (let h = 0; h < this.nh; h++) {
      const model = this.sc.hosts[h]!.power;
      if (this.opts.nonPowerAware) {
        e += powerAt(model, 1) * dt;
        active++;
        continue;
      }
      const mips = this.hMips[h]!;
      let prev = this.hPrevU[h]! / mips;
      let cur = this.hU[h]! / mips;
      if (prev > 1 && prev < 1.01) prev = 1;
      if (cur > 1 && cur < 1.01) cur = 1;
      if (this.realistic) {
        const st = this.hState[h]!;
        if (st === 'on') {
          const p1 = powerAt(model, Math.min(prev, 1));
          e += (p1 + (powerAt(model, Math.min(cur, 1)) - p1) / 2) * dt;
          active++;
        } else if (st === 'waking') {
          e += model.bootW * dt;
          active++;
        } else e += model.offW * dt;
      } else if (prev !== 0) {
        const p1 = powerAt(model, prev);
        e += (p1 + (powerAt(model, cur) - p1) / 2) * dt;
        active++;
      }
    }
    this.energyWs += e;
    this.activeHostSec += active * dt;
    this.integratedSec += dt;
  }

  private pushHistory(v: number, mipsNow: number): void {
    const base = v * HIST;
    const n = this.vHistLen[v]!;
    if (n < HIST) {
      this.vHist[base + n] = mipsNow;
      this.vHistLen[v] = n + 1;
    } else {
      this.vHist.copyWithin(base, base + 1, base + HIST);
      this.vHist[base + HIST - 1] = mipsNow;
    }
  }

  // ---------------------------------------------------------------- snapshot

  /**
   * The cluster as the planner sees it at time t. Host and VM objects are reused from round to
   * round (the planner is pure and keeps no reference), so a round allocates little.
   */
  snapshot(t: number): ClusterSnapshot {
    type Mutable<T> = { -readonly [K in keyof T]: T[K] };
    const hosts = this.hSharedHost as Mutable<Host>[];
    for (let h = 0; h < this.nh; h++) {
      const host = hosts[h]!;
      host.cpuUsedMips = this.hU[h]!;
      host.powerState = this.realistic ? this.hState[h]! : this.hU[h]! > 0 ? 'on' : 'off';
      const on = host.powerState === 'on';
      if (on && !this.hWasOn[h]) this.hOnSince[h] = t;
      this.hWasOn[h] = on ? 1 : 0;
      host.onSinceSec = Number.isFinite(this.hOnSince[h]!) ? this.hOnSince[h]! : undefined;
      // Only a host this run powered off has a known off time (one left off by the initial
      // placement has none: no DPM hysteresis on it).
      host.offSinceSec = host.powerState === 'off' && Number.isFinite(this.hOffSince[h]!) ? this.hOffSince[h]! : undefined;
    }
    // Rolling migration counts for tide's budgets (Vm.movesToday, ClusterSnapshot.movesLastHour).
    this.moveTimes = this.moveTimes.filter((x) => t - x < 3600);
    const vms: Vm[] = [];
    const si = this.sampleIndex(t);
    for (let h = 0; h < this.nh; h++) {
      for (const v of this.hList[h]!) {
        if (this.vOwner[v] !== h) continue;
        const spec = this.sc.vms[v]!;
        const vm = (this.vmObjs[v] ??= {
          id: spec.id, host: null, vcpus: spec.vcpus, mipsPerVcpu: spec.mipsPerVcpu, memMiB: spec.memMiB,
          memReservedMiB: this.realistic ? spec.memMiB : 0,
          demand: { cpuMips: 0, memMiB: 0, diskBytesPerSec: 0, netBytesPerSec: 0 },
          cpuHistoryMips: [], tags: spec.tags ?? [], migratable: true,
        }) as Mutable<Vm>;
        const demand = vm.demand as Mutable<Vm['demand']>;
        vm.host = this.sc.hosts[h]!.id;
        demand.cpuMips = this.vReq[v]!;
        demand.memMiB = this.memOf(v, t);
        demand.diskBytesPerSec = spec.diskBytesPerSec?.[si] ?? 0;
        demand.netBytesPerSec = spec.netBytesPerSec?.[si] ?? 0;
        vm.cpuHistoryMips = this.vHist.subarray(v * HIST, v * HIST + this.vHistLen[v]!);
        // The other series straight from the trace, up to the current sample.
        const from = Math.max(0, si + 1 - this.vHistLen[v]!);
        vm.memHistoryMiB = this.memSeriesMiB[v]?.subarray(from, si + 1);
        vm.diskHistoryBytesPerSec = spec.diskBytesPerSec?.subarray(from, si + 1);
        vm.netHistoryBytesPerSec = spec.netBytesPerSec?.subarray(from, si + 1);
        vm.lastMigratedAt = Number.isFinite(this.vLastMig[v]!) ? this.vLastMig[v]! : undefined;
        const times = this.vMoveTimes[v]!;
        while (times.length > 0 && t - times[0]! >= 86400) times.shift();
        vm.movesToday = times.length;
        vm.migratable = spec.migratable !== false && this.vInMig[v] === 0 && this.vTargets[v]!.length === 0;
        vms.push(vm);
      }
    }
    if (this.demand) this.demand.recordVms(t, vms); // simulated VMs are always measured (no `usage`)
    const forecast = this.demand?.forecast(t);
    const snap: ClusterSnapshot = { time: t, sampleIntervalSec: this.sc.intervalSec, hosts, vms, rules: this.sc.rules, movesLastHour: this.moveTimes.length, ...(forecast ? { forecast } : {}) };
    if (!this.sc.schedule) return snap;
    const off = SIM_MONDAY_EPOCH_SEC + this.sc.startSec;
    const w = activeWindow(this.sc.schedule, t + off);
    return { ...snap, window: { ...w, untilSec: w.untilSec === null ? null : w.untilSec - off } };
  }

  // ---------------------------------------------------------------- migrations

  private migrationSec(v: number, target: number): number {
    const host = this.sc.hosts[target]!;
    const ram = this.sc.vms[v]!.memMiB;
    if (host.bwUnits !== undefined) return ram / (host.bwUnits / (2 * 8000));
    return (ram * 1048576) / (host.netBytesPerSec / 2);
  }

  private startMigration(v: number, target: number, t: number, step: number, reason: string): void {
    const source = this.vOwner[v]!;
    this.timeline.push({ t, kind: 'migrate', vm: this.sc.vms[v]!.id, ...(source >= 0 ? { from: this.sc.hosts[source]!.id } : {}), to: this.sc.hosts[target]!.id, reason });
    this.vInMig[v] = 1;
    this.vTargets[v]!.push(target);
    this.hList[target]!.push(v);
    this.updateHost(target, t);
    if (source >= 0) this.updateHost(source, t);
    this.migrations++;
    this.vMoveTimes[v]!.push(t);
    this.moveTimes.push(t);
    if (this.vMigGen[v] === this.gen) this.repeatMigrations++;
    this.vMigGen[v] = this.gen;
    if (this.realistic) this.checkMemory(target);
    this.q.push({ t: t + this.migrationSec(v, target), kind: 'migrated', vm: v, host: target, step, gen: this.gen });
  }

  private completeMigration(e: Event): void {
    const v = e.vm;
    const target = e.host;
    const owner = this.vOwner[v]!;
    if (owner >= 0) {
      const l = this.hList[owner]!;
      l.splice(l.indexOf(v), 1);
    }
    const tl = this.hList[target]!;
    tl.splice(tl.indexOf(v), 1);
    const ti = this.vTargets[v]!.indexOf(target);
    this.vTargets[v]!.splice(ti, 1);
    tl.push(v);
    this.vOwner[v] = target;
    this.vInMig[v] = 0;
    this.vLastMig[v] = e.t;
  }

  private checkMemory(h: number): void {
    let mem = 0;
    for (const v of this.hList[h]!) mem += this.sc.vms[v]!.memMiB;
    if (mem > this.sc.hosts[h]!.memMiB) this.memoryOvercommits++;
  }

  // ---------------------------------------------------------------- plan execution

  private applyPlan(plan: Plan, t: number): void {
    this.gen++;
    if (!this.realistic) {
      // CloudSim starts every migration of the plan at once, in plan order.
      for (const s of plan.steps) {
        if (s.kind !== 'migrate' && s.kind !== 'place') continue;
        const v = this.vmIdx.get(s.vm);
        const h = this.hostIdx.get(s.to);
        if (v === undefined || h === undefined || this.vRemoved[v]) {
          this.stepsDropped++;
          this.stepsFailed++;
          continue;
        }
        this.startMigration(v, h, t, s.id, s.reason);
      }
      return;
    }
    if (this.running) {
      // Steps of the previous plan that never started are superseded by the new plan.
      for (const s of this.running.plan.steps) if (!this.running.started.has(s.id)) this.stepsDropped++;
    }
    this.running = { gen: this.gen, plan, done: new Set(), started: new Set(), failed: new Set(), byId: new Map(plan.steps.map((s) => [s.id, s])) };
    this.pump(t);
  }

  /** Starts every step of the running plan whose dependencies are done and whose target is on. */
  private pump(t: number): void {
    const run = this.running;
    if (!run) return;
    let progressed = true;
    while (progressed) {
      progressed = false;
      for (const s of run.plan.steps) {
        if (run.started.has(s.id)) continue;
        if (s.deps.some((d) => run.failed.has(d))) {
          run.started.add(s.id);
          run.failed.add(s.id);
          this.stepsDropped++;
          this.stepsFailed++;
          progressed = true;
          continue;
        }
        if (!s.deps.every((d) => run.done.has(d))) continue;
        if (s.kind === 'powerOn') {
          const h = this.hostIdx.get(s.host)!;
          run.started.add(s.id);
          if (this.hState[h] === 'off') {
            this.setState(h, 'waking', t);
            this.powerOns++;
            this.timeline.push({ t, kind: 'powerOn', host: s.host, reason: s.reason });
            this.q.push({ t: t + this.bootSec(h), kind: 'wake', vm: -1, host: h, step: s.id, gen: this.gen });
          } else {
            run.done.add(s.id);
            progressed = true;
          }
        } else if (s.kind === 'powerOff') {
          const h = this.hostIdx.get(s.host)!;
          run.started.add(s.id);
          if (this.hList[h]!.length === 0 && this.hState[h] === 'on') {
            this.setState(h, 'off', t);
            this.hOffSince[h] = t;
            this.powerOffs++;
            this.timeline.push({ t, kind: 'powerOff', host: s.host, reason: s.reason });
            run.done.add(s.id);
          } else {
            run.failed.add(s.id);
            this.stepsDropped++;
            this.stepsFailed++;
          }
          progressed = true;
        } else {
          const v = this.vmIdx.get(s.vm);
          const h = this.hostIdx.get(s.to);
          if (v === undefined || h === undefined || this.vRemoved[v]) {
            run.started.add(s.id);
            run.failed.add(s.id);
            this.stepsDropped++;
            this.stepsFailed++;
            progressed = true;
            continue;
          }
          if (this.hState[h] !== 'on') continue;
          run.started.add(s.id);
          this.startMigration(v, h, t, s.id, s.reason);
        }
      }
    }
  }

  private bootSec(h: number): number {
    return this.opts.bootSec ?? this.sc.hosts[h]!.power.bootSec;
  }

  /** Power state change at t: integrate energy up to t with the old state first. */
  private setState(h: number, st: PowerState, t: number): void {
    if (t > this.lastProcess) this.update(t, false);
    this.hState[h] = st;
    this.updateHost(h, t);
  }

  // ---------------------------------------------------------------- lower bound

  /**
   * Lower bound on the power needed now, W: the fewest hosts (most capable first) whose CPU
   * (and, in realistic accounting, memory) hold the current demand, each at the same
   * utilisation. Integrated over each round's interval.
   */
  private lowerBoundWatts(order: readonly number[]): number {
    let cpu = 0;
    let mem = 0;
    for (let v = 0; v < this.nv; v++) {
      if (this.vRemoved[v] || this.vOwner[v]! < 0) continue;
      cpu += this.vReq[v]!;
      if (this.realistic) mem += this.sc.vms[v]!.memMiB;
    }
    if (cpu === 0 && mem === 0) return 0;
    let capCpu = 0;
    let capMem = 0;
    let n = 0;
    while (n < order.length && (capCpu < cpu || capMem < mem)) {
      const h = order[n++]!;
      capCpu += this.hMips[h]!;
      capMem += this.sc.hosts[h]!.memMiB;
    }
    const u = Math.min(1, cpu / capCpu);
    let w = 0;
    for (let i = 0; i < n; i++) w += powerAt(this.sc.hosts[order[i]!]!.power, u);
    return w;
  }

  /** Counts the hosts whose VMs (the ones they own, not incoming) demand more CPU than they have, now. */
  private countSaturated(): void {
    for (let h = 0; h < this.nh; h++) {
      let demand = 0;
      for (const v of this.hList[h]!) if (this.vOwner[v] === h) demand += this.vReq[v]!;
      if (demand > this.hMips[h]! * (1 + 1e-9)) this.saturatedHostIntervals++;
    }
  }

  // ---------------------------------------------------------------- main loop

  run(planner: Planner | null): SimMetrics {
    this.placeInitial();
    const iv = this.sc.intervalSec;
    const limit = this.sc.samples * iv;
    // CloudSim: VMs are created at 0, cloudlets submitted at 0.1 s, first round at 300.1 s.
    let t = 0.1 + iv;
    const totalRounds = Math.max(1, Math.floor((limit - 0.1) / iv));
    this.q.push({ t, kind: 'round', vm: -1, host: -1, step: -1, gen: 0 });
    const lbOrder = Array.from({ length: this.nh }, (_, h) => h).sort((a, b) => {
      const ea = powerAt(this.sc.hosts[a]!.power, 1) / this.hMips[a]!;
      const eb = powerAt(this.sc.hosts[b]!.power, 1) / this.hMips[b]!;
      return this.hMips[b]! - this.hMips[a]! || ea - eb || a - b;
    });
    let lastRound = -1;
    let lbWatts = 0;
    const observeSec = this.opts.observeSec ?? 0;
    /** null: no observation; false: observing; true: acting after an observation. */
    let acting: boolean | null = observeSec > 0 ? false : null;
    while (this.q.size > 0) {
      const e = this.q.pop()!;
      if (e.t > limit) break;
      if (e.kind === 'round') {
        if (lastRound >= 0) this.lowerWs += lbWatts * (e.t - lastRound);
        this.update(e.t, true);
        const observing = e.t < observeSec;
        if (acting === false && !observing) {
          // Recommend mode ends: the measured (acting) period starts here, from zero.
          this.resetMetrics();
          acting = true;
        }
        lbWatts = this.lowerBoundWatts(lbOrder);
        this.countSaturated();
        lastRound = e.t;
        this.rounds++;
        if (planner && !this.opts.nonPowerAware) {
          const plan = planner(this.snapshot(e.t), e.t);
          if (!observing) this.applyPlan(plan, e.t);
          else if (plan.steps.length > 0) this.recommendedPlans++;
        }
        this.opts.onProgress?.(this.rounds / totalRounds);
        t = e.t + iv;
        this.q.push({ t, kind: 'round', vm: -1, host: -1, step: -1, gen: 0 });
      } else if (e.kind === 'migrated') {
        if (e.t > this.lastProcess) this.update(e.t, false);
        this.completeMigration(e);
        if (this.running?.gen === e.gen) this.running.done.add(e.step);
        if (!this.q.hasAt('migrated', e.t)) this.update(e.t, false);
        if (this.realistic) this.pump(e.t);
      } else {
        if (e.t > this.lastProcess) this.update(e.t, false);
        this.hState[e.host] = 'on';
        this.updateHost(e.host, e.t);
        if (this.running?.gen === e.gen) this.running.done.add(e.step);
        this.pump(e.t);
      }
    }
    if (lastRound >= 0 && this.lastProcess > lastRound) this.lowerWs += lbWatts * (this.lastProcess - lastRound);
    return this.finish();
  }

  /**
   * Zeroes every accumulated metric (the end of a recommend-mode observation). Nothing has moved
   * or changed power yet, so there is no migration, power action or step to carry over.
   */
  private resetMetrics(): void {
    this.energyWs = 0;
    this.lowerWs = 0;
    this.activeHostSec = 0;
    this.integratedSec = 0;
    this.slaTime = 0;
    this.activeTime = 0;
    this.shutdowns = 0;
    this.vTotReq = 0;
    this.vTotAlloc = 0;
    this.vUnderMig = 0;
    this.vViolSum = 0;
    this.vViolCount = 0;
    this.rounds = 0;
    this.saturatedHostIntervals = 0;
  }

  private finish(): SimMetrics {
    for (let h = 0; h < this.nh; h++) if (this.hRec[h]!.t >= 0) this.closeHostRecord(h, 0);
    let energyWs = this.energyWs;
    if (this.opts.nonPowerAware) {
      // CloudSim's NPA datacenter integrates full power over [0, last update] (docs/simulator.md, CloudSim's quirks).
      energyWs = 0;
      for (let h = 0; h < this.nh; h++) energyWs += powerAt(this.sc.hosts[h]!.power, 1) * this.lastProcess;
    }
    const slatah = this.activeTime > 0 ? this.slaTime / this.activeTime : 0;
    const pdm = this.vTotReq > 0 ? this.vUnderMig / this.vTotReq : 0;
    const energyKWh = energyWs / 3.6e6;
    const slav = slatah * pdm;
    return {
      energyKWh,
      migrations: this.migrations,
      slatahPct: slatah * 100,
      pdmPct: pdm * 100,
      slav,
      esv: energyKWh * slav,
      hostShutdowns: this.shutdowns,
      overallSlaViolationPct: this.vTotReq > 0 ? ((this.vTotReq - this.vTotAlloc) / this.vTotReq) * 100 : 0,
      avgSlaViolationPct: this.vViolCount > 0 ? (this.vViolSum / this.vViolCount) * 100 : 0,
      lowerBoundKWh: this.lowerWs / 3.6e6,
      meanActiveHosts: this.integratedSec > 0 ? this.activeHostSec / this.integratedSec : 0,
      powerOns: this.powerOns,
      powerOffs: this.powerOffs,
      vmsRemoved: this.vmsRemoved,
      rounds: this.rounds,
      integratedSec: this.integratedSec,
      stepsDropped: this.stepsDropped,
      memoryOvercommits: this.memoryOvercommits,
      repeatMigrations: this.repeatMigrations,
      saturatedHostIntervals: this.saturatedHostIntervals,
      stepsFailed: this.stepsFailed,
      timeline: this.timeline,
      observedSec: this.opts.observeSec ?? 0,
      recommendedPlans: this.recommendedPlans,
    };
  }
}
