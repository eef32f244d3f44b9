/**
 * "Energy saved vs always-on" for the dashboard, over the whole run and over the acting period
 * alone. `tide demo --serve --observe-days N` first observes N days in recommend mode (every
 * host stays on, so energy equals always-on there) and reports where acting began
 * (`actingFromMs` of GET /api/v1/demo); a saving over the whole history would dilute what Tide
 * saved while it acted by the observed days. Pure: no DOM, no fetch (test/web/saving.test.ts).
 */

/** The fields of a history point (api.ts HistoryPoint) read here; no import, so tests run it from Node as is. */
export interface EnergyPoint {
  tMs: number;
  energyKWh: number | null;
  alwaysOnKWh: number | null;
}

/** Energy with Tide and left always on over some period, kWh, and the share saved, %. */
export interface Saving {
  energyKWh: number;
  alwaysOnKWh: number;
  pct: number;
}

/** Cumulative energy at an instant, kWh (both counters start at the history's first round). */
export interface EnergyMark {
  energyKWh: number;
  alwaysOnKWh: number;
}

/** The saving of `energyKWh` against `alwaysOnKWh`; null when either is unknown or nothing was spent always-on. */
export function savingOf(energyKWh: number | null | undefined, alwaysOnKWh: number | null | undefined): Saving | null {
  if (energyKWh == null || alwaysOnKWh == null || !(alwaysOnKWh > 0)) return null;
  return { energyKWh, alwaysOnKWh, pct: 100 * (1 - energyKWh / alwaysOnKWh) };
}

/**
 * The cumulative energy at `atMs` from the per-round history: the newest point at or before it.
 * null until the history has reached `atMs` (a point at or after it exists) — before that the
 * newest point may be a round short of the instant — or when no point lies at or before it.
 */
export function energyAt(points: readonly EnergyPoint[], atMs: number): EnergyMark | null {
  let best: EnergyPoint | null = null;
  let reached = false;
  for (const p of points) {
    if (p.tMs >= atMs) reached = true;
    if (p.tMs <= atMs && p.energyKWh !== null && p.alwaysOnKWh !== null && (best === null || p.tMs >= best.tMs)) best = p;
  }
  return reached && best ? { energyKWh: best.energyKWh!, alwaysOnKWh: best.alwaysOnKWh! } : null;
}

/** What the dashboard knows of a demo's energy: totals now, and the totals where acting began. */
export interface DemoEnergy {
  energyKWh: number | null;
  alwaysOnKWh: number | null;
  /** Days observed in recommend mode before acting (0: acting from the first round). */
  observeDays: number;
  /** The cumulative energy where acting began (energyAt of actingFromMs), once known. */
  actingStart: EnergyMark | null;
}

/**
 * `all`: from the first round, observed days included. `acting`: from where acting began —
 * the same as `all` without observed days, null while the start is not known yet.
 */
export function demoSavings(d: DemoEnergy | null): { all: Saving | null; acting: Saving | null } {
  if (!d) return { all: null, acting: null };
  const all = savingOf(d.energyKWh, d.alwaysOnKWh);
  if (d.observeDays <= 0) return { all, acting: all };
  const s = d.actingStart;
  const acting = s && d.energyKWh != null && d.alwaysOnKWh != null ? savingOf(d.energyKWh - s.energyKWh, d.alwaysOnKWh - s.alwaysOnKWh) : null;
  return { all, acting };
}
