/**
 * ProcessLimit: at most `max` virsh processes of one driver alive at once; further calls wait
 * their turn, first come first served. Why: a collection round of the virsh driver runs ~9
 * virsh processes per host (450 at 50 hosts). Started all at once, the spawns (a fork of a
 * large Node process each) and the processes themselves block this process's event loop for
 * seconds, long enough for libvirt's keepalive to close RPC connections the same process holds
 * (bench/README.md, "Collection from many hosts"). Queued calls start as earlier ones exit.
 */
/**
 * Default of the virsh driver's cap (config `virsh.maxProcesses`, VirshBackendOptions.maxProcesses):
 * 8 processes kept a 50-host round from stalling the event loop (bench/README.md).
 */
export const DEFAULT_VIRSH_PROCESSES = 8;

/** Largest cap the configuration accepts (`virsh.maxProcesses`): a sane maximum, not a measured one (450 at once stalled a round). */
export const MAX_VIRSH_PROCESSES = 256;

export class ProcessLimit {
  private active = 0;
  private peakActive = 0;
  private readonly queue: Array<() => void> = [];

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`virsh process limit must be an integer ≥ 1 (got ${max})`);
  }

  /** Processes running now. */
  get running(): number {
    return this.active;
  }

  /** Calls waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Most processes ever running at once. */
  get peak(): number {
    return this.peakActive;
  }

  /** Runs `fn` once a slot is free; the slot is held until its promise settles. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.active++;
    this.peakActive = Math.max(this.peakActive, this.active);
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      // the slot passes straight to the next waiter (active stays the same), else it is freed
      if (next) next();
      else this.active--;
    }
  }
}
