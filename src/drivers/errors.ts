/**
 * Errors raised by drivers (I/O). Every one carries a stable `code` that the CLI prints and the
 * API maps to a status; `detail` holds the underlying cause (e.g. libvirt's numeric code).
 */
export type DriverErrorCode =
  | 'TIDE_NO_SUCH_VM'
  | 'TIDE_NO_SUCH_HOST'
  | 'TIDE_HOST_UNREACHABLE'
  | 'TIDE_PREFLIGHT_FAILED'
  | 'TIDE_MIGRATION_FAILED'
  | 'TIDE_ABORTED'
  | 'TIDE_TIMEOUT'
  | 'TIDE_UNSUPPORTED'
  | 'TIDE_INVALID_ARGUMENT'
  | 'TIDE_VM_STATE'
  | 'TIDE_POWER_FAILED'
  /** A side effect whose outcome could not be established (e.g. the migration target stopped
   *  answering at switch-over): nothing further was done; reconciliation finishes it. */
  | 'TIDE_MIGRATION_UNKNOWN'
  /** Another Tide process holds the cluster lock. */
  | 'TIDE_LOCKED'
  /** This controller's lease (fencing token) is no longer the current one: it must not act (write or side effect). */
  | 'TIDE_FENCED'
  /** This controller is a standby: another one leads the cluster (the message names it); ask the leader. */
  | 'TIDE_NOT_LEADER'
  /** The world no longer matches a plan step (VM moved, host down…): the step was skipped. */
  | 'TIDE_STALE_PLAN'
  /** The power-off guard refused: the host may still hold a running guest, or its power state is not 'on'. */
  | 'TIDE_POWER_REFUSED'
  /** A woken host's hypervisor did not answer within bootTimeoutSec, even after one more power-on. */
  | 'TIDE_WAKE_TIMEOUT'
  /** `tide plan show|approve|reject ID`: the store has no plan with that id. */
  | 'TIDE_NO_SUCH_PLAN'
  /** The plan's status does not allow the action (approve a plan that expired, was superseded, ran…). */
  | 'TIDE_PLAN_STATE'
  /** The store was written by a newer Tide (its schema version is above what this one understands), or its version is invalid. */
  | 'TIDE_STORE_VERSION'
  /** The store's database did not answer within its timeout, or the connection failed (the message names host and port): a write in flight may or may not have been committed. */
  | 'TIDE_STORE_UNAVAILABLE';

export class DriverError extends Error {
  constructor(
    readonly code: DriverErrorCode,
    message: string,
    readonly detail?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DriverError';
  }
}

export function isDriverError(e: unknown): e is DriverError {
  return e instanceof DriverError;
}
