// A simulated cluster whose state is shared by several processes (test/daemon/failover.test.ts):
// one SQLite file (WAL, IMMEDIATE transactions) holds the hosts, the VMs, the migration jobs and
// a log of every side effect with the fencing token of the controller that did it.
//
// Model, as libvirt behaves for a managed (peer-to-peer) migration: the job runs on the
// hypervisors, not in the client — a migration started by a controller that is then killed or
// paused still completes at its end time (completed lazily by whoever reads the world next). The
// client's migrate() waits for its job; aborting it (signal) cancels the job if it has not ended
// (the VM stays on its source), recorded as an 'abort' effect. A second migration of a VM whose
// job runs is refused, as libvirt refuses a second job.
//
// Plain JavaScript: the failover children run on the built code (dist/), as process.test.ts.
import Database from 'better-sqlite3';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS hosts (name TEXT PRIMARY KEY, power TEXT NOT NULL, cores INTEGER NOT NULL, mem_mib INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vms (name TEXT PRIMARY KEY, host TEXT NOT NULL, state TEXT NOT NULL, vcpus INTEGER NOT NULL, mem_mib INTEGER NOT NULL, cpu_pct REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (vm TEXT PRIMARY KEY, host_from TEXT NOT NULL, host_to TEXT NOT NULL, end_ms INTEGER NOT NULL, effect_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS effects (
  id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, pid INTEGER NOT NULL, token TEXT, kind TEXT NOT NULL,
  vm TEXT, host_from TEXT, host_to TEXT, plan_id INTEGER, step_id INTEGER, outcome TEXT
);
`;

export function openWorldDb(path) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 10000');
  db.exec(SCHEMA);
  return db;
}

/** Creates the world: hosts [{name, cores, memMiB, power}] and vms [{name, host, vcpus, memMiB, cpuPct}]. */
export function seedWorld(path, { hosts, vms }) {
  const db = openWorldDb(path);
  db.transaction(() => {
    for (const h of hosts) db.prepare('INSERT INTO hosts VALUES (?, ?, ?, ?)').run(h.name, h.power ?? 'on', h.cores, h.memMiB);
    for (const v of vms) db.prepare("INSERT INTO vms VALUES (?, ?, 'running', ?, ?, ?)").run(v.name, v.host, v.vcpus, v.memMiB, v.cpuPct);
  })();
  db.close();
}

class DriverLikeError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * The hypervisor and power driver over the shared world. `err(code, message)` builds the
 * project's DriverError (passed in from dist/, so codes are recognised); `context()` gives
 * {token, planId, stepId} for the effect being done (the controller's lease and step).
 */
export class WorldDriver {
  kind = 'sim';

  constructor(path, { err, context, migrateMs = 1500 }) {
    this.db = openWorldDb(path);
    this.err = err ?? ((c, m) => new DriverLikeError(c, m));
    this.context = context;
    this.migrateMs = migrateMs;
    this.prevSample = new Map();
  }

  /** Completes the jobs whose end time passed (the hypervisors did them). */
  settle() {
    const now = Date.now();
    // A plain read first: the write lock is taken only when a job is due (a process paused in
    // a transaction would block the others, as a paused client holding a row lock would).
    if (!this.db.prepare('SELECT 1 FROM jobs WHERE end_ms <= ? LIMIT 1').get(now)) return;
    this.db.transaction(() => {
      for (const j of this.db.prepare('SELECT * FROM jobs WHERE end_ms <= ?').all(now)) {
        this.db.prepare('UPDATE vms SET host = ? WHERE name = ?').run(j.host_to, j.vm);
        this.db.prepare("UPDATE effects SET outcome = 'done' WHERE id = ?").run(j.effect_id);
        this.db.prepare('DELETE FROM jobs WHERE vm = ?').run(j.vm);
      }
    }).immediate();
  }

  effect(kind, f) {
    const c = this.context(f.vm);
    return Number(this.db.prepare('INSERT INTO effects (at_ms, pid, token, kind, vm, host_from, host_to, plan_id, step_id, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(Date.now(), process.pid, c.token, kind, f.vm ?? null, f.from ?? null, f.to ?? null, c.planId ?? null, c.stepId ?? null, f.outcome ?? null).lastInsertRowid);
  }

  hostRow(name) {
    const h = this.db.prepare('SELECT * FROM hosts WHERE name = ?').get(name);
    if (!h) throw this.err('TIDE_NO_SUCH_HOST', `no host ${name}`);
    return h;
  }

  vmInfo(v) {
    return { name: v.name, uuid: `uuid-${v.name}`, host: v.host, state: v.state, vcpus: v.vcpus, memMiB: v.mem_mib, persistent: true };
  }

  async listHosts() {
    this.settle();
    return this.db.prepare('SELECT * FROM hosts ORDER BY name').all().map((h) => ({
      name: h.name, uuid: `uuid-${h.name}`, hostname: h.name, cpuCores: h.cores, cpuMhz: 2000, memMiB: h.mem_mib, cpuModel: 'sim', up: h.power === 'on',
      ...(h.power === 'on' ? {} : { reason: `${h.name} is powered off` }),
    }));
  }

  async listVms() {
    this.settle();
    return this.db.prepare("SELECT v.* FROM vms v JOIN hosts h ON h.name = v.host WHERE h.power = 'on' ORDER BY v.name").all().map((v) => this.vmInfo(v));
  }

  async hostDomains(host) {
    this.settle();
    const h = this.hostRow(host);
    if (h.power !== 'on') throw this.err('TIDE_HOST_UNREACHABLE', `${host} does not answer (powered off)`);
    return this.db.prepare('SELECT * FROM vms WHERE host = ? ORDER BY name').all(host).map((v) => this.vmInfo(v));
  }

  async sample() {
    this.settle();
    const now = Date.now();
    const hosts = this.db.prepare("SELECT * FROM hosts WHERE power = 'on'").all();
    const vms = this.db.prepare("SELECT v.* FROM vms v JOIN hosts h ON h.name = v.host WHERE h.power = 'on'").all();
    return {
      hosts: hosts.map((h) => {
        const mine = vms.filter((v) => v.host === h.name);
        const busy = mine.reduce((a, v) => a + (v.cpu_pct / 100) * v.vcpus, 0);
        return { host: h.name, atMs: now, cpuPct: Math.min(100, (100 * busy) / h.cores), memUsedMiB: mine.reduce((a, v) => a + v.mem_mib, 0), memTotalMiB: h.mem_mib };
      }),
      vms: vms.map((v) => ({
        vm: v.name, host: v.host, atMs: now, cpuPct: v.cpu_pct, memUsedMiB: v.mem_mib,
        diskReadBytesPerSec: 0, diskWriteBytesPerSec: 0, netRxBytesPerSec: 0, netTxBytesPerSec: 0,
      })),
    };
  }

  async preflight(vm, to) {
    const v = this.db.prepare('SELECT * FROM vms WHERE name = ?').get(vm);
    const t = this.db.prepare('SELECT * FROM hosts WHERE name = ?').get(to);
    return [
      { check: 'vm-exists', ok: Boolean(v), reason: v ? `${vm} is on ${v.host}` : `no VM ${vm}` },
      { check: 'target-reachable', ok: t?.power === 'on', reason: t ? `${to} is ${t.power}` : `no host ${to}` },
    ];
  }

  async migrate(vm, to, opts, signal) {
    this.settle();
    const start = this.db.transaction(() => {
      const v = this.db.prepare('SELECT * FROM vms WHERE name = ?').get(vm);
      if (!v) throw this.err('TIDE_NO_SUCH_VM', `no VM ${vm}`);
      if (this.db.prepare('SELECT 1 FROM jobs WHERE vm = ?').get(vm)) throw this.err('TIDE_MIGRATION_FAILED', `${vm}: another migration job is running`);
      if (v.host === to) throw this.err('TIDE_PREFLIGHT_FAILED', `${vm} is already on ${to}`);
      const t = this.hostRow(to);
      if (t.power !== 'on') throw this.err('TIDE_HOST_UNREACHABLE', `${to} is off`);
      const id = this.effect('migrate', { vm, from: v.host, to, outcome: 'running' });
      this.db.prepare('INSERT INTO jobs VALUES (?, ?, ?, ?, ?)').run(vm, v.host, to, Date.now() + this.migrateMs, id);
      return { from: v.host, id };
    });
    const { from, id } = start.immediate();
    const t0 = Date.now();
    for (;;) {
      this.settle();
      const e = this.db.prepare('SELECT outcome FROM effects WHERE id = ?').get(id);
      if (e.outcome === 'done') return { vm, from, to, mode: opts.mode, totalMs: Date.now() - t0, downtimeMs: 20, bytes: null, iterations: 1, postCopy: false };
      if (signal?.aborted) {
        const cancelled = this.db.transaction(() => {
          if (!this.db.prepare('DELETE FROM jobs WHERE vm = ? AND effect_id = ?').run(vm, id).changes) return false;
          this.db.prepare("UPDATE effects SET outcome = 'aborted' WHERE id = ?").run(id);
          this.effect('abort', { vm, from, to });
          return true;
        }).immediate();
        if (cancelled) throw this.err('TIDE_ABORTED', `migration of ${vm} aborted; it stays on ${from}`);
        continue;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async reconcile(vm, o = {}) {
    const deadline = Date.now() + (o.settleMs ?? 0);
    for (;;) {
      this.settle();
      if (!this.db.prepare('SELECT 1 FROM jobs WHERE vm = ?').get(vm) || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const v = this.db.prepare('SELECT * FROM vms WHERE name = ?').get(vm);
    const job = this.db.prepare('SELECT 1 FROM jobs WHERE vm = ?').get(vm);
    const from = o.from ?? v?.host ?? '';
    const to = o.to ?? v?.host ?? '';
    const outcome = job || !v ? 'unknown' : v.host === to ? 'target' : v.host === from ? 'source' : 'unknown';
    return { vm, from, to, outcome, actions: [], reason: `world: ${vm} is on ${v?.host ?? 'no host'}${job ? ' (a job still runs)' : ''}`, vmOn: job ? null : v?.host ?? null };
  }

  async start(vm) {
    this.effect('start', { vm });
    this.db.prepare("UPDATE vms SET state = 'running' WHERE name = ?").run(vm);
  }

  async stop(vm) {
    this.effect('stop', { vm });
    this.db.prepare("UPDATE vms SET state = 'shutoff' WHERE name = ?").run(vm);
  }

  async suspend() {
    throw this.err('TIDE_UNSUPPORTED', 'world: suspend');
  }

  async resume() {
    throw this.err('TIDE_UNSUPPORTED', 'world: resume');
  }

  // ---- power
  async status(host) {
    return this.hostRow(host).power;
  }

  async powerOn(host) {
    this.effect('powerOn', { to: host });
    this.db.prepare("UPDATE hosts SET power = 'on' WHERE name = ?").run(host);
  }

  async powerOff(host) {
    this.effect('powerOff', { from: host });
    this.db.prepare("UPDATE hosts SET power = 'off' WHERE name = ?").run(host);
  }

  async close() {
    this.db.close();
  }
}
