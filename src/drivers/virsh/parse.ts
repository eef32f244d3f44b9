/**
 * Parsers for virsh's output in the C locale (the driver always runs virsh with LC_ALL=C).
 * Only machine-oriented forms are parsed: `domstats --raw`, `domjobinfo --rawstats`,
 * `dominfo`, `nodeinfo`, `node{cpu,mem}stats`, `list --name [--uuid]`.
 */
import type { DriverErrorCode } from '../errors.js';

/** `virsh domstats --raw`: one record per domain, numeric fields as numbers. */
export function parseDomstats(text: string): { name: string; fields: Record<string, number>; strings: Record<string, string> }[] {
  const out: { name: string; fields: Record<string, number>; strings: Record<string, string> }[] = [];
  let cur: (typeof out)[number] | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith("Domain: '") && line.endsWith("'")) {
      cur = { name: line.slice("Domain: '".length, -1), fields: {}, strings: {} };
      out.push(cur);
      continue;
    }
    const m = /^\s+([^=\s]+)=(.*)$/.exec(line);
    if (!m || !cur) continue;
    const [, k, v] = m as unknown as [string, string, string];
    if (/^-?\d+(\.\d+)?$/.test(v)) cur.fields[k] = Number(v);
    else cur.strings[k] = v;
  }
  return out;
}

/** `virsh domjobinfo --rawstats`: "Job type: N" and "field: value" lines. */
export function parseRawJob(text: string): { type: number; fields: Record<string, number> } {
  let type = 0;
  const fields: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const t = /^Job type:\s*(\d+)\s*$/.exec(line);
    if (t) {
      type = Number(t[1]);
      continue;
    }
    const m = /^([a-z_.0-9]+):\s*(-?\d+(?:\.\d+)?)\s*$/.exec(line.trim());
    if (m) fields[m[1]!] = Number(m[2]);
  }
  return { type, fields };
}

/** "Key:   value" lines (dominfo, nodeinfo) as a record of trimmed strings. */
export function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

/** `virsh nodecpustats` / `nodememstats`: "name: N [KiB]" lines as numbers. */
export function parseNodeStats(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z]+)\s*:\s*(\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** `virsh list --name`: one name per line (names cannot contain a newline). */
export function parseNames(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}

/** `virsh list --uuid --name`: "UUID NAME" lines (the name may contain spaces). */
export function parseUuidNames(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) (.*)$/.exec(line);
    if (m) out.set(m[2]!, m[1]!);
  }
  return out;
}

/** dominfo's "State:" → VIR_DOMAIN_STATE. */
export function stateCodeOf(state: string): number {
  switch (state) {
    case 'running': return 1;
    case 'idle': case 'blocked': return 2;
    case 'paused': return 3;
    case 'in shutdown': return 4;
    case 'shut off': return 5;
    case 'crashed': return 6;
    case 'pmsuspended': return 7;
    default: return 0;
  }
}

/** "65536 KiB" → KiB. */
export function kib(v: string | undefined): number {
  const m = /^(\d+)\s*(KiB|MiB|GiB|B)?/.exec(v ?? '');
  if (!m) return 0;
  const n = Number(m[1]);
  switch (m[2]) {
    case 'MiB': return n * 1024;
    case 'GiB': return n * 1024 * 1024;
    case 'B': return n / 1024;
    default: return n;
  }
}

/** libvirt's messages on virsh's stderr ("error: …" lines), joined. */
export function virshErrorMessage(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => l.startsWith('error: ')).map((l) => l.slice('error: '.length));
  return (errors.length ? errors : lines).join(': ');
}

/**
 * DriverError code for a virsh failure, from libvirt's message text (LC_ALL=C keeps it
 * stable). `context` gives the code of errors without a more specific meaning.
 */
export function classifyVirshError(message: string, context: DriverErrorCode): DriverErrorCode {
  const m = message;
  if (/failed to connect to the hypervisor/i.test(m)) return 'TIDE_HOST_UNREACHABLE';
  if (/Domain not found|failed to get domain/i.test(m)) return 'TIDE_NO_SUCH_VM';
  if (/operation aborted|canceled by client|job .*canceled|migration .*cancel/i.test(m)) return 'TIDE_ABORTED';
  if (/unsafe migration|migration without shared storage is unsafe/i.test(m)) return 'TIDE_PREFLIGHT_FAILED';
  if (/CPU .*incompatible|incompatible .*CPU|unknown CPU model/i.test(m)) return 'TIDE_PREFLIGHT_FAILED';
  if (/Requested operation is not valid|domain is not running|not paused|already running|already active/i.test(m)) return 'TIDE_VM_STATE';
  if (/this function is not supported|Operation not supported|argument unsupported/i.test(m)) return 'TIDE_UNSUPPORTED';
  if (/invalid argument|XML error|already exists/i.test(m)) return 'TIDE_INVALID_ARGUMENT';
  if (context !== 'TIDE_MIGRATION_FAILED' && /timed out|Timed out during operation/i.test(m)) return 'TIDE_TIMEOUT';
  return context;
}
