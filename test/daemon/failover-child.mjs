// One of several controllers of one cluster, as a real process (test/daemon/failover.test.ts):
//
//   node test/daemon/failover-child.mjs STORE WORLD INTERVAL_SEC CUT_FILE
//
// STORE: a SQLite file, or `pg` — the PostgreSQL store whose connection (JSON: host, port,
// database, user, password, ssl, schema, timeoutMs) is in the environment variable
// TIDE_FAILOVER_PG (the test points it at a TCP proxy it can cut).
//
// The daemon of the built code (dist/) in automatic mode with standby on, over the shared
// SQLite store and the shared world (failover-world.mjs). Every side effect is logged in the
// world with this controller's fencing token (its lease) and the plan step it belongs to.
// CUT_FILE simulates a partition from the database: while it exists, every call of this
// process's store fails with TIDE_STORE_UNAVAILABLE (as a PostgreSQL client whose connection
// was cut; the world, i.e. the hypervisors, stays reachable). Logs: JSON lines on stdout.
import { existsSync } from 'node:fs';
import { recoverAtDaemonStart } from '../../dist/app/journal.js';
import { compilePolicy } from '../../dist/core/policy.js';
import { createDaemon } from '../../dist/daemon/daemon.js';
import { createLogger } from '../../dist/daemon/log.js';
import { DriverError } from '../../dist/drivers/errors.js';
import { systemClock } from '../../dist/executor/clock.js';
import { currentHolder } from '../../dist/store/lock.js';
import { openPgStore } from '../../dist/store/pg/store.js';
import { openSqliteStore } from '../../dist/store/store.js';
import { WorldDriver } from './failover-world.mjs';

const [storeFile, worldFile, intervalArg, cutFile] = process.argv.slice(2);
const intervalSec = Number(intervalArg);

const real = storeFile === 'pg' ? openPgStore(JSON.parse(process.env.TIDE_FAILOVER_PG)) : openSqliteStore(storeFile);
const wrapped = new Map();
const store = new Proxy(real, {
  get(t, k) {
    const v = t[k];
    if (typeof v !== 'function') return v;
    let w = wrapped.get(k);
    if (!w) {
      w = (...a) => {
        if (existsSync(cutFile)) throw new DriverError('TIDE_STORE_UNAVAILABLE', `the database cannot be reached (simulated partition of pid ${process.pid})`);
        return v.apply(t, a);
      };
      wrapped.set(k, w);
    }
    return w;
  },
});

/** VM → the plan step being executed for it (set by the observer before the side effect). */
const stepOf = new Map();
let daemon;
const world = new WorldDriver(worldFile, {
  err: (code, message) => new DriverError(code, message),
  context: (vm) => ({ token: daemon?.role().lease?.token ?? null, ...(vm !== undefined ? stepOf.get(vm) ?? {} : {}) }),
});

const log = createLogger({ write: (l) => process.stdout.write(l), tty: false, level: 'info', clock: systemClock });
let currentPlan = null;
daemon = createDaemon({
  clock: systemClock, hypervisor: world, power: world, store, log, standby: true, pollMs: 200, stopGraceMs: 5000,
  lockHolder: currentHolder('tide daemon (failover test)'),
  settings: {
    mode: 'automatic', intervalSec, policy: compilePolicy('tide'), limits: { maxConcurrent: 1, maxPerHost: 1 },
    migrate: { mode: 'live', timeoutSec: 60 }, hosts: { h1: { maintenance: true } }, bootTimeoutSec: 60,
  },
  onStart: async (ctx) => { await recoverAtDaemonStart(ctx); },
  observer: {
    onPlan: (_p, _at, id) => { currentPlan = id; },
    onStepStart: (r) => {
      const s = r.step;
      if (s.kind === 'migrate' || s.kind === 'place') stepOf.set(s.vm, { planId: currentPlan, stepId: s.id });
    },
  },
});

process.on('SIGTERM', () => daemon.stop({ reason: 'SIGTERM', graceMs: 3000 }));
const exit = await daemon.run();
await world.close();
try {
  real.close();
} catch { /* closed */ }
process.exit(exit.reason === 'lock-lost' ? 1 : 0);
