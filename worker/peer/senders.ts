// Who may talk to this peer: the membership check every inbound Raft message passes before the
// core steps it, on both runtimes (etcd drops messages from removed members the same way).
//
//   member   the sender is a voter or learner of the configuration this peer applied, of the
//            latest one in its log, or of one appended in between: stepped.
//   removed  the sender left a configuration this peer applied (a removal that committed) and
//            none of those configurations names it: dropped and counted. A removed id is never
//            added again (Peer refuses it, as etcd does), so no follower needs to hear it lead.
//   unknown  no configuration this peer holds names the sender: dropped and counted, EXCEPT a
//            leader's replication traffic (append, heartbeat, snapshot chunk) while this peer
//            has not heard from a leader within an election timeout (the core's CheckQuorum
//            lease, RawNode.inLease), and that of the leader the core already follows (one let
//            in that way). That is a follower lagging behind a configuration change whose new
//            member now leads, or a node being added (its configuration is empty): dropping
//            such a leader would leave it behind for good. A peer in contact with its leader —
//            a healthy cluster — is not moved by a stranger claiming a higher term, exactly as
//            the lease keeps it from voting for a disruptive candidate. Votes, responses and
//            TimeoutNow from an unknown id are always dropped: that is message loss, which
//            Raft tolerates (the core drops responses from non-members anyway).
//
// Why not drop every sender outside the latest configuration: a lagging follower would then
// drop a newly added leader forever; and a sender whose removal is only appended here may still
// win an election that overwrites it. So only a committed removal makes a sender `removed`.
// `removed` notices (removal.ts) are not Raft messages and are not checked here: a removed node
// must be able to hear about its removal from members it never knew.

import { isMember } from '../raft/membership.ts';
import type { Membership, Message, NodeId } from '../raft/types.ts';

/** The storage metadata key for the former members (worker/peer/ports.ts SaveBatch.meta). */
export const FORMER_MEMBERS_META_KEY = 'formerMembers';
/** Former members remembered; past it the oldest are forgotten (then they count as unknown). */
export const FORMER_MEMBERS_MAX = 1000;

/** What the filter reads from the core (worker/peer/core.ts). */
export interface SenderView {
  namesMember(id: NodeId, index: number): boolean;
  leader(): NodeId;
  inLease(): boolean;
}

/** The counters /status shows (PeerStatus.nonMemberMessages). */
export interface NonMemberCounts {
  /** Dropped: from a removed member. */
  droppedRemoved: number;
  /** Dropped: from an id no configuration here names. */
  droppedUnknown: number;
  /** Stepped: a leader's replication traffic from such an id, while no known leader was heard. */
  admittedUnknownLeader: number;
}

export type Verdict = 'member' | 'removed' | 'unknown' | 'unknown-leader';

function replication(m: Message): boolean {
  return m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
}

export class SenderFilter {
  /** Ids that left a configuration this peer applied, oldest first. */
  private readonly former: Set<NodeId>;
  readonly counts: NonMemberCounts = { droppedRemoved: 0, droppedUnknown: 0, admittedUnknownLeader: 0 };

  constructor(former: readonly NodeId[]) {
    this.former = new Set(former);
  }

  /** What to do with `m`, given the configuration applied at `applied` (counted). */
  judge(m: Message, core: SenderView, appliedMembership: Membership, applied: number): Verdict {
    const from = m.from;
    if (isMember(appliedMembership, from) || core.namesMember(from, applied)) return 'member';
    if (this.former.has(from)) {
      this.counts.droppedRemoved++;
      return 'removed';
    }
    if (replication(m) && (from === core.leader() || !core.inLease())) {
      this.counts.admittedUnknownLeader++;
      return 'unknown-leader';
    }
    this.counts.droppedUnknown++;
    return 'unknown';
  }

  /** Whether `id` left a configuration this peer applied (and was not added back since). */
  wasRemoved(id: NodeId): boolean {
    return this.former.has(id);
  }

  /** The applied configuration went from `before` to `after`: whoever left it is a former
   *  member, whoever is in it is not. True when the set changed (it is then saved). */
  noteApplied(before: Membership, after: Membership): boolean {
    let changed = false;
    for (const id of [...before.voters, ...before.learners]) {
      if (isMember(after, id) || this.former.has(id)) continue;
      this.former.add(id);
      changed = true;
    }
    for (const id of [...after.voters, ...after.learners]) changed = this.former.delete(id) || changed;
    for (const id of this.former) {
      if (this.former.size <= FORMER_MEMBERS_MAX) break;
      this.former.delete(id);
    }
    return changed;
  }

  encode(): string {
    return JSON.stringify([...this.former]);
  }
}

/** The recorded former members ([] when none or unreadable: they then count as unknown). */
export function decodeFormerMembers(text: string | undefined): NodeId[] {
  if (text === undefined) return [];
  try {
    const ids: unknown = JSON.parse(text);
    if (Array.isArray(ids) && ids.every((id) => typeof id === 'string')) return ids.slice(-FORMER_MEMBERS_MAX) as NodeId[];
  } catch {
    // fall through
  }
  return [];
}

/** At most one log line about dropped senders per this long (the counters in /status are exact). */
export const DROP_LOG_EVERY_MS = 10_000;

/** Rate-limits the drop log: the first drop is logged, then at most one per `everyTicks`,
 *  saying how many drops it stands for. */
export class DropLogLimit {
  private readonly everyTicks: number;
  private lastTick = -Infinity;
  private unlogged = 0;

  constructor(tickMs: number) {
    this.everyTicks = Math.max(1, Math.ceil(DROP_LOG_EVERY_MS / tickMs));
  }

  /** A drop at `tick`: the drops this log line stands for, or null when it is not logged. */
  note(tick: number): number | null {
    this.unlogged++;
    if (tick - this.lastTick < this.everyTicks) return null;
    this.lastTick = tick;
    const drops = this.unlogged;
    this.unlogged = 0;
    return drops;
  }
}
