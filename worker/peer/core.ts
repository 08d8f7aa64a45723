// The slice of the Raft core (worker/raft/rawnode.ts) the peer drives. Kept as an interface so
// the loop's needs are written down in one place.

import type {
  ConfChange,
  Membership,
  Message,
  NodeId,
  ProposeResult,
  RaftConfig,
  Ready,
  RestartState,
  SnapshotProvider,
  Status,
} from '../raft/types.ts';
import { RawNode } from '../raft/rawnode.ts';

export interface RaftCore {
  tick(): void;
  step(msg: Message): void;
  propose(datas: Uint8Array[]): ProposeResult;
  proposeConfChange(cc: ConfChange): ProposeResult;
  readIndex(ctx: string): boolean;
  leaseRead(): number | null;
  transferLeadership(to: NodeId): boolean;
  campaign(): void;
  compact(index: number, data: Uint8Array): void;
  setSnapshotProvider(provider: SnapshotProvider): void;
  stageSnapshots(): void;
  receivingSnapshot(): boolean;
  hasReady(): boolean;
  ready(): Ready;
  advance(rd: Ready): void;
  persistedIndex(): number;
  splitMessages(rd: Ready): { beforePersist: Message[]; afterPersist: Message[] };
  /** The commit index alone (status() builds a whole report). */
  committedIndex(): number;
  /** The last index of this peer's log. */
  lastIndex(): number;
  /** Leader only: the highest index known replicated on `id` (null elsewhere, or untracked). */
  matchIndex(id: NodeId): number | null;
  status(): Status;
  membership(): Membership;
  /** Whether `id` is in the latest configuration or in one appended above `index`. */
  namesMember(id: NodeId, index: number): boolean;
  /** Who the core follows in its term ('' when nobody). */
  leader(): NodeId;
  /** Heard from a leader of its term within an election timeout (the CheckQuorum lease). */
  inLease(): boolean;
  /** Quiescence (worker/raft/raft.ts): why a leader may not put its group to sleep now (null: it
   *  may), doing so, waking for a non-message cause, and whether this node sleeps. */
  quiesceProblem(): string | null;
  quiesce(): void;
  wake(): void;
  isQuiescent(): boolean;
}

export function createCore(config: RaftConfig, restart: RestartState): RaftCore {
  return new RawNode(config, restart);
}
