// The peer's side of quiescence (the Raft rules are at the top of worker/raft/raft.ts): when a
// leader puts its group to sleep, when the host may stop ticking, and what a wake costs.
//
// A leader quiesces once it has been idle for `idleTicks` ticks in a row: nothing in flight in
// the core (RawNode.quiesceProblem) and nothing waiting in the peer (proposals, reads, a
// transfer, a learner catching up, a blocking read, a snapshot being encoded, a Ready or save
// under way) and no lease due within an election timeout. The idle stretch keeps a group with
// steady light traffic from falling asleep between requests (each wake costs a heartbeat round
// and the leader's lease).
//
// The host stops ticking (TickPort.rest) while the core is quiescent and no watcher is
// registered on this peer: a watch (its stream) keeps its own peer ticking for its progress
// frames and deadlines, never the group. A resting leader with leases asks to be woken at the
// earliest expiry; the time asleep is then credited to the lessor's deadlines (lessor.ts elapse),
// never owed as ticks, so no Raft timer jumps on waking.

import type { Clock, TickPort } from './ports.ts';

export class Quiescence {
  /** Consecutive idle ticks of a leader so far. */
  private idleRun = 0;
  private readonly idleTicks: number;
  private readonly tickMs: number;
  private readonly port: TickPort | null;
  private readonly clock: Clock;
  /** The host was told to stop ticking, and when (clock ms, peer tick). */
  private restingSince: { ms: number; tick: number } | null = null;
  /** When the core last went quiescent (clock ms), null while awake. */
  quiescedAtMs: number | null = null;
  /** Times woken from quiescence. */
  wakes = 0;

  constructor(idleTicks: number, tickMs: number, port: TickPort | undefined, clock: Clock) {
    this.idleTicks = idleTicks;
    this.tickMs = tickMs;
    this.port = port ?? null;
    this.clock = clock;
  }

  /** A leader's tick: whether it has now been idle long enough to quiesce. */
  idleTick(idle: boolean): boolean {
    this.idleRun = idle ? this.idleRun + 1 : 0;
    if (this.idleRun < this.idleTicks) return false;
    this.idleRun = 0;
    return true;
  }

  get resting(): boolean {
    return this.restingSince !== null;
  }

  /** The core is quiescent (`quiescent`) and the host may rest (`rest`): tell the host what
   *  changed. `wakeAtMs()` says when a resting peer must wake by itself. Returns the ticks slept
   *  when the host resumes ticking now, else null. */
  sync(quiescent: boolean, rest: boolean, nowTick: number, wakeAtMs: () => number | null): number | null {
    if (quiescent && this.quiescedAtMs === null) this.quiescedAtMs = this.clock.nowMs();
    if (!quiescent && this.quiescedAtMs !== null) {
      this.quiescedAtMs = null;
      this.wakes++;
      this.idleRun = 0;
    }
    if (rest && this.restingSince === null) {
      this.restingSince = { ms: this.clock.nowMs(), tick: nowTick };
      this.port?.rest(wakeAtMs());
      return null;
    }
    if (!rest && this.restingSince !== null) {
      const since = this.restingSince;
      this.restingSince = null;
      this.port?.resume();
      // Whole tick intervals that passed unticked (a host without a port kept ticking: none).
      const elapsedTicks = Math.floor((this.clock.nowMs() - since.ms) / this.tickMs);
      return Math.max(0, elapsedTicks - (nowTick - since.tick));
    }
    return null;
  }
}
