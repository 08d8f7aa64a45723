// Gives back the JS heap a burst of work left reserved once the node goes quiet.
//
// V8 keeps the pages a burst grew its heap to (a bulk load grows a node's reserved heap to two
// to four times what it holds) and has its own "memory reducer" to give them back when the
// process goes idle. That reducer never runs in an idle Node process: it judges idleness by the
// allocation rate, which V8 samples at garbage collections, and an idle process collects no
// garbage, so the last burst's rate stands. Traced on a sqlite node after loading 500,000 keys:
// "Memory reducer: high alloc, foreground; waiting for 8000 ms" every 8 s for as long as it
// stayed idle, the heap at 237 MB in use of 333 MB reserved, RSS 496 MB.
//
// So this does what the reducer would: every `intervalMs` it looks at the event loop's
// utilization over the interval and at the reserved heap; when the loop was nearly idle and the
// reserved heap grew by `regrowBytes` (and by `regrowShare` of itself) since the node started or
// last trimmed, it runs one full, compacting, memory-reducing collection (V8's `gc` with flavor
// 'last-resort', the collection the reducer runs itself), which releases the pages it empties.
// The heap in use is no guide beforehand (it counts garbage until a collection), so growth is
// the trigger: the pause happens only when the node had nothing else to do, once per burst.
// Measured after that load of 1,000,000 keys: 310 -> 56 MB reserved, RSS 494 -> 214 MB, one
// pause of 307 ms.

import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's gc() as --expose-gc installs it, with the options this uses. */
export type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

export interface HeapTrimOptions {
  intervalMs: number;
  /** The loop's utilization over the interval at most (0..1) for the node to count as quiet. */
  utilizationMax: number;
  /** Growth of the reserved heap, since the start or the last trim, that calls for a trim: at
   *  least this many bytes and this share of what it was (a large heap of live data is not
   *  collected again for every few megabytes). */
  regrowBytes: number;
  regrowShare: number;
}

export const DEFAULT_HEAP_TRIM: HeapTrimOptions = {
  intervalMs: 5000,
  utilizationMax: 0.05,
  regrowBytes: 32 * 1024 * 1024,
  regrowShare: 0.25,
};

/** What the trimmer has done, for /status. */
export interface HeapTrimStats {
  trims: number;
  /** Reserved heap given back by the trims, in bytes, in all. */
  releasedBytes: number;
}

/** One trim, as the node logs it. */
export interface HeapTrim {
  heapTotalBeforeBytes: number;
  heapTotalAfterBytes: number;
  heapUsedAfterBytes: number;
  /** How long the collection held the event loop. */
  pauseMs: number;
}

/** V8's gc(), obtained without --expose-gc on the command line (the flag is turned on for one
 *  new context and off again, so no other code sees a `gc`). Null if this V8 does not allow it. */
export function obtainGc(): GcFunction | null {
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === 'function') return existing as GcFunction;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as GcFunction) : null;
  } catch {
    return null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

interface HeapNow {
  heapUsed: number;
  heapTotal: number;
}

export class HeapTrimmer {
  private readonly o: HeapTrimOptions;
  private readonly gc: GcFunction;
  private readonly heap: () => HeapNow;
  private readonly onTrim: (t: HeapTrim) => void;
  private timer: NodeJS.Timeout | undefined;
  private lastUtilization = performance.eventLoopUtilization();
  /** The reserved heap at the start, then as the last trim left it. */
  private trimmedTo: number;
  readonly stats: HeapTrimStats = { trims: 0, releasedBytes: 0 };

  constructor(
    gc: GcFunction,
    onTrim: (t: HeapTrim) => void = () => undefined,
    o: HeapTrimOptions = DEFAULT_HEAP_TRIM,
    heap: () => HeapNow = () => process.memoryUsage(),
  ) {
    this.gc = gc;
    this.onTrim = onTrim;
    this.o = o;
    this.heap = heap;
    this.trimmedTo = heap().heapTotal;
  }

  start(): void {
    this.lastUtilization = performance.eventLoopUtilization();
    this.timer ??= setInterval(() => this.check(), this.o.intervalMs);
    this.timer.unref(); // never what keeps the process alive
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look: trims when the loop was quiet since the last look and the heap grew enough. */
  check(utilization = this.utilizationSinceLast()): boolean {
    if (utilization > this.o.utilizationMax) return false;
    const before = this.heap();
    const growth = before.heapTotal - this.trimmedTo;
    if (growth < this.o.regrowBytes || growth < this.o.regrowShare * this.trimmedTo) return false;
    const began = performance.now();
    this.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    const pauseMs = performance.now() - began;
    const after = this.heap();
    this.trimmedTo = after.heapTotal;
    this.stats.trims++;
    this.stats.releasedBytes += Math.max(0, before.heapTotal - after.heapTotal);
    this.onTrim({
      heapTotalBeforeBytes: before.heapTotal,
      heapTotalAfterBytes: after.heapTotal,
      heapUsedAfterBytes: after.heapUsed,
      pauseMs,
    });
    return true;
  }

  private utilizationSinceLast(): number {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, this.lastUtilization).utilization;
    this.lastUtilization = now;
    return u;
  }
}
