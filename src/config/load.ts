import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { compilePolicy } from '../core/policy.js';
import { checkStorePath, decodeUtf8, validate } from '../input/schema.js';
import { parseLibvirtUri } from '../libvirt/uri.js';
import { parseProbeTarget } from '../probe/probe.js';
import { tideConfigSchema, type TideConfig } from './schema.js';

/** A config file that cannot be read or does not validate. Message names the file and the field. */
export class ConfigError extends Error {
  readonly code = 'TIDE_CONFIG';
}

/**
 * Validates a configuration value: the zod schema (types, ranges, defaults), then the same
 * parsers run time uses — libvirt URIs (src/libvirt/uri.ts, libvirt driver), probe targets
 * (parseProbeTarget), migration addresses and the policy with its arguments (compilePolicy) —
 * so `tide config check` passes exactly the files a run accepts. Errors name source and path.
 */
export function parseConfig(value: unknown, source = '<config>'): TideConfig {
  const config = validate(tideConfigSchema, value, source, (m) => new ConfigError(m), 'invalid configuration');
  const issues: string[] = [];
  const check = (path: string, fn: () => unknown): void => {
    try {
      fn();
    } catch (e) {
      issues.push(`  ${source}: ${path}: ${(e as Error).message}`);
    }
  };
  const names = new Set<string>();
  for (const [i, h] of config.hosts.entries()) {
    if (names.has(h.name)) issues.push(`  ${source}: hosts[${i}].name: duplicate host name '${h.name}'`);
    names.add(h.name);
    // virsh parses its own URIs (and knows more client options): checked only for our client.
    if (config.driver === 'libvirt') check(`hosts[${i}].uri`, () => parseLibvirtUri(h.uri));
    if (h.migrationAddress !== undefined) check(`hosts[${i}].migrationAddress`, () => parseMigrationAddress(h.migrationAddress!));
  }
  for (const [vm, v] of Object.entries(config.vms)) {
    if (v.probe !== undefined) check(`vms.${vm}.probe`, () => parseProbeTarget(v.probe!));
  }
  check('policy', () => compilePolicy(config.policy.name, config.policy.args));
  // Rules name VMs freely (a VM may not exist yet), but hosts must be configured ones, and ids
  // must be unique: explanations name rules by id.
  const ruleIds = new Set<string>();
  for (const [i, r] of config.rules.entries()) {
    if (ruleIds.has(r.id)) issues.push(`  ${source}: rules[${i}].id: duplicate rule id '${r.id}'`);
    ruleIds.add(r.id);
    if (r.kind === 'pin') for (const h of r.hosts) if (!names.has(h)) issues.push(`  ${source}: rules[${i}].hosts: no host named '${h}' in hosts`);
  }
  if (issues.length > 0) throw new ConfigError(`invalid configuration:\n${issues.join('\n')}`);
  return config;
}

/** tcp://HOST[:PORT] (or rdma://), the form QEMU's migrate_uri takes. */
function parseMigrationAddress(text: string): void {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`'${text}' is not tcp://HOST[:PORT]`);
  }
  if (u.protocol !== 'tcp:' && u.protocol !== 'rdma:') throw new Error(`'${text}': the migration address is tcp://HOST[:PORT] (or rdma://)`);
  if (u.hostname === '') throw new Error(`'${text}': no host`);
}

export function loadConfig(file: string): TideConfig {
  const path = resolve(file);
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new Error(st.isDirectory() ? 'it is a directory' : 'not a regular file');
    if (st.size > 16 * 2 ** 20) throw new Error(`${Math.round(st.size / 2 ** 20)} MiB is too large for a configuration file`);
    text = decodeUtf8(readFileSync(path), path, (m) => new ConfigError(m));
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  const config = parseConfig(json, path);
  // The store lives next to the configuration (src/store/lock.ts storePathFor).
  const store = config.store.path;
  try {
    checkStorePath(store === ':memory:' || isAbsolute(store) ? store : resolve(dirname(path), store), `${path}: store.path`);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  return config;
}

export function configJsonSchema(): unknown {
  return z.toJSONSchema(tideConfigSchema, { io: 'input' });
}
