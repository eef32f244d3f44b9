/**
 * A private PostgreSQL server for the tests: initdb into a temp directory, `postgres` on
 * 127.0.0.1 at a free port, password (scram-sha-256) authentication, killed at teardown.
 * PostgreSQL refuses to run as root: as root the binaries run as the `postgres` system user
 * (setpriv, argv only), the directory chowned to it; as another user they run as that user.
 *
 * Binaries: /usr/lib/postgresql/<v>/bin (Debian's postgresql package), or TIDE_PG_BIN.
 * Missing: under CI (CI / TIDE_REQUIRE_LAB set) startPostgres throws; elsewhere it returns the
 * reason to skip, and the test file prints it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PgServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** A file holding the password (for `passwordFile`). */
  readonly passwordFile: string;
  /** Creates a fresh database (each test suite its own); returns its name. */
  createDatabase(name: string): string;
  /** Runs SQL as the superuser (psql -c), e.g. to break things on purpose; returns stdout. */
  psql(database: string, sql: string): string;
  stop(): Promise<void>;
}

export const PG_REQUIRED = Boolean(process.env.CI || process.env.TIDE_REQUIRE_LAB);

function pgBin(): string | null {
  if (process.env.TIDE_PG_BIN) return process.env.TIDE_PG_BIN;
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], 'bin') : null;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

function pgUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string): number => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!(uid > 0)) throw new Error('running as root, and there is no `postgres` system user to run PostgreSQL as');
  return { uid, gid };
}

/**
 * argv running `bin` as the server's user (setpriv when root). `dieWithUs`: SIGKILL it when this
 * process dies (prctl PDEATHSIG via setpriv), so a test run killed outright leaves no server.
 */
function asPg(who: { uid: number; gid: number } | null, bin: string, args: string[], dieWithUs = false): [string, string[]] {
  const death = dieWithUs ? ['--pdeathsig', 'KILL'] : [];
  if (who) return ['setpriv', [...death, '--reuid', String(who.uid), '--regid', String(who.gid), '--clear-groups', '--', bin, ...args]];
  return dieWithUs && existsSync('/usr/bin/setpriv') ? ['setpriv', [...death, '--', bin, ...args]] : [bin, args];
}

/**
 * Why the PostgreSQL tests cannot run here (no server binaries), or null. Synchronous, for
 * describe.skipIf; under CI always null (startPostgres then fails loudly instead).
 */
export function postgresSkipReason(): string | null {
  if (PG_REQUIRED || pgBin()) return null;
  return 'PostgreSQL server binaries not found (apt-get install postgresql, or set TIDE_PG_BIN)';
}

/** Starts the server, or returns why it cannot (never under CI: there it throws). */
export async function startPostgres(): Promise<PgServer | { skip: string }> {
  const bin = pgBin();
  if (!bin) {
    const why = 'PostgreSQL server binaries not found (apt-get install postgresql, or set TIDE_PG_BIN)';
    if (PG_REQUIRED) throw new Error(`${why}; required under CI`);
    return { skip: why };
  }
  const who = pgUser();
  const dir = mkdtempSync(join(tmpdir(), 'tide-pg-'));
  const data = join(dir, 'data');
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  if (who) {
    chownSync(dir, who.uid, who.gid);
    chownSync(passwordFile, who.uid, who.gid);
    chmodSync(dir, 0o755); // the tests (root) read the password file; the server owns the directory
  }
  const user = 'tide';
  const run = (b: string, args: string[]): string => {
    const [cmd, argv] = asPg(who, join(bin, b), args);
    const r = spawnSync(cmd, argv, { encoding: 'utf8', cwd: dir });
    if (r.status !== 0) throw new Error(`${b} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  run('initdb', ['-D', data, '-U', user, '--pwfile', passwordFile, '--auth', 'scram-sha-256', '-E', 'UTF8', '--no-sync', '--locale', 'C']);
  const port = await freePort();
  const [cmd, argv] = asPg(who, join(bin, 'postgres'), [
    '-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'synchronous_commit=off',
  ], true);
  const proc: ChildProcess = spawn(cmd, argv, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-4000); });
  const env = { ...process.env, PGPASSWORD: password };
  const psql = (database: string, sql: string): string => {
    const r = spawnSync(join(bin, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', database, '-v', 'ON_ERROR_STOP=1', '-tAc', sql], { encoding: 'utf8', env });
    if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
    return r.stdout;
  };
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGQUIT'); // immediate shutdown
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 5 }); // backends may still be closing files
  };
  // Ready when psql gets in (at most ~30 s).
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`postgres exited (${proc.exitCode}): ${log}`);
    }
    const r = spawnSync(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)], { encoding: 'utf8' });
    if (r.status === 0) break;
    if (i > 300) {
      await stop();
      throw new Error(`postgres did not accept connections on 127.0.0.1:${port}: ${log}`);
    }
    await new Promise((r2) => setTimeout(r2, 100));
  }
  return {
    host: '127.0.0.1', port, user, password, passwordFile,
    createDatabase(name) {
      psql('postgres', `CREATE DATABASE "${name}"`);
      return name;
    },
    psql,
    stop,
  };
}
