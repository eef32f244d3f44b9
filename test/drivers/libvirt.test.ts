// The contract suite against the libvirt (RPC) driver on two real private libvirtds.
import { LibvirtDriver } from '../../src/drivers/libvirt/index.js';
import { labGate } from '../helpers/libvirtd.js';
import { runDriverContract } from './contract.js';
import { twoDaemonHarness } from './fixture.js';

if (labGate('libvirt driver contract (two private libvirtds)', { qemu: true })) {
  runDriverContract('libvirt', () => twoDaemonHarness('lv', (hosts) => new LibvirtDriver(hosts, { connectTimeoutMs: 10_000 })));
}
