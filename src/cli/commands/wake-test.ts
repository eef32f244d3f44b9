/**
 * `tide wake-test`: the DPM wake-path test on demand (docs/drivers.md, "Wake-path test").
 * Tide tests a host's wake path once before its first power-off and never powers off a host
 * whose test (or a real wake) failed; this command is how an operator re-tests a fixed host
 * (the passing result replaces the failed record), forgets a record, or lists them.
 */
import { clusterPowerDriver } from '../../drivers/power/cluster.js';
import { storePathFor } from '../../store/lock.js';
import { openSqliteStore, type WakePathRecord } from '../../store/store.js';
import { parse } from '../args.js';
import { clusterConfig } from '../cluster.js';
import { UsageError, type Command } from '../io.js';

const usage = `tide [--config FILE] wake-test HOST... | --all | --list | --forget HOST... [--json]

  Tests whether each HOST can be woken again and its return seen, without powering it off:
  IPMI — the BMC answers 'chassis power status' with the configured credentials; Wake-on-LAN —
  the magic packet can be sent and the host's status source (its IPMI, or statusAddress)
  answers; ssh-only and 'none' hosts fail (nothing could wake them). The result is recorded in
  the store: a passing test lets Tide power the host off (it replaces a failed record), a
  failing one stops every power-off of it until a later test passes or its power
  configuration changes. The BMC password never appears in the output.
  Exit status 0 when every tested host passed, 1 when any failed, 2 for a usage error.

  --all        test every configured host
  --list       print the recorded tests (no test is run)
  --forget     delete the hosts' records: the next power-off tests again
  --json       print {"wakePaths": [...]}`;

function line(r: WakePathRecord): string {
  return `${r.host}: ${r.ok ? 'ok' : 'FAILED'} (${r.method ?? '?'}, ${new Date(r.testedMs).toISOString()}) — ${r.reason}`;
}

export const wakeTestCommand: Command = {
  summary: 'DPM wake-path test: can a host be woken again? (recorded; a failed host is never powered off)',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { all: { type: 'boolean' }, list: { type: 'boolean' }, forget: { type: 'boolean' }, json: { type: 'boolean' } }, true);
    const modes = [values.all, values.list, values.forget].filter(Boolean).length;
    if (modes > 1) throw new UsageError('give at most one of --all, --list, --forget');
    if (values.list && positionals.length > 0) throw new UsageError('--list takes no host');
    if (values.all && positionals.length > 0) throw new UsageError('--all takes no host');
    if (!values.all && !values.list && positionals.length === 0) throw new UsageError('name a host (or --all, --list)');
    const { config, file } = clusterConfig(values, io);
    const names = config.hosts.map((h) => h.name);
    for (const h of positionals) if (!names.includes(h)) throw new UsageError(`no host named '${h}' in ${file} (hosts: ${names.join(', ')})`);
    const store = openSqliteStore(storePathFor(config.store.path, file));
    const print = (rs: readonly WakePathRecord[], extra: Record<string, unknown> = {}): void => {
      io.out(values.json ? `${JSON.stringify({ wakePaths: rs, ...extra })}\n` : rs.length ? `${rs.map(line).join('\n')}\n` : 'no wake-path test recorded\n');
    };
    try {
      if (values.list) {
        print(store.wakePaths());
        return 0;
      }
      if (values.forget) {
        const forgotten = positionals.filter((h) => store.clearWakePath(h));
        if (values.json) io.out(`${JSON.stringify({ wakePaths: [], forgotten })}\n`);
        else io.out(forgotten.length ? `forgot the wake-path test of ${forgotten.join(', ')}: the next power-off tests again\n` : 'no record to forget\n');
        return 0;
      }
      const power = clusterPowerDriver(config);
      const hosts = values.all ? names : positionals;
      const results: WakePathRecord[] = [];
      for (const host of hosts) {
        const t = await power.wakeTest(host);
        const rec: WakePathRecord = { host, testedMs: Date.now(), ok: t.ok, reason: t.reason, method: t.method, key: power.wakePathKey(host) };
        store.recordWakePath(rec);
        results.push(rec);
      }
      print(results);
      return results.every((r) => r.ok) ? 0 : 1;
    } finally {
      store.close();
    }
  },
};
