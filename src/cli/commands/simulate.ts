import { compareSimulations, defaultObserveDays, resultRecord, type SimResult } from '../../api/simulate.js';
import { LIMITS } from '../../input/schema.js';
import { num, parse, progressBar, table } from '../args.js';
import { UsageError, type Command } from '../io.js';

const usage = `tide simulate (--trace DIR|FILE | --scenario office[:hosts=N,days=N,seed=N]) [--policy NAME[:PARAM] | --compare P1,P2,...]
                [--accounting cloudsim|realistic] [--hosts N] [--days N] [--observe-days N] [--json]

  --trace DIR|FILE   PlanetLab directory (one file per VM) or a Tide .json/.csv trace, run on
                     CloudSim's 800-host PlanetLab datacenter
  --scenario NAME    built-in scenario (office: a small company's VMs on 2-6 hosts)
  --policy P         one policy: npa, dvfs, thr-mmt, iqr-mmt, mad-mmt, lr-mmt, lrr-mmt, thr-mu,
                     thr-mc, thr-rs, tide (any {thr,iqr,mad,lr,lrr}-{mmt,mu,mc,rs}); PARAM is the
                     threshold/safety parameter, or key=value,... arguments (default: tide)
  --compare LIST     several policies side by side on the same scenario
  --accounting A     cloudsim (CloudSim's optimistic accounting, default for traces) or
                     realistic (memory reserved, hosts on/off/waking, real saturation only;
                     default for built-in scenarios)
  --days N           with --scenario office: simulated days (same as office:days=N)
  --observe-days N   first run N days in recommend mode — plans computed, nothing carried out,
                     the demand profile learned — then act for the simulated days, as
                     docs/operations.md advises: start in recommend mode for a week (default 7
                     with --scenario, 0 with --trace; 0 = a cold start). Every figure covers the
                     acting period only
  --json             one JSON object per run (one per line), with the action timeline and
                     alwaysOnKWh (every host on, VMs spread) for built-in scenarios`;

function fmtRow(r: SimResult): (string | number)[] {
  return [
    r.policy,
    r.energyKWh.toFixed(2),
    Number.isFinite(r.energyRatio) ? r.energyRatio.toFixed(3) : '-',
    r.migrations,
    r.slatahPct.toFixed(2),
    r.pdmPct.toFixed(4),
    (r.slav * 1e5).toFixed(3),
    (r.esv * 1e3).toFixed(4),
    r.hostShutdowns,
    r.meanActiveHosts.toFixed(1),
    Math.round(r.wallMs),
  ];
}

export const simulateCommand: Command = {
  summary: 'replay a trace or scenario through one or more policies and report energy, SLA and migrations',
  usage,
  async run(argv, io) {
    const { values } = parse(argv, {
      trace: { type: 'string' },
      scenario: { type: 'string' },
      policy: { type: 'string' },
      compare: { type: 'string' },
      accounting: { type: 'string' },
      hosts: { type: 'string' },
      days: { type: 'string' },
      'observe-days': { type: 'string' },
      json: { type: 'boolean' },
    });
    // Without --policy or --compare, Tide's own policy runs (the command the docs quote).
    const policies = values.compare !== undefined ? splitPolicyList(String(values.compare)) : [values.policy !== undefined ? String(values.policy) : 'tide'];
    if (policies.length === 0) throw new UsageError('give --policy NAME or --compare P1,P2,...');
    if (values.policy !== undefined && values.compare !== undefined) throw new UsageError('give either --policy or --compare');
    if (values.trace === undefined && values.scenario === undefined) throw new UsageError('give --trace DIR|FILE or --scenario office');
    const accounting = values.accounting as string | undefined;
    if (accounting !== undefined && accounting !== 'cloudsim' && accounting !== 'realistic') throw new UsageError(`--accounting must be cloudsim or realistic (got '${accounting}')`);
    const hosts = values.hosts === undefined ? undefined : num(values.hosts as string, '--hosts', 0, { min: 1, max: LIMITS.simHosts, int: true });
    const scenario = withDays(values.scenario as string | undefined, values.days as string | undefined);
    const observeArg = values['observe-days'] as string | undefined;
    const observeDays = num(observeArg, '--observe-days', defaultObserveDays({ trace: values.trace as string | undefined }), { min: 0, max: LIMITS.officeDays, int: true });
    let bar: ReturnType<typeof progressBar> | null = null;
    let current = '';
    const results = compareSimulations({
      trace: values.trace as string | undefined,
      scenario,
      hosts,
      observeDays,
      policies,
      accounting: accounting as 'cloudsim' | 'realistic' | undefined,
      onProgress: (p, f) => {
        if (p !== current) {
          bar?.done();
          bar = progressBar(io, p.padEnd(14));
          current = p;
        }
        bar!.update(f);
      },
    });
    (bar as ReturnType<typeof progressBar> | null)?.done();
    // A trace without any CPU load has a zero lower bound: the ratio is undefined (JSON null,
    // '-' in the table); say so rather than print zeros without a word.
    if (results[0]!.lowerBoundKWh === 0) io.err(`note: ${results[0]!.scenario} has no CPU load at all; the energy lower bound is 0, so ×bound is undefined (energyRatio null)\n`);
    if (values.json) {
      for (const r of results) io.out(JSON.stringify(resultRecord(r)) + '\n');
      return 0;
    }
    const first = results[0]!;
    io.out(`${first.scenario}: ${first.hosts} hosts, ${first.vms} VMs, ${first.accounting} accounting; energy lower bound ${first.lowerBoundKWh.toFixed(2)} kWh\n`);
    const observed = first.observedSec / 86_400;
    io.out(observed > 0
      ? `observed ${observed} day(s) in recommend mode first (plans computed, nothing carried out; ${results.map((r) => `${r.policy}: ${r.recommendedPlans} plan(s) recommended`).join(', ')}); the figures cover the acting period after it\n\n`
      : 'cold start: acting from the first round, nothing learned beforehand (--observe-days N to observe first)\n\n');
    io.out(table(['policy', 'energy kWh', '×bound', 'migrations', 'SLATAH %', 'PDM %', 'SLAV ×1e-5', 'ESV ×1e-3', 'shutdowns', 'hosts on', 'wall ms'], results.map(fmtRow)));
    return 0;
  },
};

/**
 * `--days N` folded into the scenario spec (`office` → `office:days=N`), so the scenario's own
 * validation (src/input) checks it like `office:days=N` (and rejects days given twice); the
 * number is checked here first so nothing but a number reaches the spec.
 */
function withDays(scenario: string | undefined, days: string | undefined): string | undefined {
  if (days === undefined) return scenario;
  if (scenario === undefined) throw new UsageError('--days needs --scenario office');
  const n = num(days, '--days', 0, { min: 1 / 24, max: LIMITS.officeDays });
  const at = scenario.indexOf(':');
  return at < 0 ? `${scenario}:days=${n}` : `${scenario},days=${n}`;
}

/**
 * `--compare` list: commas separate policies, but a piece of the form `key=value` (an '=' and no
 * ':') continues the previous policy's arguments, so `lr-mmt:param=1.2,faithful=true,tide` is two
 * policies (three pieces).
 */
export function splitPolicyList(list: string): string[] {
  const out: string[] = [];
  for (const piece of list.split(',').map((p) => p.trim()).filter(Boolean)) {
    const continues = piece.includes('=') && !piece.includes(':') && out.length > 0 && out[out.length - 1]!.includes(':');
    if (continues) out[out.length - 1] += `,${piece}`;
    else out.push(piece);
  }
  return out;
}
