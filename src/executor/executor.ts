/**
 * The executor carries a plan out: a small state machine per step
 * (pending → running → succeeded | failed | skipped | cancelled), dependencies honoured, limits
 * on migrations in flight (globally and per host, as source or target), and abort. A step
 * whose dependency did not succeed is skipped, so a host is powered off only when every
 * evacuation it depends on succeeded (the plan's powerOff steps depend on them).
 */
import type { Clock } from '../core/clock.js';
import type { Plan, Step } from '../core/plan/types.js';
import { DriverError } from '../drivers/errors.js';
import type { HypervisorDriver, MigrateOptions, MigrationProgress, MigrationResult } from '../drivers/hypervisor.js';
import type { PowerDriver } from '../drivers/power.js';

export type StepState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

export interface StepRun {
  readonly step: Step;
  state: StepState;
  startedAt?: number;
  endedAt?: number;
  error?: { code: string; message: string };
  result?: MigrationResult;
}

export interface ExecutorLimits {
  /** Migrations in flight at once, cluster-wide. */
  readonly maxConcurrent: number;
  /** Migrations in flight touching one host (as source or target). */
  readonly maxPerHost: number;
}

export interface ExecutorObserver {
  onStepStart?(run: StepRun): void;
  onStepEnd?(run: StepRun): void;
  onProgress?(run: StepRun, p: MigrationProgress): void;
}

export interface ExecutorDeps {
  readonly hypervisor: HypervisorDriver;
  readonly power?: PowerDriver;
  readonly clock: Clock;
  readonly limits: ExecutorLimits;
  /** Migration settings for every migrate step (mode, bandwidth, timeout, …). */
  readonly migrate: Omit<MigrateOptions, 'onProgress'>;
  /** How long a woken host may take until its hypervisor answers, s. */
  readonly bootTimeoutSec?: number;
  readonly observer?: ExecutorObserver;
}

export interface PlanRun {
  readonly steps: StepRun[];
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  readonly cancelled: number;
}

export async function runPlan(plan: Plan, deps: ExecutorDeps, signal?: AbortSignal): Promise<PlanRun> {
  const runs = new Map<number, StepRun>(plan.steps.map((s) => [s.id, { step: s, state: 'pending' }]));
  const inFlight = new Map<number, Promise<void>>();
  const perHost = new Map<string, number>();
  let migrating = 0;
  const hostsOf = (s: Step): string[] => (s.kind === 'migrate' ? [s.from, s.to] : s.kind === 'place' ? [s.to] : [s.host]);

  const finish = (run: StepRun, state: StepState, error?: unknown): void => {
    run.state = state;
    run.endedAt = deps.clock.now();
    if (error !== undefined) {
      const e = error as { code?: string; message?: string };
      run.error = { code: typeof e.code === 'string' ? e.code : 'TIDE_INTERNAL', message: e.message ?? String(error) };
    }
    deps.observer?.onStepEnd?.(run);
  };

  const execute = async (run: StepRun): Promise<void> => {
    const s = run.step;
    if (s.kind === 'migrate') {
      run.result = await deps.hypervisor.migrate(s.vm, s.to, { ...deps.migrate, onProgress: (p) => deps.observer?.onProgress?.(run, p) }, signal);
    } else if (s.kind === 'place') {
      throw new DriverError('TIDE_UNSUPPORTED', `placing new VM ${s.vm} is not supported by the executor yet`);
    } else if (s.kind === 'powerOn') {
      if (!deps.power) throw new DriverError('TIDE_UNSUPPORTED', `no power driver configured to wake ${s.host}`);
      await deps.power.powerOn(s.host);
      const deadline = deps.clock.now() + (deps.bootTimeoutSec ?? 600) * 1000;
      for (;;) {
        const hosts = await deps.hypervisor.listHosts();
        if (hosts.find((h) => h.name === s.host)?.up) break;
        if (deps.clock.now() >= deadline) throw new DriverError('TIDE_TIMEOUT', `${s.host} did not come up within ${deps.bootTimeoutSec ?? 600} s of power-on`);
        await deps.clock.sleep(5000, signal);
      }
    } else {
      if (!deps.power) throw new DriverError('TIDE_UNSUPPORTED', `no power driver configured to power off ${s.host}`);
      const vms = (await deps.hypervisor.listVms()).filter((v) => v.host === s.host);
      if (vms.length > 0) throw new DriverError('TIDE_POWER_FAILED', `not powering off ${s.host}: it still runs ${vms.map((v) => v.name).join(', ')}`);
      await deps.power.powerOff(s.host);
    }
  };

  const start = (run: StepRun): void => {
    run.state = 'running';
    run.startedAt = deps.clock.now();
    const isMigration = run.step.kind === 'migrate' || run.step.kind === 'place';
    if (isMigration) {
      migrating++;
      for (const h of hostsOf(run.step)) perHost.set(h, (perHost.get(h) ?? 0) + 1);
    }
    deps.observer?.onStepStart?.(run);
    const p = execute(run).then(
      () => finish(run, 'succeeded'),
      (e) => finish(run, signal?.aborted ? 'cancelled' : 'failed', e),
    ).finally(() => {
      if (isMigration) {
        migrating--;
        for (const h of hostsOf(run.step)) perHost.set(h, perHost.get(h)! - 1);
      }
      inFlight.delete(run.step.id);
    });
    inFlight.set(run.step.id, p);
  };

  for (;;) {
    for (const run of runs.values()) {
      if (run.state !== 'pending') continue;
      if (signal?.aborted) {
        finish(run, 'cancelled', new DriverError('TIDE_ABORTED', 'plan aborted before this step started'));
        continue;
      }
      const deps_ = run.step.deps.map((d) => runs.get(d));
      if (deps_.some((d) => d && (d.state === 'failed' || d.state === 'skipped' || d.state === 'cancelled'))) {
        const bad = deps_.find((d) => d && d.state !== 'succeeded' && d.state !== 'pending' && d.state !== 'running')!;
        finish(run, 'skipped', new DriverError('TIDE_ABORTED', `skipped: step ${bad.step.id} (${bad.step.kind}) ${bad.state}`));
        continue;
      }
      if (!deps_.every((d) => !d || d.state === 'succeeded')) continue;
      const isMigration = run.step.kind === 'migrate' || run.step.kind === 'place';
      if (isMigration) {
        if (migrating >= deps.limits.maxConcurrent) continue;
        if (hostsOf(run.step).some((h) => (perHost.get(h) ?? 0) >= deps.limits.maxPerHost)) continue;
      }
      start(run);
    }
    if (inFlight.size === 0) break;
    await Promise.race(inFlight.values());
  }
  for (const run of runs.values()) {
    if (run.state === 'pending') finish(run, 'skipped', new DriverError('TIDE_ABORTED', 'skipped: its dependencies can never complete'));
  }
  const all = [...runs.values()];
  const count = (st: StepState): number => all.filter((r) => r.state === st).length;
  return { steps: all, succeeded: count('succeeded'), failed: count('failed'), skipped: count('skipped'), cancelled: count('cancelled') };
}
