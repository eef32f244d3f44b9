/**
 * HostBackend over the `virsh` program: the fallback when Tide's RPC client cannot be used.
 * Every call is `execFile('virsh', ['-c', uri, …])` with an argv array (no shell, ever),
 * LC_ALL=C (stable messages to parse) and LIBVIRT_DEFAULT_URI removed. VM names are always
 * passed as the value of `--domain`, so a name starting with "-" or holding shell
 * metacharacters reaches libvirt verbatim. No `;`-separated virsh batches.
 *
 * There are no events over virsh: migration progress comes from polling
 * `domjobinfo --rawstats`, which is also where post-copy is triggered.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostConfig } from '../../config/schema.js';
import { VIR_MIGRATE } from '../../libvirt/constants.js';
import { DriverError, type DriverErrorCode } from '../errors.js';
import {
  isActiveState, vmStateOf, type CpuCompare, type DomainFacts, type HostBackend, type HostCounters, type HostFacts, type JobFacts,
  type MigrateCall,
} from '../common/backend.js';
import { hostCpuFromStats, hostMemFromStats, vmCountersFromStats } from '../common/usage.js';
import { parsePoolXml, parseVolumeXml, type StoragePoolFacts, type StorageVolumeFacts, type VolumeRef } from '../common/storage.js';
import { hostCpuModel, hostUuid } from '../common/xml.js';
import { DEFAULT_VIRSH_PROCESSES, ProcessLimit } from './limit.js';
import {
  classifyVirshError, kib, parseDomstats, parseKeyValues, parseNames, parseNodeStats, parseRawJob, parseUuidNames, stateCodeOf,
  virshErrorMessage,
} from './parse.js';

export interface VirshBackendOptions {
  /** The virsh binary (default 'virsh' from PATH). */
  virsh?: string;
  /** Timeout of ordinary calls, ms (default 60 000; migrations have none). */
  callTimeoutMs?: number;
  /**
   * Most virsh processes alive at once (default 8; limit.ts says why). A VirshDriver shares
   * one limit among its hosts; calls beyond it wait. Calls without a timeout (migrations,
   * which run for minutes) are not counted, so they never starve collection or their own
   * progress polling.
   */
  maxProcesses?: number;
  /** A limit to share (VirshDriver passes one to all its backends); overrides maxProcesses. */
  processLimit?: ProcessLimit;
}

export { DEFAULT_VIRSH_PROCESSES } from './limit.js';

interface Result { code: number; stdout: string; stderr: string; timedOut: boolean }

/** Environment for virsh: C locale, no default URI from the caller's environment. */
export function virshEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  delete env.LIBVIRT_DEFAULT_URI;
  return env;
}

const MIGRATE_FLAG_ARGS: [number, string][] = [
  [VIR_MIGRATE.LIVE, '--live'],
  [VIR_MIGRATE.PEER2PEER, '--p2p'],
  [VIR_MIGRATE.PERSIST_DEST, '--persistent'],
  [VIR_MIGRATE.UNDEFINE_SOURCE, '--undefinesource'],
  [VIR_MIGRATE.PAUSED, '--suspend'],
  [VIR_MIGRATE.NON_SHARED_DISK, '--copy-storage-all'],
  [VIR_MIGRATE.NON_SHARED_INC, '--copy-storage-inc'],
  [VIR_MIGRATE.UNSAFE, '--unsafe'],
  [VIR_MIGRATE.OFFLINE, '--offline'],
  [VIR_MIGRATE.COMPRESSED, '--compressed'],
  [VIR_MIGRATE.ABORT_ON_ERROR, '--abort-on-error'],
  [VIR_MIGRATE.AUTO_CONVERGE, '--auto-converge'],
  [VIR_MIGRATE.POSTCOPY, '--postcopy'],
  [VIR_MIGRATE.TLS, '--tls'],
];

/** virsh migrate argv (after `-c URI`) for a MigrateCall. */
export function migrateArgv(vm: string, call: MigrateCall): string[] {
  const a = ['migrate'];
  let rest = call.flags;
  for (const [bit, opt] of MIGRATE_FLAG_ARGS) {
    if (call.flags & bit) {
      a.push(opt);
      rest &= ~bit;
    }
  }
  if (rest !== 0) throw new DriverError('TIDE_UNSUPPORTED', `virsh driver: migration flags 0x${rest.toString(16)} have no virsh option`);
  const p = call.params;
  if (p.migrate_uri !== undefined) a.push('--migrateuri', p.migrate_uri);
  if (p.listen_address !== undefined) a.push('--listen-address', p.listen_address);
  if (p.bandwidth !== undefined) a.push('--bandwidth', String(p.bandwidth));
  if (p['bandwidth.postcopy'] !== undefined) a.push('--postcopy-bandwidth', String(p['bandwidth.postcopy']));
  a.push('--domain', vm, '--desturi', call.dest.peerUri ?? call.dest.uri);
  return a;
}

/** virsh's messages for a pool or volume libvirt does not know. */
const NOT_FOUND = /Storage (pool|volume) not found|failed to get (pool|vol) /;

function asDriverError(e: unknown, host: string, what: string): DriverError {
  if (e instanceof DriverError) return e;
  return new DriverError('TIDE_HOST_UNREACHABLE', `${host}: ${what}: ${(e as Error)?.message ?? String(e)}`, { host }, { cause: e });
}

export class VirshBackend implements HostBackend {
  private lastOkAt = 0;
  private lastUp = false;
  private facts: HostFacts | null = null;
  readonly limit: ProcessLimit;

  constructor(readonly config: HostConfig, private readonly opts: VirshBackendOptions = {}) {
    this.limit = opts.processLimit ?? new ProcessLimit(opts.maxProcesses ?? DEFAULT_VIRSH_PROCESSES);
  }

  get up(): boolean {
    return this.lastUp;
  }

  /**
   * Runs `virsh -c URI args…`; never throws (see `ok`). timeoutMs 0 = none (and not counted
   * against the process limit); the timeout runs from the process's start, not from the wait.
   */
  exec(args: readonly string[], timeoutMs = this.opts.callTimeoutMs ?? 60_000): Promise<Result> {
    return timeoutMs === 0 ? this.spawn(args, 0) : this.limit.run(() => this.spawn(args, timeoutMs));
  }

  private spawn(args: readonly string[], timeoutMs: number): Promise<Result> {
    return new Promise((resolve) => {
      execFile(this.opts.virsh ?? 'virsh', ['-c', this.config.uri, ...args], {
        env: virshEnv(), timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 256 * 1024 * 1024, encoding: 'utf8',
      }, (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { killed?: boolean; code?: number | string }) | null;
        if (e && typeof e.code === 'string') {
          resolve({ code: 127, stdout: '', stderr: `error: cannot run virsh: ${e.message}`, timedOut: false });
          return;
        }
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr, timedOut: Boolean(e?.killed) });
      });
    });
  }

  /** exec() that throws a DriverError unless virsh exits 0; returns stdout. */
  private async ok(args: readonly string[], context: DriverErrorCode, what: string, timeoutMs?: number): Promise<string> {
    const r = await this.exec(args, timeoutMs);
    if (r.code === 0) {
      this.lastOkAt = performance.now();
      this.lastUp = true;
      return r.stdout;
    }
    const message = r.timedOut ? `virsh ${args[0]} did not finish within ${timeoutMs ?? this.opts.callTimeoutMs ?? 60_000} ms` : virshErrorMessage(r.stderr) || `virsh exited with ${r.code}`;
    const code: DriverErrorCode = r.timedOut ? 'TIDE_TIMEOUT' : r.code === 127 ? 'TIDE_UNSUPPORTED' : classifyVirshError(message, context);
    if (code === 'TIDE_HOST_UNREACHABLE') {
      this.lastUp = false;
      this.facts = null;
    }
    throw new DriverError(code, `${this.config.name}: ${what}: ${message}`, { host: this.config.name, virsh: args[0], exitCode: r.code, stderr: r.stderr.trim().slice(-2000) });
  }

  async ensure(): Promise<void> {
    // one cheap call at most every 5 s; every other call also proves reachability
    if (this.lastUp && performance.now() - this.lastOkAt < 5000) return;
    await this.ok(['hostname'], 'TIDE_HOST_UNREACHABLE', 'connect');
  }

  async hostFacts(): Promise<HostFacts> {
    // static facts are cached, but every call proves the daemon still answers
    if (this.facts && this.lastUp) {
      await this.ok(['hostname'], 'TIDE_HOST_UNREACHABLE', 'hostname');
      if (this.facts) return this.facts;
    }
    const [caps, hostname, nodeinfo, mem] = await Promise.all([
      this.ok(['capabilities'], 'TIDE_HOST_UNREACHABLE', 'capabilities'),
      this.ok(['hostname'], 'TIDE_HOST_UNREACHABLE', 'hostname'),
      this.ok(['nodeinfo'], 'TIDE_HOST_UNREACHABLE', 'nodeinfo'),
      this.ok(['nodememstats'], 'TIDE_HOST_UNREACHABLE', 'nodememstats'),
    ]);
    const ni = parseKeyValues(nodeinfo);
    let cpu: ReturnType<typeof hostCpuModel>;
    try {
      cpu = hostCpuModel(caps);
    } catch (e) {
      throw new DriverError('TIDE_HOST_UNREACHABLE', `${this.config.name}: capabilities: ${(e as Error).message}`, { host: this.config.name }, { cause: e });
    }
    const total = parseNodeStats(mem).total;
    this.facts = {
      uuid: hostUuid(caps) ?? '',
      hostname: hostname.trim(),
      cpuCores: Number(ni['CPU(s)'] ?? 0),
      cpuMhz: Number(/^\d+/.exec(ni['CPU frequency'] ?? '')?.[0] ?? 0),
      memKiB: total ?? kib(ni['Memory size']),
      cpuModel: cpu.model ?? ni['CPU model'] ?? '',
      arch: cpu.arch ?? ni['CPU model'] ?? '',
    };
    return this.facts;
  }

  async domains(): Promise<DomainFacts[]> {
    const [stats, uuids, persistent] = await Promise.all([
      this.ok(['domstats', '--raw', '--state', '--balloon', '--vcpu'], 'TIDE_HOST_UNREACHABLE', 'domstats'),
      this.ok(['list', '--all', '--uuid', '--name'], 'TIDE_HOST_UNREACHABLE', 'list'),
      this.ok(['list', '--all', '--persistent', '--name'], 'TIDE_HOST_UNREACHABLE', 'list'),
    ]);
    const byName = parseUuidNames(uuids);
    const pers = new Set(parseNames(persistent));
    return parseDomstats(stats).map((d) => {
      const code = d.fields['state.state'] ?? 0;
      return {
        name: d.name,
        uuid: byName.get(d.name) ?? '',
        state: vmStateOf(code),
        stateCode: code,
        reason: d.fields['state.reason'] ?? 0,
        active: isActiveState(code),
        persistent: pers.has(d.name),
        vcpus: d.fields['vcpu.current'] ?? d.fields['vcpu.maximum'] ?? 0,
        memKiB: d.fields['balloon.maximum'] ?? d.fields['balloon.current'] ?? 0,
      };
    });
  }

  async domain(vm: string): Promise<DomainFacts | null> {
    let text: string;
    try {
      text = await this.ok(['dominfo', '--domain', vm], 'TIDE_HOST_UNREACHABLE', `dominfo ${vm}`);
    } catch (e) {
      if (e instanceof DriverError && e.code === 'TIDE_NO_SUCH_VM') return null;
      throw e;
    }
    const kv = parseKeyValues(text);
    const code = stateCodeOf(kv.State ?? '');
    return {
      name: vm,
      uuid: kv.UUID ?? '',
      state: vmStateOf(code),
      stateCode: code,
      reason: 0,
      active: isActiveState(code),
      persistent: kv.Persistent === 'yes',
      vcpus: Number(kv['CPU(s)'] ?? 0),
      memKiB: kib(kv['Max memory']),
    };
  }

  async counters(): Promise<HostCounters> {
    const [stats, uuids, cpu, mem] = await Promise.all([
      this.ok(['domstats', '--raw', '--state', '--cpu-total', '--balloon', '--vcpu', '--interface', '--block', '--list-active', '--nowait'], 'TIDE_HOST_UNREACHABLE', 'domstats'),
      this.ok(['list', '--uuid', '--name'], 'TIDE_HOST_UNREACHABLE', 'list'),
      this.ok(['nodecpustats'], 'TIDE_HOST_UNREACHABLE', 'nodecpustats'),
      this.ok(['nodememstats'], 'TIDE_HOST_UNREACHABLE', 'nodememstats'),
    ]);
    const atMs = Date.now();
    const monoMs = performance.now();
    const byName = parseUuidNames(uuids);
    const hc = hostCpuFromStats(parseNodeStats(cpu));
    const hm = hostMemFromStats(parseNodeStats(mem));
    return {
      atMs, monoMs, cpuBusyNs: hc.busy, cpuTotalNs: hc.total, memTotalKiB: hm.totalKiB, memAvailableKiB: hm.availableKiB,
      vms: parseDomstats(stats).map((d) => vmCountersFromStats(d.name, byName.get(d.name) ?? d.name, d.fields)),
    };
  }

  async memory(): Promise<{ totalKiB: number; availableKiB: number }> {
    return hostMemFromStats(parseNodeStats(await this.ok(['nodememstats'], 'TIDE_HOST_UNREACHABLE', 'nodememstats')));
  }

  async domainXml(vm: string): Promise<string> {
    return this.ok(['dumpxml', '--domain', vm], 'TIDE_HOST_UNREACHABLE', `dumpxml ${vm}`);
  }

  async jobStats(vm: string, completed = false): Promise<JobFacts | null> {
    let text: string;
    try {
      text = await this.ok(['domjobinfo', '--rawstats', ...(completed ? ['--completed', '--keep-completed'] : []), '--domain', vm], 'TIDE_HOST_UNREACHABLE', `domjobinfo ${vm}`, 5000);
    } catch (e) {
      if (e instanceof DriverError && e.code === 'TIDE_NO_SUCH_VM') return null;
      throw e;
    }
    const j = parseRawJob(text);
    if (completed && j.type === 0) return null;
    return j;
  }

  async compareCpu(cpuXml: string, o: { virttype: string | null; arch: string | null; machine: string | null }): Promise<CpuCompare> {
    const dir = await mkdtemp(join(tmpdir(), 'tide-cpu-'));
    try {
      const file = join(dir, 'cpu.xml');
      await writeFile(file, cpuXml, { mode: 0o600 });
      const args = ['hypervisor-cpu-compare'];
      if (o.virttype) args.push('--virttype', o.virttype);
      if (o.arch) args.push('--arch', o.arch);
      if (o.machine) args.push('--machine', o.machine);
      args.push('--file', file);
      const r = await this.exec(args);
      const text = `${r.stdout}\n${r.stderr}`;
      if (/incompatible/i.test(text) || /unknown CPU model/i.test(text)) {
        return { result: 'incompatible', reason: `${this.config.name}: ${virshErrorMessage(r.stderr) || r.stdout.trim()}` };
      }
      if (r.code === 0 && /identical|superset/i.test(r.stdout)) return { result: 'compatible', reason: `${this.config.name} can provide the guest's CPU` };
      return { result: 'unknown', reason: virshErrorMessage(r.stderr) || r.stdout.trim() || `virsh exited with ${r.code}` };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async storagePools(): Promise<StoragePoolFacts[]> {
    // pool-list --name pads every name with spaces to a column width
    const names = parseNames(await this.ok(['pool-list', '--all', '--name'], 'TIDE_HOST_UNREACHABLE', 'pool-list')).map((n) => n.trimEnd()).filter(Boolean);
    const pools = await Promise.all(names.map(async (name) => {
      try {
        const [info, xml] = await Promise.all([
          this.ok(['pool-info', '--pool', name], 'TIDE_HOST_UNREACHABLE', `pool-info ${name}`),
          this.ok(['pool-dumpxml', '--pool', name], 'TIDE_HOST_UNREACHABLE', `pool-dumpxml ${name}`),
        ]);
        return parsePoolXml(xml, parseKeyValues(info).State === 'running');
      } catch (e) {
        if (e instanceof DriverError && NOT_FOUND.test(e.message)) return null; // undefined meanwhile
        throw asDriverError(e, this.config.name, `storage pool ${name}`);
      }
    }));
    return pools.filter((p): p is StoragePoolFacts => p !== null);
  }

  async storageVolume(ref: VolumeRef, o: { refreshPool?: string } = {}): Promise<StorageVolumeFacts | null> {
    const what = 'path' in ref ? ref.path : `${ref.pool}/${ref.name}`;
    const look = async (): Promise<StorageVolumeFacts | null> => {
      try {
        if ('path' in ref) {
          const [xml, pool] = await Promise.all([
            this.ok(['vol-dumpxml', '--vol', ref.path], 'TIDE_HOST_UNREACHABLE', `vol-dumpxml ${what}`),
            this.ok(['vol-pool', '--vol', ref.path], 'TIDE_HOST_UNREACHABLE', `vol-pool ${what}`),
          ]);
          return parseVolumeXml(xml, pool.trim());
        }
        return parseVolumeXml(await this.ok(['vol-dumpxml', '--pool', ref.pool, '--vol', ref.name], 'TIDE_HOST_UNREACHABLE', `vol-dumpxml ${what}`), ref.pool);
      } catch (e) {
        if (e instanceof DriverError && NOT_FOUND.test(e.message)) return null;
        throw asDriverError(e, this.config.name, `storage volume ${what}`);
      }
    };
    // refresh (a rescan of the pool) only when the volume is not known yet
    const first = await look();
    if (first !== null || o.refreshPool === undefined) return first;
    try {
      await this.ok(['pool-refresh', '--pool', o.refreshPool], 'TIDE_HOST_UNREACHABLE', `pool-refresh ${o.refreshPool}`);
    } catch (e) {
      if (e instanceof DriverError && NOT_FOUND.test(e.message)) return null;
      throw e;
    }
    return look();
  }

  async migrate(vm: string, call: MigrateCall): Promise<void> {
    await this.ok(migrateArgv(vm, call), 'TIDE_MIGRATION_FAILED', `migrating ${vm} to ${call.dest.name}`, 0);
  }

  async startPostCopy(vm: string): Promise<void> {
    await this.ok(['migrate-postcopy', '--domain', vm], 'TIDE_MIGRATION_FAILED', `post-copy switch of ${vm}`);
  }

  async setMaxDowntime(vm: string, ms: number): Promise<void> {
    await this.ok(['migrate-setmaxdowntime', '--domain', vm, '--downtime', String(Math.round(ms))], 'TIDE_MIGRATION_FAILED', `max downtime of ${vm}`);
  }

  async abortJob(vm: string): Promise<void> {
    await this.ok(['domjobabort', '--domain', vm], 'TIDE_MIGRATION_FAILED', `aborting the job of ${vm}`);
  }

  async start(vm: string): Promise<void> {
    await this.ok(['start', '--domain', vm], 'TIDE_POWER_FAILED', `starting ${vm}`);
  }

  async shutdown(vm: string): Promise<void> {
    await this.ok(['shutdown', '--domain', vm], 'TIDE_POWER_FAILED', `shutting ${vm} down`);
  }

  async destroy(vm: string): Promise<void> {
    await this.ok(['destroy', '--domain', vm], 'TIDE_POWER_FAILED', `powering ${vm} off`);
  }

  async undefine(vm: string): Promise<void> {
    await this.ok(['undefine', '--domain', vm], 'TIDE_POWER_FAILED', `undefining ${vm}`);
  }

  async suspend(vm: string): Promise<void> {
    await this.ok(['suspend', '--domain', vm], 'TIDE_POWER_FAILED', `suspending ${vm}`);
  }

  async resume(vm: string): Promise<void> {
    await this.ok(['resume', '--domain', vm], 'TIDE_POWER_FAILED', `resuming ${vm}`);
  }

  async close(): Promise<void> {
    // nothing to close: every call is its own process
  }
}
