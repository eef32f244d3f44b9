/**
 * HostBackendDriver: the HypervisorDriver contract implemented once over per-host backends
 * (backend.ts), shared by the libvirt (RPC) and virsh drivers. The engine is in parts:
 *   inventory.ts  hosts, domains, where a VM is
 *   gather.ts     pre-flight facts (judged by preflight.ts)
 *   live.ts       live and suspend moves (one managed P2P migration)
 *   offline.ts    offline moves (shut down, move the definition, start)
 *   recovery.ts   after a failure: the decision table, and reconcile
 * Every wait and deadline runs on an injected Clock (EngineOptions.clock), so recovery runs on
 * virtual time against a scriptable backend in tests. Migration is managed peer-to-peer: the
 * source daemon connects to the target's `peerUri` itself and QEMU streams to the target's
 * `migrationAddress`. Persistent VMs are made persistent on the target and undefined on the
 * source; transient ones stay transient.
 *
 * Afterwards the VM must be active on the target and not on the source, or migrate() fails.
 * After a failure, recovery waits for the jobs to settle (a lost control connection does not
 * stop a migration the daemon is running) and never lets the VM run twice: a paused source is
 * resumed only when the target answered without a running copy; when the target cannot be
 * asked the source stays paused and migrate() rejects with TIDE_MIGRATION_UNKNOWN, which
 * `reconcile` finishes later. `detail.vmOn` says where the VM is (null: not known / not one host).
 */
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../executor/clock.js';
import { DriverError, type DriverErrorCode } from '../errors.js';
import type { HostBackend } from './backend.js';
import type {
  HostInfo, HostUsage, HypervisorDriver, MigrateOptions, MigrationResult, PreflightCheck, VmInfo, VmState, VmUsage,
} from '../hypervisor.js';
import { gather } from './gather.js';
import { Inventory } from './inventory.js';
import { runMigration, type PendingMigrations } from './live.js';
import { runOffline } from './offline.js';
import { firstFailure } from './preflight.js';
import { recoverMigration, type ReconcileResult } from './recovery.js';
import type { EngineEnv, RunContext } from './run.js';
import { UsageTracker } from './usage.js';

export interface EngineOptions {
  /** Job-stats polling interval during a migration, ms (default 250). */
  pollMs?: number;
  /** How long to wait for the daemons to settle after a failed migration, ms (default 60 000). */
  settleMs?: number;
  /** Time for every wait and deadline (default: wall clock). Durations are still measured. */
  clock?: Clock;
}

export class HostBackendDriver implements HypervisorDriver {
  private readonly inv: Inventory;
  private readonly usage = new UsageTracker();
  private readonly env: EngineEnv;
  /** Migrations that ended with TIDE_MIGRATION_UNKNOWN, until reconcile settles them. */
  private readonly pending: PendingMigrations = new Map();

  constructor(readonly kind: string, readonly backends: readonly HostBackend[], opts: EngineOptions = {}) {
    this.inv = new Inventory(backends);
    this.env = { clock: opts.clock ?? systemClock, pollMs: opts.pollMs ?? 250, settleMs: opts.settleMs ?? 60_000, recoverPollMs: 500 };
  }

  // ------------------------------------------------------------------------------ inventory

  listHosts(): Promise<HostInfo[]> {
    return this.inv.listHosts();
  }

  listVms(): Promise<VmInfo[]> {
    return this.inv.listVms();
  }

  hostDomains(host: string): Promise<VmInfo[]> {
    return this.inv.hostDomains(host);
  }

  private locate(vm: string): ReturnType<Inventory['locate']> {
    return this.inv.locate(vm);
  }

  private owner(vm: string): ReturnType<Inventory['owner']> {
    return this.inv.owner(vm);
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
    return (await gather(this.inv, vm, to, opts)).checks;
  }

  // ------------------------------------------------------------------------------ migration

  async migrate(vm: string, to: string, opts: MigrateOptions, signal?: AbortSignal): Promise<MigrationResult> {
    const t0 = performance.now();
    if (signal?.aborted) throw new DriverError('TIDE_ABORTED', `migration of ${vm} aborted before it started`, { vm });
    const g = await gather(this.inv, vm, to, opts);
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
      case 'live': return runMigration(this.env, ctx, 'live', this.pending);
      case 'suspend': return runMigration(this.env, ctx, 'suspend', this.pending);
      case 'offline': return runOffline(this.env, ctx);
      default: throw new DriverError('TIDE_INVALID_ARGUMENT', `unknown migration mode '${String(opts.mode)}'`);
    }
  }

  /**
   * Finishes a migration that ended with TIDE_MIGRATION_UNKNOWN (or checks any VM between two
   * hosts) by the same decision table as recovery: one look at both hosts (jobs may settle for
   * `settleMs`, default 0), then at most the actions the table allows. `from`/`to` default to
   * the recorded migration; without a record the VM's state before it is unknown, so a paused
   * source is resumed only when libvirt paused it for the migration.
   */
  async reconcile(vm: string, o: { from?: string; to?: string; settleMs?: number; wasState?: VmState | null } = {}): Promise<ReconcileResult> {
    const rec = this.pending.get(vm);
    const from = o.from ?? rec?.from;
    const to = o.to ?? rec?.to;
    if (!from || !to) {
      throw new DriverError('TIDE_INVALID_ARGUMENT', `no unknown migration of ${vm} is recorded: name its source and target`, { vm });
    }
    const src = this.inv.byName.get(from);
    const dst = this.inv.byName.get(to);
    if (!src || !dst) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${!src ? from : to}'`, { vm, from, to });
    const same = rec && rec.from === from && rec.to === to;
    const r = await recoverMigration({
      vm, src, dst, wasState: same ? rec.wasState : o.wasState ?? null, postCopy: same ? rec.postCopy : false, switchOver: same ? rec.switchOver : false,
      clock: this.env.clock, settleMs: o.settleMs ?? 0, pollMs: this.env.recoverPollMs,
    });
    if (r.outcome !== 'unknown' && same) this.pending.delete(vm);
    return {
      vm, from, to, outcome: r.outcome, actions: r.actions, reason: r.reason,
      vmOn: r.outcome === 'source' ? from : r.outcome === 'target' ? to : null,
    };
  }

  // ------------------------------------------------------------------------------ lifecycle

  async start(vm: string): Promise<void> {
    const { found, unreachable } = await this.locate(vm);
    // a host that does not answer may run it: starting a second copy is never an option
    if (unreachable.length) throw new DriverError('TIDE_HOST_UNREACHABLE', `cannot start ${vm}: ${unreachable.join(', ')} did not answer and may run it`, { vm, unreachable });
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
    const end = this.env.clock.now() + 30_000;
    while (this.env.clock.now() < end) {
      const d = await backend.domain(vm).catch(() => null);
      if (!d?.active) return;
      await this.env.clock.sleep(100);
    }
    throw new DriverError('TIDE_POWER_FAILED', `${vm} did not power off`, { vm });
  }

  async suspend(vm: string): Promise<void> {
    const { backend, dom } = await this.owner(vm);
    if (dom.state !== 'running') throw new DriverError('TIDE_VM_STATE', `cannot suspend ${vm}: it is ${dom.state}`, { vm });
    await backend.suspend(vm);
  }

  async resume(vm: string): Promise<void> {
    const rec = this.pending.get(vm);
    if (rec) {
      throw new DriverError('TIDE_MIGRATION_UNKNOWN', `will not resume ${vm}: its migration from ${rec.from} to ${rec.to} has an unknown outcome (it may run on ${rec.to}); reconcile it first`, { vm, from: rec.from, to: rec.to, vmOn: null });
    }
    const { found, unreachable, active } = await this.inv.locate(vm);
    if (active.length > 1) throw new DriverError('TIDE_VM_STATE', `will not resume ${vm}: it is active on ${active.map((c) => c.backend.config.name).join(' and ')}`, { vm });
    if (!found) throw new DriverError('TIDE_NO_SUCH_VM', `no VM named '${vm}'`, { vm, unreachable });
    if (unreachable.length && found.dom.state === 'paused') {
      throw new DriverError('TIDE_HOST_UNREACHABLE', `will not resume ${vm}: ${unreachable.join(', ')} did not answer and may run it`, { vm, unreachable });
    }
    const { backend, dom } = found;
    if (dom.state !== 'paused') throw new DriverError('TIDE_VM_STATE', `cannot resume ${vm}: it is ${dom.state}`, { vm });
    await backend.resume(vm);
  }

  async close(): Promise<void> {
    await Promise.all(this.backends.map((b) => b.close().catch(() => { /* closing anyway */ })));
  }
}
