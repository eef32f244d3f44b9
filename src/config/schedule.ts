/** The configuration's `schedule` section as the core's Schedule (each window gets its zone). */
import type { Schedule } from '../core/schedule.js';
import type { ScheduleConfig } from './schema.js';

export function compileSchedule(c: ScheduleConfig): Schedule {
  return {
    otherwise: c.otherwise,
    windows: c.windows.map((w) => ({ name: w.name, kind: w.kind, days: w.days, from: w.from, to: w.to, timeZone: w.timeZone ?? c.timeZone })),
  };
}
