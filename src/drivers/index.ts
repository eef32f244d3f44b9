/**
 * createDriver(config): the HypervisorDriver the configuration asks for (`driver`: libvirt,
 * the default, or virsh), over the configured hosts, with that driver's section of the
 * configuration (`libvirt`, `virsh`). The caller owns it and must close() it
 * (the libvirt driver keeps connections open).
 *
 * Tests of commands that run in-process may replace the factory (setDriverFactory) to put a
 * FakeDriver under the CLI; production code never does.
 */
import type { TideConfig } from '../config/schema.js';
import type { HypervisorDriver } from './hypervisor.js';
import { LibvirtDriver } from './libvirt/index.js';
import { VirshDriver } from './virsh/index.js';

export type DriverFactory = (config: TideConfig) => HypervisorDriver;

/** The configured driver with its section's settings (`virsh.maxProcesses`, `libvirt.shareCountersMs`). */
export const defaultDriverFactory: DriverFactory = (config) => (config.driver === 'virsh'
  ? new VirshDriver(config.hosts, { maxProcesses: config.virsh.maxProcesses })
  : new LibvirtDriver(config.hosts, { shareCountersMs: config.libvirt.shareCountersMs }));

let factory: DriverFactory = defaultDriverFactory;

export function createDriver(config: TideConfig): HypervisorDriver {
  return factory(config);
}

/** Test hook: use `f` instead of the real drivers (null restores them). */
export function setDriverFactory(f: DriverFactory | null): void {
  factory = f ?? defaultDriverFactory;
}

export { DriverError, isDriverError } from './errors.js';
export type { DriverErrorCode } from './errors.js';
export type * from './hypervisor.js';
