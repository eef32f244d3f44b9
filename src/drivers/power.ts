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
}
