// A Tide process to be killed (test/e2e/lab-crash.test.ts). Runs on the built code (dist/,
// `npm run build`): Node 20 cannot run the TypeScript sources directly.
//
//   node test/helpers/crash-child.mjs run CONFIG STORE PLAN_JSON [MODE]
//     saves the plan (status running) and executes it with a Controller in automatic mode, as
//     the daemon does (MODE: live, suspend or offline instead of the config's migration mode);
//     prints {"planId", "run"} when (if) it finishes.
//   node test/helpers/crash-child.mjs recover CONFIG STORE
//     runs recoverOnStart once, as a daemon does when it starts; prints the report.
//
// Progress goes to stderr; the single JSON result line to stdout.
import { readFileSync } from 'node:fs';
import { Controller } from '../../dist/app/controller.js';
import { recoverOnStart, describeRecovery } from '../../dist/app/journal.js';
import { loadConfig } from '../../dist/config/load.js';
import { compilePolicy } from '../../dist/core/policy.js';
import { createDriver } from '../../dist/drivers/index.js';
import { systemClock } from '../../dist/executor/clock.js';
import { currentHolder } from '../../dist/store/lock.js';
import { openSqliteStore } from '../../dist/store/store.js';

const [cmd, configFile, storeFile, planFile, modeArg] = process.argv.slice(2);
const config = loadConfig(configFile);
const hypervisor = createDriver(config);
const store = openSqliteStore(storeFile);
const say = (m) => process.stderr.write(`[crash-child ${process.pid} ${cmd}] ${m}\n`);

try {
  if (cmd === 'run') {
    const plan = JSON.parse(readFileSync(planFile, 'utf8'));
    const { mode, maxConcurrent, maxPerHost, ...migrate } = config.migration;
    const c = new Controller({
      hypervisor, clock: systemClock, store, policy: compilePolicy('tide'), mode: 'automatic',
      limits: { maxConcurrent, maxPerHost }, migrate: { ...migrate, mode: modeArg ?? mode }, intervalSec: 10,
      lockHolder: currentHolder('tide crash-child run'),
      observer: {
        onStepStart: (r) => say(`step ${r.step.id} ${r.step.kind} ${r.step.vm ?? r.step.host ?? ''} started`),
        onStepEnd: (r) => say(`step ${r.step.id} ${r.state}${r.error ? ` ${r.error.code}: ${r.error.message}` : ''}`),
      },
    });
    const planId = store.savePlan(plan, { createdMs: Date.now(), mode: 'automatic', status: 'running' });
    say(`plan ${planId}: ${plan.steps.length} steps`);
    const run = await c.execute(plan, planId);
    process.stdout.write(`${JSON.stringify({ planId, run: { succeeded: run.succeeded, failed: run.failed, skipped: run.skipped, cancelled: run.cancelled } })}\n`);
  } else if (cmd === 'recover') {
    const report = await recoverOnStart({ store, hypervisor, clock: systemClock, settleMs: 180_000, pollMs: 500, lockHolder: currentHolder('tide crash-child recover') });
    for (const l of describeRecovery(report)) say(l);
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    throw new Error(`unknown command '${cmd}'`);
  }
} finally {
  store.close();
  await hypervisor.close();
}
