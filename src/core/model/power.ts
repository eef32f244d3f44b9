import type { PowerModel } from './types.js';

/**
 * Power draw (W) at CPU utilisation u ∈ [0, 1], interpolated linearly in the 11-point table.
 * The arithmetic follows CloudSim's PowerModelSpecPower.getPower exactly (same operations in
 * the same order), so energy figures match it to the last digit. Values in (1, 1.01) are
 * treated as 1 (CloudSim clamps them); larger ones are a bug in the caller.
 */
export function powerAt(model: PowerModel, u: number): number {
  const table = model.wattsAtLoad;
  if (u > 1 && u < 1.01) u = 1;
  if (!(u >= 0 && u <= 1)) throw new RangeError(`utilisation ${u} outside [0, 1]`);
  if (u % 0.1 === 0) return table[Math.trunc(u * 10)]!;
  const u1 = Math.floor(u * 10);
  const u2 = Math.ceil(u * 10);
  const p1 = table[u1]!;
  const p2 = table[u2]!;
  const delta = (p2 - p1) / 10;
  return p1 + delta * (u - u1 / 10) * 100;
}

/** Watts per MIPS delivered when the host runs at utilisation u: lower is more efficient. */
export function wattsPerMips(model: PowerModel, capacityMips: number, u: number): number {
  return powerAt(model, u) / (capacityMips * u);
}

/** HP ProLiant ML110 G4 (Xeon 3040), SPECpower, as in CloudSim's PowerModelSpecPowerHpProLiantMl110G4Xeon3040. */
export const HP_ML110_G4: PowerModel = {
  wattsAtLoad: [86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117],
  offW: 0,
  bootSec: 0,
  bootW: 0,
};

/** HP ProLiant ML110 G5 (Xeon 3075), SPECpower, as in CloudSim's PowerModelSpecPowerHpProLiantMl110G5Xeon3075. */
export const HP_ML110_G5: PowerModel = {
  wattsAtLoad: [93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135],
  offW: 0,
  bootSec: 0,
  bootW: 0,
};

/** A linear model from idle to max watts. */
export function linearPower(idleW: number, maxW: number, extra: Partial<Omit<PowerModel, 'wattsAtLoad'>> = {}): PowerModel {
  return {
    wattsAtLoad: Array.from({ length: 11 }, (_, i) => idleW + ((maxW - idleW) * i) / 10),
    offW: extra.offW ?? 0,
    bootSec: extra.bootSec ?? 0,
    bootW: extra.bootW ?? 0,
  };
}
