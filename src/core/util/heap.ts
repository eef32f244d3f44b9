/**
 * A binary min-heap under a caller's strict order `less`. Pop order is fully determined only when
 * `less` is a total order on the items (ties then come out in an unspecified order): callers that
 * need FIFO among equals put a sequence number into the key (the simulator's event queue does).
 * Shared by the executor's scheduling queues and the simulator's event queue.
 */
export class MinHeap<T> {
  private readonly a: T[] = [];

  constructor(private readonly less: (x: T, y: T) => boolean) {}

  get size(): number {
    return this.a.length;
  }

  /** The items in heap order (not sorted); for scans that ignore order. */
  get items(): readonly T[] {
    return this.a;
  }

  push(x: T): void {
    const a = this.a;
    let i = a.push(x) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(x, a[p]!)) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = x;
  }

  peek(): T | undefined {
    return this.a[0];
  }

  pop(): T | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const c = l + 1 < a.length && this.less(a[l + 1]!, a[l]!) ? l + 1 : l;
        if (!this.less(a[c]!, last)) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}
