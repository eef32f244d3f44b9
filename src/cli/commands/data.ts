import { DataError, fetchPlanetlab, isDayVerified, PLANETLAB_SOURCE, planetlabCacheDir, planetlabDays } from '../../api/data.js';
import { num, parse, progressBar } from '../args.js';
import { UsageError, type Command } from '../io.js';

const usage = `tide data fetch planetlab [--dir DIR] [--days D1,D2,...] [--source URL] [--manifest FILE]
                          [--concurrency N] [--timeout SEC] [--json]
      download the PlanetLab traces (one directory per day) from CloudSim's public repository
      into DIR (default $XDG_CACHE_HOME/tide/planetlab or ~/.cache/tide/planetlab) and verify
      every file against the SHA-256 checksums kept in the repository (data/planetlab.sha256).
      Files already verified are kept; an interrupted run resumes. Tests and benchmarks find the
      traces there (or wherever TIDE_PLANETLAB_DIR points).
        --days       days to fetch (default: all the manifest lists)
        --source     base URL holding <day>/<file> (default ${PLANETLAB_SOURCE})
        --manifest   checksum list in sha256sum format to use instead of the repository's
        --concurrency  simultaneous downloads (default 8, at most 64)
        --timeout    seconds per request, headers and body (default 30)
tide data status planetlab [--dir DIR] [--json]
      the cache directory and which days in it are complete and verified`;

function dataset(positionals: string[], verb: string): void {
  const what = positionals[1];
  if (what !== 'planetlab') throw new UsageError(`${verb} what? expected 'planetlab' (got ${what === undefined ? 'nothing' : `'${what}'`})`);
  if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`);
}

export const dataCommand: Command = {
  summary: 'reference data: download and verify the PlanetLab traces (`data fetch planetlab`)',
  usage,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      dir: { type: 'string' },
      days: { type: 'string' },
      source: { type: 'string' },
      manifest: { type: 'string' },
      concurrency: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    }, true);
    const verb = positionals[0];
    const dir = typeof values.dir === 'string' ? values.dir : planetlabCacheDir(io.env);
    if (values.dir === '') throw new UsageError('--dir must not be empty');

    if (verb === 'status') {
      dataset(positionals, 'status');
      for (const flag of ['days', 'source', 'manifest', 'concurrency', 'timeout'] as const) if (values[flag] !== undefined) throw new UsageError(`--${flag} applies to 'fetch' only`);
      const days = planetlabDays().map((day) => ({ day, verified: isDayVerified(dir, day) }));
      if (values.json) io.out(JSON.stringify({ dir, days }, null, 2) + '\n');
      else {
        io.out(`${dir}\n`);
        for (const d of days) io.out(`  ${d.day}  ${d.verified ? 'verified' : 'missing'}\n`);
      }
      return 0;
    }
    if (verb !== 'fetch') throw new UsageError(`expected 'fetch' or 'status' (got ${verb === undefined ? 'nothing' : `'${verb}'`})`);
    dataset(positionals, 'fetch');

    let days: string[] | undefined;
    if (typeof values.days === 'string') {
      days = values.days.split(',').map((d) => d.trim()).filter((d) => d !== '');
      if (days.length === 0) throw new UsageError('--days needs at least one day (e.g. 20110303)');
      const bad = days.find((d) => !/^\d{8}$/.test(d));
      if (bad !== undefined) throw new UsageError(`--days: '${bad}' is not a day (YYYYMMDD)`);
    }
    const source = typeof values.source === 'string' ? values.source : undefined;
    if (source !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(source);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new UsageError(`--source must be an http(s) URL (got '${source}')`);
    }
    const concurrency = num(values.concurrency as string | undefined, '--concurrency', 8, { min: 1, int: true });
    if (concurrency > 64) throw new UsageError(`--concurrency must be at most 64 (got ${concurrency})`);
    const timeoutSec = num(values.timeout as string | undefined, '--timeout', 30, { min: 0.001 });
    if (timeoutSec > 86_400) throw new UsageError(`--timeout must be at most 86400 seconds (got ${timeoutSec})`);

    const bar = progressBar(io, 'planetlab');
    let report;
    try {
      report = await fetchPlanetlab({
        dir,
        days,
        source,
        manifestFile: typeof values.manifest === 'string' ? values.manifest : undefined,
        concurrency,
        timeoutMs: Math.max(1, Math.round(timeoutSec * 1000)),
        onProgress: (done, total) => bar.update(done / total),
      });
    } catch (e) {
      if (e instanceof DataError && (e.code === 'TIDE_DATA_FETCH' || e.code === 'TIDE_DATA_CHECKSUM')) {
        throw new DataError(e.code, `${e.message}\n  files verified so far are kept in ${dir}: run the command again to resume`, { cause: e });
      }
      throw e;
    } finally {
      bar.done();
    }
    if (values.json) {
      io.out(JSON.stringify(report, null, 2) + '\n');
      return 0;
    }
    io.out(`planetlab: ${report.files} files verified in ${report.dir} (${report.downloaded} downloaded, ${(report.bytesDownloaded / 1e6).toFixed(1)} MB; ${report.cached} already cached${report.replaced ? `; ${report.replaced} corrupt copies replaced` : ''})\n`);
    io.out(`days: ${report.verifiedGroups.join(', ')}\n`);
    io.out(`tests and \`npm run bench\` find them there; e.g. tide simulate --trace ${report.dir}/${report.verifiedGroups[0] ?? '<day>'} --compare tide,lr-mmt:1.2\n`);
    return 0;
  },
};
