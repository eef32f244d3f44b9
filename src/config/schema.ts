/**
 * The Tide configuration file (YAML or JSON, read by src/config/load.ts): one zod schema →
 * defaults → validated, compiled config. `tide config schema` prints the JSON Schema derived
 * from it. Units are in the field names. Every field is described in docs/configuration.md
 * (test/config/docs.test.ts fails when a field is missing there).
 */
import { z } from 'zod';
import { DEFAULT_WAKE_RETRY_SEC } from '../app/wake-refused.js';
import { DEFAULT_FREEZE_OPTIONS } from '../core/freeze.js';
import { isKnownTimeZone } from '../core/schedule.js';
import { DEFAULT_SHARE_COUNTERS_MS } from '../drivers/libvirt/backend.js';
import { DEFAULT_VIRSH_PROCESSES, MAX_VIRSH_PROCESSES } from '../drivers/virsh/limit.js';
import { MAX_TIMEOUT_SEC } from '../input/schema.js';

const hostName = z.string().min(1).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'host names use letters, digits, ".", "_" and "-"');

/**
 * An inline BMC password is refused (it would sit in a file that is copied, committed and
 * printed): the key exists only to give a path-named error. The message never echoes the value.
 */
const noInlinePassword = z.never({ error: 'an inline password is refused: put it in a file (passwordFile) or an environment variable (passwordEnv)' }).optional();

/** IPMI over LAN (ipmitool -I lanplus). The password comes from passwordFile or passwordEnv, never argv. */
export const ipmiPowerSchema = z.object({
  kind: z.literal('ipmi'),
  /** BMC address (host or IP) and UDP port. */
  address: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(623),
  user: z.string().min(1),
  password: noInlinePassword,
  /** File holding the BMC password (first line; mode 0600 recommended). Excludes passwordEnv. */
  passwordFile: z.string().min(1).optional(),
  /** Name of the environment variable holding the BMC password (default TIDE_IPMI_PASSWORD when no passwordFile). */
  passwordEnv: z.string().min(1).optional(),
  interface: z.literal('lanplus').default('lanplus'),
  /** ipmitool cipher suite; 3 = HMAC-SHA1/AES-128 works with most BMCs (and ipmi_sim). */
  cipherSuite: z.number().int().min(0).max(17).default(3),
  /** soft: ACPI shutdown, then a hard off after softGraceSec if the host is still on; hard: pull the plug. */
  off: z.enum(['soft', 'hard']).default('soft'),
  softGraceSec: z.number().nonnegative().max(3600).default(300),
  /** Bound on one ipmitool run, seconds. */
  timeoutSec: z.number().positive().max(300).default(15),
  /** Run ipmitool inside this network namespace (lab only). */
  netns: z.string().optional(),
}).strict().refine((p) => !(p.passwordFile !== undefined && p.passwordEnv !== undefined), {
  error: 'give passwordFile or passwordEnv, not both', path: ['passwordFile'],
});

/** ssh power-off: `ssh -o BatchMode=yes [-i identityFile] [-p port] -- target systemctl poweroff`. */
export const sshPowerSchema = z.object({
  kind: z.literal('ssh'),
  /** user@host (or a Host alias of ~/.ssh/config). */
  target: z.string().min(1).regex(/^[^-\s][^\s]*$/, 'an ssh target is user@host without spaces, not starting with "-"'),
  identityFile: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  /** TCP port whose reachability stands for "on" (default: port, else 22). */
  statusPort: z.number().int().min(1).max(65535).optional(),
  /** Seconds to wait for the host to stop answering after the poweroff command. */
  offTimeoutSec: z.number().positive().max(3600).default(120),
}).strict();

export const powerSchema = z.discriminatedUnion('kind', [
  ipmiPowerSchema,
  z.object({
    kind: z.literal('wol'),
    mac: z.string().regex(/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/, 'a MAC address like 02:77:00:00:00:0a'),
    broadcast: z.string().default('255.255.255.255'),
    port: z.number().int().min(1).max(65535).default(9),
    /** How to power the host off (WoL can only wake) and, for ipmi, read its status. */
    off: z.discriminatedUnion('kind', [sshPowerSchema, ipmiPowerSchema]).optional(),
    /** Status by reachability: this TCP address:port answering means "on" (e.g. libvirt 16509 or ssh 22). */
    statusAddress: z.string().min(1).optional(),
    statusPort: z.number().int().min(1).max(65535).default(22),
    netns: z.string().optional(),
  }).strict(),
  sshPowerSchema,
  z.object({ kind: z.literal('none') }).strict(),
]);

export const hostConfigSchema = z.object({
  name: hostName,
  /** libvirt URI exactly as virsh takes it: qemu+ssh://user@host/system, qemu+tcp://…, qemu:///system?socket=… */
  uri: z.string().min(1),
  /** URI the *other* hosts' libvirtd use to reach this one during P2P migration (default: uri). */
  peerUri: z.string().optional(),
  /** Address QEMU streams migration data to, e.g. tcp://10.0.0.2 (default: chosen by libvirt). */
  migrationAddress: z.string().optional(),
  power: powerSchema.default({ kind: 'none' }),
  /** Seconds from power-on until libvirt answers. */
  bootSec: z.number().nonnegative().max(MAX_TIMEOUT_SEC).default(180),
  tags: z.array(z.string()).default([]),
  maintenance: z.boolean().default(false),
  /** Hosts Tide may read but never move VMs to or from. */
  excluded: z.boolean().default(false),
}).strict();

export const vmConfigSchema = z.object({
  /** Service probe during migrations: tcp://ip:port or http://ip[:port]/path. */
  probe: z.string().regex(/^(tcp|http):\/\//, 'a probe is tcp://host:port or http://host/path').optional(),
  /** Run the probe inside this network namespace (lab only). */
  probeNetns: z.string().optional(),
  tags: z.array(z.string()).default([]),
  /** Never move this VM automatically. */
  pinned: z.boolean().default(false),
}).strict();

export const migrationConfigSchema = z.object({
  mode: z.enum(['live', 'offline', 'suspend']).default('live'),
  maxConcurrent: z.number().int().min(1).max(1000).default(2),
  maxPerHost: z.number().int().min(1).max(1000).default(1),
  autoConverge: z.boolean().default(true),
  /** Switch to post-copy after this many pre-copy iterations without converging (0 = never). */
  postCopyAfterIterations: z.number().int().min(0).max(10_000).default(0),
  bandwidthMiBps: z.number().positive().max(1_000_000).optional(),
  maxDowntimeMs: z.number().int().positive().max(2 ** 31 - 1).optional(),
  /** Abort a migration that has not finished after this many seconds (a timer: at most 2^31-1 ms). */
  timeoutSec: z.number().positive().max(MAX_TIMEOUT_SEC, `at most ${MAX_TIMEOUT_SEC} s (2^31-1 ms, the longest timer Node honours)`).default(600),
  /** Copy non-shared disks (libvirt NON_SHARED_DISK). */
  copyStorage: z.boolean().default(false),
  /** Let libvirt migrate disks it considers unsafe (local filesystems seen as shared). */
  unsafe: z.boolean().default(false),
}).strict();

const ruleStrength = z.enum(['hard', 'soft']).default('hard');
/**
 * Placement rules (the planner's and `tide evacuate`/`tide place`'s hard filters, or soft
 * preferences): VMs kept together (affinity), kept on different hosts (antiAffinity), or a VM
 * kept on some hosts (pin). `id` names the rule in explanations.
 */
export const ruleConfigSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('affinity'), id: z.string().min(1), vms: z.array(z.string().min(1)).min(2), strength: ruleStrength }).strict(),
  z.object({ kind: z.literal('antiAffinity'), id: z.string().min(1), vms: z.array(z.string().min(1)).min(2), strength: ruleStrength }).strict(),
  z.object({ kind: z.literal('pin'), id: z.string().min(1), vm: z.string().min(1), hosts: z.array(hostName).min(1), strength: ruleStrength }).strict(),
]);

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a local time HH:MM (24 h), e.g. 18:00');
const timeZone = z.string().min(1).refine(isKnownTimeZone, { error: 'an IANA time zone this runtime knows, e.g. Europe/Berlin or UTC' });
const windowKind = z.enum(['consolidate', 'balance', 'blackout']);

/**
 * Schedule windows (src/core/schedule.ts): local times in an IANA zone; a window starts on its
 * days at `from` and ends at `to` (the next day when `to` ≤ `from`).
 */
export const scheduleConfigSchema = z.object({
  /** Zone of every window that names none. */
  timeZone: timeZone.default('UTC'),
  /** What applies when no window covers the time. */
  otherwise: windowKind.default('balance'),
  windows: z.array(z.object({
    name: z.string().min(1),
    kind: windowKind,
    days: z.array(z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])).min(1, 'at least one day'),
    from: hhmm,
    to: hhmm,
    timeZone: timeZone.optional(),
  }).strict()).default([]),
}).strict();

/** Events a webhook can subscribe to (src/webhooks/webhooks.ts; docs/webhooks.md). */
export const WEBHOOK_EVENTS = [
  'plan.created', 'plan.approved', 'plan.started', 'plan.finished', 'plan.failed', 'migration.failed',
  'host.powered_off', 'host.powered_on', 'freeze.frozen', 'freeze.thawed',
] as const;

/**
 * A webhook: JSON POSTs signed with HMAC-SHA256 of the body (X-Tide-Signature). The secret comes
 * from secretFile or secretEnv, never inline (refused like an inline BMC password).
 */
export const webhookConfigSchema = z.object({
  /** http:// or https:// URL the events are POSTed to. */
  url: z.string().regex(/^https?:\/\/[^\s]+$/, 'an http:// or https:// URL'),
  secret: z.never({ error: 'an inline webhook secret is refused: put it in a file (secretFile) or an environment variable (secretEnv)' }).optional(),
  /** File holding the signing secret (first line; mode 0600 recommended). */
  secretFile: z.string().min(1).optional(),
  /** Name of the environment variable holding the signing secret. */
  secretEnv: z.string().min(1).optional(),
  /** Events sent to this URL (default: all). */
  events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).optional(),
  /** Bound on one delivery attempt, seconds. */
  timeoutSec: z.number().positive().max(300).default(10),
  /** Attempts per delivery (1 = no retry); retries back off exponentially. */
  maxAttempts: z.number().int().min(1).max(10).default(3),
}).strict().refine((w) => (w.secretFile === undefined) !== (w.secretEnv === undefined), {
  error: 'give exactly one of secretFile or secretEnv', path: ['secretFile'],
});

/**
 * Telemetry-freeze thresholds (src/core/freeze.ts FreezeOptions; docs/tide-policy.md, "Freeze"):
 * when to stop moving VMs because what Tide sees is stale, missing or implausible.
 */
export const freezeConfigSchema = z.object({
  /** Rounds in a row a host's hypervisor may not answer (its power state not known off) before all moves freeze. */
  silentRounds: z.number().int().min(1).max(1000).default(DEFAULT_FREEZE_OPTIONS.silentRounds),
  /** Share above capacity a measurement may show before it counts as implausible (0.05: 5 %). */
  capacityTolerance: z.number().min(0).max(10).default(DEFAULT_FREEZE_OPTIONS.capacityTolerance),
  /** Time between rounds, in intervals, after which the clock counts as jumped. */
  maxGapIntervals: z.number().min(1).max(10_000).default(DEFAULT_FREEZE_OPTIONS.maxGapIntervals),
  /** Largest disagreement between wall-clock and monotonic time between rounds, s (absent: max(10, intervalSec / 10)). */
  clockSkewSec: z.number().positive().max(MAX_TIMEOUT_SEC).optional(),
  /** Healthy rounds in a row needed to unfreeze. */
  healthyRoundsToThaw: z.number().int().min(1).max(1000).default(DEFAULT_FREEZE_OPTIONS.healthyRoundsToThaw),
}).strict();

/**
 * Where Tide keeps its state (src/store/open.ts openStore): `sqlite` (default; one controller,
 * `path` relative to the configuration file) or `postgres` (several controllers share it; leader
 * election). Flat rather than a union so `store.path` alone keeps meaning SQLite. A PostgreSQL
 * password is never written here: it comes from a file or an environment variable.
 */
export const storeConfigSchema = z.object({
  kind: z.enum(['sqlite', 'postgres']).default('sqlite'),
  /** SQLite: the database file (or ':memory:'). */
  path: z.string().min(1).default('.tide/tide.sqlite'),
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).default(5432),
  database: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  /** A file holding the password (trailing newline ignored); relative to the configuration file. */
  passwordFile: z.string().min(1).optional(),
  /** An environment variable holding the password. */
  passwordEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'an environment variable name' }).optional(),
  /** Refused: present only to say where the password goes instead. */
  password: z.never({ error: 'a password is never written in the configuration: give passwordFile (a file only Tide can read) or passwordEnv (an environment variable)' }).optional(),
  /** TLS to the server, verified against the system's CAs. */
  ssl: z.boolean().default(false),
  /** PostgreSQL schema holding Tide's tables (created if missing). */
  schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: 'a lower-case SQL identifier' }).default('tide'),
  /** Longest one store call may take (connecting included), ms: then TIDE_STORE_UNAVAILABLE. */
  timeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  /** Metrics history: every round's raw host and VM points kept this long, hours, then merged into hourly means (Store.recordMetrics). */
  metricsRawKeepHours: z.number().positive().max(8_760).default(24),
  /** Metrics history: hourly means kept this long, days. */
  metricsHourKeepDays: z.number().positive().max(3_660).default(56),
}).strict().superRefine((st, ctx) => {
  const pgOnly = ['host', 'database', 'user', 'passwordFile', 'passwordEnv'] as const;
  if (st.kind !== 'postgres') {
    for (const k of pgOnly) if (st[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: 'only for kind: postgres' });
    return;
  }
  for (const k of ['host', 'database', 'user'] as const) if (st[k] === undefined) ctx.addIssue({ code: 'custom', path: [k], message: 'required for kind: postgres' });
  if ((st.passwordFile === undefined) === (st.passwordEnv === undefined)) ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: 'give exactly one of passwordFile or passwordEnv' });
});

/**
 * The HTTP API (src/http, docs/api.md): loopback by default; TLS when both files are given
 * (paths relative to the configuration file).
 */
export const httpConfigSchema = z.object({
  /** Address to bind; 127.0.0.1 unless you mean to expose the API (then use TLS). */
  listen: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8640),
  tlsCertFile: z.string().min(1).optional(),
  tlsKeyFile: z.string().min(1).optional(),
}).strict().refine((h) => (h.tlsCertFile === undefined) === (h.tlsKeyFile === undefined), {
  error: 'give both tlsCertFile and tlsKeyFile (or neither)', path: ['tlsCertFile'],
});

/**
 * Where utilisation is read (src/drivers/metrics): libvirt polling (default) or a Prometheus
 * server fed by node-exporter and libvirt-exporter (docs/drivers.md, "Prometheus as the metrics
 * source"). Inventory and actions always go through libvirt.
 */
export const prometheusMetricsSchema = z.object({
  /** Base URL of the Prometheus server (its HTTP API /api/v1/query). */
  url: z.string().regex(/^https?:\/\/[^\s]+$/, 'an http:// or https:// URL'),
  /** A series whose newest sample is older than this, s, is stale: the host or VM freezes moves. */
  staleSec: z.number().positive().max(86_400).default(120),
  /** Window of rate() for CPU, disk and network, s (at least two scrape intervals). */
  rateWindowSec: z.number().positive().max(86_400).default(120),
  /** Bound on one HTTP query, s. */
  timeoutSec: z.number().positive().max(300).default(10),
  /** Label naming a scrape target. */
  instanceLabel: z.string().min(1).default('instance'),
  /** libvirt-exporter's label naming the domain (= the Tide VM name). */
  domainLabel: z.string().min(1).default('domain'),
  /** Per Tide host: the instance label values of its exporters (default HOSTNAME:9100 / HOSTNAME:9177 from its URI). */
  hosts: z.record(hostName, z.object({ node: z.string().min(1), libvirt: z.string().min(1) }).strict()).default({}),
}).strict();

export const metricsConfigSchema = z.object({
  source: z.enum(['libvirt', 'prometheus']).default('libvirt'),
  prometheus: prometheusMetricsSchema.optional(),
}).strict().refine((m) => m.source !== 'prometheus' || m.prometheus !== undefined, {
  error: 'source prometheus needs a prometheus section (at least its url)', path: ['prometheus'],
});

/**
 * Settings of the libvirt RPC driver (`driver: libvirt`; src/drivers/libvirt/backend.ts
 * RpcBackendOptions). Read only when that driver is selected.
 */
export const libvirtDriverConfigSchema = z.object({
  /**
   * How long usage counters fetched with a round's inventory stay usable by the same round's
   * usage read, ms (one round trip per host); 0: the usage read always asks libvirtd itself.
   */
  shareCountersMs: z.number().int().min(0).max(60_000).default(DEFAULT_SHARE_COUNTERS_MS),
}).strict();

/**
 * Settings of the virsh driver (`driver: virsh`; src/drivers/virsh). Read only when that
 * driver is selected.
 */
export const virshDriverConfigSchema = z.object({
  /** Most virsh processes running at once, shared by all hosts (src/drivers/virsh/limit.ts says why); migrations are not counted. */
  maxProcesses: z.number().int().min(1).max(MAX_VIRSH_PROCESSES).default(DEFAULT_VIRSH_PROCESSES),
}).strict();

/** This controller's identity among several of one cluster (src/daemon/node-id.ts). */
export const daemonConfigSchema = z.object({
  /** Node id in the lease row, `tide status`, the API and metrics; absent: hostname + a hash of the configuration file's path. */
  nodeId: z.string().min(1).max(64).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a node id uses letters, digits, ".", "_" and "-"').optional(),
}).strict();

export const tideConfigSchema = z.object({
  hosts: z.array(hostConfigSchema).min(1, 'at least one host'),
  vms: z.record(z.string(), vmConfigSchema).default({}),
  rules: z.array(ruleConfigSchema).default([]),
  migration: migrationConfigSchema.default(migrationConfigSchema.parse({})),
  policy: z.object({ name: z.string().default('tide'), args: z.record(z.string(), z.unknown()).default({}) }).strict().default({ name: 'tide', args: {} }),
  mode: z.enum(['recommend', 'approve', 'automatic']).default('recommend'),
  intervalSec: z.number().min(1).max(MAX_TIMEOUT_SEC).default(300),
  store: storeConfigSchema.default(() => storeConfigSchema.parse({})),
  driver: z.enum(['libvirt', 'virsh']).default('libvirt'),
  /** The libvirt RPC driver's settings (driver: libvirt). */
  libvirt: libvirtDriverConfigSchema.default(() => libvirtDriverConfigSchema.parse({})),
  /** The virsh driver's settings (driver: virsh). */
  virsh: virshDriverConfigSchema.default(() => virshDriverConfigSchema.parse({})),
  /** Consolidate / balance / blackout windows; absent: the policy's arguments apply at all hours. */
  schedule: scheduleConfigSchema.optional(),
  /** Signed JSON POSTs on plan, migration, power and freeze events (docs/webhooks.md). */
  webhooks: z.array(webhookConfigSchema).default([]),
  /** The daemon's HTTP API and dashboard (docs/api.md); absent: not served. */
  http: httpConfigSchema.optional(),
  /** Where host and VM utilisation is read; absent: libvirt polling. */
  metrics: metricsConfigSchema.optional(),
  /** Telemetry-freeze thresholds (src/core/freeze.ts). */
  freeze: freezeConfigSchema.default(freezeConfigSchema.parse({})),
  /** After a failed wake, an off host is not planned for power-on for this long, s, unless `tide wake-test HOST` passes (src/app/wake-refused.ts). */
  wakeRetrySec: z.number().min(0).max(365 * 86_400).default(DEFAULT_WAKE_RETRY_SEC),
  /** This controller's own settings (node id); absent: defaults. */
  daemon: daemonConfigSchema.optional(),
}).strict();

export type TideConfigInput = z.input<typeof tideConfigSchema>;
export type TideConfig = z.output<typeof tideConfigSchema>;
export type HostConfig = z.output<typeof hostConfigSchema>;
export type PowerConfig = z.output<typeof powerSchema>;
export type IpmiPowerConfig = z.output<typeof ipmiPowerSchema>;
export type SshPowerConfig = z.output<typeof sshPowerSchema>;
export type ScheduleConfig = z.output<typeof scheduleConfigSchema>;
export type WebhookConfig = z.output<typeof webhookConfigSchema>;
export type MetricsConfig = z.output<typeof metricsConfigSchema>;
export type FreezeConfig = z.output<typeof freezeConfigSchema>;
export type StoreConfig = z.output<typeof storeConfigSchema>;
export type LibvirtDriverConfig = z.output<typeof libvirtDriverConfigSchema>;
export type VirshDriverConfig = z.output<typeof virshDriverConfigSchema>;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
