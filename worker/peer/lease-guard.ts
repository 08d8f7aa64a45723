// The lease guard: whether the leader lease the core grants may be trusted by this process.
//
// The core's lease counts this peer's ticks. A process that was paused or starved (SIGSTOP,
// a long GC, an evicted Durable Object woken by its alarm) ticks late, so its tick count lags
// the followers', who may have elected a new leader meanwhile. The lease is therefore only
// trusted while ticks keep pace with the wall clock: after a gap of more than two tick
// intervals it is distrusted for one election timeout (by then the core has renewed it from
// heartbeats acknowledged after the gap), and default reads fall back to ReadIndex.

import type { Clock } from './ports.ts';

export class LeaseGuard {
  private readonly tickMs: number;
  private readonly electionTicks: number;
  private readonly clock: Clock;
  /** Wall time of the last tick, and the tick before which the lease is not trusted (stall). */
  private lastTickAtMs: number | null = null;
  private suspectUntilTick = 0;
  /** Stalls noticed so far (each distrusted the lease for an election timeout). */
  stalls = 0;

  constructor(tickMs: number, electionTicks: number, clock: Clock) {
    this.tickMs = tickMs;
    this.electionTicks = electionTicks;
    this.clock = clock;
  }

  /** Tick number `ticks` happened now. Returns the gap in ms when it came late (a stall), else null. */
  noteTick(ticks: number): number | null {
    const now = this.clock.nowMs();
    let stallMs: number | null = null;
    if (this.lastTickAtMs !== null && now - this.lastTickAtMs > 2 * this.tickMs) {
      this.suspectUntilTick = ticks + this.electionTicks;
      stallMs = now - this.lastTickAtMs;
      this.stalls++;
    }
    this.lastTickAtMs = now;
    return stallMs;
  }

  /** Ticks start again after a quiescent sleep: that gap is no stall (the core dropped its lease
   *  on waking and renews it from a heartbeat round after the wake, raft.ts). */
  resumed(): void {
    this.lastTickAtMs = this.clock.nowMs();
  }

  /** Whether the lease may be used at tick `ticks`. */
  trusted(ticks: number): boolean {
    if (ticks < this.suspectUntilTick) return false;
    return this.lastTickAtMs !== null && this.clock.nowMs() - this.lastTickAtMs <= 2 * this.tickMs;
  }
}
