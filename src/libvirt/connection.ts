/**
 * LibvirtConnection: the typed, high-level client of one libvirt daemon.
 *
 * Lifecycle: `LibvirtConnection.open(uri)` connects the transport, authenticates (AUTH_LIST, then
 * AUTH_POLKIT when the daemon asks for it; SASL is refused), advertises keepalive
 * (CONNECT_SUPPORTS_FEATURE PROGRAM_KEEPALIVE), sends CONNECT_OPEN and starts our own keepalive
 * PINGs. `close()` sends CONNECT_CLOSE and ends the stream.
 *
 * Connection loss (daemon gone, keepalive timeout): every pending call rejects with
 * TIDE_HOST_UNREACHABLE. Without auto-reconnect the connection is then closed for good ('close'
 * event). With `autoReconnect`, it emits 'disconnect', retries with exponential back-off, and on
 * success re-registers every event subscription (the same EventSubscription objects keep working,
 * with new daemon-side callback ids) and emits 'reconnect'. Calls made while reconnecting fail at
 * once with TIDE_HOST_UNREACHABLE rather than queueing: a caller must not assume a mutating call
 * was or was not carried out by the daemon it never reached.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { XMLParser } from 'fast-xml-parser';
import {
  MIGRATE_PARAM_TYPES,
  VIR_CONNECT,
  VIR_NODE_CPU_STATS_ALL_CPUS,
  VIR_NODE_MEMORY_STATS_ALL_CELLS,
} from './constants.js';
import { LibvirtError, localError } from './errors.js';
import { EVENT_DECODERS, type DomainEventMap, type DomainEventName, type RawDomainEvent } from './events.js';
import {
  EVENT_PROC_BY_ID,
  NumericDomainStatsDecoder,
  REMOTE_PROGRAM,
  RemoteAuthType,
  VIR_DRV_FEATURE_PROGRAM_KEEPALIVE,
  procs,
  type Domain,
  type NumericDomainStats,
  type StoragePoolRef,
  type StorageVolRef,
  type ProcArgs,
  type ProcDef,
  type ProcName,
  type ProcRet,
} from './protocol.js';
import type { Packet } from './packet.js';
import { RpcClient, type CallOptions, type KeepaliveOptions } from './rpc.js';
import { openTransport, type TransportOptions } from './transport.js';
import {
  decodeTypedParams,
  encodeTypedParams,
  type TypedParamScalar,
  type TypedParams,
  type TypedValue,
} from './typed-params.js';
import { parseLibvirtUri, type LibvirtUri } from './uri.js';

export interface ReconnectOptions {
  /** First retry delay in ms (doubles each attempt). Default 250. */
  initialDelayMs?: number;
  /** Cap of the retry delay in ms. Default 5000. */
  maxDelayMs?: number;
  /** Attempts before giving up (then 'close' is emitted). Default Infinity. */
  maxAttempts?: number;
}

export interface ConnectOptions extends TransportOptions {
  /** Default timeout of each call in ms (0 = none). Default 60000. Migration calls have none unless given. */
  callTimeoutMs?: number;
  /** Our keepalive; false disables it. Default { intervalMs: 5000, count: 5 } (libvirt's defaults). */
  keepalive?: KeepaliveOptions | false;
  /** Re-open automatically after losing the connection. Default false. */
  autoReconnect?: boolean | ReconnectOptions;
  /** Replaces the transport (tests, custom tunnels): must return a connected byte stream. */
  connectStream?: (uri: LibvirtUri) => Promise<Duplex>;
  /**
   * Abandons `open()` (e.g. the caller's connect timeout): the handshake's pending calls reject
   * and the stream is destroyed at once, so nothing keeps the process alive afterwards.
   * Applies to the first open only, not to automatic reconnects.
   */
  signal?: AbortSignal;
}

/** A domain given either as the daemon's handle or by name (looked up first). */
export type DomainRef = Domain | string;

export interface EventSubscription {
  readonly eventId: number;
  /** The daemon's current callback id (changes after a reconnect); null while disconnected. */
  readonly callbackId: number | null;
  /** Deregisters (CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY) and stops delivery. */
  off(): Promise<void>;
}

export type MigrateParams = Record<string, TypedParamScalar | readonly TypedParamScalar[] | TypedValue>;

export interface DomainInfo {
  /** VIR_DOMAIN_STATE value */
  state: number;
  maxMemKiB: bigint;
  memoryKiB: bigint;
  nrVirtCpu: number;
  /** CPU time used, nanoseconds */
  cpuTimeNs: bigint;
}

export interface NodeInfo {
  model: string;
  memoryKiB: bigint;
  cpus: number;
  /** MHz */
  mhz: number;
  nodes: number;
  sockets: number;
  cores: number;
  threads: number;
}

export interface DomainStatsRecord {
  dom: Domain;
  params: TypedParams;
}

export interface JobStats {
  /** VIR_DOMAIN_JOB value */
  type: number;
  params: TypedParams;
}

export type ConnectionState = 'open' | 'reconnecting' | 'closed';

interface SubscriptionImpl extends EventSubscription {
  eventId: number;
  callbackId: number | null;
  dom: Domain | null;
  deliver(pkt: Packet, callbackID: number): void;
  active: boolean;
}

const DEFAULT_KEEPALIVE: KeepaliveOptions = { intervalMs: 5000, count: 5 };
/** MESSAGE procedures that carry domain events (their payload starts with the callbackID). */
const EVENT_PROCS = new Set(Object.values(EVENT_PROC_BY_ID));

/**
 * Events: 'disconnect' (connection lost, reconnecting), 'reconnect' ({ attempt }), 'close'
 * (final; null when closed by us), 'event-error' (a subscription handler threw or an event
 * payload could not be decoded).
 */
export interface LibvirtConnectionEvents {
  disconnect: [LibvirtError];
  reconnect: [{ attempt: number }];
  close: [LibvirtError | null];
  'event-error': [unknown];
}

export class LibvirtConnection extends EventEmitter<LibvirtConnectionEvents> {
  readonly uri: LibvirtUri;
  private rpc: RpcClient;
  private currentState: ConnectionState = 'open';
  private readonly subs = new Set<SubscriptionImpl>();
  private readonly byCallbackId = new Map<number, SubscriptionImpl>();
  private reconnectAttempt = 0;
  /**
   * Field counts of NODE_GET_CPU_STATS / NODE_GET_MEMORY_STATS per CPU or cell, learned once per
   * daemon connection (libvirt wants the exact count): saves the count round trip on every
   * later call. Cleared on reconnect (the daemon may have changed).
   */
  private readonly paramCounts = new Map<string, number>();
  /** CONNECT_GET_ALL_DOMAIN_STATS with the numeric reply decoder (its name cache is per connection). */
  private readonly numericStats: ProcDef<ProcArgs<'CONNECT_GET_ALL_DOMAIN_STATS'>, { retStats: NumericDomainStats[] }> = {
    ...procs.CONNECT_GET_ALL_DOMAIN_STATS, ret: new NumericDomainStatsDecoder(),
  };
  /** Aborts the reconnect loop's wait and handshake when close() is called. */
  private reconnectAbort: AbortController | null = null;
  private description: string;

  private constructor(uri: LibvirtUri, private readonly opts: ConnectOptions, rpc: RpcClient, description: string) {
    super();
    this.uri = uri;
    this.rpc = rpc;
    this.description = description;
    this.attach(rpc);
  }

  /** Connects, authenticates and opens `uri` (any form virsh accepts, see uri.ts). */
  static async open(uri: string, opts: ConnectOptions = {}): Promise<LibvirtConnection> {
    const u = parseLibvirtUri(uri);
    const { rpc, description } = await LibvirtConnection.handshake(u, opts, opts.signal);
    return new LibvirtConnection(u, opts, rpc, description);
  }

  private static async handshake(u: LibvirtUri, opts: ConnectOptions, signal?: AbortSignal): Promise<{ rpc: RpcClient; description: string }> {
    let stream: Duplex;
    let description: string;
    if (opts.connectStream) {
      stream = await opts.connectStream(u);
      description = 'custom stream';
    } else {
      ({ stream, description } = await openTransport(u, opts));
    }
    if (signal?.aborted) {
      stream.destroy();
      throw localError.aborted(`connection to ${u.uri} abandoned by the caller`);
    }
    const rpc = new RpcClient(stream, { callTimeoutMs: opts.callTimeoutMs ?? 60_000 });
    const call: typeof rpc.call = (def, args, o = {}) => rpc.call(def, args, { signal, ...o });
    try {
      const { types } = await call(procs.AUTH_LIST, undefined);
      if (types.length > 0 && !types.includes(RemoteAuthType.NONE)) {
        if (types.includes(RemoteAuthType.POLKIT)) {
          const { complete } = await call(procs.AUTH_POLKIT, undefined);
          if (complete !== 1) throw localError.unreachable(`polkit authentication with ${description} did not complete`);
        } else {
          throw localError.unsupported(`libvirt at ${description} requires SASL authentication, which this client does not implement; use TLS client certificates or SSH`);
        }
      }
      const keepalive = opts.keepalive === undefined ? DEFAULT_KEEPALIVE : opts.keepalive;
      let peerKeepalive = false;
      if (keepalive !== false) {
        const { supported } = await call(procs.CONNECT_SUPPORTS_FEATURE, { feature: VIR_DRV_FEATURE_PROGRAM_KEEPALIVE });
        peerKeepalive = supported === 1;
      }
      await call(procs.CONNECT_OPEN, { name: u.remoteName, flags: opts.readonly ? VIR_CONNECT.RO : 0 });
      if (keepalive !== false && peerKeepalive) rpc.startKeepalive(keepalive);
      return { rpc, description };
    } catch (e) {
      rpc.destroy(localError.unreachable('handshake failed'));
      throw e;
    }
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** Where the byte stream goes, e.g. "unix:/run/libvirt/libvirt-sock". */
  get transportDescription(): string {
    return this.description;
  }

  /** Counters of the current RPC stream (calls, replies, keepalive PINGs/PONGs, events). */
  get rpcStats(): RpcClient['stats'] {
    return this.rpc.stats;
  }

  private attach(rpc: RpcClient): void {
    rpc.on('message', (pkt) => this.onMessage(pkt));
    rpc.once('close', (err) => this.onRpcClose(rpc, err));
  }

  private onRpcClose(rpc: RpcClient, err: LibvirtError | null): void {
    if (rpc !== this.rpc || this.currentState === 'closed') return;
    this.byCallbackId.clear();
    for (const s of this.subs) s.callbackId = null;
    if (err === null) {
      this.currentState = 'closed';
      this.emit('close', null);
      return;
    }
    if (!this.opts.autoReconnect) {
      this.currentState = 'closed';
      this.emit('close', err);
      return;
    }
    this.currentState = 'reconnecting';
    this.emit('disconnect', err);
    void this.reconnectLoop(err);
  }

  private async reconnectLoop(lastErr: LibvirtError): Promise<void> {
    const ro: ReconnectOptions = typeof this.opts.autoReconnect === 'object' ? this.opts.autoReconnect : {};
    const initial = ro.initialDelayMs ?? 250;
    const max = ro.maxDelayMs ?? 5000;
    const maxAttempts = ro.maxAttempts ?? Infinity;
    let delay = initial;
    this.reconnectAttempt = 0;
    // close() aborts this: the retry wait is cleared and a handshake to a silent daemon is
    // dropped, so a closed connection keeps no timer or socket alive.
    const stop = new AbortController();
    this.reconnectAbort = stop;
    while (this.currentState === 'reconnecting') {
      if (this.reconnectAttempt >= maxAttempts) {
        this.currentState = 'closed';
        this.emit('close', localError.unreachable(`gave up reconnecting to ${this.uri.uri} after ${maxAttempts} attempt(s): ${lastErr.message}`, lastErr));
        return;
      }
      await new Promise<void>((r) => {
        const onAbort = (): void => { clearTimeout(t); r(); };
        const t = setTimeout(() => { stop.signal.removeEventListener('abort', onAbort); r(); }, delay);
        stop.signal.addEventListener('abort', onAbort, { once: true });
      });
      if (this.currentState !== 'reconnecting') return;
      this.reconnectAttempt++;
      try {
        const { rpc, description } = await LibvirtConnection.handshake(this.uri, this.opts, stop.signal);
        if (this.currentState !== 'reconnecting') {
          await rpc.close();
          return;
        }
        this.rpc = rpc;
        this.paramCounts.clear();
        this.description = description;
        this.attach(rpc);
        this.currentState = 'open';
        await this.reregisterAll();
        this.emit('reconnect', { attempt: this.reconnectAttempt });
        return;
      } catch (e) {
        lastErr = e instanceof LibvirtError ? e : localError.unreachable(String(e), e);
        delay = Math.min(max, delay * 2);
      }
    }
  }

  private async reregisterAll(): Promise<void> {
    for (const s of this.subs) {
      if (!s.active) continue;
      try {
        await this.registerSub(s);
      } catch (e) {
        this.emit('event-error', e);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Low-level access
  // -------------------------------------------------------------------------------------------

  /** Calls any procedure of the table by name, with its typed arguments and result. */
  call<P extends ProcName>(name: P, args: ProcArgs<P>, opts?: CallOptions): Promise<ProcRet<P>> {
    return this.callDef(procs[name] as unknown as ProcDef<ProcArgs<P>, ProcRet<P>>, args, opts);
  }

  private callDef<A, R>(def: ProcDef<A, R>, args: A, opts?: CallOptions): Promise<R> {
    const name = def.name;
    if (this.currentState !== 'open') {
      return Promise.reject(localError.unreachable(
        this.currentState === 'reconnecting'
          ? `${name}: not connected to ${this.uri.uri} (reconnecting, attempt ${this.reconnectAttempt})`
          : `${name}: connection to ${this.uri.uri} is closed`,
        undefined,
        name,
      ));
    }
    return this.rpc.call(def, args, opts);
  }

  /** Closes the connection (CONNECT_CLOSE, then the stream). Idempotent. */
  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    const wasOpen = this.currentState === 'open';
    this.currentState = 'closed';
    this.reconnectAbort?.abort();
    if (wasOpen) {
      try {
        await this.rpc.call(procs.CONNECT_CLOSE, undefined, { timeoutMs: 2000 });
      } catch {
        // closing anyway
      }
    }
    await this.rpc.close();
    this.emit('close', null);
  }

  private async dom(ref: DomainRef): Promise<Domain> {
    return typeof ref === 'string' ? this.lookupDomainByName(ref) : ref;
  }

  // -------------------------------------------------------------------------------------------
  // Connection / host
  // -------------------------------------------------------------------------------------------

  async getType(): Promise<string> {
    return (await this.call('CONNECT_GET_TYPE', undefined)).type;
  }

  /** Hypervisor version as major*1e6 + minor*1e3 + micro (e.g. QEMU 7.2.22 -> 7002022n). */
  async getVersion(): Promise<bigint> {
    return (await this.call('CONNECT_GET_VERSION', undefined)).hv_ver;
  }

  /** libvirt version of the daemon, same encoding. */
  async getLibVersion(): Promise<bigint> {
    return (await this.call('CONNECT_GET_LIB_VERSION', undefined)).lib_ver;
  }

  async getHostname(): Promise<string> {
    return (await this.call('CONNECT_GET_HOSTNAME', undefined)).hostname;
  }

  async getCapabilities(): Promise<string> {
    return (await this.call('CONNECT_GET_CAPABILITIES', undefined)).capabilities;
  }

  /** Host UUID from the capabilities (libvirtd.conf host_uuid, else SMBIOS); null if absent. */
  async getHostUuid(): Promise<string | null> {
    const caps = await this.getCapabilities();
    // A real XML parser (no regex): <capabilities><host><uuid>; tag values stay strings.
    const doc = new XMLParser({ parseTagValue: false, ignoreDeclaration: true }).parse(caps) as { capabilities?: { host?: { uuid?: unknown } } };
    const u = doc.capabilities?.host?.uuid;
    return typeof u === 'string' && /^[0-9a-fA-F-]{32,36}$/.test(u.trim()) ? u.trim().toLowerCase() : null;
  }

  async getDomainCapabilities(o: { emulatorbin?: string; arch?: string; machine?: string; virttype?: string; flags?: number } = {}): Promise<string> {
    return (await this.call('CONNECT_GET_DOMAIN_CAPABILITIES', {
      emulatorbin: o.emulatorbin ?? null,
      arch: o.arch ?? null,
      machine: o.machine ?? null,
      virttype: o.virttype ?? null,
      flags: o.flags ?? 0,
    })).capabilities;
  }

  async getSysinfo(flags = 0): Promise<string> {
    return (await this.call('CONNECT_GET_SYSINFO', { flags })).sysinfo;
  }

  /** VIR_CPU_COMPARE_* of a CPU XML against the host CPU (legacy API). */
  async compareCpu(xml: string, flags = 0): Promise<number> {
    return (await this.call('CONNECT_COMPARE_CPU', { xml, flags })).result;
  }

  /** VIR_CPU_COMPARE_* of a CPU XML against what the hypervisor can provide (pre-migration check). */
  async compareHypervisorCpu(xmlCPU: string, o: { emulator?: string; arch?: string; machine?: string; virttype?: string; flags?: number } = {}): Promise<number> {
    return (await this.call('CONNECT_COMPARE_HYPERVISOR_CPU', {
      emulator: o.emulator ?? null,
      arch: o.arch ?? null,
      machine: o.machine ?? null,
      virttype: o.virttype ?? null,
      xmlCPU,
      flags: o.flags ?? 0,
    })).result;
  }

  async supportsFeature(feature: number): Promise<boolean> {
    return (await this.call('CONNECT_SUPPORTS_FEATURE', { feature })).supported === 1;
  }

  // -------------------------------------------------------------------------------------------
  // Inventory
  // -------------------------------------------------------------------------------------------

  /** Domains matching VIR_CONNECT_LIST_DOMAINS_* flags (0 = all). */
  async listAllDomains(flags = 0, opts?: CallOptions): Promise<Domain[]> {
    return (await this.call('CONNECT_LIST_ALL_DOMAINS', { need_results: 1, flags }, opts)).domains;
  }

  async lookupDomainByName(name: string): Promise<Domain> {
    return (await this.call('DOMAIN_LOOKUP_BY_NAME', { name })).dom;
  }

  async lookupDomainByUuid(uuid: string): Promise<Domain> {
    return (await this.call('DOMAIN_LOOKUP_BY_UUID', { uuid })).dom;
  }

  // -------------------------------------------------------------------------------------------
  // Storage (look-ups; a refresh rescans a pool's target so new files become volumes)
  // -------------------------------------------------------------------------------------------

  /** Storage pools matching VIR_CONNECT_LIST_STORAGE_POOLS_* flags (0 = all). */
  async listAllStoragePools(flags = 0): Promise<StoragePoolRef[]> {
    return (await this.call('CONNECT_LIST_ALL_STORAGE_POOLS', { need_results: 1, flags })).pools;
  }

  async lookupStoragePoolByName(name: string): Promise<StoragePoolRef> {
    return (await this.call('STORAGE_POOL_LOOKUP_BY_NAME', { name })).pool;
  }

  /** { state: VIR_STORAGE_POOL_STATE, capacity/allocation/available in bytes } */
  async getStoragePoolInfo(pool: StoragePoolRef): Promise<{ state: number; capacityBytes: bigint; allocationBytes: bigint; availableBytes: bigint }> {
    const r = await this.call('STORAGE_POOL_GET_INFO', { pool });
    return { state: r.state, capacityBytes: r.capacity, allocationBytes: r.allocation, availableBytes: r.available };
  }

  async getStoragePoolXml(pool: StoragePoolRef, flags = 0): Promise<string> {
    return (await this.call('STORAGE_POOL_GET_XML_DESC', { pool, flags })).xml;
  }

  async refreshStoragePool(pool: StoragePoolRef): Promise<void> {
    await this.call('STORAGE_POOL_REFRESH', { pool, flags: 0 });
  }

  async lookupStorageVolByName(pool: StoragePoolRef, name: string): Promise<StorageVolRef> {
    return (await this.call('STORAGE_VOL_LOOKUP_BY_NAME', { pool, name })).vol;
  }

  /** The volume of any active pool whose path (or key) is `path`; VIR_ERR_NO_STORAGE_VOL when none. */
  async lookupStorageVolByPath(path: string): Promise<StorageVolRef> {
    return (await this.call('STORAGE_VOL_LOOKUP_BY_PATH', { path })).vol;
  }

  async getStorageVolXml(vol: StorageVolRef, flags = 0): Promise<string> {
    return (await this.call('STORAGE_VOL_GET_XML_DESC', { vol, flags })).xml;
  }

  async getDomainXml(ref: DomainRef, flags = 0): Promise<string> {
    return (await this.call('DOMAIN_GET_XML_DESC', { dom: await this.dom(ref), flags })).xml;
  }

  async getDomainInfo(ref: DomainRef): Promise<DomainInfo> {
    const r = await this.call('DOMAIN_GET_INFO', { dom: await this.dom(ref) });
    return { state: r.state, maxMemKiB: r.maxMem, memoryKiB: r.memory, nrVirtCpu: r.nrVirtCpu, cpuTimeNs: r.cpuTime };
  }

  /** { state: VIR_DOMAIN_STATE, reason: state-specific reason } */
  async getDomainState(ref: DomainRef): Promise<{ state: number; reason: number }> {
    return this.call('DOMAIN_GET_STATE', { dom: await this.dom(ref), flags: 0 });
  }

  /** Monitor/control state; stateTime in ms. */
  async getDomainControlInfo(ref: DomainRef): Promise<{ state: number; details: number; stateTime: bigint }> {
    return this.call('DOMAIN_GET_CONTROL_INFO', { dom: await this.dom(ref), flags: 0 });
  }

  async isDomainActive(ref: DomainRef): Promise<boolean> {
    return (await this.call('DOMAIN_IS_ACTIVE', { dom: await this.dom(ref) })).active === 1;
  }

  async isDomainPersistent(ref: DomainRef): Promise<boolean> {
    return (await this.call('DOMAIN_IS_PERSISTENT', { dom: await this.dom(ref) })).persistent === 1;
  }

  async getDomainAutostart(ref: DomainRef): Promise<boolean> {
    return (await this.call('DOMAIN_GET_AUTOSTART', { dom: await this.dom(ref) })).autostart === 1;
  }

  // -------------------------------------------------------------------------------------------
  // Stats
  // -------------------------------------------------------------------------------------------

  /**
   * Bulk statistics (virConnectGetAllDomainStats / virDomainListGetStats): `stats` is an OR of
   * VIR_DOMAIN_STATS_* (0 = every group the driver supports); `doms` limits the result to those
   * domains (then `flags` filters must be 0), empty = all domains matching `flags`.
   */
  async getAllDomainStats(stats = 0, flags = 0, doms: DomainRef[] = [], opts?: CallOptions): Promise<DomainStatsRecord[]> {
    const resolved = await Promise.all(doms.map((d) => this.dom(d)));
    const r = await this.call('CONNECT_GET_ALL_DOMAIN_STATS', { doms: resolved, stats, flags }, opts);
    return r.retStats.map((s) => ({ dom: s.dom, params: decodeTypedParams(s.params) }));
  }

  /**
   * getAllDomainStats for collection: every domain matching `flags`, each record's fields as
   * numbers (NumericDomainStatsDecoder: string fields left out, 64-bit counters as doubles),
   * without the per-field objects of the generic decoding. Field names are cached per
   * connection.
   */
  async getAllDomainStatsNumeric(stats = 0, flags = 0, opts?: CallOptions): Promise<NumericDomainStats[]> {
    return (await this.callDef(this.numericStats, { doms: [], stats, flags }, opts)).retStats;
  }

  async nodeGetInfo(): Promise<NodeInfo> {
    const r = await this.call('NODE_GET_INFO', undefined);
    return { model: r.model, memoryKiB: r.memory, cpus: r.cpus, mhz: r.mhz, nodes: r.nodes, sockets: r.sockets, cores: r.cores, threads: r.threads };
  }

  /**
   * Host CPU time counters in ns (user, kernel, idle, iowait, ...) for one CPU or all
   * (VIR_NODE_CPU_STATS_ALL_CPUS). Uses libvirt's count-then-fetch convention: nparams=0 asks
   * how many fields exist, the second call fetches them; the count is asked once per
   * connection (see countThenFetch), so a later call is one round trip.
   */
  async nodeGetCpuStats(cpuNum: number = VIR_NODE_CPU_STATS_ALL_CPUS): Promise<Record<string, bigint>> {
    return this.countThenFetch(`cpu:${cpuNum}`, async (nparams) => this.call('NODE_GET_CPU_STATS', { cpuNum, nparams, flags: 0 }));
  }

  /** Host memory counters in KiB (total, free, buffers, cached), same count-then-fetch. */
  async nodeGetMemoryStats(cellNum: number = VIR_NODE_MEMORY_STATS_ALL_CELLS): Promise<Record<string, bigint>> {
    return this.countThenFetch(`mem:${cellNum}`, async (nparams) => this.call('NODE_GET_MEMORY_STATS', { nparams, cellNum, flags: 0 }));
  }

  /**
   * libvirt's count-then-fetch (`call(0)` answers the field count, `call(n)` the n fields),
   * with the count remembered under `key` for this connection. A remembered count the daemon
   * refuses (a remote error) is forgotten and asked again, once.
   */
  private async countThenFetch(
    key: string,
    call: (nparams: number) => Promise<{ params: { field: string; value: bigint }[]; nparams: number }>,
  ): Promise<Record<string, bigint>> {
    const known = this.paramCounts.get(key);
    let r: { params: { field: string; value: bigint }[]; nparams: number } | null = null;
    if (known !== undefined) {
      try {
        r = await call(known);
      } catch (e) {
        if (!(e instanceof LibvirtError) || e.origin !== 'remote') throw e;
        this.paramCounts.delete(key);
      }
    }
    if (r === null) {
      const count = (await call(0)).nparams;
      if (count === 0) return {};
      this.paramCounts.set(key, count);
      r = await call(count);
    }
    return Object.fromEntries(r.params.map((p) => [p.field, p.value]));
  }

  /** Free host memory in bytes. */
  async nodeGetFreeMemory(): Promise<bigint> {
    return (await this.call('NODE_GET_FREE_MEMORY', undefined)).freeMem;
  }

  /** Free memory per NUMA cell in bytes. */
  async nodeGetCellsFreeMemory(startCell = 0, maxCells = 1): Promise<bigint[]> {
    return (await this.call('NODE_GET_CELLS_FREE_MEMORY', { startCell, maxcells: maxCells })).cells;
  }

  // -------------------------------------------------------------------------------------------
  // Migration and jobs
  // -------------------------------------------------------------------------------------------

  /**
   * Managed peer-to-peer migration (virDomainMigrateToURI3 with VIR_MIGRATE_PEER2PEER): the
   * source daemon connects to `dconnuri` itself. Resolves when the migration finished (or
   * rejects). `params` use VIR_MIGRATE_PARAM_* names; bare values are typed from
   * MIGRATE_PARAM_TYPES (bandwidth in MiB/s as bigint or number, migrate_uri string, ...).
   * There is no call timeout unless `opts.timeoutMs` is given. Daemon errors without a more
   * specific meaning become TIDE_MIGRATION_FAILED; an aborted job gives TIDE_ABORTED.
   */
  async migratePerform3Params(ref: DomainRef, dconnuri: string | null, params: MigrateParams, flags: number, opts: CallOptions = {}): Promise<{ cookieOut: Buffer }> {
    const dom = await this.dom(ref);
    let wire;
    try {
      wire = encodeTypedParams(Object.entries(params), MIGRATE_PARAM_TYPES);
    } catch (e) {
      throw localError.invalid(`migration parameters: ${(e as Error).message}`);
    }
    try {
      const r = await this.call('DOMAIN_MIGRATE_PERFORM3_PARAMS', { dom, dconnuri, params: wire, cookie_in: Buffer.alloc(0), flags }, { timeoutMs: 0, ...opts });
      return { cookieOut: r.cookie_out };
    } catch (e) {
      if (e instanceof LibvirtError && e.origin === 'remote' && (e.tideCode === 'TIDE_LIBVIRT_ERROR' || e.tideCode === 'TIDE_HOST_UNREACHABLE')) {
        // From the daemon (not our connection): e.g. the destination is unreachable.
        throw e.withTideCode('TIDE_MIGRATION_FAILED');
      }
      throw e;
    }
  }

  /** Progress/result of the current (or, with VIR_DOMAIN_JOB_STATS_COMPLETED, last) job. */
  async getJobStats(ref: DomainRef, flags = 0, opts?: CallOptions): Promise<JobStats> {
    const r = await this.call('DOMAIN_GET_JOB_STATS', { dom: await this.dom(ref), flags }, opts);
    return { type: r.type, params: decodeTypedParams(r.params) };
  }

  async getJobInfo(ref: DomainRef): Promise<ProcRet<'DOMAIN_GET_JOB_INFO'>> {
    return this.call('DOMAIN_GET_JOB_INFO', { dom: await this.dom(ref) });
  }

  async abortJob(ref: DomainRef): Promise<void> {
    await this.call('DOMAIN_ABORT_JOB', { dom: await this.dom(ref) });
  }

  /** VIR_DOMAIN_ABORT_JOB_* flags (POSTCOPY aborts a failed post-copy). libvirt >= 8.5. */
  async abortJobFlags(ref: DomainRef, flags: number): Promise<void> {
    await this.call('DOMAIN_ABORT_JOB_FLAGS', { dom: await this.dom(ref), flags });
  }

  /** Switches a running migration (started with VIR_MIGRATE_POSTCOPY) to post-copy. */
  async migrateStartPostCopy(ref: DomainRef, flags = 0): Promise<void> {
    await this.call('DOMAIN_MIGRATE_START_POST_COPY', { dom: await this.dom(ref), flags });
  }

  /** Maximum tolerable downtime, ms. */
  async migrateSetMaxDowntime(ref: DomainRef, downtimeMs: bigint | number, flags = 0): Promise<void> {
    await this.call('DOMAIN_MIGRATE_SET_MAX_DOWNTIME', { dom: await this.dom(ref), downtime: BigInt(downtimeMs), flags });
  }

  async migrateGetMaxDowntime(ref: DomainRef, flags = 0): Promise<bigint> {
    return (await this.call('DOMAIN_MIGRATE_GET_MAX_DOWNTIME', { dom: await this.dom(ref), flags })).downtime;
  }

  /** Migration bandwidth cap, MiB/s. */
  async migrateSetMaxSpeed(ref: DomainRef, mibPerSec: bigint | number, flags = 0): Promise<void> {
    await this.call('DOMAIN_MIGRATE_SET_MAX_SPEED', { dom: await this.dom(ref), bandwidth: BigInt(mibPerSec), flags });
  }

  async migrateGetMaxSpeed(ref: DomainRef, flags = 0): Promise<bigint> {
    return (await this.call('DOMAIN_MIGRATE_GET_MAX_SPEED', { dom: await this.dom(ref), flags })).bandwidth;
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle
  // -------------------------------------------------------------------------------------------

  /** Starts a transient domain from XML (VIR_DOMAIN_START_* flags). */
  async createXml(xml: string, flags = 0): Promise<Domain> {
    return (await this.call('DOMAIN_CREATE_XML', { xml_desc: xml, flags })).dom;
  }

  /** Starts a defined domain; returns the handle with its new id. */
  async createWithFlags(ref: DomainRef, flags = 0): Promise<Domain> {
    return (await this.call('DOMAIN_CREATE_WITH_FLAGS', { dom: await this.dom(ref), flags })).dom;
  }

  async shutdown(ref: DomainRef, flags = 0): Promise<void> {
    await this.call('DOMAIN_SHUTDOWN_FLAGS', { dom: await this.dom(ref), flags });
  }

  async destroy(ref: DomainRef, flags = 0): Promise<void> {
    await this.call('DOMAIN_DESTROY_FLAGS', { dom: await this.dom(ref), flags });
  }

  async suspend(ref: DomainRef): Promise<void> {
    await this.call('DOMAIN_SUSPEND', { dom: await this.dom(ref) });
  }

  async resume(ref: DomainRef): Promise<void> {
    await this.call('DOMAIN_RESUME', { dom: await this.dom(ref) });
  }

  /** Saves the domain's state to a file on the daemon's host and stops it. */
  async save(ref: DomainRef, to: string, dxml: string | null = null, flags = 0): Promise<void> {
    await this.call('DOMAIN_SAVE_FLAGS', { dom: await this.dom(ref), to, dxml, flags }, { timeoutMs: 0 });
  }

  async restore(from: string, dxml: string | null = null, flags = 0): Promise<void> {
    await this.call('DOMAIN_RESTORE_FLAGS', { from, dxml, flags }, { timeoutMs: 0 });
  }

  async defineXml(xml: string, flags = 0): Promise<Domain> {
    return (await this.call('DOMAIN_DEFINE_XML_FLAGS', { xml, flags })).dom;
  }

  async undefine(ref: DomainRef, flags = 0): Promise<void> {
    await this.call('DOMAIN_UNDEFINE_FLAGS', { dom: await this.dom(ref), flags });
  }

  async setAutostart(ref: DomainRef, autostart: boolean): Promise<void> {
    await this.call('DOMAIN_SET_AUTOSTART', { dom: await this.dom(ref), autostart: autostart ? 1 : 0 });
  }

  // -------------------------------------------------------------------------------------------
  // Events
  // -------------------------------------------------------------------------------------------

  /**
   * Subscribes to one kind of domain event (all domains, or `opts.domain`). The handler runs
   * synchronously in packet order; exceptions it throws are reported as 'event-error'.
   */
  async onDomainEvent<K extends DomainEventName>(kind: K, handler: (ev: DomainEventMap[K]) => void, opts: { domain?: DomainRef } = {}): Promise<EventSubscription> {
    const decoder = EVENT_DECODERS[kind];
    return this.subscribe(decoder.id, opts.domain, (pkt) => {
      if (pkt.header.proc !== decoder.proc) return;
      handler(decoder.decode(pkt.body));
    });
  }

  /** Subscribes to any VIR_DOMAIN_EVENT_ID_* and receives the undecoded payload. */
  async onRawDomainEvent(eventId: number, handler: (ev: RawDomainEvent) => void, opts: { domain?: DomainRef } = {}): Promise<EventSubscription> {
    return this.subscribe(eventId, opts.domain, (pkt, callbackID) => handler({ eventId, proc: pkt.header.proc, callbackID, body: pkt.body }));
  }

  private async subscribe(eventId: number, domainRef: DomainRef | undefined, deliver: (pkt: Packet, callbackID: number) => void): Promise<EventSubscription> {
    if (EVENT_PROC_BY_ID[eventId] === undefined) throw localError.invalid(`unknown domain event id ${eventId}`);
    const dom = domainRef === undefined ? null : await this.dom(domainRef);
    const self = this; // eslint-disable-line @typescript-eslint/no-this-alias
    const sub: SubscriptionImpl = {
      eventId,
      callbackId: null,
      dom,
      active: true,
      deliver,
      async off(): Promise<void> {
        if (!sub.active) return;
        sub.active = false;
        self.subs.delete(sub);
        const id = sub.callbackId;
        sub.callbackId = null;
        if (id !== null) {
          self.byCallbackId.delete(id);
          if (self.currentState === 'open') await self.call('CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY', { callbackID: id });
        }
      },
    };
    await this.registerSub(sub);
    this.subs.add(sub);
    return sub;
  }

  private async registerSub(sub: SubscriptionImpl): Promise<void> {
    const { callbackID } = await this.call('CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY', { eventID: sub.eventId, dom: sub.dom });
    sub.callbackId = callbackID;
    this.byCallbackId.set(callbackID, sub);
  }

  private onMessage(pkt: Packet): void {
    if (pkt.header.prog !== REMOTE_PROGRAM || !EVENT_PROCS.has(pkt.header.proc) || pkt.body.length < 4) return;
    const callbackID = pkt.body.readInt32BE(0);
    const sub = this.byCallbackId.get(callbackID);
    if (!sub || !sub.active) return;
    try {
      sub.deliver(pkt, callbackID);
    } catch (e) {
      this.emit('event-error', e);
    }
  }
}
