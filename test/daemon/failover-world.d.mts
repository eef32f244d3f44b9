// Types of failover-world.mjs (plain JavaScript: the failover children run it on dist/).
import type Database from 'better-sqlite3';

export interface WorldHost { readonly name: string; readonly cores: number; readonly memMiB: number; readonly power?: 'on' | 'off' }
export interface WorldVm { readonly name: string; readonly host: string; readonly vcpus: number; readonly memMiB: number; readonly cpuPct: number }
export function openWorldDb(path: string): Database.Database;
export function seedWorld(path: string, world: { readonly hosts: readonly WorldHost[]; readonly vms: readonly WorldVm[] }): void;
