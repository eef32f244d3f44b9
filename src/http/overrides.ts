/**
 * Policy and rules edited through the API (POST /api/v1/policy, POST /api/v1/rules; admin),
 * kept in the store (Store.configOverride) so that they survive a restart.
 *
 * Precedence (docs/api.md, "Policy and rules: file and API"): a section's API edit replaces the
 * configuration file's section as a whole — for as long as the file's section is what it was
 * when the edit was made. The store keeps that section of the file (`base`) with the edit; once
 * the file's section differs (someone edited the file and restarted or reloaded the daemon),
 * the file wins again and the stored edit is ignored (reported as `ignored`, with why). A
 * revert (POST /api/v1/policy/revert, /rules/revert) forgets the edit: the file's in force.
 *
 * The rules section is `rules` (affinity, antiAffinity, pin — VM–host must/should by strength)
 * plus the per-VM opt-out `pinnedVms` (the VMs whose `vms.<name>.pinned` is true: never moved
 * automatically), validated with the configuration's own schemas (src/config/schema.ts).
 */
import { z } from 'zod';
import { ruleConfigSchema, tideConfigSchema, type TideConfig } from '../config/schema.js';
import type { DaemonSettings } from '../daemon/daemon.js';
import { compilePolicy } from '../core/policy.js';
import type { ConfigSection, Store } from '../store/store.js';

/** The editable rules section: the configuration's `rules`, and the VMs with `vms.<name>.pinned`. */
export const rulesSectionSchema = z.object({
  rules: z.array(ruleConfigSchema).max(10_000),
  pinnedVms: z.array(z.string().min(1).max(256)).max(100_000),
}).strict();
export type RulesSection = z.output<typeof rulesSectionSchema>;

/** The policy section as the configuration holds it. */
export const policySectionSchema = tideConfigSchema.shape.policy.unwrap();
export type PolicySection = z.output<typeof policySectionSchema>;

/** Where a section in force comes from. */
export interface Provenance {
  readonly source: 'file' | 'api';
  /** When the API edit was made, ms (null: the file's). */
  readonly setMs: number | null;
  /** Who made it: api:<token name>#<id> (null: the file's). */
  readonly setBy: string | null;
  /** A stored API edit not in force, and why (the file's section changed since). */
  readonly ignored?: { readonly setMs: number; readonly setBy: string; readonly reason: string };
}

export interface Effective {
  /** The file's configuration with the API edits in force. */
  readonly config: TideConfig;
  readonly policy: Provenance;
  readonly rules: Provenance;
}

/** Key-order-independent JSON (so a base compares equal however the file orders its keys). */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function rulesSectionOf(config: TideConfig): RulesSection {
  return { rules: config.rules.map((r) => ({ ...r })), pinnedVms: Object.entries(config.vms).filter(([, v]) => v.pinned).map(([k]) => k).sort() };
}

function sectionOf(config: TideConfig, section: ConfigSection): unknown {
  return section === 'policy' ? config.policy : rulesSectionOf(config);
}

/** The configuration `file` with the store's API edits that are in force, and where each section comes from. */
export function effectiveConfig(file: TideConfig, store: Store): Effective {
  let config = file;
  const prov = (section: ConfigSection): Provenance => {
    const o = store.configOverride(section);
    if (!o) return { source: 'file', setMs: null, setBy: null };
    if (canonicalJson(sectionOf(file, section)) !== canonicalJson(JSON.parse(o.baseJson))) {
      return { source: 'file', setMs: null, setBy: null, ignored: { setMs: o.setMs, setBy: o.setBy, reason: `the configuration file's ${section} changed after this API edit: the file's is in force` } };
    }
    const v: unknown = JSON.parse(o.valueJson);
    if (section === 'policy') {
      const p = policySectionSchema.safeParse(v);
      if (!p.success) return { source: 'file', setMs: null, setBy: null, ignored: { setMs: o.setMs, setBy: o.setBy, reason: 'the stored policy is not valid' } };
      config = { ...config, policy: p.data };
    } else {
      const r = rulesSectionSchema.safeParse(v);
      if (!r.success) return { source: 'file', setMs: null, setBy: null, ignored: { setMs: o.setMs, setBy: o.setBy, reason: 'the stored rules are not valid' } };
      config = withRules(config, r.data);
    }
    return { source: 'api', setMs: o.setMs, setBy: o.setBy };
  };
  const policy = prov('policy');
  const rules = prov('rules');
  return { config, policy, rules };
}

/** `config` with the rules section replaced: its rules, and `pinned` set exactly for `pinnedVms` (other VM settings kept). */
export function withRules(config: TideConfig, r: RulesSection): TideConfig {
  const pinned = new Set(r.pinnedVms);
  const vms: TideConfig['vms'] = {};
  for (const [name, v] of Object.entries(config.vms)) vms[name] = { ...v, pinned: pinned.has(name) };
  for (const name of pinned) vms[name] ??= { tags: [], pinned: true };
  return { ...config, rules: r.rules, vms };
}

/** Stores an API edit of `section` made against the file's configuration `file`. */
export function saveOverride(store: Store, file: TideConfig, section: ConfigSection, value: PolicySection | RulesSection, by: { setMs: number; setBy: string }): void {
  store.setConfigOverride({ section, valueJson: JSON.stringify(value), baseJson: JSON.stringify(sectionOf(file, section)), setMs: by.setMs, setBy: by.setBy });
}

/**
 * The daemon's settings with the effective configuration's policy, rules and pinned VMs (the
 * sections the API edits); the rest of `settings` is kept. Throws the policy's input error.
 */
export function withEffectiveSections(settings: DaemonSettings, effective: TideConfig): DaemonSettings {
  return {
    ...settings,
    policy: compilePolicy(effective.policy.name, effective.policy.args),
    rules: effective.rules,
    pinnedVms: Object.entries(effective.vms).filter(([, v]) => v.pinned).map(([k]) => k),
  };
}
