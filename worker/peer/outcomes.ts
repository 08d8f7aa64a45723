// What the Peer's client operations answer with (read by the router and the hosts).

import type { TokenView } from '../kv/tokens.ts';
import type { LeaseView } from '../kv/leases.ts';
import type { RevisionProblem } from '../kv/state-machine.ts';
import type { KeyEvent } from '../kv/history.ts';
import type { NodeId, Role } from '../raft/types.ts';
import type { KeyRecord, KvResult } from '../kv/types.ts';
import type { NonMemberCounts } from './senders.ts';

export type ReadLevel = 'default' | 'consistent' | 'stale';
export const READ_LEVELS: readonly ReadLevel[] = ['default', 'consistent', 'stale'];

/** The read-only face of the KV state machine a read query runs against. */
export interface KvView {
  get(key: string): KeyRecord | undefined;
  range(opts: { prefix?: string; start?: string; end?: string; limit: number }): Array<[string, KeyRecord]>;
  readonly revision: number;
  readonly size: number;
  /** The API tokens (their secrets' digests and rules). */
  readonly tokens: TokenView;
  /** The leases and their keys (kv/leases.ts). */
  readonly leases: LeaseView;
  /** Reads below this revision are refused (its history was compacted). */
  readonly compactedRevision: number;
  /** `key` as of a past revision, or why that revision cannot be read (kv/state-machine.ts). */
  getAt(key: string, revision: number): KeyRecord | undefined | RevisionProblem;
  rangeAt(
    opts: { prefix?: string; start?: string; end?: string; limit: number },
    revision: number,
  ): Array<[string, KeyRecord]> | RevisionProblem;
  /** The changes of revisions >= `from`, in revision order (what a watch replays). */
  eventsFrom(from: number): Iterable<KeyEvent> | RevisionProblem;
}

export interface ReadOutcome<T> {
  value: T;
  /** KV revision the answer reflects. */
  revision: number;
  /** Applied index the answer reflects. */
  applied: number;
}

export interface WriteOutcome {
  /** The state machine's answer (ok, or compare-failed / session-expired / invalid). */
  result: KvResult;
  /** Log index the command was applied at. */
  index: number;
}

export interface MemberStatus {
  id: NodeId;
  address: string;
  voter: boolean;
  /** Highest log index known replicated on it (leader only; null elsewhere). */
  match: number | null;
}

export interface PeerStatus {
  id: NodeId;
  role: Role;
  term: number;
  leader: NodeId;
  leaderAddress: string;
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  snapshotIndex: number;
  revision: number;
  /** Reads below this revision are refused: its history was compacted. */
  compactRevision: number;
  keys: number;
  /** Leases held (kv/leases.ts). */
  leases: number;
  /** Keys, values and history held, in UTF-8 bytes, and the quota writes are refused past (no-space). */
  stateBytes: number;
  stateBytesMax: number;
  /** The hot-record cache of a tiered engine (the key space on disk), null when all in memory. */
  cache: CacheStatus | null;
  /** Snapshot transfers of a tiered peer (streamed, staged): the streams it serves to followers
   *  now, and the transfer it is receiving (bytes and records staged so far; null when none).
   *  Null on a peer that holds its state in memory. */
  snapshotStreams: { sending: number; receiving: { bytes: number; records: number } | null } | null;
  members: MemberStatus[];
  pendingProposals: number;
  pendingReads: number;
  /** Milliseconds since this peer last heard from the leader (0 on the leader; null = never). */
  lastLeaderContactMs: number | null;
  /** Why the peer stopped serving (storage failure), or null. */
  failure: string | null;
  /** The tick length this peer was opened with (its host's), and how many times its ticks came
   *  more than two tick lengths apart (a stall: the leader lease is then distrusted a while). */
  tickMs: number;
  tickStalls: number;
  /** Set once this peer was removed from the cluster (it serves nothing then), else null. */
  removed: string | null;
  /** The core's counters of dropped messages, by reason. */
  dropped: Record<string, number>;
  /**
   * Raft messages from senders that are not members, counted before the core sees them
   * (worker/peer/senders.ts): dropped from a removed member, dropped from an id no configuration
   * here names, and a leader's replication traffic from such an id let in because this peer had
   * heard from no leader within an election timeout (a lagging follower, a joining node).
   */
  nonMemberMessages: NonMemberCounts;
  /** Watches and blocking reads registered here (worker/peer/watch-room.ts). */
  watchers: number;
  /** Quiescence (worker/peer/quiescence.ts): this peer sleeps with its group (no Raft timer
   *  runs; its host stops ticking unless a watcher here needs ticks), since when (clock ms), and
   *  how many times it was woken from it. */
  quiescent: boolean;
  quiescedAtMs: number | null;
  wakes: number;
}

export interface Health {
  ok: boolean;
  /** Why not healthy ('' when ok). */
  reason: string;
}

/** What a stale read may lag by, for response headers. */
export interface Staleness {
  leader: NodeId;
  lastLeaderContactMs: number | null;
  applied: number;
  commit: number;
}

/** How a tiered peer's record reads were served (worker/kv/tiered-records.ts). */
export interface CacheStatus {
  /** The cache's budget (`--cache-bytes`) and the estimated bytes of the records it holds. */
  capacityBytes: number;
  bytes: number;
  entries: number;
  /** Reads answered from memory (the cache or the unsaved changes) and from the disk, since the
   *  peer opened; hitRate = hits / (hits + misses), null before any read. */
  hits: number;
  misses: number;
  hitRate: number | null;
  /** Of the misses, those read off the event loop (a client's read, fetched before it ran). */
  missesOffLoop: number;
  evictions: number;
  /** Changes applied and not yet durable (held in memory until their save resolves). */
  pending: number;
}
