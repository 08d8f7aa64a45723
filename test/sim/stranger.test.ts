// The stranger's check on its own (stranger.ts): it fails a run when a peer in contact with its
// leader is moved, or when a vote or TimeoutNow of the stranger is stepped at all, and only
// counts a peer out of contact that follows it. The campaign shows it catching the real bug
// (test/sim/README.md: the sender check switched off).

import { describe, expect, it } from 'vitest';
import type { PeerStatus } from '../../worker/peer/peer.ts';
import type { Message } from '../../worker/raft/types.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import type { SimCluster } from './cluster.ts';
import { emptyNodeCounters } from './counters.ts';
import { ELECTION_TICKS } from './options.ts';
import { LeaderContactWatch, Stranger, STRANGER_ID, type StrangerOutcome } from './stranger.ts';
import { SimViolation } from './violation.ts';

const status = (term: number, leader: string, role: PeerStatus['role'] = 'follower'): PeerStatus =>
  ({ term, leader, role, nonMemberMessages: { droppedRemoved: 0, droppedUnknown: 0, admittedUnknownLeader: 0 } }) as PeerStatus;

/** A cluster of one node whose peer answers every stranger message with `react`. */
function oneNode(react: (m: Message) => Omit<StrangerOutcome, 'before'>): { cluster: SimCluster; sent: Message[] } {
  const sent: Message[] = [];
  const node = {
    id: 'n1',
    paused: false,
    term: 3,
    fromStranger: (m: Message): StrangerOutcome => {
      sent.push(m);
      return { before: status(3, 'n2'), ...react(m) };
    },
  };
  return { cluster: { live: () => [node], retired: new Set<string>() } as unknown as SimCluster, sent };
}

/** Runs the stranger until it sent `n` messages or threw; the violation's invariant, or null. */
function run(cluster: SimCluster, sent: Message[], n = 200): string | null {
  const s = new Stranger(new SeededRandom(7), 1000, cluster, emptyNodeCounters(), () => {});
  try {
    while (sent.length < n) s.tick();
  } catch (err) {
    if (err instanceof SimViolation) return err.invariant;
    throw err;
  }
  return null;
}

describe('the stranger check', () => {
  it('passes a peer that drops everything, and one out of contact that follows a heartbeat', () => {
    const drops = oneNode(() => ({ after: status(3, 'n2'), inContact: true, stepped: 0 }));
    expect(run(drops.cluster, drops.sent)).toBeNull();
    expect(new Set(drops.sent.map((m) => m.type))).toEqual(new Set(['heartbeat', 'append', 'vote', 'preVote', 'timeoutNow']));
    expect(drops.sent.every((m) => m.from === STRANGER_ID && (m.commit ?? 0) === 0 && (m.entries ?? []).length === 0)).toBe(true);
    const follows = oneNode((m) =>
      m.type === 'heartbeat' || m.type === 'append'
        ? { after: status(m.term, STRANGER_ID), inContact: false, stepped: 1 }
        : { after: status(3, 'n2'), inContact: false, stepped: 0 },
    );
    expect(run(follows.cluster, follows.sent)).toBeNull();
  });

  it('fails a peer in contact that a heartbeat moves, and any peer that steps a vote or TimeoutNow', () => {
    const moved = oneNode((m) =>
      m.type === 'heartbeat'
        ? { after: status(m.term + 1, STRANGER_ID), inContact: true, stepped: 1 }
        : { after: status(3, 'n2'), inContact: true, stepped: 0 },
    );
    expect(run(moved.cluster, moved.sent)).toBe('stranger-disrupted');
    const votes = oneNode((m) =>
      m.type === 'vote'
        ? { after: status(m.term, ''), inContact: false, stepped: 1 }
        : { after: status(3, 'n2'), inContact: false, stepped: 0 },
    );
    expect(run(votes.cluster, votes.sent)).toBe('stranger-stepped');
  });

  it('counts contact from the leader the peer follows, in its term, for an election timeout less a tick', () => {
    const w = new LeaderContactWatch();
    const hb = (from: string, term: number): Message => ({ type: 'heartbeat', from, to: 'n1', term, commit: 0 });
    expect(w.inContact(status(3, 'n2'))).toBe(false);
    w.delivered([hb('n3', 3)], () => status(3, 'n2')); // not its leader
    expect(w.inContact(status(3, 'n2'))).toBe(false);
    w.delivered([hb('n2', 3)], () => status(3, 'n2'));
    for (let i = 0; i < ELECTION_TICKS - 2; i++) w.ticked();
    expect(w.inContact(status(3, 'n2'))).toBe(true);
    w.ticked();
    expect(w.inContact(status(3, 'n2'))).toBe(false);
    expect(w.inContact(status(3, 'n1', 'leader'))).toBe(true);
    w.delivered([hb('n2', 3)], () => status(3, 'n2'));
    w.reset();
    expect(w.inContact(status(3, 'n2'))).toBe(false);
  });
});
