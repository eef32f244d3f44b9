/**
 * The libvirt driver: Tide's own RPC client (src/libvirt), one long-lived connection per
 * configured host. See docs/drivers.md.
 */
import type { HostConfig } from '../../config/schema.js';
import { HostBackendDriver, type EngineOptions } from '../common/engine.js';
import { RpcBackend, type RpcBackendOptions } from './backend.js';

export { DEFAULT_SHARE_COUNTERS_MS, RpcBackend, toDriverError } from './backend.js';
export type { RpcBackendOptions } from './backend.js';

export class LibvirtDriver extends HostBackendDriver {
  constructor(hosts: readonly HostConfig[], opts: RpcBackendOptions & EngineOptions = {}) {
    super('libvirt', hosts.map((h) => new RpcBackend(h, opts)), opts);
  }
}
