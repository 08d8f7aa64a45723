// The public contract of the Raft core: what goes in, what comes out.
//
// The core is a pure, deterministic state machine in the style of etcd's raft library.
// It never does I/O, never reads a clock, never draws its own randomness and never imports
// a runtime. Hosts (the Durable Object, the Node shim, the simulator) drive it:
//
//   inputs   tick(), step(msg), propose(datas), proposeConfChange(cc), readIndex(ctx),
//            transferLeadership(to), compact(index, data)
//   output   ready(): a Ready batch, handled in the order documented on `Ready`,
//            then acknowledged with advance(ready).
//
// All indexes and terms are plain numbers (safe integers). Node ids are short strings.

export type NodeId = string;

/** Durable per-node state. Must be persisted before any message that depends on it leaves. */
export interface HardState {
  term: number;
  /** Candidate voted for in `term`, or '' for none. */
  vote: NodeId;
  commit: number;
}

export type EntryType = 'normal' | 'conf';

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  /**
   * Opaque to the core for 'normal' entries (the host's encoded command; an empty array is a
   * no-op, as the leader appends on election). For 'conf' entries: encodeConfChange(cc).
   */
  data: Uint8Array;
}

/** Who is in the cluster. The core decides with voters; learners only receive the log. */
export interface Membership {
  voters: NodeId[];
  learners: NodeId[];
  /** Opaque per-member address (a URL on Node, a peer name on the edge). The core only carries it. */
  addresses: Record<NodeId, string>;
}

export type ConfChangeType = 'addVoter' | 'addLearner' | 'promoteLearner' | 'removeNode';

export interface ConfChange {
  type: ConfChangeType;
  node: NodeId;
  /** Address of the node, for addVoter / addLearner. */
  address?: string;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  /** Membership as of `index`. */
  membership: Membership;
}

export interface Snapshot {
  meta: SnapshotMeta;
  /** The state machine's snapshot (opaque to the core). Empty when `stream` produces it, or
   *  when it was received `staged` (the host holds it). */
  data: Uint8Array;
  /** A leader's snapshot the host produces on demand for one transfer (SnapshotProvider). */
  stream?: SnapshotStream;
  /** Received a chunk at a time into the host (Ready.snapshotParts), not held by the core. */
  staged?: true;
}

/**
 * A snapshot's bytes produced on demand, for one transfer, read forward only: `offset` is 0
 * first, then the start of the last chunk read (a resend) or its end (the next one).
 */
export interface SnapshotStream {
  /** At most `maxBytes` at `offset` and whether they end the snapshot; null when this stream
   *  cannot serve `offset` (it went back, or the host closed the stream): the leader starts a
   *  new transfer from a new stream. */
  read(offset: number, maxBytes: number): { data: Uint8Array; done: boolean } | null;
  /** The transfer ended (or was abandoned): release what the stream holds. Idempotent. */
  close(): void;
}

/**
 * A host that produces its snapshots on demand (a state larger than memory is never one
 * buffer): a leader opens one stream per transfer, of the state the host has applied at that
 * moment (at an index between the log's base and the commit index).
 */
export interface SnapshotProvider {
  /** Null when the host cannot now (its state is being replaced): the leader tries again later. */
  open(): { index: number; stream: SnapshotStream } | null;
}

/** Bytes of a snapshot being received, handed to a host that stages them (Ready.snapshotParts). */
export interface SnapshotPart {
  /** Byte offset of `data` in the snapshot: 0 starts a transfer (drop what was staged). */
  offset: number;
  data: Uint8Array;
  /** The last bytes: a `staged` Ready.snapshot follows once the core restores it. */
  done: boolean;
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** Volatile state a host may want to show (status pages) or act on (redirects). */
export interface SoftState {
  role: Role;
  /** Known leader of the current term, or '' when unknown. */
  leader: NodeId;
  term: number;
}

/** A read released by the core: serve `ctx`'s read once the applied index reaches `index`. */
export interface ReadState {
  ctx: string;
  index: number;
}

/**
 * Every message type, in wire order: a type's position is its code in the codec (codec.ts), so
 * new types go at the end. The last one is not Raft: `removed`, a member telling a node that
 * messaged it that a committed configuration, the one at `index`, does not include that node.
 * The peers handle it (worker/peer/removal.ts); the core drops it. `wake` is a peer woken from
 * quiescence by something other than a message (a client, a restart) waking the rest of its
 * group; every stepped message wakes a quiescent node, this one carries nothing else.
 */
export const MESSAGE_TYPES = [
  'preVote',
  'preVoteResp',
  'vote',
  'voteResp',
  'append',
  'appendResp',
  'heartbeat',
  'heartbeatResp',
  'snapshot',
  'snapshotResp',
  'timeoutNow',
  'removed',
  'wake',
] as const;

export type MessageType = (typeof MESSAGE_TYPES)[number];

/**
 * A message between peers. Fields not used by a type are left undefined. The core validates
 * every field it reads (see codec.ts / step): a malformed or stale message is dropped and
 * counted, never thrown on.
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** append: index of the entry before `entries`; votes: candidate's last log index. */
  index?: number;
  /** append: term at `index`; votes: candidate's last log term. */
  logTerm?: number;
  entries?: Entry[];
  /** Leader's commit index (append, heartbeat). */
  commit?: number;
  /** Responses: true when the request was refused. */
  reject?: boolean;
  /** appendResp: the follower's last index (accept) or the conflict hint (reject). */
  hintIndex?: number;
  /** appendResp reject: term of the conflicting entry at hintIndex (fast backtracking). */
  hintTerm?: number;
  /** heartbeat / heartbeatResp: ReadIndex round context, echoed back. */
  context?: string;
  /** snapshot: one chunk of an InstallSnapshot transfer. */
  snapshot?: SnapshotChunk;
  /** vote / preVote triggered by a leadership transfer (bypasses the leader-lease check). */
  transfer?: boolean;
  /** heartbeat: the leader has nothing in flight and stops ticking; a follower whose log ends at
   *  `commit` stops too and does not answer (raft.ts, quiescence). */
  quiesce?: boolean;
}

export interface SnapshotChunk {
  meta: SnapshotMeta;
  /** Byte offset of `data` within the whole snapshot. */
  offset: number;
  data: Uint8Array;
  done: boolean;
}

/**
 * One batch of work for the host. Handle it in this order, then call advance(ready):
 *   1. persist: if `snapshot`, install it (replace log and state machine); then append
 *      `entries` to the stable log (an entry at an index that already exists replaces it and
 *      everything after it); then save `hardState`. All three durably, before step 2.
 *   2. send `messages`.
 *   3. apply `committedEntries` to the state machine in order (normal entries to the KV
 *      state machine; conf entries only need recording, the core has already acted on them),
 *      persisting the applied index together with their effects.
 *   4. release `readStates` once the applied index reaches each one's index.
 *   5. advance(ready).
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  /** Bytes of a snapshot being received, in order, for a host that stages them
   *  (RawNode.stageSnapshots): persisted with the rest, before `snapshot` when both come. */
  snapshotParts?: SnapshotPart[];
  messages: Message[];
  committedEntries: Entry[];
  readStates: ReadState[];
}

/**
 * What the host hands the core at start: everything it had persisted.
 *
 * Bootstrapping: founders of a new cluster start from a snapshot at index >= 1 (e.g. index 1,
 * term 1, the founding membership, the empty state machine) so that a node added later, which
 * starts with an empty membership and log, is sent that snapshot and learns the founders. An
 * index-0 base is never sent to anyone (a single node that will never grow may still use it).
 * Give such a bootstrap a hard state of term 0 (the core lifts the term to the snapshot's): a
 * restart with a non-zero term refuses votes for one election timeout, since before the crash
 * it may have promised a leader's lease its silence.
 * A node waiting to be added starts with an empty membership and never campaigns.
 */
export interface RestartState {
  hardState: HardState;
  /** Latest snapshot (index 0 and empty data for a fresh node). */
  snapshot: Snapshot;
  /** Stable log entries after snapshot.meta.index, in order. */
  entries: Entry[];
  /** Highest index already applied by the state machine (>= snapshot.meta.index). */
  applied: number;
}

/** Deterministic randomness, injected. Returns an integer in [0, n). */
export interface RandomSource {
  nextInt(n: number): number;
}

export interface RaftConfig {
  id: NodeId;
  /** Base election timeout; the actual one is random in [electionTicks, 2*electionTicks). */
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Upper bound on the bytes of entries carried by one append message. */
  appendBytesMax: number;
  /** Upper bound on append messages in flight per follower (pipelining). */
  inflightAppendsMax: number;
  /** Upper bound on proposed-but-uncommitted entries at the leader; more are refused. */
  uncommittedEntriesMax: number;
  /** Size of one InstallSnapshot chunk. */
  snapshotChunkBytes: number;
  /**
   * Clock drift bound for lease reads, in ticks: a lease is valid for
   * electionTicks - leaseDriftTicks ticks after the quorum contact it is based on.
   */
  leaseDriftTicks: number;
  /** Whether this node takes part in quiescence (leader.ts quiesceProblem): false refuses a
   *  leader's quiesce heartbeat and never quiesces as leader. */
  quiesce: boolean;
  random: RandomSource;
}

export type ProposeResult = { ok: true; index: number; term: number } | { ok: false; reason: ProposeRefusal; leader: NodeId };

export type ProposeRefusal =
  | 'not-leader'
  | 'transferring'
  | 'too-many-uncommitted'
  | 'entry-too-large'
  | 'conf-change-pending'
  | 'conf-change-invalid'
  | 'no-commit-in-term';

export interface Progress {
  match: number;
  next: number;
  inflight: number;
  state: 'probe' | 'replicate' | 'snapshot';
  learner: boolean;
  recentActive: boolean;
}

/** A snapshot of the core's state for /status pages and tests. */
export interface Status {
  id: NodeId;
  role: Role;
  term: number;
  vote: NodeId;
  leader: NodeId;
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  snapshotIndex: number;
  membership: Membership;
  /** Per member, leader only. */
  progress: Record<NodeId, Progress>;
  transferee: NodeId;
  /** Counters of dropped/ignored messages by reason (see step). */
  dropped: Record<string, number>;
  /** Stopped ticking with its group (raft.ts, quiescence) until a message or a wake(). */
  quiescent: boolean;
}
