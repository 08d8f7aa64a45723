// Drives Peer.tick() from the monotonic clock. Ticks are owed by elapsed time, not by timer
// callbacks: a timer that fires late (a busy loop, a GC pause, a SIGSTOP) is followed by every
// tick that was missed, and the front door calls catchUp() before it serves any request. That
// is what keeps a leader lease honest on Node: a leader paused for longer than its lease has,
// by the time it answers anything, counted those ticks, stepped down and stopped serving
// `default` reads from its stale state.

import { performance } from 'node:perf_hooks';

export class Ticker {
  private readonly tickMs: number;
  private readonly catchUpTicksMax: number;
  private readonly onTick: () => void;
  private timer: NodeJS.Timeout | undefined;
  private lastMs = 0;
  /** Ticks delivered so far. */
  ticks = 0;

  /** `catchUpTicksMax` bounds the ticks run at once after a long stall (a few election timeouts suffice). */
  constructor(tickMs: number, catchUpTicksMax: number, onTick: () => void) {
    this.tickMs = tickMs;
    this.catchUpTicksMax = catchUpTicksMax;
    this.onTick = onTick;
  }

  start(): void {
    this.lastMs = performance.now();
    this.timer = setInterval(() => this.catchUp(), this.tickMs);
  }

  /** Runs the ticks owed since the last one. */
  catchUp(): void {
    if (this.timer === undefined) return;
    const now = performance.now();
    let owed = Math.floor((now - this.lastMs) / this.tickMs);
    if (owed <= 0) return;
    if (owed > this.catchUpTicksMax) {
      owed = this.catchUpTicksMax;
      this.lastMs = now;
    } else {
      this.lastMs += owed * this.tickMs;
    }
    for (let i = 0; i < owed; i++) {
      this.ticks++;
      this.onTick();
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
