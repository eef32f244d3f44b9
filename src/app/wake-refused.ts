/**
 * DPM: a host whose wake failed is not proposed for power-on every round (docs/drivers.md, "DPM
 * safety rules"). A wake that timed out (the executor's TIDE_WAKE_TIMEOUT, after one retry)
 * or a failed wake-path test is recorded in the store as a failed wake path (wake_path table).
 * While that record stands — same power configuration (wakePathKey), not replaced by a passing
 * `tide wake-test HOST` — and is younger than the retry window, an off host is marked
 * Host.wakeRefused, so no strategy plans to wake it (each attempt costs two bootTimeoutSec
 * waits). After the window the planner may try once more; another failure starts a new window.
 */
import type { PowerState } from '../core/model/types.js';
import type { PowerDriver } from '../drivers/power.js';
import { currentWakePath, type WakePathBook } from '../executor/executor.js';

/** Default retry window after a failed wake, s (6 h): a broken BMC or NIC rarely heals sooner. */
export const DEFAULT_WAKE_RETRY_SEC = 6 * 3600;

/**
 * Why `host` must not be woken now (undefined: it may be). Only a host that is off or in
 * standby is refused (one waking, on or unknown is not proposed for power-on anyway).
 * `nowMs` and the record's testedMs are on the same clock (the controller's).
 */
export function wakeRefusal(
  book: WakePathBook | undefined, power: PowerDriver | undefined, host: string, powerState: PowerState, nowMs: number, retrySec = DEFAULT_WAKE_RETRY_SEC,
): string | undefined {
  if (powerState !== 'off' && powerState !== 'standby') return undefined;
  const rec = currentWakePath(book, power, host);
  if (!rec || rec.ok) return undefined;
  const untilMs = rec.testedMs + retrySec * 1000;
  if (nowMs >= untilMs) return undefined;
  return `its wake failed at ${new Date(rec.testedMs).toISOString()} (${rec.reason}); not retried before ${new Date(untilMs).toISOString()} unless tide wake-test ${host} passes`;
}
