// MinHeap (src/core/util/heap.ts), shared by the executor's queues and the simulator's events:
// any interleaving of pushes and pops returns, at each pop, the least item pushed and not yet
// popped — checked against a sorted list.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MinHeap } from '../../src/core/util/heap.js';

describe('MinHeap', () => {
  it('pops the least remaining item after any sequence of pushes and pops', () => {
    const op = fc.oneof(fc.record({ push: fc.integer({ min: -50, max: 50 }) }), fc.constant({ pop: true as const }));
    fc.assert(fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const heap = new MinHeap<number>((x, y) => x < y);
      const model: number[] = [];
      for (const o of ops) {
        if ('push' in o) {
          heap.push(o.push);
          model.push(o.push);
          model.sort((a, b) => a - b);
        } else {
          expect(heap.pop()).toBe(model.shift());
        }
        expect(heap.size).toBe(model.length);
        expect(heap.peek()).toBe(model[0]);
      }
    }), { numRuns: 300 });
  });

  it('keeps equal keys in push order when the key carries a sequence number (the simulator\'s events)', () => {
    const heap = new MinHeap<{ t: number; seq: number }>((a, b) => a.t < b.t || (a.t === b.t && a.seq < b.seq));
    [3, 1, 3, 1, 2, 3].forEach((t, seq) => heap.push({ t, seq }));
    const out: string[] = [];
    for (let e = heap.pop(); e; e = heap.pop()) out.push(`${e.t}.${e.seq}`);
    expect(out).toEqual(['1.1', '1.3', '2.4', '3.0', '3.2', '3.5']);
  });
});
