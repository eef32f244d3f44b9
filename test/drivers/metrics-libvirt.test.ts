// The metrics-source contract against the libvirt polling source on a private libvirtd with a running guest.
import { labGate } from '../helpers/libvirtd.js';
import { pollingHarness, runMetricsContract } from './metrics-contract.js';

if (labGate('metrics source contract: libvirt polling (private libvirtd)', { qemu: true })) {
  runMetricsContract('libvirt polling', pollingHarness);
}
