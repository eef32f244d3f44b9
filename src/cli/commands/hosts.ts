import { Cluster } from '../../api/cluster.js';
import { num, parse, table } from '../args.js';
import { clusterConfig } from '../cluster.js';
import { UsageError, type Command } from '../io.js';

const usage = `tide [--config FILE] hosts [--interval-ms MS] [--no-usage] [--json]

  Every configured host: reachable or not, capacity, CPU model, VMs running, and CPU and
  memory utilisation measured over --interval-ms (default 1000). A host that does not answer
  is listed with why (the transport's error). --json prints an array; a host with "up": false
  carries "reason". Exit status 1 when a host does not answer.`;

export const hostsCommand: Command = {
  summary: 'list the hosts with capacity and utilisation',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { 'interval-ms': { type: 'string' }, 'no-usage': { type: 'boolean' }, json: { type: 'boolean' } }, true);
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const intervalMs = num(values['interval-ms'] as string | undefined, '--interval-ms', 1000, { min: 0, max: 3_600_000, int: true });
    const { config } = clusterConfig(values, io);
    const cluster = Cluster.open(config);
    try {
      const hosts = await cluster.hosts({ usage: !values['no-usage'], intervalMs });
      if (values.json) {
        io.out(`${JSON.stringify(hosts.map((h) => (h.up ? h : { ...h, reason: h.reason ?? 'does not answer' })))}\n`);
        return hosts.every((h) => h.up) ? 0 : 1;
      }
      io.out(table(
        ['host', 'up', 'cores', 'MHz', 'mem MiB', 'cpu %', 'mem used MiB', 'VMs', 'cpu model', 'flags'],
        hosts.map((h) => [
          h.name, h.up ? 'yes' : 'NO', h.cpuCores, h.cpuMhz, h.memMiB,
          h.usage?.cpuPct != null ? h.usage.cpuPct.toFixed(1) : '-', h.usage ? h.usage.memUsedMiB : '-', h.vms, h.cpuModel || '-',
          [h.maintenance ? 'maintenance' : '', h.excluded ? 'excluded' : '', ...h.tags].filter(Boolean).join(',') || '-',
        ]),
      ));
      for (const h of hosts) if (!h.up) io.out(`${h.name} does not answer: ${h.reason ?? 'no reason given'}\n`);
      return hosts.every((h) => h.up) ? 0 : 1;
    } finally {
      await cluster.close();
    }
  },
};
