// What a host configures when it opens a Peer, and the defaults.

import type { Membership, NodeId, RaftConfig, RandomSource } from '../raft/types.ts';
import type { KvLimits } from '../kv/types.ts';
import type { InitialState } from './restart.ts';
import type { Clock, PeerStorage, PeerTransport, TickPort } from './ports.ts';
import type { WatchLimits } from './watch-room.ts';

/** How often a host calls Peer.tick() unless configured otherwise (both hosts default to it;
 *  every peer is opened with its host's actual tick, PeerOptions.tickMs). All peer and Raft
 *  timeouts are counted in ticks; the core's defaults (worker/raft/config.ts: electionTicks 10,
 *  heartbeatTicks 1) suit 100 ms. */
export const DEFAULT_TICK_MS = 100;

/** How long a client operation (write, read, membership change, transfer) may wait in the
 *  peer before it fails with `timeout`, whatever the tick length: the request timeout of both
 *  hosts. A host's HTTP layer may bound other things (a slow body, a peer message) but never
 *  answers a client operation sooner. */
export const REQUEST_TIMEOUT_MS = 5000;
/** Fewer ticks than this and a slow tick (10 s) would leave no room for one round trip. */
const REQUEST_TIMEOUT_TICKS_MIN = 5;

/** REQUEST_TIMEOUT_MS in ticks of `tickMs` (the default of PeerLimits.requestTimeoutTicks). */
export function requestTimeoutTicksFor(tickMs: number): number {
  return Math.max(REQUEST_TIMEOUT_TICKS_MIN, Math.ceil(REQUEST_TIMEOUT_MS / tickMs));
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type PeerLog = (level: LogLevel, event: string, fields: Record<string, unknown>) => void;

export interface PeerLimits {
  /** Writes and membership changes waiting to be applied; more are refused (too-many-pending). */
  pendingProposalsMax: number;
  /** Reads waiting for a ReadIndex round or for apply to catch up; more are refused. */
  pendingReadsMax: number;
  /** A client operation not answered within this many ticks fails with `timeout`
   *  (default: REQUEST_TIMEOUT_MS at the peer's tick, requestTimeoutTicksFor). */
  requestTimeoutTicks: number;
  /** Take a KV snapshot and compact the log after this many applied entries… */
  snapshotEveryEntries: number;
  /** …or sooner, once the entries applied since the last one carry this many bytes: the log
   *  is held in memory until compacted, so its size needs a bound, not only its length. */
  snapshotEveryBytes: number;
  /** The leader refuses a put that would take the KV state (keys + values, UTF-8) past this
   *  (etcd's space quota). Admission only, checked against the leader's own state: entries
   *  already in the log still apply everywhere, so it may be overshot by what is in flight. */
  stateBytesMax: number;
  /** A snapshot is encoded this many records at a time (one slice after each ready and on
   *  each tick), so a large state never holds the peer up for its whole encoding. */
  snapshotSliceRecords: number;
  /** A learner is promoted to voter only once it has acknowledged entries and its match index
   *  is within this many entries of the leader's last index; until then promote is refused
   *  (learner-behind). A voter that is far behind adds to the quorum without being able to
   *  acknowledge anything, so promoting it early can stall commits (etcd refuses a promote
   *  below 90% of the leader's match; an entry count bounds the same thing for any log length:
   *  what the new voter may still have to receive). */
  promoteLagEntriesMax: number;
}

/**
 * What a tiered peer (its engine's table is the state) changes of those defaults. Its snapshot
 * is meta only and streamed when sent, so compacting costs nothing but the log it drops: it
 * compacts every 8 MiB of log instead of 64, to the point one interval back (snapshot-job.ts),
 * so the log held in memory stays between 8 and 16 MiB and a follower less than 8 MiB behind
 * catches up from it. Measured at 1M keys: the log had been a third of a loaded node's live
 * memory.
 */
export const TIERED_PEER_LIMITS: Pick<PeerLimits, 'snapshotEveryBytes'> = {
  snapshotEveryBytes: 8 * 1024 * 1024,
};

/** The defaults of every limit but requestTimeoutTicks, which depends on the tick. */
export const DEFAULT_PEER_LIMITS: Omit<PeerLimits, 'requestTimeoutTicks'> = {
  pendingProposalsMax: 4096,
  pendingReadsMax: 4096,
  snapshotEveryEntries: 10_000,
  snapshotEveryBytes: 64 * 1024 * 1024,
  // The whole state lives in memory. The edge sets its own from a Durable Object's memory
  // (worker/edge/memory.ts); Node raises it.
  stateBytesMax: 64 * 1024 * 1024,
  snapshotSliceRecords: 1024,
  promoteLagEntriesMax: 1000,
};

export interface PeerOptions {
  id: NodeId;
  /** The peer owns the storage after open(): close() closes it. */
  storage: PeerStorage;
  transport: PeerTransport;
  clock: Clock;
  random: RandomSource;
  /** Membership for a brand-new peer's first start (ignored when storage already has state).
   *  Empty voters = a peer waiting to be added by /join. */
  initialMembership: Membership;
  /** A brand-new cluster's initial KV state and the log index it stands at, instead of an empty
   *  state at BOOTSTRAP_INDEX (a restore, worker/backup/): every founder must be given the same.
   *  Ignored, as initialMembership, when storage already has state. */
  initialState?: InitialState;
  /** Overrides of the core's defaults (defaultRaftConfig). */
  raft?: Partial<Omit<RaftConfig, 'id' | 'random'>>;
  kvLimits?: KvLimits;
  limits?: Partial<PeerLimits>;
  /** Watchers and what they may queue (watch-room.ts DEFAULT_WATCH_LIMITS). */
  watchLimits?: Partial<WatchLimits>;
  log?: PeerLog;
  /** The cluster's name, for messages (a removed peer's refusals name it). */
  cluster?: string;
  /** How often this host calls tick(), in ms (required: the peer times stalls and converts
   *  REQUEST_TIMEOUT_MS with it). Ticks arriving much later than this mark the process as
   *  stalled, and the leader lease is distrusted for a while (lease-guard.ts). */
  tickMs: number;
  /** Quiescence (worker/peer/quiescence.ts): an idle group stops ticking. Default on; false
   *  keeps this peer ticking and refusing a leader's quiesce heartbeat (set it alike on every
   *  peer: one peer with it off keeps waking a leader that has it on). */
  quiesce?: boolean;
  /** Where the peer says when it needs ticks; without it the host just keeps ticking. */
  ticks?: TickPort;
  /** The hot cache's budget in bytes when the storage is tiered (LoadedState.tier; default
   *  record-tier.ts DEFAULT_CACHE_BYTES). Ignored when the state is all in memory. */
  cacheBytes?: number;
}
