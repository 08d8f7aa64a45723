// Who may talk to a peer (worker/peer/senders.ts): the rule on its own, then in a cluster of
// production Peers — a stranger claiming a higher term does not move a follower in contact with
// its leader, a removed member is dropped (across restarts too, and not added again), and a
// follower that lags behind a configuration change still follows the new member that leads.

import { afterEach, describe, expect, it } from 'vitest';
import { DropLogLimit, FORMER_MEMBERS_MAX, SenderFilter, type SenderView } from '../../worker/peer/senders.ts';
import type { Membership, Message, MessageType } from '../../worker/raft/types.ts';
import { TestCluster, addressOf } from './cluster.ts';

const members = (voters: string[], learners: string[] = []): Membership => ({
  voters,
  learners,
  addresses: Object.fromEntries([...voters, ...learners].map((id) => [id, addressOf(id)])),
});

const msg = (type: MessageType, from: string, term = 9): Message => ({ type, from, to: 'p1', term });

/** A core whose latest configuration is `latest`, following `leader`, in its lease or not. */
const view = (latest: Membership, leader: string, inLease: boolean): SenderView => ({
  namesMember: (id) => latest.voters.includes(id) || latest.learners.includes(id),
  leader: () => leader,
  inLease: () => inLease,
});

describe('sender filter: the rule', () => {
  const applied = members(['p1', 'p2', 'p3']);

  it('steps members of the applied configuration and of any configuration appended after it', () => {
    const f = new SenderFilter([]);
    expect(f.judge(msg('vote', 'p2'), view(applied, 'p2', true), applied, 10)).toBe('member');
    // p4 is added in the log, not yet applied; p3's removal is appended, not applied.
    const latest = members(['p1', 'p2', 'p4']);
    expect(f.judge(msg('heartbeat', 'p4'), view(latest, 'p2', true), applied, 10)).toBe('member');
    expect(f.judge(msg('vote', 'p3'), view(latest, 'p2', true), applied, 10)).toBe('member');
    expect(f.counts).toEqual({ droppedRemoved: 0, droppedUnknown: 0, admittedUnknownLeader: 0 });
  });

  it('drops every message from a removed member, in or out of contact with a leader', () => {
    const f = new SenderFilter(['p9']);
    for (const type of ['heartbeat', 'append', 'snapshot', 'vote', 'preVote', 'timeoutNow', 'appendResp'] as const) {
      for (const inLease of [true, false]) expect(f.judge(msg(type, 'p9'), view(applied, '', inLease), applied, 10)).toBe('removed');
    }
    expect(f.counts.droppedRemoved).toBe(14);
  });

  it('drops an unknown sender, but lets a leader it does not know in when no leader was heard within an election timeout', () => {
    const f = new SenderFilter([]);
    for (const type of ['heartbeat', 'append', 'snapshot'] as const) {
      expect(f.judge(msg(type, 'x9'), view(applied, 'p2', true), applied, 10), `${type} in lease`).toBe('unknown');
      expect(f.judge(msg(type, 'x9'), view(applied, '', false), applied, 10), `${type} out of lease`).toBe('unknown-leader');
      // Once let in, the leader the core follows keeps being heard until its configuration arrives.
      expect(f.judge(msg(type, 'x9'), view(applied, 'x9', true), applied, 10), `${type} from the leader`).toBe('unknown-leader');
    }
    for (const type of ['vote', 'preVote', 'timeoutNow', 'appendResp', 'heartbeatResp', 'voteResp'] as const) {
      for (const inLease of [true, false]) {
        expect(f.judge(msg(type, 'x9'), view(applied, 'x9', inLease), applied, 10), `${type} ${inLease}`).toBe('unknown');
      }
    }
    expect(f.counts).toEqual({ droppedRemoved: 0, droppedUnknown: 15, admittedUnknownLeader: 6 });
  });

  it('remembers who left an applied configuration, forgets one added back, and keeps a bounded list', () => {
    const f = new SenderFilter([]);
    expect(f.noteApplied(applied, members(['p1', 'p2']))).toBe(true);
    expect(f.wasRemoved('p3')).toBe(true);
    expect(f.noteApplied(members(['p1', 'p2']), members(['p1', 'p2'], ['p4']))).toBe(false);
    expect(f.noteApplied(members(['p1', 'p2']), members(['p1', 'p2', 'p3']))).toBe(true);
    expect(f.wasRemoved('p3')).toBe(false);
    const many = Array.from({ length: FORMER_MEMBERS_MAX + 5 }, (_, i) => `old${i}`);
    const g = new SenderFilter([]);
    g.noteApplied(members(['p1', ...many]), members(['p1']));
    expect(g.wasRemoved('old0')).toBe(false);
    expect(g.wasRemoved(`old${FORMER_MEMBERS_MAX + 4}`)).toBe(true);
    expect(JSON.parse(g.encode())).toHaveLength(FORMER_MEMBERS_MAX);
  });

  it('logs the first drop, then at most one line per interval standing for the drops since', () => {
    const limit = new DropLogLimit(100); // 10 s = 100 ticks
    expect(limit.note(5)).toBe(1);
    expect(limit.note(6)).toBeNull();
    expect(limit.note(104)).toBeNull();
    expect(limit.note(105)).toBe(3);
  });
});

let cluster: TestCluster | null = null;
async function start(): Promise<TestCluster> {
  cluster = await TestCluster.start();
  return cluster;
}
afterEach(async () => {
  await cluster?.closeAll();
  cluster = null;
});

describe('sender filter: in a cluster', () => {
  it('a stranger claiming a higher term moves no follower in contact with its leader', async () => {
    const c = await start();
    const leader = await c.waitLeader();
    await c.tick(3);
    const follower = c.peer(c.followers()[0]!);
    const { term } = follower.status();
    const forged: Message[] = [
      { type: 'heartbeat', from: 'x9', to: follower.id, term: term + 10, commit: 0 },
      { type: 'append', from: 'x9', to: follower.id, term: term + 10, index: 0, logTerm: 0, entries: [], commit: 0 },
      { type: 'heartbeat', from: 'x9', to: follower.id, term, commit: 0 }, // a second leader in its own term
      { type: 'vote', from: 'x9', to: follower.id, term: term + 10, index: 1e6, logTerm: term + 10, transfer: true },
      { type: 'timeoutNow', from: 'x9', to: follower.id, term },
    ];
    for (const m of forged) {
      const stepped = follower.receive([m]);
      expect(follower.status(), m.type).toMatchObject({ term, leader: leader.id, role: 'follower' });
      expect(stepped, m.type).toBe(0);
    }
    expect(follower.status().nonMemberMessages).toEqual({ droppedRemoved: 0, droppedUnknown: 5, admittedUnknownLeader: 0 });
    await c.tick(30);
    expect(leader.isLeader()).toBe(true);
    expect(leader.status().term).toBe(term);
  });

  it('a removed member is dropped, on restart too, and is not added again', async () => {
    const c = await start();
    const leader = await c.waitLeader();
    const [gone, other] = c.followers() as [string, string];
    c.isolated.add(gone); // it does not hear of its removal, and keeps campaigning
    await c.drive(leader.removeMember(gone));
    await c.until(
      () =>
        !c
          .peer(other)
          .status()
          .members.some((m) => m.id === gone),
      50,
      `${other} applying the removal`,
    );
    c.isolated.delete(gone);
    await c.until(() => c.peer(gone).removed() !== null, 200, `${gone} told it was removed`);
    const dropped = c.peer(other).status().nonMemberMessages.droppedRemoved + leader.status().nonMemberMessages.droppedRemoved;
    expect(dropped, 'its (pre)votes').toBeGreaterThan(0);
    expect(leader.isLeader()).toBe(true);

    await c.stop(other);
    const restarted = await c.open(other);
    await c.tick(3);
    const { term } = restarted.status();
    restarted.receive([{ type: 'heartbeat', from: gone, to: other, term: term + 10, commit: 0 }]);
    expect(restarted.status()).toMatchObject({ term, nonMemberMessages: { droppedRemoved: 1, droppedUnknown: 0 } });
    await expect(leader.addMember(gone, addressOf(gone), true)).rejects.toMatchObject({
      code: 'member-conflict',
      message: expect.stringContaining('not added again'),
    });
  });

  it('a follower that lags behind a configuration change follows the new member that leads', async () => {
    const c = await start();
    const leader = await c.waitLeader();
    const [lagging] = c.followers() as [string, string];
    c.isolated.add(lagging);
    const p4 = await c.open('p4');
    await c.drive(leader.addMember('p4', addressOf('p4'), false));
    await c.until(() => p4.status().applied >= leader.status().commit, 200, 'p4 catching up');
    await c.drive(leader.transferLeader('p4'));
    await c.drive(p4.write({ op: 'put', pairs: [['k', 'v']] }));
    expect(c.peer(lagging).membership().voters).not.toContain('p4');
    c.isolated.delete(lagging);
    await c.until(() => c.peer(lagging).status().applied >= p4.status().commit, 200, `${lagging} catching up with p4`);
    expect(c.peer(lagging).status()).toMatchObject({ leader: 'p4', nonMemberMessages: { admittedUnknownLeader: expect.any(Number) } });
    expect(c.peer(lagging).status().nonMemberMessages.admittedUnknownLeader).toBeGreaterThan(0);
    expect(c.peer(lagging).membership().voters).toContain('p4');
  });
});
