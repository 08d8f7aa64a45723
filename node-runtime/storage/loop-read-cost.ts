// Whether a tiered engine's record reads are cheap enough to stay on the event loop. A read
// served from memory-speed storage (the OS page cache, LevelDB's block cache) takes a few
// microseconds, less than the hop to another thread and back that a read off the loop costs
// (measured at 1,000,000 keys: Zipfian reads ran 30% slower with every miss fetched off the
// loop). A read that waits on a disk takes tens of microseconds to milliseconds, during which
// the loop serves no one. So the engine times its reads on the loop (an exponential moving
// average) and a client's miss goes off the loop (RecordStore.prefetch) only while they are
// slow; one offer in SAMPLE_EVERY stays on the loop, so the average keeps following the disk.

/** A read on the loop slower than this on average (µs) is a disk read: misses go off the loop. */
export const SLOW_READ_US = 50;
/** Weight of each new read in the average. */
const ALPHA = 0.05;
/** One offer in this many is declined while reads are slow: a read on the loop keeps measuring. */
const SAMPLE_EVERY = 32;

export class LoopReadCost {
  private averageUs = 0;
  private reads = 0;
  private offers = 0;
  private readonly nowUs: () => number;

  constructor(nowUs: () => number = () => performance.now() * 1000) {
    this.nowUs = nowUs;
  }

  /** Runs a read on the loop, timing it. */
  time<T>(read: () => T): T {
    const start = this.nowUs();
    try {
      return read();
    } finally {
      const us = this.nowUs() - start;
      this.averageUs = this.reads === 0 ? us : this.averageUs + (us - this.averageUs) * ALPHA;
      this.reads++;
    }
  }

  /** Whether the next miss of a client's read should be fetched off the loop. */
  offLoop(): boolean {
    if (this.averageUs <= SLOW_READ_US) return false;
    return ++this.offers % SAMPLE_EVERY !== 0;
  }

  /** The average read on the loop, in microseconds (for tests). */
  get averageReadUs(): number {
    return this.averageUs;
  }
}
