/**
 * HostBackend over Tide's libvirt RPC client: one long-lived LibvirtConnection per host,
 * opened on first use, with auto-reconnect and libvirt's keepalive. Host identity is the
 * capabilities' host UUID. Events (migration-iteration, job-completed) drive migration
 * progress; job stats fill in between.
 *
 * Error mapping: a LibvirtError's `tideCode` becomes the DriverError code; libvirt errors
 * without a specific meaning (TIDE_LIBVIRT_ERROR) get the code of the operation's context
 * (inventory → TIDE_HOST_UNREACHABLE, migration → TIDE_MIGRATION_FAILED, power →
 * TIDE_POWER_FAILED). `detail` keeps libvirt's code, domain, message and procedure.
 */
import type { HostConfig } from '../../config/schema.js';
import {
  LibvirtConnection, LibvirtError, VIR_CONNECT_GET_ALL_DOMAINS_STATS, VIR_CONNECT_LIST_DOMAINS, VIR_CPU_COMPARE, VIR_DOMAIN_JOB_STATS,
  VIR_DOMAIN_STATS, VIR_ERR, VIR_STORAGE_POOL_STATE, type ConnectOptions, type EventSubscription, type TypedParams,
} from '../../libvirt/index.js';
import { DriverError, type DriverErrorCode } from '../errors.js';
import {
  isActiveState, vmStateOf, type CpuCompare, type DomainFacts, type HostBackend, type HostCounters, type HostFacts, type JobFacts,
  type MigrateCall, type MigrationWatch,
} from '../common/backend.js';
import { hostCpuFromStats, hostMemFromStats, vmCountersFromStats } from '../common/usage.js';
import { parsePoolXml, parseVolumeXml, type StoragePoolFacts, type StorageVolumeFacts, type VolumeRef } from '../common/storage.js';
import { cpuSummary, hostCpuModel, hostUuid } from '../common/xml.js';

export type ErrorContext = 'inventory' | 'migrate' | 'power';

const CONTEXT_CODE: Record<ErrorContext, DriverErrorCode> = {
  inventory: 'TIDE_HOST_UNREACHABLE',
  migrate: 'TIDE_MIGRATION_FAILED',
  power: 'TIDE_POWER_FAILED',
};

/** A LibvirtError (or anything) as a DriverError, with libvirt's facts in `detail`. */
export function toDriverError(e: unknown, context: ErrorContext, what: string): DriverError {
  if (e instanceof DriverError) return e;
  if (e instanceof LibvirtError) {
    const code: DriverErrorCode = e.tideCode === 'TIDE_LIBVIRT_ERROR' ? CONTEXT_CODE[context] : e.tideCode;
    return new DriverError(code, `${what}: ${e.message}`, {
      libvirtCode: e.code, libvirtDomain: e.domain, libvirtMessage: e.message, origin: e.origin, procedure: e.procedure,
    }, { cause: e });
  }
  return new DriverError(CONTEXT_CODE[context], `${what}: ${(e as Error)?.message ?? String(e)}`, undefined, { cause: e });
}

/** Typed params as plain numbers (64-bit counters fit a double far beyond any realistic value). */
function numbers(p: TypedParams): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(p)) {
    if (typeof v === 'bigint') out[k] = Number(v);
    else if (typeof v === 'number') out[k] = v;
    else if (typeof v === 'boolean') out[k] = v ? 1 : 0;
  }
  return out;
}

/** Default of RpcBackendOptions.shareCountersMs (config `libvirt.shareCountersMs`), ms. */
export const DEFAULT_SHARE_COUNTERS_MS = 1000;

export interface RpcBackendOptions {
  /** Give up connecting after this long, ms (default 10 000; libvirt has no connect timeout). */
  connectTimeoutMs?: number;
  /** Passed to LibvirtConnection.open (keepalive, callTimeoutMs, ssh…); autoReconnect is always on. */
  connection?: ConnectOptions;
  /**
   * How long usage counters fetched along with an inventory (domains()) stay usable by the
   * next counters() call, ms (default 1000). A collection round asks for the inventory and
   * then for usage (src/app/controller.ts: listVms, then the metrics source's sample()); the
   * counters leave with the inventory's request, so a round is one round trip per host.
   * 0: counters() always asks the daemon itself. Configured by `libvirt.shareCountersMs`.
   */
  shareCountersMs?: number;
}

/** One exchange with the daemon: its domains and, when asked for, its usage counters. */
interface Polled {
  domains: DomainFacts[];
  counters: HostCounters | null;
}

const INVENTORY_STATS = VIR_DOMAIN_STATS.STATE | VIR_DOMAIN_STATS.BALLOON | VIR_DOMAIN_STATS.VCPU;
/** A superset of INVENTORY_STATS: one stats call answers both the inventory and the usage. */
const SAMPLE_STATS = INVENTORY_STATS | VIR_DOMAIN_STATS.CPU_TOTAL | VIR_DOMAIN_STATS.INTERFACE | VIR_DOMAIN_STATS.BLOCK;
/**
 * NOWAIT: a domain whose job lock is taken (e.g. migrating) answers what needs no monitor
 * (state, balloon maximum, vCPUs: all the inventory reads) instead of delaying the whole call.
 */
const NOWAIT = VIR_CONNECT_GET_ALL_DOMAINS_STATS.NOWAIT;

export class RpcBackend implements HostBackend {
  private conn: LibvirtConnection | null = null;
  private opening: Promise<LibvirtConnection> | null = null;
  private facts: HostFacts | null = null;
  /** Set by the first counters() call: from then on domains() fetches the counters too. */
  private usageWanted = false;
  /** The exchange in flight that fetches counters (a counters() call joins it). */
  private polling: Promise<Polled> | null = null;
  /** Counters fetched with the last inventory, until counters() takes them or they expire. */
  private stash: HostCounters | null = null;
  /** Counters counters() has returned: never stashed or returned again (no zero-length interval). */
  private readonly served = new WeakSet<HostCounters>();

  constructor(readonly config: HostConfig, private readonly opts: RpcBackendOptions = {}) {}

  get up(): boolean {
    return this.conn?.state === 'open';
  }

  /** How long counters fetched with an inventory stay usable, ms (RpcBackendOptions.shareCountersMs with its default). */
  get shareCountersMs(): number {
    return this.opts.shareCountersMs ?? DEFAULT_SHARE_COUNTERS_MS;
  }

  /** The open connection (connecting first if needed). */
  async connection(): Promise<LibvirtConnection> {
    const c = this.conn;
    if (c && c.state === 'open') return c;
    if (c && c.state === 'reconnecting') {
      throw new DriverError('TIDE_HOST_UNREACHABLE', `${this.config.name}: connection to ${this.config.uri} lost (reconnecting)`, { host: this.config.name });
    }
    this.opening ??= this.open().finally(() => { this.opening = null; });
    return this.opening;
  }

  private async open(): Promise<LibvirtConnection> {
    const timeoutMs = this.opts.connectTimeoutMs ?? 10_000;
    // On timeout the handshake is abandoned (its socket destroyed), so an unanswering host
    // does not keep the process alive after the error is reported.
    const abandon = new AbortController();
    const opening = LibvirtConnection.open(this.config.uri, { ...this.opts.connection, autoReconnect: true, signal: abandon.signal });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => abandon.abort(), timeoutMs);
      abandon.signal.addEventListener('abort', () => reject(new DriverError('TIDE_HOST_UNREACHABLE', `${this.config.name}: no answer from ${this.config.uri} within ${timeoutMs} ms`, { host: this.config.name })), { once: true });
    });
    try {
      const c = await Promise.race([opening, timeout]);
      c.on('disconnect', () => { this.facts = null; this.stash = null; });
      c.on('close', () => { if (this.conn === c) this.conn = null; });
      c.on('event-error', () => { /* a broken event payload must not crash the process */ });
      this.conn = c;
      return c;
    } catch (e) {
      // a connection that completes after the timeout is closed again
      opening.then((c) => c.close(), () => { /* failed anyway */ });
      throw toDriverError(e, 'inventory', `${this.config.name}: cannot connect to ${this.config.uri}`);
    } finally {
      clearTimeout(timer);
    }
  }

  private async run<T>(context: ErrorContext, what: string, fn: (c: LibvirtConnection) => Promise<T>): Promise<T> {
    const c = await this.connection();
    try {
      return await fn(c);
    } catch (e) {
      throw toDriverError(e, context, `${this.config.name}: ${what}`);
    }
  }

  async ensure(): Promise<void> {
    await this.connection();
  }

  async hostFacts(): Promise<HostFacts> {
    if (this.facts && this.up) return this.facts;
    return this.run('inventory', 'host facts', async (c) => {
      const [caps, hostname, node, mem] = await Promise.all([c.getCapabilities(), c.getHostname(), c.nodeGetInfo(), c.nodeGetMemoryStats().catch(() => null)]);
      const cpu = hostCpuModel(caps);
      const memTotal = mem?.total !== undefined ? Number(mem.total) : Number(node.memoryKiB);
      this.facts = {
        uuid: hostUuid(caps) ?? '',
        hostname,
        cpuCores: node.cpus,
        cpuMhz: node.mhz,
        memKiB: memTotal,
        cpuModel: cpu.model ?? node.model,
        arch: cpu.arch ?? node.model,
      };
      return this.facts;
    });
  }

  private static facts(name: string, uuid: string, p: Record<string, number>, persistent: boolean): DomainFacts {
    const stateCode = p['state.state'] ?? 0;
    return {
      name,
      uuid,
      state: vmStateOf(stateCode),
      stateCode,
      reason: p['state.reason'] ?? 0,
      active: isActiveState(stateCode),
      persistent,
      vcpus: p['vcpu.current'] ?? p['vcpu.maximum'] ?? 0,
      memKiB: p['balloon.maximum'] ?? p['balloon.current'] ?? 0,
    };
  }

  /**
   * Always a fresh request (never an answer to a request sent before this call: a caller that
   * just changed something must see it). Once counters() has been used, the same exchange
   * fetches the usage counters too (see shareCountersMs): the calls leave in one write, so
   * inventory + usage cost one round trip per host.
   */
  async domains(): Promise<DomainFacts[]> {
    return this.run('inventory', 'list domains', async (c) => {
      if (!this.usageWanted || this.shareCountersMs <= 0) return (await this.exchange(c, false)).domains;
      const p = this.exchange(c, true);
      this.polling = p;
      try {
        const r = await p;
        if (r.counters && !this.served.has(r.counters)) this.stash = r.counters;
        return r.domains;
      } finally {
        if (this.polling === p) this.polling = null;
      }
    });
  }

  /**
   * The calls of one exchange, all made in the same tick (the RPC client sends them in one
   * write): the domains' stats (with the usage groups when `usage`), the persistent list, and
   * with `usage` the node's CPU and memory counters.
   */
  private async exchange(c: LibvirtConnection, usage: boolean): Promise<Polled> {
    const [stats, persistent, cpu, mem] = await Promise.all([
      c.getAllDomainStatsNumeric(usage ? SAMPLE_STATS : INVENTORY_STATS, usage ? NOWAIT : 0),
      c.listAllDomains(VIR_CONNECT_LIST_DOMAINS.PERSISTENT),
      usage ? c.nodeGetCpuStats() : null,
      usage ? c.nodeGetMemoryStats() : null,
    ]);
    const atMs = Date.now();
    const monoMs = performance.now();
    const pers = new Set(persistent.map((d) => d.uuid));
    const domains: DomainFacts[] = [];
    const vms: HostCounters['vms'] = [];
    for (const s of stats) {
      const p = s.values;
      const f = RpcBackend.facts(s.dom.name, s.dom.uuid, p, pers.has(s.dom.uuid));
      domains.push(f);
      if (usage && f.active) vms.push(vmCountersFromStats(s.dom.name, s.dom.uuid, p));
    }
    if (!cpu || !mem) return { domains, counters: null };
    const hc = hostCpuFromStats(numbers(cpu));
    const hm = hostMemFromStats(numbers(mem));
    return {
      domains,
      counters: { atMs, monoMs, cpuBusyNs: hc.busy, cpuTotalNs: hc.total, memTotalKiB: hm.totalKiB, memAvailableKiB: hm.availableKiB, vms },
    };
  }

  async domain(vm: string): Promise<DomainFacts | null> {
    return this.run('inventory', `domain ${vm}`, async (c) => {
      let dom;
      try {
        dom = await c.lookupDomainByName(vm);
      } catch (e) {
        if (e instanceof LibvirtError && e.code === VIR_ERR.NO_DOMAIN) return null;
        throw e;
      }
      try {
        const [stats, persistent] = await Promise.all([c.getAllDomainStats(INVENTORY_STATS, 0, [dom]), c.isDomainPersistent(dom)]);
        const s = stats[0];
        return s ? RpcBackend.facts(dom.name, dom.uuid, numbers(s.params), persistent) : null;
      } catch (e) {
        // undefined between the lookup and the stats (e.g. a migration just finished)
        if (e instanceof LibvirtError && e.code === VIR_ERR.NO_DOMAIN) return null;
        throw e;
      }
    });
  }

  /**
   * Usage counters: those of an exchange in flight or fetched with the inventory less than
   * shareCountersMs ago (each taken once: the next call asks again), else asked for now. The
   * counters carry the time they were read, so rates stay exact whichever request read them.
   */
  async counters(): Promise<HostCounters> {
    this.usageWanted = true;
    const stashed = this.stash;
    this.stash = null;
    if (stashed && performance.now() - stashed.monoMs <= this.shareCountersMs && this.up) return this.serve(stashed);
    if (this.polling) {
      const r = await this.polling.catch(() => null);
      if (r?.counters && !this.served.has(r.counters)) {
        if (this.stash === r.counters) this.stash = null;
        return this.serve(r.counters);
      }
    }
    return this.run('inventory', 'statistics', async (c) => {
      const flags = VIR_CONNECT_GET_ALL_DOMAINS_STATS.ACTIVE | VIR_CONNECT_GET_ALL_DOMAINS_STATS.NOWAIT;
      const [stats, cpu, mem] = await Promise.all([c.getAllDomainStatsNumeric(SAMPLE_STATS, flags), c.nodeGetCpuStats(), c.nodeGetMemoryStats()]);
      const atMs = Date.now();
      const monoMs = performance.now();
      const hc = hostCpuFromStats(numbers(cpu));
      const hm = hostMemFromStats(numbers(mem));
      return {
        atMs, monoMs, cpuBusyNs: hc.busy, cpuTotalNs: hc.total, memTotalKiB: hm.totalKiB, memAvailableKiB: hm.availableKiB,
        vms: stats.map((s) => vmCountersFromStats(s.dom.name, s.dom.uuid, s.values)),
      };
    });
  }

  private serve(c: HostCounters): HostCounters {
    this.served.add(c);
    return c;
  }

  async memory(): Promise<{ totalKiB: number; availableKiB: number }> {
    return this.run('inventory', 'memory statistics', async (c) => hostMemFromStats(numbers(await c.nodeGetMemoryStats())));
  }

  async domainXml(vm: string): Promise<string> {
    return this.run('inventory', `XML of ${vm}`, (c) => c.getDomainXml(vm));
  }

  async jobStats(vm: string, completed = false): Promise<JobFacts | null> {
    return this.run('inventory', `job of ${vm}`, async (c) => {
      try {
        const flags = completed ? VIR_DOMAIN_JOB_STATS.COMPLETED | VIR_DOMAIN_JOB_STATS.KEEP_COMPLETED : 0;
        const js = await c.getJobStats(vm, flags, { timeoutMs: 2000 });
        if (completed && js.type === 0) return null;
        return { type: js.type, fields: numbers(js.params) };
      } catch (e) {
        if (e instanceof LibvirtError && e.code === VIR_ERR.NO_DOMAIN) return null;
        throw e;
      }
    });
  }

  async compareCpu(cpuXml: string, o: { virttype: string | null; arch: string | null; machine: string | null }): Promise<CpuCompare> {
    const c = await this.connection();
    try {
      const r = await c.compareHypervisorCpu(cpuXml, { virttype: o.virttype ?? undefined, arch: o.arch ?? undefined, machine: o.machine ?? undefined });
      if (r === VIR_CPU_COMPARE.INCOMPATIBLE) return { result: 'incompatible', reason: `${this.config.name} cannot provide the guest's CPU (${cpuSummary(cpuXml)})` };
      return { result: 'compatible', reason: `${this.config.name} can provide the guest's CPU (${cpuSummary(cpuXml)})` };
    } catch (e) {
      if (e instanceof LibvirtError && /unknown CPU model|incompatible/i.test(e.message)) {
        return { result: 'incompatible', reason: `${this.config.name}: ${e.message}` };
      }
      return { result: 'unknown', reason: (e as Error).message };
    }
  }

  async storagePools(): Promise<StoragePoolFacts[]> {
    return this.run('inventory', 'storage pools', async (c) => {
      const pools = await Promise.all((await c.listAllStoragePools(0)).map(async (p) => {
        try {
          const [info, xml] = await Promise.all([c.getStoragePoolInfo(p), c.getStoragePoolXml(p)]);
          return parsePoolXml(xml, info.state === VIR_STORAGE_POOL_STATE.RUNNING);
        } catch (e) {
          if (e instanceof LibvirtError && e.code === VIR_ERR.NO_STORAGE_POOL) return null; // undefined meanwhile
          throw e;
        }
      }));
      return pools.filter((p): p is StoragePoolFacts => p !== null);
    });
  }

  async storageVolume(ref: VolumeRef, o: { refreshPool?: string } = {}): Promise<StorageVolumeFacts | null> {
    const what = 'path' in ref ? ref.path : `${ref.pool}/${ref.name}`;
    return this.run('inventory', `storage volume ${what}`, async (c) => {
      const missing = (e: unknown): boolean => e instanceof LibvirtError && (e.code === VIR_ERR.NO_STORAGE_VOL || e.code === VIR_ERR.NO_STORAGE_POOL);
      const look = async (): Promise<StorageVolumeFacts | null> => {
        try {
          const vol = 'path' in ref ? await c.lookupStorageVolByPath(ref.path) : await c.lookupStorageVolByName(await c.lookupStoragePoolByName(ref.pool), ref.name);
          return parseVolumeXml(await c.getStorageVolXml(vol), vol.pool);
        } catch (e) {
          if (missing(e)) return null;
          throw e;
        }
      };
      // refresh (a rescan of the pool) only when the volume is not known yet
      const first = await look();
      if (first !== null || o.refreshPool === undefined) return first;
      try {
        await c.refreshStoragePool(await c.lookupStoragePoolByName(o.refreshPool));
      } catch (e) {
        if (missing(e)) return null;
        throw e;
      }
      return look();
    });
  }

  async migrate(vm: string, call: MigrateCall): Promise<void> {
    const params: Record<string, string | number> = {};
    for (const [k, v] of Object.entries(call.params)) if (v !== undefined) params[k] = v;
    await this.run('migrate', `migrating ${vm} to ${call.dest.name}`, (c) =>
      c.migratePerform3Params(vm, call.dest.peerUri ?? call.dest.uri, params, call.flags));
  }

  async startPostCopy(vm: string): Promise<void> {
    await this.run('migrate', `post-copy switch of ${vm}`, (c) => c.migrateStartPostCopy(vm));
  }

  async setMaxDowntime(vm: string, ms: number): Promise<void> {
    await this.run('migrate', `max downtime of ${vm}`, (c) => c.migrateSetMaxDowntime(vm, Math.round(ms)));
  }

  async abortJob(vm: string): Promise<void> {
    await this.run('migrate', `aborting the job of ${vm}`, (c) => c.abortJob(vm));
  }

  async watchMigration(vm: string, w: MigrationWatch): Promise<() => Promise<void>> {
    const c = await this.connection();
    const subs: EventSubscription[] = [];
    try {
      subs.push(await c.onDomainEvent('migration-iteration', (ev) => w.iteration(ev.iteration), { domain: vm }));
      subs.push(await c.onDomainEvent('job-completed', (ev) => {
        const fields = numbers(ev.params);
        w.completed({ type: 3, fields });
      }, { domain: vm }));
    } catch (e) {
      await Promise.all(subs.map((s) => s.off().catch(() => { /* best effort */ })));
      throw toDriverError(e, 'inventory', `${this.config.name}: events of ${vm}`);
    }
    return async () => { await Promise.all(subs.map((s) => s.off())); };
  }

  async start(vm: string): Promise<void> {
    await this.run('power', `starting ${vm}`, (c) => c.createWithFlags(vm));
  }

  async shutdown(vm: string): Promise<void> {
    await this.run('power', `shutting ${vm} down`, (c) => c.shutdown(vm));
  }

  async destroy(vm: string): Promise<void> {
    await this.run('power', `powering ${vm} off`, (c) => c.destroy(vm));
  }

  async undefine(vm: string): Promise<void> {
    await this.run('power', `undefining ${vm}`, (c) => c.undefine(vm));
  }

  async suspend(vm: string): Promise<void> {
    await this.run('power', `suspending ${vm}`, (c) => c.suspend(vm));
  }

  async resume(vm: string): Promise<void> {
    await this.run('power', `resuming ${vm}`, (c) => c.resume(vm));
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = null;
    if (c) await c.close();
  }
}

