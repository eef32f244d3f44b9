/**
 * HostBackendDriver: the HypervisorDriver contract implemented once over per-host backends
 * (backend.ts), shared by the libvirt (RPC) and virsh drivers.
 *
 * Migration (all modes are managed peer-to-peer: the source daemon connects to the target's
 * `peerUri` itself and QEMU streams to the target's `migrationAddress`):
 *   live     VIR_MIGRATE_LIVE [+AUTO_CONVERGE] [+POSTCOPY, switched on after N pre-copy
 *            passes] [+NON_SHARED_DISK] [+UNSAFE]; bandwidth cap as a parameter, max downtime
 *            set once the job runs. downtimeMs = libvirt's figure for the switch-over.
 *   suspend  pause the VM, migrate it paused (its memory state goes over the migration stream,
 *            so no shared path for a save file is needed), resume it on the target.
 *            downtimeMs = Tide's measurement from pause to resume.
 *   offline  shut the guest down (ACPI; `forceOff` after `shutdownTimeoutSec`), move the
 *            definition (VIR_MIGRATE_OFFLINE), start it on the target (if it was running).
 *            downtimeMs = from the shutdown request until the start on the target returned.
 * Persistent VMs are made persistent on the target and undefined on the source; transient
 * ones stay transient.
 *
 * Afterwards the VM must be active on the target and not on the source, or migrate() fails.
 * After a failure the engine waits for the source daemon to settle (a lost control
 * connection does not stop a migration the daemon is running), resumes a VM that libvirt left
 * paused on the source (pre-copy only), and removes a stale incoming copy on the target that
 * libvirt did not clean up, then reports where the VM is in `detail.vmOn`.
 */
import { VIR_MIGRATE } from '../../libvirt/constants.js';
import { DriverError, isDriverError, type DriverErrorCode } from '../errors.js';
import type {
  HostInfo, HostUsage, HypervisorDriver, MigrateOptions, MigrationMode, MigrationProgress, MigrationResult,
  PreflightCheck, VmInfo, VmUsage, VmState,
} from '../hypervisor.js';
import {
  JOB_OPERATION, listenAddressOf, type DomainFacts, type HostBackend, type HostFacts, type JobFacts, type MigrateCall,
} from './backend.js';
import { evaluatePreflight, firstFailure, type PreflightFacts } from './preflight.js';
import { UsageTracker } from './usage.js';
import { localDisks, parseDomainXml, type DomainXmlFacts } from './xml.js';

export interface EngineOptions {
  /** Job-stats polling interval during a migration, ms (default 250). */
  pollMs?: number;
  /** How long to wait for the daemons to settle after a failed migration, ms (default 60 000). */
  settleMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Located {
  backend: HostBackend;
  dom: DomainFacts;
}

interface Gathered {
  checks: PreflightCheck[];
  src: Located | null;
  dst: HostBackend | null;
  xml: DomainXmlFacts | null;
}

function asDriverError(e: unknown, fallback: DriverErrorCode, context: string): DriverError {
  if (isDriverError(e)) return e;
  return new DriverError(fallback, `${context}: ${(e as Error)?.message ?? String(e)}`, undefined, { cause: e });
}

export class HostBackendDriver implements HypervisorDriver {
  private readonly byName = new Map<string, HostBackend>();
  private readonly facts = new Map<string, HostFacts>();
  private readonly usage = new UsageTracker();
  private readonly pollMs: number;
  private readonly settleMs: number;

  constructor(readonly kind: string, readonly backends: readonly HostBackend[], opts: EngineOptions = {}) {
    for (const b of backends) this.byName.set(b.config.name, b);
    this.pollMs = opts.pollMs ?? 250;
    this.settleMs = opts.settleMs ?? 60_000;
  }

  // ------------------------------------------------------------------------------ inventory

  private async hostFacts(b: HostBackend): Promise<HostFacts> {
    await b.ensure();
    const f = await b.hostFacts();
    this.facts.set(b.config.name, f);
    return f;
  }

  async listHosts(): Promise<HostInfo[]> {
    return Promise.all(this.backends.map(async (b): Promise<HostInfo> => {
      try {
        const f = await this.hostFacts(b);
        return { name: b.config.name, uuid: f.uuid, hostname: f.hostname, cpuCores: f.cpuCores, cpuMhz: f.cpuMhz, memMiB: Math.round(f.memKiB / 1024), cpuModel: f.cpuModel, up: true };
      } catch (e) {
        const f = this.facts.get(b.config.name);
        return {
          reason: (e as Error)?.message ?? String(e),
          name: b.config.name, uuid: f?.uuid ?? '', hostname: f?.hostname ?? '', cpuCores: f?.cpuCores ?? 0, cpuMhz: f?.cpuMhz ?? 0,
          memMiB: f ? Math.round(f.memKiB / 1024) : 0, cpuModel: f?.cpuModel ?? '', up: false,
        };
      }
    }));
  }

  /** Domains of every reachable host (unreachable hosts are listed separately). */
  private async allDomains(): Promise<{ per: { backend: HostBackend; doms: DomainFacts[] }[]; unreachable: string[] }> {
    const unreachable: string[] = [];
    const per = (await Promise.all(this.backends.map(async (b) => {
      try {
        await b.ensure();
        return { backend: b, doms: await b.domains() };
      } catch {
        unreachable.push(b.config.name);
        return null;
      }
    }))).filter((x): x is { backend: HostBackend; doms: DomainFacts[] } => x !== null);
    return { per, unreachable };
  }

  /**
   * Picks the owner among the hosts that know a VM: the active copy, and during a migration
   * (active on both) the one whose job is not an incoming migration; if no copy is active,
   * the first persistent definition.
   */
  private async pickOwner(cands: Located[]): Promise<Located | null> {
    const active = cands.filter((c) => c.dom.active);
    if (active.length === 1) return active[0]!;
    if (active.length > 1) {
      for (const c of active) {
        const job = await c.backend.jobStats(c.dom.name).catch(() => null);
        if (job?.fields.operation !== JOB_OPERATION.MIGRATION_IN) return c;
      }
      return active[0]!;
    }
    return cands.find((c) => c.dom.persistent) ?? cands[0] ?? null;
  }

  async listVms(): Promise<VmInfo[]> {
    const { per } = await this.allDomains();
    const byVm = new Map<string, Located[]>();
    for (const { backend, doms } of per) {
      for (const dom of doms) {
        const l = byVm.get(dom.name) ?? [];
        l.push({ backend, dom });
        byVm.set(dom.name, l);
      }
    }
    const out: VmInfo[] = [];
    for (const [, cands] of byVm) {
      const owner = cands.length === 1 ? cands[0]! : await this.pickOwner(cands);
      if (!owner) continue;
      const d = owner.dom;
      out.push({ name: d.name, uuid: d.uuid, host: owner.backend.config.name, state: d.state, vcpus: d.vcpus, memMiB: Math.round(d.memKiB / 1024), persistent: d.persistent });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async hostDomains(host: string): Promise<VmInfo[]> {
    const b = this.byName.get(host);
    if (!b) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${host}'`, { host });
    let doms: DomainFacts[];
    try {
      await b.ensure();
      doms = await b.domains();
    } catch (e) {
      throw new DriverError('TIDE_HOST_UNREACHABLE', `${host} does not answer: ${(e as Error)?.message ?? String(e)}`, { host }, { cause: e });
    }
    return doms.map((d) => ({ name: d.name, uuid: d.uuid, host, state: d.state, vcpus: d.vcpus, memMiB: Math.round(d.memKiB / 1024), persistent: d.persistent }))
      .sort((a, b2) => a.name.localeCompare(b2.name));
  }

  /** Where `vm` is, and which hosts could not be asked. */
  private async locate(vm: string): Promise<{ found: Located | null; unreachable: string[] }> {
    const unreachable: string[] = [];
    const cands = (await Promise.all(this.backends.map(async (b) => {
      try {
        await b.ensure();
        const dom = await b.domain(vm);
        return dom ? { backend: b, dom } : null;
      } catch (e) {
        if (isDriverError(e) && e.code === 'TIDE_NO_SUCH_VM') return null;
        unreachable.push(b.config.name);
        return null;
      }
    }))).filter((x): x is Located => x !== null);
    return { found: await this.pickOwner(cands), unreachable };
  }

  private async owner(vm: string): Promise<Located> {
    const { found, unreachable } = await this.locate(vm);
    if (!found) {
      throw new DriverError('TIDE_NO_SUCH_VM', `no VM named '${vm}'${unreachable.length ? ` on the reachable hosts (unreachable: ${unreachable.join(', ')})` : ''}`, { vm, unreachable });
    }
    return found;
  }

  async sample(): Promise<{ hosts: HostUsage[]; vms: VmUsage[] }> {
    const hosts: HostUsage[] = [];
    const vms: VmUsage[] = [];
    const results = await Promise.all(this.backends.map(async (b) => {
      try {
        await b.ensure();
        return { b, c: await b.counters() };
      } catch {
        this.usage.forgetHost(b.config.name);
        return null;
      }
    }));
    for (const r of results) {
      if (!r) continue;
      const u = this.usage.update(r.b.config.name, r.c);
      hosts.push(u.host);
      vms.push(...u.vms);
    }
    return { hosts, vms };
  }

  // ------------------------------------------------------------------------------ preflight

  async preflight(vm: string, to: string, opts: MigrateOptions): Promise<PreflightCheck[]> {
    return (await this.gather(vm, to, opts)).checks;
  }

  private async gather(vm: string, to: string, opts: MigrateOptions): Promise<Gathered> {
    const dstBackend = this.byName.get(to) ?? null;
    const [{ found, unreachable }, target] = await Promise.all([
      this.locate(vm),
      (async (): Promise<PreflightFacts['target']> => {
        if (!dstBackend) return null;
        try {
          const [f, mem, doms] = await Promise.all([this.hostFacts(dstBackend), dstBackend.memory(), dstBackend.domains()]);
          return {
            reachable: true,
            uuid: f.uuid,
            memTotalKiB: mem.totalKiB,
            memAvailableKiB: mem.availableKiB,
            committedKiB: doms.filter((d) => d.active && d.name !== vm).reduce((s, d) => s + d.memKiB, 0),
            domains: doms.map((d) => ({ name: d.name, uuid: d.uuid, active: d.active })),
          };
        } catch (e) {
          return { reachable: false, reason: (e as Error).message, uuid: null, memTotalKiB: 0, memAvailableKiB: 0, committedKiB: 0, domains: [] };
        }
      })(),
    ]);
    let xml: DomainXmlFacts | null = null;
    let jobActive = false;
    let cpu: PreflightFacts['cpu'] = null;
    let srcUuid: string | null = null;
    if (found) {
      const b = found.backend;
      const [x, job, f] = await Promise.all([
        b.domainXml(vm).then(parseDomainXml).catch(() => null),
        found.dom.active ? b.jobStats(vm).catch(() => null) : Promise.resolve(null),
        this.hostFacts(b).catch(() => null),
      ]);
      xml = x;
      jobActive = job !== null && (job.type === 1 || job.type === 2);
      srcUuid = f?.uuid ?? null;
      if (xml && dstBackend && target?.reachable && to !== b.config.name) cpu = await this.compareCpu(xml, b, dstBackend);
    }
    const facts: PreflightFacts = {
      vm,
      to,
      mode: opts.mode,
      source: found ? { name: found.backend.config.name, uuid: srcUuid } : null,
      unreachable,
      dom: found ? { state: found.dom.state, active: found.dom.active, persistent: found.dom.persistent, memKiB: found.dom.memKiB, uuid: found.dom.uuid, jobActive } : null,
      targetKnown: dstBackend !== null,
      target,
      cpu,
      localDisks: xml ? localDisks(xml) : null,
    };
    return { checks: evaluatePreflight(facts, opts), src: found, dst: dstBackend, xml };
  }

  private async compareCpu(xml: DomainXmlFacts, src: HostBackend, dst: HostBackend): Promise<PreflightFacts['cpu']> {
    const mode = xml.cpu.mode;
    if (mode === 'host-passthrough' || mode === 'maximum') {
      const [a, b] = [this.facts.get(src.config.name), this.facts.get(dst.config.name)];
      if (!a || !b) return { result: 'unknown', reason: 'host CPU models unknown' };
      return a.cpuModel === b.cpuModel && a.arch === b.arch
        ? { result: 'compatible', reason: `${mode}: both hosts have a ${a.cpuModel} CPU` }
        : { result: 'incompatible', reason: `${mode} needs identical host CPUs: ${src.config.name} has ${a.cpuModel}, ${dst.config.name} has ${b.cpuModel}` };
    }
    if (xml.cpu.xml === null) return { result: 'compatible', reason: 'default CPU model' };
    try {
      return await dst.compareCpu(xml.cpu.xml, { virttype: xml.type, arch: xml.arch, machine: xml.machine });
    } catch (e) {
      return { result: 'unknown', reason: (e as Error).message };
    }
  }

  // ------------------------------------------------------------------------------ migration

  async migrate(vm: string, to: string, opts: MigrateOptions, signal?: AbortSignal): Promise<MigrationResult> {
    const t0 = performance.now();
    if (signal?.aborted) throw new DriverError('TIDE_ABORTED', `migration of ${vm} aborted before it started`, { vm });
    const g = await this.gather(vm, to, opts);
    const bad = firstFailure(g.checks);
    if (bad || !g.src || !g.dst) {
      const failed = g.checks.filter((c) => !c.ok && !c.reason.startsWith('not checked'));
      const code: DriverErrorCode = (bad?.code as DriverErrorCode | undefined) ?? 'TIDE_PREFLIGHT_FAILED';
      throw new DriverError(code,
        `cannot migrate ${vm} to ${to}: ${failed.map((c) => `${c.check}: ${c.reason}`).join('; ') || 'pre-flight failed'}`,
        { vm, to, checks: g.checks });
    }
    if (signal?.aborted) throw new DriverError('TIDE_ABORTED', `migration of ${vm} aborted before it started`, { vm });
    const ctx: RunContext = { vm, to, opts, signal, t0, src: g.src, dst: g.dst, checks: g.checks };
    switch (opts.mode) {
      case 'live': return this.runMigration(ctx, 'live');
      case 'suspend': return this.runMigration(ctx, 'suspend');
      case 'offline': return this.runOffline(ctx);
      default: throw new DriverError('TIDE_INVALID_ARGUMENT', `unknown migration mode '${String(opts.mode)}'`);
    }
  }

  private migrateCall(ctx: RunContext, mode: MigrationMode): MigrateCall {
    const o = ctx.opts;
    const dest = ctx.dst.config;
    let flags = VIR_MIGRATE.PEER2PEER | VIR_MIGRATE.ABORT_ON_ERROR;
    if (ctx.src.dom.persistent) flags |= VIR_MIGRATE.PERSIST_DEST | VIR_MIGRATE.UNDEFINE_SOURCE;
    if (mode === 'live') flags |= VIR_MIGRATE.LIVE;
    if (mode === 'suspend') flags |= VIR_MIGRATE.PAUSED;
    if (mode === 'live' && o.autoConverge) flags |= VIR_MIGRATE.AUTO_CONVERGE;
    if (mode === 'live' && (o.postCopyAfterIterations ?? 0) > 0) flags |= VIR_MIGRATE.POSTCOPY;
    if (o.copyStorage) flags |= VIR_MIGRATE.NON_SHARED_DISK;
    if (o.unsafe) flags |= VIR_MIGRATE.UNSAFE;
    const params: MigrateCall['params'] = {};
    if (dest.migrationAddress) params.migrate_uri = dest.migrationAddress;
    const listen = listenAddressOf(dest.migrationAddress);
    if (listen) params.listen_address = listen;
    if (o.bandwidthMiBps !== undefined) {
      params.bandwidth = Math.max(1, Math.round(o.bandwidthMiBps));
      if (flags & VIR_MIGRATE.POSTCOPY) params['bandwidth.postcopy'] = params.bandwidth;
    }
    return { dest, flags, params };
  }

  /** Live and suspend modes: one P2P migration with progress, post-copy switch and abort. */
  private async runMigration(ctx: RunContext, mode: 'live' | 'suspend'): Promise<MigrationResult> {
    const { vm, opts, src, dst } = ctx;
    const from = src.backend.config.name;
    const wasState = src.dom.state;
    const postCopyAfter = mode === 'live' ? opts.postCopyAfterIterations ?? 0 : 0;
    const st = new MigrationState(vm, ctx.t0, opts.onProgress);
    let pausedAt: number | null = null;
    if (mode === 'suspend' && wasState === 'running') {
      pausedAt = performance.now();
      try {
        await src.backend.suspend(vm);
      } catch (e) {
        throw asDriverError(e, 'TIDE_MIGRATION_FAILED', `suspending ${vm} on ${from}`);
      }
    }
    const startPostCopy = (): void => {
      if (postCopyAfter <= 0 || st.postCopyRequested || st.settled) return;
      if (st.iteration <= postCopyAfter) return;
      st.postCopyRequested = true;
      src.backend.startPostCopy(vm).then(() => {
        st.postCopy = true;
        st.phase = 'postcopy';
        st.emit();
      }, (e: unknown) => {
        st.postCopyRequested = false; // not yet possible (still setting up): retried on the next pass
        st.notes.push(`post-copy switch refused: ${(e as Error).message}`);
      });
    };
    let unwatch: (() => Promise<void>) | null = null;
    if (src.backend.watchMigration) {
      unwatch = await src.backend.watchMigration(vm, {
        iteration: (n) => {
          st.iteration = Math.max(st.iteration, n);
          if (!st.postCopy && st.phase === 'preparing') st.phase = 'precopy';
          st.emit();
          startPostCopy();
        },
        completed: (job) => { st.completedJob = job; },
      }).catch(() => null);
    }
    const call = this.migrateCall(ctx, mode);
    st.emit();
    const migration = src.backend.migrate(vm, call);
    migration.catch(() => { /* handled below */ });

    // abort / timeout → abortJob on the source (the RPC itself cannot be cancelled usefully)
    const abortLoop = async (): Promise<void> => {
      while (!st.settled) {
        if (st.postCopy) {
          st.notes.push('abort refused: the migration is in post-copy (the VM already runs on the target)');
          return;
        }
        try {
          await src.backend.abortJob(vm);
          return;
        } catch {
          await sleep(200); // no job yet (still starting): try again
        }
      }
    };
    const requestAbort = (why: 'aborted' | 'timeout'): void => {
      if (st.abortReason || st.settled) return;
      st.abortReason = why;
      void abortLoop();
    };
    const onAbort = (): void => requestAbort('aborted');
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
    if (ctx.signal?.aborted) requestAbort('aborted');
    const timer = opts.timeoutSec !== undefined ? setTimeout(() => requestAbort('timeout'), opts.timeoutSec * 1000) : null;

    // progress from job stats (and post-copy / max downtime once the job runs)
    let downtimeSet = opts.maxDowntimeMs === undefined || mode !== 'live';
    const poll = (async (): Promise<void> => {
      while (!st.settled) {
        await st.wait(this.pollMs);
        if (st.settled) return;
        const job = await src.backend.jobStats(vm).catch(() => null);
        if (st.settled || !job || job.type === 0) continue;
        if (!downtimeSet) {
          downtimeSet = true;
          src.backend.setMaxDowntime(vm, opts.maxDowntimeMs!).catch((e: unknown) => st.notes.push(`max downtime not set: ${(e as Error).message}`));
        }
        st.update(job);
        startPostCopy();
        st.emit();
      }
    })();

    let failure: unknown = null;
    try {
      await migration;
    } catch (e) {
      failure = e;
    } finally {
      st.settle();
      ctx.signal?.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      await poll;
    }
    try {
      if (failure !== null) {
        const where = await this.recover(ctx, wasState, st.postCopy);
        if (where !== 'target') {
          const de = asDriverError(failure, 'TIDE_MIGRATION_FAILED', `migrating ${vm}`);
          const code: DriverErrorCode = st.abortReason === 'aborted' ? 'TIDE_ABORTED'
            : st.abortReason === 'timeout' ? 'TIDE_TIMEOUT'
              : de.code === 'TIDE_NO_SUCH_VM' || de.code === 'TIDE_VM_STATE' || de.code === 'TIDE_PREFLIGHT_FAILED' || de.code === 'TIDE_UNSUPPORTED' ? de.code : 'TIDE_MIGRATION_FAILED';
          const why = st.abortReason === 'aborted' ? 'aborted' : st.abortReason === 'timeout' ? `timed out after ${opts.timeoutSec} s` : de.message;
          throw new DriverError(code, `migration of ${vm} from ${from} to ${ctx.to} failed: ${why}; ${describeWhere(where, vm, from, ctx.to)}`,
            { ...de.detail, vm, from, to: ctx.to, vmOn: where === 'source' ? from : null, notes: st.notes }, { cause: failure });
        }
        st.notes.push(`the migration call failed (${(failure as Error).message}) but ${vm} completed on ${ctx.to}`);
      }
      await this.verify(ctx, mode === 'suspend' ? 'running' : wasState);
      let downtimeMs: number | null;
      if (mode === 'suspend') {
        if (wasState === 'running') {
          try {
            await dst.resume(vm);
          } catch (e) {
            throw asDriverError(e, 'TIDE_MIGRATION_FAILED', `${vm} moved to ${ctx.to} but could not be resumed there`);
          }
        }
        downtimeMs = pausedAt === null ? null : Math.round(performance.now() - pausedAt);
      } else downtimeMs = null;
      const job = await this.completedJob(st, dst, src.backend, vm);
      const totalMs = Math.round(performance.now() - ctx.t0);
      return {
        vm, from, to: ctx.to, mode, totalMs,
        downtimeMs: downtimeMs ?? job?.fields.downtime ?? null,
        bytes: job?.fields.data_processed ?? null,
        iterations: job?.fields.memory_iteration ?? (st.iteration || null),
        postCopy: st.postCopy,
      };
    } finally {
      if (unwatch) await unwatch().catch(() => { /* connection gone */ });
    }
  }

  /** Final job statistics: the job-completed event, else the target's completed job. */
  private async completedJob(st: MigrationState, dst: HostBackend, src: HostBackend, vm: string): Promise<JobFacts | null> {
    for (let i = 0; i < 4 && !st.completedJob && src.watchMigration; i++) await sleep(50);
    if (st.completedJob) return st.completedJob;
    return (await dst.jobStats(vm, true).catch(() => null)) ?? null;
  }

  /** Succeeds once `vm` is active on the target and not on the source (retries for 10 s). */
  private async verify(ctx: RunContext, expect: VmState | 'shutoff-defined'): Promise<void> {
    const { vm, src, dst } = ctx;
    const end = performance.now() + 10_000;
    let last = '';
    for (;;) {
      const [d, s] = await Promise.all([
        dst.domain(vm).catch((e: unknown) => { last = (e as Error).message; return undefined; }),
        src.backend.domain(vm).catch(() => null),
      ]);
      const onTarget = expect === 'shutoff-defined' ? d?.persistent === true && !d.active : d?.active === true;
      const offSource = !s || (!s.active && (expect !== 'shutoff-defined' || !s.persistent));
      if (onTarget && offSource) return;
      last = `target: ${d === undefined ? `unknown (${last})` : d === null ? 'no such VM' : d.state}, source: ${s ? s.state : 'gone'}`;
      if (performance.now() > end) {
        throw new DriverError('TIDE_MIGRATION_FAILED', `libvirt reported ${vm} migrated, but verification failed (${last})`, { vm, from: src.backend.config.name, to: ctx.to });
      }
      await sleep(250);
    }
  }

  /**
   * After a failed migration: waits until no job runs on the source any more (the daemon may
   * still be migrating when only our connection broke), resumes a VM left paused, removes a
   * stale paused incoming copy on the target, and says where the VM is.
   */
  private async recover(ctx: RunContext, wasState: VmState, postCopy: boolean): Promise<'source' | 'target' | 'both' | 'none' | 'unknown'> {
    const { vm, src, dst } = ctx;
    const end = performance.now() + this.settleMs;
    let staleSince: number | null = null;
    for (;;) {
      let s: DomainFacts | null;
      try {
        await src.backend.ensure();
        s = await src.backend.domain(vm);
        const job = s?.active ? await src.backend.jobStats(vm) : null;
        if (job && (job.type === 1 || job.type === 2) && job.fields.operation === JOB_OPERATION.MIGRATION_OUT) {
          if (performance.now() > end) return 'unknown';
          await sleep(500);
          continue;
        }
      } catch {
        if (performance.now() > end) return 'unknown';
        await sleep(500);
        continue;
      }
      const d = await dst.domain(vm).catch(() => null);
      if (s?.active && !d?.active) {
        if (s.state === 'paused' && wasState === 'running' && !postCopy) await src.backend.resume(vm).catch(() => { /* reported by the state */ });
        return 'source';
      }
      if (d?.active && !s?.active) return 'target';
      if (!s?.active && !d?.active) return 'none';
      // Active on both: the target's copy is an incoming domain libvirt has not cleaned up
      // yet (it notices a broken peer only after its keepalive timeout).
      if (s!.state === 'paused' && wasState === 'running' && !postCopy) await src.backend.resume(vm).catch(() => { /* retried */ });
      staleSince ??= performance.now();
      if (!postCopy && d!.state === 'paused' && performance.now() - staleSince > 10_000) {
        await dst.destroy(vm).catch(() => { /* gone meanwhile */ });
      }
      if (performance.now() > end) return 'both';
      await sleep(500);
    }
  }

  private async runOffline(ctx: RunContext): Promise<MigrationResult> {
    const { vm, opts, src, dst } = ctx;
    const from = src.backend.config.name;
    const wasActive = src.dom.active;
    const st = new MigrationState(vm, ctx.t0, opts.onProgress);
    st.emit();
    let downSince: number | null = null;
    if (wasActive) {
      downSince = performance.now();
      await this.shutdownForMove(ctx);
    }
    const abortedNow = (): DriverError | null => ctx.signal?.aborted
      ? new DriverError('TIDE_ABORTED', `offline migration of ${vm} aborted (it stays on ${from}${wasActive ? ', restarted' : ''})`, { vm, vmOn: from })
      : null;
    const restartOnSource = async (): Promise<void> => {
      if (wasActive) await src.backend.start(vm).catch(() => { /* reported by the caller's message */ });
    };
    const aborted = abortedNow();
    if (aborted) {
      await restartOnSource();
      throw aborted;
    }
    const call = this.migrateCall(ctx, 'offline');
    call.flags = VIR_MIGRATE.PEER2PEER | VIR_MIGRATE.OFFLINE | VIR_MIGRATE.PERSIST_DEST | VIR_MIGRATE.UNDEFINE_SOURCE;
    call.params = {};
    try {
      await src.backend.migrate(vm, call);
    } catch (e) {
      await restartOnSource();
      const de = asDriverError(e, 'TIDE_MIGRATION_FAILED', `moving the definition of ${vm}`);
      throw new DriverError('TIDE_MIGRATION_FAILED', `offline migration of ${vm} to ${ctx.to} failed: ${de.message}; ${vm} stays on ${from}${wasActive ? ' (restarted)' : ''}`,
        { ...de.detail, vm, from, to: ctx.to, vmOn: from }, { cause: e });
    }
    if (wasActive) {
      st.phase = 'completing';
      st.emit();
      try {
        await dst.start(vm);
      } catch (e) {
        // move it back where it ran, so it runs somewhere
        let back = false;
        try {
          await dst.migrate(vm, { dest: src.backend.config, flags: call.flags, params: {} });
          await src.backend.start(vm);
          back = true;
        } catch { /* reported */ }
        const de = asDriverError(e, 'TIDE_POWER_FAILED', `starting ${vm} on ${ctx.to}`);
        throw new DriverError('TIDE_MIGRATION_FAILED', `${vm} could not be started on ${ctx.to} (${de.message}); ${back ? `moved back to ${from} and restarted` : `its definition is on ${ctx.to}, shut off`}`,
          { vm, from, to: ctx.to, vmOn: back ? from : null }, { cause: e });
      }
    }
    await this.verify(ctx, wasActive ? 'running' : 'shutoff-defined');
    return {
      vm, from, to: ctx.to, mode: 'offline',
      totalMs: Math.round(performance.now() - ctx.t0),
      downtimeMs: downSince === null ? null : Math.round(performance.now() - downSince),
      bytes: null, iterations: null, postCopy: false,
    };
  }

  /** Offline mode: ACPI shutdown, then wait (or force) until the domain is off. */
  private async shutdownForMove(ctx: RunContext): Promise<void> {
    const { vm, opts, src } = ctx;
    const b = src.backend;
    const limitMs = (opts.shutdownTimeoutSec ?? 120) * 1000;
    if (limitMs > 0) {
      try {
        await b.shutdown(vm);
      } catch (e) {
        if (!opts.forceOff) throw asDriverError(e, 'TIDE_POWER_FAILED', `shutting ${vm} down`);
      }
      const end = performance.now() + limitMs;
      while (performance.now() < end) {
        if (ctx.signal?.aborted) {
          throw new DriverError('TIDE_ABORTED', `offline migration of ${vm} aborted while waiting for the guest to shut down (the shutdown request may still complete)`, { vm });
        }
        const d = await b.domain(vm).catch(() => null);
        if (d && !d.active) return;
        await sleep(250);
      }
    }
    if (!opts.forceOff) {
      throw new DriverError('TIDE_TIMEOUT', `${vm} did not shut down within ${opts.shutdownTimeoutSec ?? 120} s (does the guest handle ACPI?); it keeps running on ${b.config.name}; use forceOff to power it off`, { vm, vmOn: b.config.name });
    }
    await b.destroy(vm).catch((e: unknown) => { if (!(isDriverError(e) && e.code === 'TIDE_VM_STATE')) throw e; });
    const end = performance.now() + 30_000;
    while (performance.now() < end) {
      const d = await b.domain(vm).catch(() => null);
      if (d && !d.active) return;
      await sleep(100);
    }
    throw new DriverError('TIDE_POWER_FAILED', `${vm} did not power off`, { vm });
  }

  // ------------------------------------------------------------------------------ lifecycle

  async start(vm: string): Promise<void> {
    const { found } = await this.locate(vm);
    const all = await Promise.all(this.backends.map(async (b) => ({ b, d: await b.domain(vm).catch(() => null) })));
    const defs = all.filter((x) => x.d !== null);
    if (!found || defs.length === 0) throw new DriverError('TIDE_NO_SUCH_VM', `no VM named '${vm}'`, { vm });
    const running = defs.find((x) => x.d!.active);
    if (running) throw new DriverError('TIDE_VM_STATE', `${vm} is already ${running.d!.state} on ${running.b.config.name}`, { vm });
    if (defs.length > 1) throw new DriverError('TIDE_INVALID_ARGUMENT', `${vm} is defined on several hosts (${defs.map((x) => x.b.config.name).join(', ')})`, { vm });
    await defs[0]!.b.start(vm);
  }

  async stop(vm: string, opts: { force?: boolean } = {}): Promise<void> {
    const { backend, dom } = await this.owner(vm);
    if (!dom.active) throw new DriverError('TIDE_VM_STATE', `${vm} is not running (${dom.state})`, { vm });
    if (!opts.force) {
      await backend.shutdown(vm);
      return;
    }
    await backend.destroy(vm);
    const end = performance.now() + 30_000;
    while (performance.now() < end) {
      const d = await backend.domain(vm).catch(() => null);
      if (!d?.active) return;
      await sleep(100);
    }
    throw new DriverError('TIDE_POWER_FAILED', `${vm} did not power off`, { vm });
  }

  async suspend(vm: string): Promise<void> {
    const { backend, dom } = await this.owner(vm);
    if (dom.state !== 'running') throw new DriverError('TIDE_VM_STATE', `cannot suspend ${vm}: it is ${dom.state}`, { vm });
    await backend.suspend(vm);
  }

  async resume(vm: string): Promise<void> {
    const { backend, dom } = await this.owner(vm);
    if (dom.state !== 'paused') throw new DriverError('TIDE_VM_STATE', `cannot resume ${vm}: it is ${dom.state}`, { vm });
    await backend.resume(vm);
  }

  async close(): Promise<void> {
    await Promise.all(this.backends.map((b) => b.close().catch(() => { /* closing anyway */ })));
  }
}

interface RunContext {
  vm: string;
  to: string;
  opts: MigrateOptions;
  signal: AbortSignal | undefined;
  t0: number;
  src: Located;
  dst: HostBackend;
  checks: PreflightCheck[];
}

function describeWhere(where: string, vm: string, from: string, to: string): string {
  switch (where) {
    case 'source': return `${vm} keeps running on ${from}`;
    case 'target': return `${vm} runs on ${to}`;
    case 'both': return `${vm} is active on both ${from} and ${to} (check manually)`;
    case 'none': return `${vm} is not running on ${from} or ${to}`;
    default: return `${from} did not answer; where ${vm} runs is unknown`;
  }
}

/** Mutable state of one running migration, and its progress reports. */
class MigrationState {
  phase: MigrationProgress['phase'] = 'preparing';
  iteration = 0;
  total = 0;
  processed = 0;
  remaining = 0;
  postCopy = false;
  postCopyRequested = false;
  settled = false;
  abortReason: 'aborted' | 'timeout' | null = null;
  completedJob: JobFacts | null = null;
  readonly notes: string[] = [];
  private wake: (() => void) | null = null;

  constructor(readonly vm: string, readonly t0: number, readonly onProgress?: (p: MigrationProgress) => void) {}

  update(job: JobFacts): void {
    const f = job.fields;
    if (f.data_total !== undefined) this.total = f.data_total;
    if (f.data_processed !== undefined) this.processed = f.data_processed;
    if (f.data_remaining !== undefined) this.remaining = f.data_remaining;
    if (f.memory_iteration !== undefined) this.iteration = Math.max(this.iteration, f.memory_iteration);
    if (this.postCopy) this.phase = 'postcopy';
    else if (this.total > 0 && this.remaining === 0 && this.processed > 0) this.phase = 'completing';
    else if (this.total > 0 || this.iteration > 0) this.phase = 'precopy';
  }

  emit(): void {
    if (!this.onProgress || this.settled) return;
    try {
      this.onProgress({
        vm: this.vm, phase: this.phase, iteration: this.iteration, dataTotalBytes: this.total, dataProcessedBytes: this.processed,
        dataRemainingBytes: this.remaining, elapsedMs: Math.round(performance.now() - this.t0),
      });
    } catch { /* a progress callback must not break the migration */ }
  }

  /** Sleeps `ms`, or less once the migration settled. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wake = null; resolve(); }, ms);
      this.wake = () => { clearTimeout(t); resolve(); };
    });
  }

  settle(): void {
    this.settled = true;
    this.wake?.();
  }
}
