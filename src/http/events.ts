/**
 * A small in-process event bus: the daemon's observer feeds it (observerFor), the HTTP API's
 * SSE stream (/api/v1/events), metrics and webhooks read it. It also keeps the last round's
 * TickResult, so /hosts and /vms show utilisation "now" without asking the hypervisor again.
 */
import type { TickResult } from '../app/controller.js';
import type { DaemonObserver } from '../daemon/daemon.js';

/** One event as streamed: `type` is the SSE event name; `data` is JSON-safe. */
export interface TideEvent {
  readonly type: 'round' | 'plan' | 'plan-status' | 'step-start' | 'step-end' | 'progress' | 'freeze' | 'round-error' | 'maintenance' | 'policy' | 'rules' | 'migration-abort';
  /** Monotonic id within this process (SSE id). */
  readonly id: number;
  /** Wall or daemon clock, ms. */
  readonly atMs: number;
  readonly data: Record<string, unknown>;
}

export type Listener = (e: TideEvent) => void;

export class EventBus {
  private readonly listeners = new Set<Listener>();
  private seq = 0;
  private tick: TickResult | null = null;

  constructor(private readonly nowMs: () => number = Date.now) {}

  /** Subscribes; returns the unsubscribe function. A listener that throws is dropped. */
  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => void this.listeners.delete(l);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  emit(type: TideEvent['type'], data: Record<string, unknown>, atMs = this.nowMs()): TideEvent {
    const e: TideEvent = { type, id: ++this.seq, atMs, data };
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        this.listeners.delete(l);
      }
    }
    return e;
  }

  /** The last round the daemon finished (null: none yet in this process). */
  lastTick(): TickResult | null {
    return this.tick;
  }

  setLastTick(t: TickResult): void {
    this.tick = t;
  }

  /**
   * A DaemonObserver that feeds this bus; `next` (the daemon's other observer, e.g. I2's
   * metrics) is called as well. Pass it as DaemonDeps.observer.
   */
  observer(next?: DaemonObserver): DaemonObserver {
    return {
      ...next,
      onTick: (t) => {
        this.setLastTick(t);
        this.emit('round', { planId: t.planId, steps: t.plan.steps.length, frozen: t.freeze.frozen, hosts: t.snapshot.hosts.length, vms: t.snapshot.vms.length }, t.at);
        next?.onTick?.(t);
      },
      onPlan: (p, at, id, planMs) => {
        this.emit('plan', { planId: id, steps: p.steps.length, notMoved: p.notMoved.length }, at);
        next?.onPlan?.(p, at, id, planMs);
      },
      onPlanStatus: (planId, status, reason) => {
        this.emit('plan-status', { planId, status, reason });
        next?.onPlanStatus?.(planId, status, reason);
      },
      onStepStart: (r) => {
        this.emit('step-start', { step: r.step.id, kind: r.step.kind, ...stepWhere(r.step) });
        next?.onStepStart?.(r);
      },
      onStepEnd: (r) => {
        this.emit('step-end', { step: r.step.id, kind: r.step.kind, state: r.state, ...stepWhere(r.step), error: r.error ? { code: r.error.code, message: r.error.message } : null });
        next?.onStepEnd?.(r);
      },
      onProgress: (r, p) => {
        // with the step's VM, source and target: a dashboard opened mid-migration can show it
        this.emit('progress', { step: r.step.id, ...stepWhere(r.step), ...progressOf(p) });
        next?.onProgress?.(r, p);
      },
      onFreeze: (f, at) => {
        this.emit('freeze', { frozen: f.frozen, reason: f.reason }, at);
        next?.onFreeze?.(f, at);
      },
      onRoundError: (e, at) => {
        this.emit('round-error', { code: e.code, message: e.message }, at);
        next?.onRoundError?.(e, at);
      },
    };
  }
}

function stepWhere(s: { kind: string } & Partial<Record<'vm' | 'from' | 'to' | 'host', string>>): Record<string, unknown> {
  return { vm: s.vm ?? null, from: s.from ?? null, to: s.to ?? null, host: s.host ?? null };
}

function progressOf(p: unknown): Record<string, unknown> {
  if (p === null || typeof p !== 'object') return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out[k] = v;
  return out;
}
