/**
 * Webhooks: the daemon's events as signed JSON POSTs (docs/webhooks.md).
 *
 *   const hooks = createWebhooks(webhookTargetsFromConfig(config, configFile, process.env), { clock: systemClock, log, store });
 *   createDaemon({ …, observer: chainObservers(metrics.observer, hooks.observer) });
 *   …; await hooks.close();
 *
 * Each delivery (one event to one URL) is a POST of `{ id, event, atMs, data }` with the headers
 * X-Tide-Event, X-Tide-Delivery (the id: the same on every retry of that delivery, so a receiver
 * can drop duplicates) and X-Tide-Signature: `sha256=<hex HMAC-SHA256 of the raw body with the
 * target's secret>`. A 2xx answer delivers it; 5xx, 429, a timeout or a network error are
 * retried with exponential backoff (baseDelayMs × 2^(attempt-1), capped) up to maxAttempts;
 * other statuses (4xx, 3xx: redirects are not followed) fail at once.
 *
 * Never blocks the daemon: emit() only queues. Each target has its own bounded queue and one
 * delivery in flight (events reach a receiver in order; a slow receiver delays only itself);
 * when a queue is full the oldest queued delivery is dropped with a logged warning. Logs name
 * the URL without its query or user info, never the secret nor the signature.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { TideConfig, WebhookEvent } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import type { Clock } from '../core/clock.js';
import type { DaemonLog, DaemonObserver } from '../daemon/daemon.js';
import type { StepRun } from '../executor/executor.js';
import type { Store } from '../store/store.js';

export { WEBHOOK_EVENTS, type WebhookEvent } from '../config/schema.js';

export interface WebhookTarget {
  readonly url: string;
  /** HMAC-SHA256 key. */
  readonly secret: string;
  /** Events sent to it (absent: all). */
  readonly events?: readonly WebhookEvent[];
  /** Bound on one attempt, ms (default 10 000). */
  readonly timeoutMs?: number;
  /** Attempts per delivery (default 3). */
  readonly maxAttempts?: number;
}

export interface WebhookDelivery {
  readonly id: string;
  readonly event: WebhookEvent;
  /** The target's URL without query or user info. */
  readonly url: string;
  readonly outcome: 'delivered' | 'failed' | 'dropped';
  readonly attempts: number;
  /** The last HTTP status (absent: no answer). */
  readonly status?: number;
  readonly error?: string;
}

export interface WebhooksOptions {
  /** Backoff sleeps and the payload's atMs. */
  readonly clock: Clock;
  readonly log?: DaemonLog;
  /** The daemon's store: tells a plan executed at once (automatic) and finds plans approved by another process. */
  readonly store?: Store | (() => Store | undefined);
  /** First retry delay, ms (default 1000); doubles per attempt. */
  readonly baseDelayMs?: number;
  /** Longest retry delay, ms (default 60 000). */
  readonly maxDelayMs?: number;
  /** Deliveries queued per target before the oldest is dropped (default 1000). */
  readonly queueSize?: number;
  /** The fetch to use (default: node's global fetch, undici). */
  readonly fetch?: typeof fetch;
  /** Each delivery's outcome (metrics, tests). */
  readonly onDelivery?: (d: WebhookDelivery) => void;
}

export interface Webhooks {
  /** Queues the event for every target subscribed to it; never blocks, never throws. */
  emit(event: WebhookEvent, data: Record<string, unknown>): void;
  /** An approval made in this process (the HTTP API): announced at once, and only once per plan. */
  planApproved(planId: number, by: string): void;
  /** Feeds emit() from the daemon's events. */
  readonly observer: DaemonObserver;
  /** Resolves when every queue is empty and no delivery is in flight. */
  idle(): Promise<void>;
  /**
   * Stops: waits up to `flushMs` (wall ms, default 0) for the queues to empty, then aborts
   * in-flight attempts and drops what is still queued (reported as 'dropped').
   */
  close(flushMs?: number): Promise<void>;
  /**
   * New targets from the next emit on (a SIGHUP reload of the configuration). A target is known
   * by its URL: one still configured keeps its queue and its delivery in flight, and its queued
   * deliveries go out with the new settings (secret, events, timeout, attempts); a target no
   * longer configured gets nothing new, its in-flight delivery finishes and its queued ones are
   * dropped (reported as 'dropped').
   */
  setTargets(targets: readonly WebhookTarget[]): void;
  /** The targets in force. */
  readonly targets: readonly WebhookTarget[];
}

/** `sha256=<hex>`: the X-Tide-Signature of a body. */
export function signBody(secret: string, body: string | Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Checks an X-Tide-Signature header against the raw body (constant time). */
export function verifySignature(secret: string, body: string | Uint8Array, header: string | null | undefined): boolean {
  if (typeof header !== 'string') return false;
  const want = Buffer.from(signBody(secret, body));
  const got = Buffer.from(header);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The URL as logs show it: no user info, no query, no fragment (they may carry credentials). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * The configuration's webhooks with their secrets read: secretFile (first line; relative to the
 * configuration file) or secretEnv. A missing or empty secret is a ConfigError naming the file
 * or variable, never its content.
 */
export function webhookTargetsFromConfig(config: Pick<TideConfig, 'webhooks'>, configFile: string | null, env: Readonly<Record<string, string | undefined>>): WebhookTarget[] {
  const base = configFile ? dirname(resolve(configFile)) : process.cwd();
  return (config.webhooks ?? []).map((w, i) => {
    let secret: string | undefined;
    if (w.secretFile !== undefined) {
      const f = isAbsolute(w.secretFile) ? w.secretFile : resolve(base, w.secretFile);
      try {
        secret = readFileSync(f, 'utf8').split(/\r?\n/)[0];
      } catch (e) {
        throw new ConfigError(`webhooks[${i}].secretFile: cannot read ${f} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      if (!secret) throw new ConfigError(`webhooks[${i}].secretFile: ${f} has an empty first line`);
    } else {
      secret = env[w.secretEnv!];
      if (!secret) throw new ConfigError(`webhooks[${i}].secretEnv: the environment variable ${w.secretEnv} is not set or empty`);
    }
    return { url: w.url, secret, ...(w.events ? { events: w.events } : {}), timeoutMs: w.timeoutSec * 1000, maxAttempts: w.maxAttempts };
  });
}

/** The secrets of a configuration's webhooks that can be read (for the logger's redaction). */
export function webhookSecrets(config: Pick<TideConfig, 'webhooks'>, configFile: string | null, env: Readonly<Record<string, string | undefined>>): string[] {
  const out: string[] = [];
  for (const w of config.webhooks ?? []) {
    try {
      out.push(webhookTargetsFromConfig({ webhooks: [w] }, configFile, env)[0]!.secret);
    } catch { /* reported when the targets are built */ }
  }
  return out;
}

interface Job { readonly id: string; readonly event: WebhookEvent; readonly body: string }

const quiet: DaemonLog = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };
/** Plans whose approval was announced, remembered (bounded) so each is announced once. */
const ANNOUNCED_KEEP = 1000;

function stepErrors(steps: readonly StepRun[]): { step: number; code: string; message: string }[] {
  return steps.filter((r) => r.error).slice(0, 10).map((r) => ({ step: r.step.id, code: r.error!.code, message: r.error!.message }));
}

export function createWebhooks(targets: readonly WebhookTarget[], opts: WebhooksOptions): Webhooks {
  const log = opts.log ?? quiet;
  const doFetch = opts.fetch ?? fetch;
  const baseDelay = opts.baseDelayMs ?? 1000;
  const maxDelay = opts.maxDelayMs ?? 60_000;
  const queueSize = Math.max(1, opts.queueSize ?? 1000);
  const storeOf = (): Store | undefined => (typeof opts.store === 'function' ? opts.store() : opts.store);
  const closeAc = new AbortController();
  let closed = false;
  const idleWaiters: (() => void)[] = [];

  interface Q { target: WebhookTarget; readonly url: string; items: Job[]; busy: boolean; removed: boolean }
  const makeQueue = (t: WebhookTarget): Q => ({ target: t, url: safeUrl(t.url), items: [], busy: false, removed: false });
  let queues: Q[] = targets.map(makeQueue);
  /** Queues of targets removed by setTargets whose delivery is still in flight (idle() waits for them). */
  const retiring = new Set<Q>();

  const report = (d: WebhookDelivery): void => {
    try {
      opts.onDelivery?.(d);
    } catch { /* an observer must not stop deliveries */ }
  };

  const checkIdle = (): void => {
    if (queues.every((q) => !q.busy && q.items.length === 0) && retiring.size === 0) for (const w of idleWaiters.splice(0)) w();
  };

  /** One delivery with its retries; never throws. */
  const deliver = async (q: Q, job: Job): Promise<void> => {
    const max = Math.max(1, q.target.maxAttempts ?? 3);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'tide-webhooks',
      'x-tide-event': job.event,
      'x-tide-delivery': job.id,
      'x-tide-signature': signBody(q.target.secret, job.body),
    };
    let status: number | undefined;
    let error: string | undefined;
    let attempts = 0;
    for (let attempt = 1; attempt <= max; attempt++) {
      attempts = attempt;
      let retryAfterMs = 0;
      let retry = true;
      try {
        const signal = AbortSignal.any([AbortSignal.timeout(q.target.timeoutMs ?? 10_000), closeAc.signal]);
        const res = await doFetch(q.target.url, { method: 'POST', headers, body: job.body, redirect: 'manual', signal });
        status = res.status;
        await res.arrayBuffer().catch(() => undefined);
        if (res.status >= 200 && res.status < 300) {
          log.debug({ event: 'webhook', url: q.url, delivery: job.id, webhookEvent: job.event, status, attempt }, `webhook ${job.event} delivered to ${q.url}`);
          report({ id: job.id, event: job.event, url: q.url, outcome: 'delivered', attempts: attempt, status });
          return;
        }
        error = `HTTP ${res.status}`;
        retry = res.status >= 500 || res.status === 429;
        const ra = Number(res.headers.get('retry-after'));
        if (res.status === 429 && Number.isFinite(ra) && ra > 0) retryAfterMs = ra * 1000;
      } catch (e) {
        status = undefined;
        const name = (e as { name?: string } | null)?.name;
        error = name === 'TimeoutError' ? `timed out after ${q.target.timeoutMs ?? 10_000} ms` : closed ? 'webhooks closed' : `network error: ${(e as Error)?.message ?? String(e)}`;
      }
      if (closed) break;
      if (!retry || attempt === max) break;
      const delay = Math.min(maxDelay, Math.max(retryAfterMs, baseDelay * 2 ** (attempt - 1)));
      log.warn({ event: 'webhook', url: q.url, delivery: job.id, webhookEvent: job.event, attempt, error, retryInMs: delay },
        `webhook ${job.event} to ${q.url} failed (${error}); retry ${attempt + 1}/${max} in ${delay} ms`);
      try {
        await opts.clock.sleep(delay, closeAc.signal);
      } catch {
        break;
      }
    }
    log.error({ event: 'webhook', url: q.url, delivery: job.id, webhookEvent: job.event, attempts, error, ...(status !== undefined ? { status } : {}) },
      `webhook ${job.event} to ${q.url} not delivered: ${error}`);
    report({ id: job.id, event: job.event, url: q.url, outcome: 'failed', attempts, ...(status !== undefined ? { status } : {}), ...(error ? { error } : {}) });
  };

  const pump = async (q: Q): Promise<void> => {
    if (q.busy) return;
    q.busy = true;
    try {
      while (!closed && !q.removed && q.items.length > 0) await deliver(q, q.items.shift()!);
    } finally {
      q.busy = false;
      retiring.delete(q);
      checkIdle();
    }
  };

  const emit = (event: WebhookEvent, data: Record<string, unknown>): void => {
    if (closed) return;
    let atMs: number;
    try {
      atMs = opts.clock.now();
    } catch {
      atMs = Date.now();
    }
    for (const q of queues) {
      if (q.target.events && !q.target.events.includes(event)) continue;
      const id = randomUUID();
      const body = JSON.stringify({ id, event, atMs, data });
      if (q.items.length >= queueSize) {
        const old = q.items.shift()!;
        log.warn({ event: 'webhook-drop', url: q.url, delivery: old.id, webhookEvent: old.event, queueSize },
          `webhook queue for ${q.url} full (${queueSize}): dropped the oldest delivery (${old.event} ${old.id})`);
        report({ id: old.id, event: old.event, url: q.url, outcome: 'dropped', attempts: 0 });
      }
      q.items.push({ id, event, body });
      void pump(q);
    }
  };

  // ---- the daemon's events → webhook events ----
  const announced = new Set<number>();
  const announce = (planId: number, by: string | null): void => {
    if (announced.has(planId)) return;
    announced.add(planId);
    if (announced.size > ANNOUNCED_KEEP) announced.delete(announced.values().next().value!);
    emit('plan.approved', { planId, ...(by ? { by } : {}) });
  };
  /** Approved plans in the store not announced yet (approved by `tide approve` in another process). */
  const sweepApproved = (): void => {
    if (queues.length === 0) return;
    try {
      for (const p of storeOf()?.listPlans({ status: 'approved', limit: 100 }) ?? []) announce(p.id, p.statusReason ?? null);
    } catch { /* a failing store: the next round tries again */ }
  };
  /** The plan executing now (onRunEnd does not name it). */
  let current: number | null = null;

  const observer: DaemonObserver = {
    onPlan: (plan, at, planId) => {
      if (planId === null || plan.steps.length === 0) return;
      const kinds = (k: string): number => plan.steps.filter((s) => s.kind === k).length;
      emit('plan.created', {
        planId, atMs: at, steps: plan.steps.length, migrations: kinds('migrate'), powerOns: kinds('powerOn'), powerOffs: kinds('powerOff'),
        reasons: plan.steps.slice(0, 20).map((s) => ({ step: s.id, kind: s.kind, reason: s.reason })),
      });
      let status: string | undefined;
      try {
        status = storeOf()?.getPlan(planId)?.status;
      } catch { /* unknown */ }
      if (status === 'running') {
        current = planId;
        emit('plan.started', { planId, trigger: 'automatic' });
      }
    },
    onPlanStatus: (planId, status, reason) => {
      if (status !== 'running') return;
      sweepApproved();
      announce(planId, null);
      current = planId;
      emit('plan.started', { planId, trigger: 'approved', reason });
    },
    onRunEnd: (run) => {
      const planId = current;
      current = null;
      const ok = run.failed + run.skipped + run.cancelled === 0;
      emit(ok ? 'plan.finished' : 'plan.failed', {
        planId, succeeded: run.succeeded, failed: run.failed, skipped: run.skipped, cancelled: run.cancelled, ...(ok ? {} : { errors: stepErrors(run.steps) }),
      });
    },
    onRoundError: (err) => {
      if (current === null) return;
      const planId = current;
      current = null;
      emit('plan.failed', { planId, error: err });
    },
    onStepEnd: (r) => {
      const s = r.step;
      if (s.kind === 'migrate' && r.state === 'failed') {
        emit('migration.failed', { planId: current, step: s.id, vm: s.vm, from: s.from, to: s.to, ...(r.error ? { error: r.error } : {}) });
      } else if (s.kind === 'powerOff' && r.state === 'succeeded') {
        emit('host.powered_off', { planId: current, step: s.id, host: s.host, reason: s.reason });
      } else if (s.kind === 'powerOn' && r.state === 'succeeded') {
        emit('host.powered_on', { planId: current, step: s.id, host: s.host, reason: s.reason });
      }
    },
    onFreeze: (f) => {
      if (f.frozen) emit('freeze.frozen', { reason: f.reason, reasons: f.reasons.map((r) => ({ code: r.code, ...(r.host ? { host: r.host } : {}), reason: r.reason })), sinceMs: f.sinceMs });
      else emit('freeze.thawed', {});
    },
    onRound: () => sweepApproved(),
  };

  const setTargets = (next: readonly WebhookTarget[]): void => {
    if (closed) return;
    const old = new Map(queues.map((q) => [q.target.url, q]));
    queues = next.map((t) => {
      const q = old.get(t.url);
      if (!q) return makeQueue(t);
      old.delete(t.url);
      q.target = t;
      // Queued deliveries follow the new subscription.
      if (t.events) q.items = q.items.filter((j) => t.events!.includes(j.event));
      return q;
    });
    for (const q of old.values()) {
      q.removed = true;
      for (const j of q.items.splice(0)) report({ id: j.id, event: j.event, url: q.url, outcome: 'dropped', attempts: 0 });
      if (q.busy) retiring.add(q);
    }
    log.info({ event: 'webhooks', targets: queues.map((q) => q.url) }, `webhooks: ${queues.length} target(s) in force${queues.length ? `: ${queues.map((q) => q.url).join(', ')}` : ''}`);
    checkIdle();
  };

  return {
    emit,
    setTargets,
    get targets() { return queues.map((q) => q.target); },
    planApproved: (planId, by) => announce(planId, by),
    observer,
    idle: () => new Promise<void>((res) => {
      idleWaiters.push(res);
      checkIdle();
    }),
    async close(flushMs = 0) {
      if (flushMs > 0 && !closed) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          new Promise<void>((res) => {
            idleWaiters.push(res);
            checkIdle();
          }),
          new Promise<void>((res) => { timer = setTimeout(res, flushMs); }),
        ]);
        clearTimeout(timer);
      }
      closed = true;
      closeAc.abort();
      for (const q of queues) {
        for (const j of q.items.splice(0)) report({ id: j.id, event: j.event, url: q.url, outcome: 'dropped', attempts: 0 });
      }
      await new Promise<void>((res) => {
        idleWaiters.push(res);
        checkIdle();
      });
    },
  };
}
