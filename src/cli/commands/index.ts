import type { Command } from '../io.js';

/** A command as the dispatcher knows it: its one-line summary, and how to load it. */
export interface CommandEntry {
  readonly summary: string;
  load(): Promise<Command>;
}

/**
 * Every CLI command, registered explicitly (no discovery). Each lives in its own module and is
 * a thin shell over the programmatic API in src/api. Modules load on demand, so `tide migrate`
 * does not pay for loading the simulator or the lab (start-up time is part of every command).
 */
export const commands: Record<string, CommandEntry> = {
  demo: { summary: "run Tide's DRS+DPM loop on the embedded simulated office datacenter", load: async () => (await import('./demo.js')).demoCommand },
  simulate: { summary: 'replay a trace or scenario through one or more policies and report energy, SLA and migrations', load: async () => (await import('./simulate.js')).simulateCommand },
  lab: { summary: 'two-host libvirt lab on this machine for end-to-end tests (root)', load: async () => (await import('./lab.js')).labCommand },
  bench: { summary: 'benchmarks: `plan` (planner speed on a synthetic cluster), `loop` (the full daemon round at scale, simulated), `migrate` (migration settings on real hosts)', load: async () => (await import('./bench.js')).benchCommand },
  hosts: { summary: 'list the hosts with capacity and utilisation', load: async () => (await import('./hosts.js')).hostsCommand },
  vms: { summary: 'list the VMs with their utilisation', load: async () => (await import('./vms.js')).vmsCommand },
  migrate: { summary: 'live-migrate (or move offline / suspended) one VM to another host', load: async () => (await import('./migrate.js')).migrateCommand },
  evacuate: { summary: 'move every VM off a host (maintenance), under the concurrency limits', load: async () => (await import('./evacuate.js')).evacuateCommand },
  place: { summary: 'start a shut-off VM on the host the planner picks, and say why', load: async () => (await import('./place.js')).placeCommand },
  'wake-test': { summary: 'DPM wake-path test: can a host be woken again? (recorded; a failed host is never powered off)', load: async () => (await import('./wake-test.js')).wakeTestCommand },
  reconcile: { summary: 'finish migrations whose outcome was unknown (the source left paused); exit 1 while any stays unknown', load: async () => (await import('./reconcile.js')).reconcileCommand },
  config: { summary: 'the configuration file: its JSON Schema, or check one', load: async () => (await import('./config.js')).configCommand },
  status: { summary: "the daemon's mode, schedule window, freeze, last round, pending plans, lock holder", load: async () => (await import('./status.js')).statusCommand },
  plans: { summary: 'list the plans the daemon proposed, executed or retired, with their status', load: async () => (await import('./plans.js')).plansCommand },
  plan: { summary: 'plan show ID: steps with reasons and run states, what was not moved and why', load: async () => (await import('./plan.js')).planCommand },
  approve: { summary: 'approve a proposed plan: the daemon executes it if the cluster did not change', load: async () => (await import('./approve.js')).approveCommand },
  reject: { summary: 'reject a proposed plan (it is never executed)', load: async () => (await import('./reject.js')).rejectCommand },
  host: { summary: 'host maintenance on|off HOST: kept in the store; the daemon evacuates a host in maintenance', load: async () => (await import('./host.js')).hostCommand },
  daemon: { summary: 'run the control loop unattended (collect → plan → approve → execute); signals, logs, status', load: async () => (await import('./daemon.js')).daemonCommand },
  token: { summary: 'HTTP API tokens: create --role viewer|operator|admin (printed once, stored hashed), list, revoke ID', load: async () => (await import('./token.js')).tokenCommand },
  data: { summary: 'reference data: download and verify the PlanetLab traces (`data fetch planetlab`)', load: async () => (await import('./data.js')).dataCommand },
};
