// The metrics-source contract against the libvirt polling source on a private libvirtd with a running guest.
import { it } from 'vitest';
import { labGate } from '../helpers/libvirtd.js';
import { pollingHarness, runMetricsContract } from './metrics-contract.js';

if (labGate('metrics source contract: libvirt polling (private libvirtd)', { qemu: true })) {
  runMetricsContract('libvirt polling', pollingHarness);
} else {
  // the reason was printed by the gate; a file without any test would fail as "no test suite"
  it.skip('metrics source contract: libvirt polling needs a private libvirtd (root, libvirtd, QEMU)', () => {});
}
