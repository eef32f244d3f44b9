import { Cluster } from '../../api/cluster.js';
import { num, parse, table } from '../args.js';
import { clusterConfig, fmtRate } from '../cluster.js';
import { UsageError, type Command } from '../io.js';

const usage = `tide [--config FILE] vms [--host HOST] [--interval-ms MS] [--no-usage] [--json]

  Every VM on the reachable hosts: where it runs, its state and size, and its utilisation
  over --interval-ms (default 1000): CPU % of its vCPUs (from cpu.time), memory in use (guest
  view from the balloon driver, else QEMU's resident memory), disk and network KiB/s. A rate
  shown as - (null in --json) is not known yet: there is no earlier reading of that VM on its
  host (e.g. it migrated during the interval); it is never shown as 0.
  Hosts that could not be asked are named with why (their VMs are missing from the list), on
  stderr. --json prints {"vms": [...], "unreachable": [{"host", "reason"}]}.
  Exit status 1 when a host could not be asked.`;

export const vmsCommand: Command = {
  summary: 'list the VMs with their utilisation',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      host: { type: 'string' }, 'interval-ms': { type: 'string' }, 'no-usage': { type: 'boolean' }, json: { type: 'boolean' },
    }, true);
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const intervalMs = num(values['interval-ms'] as string | undefined, '--interval-ms', 1000, { min: 0, max: 3_600_000, int: true });
    const { config } = clusterConfig(values, io);
    const host = values.host as string | undefined;
    if (host !== undefined && !config.hosts.some((h) => h.name === host)) throw new UsageError(`--host: no host named '${host}' in the configuration`);
    const cluster = Cluster.open(config);
    try {
      const { vms, unreachable } = await cluster.inventory({ usage: !values['no-usage'], intervalMs, host });
      if (values.json) {
        io.out(`${JSON.stringify({ vms, unreachable })}\n`);
        return unreachable.length ? 1 : 0;
      }
      io.out(table(
        ['vm', 'host', 'state', 'vCPUs', 'mem MiB', 'cpu %', 'mem used MiB', 'disk r KiB/s', 'disk w KiB/s', 'net rx KiB/s', 'net tx KiB/s'],
        vms.map((v) => [
          v.name, v.host, v.state, v.vcpus, v.memMiB,
          v.usage?.cpuPct != null ? v.usage.cpuPct.toFixed(1) : '-', v.usage ? v.usage.memUsedMiB : '-',
          fmtRate(v.usage?.diskReadBytesPerSec), fmtRate(v.usage?.diskWriteBytesPerSec), fmtRate(v.usage?.netRxBytesPerSec), fmtRate(v.usage?.netTxBytesPerSec),
        ]),
      ));
      for (const u of unreachable) io.err(`warning: ${u.host} could not be asked, its VMs are not listed: ${u.reason}\n`);
      return unreachable.length ? 1 : 0;
    } finally {
      await cluster.close();
    }
  },
};
