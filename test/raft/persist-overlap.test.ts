// What lets a host overlap the leader's log write with replication: which messages may leave
// before a Ready is durable (RawNode.splitMessages), and the durable index the core tracks
// (RaftLog.persisted, RawNode.persistedIndex) so a host knows which committed entries it may
// apply before the current write completes.

import { describe, expect, it } from 'vitest';
import { RaftLog } from '../../worker/raft/log.ts';
import type { Entry, Message } from '../../worker/raft/types.ts';
import { bytes, Network } from './harness.ts';

const entry = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: bytes(`${term}@${index}`) });

describe('persisted index', () => {
  it('rises when a write of entries still in the log is confirmed, falls on truncation, ignores a write the log moved past', () => {
    const log = new RaftLog(0, 0, [], 0, 0);
    expect(log.persisted).toBe(0);
    log.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
    expect(log.persisted).toBe(0);
    log.stableTo(3, 1);
    expect(log.persisted).toBe(3);
    log.truncateFrom(2);
    expect(log.persisted).toBe(1);
    log.append([entry(2, 2), entry(3, 2)]);
    log.stableTo(3, 1); // the write of the replaced entries finishing late proves nothing
    expect(log.persisted).toBe(1);
    log.stableTo(3, 2);
    expect(log.persisted).toBe(3);
  });

  it('restart: everything loaded is durable; a snapshot install counts only once written', () => {
    const log = new RaftLog(0, 0, [entry(1, 1), entry(2, 1)], 1, 0);
    expect(log.persisted).toBe(2);
    log.restore({ meta: { index: 10, term: 3, membership: { voters: ['a'], learners: [], addresses: {} } }, data: bytes('[]') });
    expect(log.persisted).toBeLessThanOrEqual(1);
    log.stableTo(10, 3);
    expect(log.persisted).toBe(10);
  });

  it('a leader with followers: its new entries are durable from the advance of the Ready that carried them', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raw('a');
    const before = a.persistedIndex();
    net.propose('a', 'x');
    // propose stabilizes the network, so the Ready with x was handed out and advanced.
    expect(a.persistedIndex()).toBe(before + 1);
    expect(net.get('a').state).toContain('x');
  });
});

describe('messages that may leave before the write', () => {
  it('a leader: appends and heartbeats go early, and nothing it commits meanwhile is visible before advance', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raw('a');
    expect(a.propose([bytes('x')]).ok).toBe(true);
    const rd = a.ready();
    const index = rd.entries[0]!.index;
    const { beforePersist, afterPersist } = a.splitMessages(rd);
    expect(beforePersist.map((m) => `${m.type}>${m.to}`).sort()).toEqual(['append>b', 'append>c']);
    expect(afterPersist).toEqual([]);

    // Followers persist and acknowledge while a's write is still out.
    const acks: Message[] = [];
    for (const m of beforePersist) {
      const f = net.get(m.to);
      f.node.step(m);
      while (f.node.hasReady()) acks.push(...f.handleReady());
    }
    for (const m of acks) a.step(m);
    expect(a.committedIndex()).toBeGreaterThanOrEqual(index);
    // …but the commit leaves the core only through a later Ready, after this one is advanced.
    expect(a.hasReady()).toBe(false);
    expect(a.persistedIndex()).toBeLessThan(index);
    a.advance(rd);
    expect(a.persistedIndex()).toBe(index);
    const next = a.ready();
    expect(next.committedEntries.map((e) => e.index)).toContain(index);
    expect(next.committedEntries.every((e) => e.index <= a.persistedIndex())).toBe(true);
    a.advance(next);
  });

  it('a sole voter commits what it is writing: those committed entries are not durable yet', () => {
    const net = new Network(['a']);
    net.elect('a');
    const a = net.raw('a');
    a.propose([bytes('x')]);
    const rd = a.ready();
    const last = rd.committedEntries[rd.committedEntries.length - 1]!;
    expect(rd.entries.map((e) => e.index)).toContain(last.index);
    expect(last.index).toBeGreaterThan(a.persistedIndex());
    a.advance(rd);
  });

  it('votes, responses and anything in a Ready that changes term or vote wait for the write', () => {
    const net = new Network(['a', 'b', 'c']);
    const b = net.raw('b');
    b.campaign();
    const campaign = b.ready(); // a pre-vote round: term and vote unchanged
    const split = b.splitMessages(campaign);
    expect(split.beforePersist).toEqual([]);
    expect(split.afterPersist.map((m) => m.type)).toEqual(['preVote', 'preVote']);
    b.advance(campaign);

    // A real election changes term and vote: its Ready sends nothing early.
    net.elect('a');
    const a = net.raw('a');
    a.step({ type: 'appendResp', from: 'b', to: 'a', term: 999, index: 0, hintIndex: 0 });
    expect(a.hasReady()).toBe(true);
    const stepDown = a.ready();
    expect(stepDown.hardState?.term).toBe(999);
    expect(a.splitMessages(stepDown).beforePersist).toEqual([]);
    a.advance(stepDown);

    // A follower's acknowledgements always wait.
    const net2 = new Network(['a', 'b', 'c']);
    net2.elect('a');
    const leader = net2.raw('a');
    leader.propose([bytes('y')]);
    const rd = leader.ready();
    const toB = leader.splitMessages(rd).beforePersist.find((m) => m.to === 'b')!;
    const follower = net2.raw('b');
    follower.step(toB);
    const frd = follower.ready();
    const s = follower.splitMessages(frd);
    expect(s.beforePersist).toEqual([]);
    expect(s.afterPersist.map((m) => m.type)).toEqual(['appendResp']);
    follower.advance(frd);
    leader.advance(rd);
  });
});
