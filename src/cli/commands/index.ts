import type { Command } from '../io.js';
import { benchCommand } from './bench.js';
import { configCommand } from './config.js';
import { demoCommand } from './demo.js';
import { evacuateCommand } from './evacuate.js';
import { hostsCommand } from './hosts.js';
import { labCommand } from './lab.js';
import { migrateCommand } from './migrate.js';
import { simulateCommand } from './simulate.js';
import { vmsCommand } from './vms.js';

/**
 * Every CLI command, registered explicitly (no discovery). Each lives in its own module and is
 * a thin shell over the programmatic API in src/api.
 */
export const commands: Record<string, Command> = {
  demo: demoCommand,
  simulate: simulateCommand,
  lab: labCommand,
  bench: benchCommand,
  hosts: hostsCommand,
  vms: vmsCommand,
  migrate: migrateCommand,
  evacuate: evacuateCommand,
  config: configCommand,
};
