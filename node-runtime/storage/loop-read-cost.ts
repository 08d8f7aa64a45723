// Whether a tiered engine's record reads are cheap enough to stay on the event loop. A read
// served from memory-speed storage (the OS page cache, LevelDB's block cache) takes a few
// microseconds, less than the hop to another thread and back that a read off the loop costs
// (measured at 1,000,000 keys: Zipfian reads ran 30% slower with every miss fetched off the
// loop). A read that waits on a disk takes tens of microseconds to milliseconds, during which
// the loop serves no one. So the engine times its reads on the loop and a client's miss goes
// off the loop (RecordStore.prefetch) only while most of them are slow; one offer in
// SAMPLE_EVERY stays on the loop, so the measure keeps following the disk.
//
// Most, not on average: the share of slow reads, not their mean time. At 10,000,000 keys in the
// page cache, sqlite's reads on the loop took 10–25 µs (the median), but about one in twenty
// took over 100 µs (the process preempted on a busy machine, a page from the disk). Those pushed
// a mean over the line, and with one read in SAMPLE_EVERY left to measure it stayed there:
// every miss went off the loop for nothing, and Zipfian reads ran at a third of the hot rate.

/** When a client's misses go off the loop (--off-loop-reads): `auto` while most reads on the loop
 *  are slow (below), `always` (a network disk, where every read waits), `never` (a machine whose
 *  data fits its page cache). */
export const OFF_LOOP_READS = ['auto', 'always', 'never'] as const;
export type OffLoopReads = (typeof OFF_LOOP_READS)[number];

/** A read on the loop slower than this (µs) is a disk read. */
export const SLOW_READ_US = 50;
/** Misses go off the loop while more than this share of recent reads are slow. */
const SLOW_SHARE = 0.5;
/** Weight of each new read in the share (an exponential moving average). */
const ALPHA = 0.05;
/** One offer in this many is declined while reads are slow: a read on the loop keeps measuring. */
const SAMPLE_EVERY = 32;

export class LoopReadCost {
  private slow = 0;
  private reads = 0;
  private offers = 0;
  private readonly nowUs: () => number;
  private readonly mode: OffLoopReads;

  constructor(mode: OffLoopReads = 'auto', nowUs: () => number = () => performance.now() * 1000) {
    this.mode = mode;
    this.nowUs = nowUs;
  }

  /** Runs a read on the loop, timing it (only `auto` needs the time). */
  time<T>(read: () => T): T {
    if (this.mode !== 'auto') return read();
    const start = this.nowUs();
    try {
      return read();
    } finally {
      const isSlow = this.nowUs() - start > SLOW_READ_US ? 1 : 0;
      this.slow = this.reads === 0 ? isSlow : this.slow + (isSlow - this.slow) * ALPHA;
      this.reads++;
    }
  }

  /** Whether the next miss of a client's read should be fetched off the loop. */
  offLoop(): boolean {
    if (this.mode !== 'auto') return this.mode === 'always';
    if (this.slow <= SLOW_SHARE) return false;
    return ++this.offers % SAMPLE_EVERY !== 0;
  }

  /** The share of recent reads on the loop slower than SLOW_READ_US (for tests). */
  get slowShare(): number {
    return this.slow;
  }
}
