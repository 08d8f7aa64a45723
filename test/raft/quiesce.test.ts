// Quiescence in the core (raft.ts, leader.ts): when a leader may put its group to sleep, which
// followers go along, what a sleeping node does on a tick, and how every kind of wake behaves.

import { describe, expect, it } from 'vitest';
import { decodeMessages, encodeMessages } from '../../worker/raft/codec.ts';
import { validateMessage } from '../../worker/raft/validate.ts';
import type { Message } from '../../worker/raft/types.ts';
import { Network, bytes } from './harness.ts';

const E = 10;

/** A 3-voter group led by `a`, everything replicated and applied. */
function idleGroup(): Network {
  const net = new Network(['a', 'b', 'c']);
  net.elect('a');
  net.propose('a', 'x');
  net.tick(1); // a heartbeat round carries the commit index to every follower
  return net;
}

function quiesced(): Network {
  const net = idleGroup();
  expect(net.raw('a').quiesceProblem()).toBeNull();
  net.delivered = [];
  net.raw('a').quiesce();
  net.stabilize();
  return net;
}

const ALL = ['a', 'b', 'c'];

describe('quiescence: the leader decides', () => {
  it('an idle group quiesces with one heartbeat per follower, unanswered, and then ticks send nothing', () => {
    const net = quiesced();
    expect(net.delivered.map((m) => [m.type, m.to, m.quiesce, m.commit])).toEqual([
      ['heartbeat', 'b', true, 2],
      ['heartbeat', 'c', true, 2],
    ]);
    for (const id of ALL) expect(net.raw(id).isQuiescent()).toBe(true);
    net.delivered = [];
    net.tick(20 * E);
    expect(net.delivered).toEqual([]);
    expect(net.leaders()).toEqual(['a']);
    for (const id of ALL) expect(net.raw(id).status().term).toBe(net.raw('a').status().term);
  });

  it('a follower that does not hold the last entry keeps the group awake', () => {
    const net = idleGroup();
    net.cut('a', 'c');
    net.raw('a').propose([bytes('y')]);
    net.stabilize();
    expect(net.raw('a').quiesceProblem()).toBe('follower-behind');
  });

  it('a follower silent for an election timeout is not waited for; back, its first message wakes the group, which catches it up', () => {
    const net = idleGroup();
    net.isolate('c');
    net.propose('a', 'y'); // c misses it
    net.tick(E - 1, ['a', 'b']);
    expect(net.raw('a').quiesceProblem()).toBe('follower-behind'); // heard from within a timeout
    net.tick(2, ['a', 'b']);
    expect(net.raw('a').quiesceProblem()).toBeNull();
    net.raw('a').quiesce();
    net.stabilize();
    expect([net.raw('a').isQuiescent(), net.raw('b').isQuiescent()]).toEqual([true, true]);
    const term = net.raw('a').status().term;
    // c comes back: it hears no leader, times out and asks for pre-votes, which wake b and a.
    net.heal();
    for (let i = 0; i < 6 * E && net.raw('c').status().commit < net.raw('a').status().lastIndex; i++) {
      net.tick(1, ['c']);
      net.stabilize();
      if (!net.raw('a').isQuiescent()) net.tick(1, ['a', 'b']);
      net.stabilize();
    }
    expect(net.raw('c').status().commit).toBe(net.raw('a').status().lastIndex);
    expect(net.leaders()).toEqual(['a']); // woken, not deposed
    expect(net.raw('a').status().term).toBe(term);
  });

  it('a follower that knows no leader tells the voters it is awake once per spell, not on every local wake', () => {
    const net = new Network(['a', 'b', 'c']);
    net.delivered = [];
    for (let i = 0; i < 3; i++) net.raw('c').wake(); // three client requests
    net.stabilize();
    expect(net.delivered.filter((m) => m.type === 'wake' && m.from === 'c').map((m) => m.to)).toEqual(['a', 'b']);
  });

  it('a learner counts like a voter', () => {
    const net = new Network(['a', 'b'], { learners: ['l'] });
    net.elect('a');
    net.cut('a', 'l');
    net.propose('a', 'x');
    net.tick(1);
    expect(net.raw('a').quiesceProblem()).toBe('follower-behind');
    net.heal();
    net.tick(2);
    expect(net.raw('a').quiesceProblem()).toBeNull();
  });

  it('an uncommitted entry, an unapplied one and an unpersisted one each keep it awake', () => {
    const net = idleGroup();
    const a = net.get('a');
    a.node.propose([bytes('y')]); // appended, not yet persisted or replicated
    expect(a.node.quiesceProblem()).toBe('uncommitted');
    net.stabilize();
    expect(a.node.quiesceProblem()).toBeNull();

    // Committed and persisted, not applied: the Ready that carries it is not handled yet.
    a.node.propose([bytes('w')]);
    net.collect(); // a persists w
    net.deliverOnce(); // followers append
    net.collect(); // their acks
    net.deliverOnce(); // a commits w: its apply comes in the next Ready
    expect(a.node.status().commit).toBe(a.node.status().lastIndex);
    expect(a.node.quiesceProblem()).toBe('unapplied');
    net.stabilize();
    expect(a.node.quiesceProblem()).toBeNull();
  });

  it('a pending read, a transfer and a membership change each keep it awake', () => {
    const net = idleGroup();
    const a = net.raw('a');
    net.isolate('a');
    expect(a.readIndex('r')).toBe(true);
    net.collect();
    expect(a.quiesceProblem()).toBe('reads');
    net.heal();
    net.tick(1);
    expect(net.get('a').readStates.map((r) => r.ctx)).toEqual(['r']);
    expect(a.quiesceProblem()).toBeNull();

    net.cut('a', 'b');
    net.propose('a', 'y');
    expect(a.transferLeadership('b')).toBe(true);
    expect(a.quiesceProblem()).toBe('transfer');
    net.heal();
    net.tick(1);
    expect(net.leaders()).toEqual(['b']);

    const b = net.raw('b');
    net.tick(1);
    net.cut('b', 'c');
    expect(b.proposeConfChange({ type: 'addLearner', node: 'd', address: 'addr-d' }).ok).toBe(true);
    net.stabilize();
    expect(b.quiesceProblem()).toBe('follower-behind'); // c lacks the change, d everything
  });

  it('quiesce: false refuses it as a leader and as a follower', () => {
    const off = new Network(['a', 'b', 'c'], { config: { quiesce: false } });
    off.elect('a');
    expect(off.raw('a').quiesceProblem()).toBe('disabled');

    const net = idleGroup();
    (net.get('c').config as { quiesce: boolean }).quiesce = false; // the core holds this object
    net.delivered = [];
    net.raw('a').quiesce();
    net.stabilize();
    expect(net.raw('c').isQuiescent()).toBe(false);
    // c answered, and the answer woke the leader, who heartbeats everyone again.
    expect(net.delivered.some((m) => m.type === 'heartbeatResp' && m.from === 'c')).toBe(true);
    expect(net.raw('a').isQuiescent()).toBe(false);
  });

  it('late answers to the last heartbeats do not wake a quiescent leader; a refusal does', () => {
    const net = quiesced();
    const a = net.raw('a');
    const term = a.status().term;
    const last = a.status().lastIndex;
    a.step({ type: 'heartbeatResp', from: 'b', to: 'a', term, context: '1' });
    a.step({ type: 'appendResp', from: 'c', to: 'a', term, index: last - 1, hintIndex: last }); // a duplicate ack
    expect(a.isQuiescent()).toBe(true);
    expect(a.status().dropped['quiescent-stale']).toBe(2);
    a.step({ type: 'heartbeatResp', from: 'b', to: 'a', term, reject: true }); // b did not quiesce
    expect(a.isQuiescent()).toBe(false);
    net.stabilize();
    for (const id of ALL) expect(net.raw(id).isQuiescent()).toBe(false);
  });

  it('a follower whose log does not end at the quiesce commit answers and stays awake', () => {
    const net = idleGroup();
    const b = net.raw('b');
    const st = b.status();
    b.step({ type: 'heartbeat', from: 'a', to: 'b', term: st.term, commit: st.lastIndex + 1, quiesce: true });
    expect(b.isQuiescent()).toBe(false);
    const out = net.get('b').handleReady();
    expect(out.map((m) => [m.type, m.reject])).toEqual([['heartbeatResp', true]]); // the refusal wakes the leader
  });
});

describe('quiescence: waking', () => {
  it('a proposal wakes the leader, whose heartbeats and appends wake the followers', () => {
    const net = quiesced();
    net.delivered = [];
    const r = net.propose('a', 'y');
    expect(r.ok).toBe(true);
    for (const id of ALL) expect(net.raw(id).isQuiescent()).toBe(false);
    expect(net.delivered.filter((m) => m.type === 'heartbeat' && m.from === 'a').map((m) => m.to)).toEqual(['b', 'c']);
    for (const id of ALL) expect(net.get(id).state).toEqual(['x', 'y']);
  });

  it('a woken leader serves no lease read until a heartbeat round after the wake is acknowledged', () => {
    const net = idleGroup();
    net.tick(1);
    const a = net.raw('a');
    expect(a.leaseRead()).not.toBeNull();
    a.quiesce();
    net.stabilize();
    // A late acknowledgement of a round from before the sleep must not count either.
    const late: Message = { type: 'heartbeatResp', from: 'b', to: 'a', term: a.status().term, context: '1' };
    a.wake();
    expect(a.leaseRead()).toBeNull();
    a.step(late);
    expect(a.leaseRead()).toBeNull();
    net.stabilize(); // the wake round goes out and comes back
    expect(a.leaseRead()).not.toBeNull();
  });

  it('a follower woken by a client tells every voter; the leader wakes and heartbeats', () => {
    const net = quiesced();
    net.delivered = [];
    net.raw('b').wake();
    net.stabilize();
    // c, woken by b and not by its leader, wakes the leader too (b's wake may not have reached it).
    expect(net.delivered.filter((m) => m.type === 'wake').map((m) => `${m.from}>${m.to}`)).toEqual(['b>a', 'b>c', 'c>a']);
    expect(net.delivered.filter((m) => m.type === 'heartbeat' && m.quiesce !== true).map((m) => m.to)).toEqual(['b', 'c']);
    for (const id of ALL) expect(net.raw(id).isQuiescent()).toBe(false);
    net.tick(3 * E);
    expect(net.leaders()).toEqual(['a']);
  });

  it('a lost wake is repeated to the leader every heartbeat interval until it answers', () => {
    const net = quiesced();
    net.dropIf((m) => m.type === 'wake' && m.to === 'a');
    net.raw('b').wake();
    net.stabilize();
    expect(net.raw('a').isQuiescent()).toBe(true);
    net.tick(3, ['b']);
    net.heal();
    net.delivered = [];
    net.tick(1, ['b']);
    expect(net.delivered.filter((m) => m.type === 'wake').map((m) => m.to)).toEqual(['a']);
    expect(net.raw('a').isQuiescent()).toBe(false);
    net.delivered = [];
    net.tick(1, ['a', 'b']); // heard from: no more wakes
    expect(net.delivered.filter((m) => m.type === 'wake')).toEqual([]);
  });

  it('a leader that died while the group slept is replaced within one randomised election timeout of the wake', () => {
    const net = quiesced();
    net.isolate('a');
    net.raw('b').wake();
    net.stabilize();
    let ticks = 0;
    while (net.leaders().filter((id) => id !== 'a').length === 0) {
      net.tick(1, ['b', 'c']);
      ticks++;
      expect(ticks).toBeLessThanOrEqual(2 * E + 1);
    }
    expect(ticks).toBeGreaterThanOrEqual(E);
  });

  it('one woken follower cut off from a live leader cannot depose it: whoever it wakes wakes the leader', () => {
    const net = quiesced();
    const term = net.raw('a').status().term;
    net.cut('a', 'b');
    net.delivered = [];
    net.raw('b').wake(); // its wake reaches c only, and c, woken by a follower, wakes the leader
    net.stabilize();
    expect(net.delivered.filter((m) => m.type === 'wake').map((m) => `${m.from}>${m.to}`)).toEqual(['b>c', 'c>a']);
    expect(net.raw('a').isQuiescent()).toBe(false);
    net.tick(5 * E);
    expect(net.leaders()).toEqual(['a']);
    expect(net.raw('c').status().term).toBe(term);
    expect(net.raw('c').status().leader).toBe('a');
  });

  it('a woken follower refuses pre-votes for one election timeout after the wake, then grants them', () => {
    const net = quiesced();
    const c = net.raw('c');
    const st = c.status();
    const preVote: Message = { type: 'preVote', from: 'b', to: 'c', term: st.term + 1, index: st.lastIndex, logTerm: st.term };
    c.step(preVote); // the pre-vote itself wakes c, which wakes its leader and drops the pre-vote
    expect(c.isQuiescent()).toBe(false);
    expect(
      net
        .get('c')
        .handleReady()
        .map((m) => [m.type, m.to]),
    ).toEqual([['wake', 'a']]);
    for (let i = 0; i < E; i++) c.tick();
    net.get('c').handleReady();
    c.step(preVote);
    const out = net.get('c').handleReady();
    expect(out.map((m) => [m.type, m.reject === true])).toEqual([['preVoteResp', false]]);
  });

  it('a woken follower does not campaign at once: its election timer restarts at the wake', () => {
    const net = quiesced();
    net.isolate('b');
    net.raw('b').wake();
    net.stabilize();
    net.tick(E - 1, ['b']);
    expect(net.raw('b').status().role).toBe('follower');
  });
});

describe('quiescence: the wire', () => {
  it('the quiesce flag and the wake type survive the codec; bad values are refused', () => {
    const msgs: Message[] = [
      { type: 'heartbeat', from: 'a', to: 'b', term: 3, commit: 7, quiesce: true },
      { type: 'wake', from: 'b', to: 'a', term: 3 },
    ];
    expect(decodeMessages(encodeMessages(msgs))).toEqual(msgs);
    expect(validateMessage({ type: 'heartbeat', from: 'a', to: 'b', term: 3, commit: 7, quiesce: 'yes' })).toMatch(/quiesce/);
    expect(
      validateMessage({ type: 'append', from: 'a', to: 'b', term: 3, index: 0, logTerm: 0, entries: [], commit: 0, quiesce: true }),
    ).toMatch(/quiesce/);
  });
});
