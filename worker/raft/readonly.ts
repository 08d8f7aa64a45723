// Leader reads: ReadIndex rounds and the lease, both driven by heartbeat rounds.
//
// Every heartbeat broadcast is a numbered round; its number travels as the heartbeat's
// `context` and comes back in heartbeatResp. A follower answering round k also vouches for all
// earlier rounds, so "the newest round a majority acknowledged" is one majority computation
// over per-voter acknowledged round numbers.
//
// ReadIndex (§6.4): each read is stamped with the commit index at its arrival and waits for
// a round whose heartbeats leave the leader after it arrived: the newest round if its messages
// are still unsent (not yet taken by a Ready), else the next one, which starts as soon as no
// round with reads is out (batching: one round serves every read queued before it). When a
// majority acknowledges that round (or any later one), the leader was still leader after the
// reads arrived, so they are released at their stamped indexes.
//
// Lease: once a majority acknowledged a round sent at leader tick S, each of those followers
// received it at or after S and, having heard from a leader, refuses (pre)votes for
// electionTicks of ITS ticks (see Raft.inLease). No other leader can therefore be elected
// before S + electionTicks on the followers' clocks. The leader serves lease reads only while
//     now < S + electionTicks - leaseDriftTicks      (leader ticks)
// leaseDriftTicks absorbs (a) the phase offset between tick timers (up to one tick) and (b)
// the rate difference between clocks over one election timeout; it must be >= 1 and should be
// >= 1 + ceil(electionTicks * maxRelativeClockDrift). Counting from the SEND tick (not the
// ack) keeps message delay on the safe side. Restarted nodes count as having just heard from a
// leader (Raft.constructor), so a crash does not shorten the followers' promise. Membership
// changes inside the window do not open a gap either: a candidate whose log holds a newer
// configuration received it from this leader after S, so its own election timer cannot fire
// before S + electionTicks. A TimeoutNow bypasses the promise, so after sending one the leader
// serves no lease read for the rest of its term (leader.ts leaseRead).

import type { NodeId, ReadState } from './types.ts';
import { majorityValue } from './quorum.ts';

/** Reads waiting for a round or in an unconfirmed round, at most. */
export const READS_PENDING_MAX = 100_000;

interface Round {
  seq: number;
  sendTick: number;
  reads: ReadState[];
}

export class ReadRounds {
  private seq = 0;
  private waiting: ReadState[] = [];
  private rounds: Round[] = [];
  /** The newest round's heartbeats have not been handed to the host yet. */
  private newestUnsent = false;
  private pendingReads = 0;
  /** Newest round each peer acknowledged. */
  private readonly acked = new Map<NodeId, number>();
  /** Send tick of the newest round a majority acknowledged. */
  leaseStartTick = Number.NEGATIVE_INFINITY;

  /**
   * Queue a read that arrived when the commit index was `commit`. Returns 'full' when too
   * many reads are pending, 'joined' when it rides a round not yet sent, else 'waiting'.
   */
  queue(ctx: string, commit: number): 'full' | 'joined' | 'waiting' {
    if (this.pendingReads >= READS_PENDING_MAX) return 'full';
    this.pendingReads++;
    const newest = this.rounds[this.rounds.length - 1];
    if (this.newestUnsent && newest !== undefined && newest.seq === this.seq) {
      newest.reads.push({ ctx, index: commit });
      return 'joined';
    }
    this.waiting.push({ ctx, index: commit });
    return 'waiting';
  }

  hasWaiting(): boolean {
    return this.waiting.length > 0;
  }

  /** Is a round that carries reads still unconfirmed? (Then new reads wait for the next.) */
  readsInFlight(): boolean {
    for (const r of this.rounds) if (r.reads.length > 0) return true;
    return false;
  }

  /** Start a round now; returns its context for the heartbeats. */
  startRound(nowTick: number, electionTicks: number): string {
    this.seq++;
    this.rounds.push({ seq: this.seq, sendTick: nowTick, reads: this.waiting });
    this.waiting = [];
    this.newestUnsent = true;
    // A round without reads that a majority has not confirmed within an election timeout can
    // no longer extend the lease: forget it so rounds stay bounded when acks are lost.
    while (this.rounds.length > 0 && this.rounds[0]!.reads.length === 0 && this.rounds[0]!.sendTick + electionTicks <= nowTick) {
      this.rounds.shift();
    }
    return String(this.seq);
  }

  /** The host took the messages (RawNode.ready()): later reads need a later round. */
  markSent(): void {
    this.newestUnsent = false;
  }

  /**
   * The leader woke from quiescence: its ticks stood still while it slept, so no round sent
   * before it may vouch for a lease now (an acknowledgement arriving late would otherwise start
   * one in the past). Only possible with no read waiting: quiescence waits for them all.
   */
  dropLease(): void {
    if (this.waiting.length > 0 || this.readsInFlight()) throw new Error('dropLease with reads pending');
    this.rounds = [];
    this.newestUnsent = false;
    this.leaseStartTick = Number.NEGATIVE_INFINITY;
  }

  /** Parse a heartbeatResp context back into a round number (null if it is not one of ours). */
  parseContext(ctx: string | undefined): number | null {
    if (ctx === undefined || !/^[1-9][0-9]{0,15}$/.test(ctx)) return null;
    const seq = Number(ctx);
    return seq <= this.seq ? seq : null;
  }

  /**
   * `from` acknowledged round `seq`. Returns the reads released by it (oldest first).
   * `self` counts as having acknowledged every round it sent.
   */
  onAck(from: NodeId, seq: number, voters: readonly NodeId[], self: NodeId): ReadState[] {
    if ((this.acked.get(from) ?? 0) >= seq) return [];
    this.acked.set(from, seq);
    const confirmed = majorityValue(voters, (id) => (id === self ? this.seq : (this.acked.get(id) ?? 0)));
    return this.confirm(confirmed);
  }

  private confirm(seq: number): ReadState[] {
    let released: ReadState[] = [];
    while (this.rounds.length > 0 && this.rounds[0]!.seq <= seq) {
      const r = this.rounds.shift()!;
      if (r.sendTick > this.leaseStartTick) this.leaseStartTick = r.sendTick;
      released = released.length === 0 ? r.reads : released.concat(r.reads);
      this.pendingReads -= r.reads.length;
    }
    return released;
  }
}
