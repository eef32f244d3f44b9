/** An in-process daemon on the simulated office (SimDriver on a VirtualClock, store in memory or a file). */
import { Writable } from 'node:stream';
import { compilePolicy } from '../../src/core/policy.js';
import { createDaemon, type Daemon, type DaemonDeps, type DaemonSettings, type Mode } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/daemon/log.js';
import { SimDriver } from '../../src/drivers/sim/sim-driver.js';
import { VirtualClock } from '../../src/executor/clock.js';
import { officeScenario } from '../../src/sim/office.js';
import { openSqliteStore, type Store } from '../../src/store/store.js';

export interface SimDaemon {
  readonly daemon: Daemon;
  readonly clock: VirtualClock;
  readonly driver: SimDriver;
  readonly store: Store;
  readonly settings: DaemonSettings;
  /** Log lines written so far (JSON). */
  readonly lines: string[];
  /** Runs one round on virtual time. */
  round(): ReturnType<Daemon['round']>;
}

export function simSettings(mode: Mode, over: Partial<DaemonSettings> = {}): DaemonSettings {
  const scenario = officeScenario({ hosts: 4, days: 2 });
  return {
    mode, intervalSec: 300, policy: compilePolicy('tide'), limits: { maxConcurrent: 2, maxPerHost: 1 },
    migrate: { mode: 'live', autoConverge: true, timeoutSec: 600 },
    hosts: Object.fromEntries(scenario.hosts.map((h) => [h.id, { power: h.power }])), rules: scenario.rules, bootTimeoutSec: 900,
    ...over,
  };
}

export function simDaemon(mode: Mode, opts: { store?: Store; settings?: Partial<DaemonSettings>; deps?: Partial<DaemonDeps>; secrets?: string[] } = {}): SimDaemon {
  const scenario = officeScenario({ hosts: 4, days: 2 });
  const clock = new VirtualClock(0);
  const driver = new SimDriver(scenario, clock);
  const store = opts.store ?? openSqliteStore(':memory:');
  const lines: string[] = [];
  const log = createLogger({ write: (l) => void lines.push(l), tty: false, clock, secrets: opts.secrets, level: 'debug' });
  const settings = simSettings(mode, opts.settings);
  const daemon = createDaemon({ clock, hypervisor: driver, power: driver, store, settings, log, pollMs: 0, stopGraceMs: 60_000, ...opts.deps });
  return { daemon, clock, driver, store, settings, lines, round: () => clock.drive(daemon.round()) };
}

/** A writable that keeps what is written (for pino destination tests). */
export function sink(): { stream: Writable; text: () => string } {
  let buf = '';
  const stream = new Writable({ write(chunk: Buffer, _enc, cb) { buf += chunk.toString(); cb(); } });
  return { stream, text: () => buf };
}
