import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { tideConfigSchema, type TideConfig } from './schema.js';

/** A config file that cannot be read or does not validate. Message names the file and the field. */
export class ConfigError extends Error {
  readonly code = 'TIDE_CONFIG';
}

export function parseConfig(value: unknown, source = '<config>'): TideConfig {
  const r = tideConfigSchema.safeParse(value);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `  ${source}: ${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${issues.join('\n')}`);
  }
  const names = new Set<string>();
  for (const [i, h] of r.data.hosts.entries()) {
    if (names.has(h.name)) throw new ConfigError(`${source}: hosts.${i}.name: duplicate host name '${h.name}'`);
    names.add(h.name);
  }
  return r.data;
}

export function loadConfig(file: string): TideConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  return parseConfig(json, path);
}

export function configJsonSchema(): unknown {
  return z.toJSONSchema(tideConfigSchema, { io: 'input' });
}
