// Drives Peer.tick() from the monotonic clock. Ticks are owed by elapsed time, not by timer
// callbacks: a timer that fires late (a busy loop, a GC pause, a SIGSTOP) is followed by every
// tick that was missed, and the front door calls catchUp() before it serves any request. That
// is what keeps a leader lease honest on Node: a leader paused for longer than its lease has,
// by the time it answers anything, counted those ticks, stepped down and stopped serving
// `default` reads from its stale state.
//
// Quiescence (worker/peer/quiescence.ts) is the exception: the peer asks to rest (rest()), the
// timer stops, and on resume() the clock starts again from now. The time asleep is owed
// nothing: a woken follower charged with it would campaign at once. (The core makes a woken
// leader's lease invalid instead, worker/raft/raft.ts.) A resting leader with leases is woken
// by a one-shot timer at the earliest expiry.

import { performance } from 'node:perf_hooks';

export class Ticker {
  private readonly tickMs: number;
  private readonly catchUpTicksMax: number;
  private readonly onTick: () => void;
  private timer: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private started = false;
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
    this.started = true;
    this.lastMs = performance.now();
    this.timer ??= setInterval(() => this.catchUp(), this.tickMs);
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

  /** The peer needs no ticks: stop, and call `onWake` after `wakeInMs` (null: never by itself). */
  rest(wakeInMs: number | null, onWake: () => void): void {
    if (!this.started) return;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    if (wakeInMs !== null) {
      this.wakeTimer = setTimeout(() => {
        this.wakeTimer = undefined;
        onWake();
      }, wakeInMs);
    }
  }

  /** Ticks are needed again: from now, none owed for the rest. */
  resume(): void {
    if (!this.started) return;
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    if (this.timer !== undefined) return;
    this.lastMs = performance.now();
    this.timer = setInterval(() => this.catchUp(), this.tickMs);
  }

  stop(): void {
    this.started = false;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer);
    this.timer = undefined;
    this.wakeTimer = undefined;
  }
}
