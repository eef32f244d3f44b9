/**
 * KVM or TCG for lab guests.
 *
 * KVM is used only when /dev/kvm is usable *and* is a regular (VMX/SVM) KVM. On nested cloud
 * VMs /dev/kvm may be provided by `kvm_pvm` (pagetable-based KVM): stock Debian guest kernels
 * hang there right after decompression ("Physical KASLR disabled: no suitable memory region!")
 * and `-cpu host` aborts with "failed to set MSR 0x10a". Then, and when /dev/kvm is missing,
 * the lab falls back to TCG (software emulation), which is slower but works everywhere.
 */
import { accessSync, constants, existsSync } from 'node:fs';

export type Accel = 'kvm' | 'tcg';
export type AccelChoice = Accel | 'auto';

/** Env override, e.g. TIDE_LAB_ACCEL=tcg; the `--accel` flag wins over it. */
export const ACCEL_ENV = 'TIDE_LAB_ACCEL';

export interface AccelDecision {
  accel: Accel;
  reason: string;
}

export function parseAccelChoice(s: string | undefined): AccelChoice | undefined {
  if (s === undefined || s === '') return undefined;
  const v = s.toLowerCase();
  if (v === 'kvm' || v === 'tcg' || v === 'auto') return v;
  if (v === 'qemu') return 'tcg';
  throw new Error(`accelerator must be auto, kvm or tcg (got '${s}')`);
}

export function detectAccel(choice: AccelChoice | undefined, env: NodeJS.ProcessEnv = process.env): AccelDecision {
  const c = choice ?? parseAccelChoice(env[ACCEL_ENV]) ?? 'auto';
  if (c !== 'auto') return { accel: c, reason: `forced (${choice ? '--accel' : ACCEL_ENV})` };
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: '/dev/kvm is missing or not accessible' };
  }
  if (existsSync('/sys/module/kvm_pvm')) {
    return { accel: 'tcg', reason: 'kvm_pvm is loaded: stock guest kernels hang under it' };
  }
  return { accel: 'kvm', reason: '/dev/kvm is a regular KVM' };
}

/** libvirt `<domain type=…>` for an accelerator. */
export function domainType(a: Accel): 'kvm' | 'qemu' {
  return a === 'kvm' ? 'kvm' : 'qemu';
}
