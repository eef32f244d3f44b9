/**
 * The virsh driver: the same behaviour as the libvirt driver (shared engine), through the
 * `virsh` program (argv arrays, LC_ALL=C). Slower (a process per call) and without events;
 * for hosts where Tide's RPC client cannot connect. See docs/drivers.md.
 */
import type { HostConfig } from '../../config/schema.js';
import { HostBackendDriver, type EngineOptions } from '../common/engine.js';
import { VirshBackend, type VirshBackendOptions } from './backend.js';

export { VirshBackend, migrateArgv, virshEnv } from './backend.js';
export type { VirshBackendOptions } from './backend.js';

export class VirshDriver extends HostBackendDriver {
  constructor(hosts: readonly HostConfig[], opts: VirshBackendOptions & EngineOptions = {}) {
    super('virsh', hosts.map((h) => new VirshBackend(h, opts)), opts);
  }
}
