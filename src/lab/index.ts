/** The Tide lab (see lab.ts and docs/lab.md). */
export { Lab, jobMiB, labPrerequisiteProblem } from './lab.js';
export type { BootGuestOptions, DownOptions, DownReport, LabState, LabSummary, LabTimings, LabUpOptions, LabVm, Placement } from './lab.js';
export { detectAccel, parseAccelChoice, ACCEL_ENV } from './accel.js';
export type { Accel, AccelChoice } from './accel.js';
export { LabError } from './exec.js';
export { DEFAULT_LAB_DIR, LAB_HOST_NAMES, PROBE_STATION_IP, SWITCH_NS, isLabHostName, labLayout } from './layout.js';
export type { HostLayout, LabHostName, LabLayout } from './layout.js';
export { parseJobInfo } from './virsh.js';
export { labIpmiConfig, labPowerConfig, labBootSec } from './power.js';
export type { LabHostPower, LabPowerMethod, LabPowerOptions, LabPowerState } from './power.js';
export { BMC_PORT, WOL_BROADCAST, WOL_PORT, bmcIp } from './power-layout.js';
export { DEFAULT_MANY_DIR, MANY_NETNS_PREFIX, MAX_MANY_HOSTS, ManyHosts, manyHost, manyNamespaces, manyNetnsPrefix, startManyHosts } from './many.js';
export type { ManyDownReport, ManyHost, ManyHostsOptions, ManyMemory, ManyTimings } from './many.js';
