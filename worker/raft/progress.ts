// The leader's view of one follower: how far it has replicated and how to send it more.
//
//   probe      we don't know where its log matches ours: one append at a time, then wait
//              for the answer (or a heartbeat answer) before sending the next.
//   replicate  steady state: appends are pipelined, up to inflightAppendsMax in flight.
//   snapshot   its next entry was compacted away: an InstallSnapshot transfer is running,
//              no appends until it finishes.

import { invariant } from './assert.ts';
import type { Progress as ProgressStatus, Snapshot } from './types.ts';

/** A bounded FIFO of the last indexes of appends in flight (a ring buffer). */
export class Inflights {
  private readonly buf: number[];
  private start = 0;
  count = 0;

  constructor(capacity: number) {
    this.buf = new Array<number>(capacity).fill(0);
  }

  full(): boolean {
    return this.count === this.buf.length;
  }

  add(lastIndex: number): void {
    invariant(!this.full(), 'inflights overflow');
    this.buf[(this.start + this.count) % this.buf.length] = lastIndex;
    this.count++;
  }

  /** The follower acknowledged up to `index`: every append ending at or below it is done. */
  freeLE(index: number): void {
    while (this.count > 0 && this.buf[this.start]! <= index) {
      this.start = (this.start + 1) % this.buf.length;
      this.count--;
    }
  }

  freeFirst(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.buf.length;
    this.count--;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}

export class PeerProgress {
  match = 0;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot' = 'probe';
  /** Probe: an append is out and unanswered; send nothing more until an answer arrives. */
  probeSent = false;
  readonly inflights: Inflights;
  learner: boolean;
  /** Leader tick of the last message received from this peer in the leader's term. */
  lastContactTick: number;
  /** Snapshot state: the snapshot being sent, bytes the follower confirmed, tick of the last chunk. */
  snapshot: Snapshot | null = null;
  snapshotOffset = 0;
  snapshotSentTick = 0;

  constructor(next: number, inflightMax: number, learner: boolean, nowTick: number) {
    this.next = next;
    this.inflights = new Inflights(inflightMax);
    this.learner = learner;
    this.lastContactTick = nowTick;
  }

  private resetState(state: PeerProgress['state']): void {
    this.state = state;
    this.probeSent = false;
    this.inflights.reset();
    this.endSnapshot();
  }

  /** Leave the snapshot transfer under way, if any (a host's stream releases its view). */
  endSnapshot(): void {
    this.snapshot?.stream?.close();
    this.snapshot = null;
    this.snapshotOffset = 0;
  }

  becomeProbe(): void {
    // Coming back from a snapshot, resume right after what it installed.
    const afterSnapshot = this.snapshot !== null ? this.snapshot.meta.index + 1 : 0;
    this.resetState('probe');
    this.next = Math.max(this.match + 1, afterSnapshot);
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshot: Snapshot, nowTick: number): void {
    this.resetState('snapshot');
    this.snapshot = snapshot;
    this.snapshotSentTick = nowTick;
  }

  /** An acknowledgement up to `index`. False when it tells us nothing new. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of the append whose previous index was `rejected`; `matchHint` is the highest
   * index that may still match (from the follower's hint). False when the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Entries up to `lastIndex` (count of them: `count`) were just sent. */
  sentEntries(lastIndex: number, count: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  status(nowTick: number, electionTicks: number): ProgressStatus {
    return {
      match: this.match,
      next: this.next,
      inflight: this.inflights.count,
      state: this.state,
      learner: this.learner,
      recentActive: nowTick - this.lastContactTick < electionTicks,
    };
  }
}
