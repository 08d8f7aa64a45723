// When a peer snapshots its KV state, and the encoding of that snapshot a slice at a time, so a
// large state never holds the peer up for the whole encoding (tens of ms per 100k keys).

import type { KvStateMachine } from '../kv/state-machine.ts';
import { StateEncoder } from '../kv/codec.ts';
import type { StateView } from '../kv/state-view.ts';
import type { Membership, Snapshot, SnapshotMeta } from '../raft/types.ts';
import { cloneMembership } from '../raft/membership.ts';
import type { PeerLimits } from './options.ts';
import type { Clock } from './ports.ts';

/**
 * A snapshot is encoded a slice at a time — after a ready or on a tick, at most one slice per
 * SNAPSHOT_SLICE_GAP_MS. Under load readies come back to back: one slice per ready alone would
 * still encode the whole state in one burst. A slice stops at limits.snapshotSliceRecords
 * records or at this many key and value characters.
 */
const SNAPSHOT_SLICE_CHARS = 1024 * 1024;
const SNAPSHOT_SLICE_GAP_MS = 4;

/** A snapshot being encoded: of the state as of `index` (a view later applies do not change). */
interface Job {
  view: StateView;
  encoder: StateEncoder;
  index: number;
  term: number;
  membership: Membership;
}

/** What the peer has applied, as the snapshot schedule needs it. */
export interface AppliedState {
  kv: KvStateMachine;
  applied: number;
  appliedTerm: number;
  appliedMembership: Membership;
  /** Index of the latest snapshot taken or installed. */
  snapshotIndex: number;
}

export class SnapshotJob {
  private readonly limits: PeerLimits;
  private readonly clock: Clock;
  private job: Job | null = null;
  /** No slice before this clock time (SNAPSHOT_SLICE_GAP_MS). */
  private nextSliceAtMs = 0;
  /** Command bytes applied since the last snapshot began (a snapshot is also due by size). */
  private bytesSinceSnapshot = 0;

  /** Snapshots are meta only: the host's table is the state (a tiered peer streams it). */
  private readonly metaOnly: boolean;
  /** Meta only: the applied point taken when the last snapshot was due, compacted to when the
   *  next one is (stepMetaOnly). */
  private mark: SnapshotMeta | null = null;

  constructor(limits: PeerLimits, clock: Clock, metaOnly = false) {
    this.limits = limits;
    this.clock = clock;
    this.metaOnly = metaOnly;
  }

  /** Whether a snapshot is being encoded. */
  get active(): boolean {
    return this.job !== null;
  }

  /** An entry of `bytes` was applied. */
  noteApplied(bytes: number): void {
    this.bytesSinceSnapshot += bytes;
  }

  /** A snapshot from the leader replaced the state: the count starts over. */
  noteInstalled(): void {
    this.bytesSinceSnapshot = 0;
    this.mark = null; // a point of the state the snapshot replaced
  }

  /**
   * Every snapshotEveryEntries applied entries, or sooner once they carry snapshotEveryBytes
   * (the log is held in memory until compacted): begin a snapshot of the state (captured at once,
   * as a view), and encode one slice of it per call. Returns the snapshot once its last slice is
   * encoded (the caller compacts the log to it), null until then.
   */
  step(state: AppliedState, onTick: boolean): Snapshot | null {
    if (this.metaOnly) return this.stepMetaOnly(state);
    if (this.job === null) {
      const entriesDue = state.applied - state.snapshotIndex >= this.limits.snapshotEveryEntries;
      const bytesDue = state.applied > state.snapshotIndex && this.bytesSinceSnapshot >= this.limits.snapshotEveryBytes;
      if (!entriesDue && !bytesDue) return null;
      this.bytesSinceSnapshot = 0;
      this.job = {
        view: state.kv.beginView(),
        encoder: new StateEncoder(state.kv.revision),
        index: state.applied,
        term: state.appliedTerm,
        membership: cloneMembership(state.appliedMembership),
      };
    }
    const job = this.job;
    if (this.clock.nowMs() < this.nextSliceAtMs && !onTick) return null;
    job.encoder.add(job.view.next(this.limits.snapshotSliceRecords, SNAPSHOT_SLICE_CHARS));
    this.nextSliceAtMs = this.clock.nowMs() + SNAPSHOT_SLICE_GAP_MS; // a gap after the slice, however long it took
    if (!job.view.done) return null;
    const data = job.encoder.finish(job.view.sessions);
    this.abandon();
    return { meta: { index: job.index, term: job.term, membership: job.membership }, data };
  }

  /**
   * A meta-only snapshot is due on the same schedule, counted from the last point it was due
   * (the mark), but compacts the log only to that mark, one interval back: a follower behind
   * by less than an interval of log still catches up from the log (etcd keeps 5,000 entries
   * after a compaction for the same reason), while the log held stays under two intervals. The
   * mark's term and membership are the applied ones when it was taken, hence those at its index.
   */
  private stepMetaOnly(state: AppliedState): Snapshot | null {
    const from = this.mark?.index ?? state.snapshotIndex;
    const entriesDue = state.applied - from >= this.limits.snapshotEveryEntries;
    const bytesDue = state.applied > from && this.bytesSinceSnapshot >= this.limits.snapshotEveryBytes;
    if (!entriesDue && !bytesDue) return null;
    this.bytesSinceSnapshot = 0;
    const previous = this.mark;
    this.mark = { index: state.applied, term: state.appliedTerm, membership: cloneMembership(state.appliedMembership) };
    if (previous === null || previous.index <= state.snapshotIndex) return null;
    return { meta: previous, data: new Uint8Array(0) };
  }

  /** Drop the snapshot under way (its state was replaced, or the peer closes). */
  abandon(): void {
    this.job?.view.close();
    this.job = null;
  }
}
