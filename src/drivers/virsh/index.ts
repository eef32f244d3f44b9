/**
 * The virsh driver: the same behaviour as the libvirt driver (shared engine), through the
 * `virsh` program (argv arrays, LC_ALL=C). Slower (a process per call) and without events;
 * for hosts where Tide's RPC client cannot connect. See docs/drivers.md.
 */
import type { HostConfig } from '../../config/schema.js';
import { HostBackendDriver, type EngineOptions } from '../common/engine.js';
import { DEFAULT_VIRSH_PROCESSES, VirshBackend, type VirshBackendOptions } from './backend.js';
import { ProcessLimit } from './limit.js';

export { DEFAULT_VIRSH_PROCESSES, VirshBackend, migrateArgv, virshEnv } from './backend.js';
export type { VirshBackendOptions } from './backend.js';
export { ProcessLimit } from './limit.js';

/** All hosts of one driver share one ProcessLimit (opts.maxProcesses, default 8 processes). */
export class VirshDriver extends HostBackendDriver {
  readonly processLimit: ProcessLimit;

  constructor(hosts: readonly HostConfig[], opts: VirshBackendOptions & EngineOptions = {}) {
    const processLimit = opts.processLimit ?? new ProcessLimit(opts.maxProcesses ?? DEFAULT_VIRSH_PROCESSES);
    super('virsh', hosts.map((h) => new VirshBackend(h, { ...opts, processLimit })), opts);
    this.processLimit = processLimit;
  }
}
