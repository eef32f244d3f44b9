// The recovery decision table (src/drivers/common/recovery.ts, decideRecovery) checked over
// every combination of what the two hosts can report: the safety rules hold for all of them,
// and the rows of the table in docs/drivers.md give the documented outcome.
import { describe, expect, it } from 'vitest';
import type { DomainFacts } from '../../src/drivers/common/backend.js';
import { decideRecovery, postCopyEvidence, type CopyView, type RecoveryFacts } from '../../src/drivers/common/recovery.js';
import type { VmState } from '../../src/drivers/hypervisor.js';

const dom = (state: VmState, reason: number): DomainFacts => ({
  name: 'v', uuid: 'u', state, stateCode: 0, reason, active: state !== 'shutoff', persistent: true, vcpus: 1, memKiB: 1024,
});

const DOMS: (DomainFacts | null)[] = [
  null, dom('shutoff', 0), dom('running', 1), dom('running', 2), dom('running', 10), dom('paused', 0), dom('paused', 1),
  dom('paused', 2), dom('paused', 5), dom('paused', 12), dom('paused', 13),
];

function views(): CopyView[] {
  const out: CopyView[] = [{ reachable: false, reason: 'no answer' }];
  for (const d of DOMS) {
    out.push({ reachable: true, dom: d, jobActive: false });
    if (d?.active) out.push({ reachable: true, dom: d, jobActive: true });
  }
  return out;
}

function* allFacts(): Generator<RecoveryFacts> {
  for (const source of views()) {
    for (const target of views()) {
      for (const postCopy of [false, true]) {
        for (const switchOver of [false, true]) {
          for (const wasState of ['running', 'paused', null] as const) yield { vm: 'v', from: 'a', to: 'b', wasState, postCopy, switchOver, source, target };
        }
      }
    }
  }
}

const running = (v: CopyView): boolean => v.reachable && v.dom?.active === true && v.dom.state === 'running';
const active = (v: CopyView): boolean => v.reachable && v.dom?.active === true;
const paused = (v: CopyView): boolean => active(v) && !running(v);
const job = (v: CopyView): boolean => v.reachable && v.jobActive;

describe('recovery decision table', () => {
  it('never resumes or destroys anything that could leave two running copies or lose the newest state', () => {
    let n = 0;
    const seen = new Set<string>();
    for (const f of allFacts()) {
      n++;
      const d = decideRecovery(f);
      const pc = postCopyEvidence(f);
      const at = JSON.stringify(f);
      seen.add(`${d.outcome}/${d.action}`);
      // a running job, or an unreachable source: hands off
      if (job(f.source) || job(f.target)) expect(['wait', 'none'], at).toContain(d.action);
      if (!f.source.reachable) expect(d.action, at).toBe('none');
      if (d.outcome === 'unknown') expect(['none', 'wait', 'pause-source'], at).toContain(d.action);
      if (d.action === 'wait') expect(d.fallback?.action, at).toBe('none');
      switch (d.action) {
        case 'resume-source':
          // the target answered and has no active copy; no post-copy; the source was paused by the move
          expect(f.target.reachable && !active(f.target), at).toBe(true);
          expect(pc, at).toBe(false);
          expect(paused(f.source), at).toBe(true);
          expect(f.wasState === 'running' || (f.wasState === null && f.source.reachable && f.source.dom?.reason === 2), at).toBe(true);
          break;
        case 'resume-target':
          expect(f.source.reachable && !active(f.source), at).toBe(true);
          expect(paused(f.target), at).toBe(true);
          expect(f.target.reachable && [12, 13].includes(f.target.dom!.reason), at).toBe(false);
          break;
        case 'destroy-target':
        case 'destroy-stale-target':
          // only a paused copy that never ran guest code (incoming, or no reason reported), never in post-copy
          expect(paused(f.target) && !pc, at).toBe(true);
          expect(f.target.reachable && [0, 2].includes(f.target.dom!.reason), at).toBe(true);
          break;
        case 'pause-source':
          // only to stop a copy that may run twice: the target runs or cannot be asked after the stream completed
          expect(running(f.source), at).toBe(true);
          expect(running(f.target) || (!f.target.reachable && f.switchOver), at).toBe(true);
          break;
        case 'destroy-stale-source':
          expect(running(f.target) && paused(f.source) && !pc, at).toBe(true);
          break;
        case 'undefine-stale-source':
          // only a shut-off source definition, while the target's copy is active and persistent:
          // the VM keeps a definition and no active copy is touched
          expect(active(f.target) && f.target.reachable && f.target.dom!.persistent, at).toBe(true);
          expect(f.source.reachable && f.source.dom !== null && !f.source.dom.active && f.source.dom.persistent, at).toBe(true);
          break;
        default:
          break;
      }
      // post-copy: the source is never resumed and no active copy is destroyed
      if (pc) expect(['none', 'wait', 'resume-target', 'undefine-stale-source'], at).toContain(d.action);
      // a target that cannot be asked never lets the source be resumed
      if (!f.target.reachable) expect(d.action, at).not.toBe('resume-source');
    }
    expect(n).toBeGreaterThan(4000);
    // every outcome and action is reachable from some observation
    for (const k of ['source/resume-source', 'source/destroy-target', 'source/destroy-stale-target', 'target/destroy-stale-source',
      'target/resume-target', 'target/undefine-stale-source', 'unknown/pause-source', 'both/pause-source', 'unknown/none', 'unknown/wait', 'split/none', 'none/none', 'target/none', 'source/none']) {
      expect(seen, k).toContain(k);
    }
  });

  const look = (d: DomainFacts | null, jobActive = false): CopyView => ({ reachable: true, dom: d, jobActive });
  const gone: CopyView = { reachable: false, reason: 'no answer' };
  const base = { vm: 'v', from: 'a', to: 'b', wasState: 'running' as const, postCopy: false, switchOver: false };

  it.each([
    ['source paused, target unreachable', look(dom('paused', 2)), gone, false, 'unknown', 'none'],
    ['source paused, target answered without a copy', look(dom('paused', 2)), look(null), false, 'source', 'resume-source'],
    ['source paused, target shut off', look(dom('paused', 2)), look(dom('shutoff', 0)), false, 'source', 'resume-source'],
    ['source paused, target paused', look(dom('paused', 2)), look(dom('paused', 2)), false, 'source', 'destroy-target'],
    ['source paused, target running', look(dom('paused', 2)), look(dom('running', 2)), false, 'target', 'destroy-stale-source'],
    ['source paused, target paused after it ran (I/O error)', look(dom('paused', 2)), look(dom('paused', 5)), false, 'unknown', 'none'],
    ['source running, target paused after it ran (user)', look(dom('running', 6)), look(dom('paused', 1)), false, 'source', 'none'],
    ['source running, target unreachable', look(dom('running', 6)), gone, false, 'source', 'none'],
    ['source running after the stream completed, target unreachable', look(dom('running', 6)), gone, 'switch', 'unknown', 'pause-source'],
    ['source running, target paused leftover', look(dom('running', 6)), look(dom('paused', 2)), false, 'source', 'destroy-stale-target'],
    ['source running, target running', look(dom('running', 1)), look(dom('running', 2)), false, 'both', 'pause-source'],
    ['source gone, target running', look(null), look(dom('running', 2)), false, 'target', 'none'],
    ['source shut off (persistent), target running persistently', look(dom('shutoff', 0)), look(dom('running', 2)), false, 'target', 'undefine-stale-source'],
    ['source shut off (persistent), target running transiently', look(dom('shutoff', 0)), look({ ...dom('running', 2), persistent: false }), false, 'target', 'none'],
    ['source shut off (persistent), target paused', look(dom('shutoff', 0)), look(dom('paused', 5)), false, 'target', 'resume-target'],
    ['source gone, target unreachable', look(null), gone, false, 'unknown', 'none'],
    ['source job still running', look(dom('paused', 2), true), look(dom('paused', 2), true), false, 'unknown', 'wait'],
    ['target incoming job still running', look(dom('paused', 2)), look(dom('paused', 2), true), false, 'unknown', 'wait'],
    ['post-copy failed on both', look(dom('paused', 13)), look(dom('paused', 13)), true, 'split', 'none'],
    ['post-copy, target unreachable', look(dom('paused', 12)), gone, true, 'unknown', 'none'],
    ['post-copy, target running, source gone', look(null), look(dom('running', 10)), true, 'target', 'none'],
    ['post-copy requested, target has no copy', look(dom('paused', 0)), look(null), true, 'unknown', 'none'],
  ] as const)('%s → %s / %s', (_name, source, target, flag, outcome, action) => {
    const d = decideRecovery({ ...base, postCopy: flag === true, switchOver: flag === 'switch', source, target });
    expect(d.outcome).toBe(outcome);
    expect(d.action).toBe(action);
  });
});
