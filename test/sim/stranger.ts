// A stranger on the network: on about a quarter of the seeds (their own stream, `stranger`) a
// node that was never a member (STRANGER_ID), holding the cluster's credentials, sends peers
// Raft messages claiming their term or a higher one: heartbeats and empty appends as a leader
// would, vote requests (some flagged as a transfer, which gets past the core's vote lease),
// pre-votes and TimeoutNow; now and then it speaks under the id of a retired (removed) node.
//
// The check, on each message of STRANGER_ID, handed to the peer on its own (worker/peer/senders.ts
// is the rule it holds the peer to):
//   - a vote, pre-vote or TimeoutNow changes nothing: not the term, the leader or the role;
//   - a heartbeat or append changes nothing on a peer in contact with its leader: it leads, or
//     it stepped a message of the leader it follows, in its term, within an election timeout
//     less a tick of its own ticks (LeaderContactWatch, kept by the host from what it delivers).
// A peer out of contact may follow the stranger (a lagging follower must follow a leader it does
// not know yet); that is counted, and the stranger's messages carry nothing that could commit or
// install anything (commit 0, no entries, no snapshot). A retired id's messages are only counted:
// a peer that has not applied that removal yet still counts it a member.

import type { Message, MessageType, NodeId } from '../../worker/raft/types.ts';
import type { PeerStatus } from '../../worker/peer/peer.ts';
import type { SeededRandom } from '../../worker/raft/random.ts';
import type { SimCluster } from './cluster.ts';
import type { NodeCounters } from './counters.ts';
import { ELECTION_TICKS } from './options.ts';
import { violation } from './violation.ts';

/** Never a node id (nodes are n1, n2, …). */
export const STRANGER_ID = 'x1';

/** Per-mille chance per chaos tick that the stranger sends one message (null: no stranger). */
export function drawStranger(random: SeededRandom): number | null {
  if (random.nextInt(4) !== 0) return null;
  return [50, 150][random.nextInt(2)]!;
}

/** When a peer last stepped a message of the leader it follows, in its own ticks. */
export class LeaderContactWatch {
  private ticks = 0;
  private last: number | null = null;

  /** A new incarnation knows nothing yet (its lease after a restart is not counted: stricter). */
  reset(): void {
    this.ticks = 0;
    this.last = null;
  }

  ticked(): void {
    this.ticks++;
  }

  /** `messages` were handed to the peer, which now reports `status()`. */
  delivered(messages: readonly Message[], status: () => Pick<PeerStatus, 'leader' | 'term'>): void {
    let s: Pick<PeerStatus, 'leader' | 'term'> | null = null;
    for (const m of messages) {
      if (m.type !== 'append' && m.type !== 'heartbeat' && m.type !== 'snapshot') continue;
      s ??= status();
      if (m.from === s.leader && m.term === s.term) this.last = this.ticks;
    }
  }

  inContact(s: Pick<PeerStatus, 'role' | 'leader'>): boolean {
    if (s.role === 'leader') return true;
    return s.leader !== '' && this.last !== null && this.ticks - this.last < ELECTION_TICKS - 1;
  }
}

/** What a message did to the peer it was handed to (host.ts fromStranger). */
export interface StrangerOutcome {
  before: PeerStatus;
  after: PeerStatus;
  inContact: boolean;
  stepped: number;
}

const KINDS: MessageType[] = ['heartbeat', 'append', 'vote', 'preVote', 'timeoutNow'];

export class Stranger {
  private readonly random: SeededRandom;
  private readonly perMille: number;
  private readonly cluster: SimCluster;
  private readonly counters: NodeCounters;
  private readonly trace: (line: string) => void;

  constructor(random: SeededRandom, perMille: number, cluster: SimCluster, counters: NodeCounters, trace: (line: string) => void) {
    this.random = random;
    this.perMille = perMille;
    this.cluster = cluster;
    this.counters = counters;
    this.trace = trace;
  }

  tick(): void {
    if (this.random.nextInt(1000) >= this.perMille) return;
    const live = this.cluster.live().filter((n) => !n.paused);
    if (live.length === 0) return;
    const node = live[this.random.nextInt(live.length)]!;
    const retired = [...this.cluster.retired];
    const from: NodeId = retired.length > 0 && this.random.nextInt(3) === 0 ? retired[this.random.nextInt(retired.length)]! : STRANGER_ID;
    const type = KINDS[this.random.nextInt(KINDS.length)]!;
    const term = node.term + this.random.nextInt(4);
    const m: Message = { type, from, to: node.id, term };
    if (type === 'heartbeat') m.commit = 0;
    if (type === 'append') Object.assign(m, { index: 0, logTerm: 0, entries: [], commit: 0 });
    if (type === 'vote' || type === 'preVote')
      Object.assign(m, { index: 1_000_000, logTerm: term, transfer: this.random.nextInt(2) === 0 });
    const out = node.fromStranger(m);
    if (out === null) return;
    const c = this.counters;
    c.strangerMessages++;
    const dropped = (s: PeerStatus): number => s.nonMemberMessages.droppedRemoved + s.nonMemberMessages.droppedUnknown;
    c.strangerDropped += dropped(out.after) - dropped(out.before);
    if (from !== STRANGER_ID) {
      c.removedSenderDrops += out.after.nonMemberMessages.droppedRemoved - out.before.nonMemberMessages.droppedRemoved;
      return;
    }
    const { before, after } = out;
    const moved = after.term !== before.term || after.leader !== before.leader || after.role !== before.role;
    const leaderTraffic = type === 'heartbeat' || type === 'append';
    this.trace(
      `stranger ${type} t${term} -> ${node.id} (t${before.term} lead=${before.leader || '-'}${out.inContact ? ' in contact' : ''}): ${moved ? `now t${after.term} lead=${after.leader || '-'} ${after.role}` : 'no change'}`,
    );
    if (!leaderTraffic && (moved || out.stepped > 0)) {
      violation(
        'stranger-stepped',
        `${node.id} stepped a ${type} from ${from}, which is in no configuration: term ${before.term} -> ${after.term}, leader ${before.leader || '-'} -> ${after.leader || '-'}, ${before.role} -> ${after.role}`,
      );
    }
    if (!leaderTraffic) return;
    if (out.inContact) {
      c.strangerInContact++;
      if (moved) {
        violation(
          'stranger-disrupted',
          `${node.id}, in contact with its leader ${before.leader}, was moved by a ${type} of term ${term} from ${from}: term ${before.term} -> ${after.term}, leader -> ${after.leader || '-'}, ${before.role} -> ${after.role}`,
        );
      }
    } else if (out.stepped > 0) c.strangerLetIn++;
  }
}
