// What the workload runner needs from a cluster under test, whichever system it is.

import type { System } from './wrk.ts';

export interface LeaderView {
  /** The leader's client URL (requests go straight to it: no redirect hops). */
  url: string;
  id: string;
  term: number;
}

export interface ClusterUnderTest {
  readonly system: System;
  /** "metcd/sqlite", "etcd". */
  readonly label: string;
  /** Waits until a leader that a majority agrees on is found. */
  leader(timeoutMs?: number): Promise<LeaderView>;
  /** The store's revision as the leader reports it (one per acknowledged write). */
  revision(leader: LeaderView): Promise<number>;
  /** Writes `count` keys readKey(0..count-1) with the bench value (the read workloads' keys). */
  preload(leader: LeaderView, count: number, valueBytes: number): Promise<void>;
  /** Every member's client URL (watchers are spread over them, as clients spread over endpoints). */
  clientUrls(): string[];
  /** Processes of the cluster, for CPU accounting. */
  pids(): number[];
  stop(): Promise<void>;
}
