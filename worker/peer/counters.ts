// What a peer counts about itself for GET /metrics (worker/api/metrics.ts renders it): events
// that a status report (status.ts) cannot show as a current value, such as leader changes,
// failed proposals, snapshots and how long each durable write took. Counting never feeds a
// decision; the durations come from the host's Clock port (ports.ts), never a clock read here.

/** Upper bounds, in seconds, of etcd's disk histograms (wal_fsync, backend_commit): 1 ms to 8 s. */
export const DISK_SECONDS_BUCKETS: readonly number[] = [
  0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192,
];

/** Upper bounds, in seconds, for snapshot durations (etcd's snapshot histograms): 10 ms to ~11 min. */
export const SNAPSHOT_SECONDS_BUCKETS: readonly number[] = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 163.84, 327.68, 655.36,
];

/**
 * A Prometheus-style histogram: cumulative counts per upper bound, a sum and a count. One
 * implementation for every histogram metcd exposes (the peer's and the router's).
 */
export class Histogram {
  readonly bounds: readonly number[];
  /** counts[i]: observations <= bounds[i] and > bounds[i-1] (made cumulative when rendered). */
  private readonly counts: number[];
  private total = 0;
  private sumOfValues = 0;

  constructor(bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) throw new RangeError('histogram bounds must increase');
    }
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length).fill(0);
  }

  observe(value: number): void {
    const v = Number.isFinite(value) && value > 0 ? value : 0;
    this.total++;
    this.sumOfValues += v;
    for (let i = 0; i < this.bounds.length; i++) {
      if (v <= this.bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }

  get count(): number {
    return this.total;
  }

  get sum(): number {
    return this.sumOfValues;
  }

  /** Cumulative counts per bound (bucket `le`), the +Inf bucket being `count`. */
  cumulative(): number[] {
    let running = 0;
    return this.counts.map((c) => (running += c));
  }
}

/** The peer's event counters and duration histograms (Peer.counters). */
export class PeerCounters {
  /** Times a leader other than the one known before was seen (etcd: leader_changes_seen_total). */
  leaderChanges = 0;
  /** Proposals that were taken and then failed: refused by the core, lost, timed out, or failed
   *  because the peer stopped (etcd: proposals_failed_total). */
  proposalsFailed = 0;
  /** Snapshots of the applied state taken here, and snapshots installed from a leader. */
  snapshotsTaken = 0;
  snapshotsInstalled = 0;
  /** Snapshot transfers this peer streamed as a leader, and installs it staged a chunk at a time
   *  (a tiered peer: snapshot-streams.ts). */
  snapshotStreamsOpened = 0;
  snapshotsInstalledStaged = 0;
  /** Each storage.save(), the peer's one durable write per Ready (Node: fsync; edge: the
   *  storage transaction). */
  readonly saveSeconds = new Histogram(DISK_SECONDS_BUCKETS);
  /** A snapshot taken here: from its first slice to its last (encoded a slice at a time). */
  readonly snapshotTakeSeconds = new Histogram(SNAPSHOT_SECONDS_BUCKETS);
  /** A snapshot installed from a leader: the save that replaced the state with it. */
  readonly snapshotInstallSeconds = new Histogram(SNAPSHOT_SECONDS_BUCKETS);
}
