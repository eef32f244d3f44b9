/**
 * Host power control (DPM): the narrow interface behind which IPMI, Wake-on-LAN, ssh and the
 * simulator sit. Operations are idempotent, as on a BMC: powering on a host that is on
 * succeeds and changes nothing.
 */
export type HostPower = 'on' | 'off' | 'booting' | 'unknown';

export interface PowerDriver {
  readonly kind: string;
  status(host: string): Promise<HostPower>;
  /** Starts the host; resolves once the power-on request was accepted (not when it has booted). */
  powerOn(host: string): Promise<void>;
  /** Powers the host off (graceful when the method allows). Never called with VMs on it. */
  powerOff(host: string): Promise<void>;
  /**
   * Optional DPM wake-path test (docs/drivers.md "Wake-path test"): can `host` be woken again
   * and its return be seen, checked without powering it off. A driver without it is tested by
   * its status answering. Expected failures are values, not throws.
   */
  wakeTest?(host: string): Promise<WakeTestResult>;
  /** Optional: a digest of the host's power configuration; a recorded test holds only for the same key. */
  wakePathKey?(host: string): string;
  /**
   * Optional: what this driver can do to `host` at all (from its configuration, no I/O).
   * off/on false: powerOff/powerOn would refuse (e.g. power.kind 'none': TIDE_UNSUPPORTED);
   * `reason` says why when either is false. The controller marks such hosts
   * (Host.powerOffRefused / Host.wakeRefused) so the planner never proposes that step.
   * A driver without it is assumed able to do both.
   */
  canPower?(host: string): PowerCapability;
}

/** What a power driver can do to one host (PowerDriver.canPower). */
export interface PowerCapability {
  readonly off: boolean;
  readonly on: boolean;
  readonly reason?: string;
}

/** Outcome of a wake-path test. `code` (a DriverErrorCode) when it failed. */
export interface WakeTestResult {
  readonly ok: boolean;
  /** Power method tested ('ipmi', 'wol', 'ssh', 'none', or the driver's kind). */
  readonly method: string;
  readonly reason: string;
  readonly code?: string;
}
