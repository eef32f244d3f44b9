/**
 * A migration an operator asks for through the API (POST /api/v1/migrations), run the safe way:
 * as a one-step plan stored 'approved' with the fingerprint of the cluster it was made from,
 * which the daemon executes through its normal path (executeApproved: the freeze, the
 * fingerprint check against a fresh collect, the executor's limits and journal, the cluster
 * lock) — never a second actor beside the daemon. The target is a named host or the best one
 * by the same filters and scores as `tide evacuate` (memory, CPU headroom, I/O, hard rules).
 */
import type { ClusterSnapshot } from '../core/model/types.js';
import { planEvacuation, type HostAssessment } from '../core/plan/evacuate.js';
import type { Plan } from '../core/plan/types.js';
import { fingerprintOf } from '../daemon/fingerprint.js';
import { DriverError } from '../drivers/errors.js';
import type { Store } from '../store/store.js';
import { HttpError } from './errors.js';

export interface ManualMigration {
  readonly planId: number;
  readonly vm: string;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
  /** Every host's verdict for this VM (fits, score, or the filter that refused it). */
  readonly assessments: readonly HostAssessment[];
}

/** Plans and stores (approved) the move of `vm` to `to` ('best': the best-scoring host). */
export function requestMigration(store: Store, snapshot: ClusterSnapshot, req: { vm: string; to: string; by: string; nowMs: number }): ManualMigration {
  const vm = snapshot.vms.find((v) => v.id === req.vm);
  if (!vm || vm.host === null) throw new DriverError('TIDE_NO_SUCH_VM', `no running VM named '${req.vm}' in the daemon's last round`, { vm: req.vm });
  if (!vm.migratable) throw new DriverError('TIDE_VM_STATE', `${req.vm} may not be moved (pinned, or not in a state that migrates)`, { vm: req.vm });
  const from = vm.host;
  if (req.to !== 'best') {
    if (!snapshot.hosts.some((h) => h.id === req.to)) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${req.to}' in the daemon's last round`, { host: req.to });
    if (req.to === from) throw new DriverError('TIDE_INVALID_ARGUMENT', `${req.vm} already runs on ${from}`);
  }
  // Only this VM moves: the source's other VMs are held in place for this plan.
  const snap: ClusterSnapshot = { ...snapshot, vms: snapshot.vms.map((v) => (v.host === from && v.id !== vm.id ? { ...v, migratable: false } : v)) };
  const core = planEvacuation(snap, { host: from, ...(req.to === 'best' ? {} : { targets: [req.to] }) });
  const step = core.steps.find((s) => s.kind === 'migrate' && s.vm === vm.id);
  const assessments = core.assessments[vm.id] ?? [];
  if (!step || step.kind !== 'migrate') {
    const why = assessments.filter((a) => !a.fits && a.code !== 'evacuating' && a.code !== 'not-allowed').map((a) => (a.reason.startsWith(a.host) ? a.reason : `${a.host}: ${a.reason}`)).join('; ');
    throw new HttpError('TIDE_NO_HOST_FITS', `no host can take ${vm.id}${req.to === 'best' ? '' : ` on ${req.to}`}${why ? ` — ${why}` : ''}`);
  }
  const reason = `requested by ${req.by}: ${req.to === 'best' ? step.reason.replace(/^.*?; best target/, 'best target') : `to ${req.to} (${assessments.find((a) => a.host === req.to)?.reason ?? 'fits'})`}`;
  const plan: Plan = { policy: 'manual', time: snapshot.time, steps: [{ ...step, id: 1, deps: [], by: 'operator', reason }], notMoved: [], hosts: [] };
  const planId = store.savePlan(plan, { createdMs: req.nowMs, mode: 'manual', status: 'approved' });
  store.setPlanMeta(planId, { fingerprint: fingerprintOf(snapshot), confirmedMs: req.nowMs });
  store.setPlanStatus(planId, 'approved', `requested by ${req.by}`);
  return { planId, vm: vm.id, from, to: step.to, reason, assessments };
}

/**
 * Powers a host on or off on an operator's request (POST /api/v1/hosts/{host}/power), the same
 * way: a one-step plan stored approved, executed by the daemon's executor, whose power-off guard
 * (the host must be empty, its wake path tested, its state 'on') still applies. Refused here
 * already when the daemon's last round saw the host in the wrong state or holding VMs.
 */
export function requestPower(store: Store, snapshot: ClusterSnapshot, req: { host: string; on: boolean; by: string; nowMs: number }): { planId: number; host: string; action: 'powerOn' | 'powerOff'; reason: string } {
  const h = snapshot.hosts.find((x) => x.id === req.host);
  if (!h) throw new DriverError('TIDE_NO_SUCH_HOST', `no host named '${req.host}' in the daemon's last round`, { host: req.host });
  if (req.on && h.powerState !== 'off' && h.powerState !== 'standby') {
    throw new DriverError('TIDE_POWER_REFUSED', `${h.id} is ${h.powerState}, not off or in standby: nothing to power on`, { host: h.id });
  }
  if (!req.on) {
    if (h.powerState !== 'on') throw new DriverError('TIDE_POWER_REFUSED', `${h.id} is ${h.powerState}, not on: it cannot be powered off`, { host: h.id });
    const vms = snapshot.vms.filter((v) => v.host === h.id).map((v) => v.id);
    if (vms.length > 0) {
      throw new DriverError('TIDE_POWER_REFUSED', `${h.id} holds ${vms.length} VM(s) (${vms.slice(0, 5).join(', ')}${vms.length > 5 ? ', …' : ''}): move them first (maintenance on evacuates it)`, { host: h.id });
    }
  }
  const action = req.on ? 'powerOn' : 'powerOff';
  const reason = `requested by ${req.by}`;
  const plan: Plan = { policy: 'manual', time: snapshot.time, steps: [{ kind: action, id: 1, deps: [], by: 'operator', host: h.id, reason }], notMoved: [], hosts: [] };
  const planId = store.savePlan(plan, { createdMs: req.nowMs, mode: 'manual', status: 'approved' });
  store.setPlanMeta(planId, { fingerprint: fingerprintOf(snapshot), confirmedMs: req.nowMs });
  store.setPlanStatus(planId, 'approved', reason);
  return { planId, host: h.id, action, reason };
}
