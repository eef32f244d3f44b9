/**
 * `tide wake-test`: the DPM wake-path test on demand (docs/drivers.md, "Wake-path test").
 * Tide tests a host's wake path once before its first power-off and never powers off a host
 * whose test (or a real wake) failed; this command is how an operator re-tests a fixed host
 * (the passing result replaces the failed record), forgets a record, or lists them.
 *
 * Records are stamped with the Clock the daemon and the controller use (systemClock for the
 * CLI; createWakeTestCommand({ clock }) injects another, e.g. a VirtualClock in tests): the
 * controller compares a record's testedMs with its own clock.now() (the wakeRetrySec window,
 * src/app/wake-refused.ts), so both must read the same time base.
 */
import type { Clock } from '../../core/clock.js';
import type { PowerDriver } from '../../drivers/power.js';
import { clusterPowerDriver } from '../../drivers/power/cluster.js';
import { systemClock } from '../../executor/clock.js';
import { openStore } from '../../store/open.js';
import type { Store, WakePathRecord } from '../../store/store.js';
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

/** What a wake-path test needs of a power driver (ClusterPowerDriver has both). */
export type WakeTester = Required<Pick<PowerDriver, 'wakeTest'>> & { wakePathKey(host: string): string | null };

export interface WakeTestDeps {
  /** Stamps the records (testedMs) and times the power driver's probes (default systemClock). */
  readonly clock: Clock;
  /** The power driver (default: the configuration's, on `clock`). */
  readonly power?: (config: Parameters<typeof clusterPowerDriver>[0], clock: Clock) => WakeTester;
}

/**
 * Runs the wake-path test of each host and records it, stamped with `clock` (the daemon's time
 * base). Returns the records in `hosts` order.
 */
export async function runWakeTests(
  power: WakeTester, store: Pick<Store, 'recordWakePath'>, hosts: readonly string[], clock: Pick<Clock, 'now'>,
): Promise<WakePathRecord[]> {
  const results: WakePathRecord[] = [];
  for (const host of hosts) {
    const t = await power.wakeTest(host);
    // Stamped when the result is known (a test may take seconds on the clock).
    const rec: WakePathRecord = { host, testedMs: clock.now(), ok: t.ok, reason: t.reason, method: t.method, key: power.wakePathKey(host) };
    store.recordWakePath(rec);
    results.push(rec);
  }
  return results;
}

export function createWakeTestCommand(deps: WakeTestDeps = { clock: systemClock }): Command {
  return {
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
      const store = openStore(config.store, file);
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
        const power = deps.power ? deps.power(config, deps.clock) : clusterPowerDriver(config, { clock: deps.clock });
        const results = await runWakeTests(power, store, values.all ? names : positionals, deps.clock);
        print(results);
        return results.every((r) => r.ok) ? 0 : 1;
      } finally {
        store.close();
      }
    },
  };
}

export const wakeTestCommand: Command = createWakeTestCommand();
