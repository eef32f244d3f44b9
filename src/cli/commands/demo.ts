import { clockLabel, DEMO_OBSERVE_DAYS, runDemo } from '../../api/demo.js';
import { DAY_PER_TEN_MINUTES, runDemoServe } from '../../api/demo-serve.js';
import { WEEK_PER_MINUTE } from '../../api/pacing.js';
import { checkStorePath, LIMITS } from '../../input/schema.js';
import { num, parse, table } from '../args.js';
import { UsageError, type Command } from '../io.js';

const usage = `tide demo [--hours H] [--hosts N] [--policy P] [--mode automatic|approve|recommend] [--seed S] [--store FILE]
          [--speed X] [--observe-days N] [--json] [--quiet]
tide demo --serve [--port P] [--token-file F] [--speed X] [--hours H] [--hosts N] [--mode M] [--store FILE]
          [--observe-days N]

  Runs the Tide daemon (collect → plan → execute, as \`tide daemon\` does) on the embedded
  simulated datacenter: a small company's mail, FTP, web, database and file VMs on N hosts
  (2-6, default 4), with a working-day load curve, over H hours (default 48) of virtual time.
  Prints a live timeline — every migration and power action with its reason, stamped with the
  simulated time — then energy with Tide against the datacenter left alone.

  On a terminal the run is paced for watching: X simulated seconds per wall second (default
  ${Math.round(WEEK_PER_MINUTE)}: a week in about a minute, the default 48 h in about 17 s). With --json, or when
  stdout is not a terminal, it runs as fast as it can unless --speed is given.

  --observe-days N: as docs/operations.md advises — start in recommend mode for a week — the
  daemon first runs N days (default ${DEMO_OBSERVE_DAYS}) in recommend mode: plans computed and stored,
  nothing executed, the metrics history recorded, the demand profile learned; then its
  configuration is reloaded in --mode (default automatic), as with SIGHUP. The observation
  runs as fast as it can; the H hours after it are the run shown and measured.
  --observe-days 0 acts from the first round (a cold start: nothing learned). With --serve the
  default is 0 (a cold start); --serve --observe-days N runs the N days first, as fast as it can
  (before the URL is printed), then serves the H acting hours paced — the dashboard's history
  and its always-on baseline include the observed days.

  --serve runs the same daemon at a watchable ${Math.round(DAY_PER_TEN_MINUTES)}× (a day in about 10 minutes; --speed)
  over H hours (default 168) and serves the HTTP API and the dashboard on 127.0.0.1:P (default
  0: a free port; the URL is printed) until Ctrl-C. An admin token is written to F (mode 0600)
  or, without --token-file, printed once.`;

export const demoCommand: Command = {
  summary: "run Tide's DRS+DPM loop on the embedded simulated office datacenter",
  usage,
  async run(argv, io) {
    const { values } = parse(argv, {
      hours: { type: 'string' }, hosts: { type: 'string' }, policy: { type: 'string' }, mode: { type: 'string' },
      seed: { type: 'string' }, store: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' }, speed: { type: 'string' },
      serve: { type: 'boolean' }, port: { type: 'string' }, 'token-file': { type: 'string' }, 'observe-days': { type: 'string' },
    });
    const mode = (values.mode as string | undefined) ?? 'automatic';
    if (!['automatic', 'approve', 'recommend'].includes(mode)) throw new UsageError(`--mode must be automatic, approve or recommend (got '${mode}')`);
    const hosts = num(values.hosts as string | undefined, '--hosts', 4, { int: true, min: 2, max: 6 });
    const hours = num(values.hours as string | undefined, '--hours', 48, { min: 1, max: LIMITS.demoHours });
    const seed = num(values.seed as string | undefined, '--seed', 7, { int: true, min: 0, max: 2 ** 32 - 1 });
    if (values.store !== undefined) checkStorePath(values.store as string, '--store');
    const observeArg = values['observe-days'] as string | undefined;
    const observeDays = num(observeArg, '--observe-days', DEMO_OBSERVE_DAYS, { int: true, min: 0, max: LIMITS.officeDays });
    const speedArg = values.speed as string | undefined;
    if (values.serve) {
      if (values.json) throw new UsageError('--serve and --json do not go together');
      // Served: a cold start unless --observe-days is given (then observed fast, acting paced).
      const serveObserveDays = observeArg === undefined ? 0 : observeDays;
      const serveHours = values.hours === undefined ? 168 : hours;
      if (serveObserveDays * 24 + serveHours > LIMITS.officeDays * 24) throw new UsageError(`--observe-days ${serveObserveDays} and --hours ${serveHours} exceed ${LIMITS.officeDays} simulated days together`);
      const port = num(values.port as string | undefined, '--port', 0, { int: true, min: 0, max: 65535 });
      if (serveObserveDays > 0) io.out(`observing ${serveObserveDays} day(s) in recommend mode first, as fast as it can (plans stored, nothing executed)…\n`);
      return runDemoServe(io, {
        port, hosts, mode: mode as 'automatic', seed, policy: values.policy as string | undefined,
        observeDays: serveObserveDays,
        onObserved: (o) => io.out(`observed ${o.observeDays} day(s) in ${(o.wallMs / 1000).toFixed(1)} s: ${o.recommendedPlans} plan(s) recommended, nothing executed; now acting in ${mode} mode\n`),
        hours: serveHours, storePath: values.store as string | undefined,
        speed: num(speedArg, '--speed', DAY_PER_TEN_MINUTES, { min: 1, max: 1e9 }),
        tokenFile: values['token-file'] as string | undefined,
      });
    }
    if (values.port !== undefined || values['token-file'] !== undefined) throw new UsageError('--port and --token-file need --serve');
    const speed = num(speedArg, '--speed', WEEK_PER_MINUTE, { min: 1, max: 1e9 });
    // Paced only for someone watching: never with --json; off a terminal only when asked.
    const paced = !values.json && (speedArg !== undefined || io.outIsTty === true);
    if (!values.json && !values.quiet && observeDays > 0) io.out(`observing ${observeDays} day(s) in recommend mode first (plans stored, nothing executed; --observe-days 0 for a cold start)…\n`);
    if (paced && !values.quiet) io.out(`${hours} simulated hours at ${Math.round(speed)}× (about ${((hours * 3600) / speed).toFixed(0)} s; --speed to change)\n`);
    const summary = await runDemo({
      hours,
      hosts,
      policy: values.policy as string | undefined,
      mode: mode as 'automatic',
      seed,
      storePath: values.store as string | undefined,
      observeDays,
      speed: paced ? speed : Infinity,
      onEvent: values.json || values.quiet ? undefined : (e) => io.out(`${clockLabel(e.atSec)}  ${e.text}\n`),
    });
    if (values.json) {
      io.out(JSON.stringify(summary) + '\n');
      return 0;
    }
    io.out(`\n${summary.scenario}, policy ${summary.policy}, mode ${summary.mode}, ${summary.hours} h\n`);
    io.out(summary.observeDays > 0
      ? `after ${summary.observeDays} day(s) observed in recommend mode (${summary.recommendedPlans} plan(s) recommended, nothing executed); the figures cover the ${summary.hours} h after it\n\n`
      : 'cold start: acting from the first round, nothing learned beforehand\n\n');
    io.out(table(['', 'energy kWh', 'hosts on (mean)', 'migrations', 'power on/off', 'saturated host-intervals'], [
      ['with Tide', summary.energyKWh.toFixed(2), summary.meanHostsOn.toFixed(2), summary.migrations, `${summary.powerOns}/${summary.powerOffs}`, summary.saturatedIntervals],
      ['left alone', summary.baselineEnergyKWh.toFixed(2), summary.hosts.toFixed(2), 0, '0/0', summary.baselineSaturatedIntervals],
    ]));
    io.out(`\nenergy saved: ${summary.savedPct.toFixed(1)} %${summary.failedSteps ? `; ${summary.failedSteps} step(s) failed` : ''}\n`);
    io.out(`energy lower bound: ${summary.lowerBoundKWh.toFixed(2)} kWh (with Tide: ×${(summary.energyKWh / summary.lowerBoundKWh).toFixed(3)}); most moves of one VM in a day: ${summary.maxMovesPerVmPerDay}; shortest time a host stayed off: ${summary.shortestOffSec === null ? '-' : `${(summary.shortestOffSec / 60).toFixed(0)} min`}\n`);
    return 0;
  },
};
