/**
 * A two-host harness for the driver contract suite on real libvirt: two private libvirtds
 * (test/helpers/libvirtd.ts, distinct host UUIDs) with a small diskless TCG guest, migrating
 * over 127.0.0.1 (migrationAddress tcp://127.0.0.1, so QEMU also listens on loopback only).
 * Each host's peerUri is its unix socket URI: both daemons run on this machine.
 */
import { parseConfig } from '../../src/config/load.js';
import type { HostConfig } from '../../src/config/schema.js';
import { escapeXml } from '../../src/drivers/common/xml.js';
import type { HypervisorDriver } from '../../src/drivers/hypervisor.js';
import { LibvirtConnection, LibvirtError } from '../../src/libvirt/index.js';
import { startLibvirtd, tinyQemuDomainXml, type LibvirtdHandle } from '../helpers/libvirtd.js';
import type { ContractHarness } from './contract.js';

export const CONTRACT_VM = 'tide-contract-vm';

export async function twoDaemonHarness(name: string, makeDriver: (hosts: HostConfig[]) => HypervisorDriver): Promise<ContractHarness> {
  const [ra, rb] = await Promise.allSettled([
    startLibvirtd({ hostUuid: '7a110000-0000-4000-8000-0000000c0a0a' }),
    startLibvirtd({ hostUuid: '7a110000-0000-4000-8000-0000000c0b0b' }),
  ]);
  const daemons: Record<string, LibvirtdHandle> = {};
  if (ra.status === 'fulfilled') daemons[`${name}-a`] = ra.value;
  if (rb.status === 'fulfilled') daemons[`${name}-b`] = rb.value;
  if (ra.status === 'rejected' || rb.status === 'rejected') {
    await Promise.all(Object.values(daemons).map((d) => d.stop()));
    throw (ra.status === 'rejected' ? ra.reason : (rb as PromiseRejectedResult).reason) as Error;
  }
  const hostNames = [`${name}-a`, `${name}-b`] as const;
  const config = parseConfig({
    hosts: hostNames.map((h) => ({ name: h, uri: daemons[h]!.unixUri(), peerUri: daemons[h]!.unixUri(), migrationAddress: 'tcp://127.0.0.1' })),
  });
  const conn = async (host: string): Promise<LibvirtConnection> => LibvirtConnection.open(daemons[host]!.unixUri(), { keepalive: false });
  const createVm = async (vm: string, host: string): Promise<void> => {
    const c = await conn(host);
    try {
      const xml = tinyQemuDomainXml('NAME', 64).replace('<name>NAME</name>', `<name>${escapeXml(vm)}</name>`);
      const dom = await c.defineXml(xml);
      await c.createWithFlags(dom);
    } finally {
      await c.close();
    }
  };
  const removeVm = async (vm: string): Promise<void> => {
    for (const host of hostNames) {
      if (!daemons[host]!.running()) continue;
      const c = await conn(host);
      try {
        await c.destroy(vm).catch((e: unknown) => { if (!(e instanceof LibvirtError)) throw e; });
        await c.undefine(vm).catch((e: unknown) => { if (!(e instanceof LibvirtError)) throw e; });
      } finally {
        await c.close();
      }
    }
  };
  await createVm(CONTRACT_VM, hostNames[0]);
  const driver = makeDriver(config.hosts);
  return {
    driver,
    hosts: hostNames,
    vm: CONTRACT_VM,
    slowBandwidthMiBps: 1,
    timeoutMs: 240_000,
    createVm,
    removeVm,
    breakHost: async (host) => {
      await daemons[host]!.crash();
      return async () => { await daemons[host]!.restart(); };
    },
    teardown: async () => {
      await driver.close();
      await Promise.all(Object.values(daemons).map((d) => d.stop()));
    },
  };
}
