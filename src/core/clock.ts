/**
 * Time, injected. The core takes `now` as a plain argument; the executor, the daemon loop and
 * the drivers that wait take a Clock, so tests and the simulator run on virtual time.
 */
export interface Clock {
  /** Milliseconds since the epoch (or since the start of a simulation). */
  now(): number;
  /** Resolves after `ms` of this clock's time; rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * A monotonic reading, ms (any origin), for wall clocks: the controller freezes moves when
   * `now()` and this disagree about the time between rounds (a clock jump). Absent: virtual
   * time, which is its own monotonic clock.
   */
  monotonicMs?(): number;
}
