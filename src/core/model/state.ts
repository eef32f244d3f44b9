import type { ClusterSnapshot, Host, PowerState, Rule, Vm } from './types.js';

/** A tentative move recorded in the journal (indices, not ids). */
export interface Move {
  readonly vm: number;
  /** Host index, or -1 when the VM was unplaced. */
  readonly from: number;
  /** Host index, or -1 when the VM was taken off its host (e.g. selected for migration). */
  readonly to: number;
}

const hostIndexCache = new WeakMap<readonly Host[], Map<string, number>>();
/** Host id → index, cached per hosts array (the simulator passes the same array every round). */
function hostIndexOf(hosts: readonly Host[]): Map<string, number> {
  let m = hostIndexCache.get(hosts);
  if (!m) {
    m = new Map();
    for (let h = 0; h < hosts.length; h++) {
      if (m.has(hosts[h]!.id)) throw new Error(`duplicate host id '${hosts[h]!.id}' in snapshot`);
      m.set(hosts[h]!.id, h);
    }
    hostIndexCache.set(hosts, m);
  }
  return m;
}

const specNumbers = new Map<string, number>();
const specOf = new WeakMap<Host, number>();
/**
 * A number identifying the immutable part of a host (capacities, power model, tags): equal
 * numbers mean interchangeable hardware. Cached per host object.
 */
function specNumber(host: Host): number {
  let n = specOf.get(host);
  if (n === undefined) {
    const p = host.power;
    const key = `${host.cpuCores}|${host.mipsPerCore}|${host.memMiB}|${host.diskBytesPerSec}|${host.netBytesPerSec}|${p.wattsAtLoad.join(',')}|${p.offW}|${p.bootSec}|${p.bootW}|${host.tags.join(',')}`;
    n = specNumbers.get(key);
    if (n === undefined) specNumbers.set(key, (n = specNumbers.size));
    specOf.set(host, n);
  }
  return n;
}

/**
 * list.splice(i, 1) without the array of removed elements splice returns: a planning pass makes
 * hundreds of thousands of moves and rollbacks, and that garbage kept the collector busy.
 * Same resulting list.
 */
function removeAt(list: number[], i: number): void {
  const n = list.length - 1;
  for (let k = i; k < n; k++) list[k] = list[k + 1]!;
  list.pop();
}

/** list.splice(i, 0, x) without the (empty) array splice returns; 0 ≤ i ≤ list.length. */
function insertAt(list: number[], i: number, x: number): void {
  let k = list.length;
  list.push(x);
  for (; k > i; k--) list[k] = list[k - 1]!;
  list[i] = x;
}

const POWER_STATE_CODE: Record<PowerState, number> = { on: 0, off: 1, standby: 2, waking: 3, unknown: 4 };

/** Opaque position in the journal (see ClusterState.mark). */
export interface StateMark {
  readonly moves: number;
  readonly power: number;
}

type PowerJournalEntry = { readonly host: number; readonly before: PowerState };

export interface StateOptions {
  /** How many of the newest history samples each host aggregates (CloudSim: 30). */
  readonly historyWindow?: number;
  /**
   * Extra per-VM quantities a strategy wants summed per host (e.g. forecast mean and
   * variance): column k gives VM v's value at [v]; `columnSum(k, h)` is kept up to date by
   * moves and restored exactly by rollback.
   */
  readonly vmColumns?: readonly ArrayLike<number>[];
}

/**
 * The planner's working copy of a cluster snapshot. Every decision is applied to it with
 * `move`, so later decisions see earlier ones; `mark`/`rollback` undo tentative work (a host
 * evacuation that turns out impossible). Per-host aggregates are maintained incrementally, so
 * a move costs O(history window) and a capacity check O(1).
 *
 * Indices (not ids) are used throughout for speed: host i is `hosts[i]`, VM j is `vms[j]`.
 */
export class ClusterState {
  readonly time: number;
  readonly sampleIntervalSec: number;
  readonly hosts: readonly Host[];
  readonly vms: readonly Vm[];
  readonly rules: readonly Rule[];
  readonly historyWindow: number;

  /** Host index of each VM (-1: not placed). */
  readonly hostOf: Int32Array;
  /** Σ uncapped CPU demand of the VMs on each host, MIPS. */
  readonly reqMips: Float64Array;
  /** Σ CPU demand capped at what each VM can get on that host (per-core limit), MIPS. */
  readonly cappedMips: Float64Array;
  readonly memReservedMiB: Float64Array;
  readonly memUsedMiB: Float64Array;
  readonly diskBytesPerSec: Float64Array;
  readonly netBytesPerSec: Float64Array;
  /** CPU capacity of each host, MIPS. */
  readonly capMips: Float64Array;
  /** Host utilisation at snapshot time (measured if known), 0..1; never changed by planning. */
  readonly uNow: Float64Array;
  /**
   * Per-VM copies of the snapshot fields that moves and filters read, by VM index (the same
   * numbers, so the same arithmetic): reading 200,000 VM objects scattered over the heap in
   * placement order costs a cache miss each, a typed column does not.
   */
  /** vms[v].demand.cpuMips */
  readonly vmCpuMips: Float64Array;
  /** vms[v].memReservedMiB */
  readonly vmMemReservedMiB: Float64Array;
  /** vms[v].memMiB (configured) */
  readonly vmMemMiB: Float64Array;
  /** vms[v].demand.memMiB */
  readonly vmMemUsedMiB: Float64Array;
  /** vms[v].demand.diskBytesPerSec */
  readonly vmDiskBps: Float64Array;
  /** vms[v].demand.netBytesPerSec */
  readonly vmNetBps: Float64Array;
  /** vms[v].vcpus */
  readonly vmVcpus: Float64Array;
  /** vms[v].mipsPerVcpu */
  readonly vmMipsPerVcpu: Float64Array;
  /** hosts[h].memMiB */
  readonly hostMemMiB: Float64Array;
  /** hosts[h].mipsPerCore */
  readonly hostMipsPerCore: Float64Array;
  /** hosts[h].diskBytesPerSec */
  readonly hostDiskBps: Float64Array;
  /** hosts[h].netBytesPerSec */
  readonly hostNetBps: Float64Array;
  /** Samples VM v gives the host aggregate: min(history length, window). */
  private readonly vmHistN: Int32Array;
  /** vmHist[v * W + k]: VM v's k-th newest sample (only for a window of at most 4; else null). */
  private readonly vmHist: Float64Array | null;

  private readonly lists: number[][];
  private readonly powerStates: PowerState[];
  /** hist[h * W + k]: Σ over the VMs on h of their k-th newest CPU sample, MIPS. */
  private readonly hist: Float64Array;
  /** cnt[h * W + k]: number of VMs on h that have a k-th newest sample. */
  private readonly histCnt: Int32Array;
  /**
   * The move journal as parallel typed stacks (vm, from, to, fromPos, saveAt per entry):
   * planning a large cluster makes hundreds of thousands of tentative moves, and objects per
   * entry would keep the garbage collector busy.
   */
  private jVm: Int32Array = new Int32Array(1024);
  private jFrom: Int32Array = new Int32Array(1024);
  private jTo: Int32Array = new Int32Array(1024);
  private jPos: Int32Array = new Int32Array(1024);
  private jSave: Int32Array = new Int32Array(1024);
  private jLen = 0;
  private readonly columns: readonly ArrayLike<number>[];
  /** colSum[h * K + k]: Σ over VMs on h of column k. */
  private readonly colSum: Float64Array;
  /**
   * Called with a host whose sums (demand, memory, columns) just changed by a move or a
   * rollback (null: nobody listens). A listener must not change the state.
   */
  onHostChange: ((h: number) => void) | null = null;
  /**
   * Aggregates of the hosts a move touched, as they were before it, so that rollback restores
   * them bit for bit: floating-point `(x + d) − d` is not always x, and a tentative check must
   * leave no trace on later decisions.
   */
  private saved = new Float64Array(1024);
  private savedLen = 0;
  /** Floats saved per host per move: six aggregates, the history window twice, the columns. */
  private readonly saveSize: number;
  private readonly powerJournal: PowerJournalEntry[] = [];
  private readonly hostIdx: Map<string, number>;
  private vmIdxMap: Map<string, number> | null = null;
  /** Hosts placement must always look at: non-empty now or at snapshot time, or state changed. */
  private readonly tracked: number[] = [];
  private readonly isTracked: Uint8Array;
  /**
   * Interchangeable empty hosts (same spec, power state, utilisation 0, no host-specific
   * rules): only the lowest-index empty member of each class needs to be considered.
   */
  private readonly classes: number[][] = [];
  private readonly classOf: Int32Array;

  constructor(snapshot: ClusterSnapshot, options: StateOptions = {}) {
    this.time = snapshot.time;
    this.sampleIntervalSec = snapshot.sampleIntervalSec;
    this.hosts = snapshot.hosts;
    this.vms = snapshot.vms;
    this.rules = snapshot.rules;
    const W = (this.historyWindow = options.historyWindow ?? 30);
    this.columns = options.vmColumns ?? [];
    this.saveSize = 6 + 2 * W + this.columns.length;
    this.colSum = new Float64Array(snapshot.hosts.length * this.columns.length);
    const nh = this.hosts.length;
    const nv = this.vms.length;
    this.hostOf = new Int32Array(nv).fill(-1);
    this.reqMips = new Float64Array(nh);
    this.cappedMips = new Float64Array(nh);
    this.memReservedMiB = new Float64Array(nh);
    this.memUsedMiB = new Float64Array(nh);
    this.diskBytesPerSec = new Float64Array(nh);
    this.netBytesPerSec = new Float64Array(nh);
    this.capMips = new Float64Array(nh);
    this.uNow = new Float64Array(nh);
    this.vmCpuMips = new Float64Array(nv);
    this.vmMemReservedMiB = new Float64Array(nv);
    this.vmMemMiB = new Float64Array(nv);
    this.vmMemUsedMiB = new Float64Array(nv);
    this.vmDiskBps = new Float64Array(nv);
    this.vmNetBps = new Float64Array(nv);
    this.vmVcpus = new Float64Array(nv);
    this.vmMipsPerVcpu = new Float64Array(nv);
    this.vmHistN = new Int32Array(nv);
    this.vmHist = W <= 4 ? new Float64Array(nv * W) : null;
    this.hostMemMiB = new Float64Array(nh);
    this.hostMipsPerCore = new Float64Array(nh);
    this.hostDiskBps = new Float64Array(nh);
    this.hostNetBps = new Float64Array(nh);
    this.hist = new Float64Array(nh * W);
    this.histCnt = new Int32Array(nh * W);
    this.lists = Array.from({ length: nh }, () => []);
    this.powerStates = this.hosts.map((h) => h.powerState);
    this.hostIdx = hostIndexOf(this.hosts);
    for (let h = 0; h < nh; h++) {
      const host = this.hosts[h]!;
      this.capMips[h] = host.cpuCores * host.mipsPerCore;
      this.hostMemMiB[h] = host.memMiB;
      this.hostMipsPerCore[h] = host.mipsPerCore;
      this.hostDiskBps[h] = host.diskBytesPerSec;
      this.hostNetBps[h] = host.netBytesPerSec;
    }
    // One pass over the VM objects (200,000 of them, scattered over the heap): copy the VM's
    // fields, then add it to its host — attach reads only this VM's copies, so the sums are
    // the same, in the same order, as copying all VMs first.
    for (let v = 0; v < nv; v++) {
      const vm = this.vms[v]!;
      this.vmCpuMips[v] = vm.demand.cpuMips;
      this.vmMemReservedMiB[v] = vm.memReservedMiB;
      this.vmMemMiB[v] = vm.memMiB;
      this.vmMemUsedMiB[v] = vm.demand.memMiB;
      this.vmDiskBps[v] = vm.demand.diskBytesPerSec;
      this.vmNetBps[v] = vm.demand.netBytesPerSec;
      this.vmVcpus[v] = vm.vcpus;
      this.vmMipsPerVcpu[v] = vm.mipsPerVcpu;
      const series = vm.cpuHistoryMips;
      const n = Math.min(series.length, W);
      this.vmHistN[v] = n;
      if (this.vmHist) for (let k = 0; k < n; k++) this.vmHist[v * W + k] = series[series.length - 1 - k]!;
      if (vm.host !== null) {
        const h = this.hostIdx.get(vm.host);
        if (h === undefined) throw new Error(`VM '${vm.id}' runs on unknown host '${vm.host}'`);
        this.hostOf[v] = h;
        this.attach(v, h);
        this.lists[h]!.push(v);
      }
    }
    for (let h = 0; h < nh; h++) {
      const used = this.hosts[h]!.cpuUsedMips;
      // A host with no known capacity (one never reached reports 0 MHz) counts as idle, not NaN.
      const u = this.capMips[h]! > 0 ? (used ?? Math.min(this.cappedMips[h]!, this.capMips[h]!)) / this.capMips[h]! : 0;
      this.uNow[h] = u > 1 && u < 1.01 ? 1 : u;
    }
    this.isTracked = new Uint8Array(nh);
    this.classOf = new Int32Array(nh).fill(-1);
    const pinned = new Set<string>();
    for (const r of this.rules) if (r.kind === 'pin') for (const id of r.hosts) pinned.add(id);
    const classKey = new Map<number, number>();
    for (let h = 0; h < nh; h++) {
      const host = this.hosts[h]!;
      // A host that must not be woken is not interchangeable with its class (Host.wakeRefused).
      if (this.lists[h]!.length > 0 || this.uNow[h] !== 0 || pinned.has(host.id) || host.wakeRefused !== undefined) {
        this.track(h);
        continue;
      }
      const key = specNumber(host) * 32 + POWER_STATE_CODE[host.powerState] * 4 + (host.maintenance ? 2 : 0) + (host.excluded ? 1 : 0);
      let c = classKey.get(key);
      if (c === undefined) {
        c = this.classes.length;
        classKey.set(key, c);
        this.classes.push([]);
      }
      this.classes[c]!.push(h);
      this.classOf[h] = c;
    }
  }

  private track(h: number): void {
    if (this.isTracked[h]) return;
    this.isTracked[h] = 1;
    this.tracked.push(h);
  }

  /**
   * Hosts worth evaluating as a destination, in no particular order: every host that is or
   * was non-empty (or otherwise distinct) plus, for each class of interchangeable empty hosts,
   * its lowest-index empty member. Any filter or scorer that depends only on a host's spec,
   * state and contents gives the same verdict for all members of a class, so the result of a
   * placement (ties broken by lowest index) is the same as scanning every host.
   */
  placementCandidates(): number[] {
    const out = this.tracked.slice();
    for (const members of this.classes) {
      for (const h of members) {
        if (this.isTracked[h]) continue;
        if (this.lists[h]!.length === 0) {
          out.push(h);
          break;
        }
      }
    }
    return out;
  }

  hostIndex(id: string): number {
    const h = this.hostIdx.get(id);
    if (h === undefined) throw new Error(`unknown host '${id}'`);
    return h;
  }

  private get vmIdx(): Map<string, number> {
    if (!this.vmIdxMap) {
      const m = new Map<string, number>();
      this.vms.forEach((vm, v) => {
        if (m.has(vm.id)) throw new Error(`duplicate VM id '${vm.id}' in snapshot`);
        m.set(vm.id, v);
      });
      this.vmIdxMap = m;
    }
    return this.vmIdxMap;
  }

  vmIndex(id: string): number {
    const v = this.vmIdx.get(id);
    if (v === undefined) throw new Error(`unknown VM '${id}'`);
    return v;
  }

  hasHost(id: string): boolean {
    return this.hostIdx.has(id);
  }

  hasVm(id: string): boolean {
    return this.vmIdx.has(id);
  }

  /** VMs on host h, in the host's list order (moves append at the end, as CloudSim does). */
  vmsOn(h: number): readonly number[] {
    return this.lists[h]!;
  }

  powerState(h: number): PowerState {
    return this.powerStates[h]!;
  }

  setPowerState(h: number, state: PowerState): void {
    this.powerJournal.push({ host: h, before: this.powerStates[h]! });
    this.powerStates[h] = state;
    this.track(h);
  }

  /** The most CPU VM v can get on host h, MIPS (each vCPU is limited by one host core). */
  vmCpuLimit(v: number, h: number): number {
    const vm = this.vms[v]!;
    return vm.vcpus * Math.min(vm.mipsPerVcpu, this.hosts[h]!.mipsPerCore);
  }

  /** VM v's demand capped at what it can get on host h, MIPS. */
  cappedDemand(v: number, h: number): number {
    const d = this.vmCpuMips[v]!;
    const vcpuCap = this.vmVcpus[v]! * this.hostMipsPerCore[h]!;
    return d > vcpuCap ? vcpuCap : d;
  }

  /**
   * CPU the host would allocate now, MIPS: the capped demands, scaled down to capacity when
   * oversubscribed (CloudSim's getUtilizationOfCpuMips on the tentative state).
   */
  allocatedMips(h: number): number {
    const c = this.cappedMips[h]!;
    const cap = this.capMips[h]!;
    return c > cap ? cap : c;
  }

  /** Unallocated CPU, MIPS; 0 once the host is oversubscribed (CloudSim's available MIPS). */
  availableMips(h: number): number {
    const c = this.cappedMips[h]!;
    const cap = this.capMips[h]!;
    return c > cap ? 0 : cap - c;
  }

  /** Σ demand / capacity on the tentative state. */
  requestedUtil(h: number): number {
    return this.reqMips[h]! / this.capMips[h]!;
  }

  isEmpty(h: number): boolean {
    return this.lists[h]!.length === 0;
  }

  /**
   * The host's CPU utilisation history on the tentative VM list: entry k (newest first) is
   * Σ over its VMs of their k-th newest sample ÷ host capacity. Trailing (oldest) zero entries
   * are trimmed; an all-zero history is [0] (CloudSim's MathUtil.trimZeroTail semantics).
   */
  hostHistory(h: number): number[] {
    const W = this.historyWindow;
    const base = h * W;
    const cap = this.capMips[h]!;
    let len = 0;
    for (let k = W - 1; k >= 0; k--) {
      if (this.histCnt[base + k]! > 0 && this.hist[base + k]! !== 0) {
        len = k + 1;
        break;
      }
    }
    if (len === 0) return [0];
    const out = new Array<number>(len);
    for (let k = 0; k < len; k++) out[k] = this.histCnt[base + k]! > 0 ? this.hist[base + k]! / cap : 0;
    return out;
  }

  /** Number of samples VM v's history provides to the host aggregate (≤ window). */
  vmHistoryLength(v: number): number {
    return Math.min(this.vms[v]!.cpuHistoryMips.length, this.historyWindow);
  }

  /**
   * Moves VM v to host `to` (-1: take it off its host without placing it). Appends v at the end
   * of the target's list. Recorded in the journal so it can be rolled back.
   */
  move(v: number, to: number): void {
    const from = this.hostOf[v]!;
    if (from === to) return;
    const saveAt = this.savedLen;
    this.saveHost(from);
    this.saveHost(to);
    let fromPos = -1;
    if (from >= 0) {
      const list = this.lists[from]!;
      fromPos = list.lastIndexOf(v);
      removeAt(list, fromPos);
      this.detach(v, from);
    }
    if (to >= 0) {
      this.lists[to]!.push(v);
      this.attach(v, to);
      // A host that receives a VM is tracked from now on (also after a rollback: harmless).
      if (!this.isTracked[to]) this.track(to);
    }
    this.hostOf[v] = to;
    if (this.onHostChange) {
      if (from >= 0) this.onHostChange(from);
      if (to >= 0) this.onHostChange(to);
    }
    if (this.jLen === this.jVm.length) this.growJournal();
    const j = this.jLen++;
    this.jVm[j] = v;
    this.jFrom[j] = from;
    this.jTo[j] = to;
    this.jPos[j] = fromPos;
    this.jSave[j] = saveAt;
  }

  /** A point to roll back to. */
  mark(): StateMark {
    return { moves: this.jLen, power: this.powerJournal.length };
  }

  /** Undoes every move and power change made after `mark`, restoring list order exactly. */
  rollback(mark: StateMark): void {
    const jLen = mark.moves;
    const pLen = mark.power;
    while (this.jLen > jLen) {
      const j = --this.jLen;
      const vm = this.jVm[j]!;
      const from = this.jFrom[j]!;
      const to = this.jTo[j]!;
      const saveAt = this.jSave[j]!;
      if (to >= 0) {
        const list = this.lists[to]!;
        removeAt(list, list.lastIndexOf(vm));
      }
      if (from >= 0) insertAt(this.lists[from]!, this.jPos[j]!, vm);
      this.hostOf[vm] = from;
      this.savedLen = saveAt;
      this.restoreHost(from, saveAt);
      this.restoreHost(to, saveAt + this.savedSize);
      if (this.onHostChange) {
        if (from >= 0) this.onHostChange(from);
        if (to >= 0) this.onHostChange(to);
      }
    }
    while (this.powerJournal.length > pLen) {
      const p = this.powerJournal.pop()!;
      this.powerStates[p.host] = p.before;
    }
  }

  /** Every move since `mark` (default: since the snapshot), in order. */
  movesSince(mark: StateMark = { moves: 0, power: 0 }): Move[] {
    const out: Move[] = [];
    for (let j = mark.moves; j < this.jLen; j++) out.push({ vm: this.jVm[j]!, from: this.jFrom[j]!, to: this.jTo[j]! });
    return out;
  }

  /** Σ of extra column k over the VMs on host h (see StateOptions.vmColumns). */
  columnSum(k: number, h: number): number {
    return this.colSum[h * this.columns.length + k]!;
  }

  private growJournal(): void {
    const grow = (a: Int32Array): Int32Array => {
      const b = new Int32Array(a.length * 2);
      b.set(a);
      return b;
    };
    this.jVm = grow(this.jVm);
    this.jFrom = grow(this.jFrom);
    this.jTo = grow(this.jTo);
    this.jPos = grow(this.jPos);
    this.jSave = grow(this.jSave);
  }

  private get savedSize(): number {
    return this.saveSize;
  }

  private saveHost(h: number): void {
    const size = this.saveSize;
    if (this.savedLen + size > this.saved.length) {
      const grown = new Float64Array(this.saved.length * 4);
      grown.set(this.saved);
      this.saved = grown;
    }
    const o = this.savedLen;
    this.savedLen += size;
    if (h < 0) return;
    const a = this.saved;
    a[o] = this.reqMips[h]!;
    a[o + 1] = this.cappedMips[h]!;
    a[o + 2] = this.memReservedMiB[h]!;
    a[o + 3] = this.memUsedMiB[h]!;
    a[o + 4] = this.diskBytesPerSec[h]!;
    a[o + 5] = this.netBytesPerSec[h]!;
    const W = this.historyWindow;
    for (let k = 0; k < W; k++) {
      a[o + 6 + k] = this.hist[h * W + k]!;
      a[o + 6 + W + k] = this.histCnt[h * W + k]!;
    }
    const K = this.columns.length;
    for (let k = 0; k < K; k++) a[o + 6 + 2 * W + k] = this.colSum[h * K + k]!;
  }

  private restoreHost(h: number, o: number): void {
    if (h < 0) return;
    const a = this.saved;
    this.reqMips[h] = a[o]!;
    this.cappedMips[h] = a[o + 1]!;
    this.memReservedMiB[h] = a[o + 2]!;
    this.memUsedMiB[h] = a[o + 3]!;
    this.diskBytesPerSec[h] = a[o + 4]!;
    this.netBytesPerSec[h] = a[o + 5]!;
    const W = this.historyWindow;
    for (let k = 0; k < W; k++) {
      this.hist[h * W + k] = a[o + 6 + k]!;
      this.histCnt[h * W + k] = a[o + 6 + W + k]!;
    }
    const K = this.columns.length;
    for (let k = 0; k < K; k++) this.colSum[h * K + k] = a[o + 6 + 2 * W + k]!;
  }

  private attach(v: number, h: number): void {
    this.reqMips[h]! += this.vmCpuMips[v]!;
    this.cappedMips[h]! += this.cappedDemand(v, h);
    this.memReservedMiB[h]! += this.vmMemReservedMiB[v]!;
    this.memUsedMiB[h]! += this.vmMemUsedMiB[v]!;
    this.diskBytesPerSec[h]! += this.vmDiskBps[v]!;
    this.netBytesPerSec[h]! += this.vmNetBps[v]!;
    this.addHistory(v, h, 1);
    const K = this.columns.length;
    for (let k = 0; k < K; k++) this.colSum[h * K + k]! += this.columns[k]![v]!;
  }

  private detach(v: number, h: number): void {
    this.reqMips[h]! -= this.vmCpuMips[v]!;
    this.cappedMips[h]! -= this.cappedDemand(v, h);
    this.memReservedMiB[h]! -= this.vmMemReservedMiB[v]!;
    this.memUsedMiB[h]! -= this.vmMemUsedMiB[v]!;
    this.diskBytesPerSec[h]! -= this.vmDiskBps[v]!;
    this.netBytesPerSec[h]! -= this.vmNetBps[v]!;
    this.addHistory(v, h, -1);
    const K = this.columns.length;
    for (let k = 0; k < K; k++) this.colSum[h * K + k]! -= this.columns[k]![v]!;
    if (this.lists[h]!.length === 0) {
      // Exact zero for an empty host, whatever rounding the incremental sums accumulated.
      this.reqMips[h] = 0;
      this.cappedMips[h] = 0;
      this.memReservedMiB[h] = 0;
      this.memUsedMiB[h] = 0;
      this.diskBytesPerSec[h] = 0;
      this.netBytesPerSec[h] = 0;
      for (let k = 0; k < K; k++) this.colSum[h * K + k] = 0;
    }
  }

  private addHistory(v: number, h: number, sign: 1 | -1): void {
    const W = this.historyWindow;
    const n = this.vmHistN[v]!;
    const base = h * W;
    const flat = this.vmHist;
    if (flat) {
      for (let k = 0; k < n; k++) {
        this.hist[base + k]! += sign * flat[v * W + k]!;
        const c = (this.histCnt[base + k]! += sign);
        if (c === 0) this.hist[base + k] = 0;
      }
      return;
    }
    const series = this.vms[v]!.cpuHistoryMips;
    const last = series.length - 1;
    for (let k = 0; k < n; k++) {
      this.hist[base + k]! += sign * series[last - k]!;
      const c = (this.histCnt[base + k]! += sign);
      if (c === 0) this.hist[base + k] = 0;
    }
  }
}
