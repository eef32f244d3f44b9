/**
 * Domain events: names, payload types and decoders for the MESSAGE packets the daemon sends for
 * callbacks registered with CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY. Every payload starts with
 * the callbackID, which is how events are routed to subscriptions.
 */
import { VIR_DOMAIN_EVENT_ID } from './constants.js';
import { eventMsgs, type Domain } from './protocol.js';
import { decodeTypedParams, type TypedParams } from './typed-params.js';
import { decode, type Codec } from './xdr.js';

export interface DomainEventMap {
  lifecycle: { dom: Domain; event: number; detail: number };
  reboot: { dom: Domain };
  'rtc-change': { dom: Domain; offset: bigint };
  watchdog: { dom: Domain; action: number };
  'io-error': { dom: Domain; srcPath: string; devAlias: string; action: number };
  'io-error-reason': { dom: Domain; srcPath: string; devAlias: string; action: number; reason: string };
  'control-error': { dom: Domain };
  'block-job': { dom: Domain; path: string; type: number; status: number };
  /** actual: new balloon size in KiB */
  'balloon-change': { dom: Domain; actual: bigint };
  'device-removed': { dom: Domain; devAlias: string };
  'block-job-2': { dom: Domain; dst: string; type: number; status: number };
  tunable: { dom: Domain; params: TypedParams };
  'agent-lifecycle': { dom: Domain; state: number; reason: number };
  'device-added': { dom: Domain; devAlias: string };
  /** iteration: pre-copy pass number, starting at 1 */
  'migration-iteration': { dom: Domain; iteration: number };
  /** params: final job statistics (same fields as GET_JOB_STATS) */
  'job-completed': { dom: Domain; params: TypedParams };
  'device-removal-failed': { dom: Domain; devAlias: string };
  'metadata-change': { dom: Domain; type: number; nsuri: string | null };
  'block-threshold': { dom: Domain; dev: string; path: string | null; threshold: bigint; excess: bigint };
}

export type DomainEventName = keyof DomainEventMap;

/** An event without a typed decoder: the payload as received (callbackID included). */
export interface RawDomainEvent {
  eventId: number;
  proc: number;
  callbackID: number;
  body: Buffer;
}

interface EventDecoder<K extends DomainEventName> {
  id: number;
  proc: number;
  decode(body: Buffer): DomainEventMap[K];
}

function dec<T, K extends DomainEventName>(id: number, m: { proc: number; codec: Codec<T> }, map: (v: T) => DomainEventMap[K]): EventDecoder<K> {
  return { id, proc: m.proc, decode: (body) => map(decode(m.codec, body, `event ${m.proc}`)) };
}

export const EVENT_DECODERS: { [K in DomainEventName]: EventDecoder<K> } = {
  lifecycle: dec(VIR_DOMAIN_EVENT_ID.LIFECYCLE, eventMsgs.LIFECYCLE, (v) => v.msg),
  reboot: dec(VIR_DOMAIN_EVENT_ID.REBOOT, eventMsgs.REBOOT, (v) => v.msg),
  'rtc-change': dec(VIR_DOMAIN_EVENT_ID.RTC_CHANGE, eventMsgs.RTC_CHANGE, (v) => v.msg),
  watchdog: dec(VIR_DOMAIN_EVENT_ID.WATCHDOG, eventMsgs.WATCHDOG, (v) => v.msg),
  'io-error': dec(VIR_DOMAIN_EVENT_ID.IO_ERROR, eventMsgs.IO_ERROR, (v) => v.msg),
  'io-error-reason': dec(VIR_DOMAIN_EVENT_ID.IO_ERROR_REASON, eventMsgs.IO_ERROR_REASON, (v) => v.msg),
  'control-error': dec(VIR_DOMAIN_EVENT_ID.CONTROL_ERROR, eventMsgs.CONTROL_ERROR, (v) => v.msg),
  'block-job': dec(VIR_DOMAIN_EVENT_ID.BLOCK_JOB, eventMsgs.BLOCK_JOB, (v) => v.msg),
  'balloon-change': dec(VIR_DOMAIN_EVENT_ID.BALLOON_CHANGE, eventMsgs.BALLOON_CHANGE, (v) => v.msg),
  'device-removed': dec(VIR_DOMAIN_EVENT_ID.DEVICE_REMOVED, eventMsgs.DEVICE_REMOVED, (v) => v.msg),
  'block-job-2': dec(VIR_DOMAIN_EVENT_ID.BLOCK_JOB_2, eventMsgs.BLOCK_JOB_2, (v) => ({ dom: v.dom, dst: v.dst, type: v.type, status: v.status })),
  tunable: dec(VIR_DOMAIN_EVENT_ID.TUNABLE, eventMsgs.TUNABLE, (v) => ({ dom: v.dom, params: decodeTypedParams(v.params) })),
  'agent-lifecycle': dec(VIR_DOMAIN_EVENT_ID.AGENT_LIFECYCLE, eventMsgs.AGENT_LIFECYCLE, (v) => ({ dom: v.dom, state: v.state, reason: v.reason })),
  'device-added': dec(VIR_DOMAIN_EVENT_ID.DEVICE_ADDED, eventMsgs.DEVICE_ADDED, (v) => ({ dom: v.dom, devAlias: v.devAlias })),
  'migration-iteration': dec(VIR_DOMAIN_EVENT_ID.MIGRATION_ITERATION, eventMsgs.MIGRATION_ITERATION, (v) => ({ dom: v.dom, iteration: v.iteration })),
  'job-completed': dec(VIR_DOMAIN_EVENT_ID.JOB_COMPLETED, eventMsgs.JOB_COMPLETED, (v) => ({ dom: v.dom, params: decodeTypedParams(v.params) })),
  'device-removal-failed': dec(VIR_DOMAIN_EVENT_ID.DEVICE_REMOVAL_FAILED, eventMsgs.DEVICE_REMOVAL_FAILED, (v) => ({ dom: v.dom, devAlias: v.devAlias })),
  'metadata-change': dec(VIR_DOMAIN_EVENT_ID.METADATA_CHANGE, eventMsgs.METADATA_CHANGE, (v) => ({ dom: v.dom, type: v.type, nsuri: v.nsuri })),
  'block-threshold': dec(VIR_DOMAIN_EVENT_ID.BLOCK_THRESHOLD, eventMsgs.BLOCK_THRESHOLD, (v) => ({
    dom: v.dom, dev: v.dev, path: v.path, threshold: v.threshold, excess: v.excess,
  })),
};
