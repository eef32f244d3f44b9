// The contract suite against the virsh driver on two real private libvirtds.
import { VirshDriver } from '../../src/drivers/virsh/index.js';
import { labGate } from '../helpers/libvirtd.js';
import { runDriverContract } from './contract.js';
import { twoDaemonHarness } from './fixture.js';

if (labGate('virsh driver contract (two private libvirtds)', { qemu: true })) {
  runDriverContract('virsh', () => twoDaemonHarness('vs', (hosts) => new VirshDriver(hosts)));
}
