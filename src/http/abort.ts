/**
 * Aborting a running migration from the API (POST /api/v1/migrations/{vm}/abort; operator).
 *
 * MigrationControl wraps the daemon's hypervisor driver: every migrate() the executor starts
 * goes through it with an AbortSignal of its own, merged with the executor's. abort(vm) aborts
 * that signal, which is the driver's one abort path (the same one a daemon stop takes): the
 * driver cancels the job and the guest keeps running on its source (TIDE_ABORTED); the
 * executor ends the step failed with that code, its dependants (a power-off of the source) are
 * skipped, and the migration history records it (ok false, error TIDE_ABORTED …).
 *
 * It also keeps each running migration's last progress report, for GET /api/v1/migrations.
 */
import type { HypervisorDriver, MigrateOptions, MigrationProgress, MigrationResult } from '../drivers/hypervisor.js';

export interface RunningMigration {
  readonly vm: string;
  readonly to: string;
  readonly mode: string;
  readonly startedMs: number;
  /** 0..100 from the driver's last progress report (null: none yet). */
  readonly progressPct: number | null;
  readonly progress: MigrationProgress | null;
  /** Set once an abort was asked for (who). */
  readonly abortedBy: string | null;
}

interface Entry {
  vm: string;
  to: string;
  mode: string;
  startedMs: number;
  progress: MigrationProgress | null;
  abortedBy: string | null;
  ac: AbortController;
}

export class MigrationControl {
  private readonly running = new Map<string, Entry>();
  private readonly listeners = new Set<(inFlight: number) => void>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  /** `driver` with migrate() going through this control (every other method unchanged). */
  wrap<D extends HypervisorDriver>(driver: D): D {
    return new Proxy(driver, {
      get: (target, prop, receiver) => {
        if (prop === 'migrate') {
          return (vm: string, to: string, opts: MigrateOptions, signal?: AbortSignal): Promise<MigrationResult> => this.migrate(target, vm, to, opts, signal);
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }

  private async migrate(driver: HypervisorDriver, vm: string, to: string, opts: MigrateOptions, signal?: AbortSignal): Promise<MigrationResult> {
    const ac = new AbortController();
    const e: Entry = { vm, to, mode: opts.mode, startedMs: this.nowMs(), progress: null, abortedBy: null, ac };
    const merged = signal ? AbortSignal.any([signal, ac.signal]) : ac.signal;
    this.running.set(vm, e);
    this.changed();
    try {
      return await driver.migrate(vm, to, {
        ...opts,
        onProgress: (p) => {
          e.progress = p;
          opts.onProgress?.(p);
        },
      }, merged);
    } finally {
      if (this.running.get(vm) === e) this.running.delete(vm);
      this.changed();
    }
  }

  private changed(): void {
    for (const l of this.listeners) l(this.running.size);
  }

  /** Called with the number of migrations in flight whenever one starts or ends. */
  onChange(l: (inFlight: number) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get inFlight(): number {
    return this.running.size;
  }

  list(): RunningMigration[] {
    return [...this.running.values()].map((e) => ({
      vm: e.vm, to: e.to, mode: e.mode, startedMs: e.startedMs, progress: e.progress, abortedBy: e.abortedBy,
      progressPct: e.progress && e.progress.dataTotalBytes > 0 ? Math.round((1000 * e.progress.dataProcessedBytes) / e.progress.dataTotalBytes) / 10 : null,
    }));
  }

  /**
   * Asks the driver to abort `vm`'s running migration; false when none runs. The outcome (the
   * guest stays on its source, or the migration completed first) is the executor's to record.
   */
  abort(vm: string, by: string): RunningMigration | null {
    const e = this.running.get(vm);
    if (!e) return null;
    if (e.abortedBy === null) {
      e.abortedBy = by;
      // A plain Error: the driver reports it as its own TIDE_ABORTED ("… keeps running on <source>").
      e.ac.abort(new Error(`aborted through the API by ${by}`));
    }
    return this.list().find((r) => r.vm === vm) ?? null;
  }
}
