import { describe, expect, it } from 'vitest';
import { Network } from './harness.ts';

describe('§5.2 leader election', () => {
  it('a campaigning node of a fresh cluster wins and commits its no-op', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    expect(net.leaders()).toEqual(['a']);
    for (const id of ['a', 'b', 'c']) {
      const st = net.raw(id).status();
      expect(st.term).toBe(1);
      expect(st.leader).toBe('a');
      expect(st.commit).toBe(1);
    }
  });

  it('an election happens by itself once the election timeout passes', () => {
    const net = new Network(['a', 'b', 'c']);
    net.tick(25);
    expect(net.leaders()).toHaveLength(1);
  });

  it('a single node bootstraps itself', () => {
    const net = new Network(['solo']);
    net.elect('solo');
    expect(net.leaders()).toEqual(['solo']);
    const r = net.propose('solo', 'x');
    expect(r).toEqual({ ok: true, index: 2, term: 1 });
    expect(net.get('solo').state).toEqual(['x']);
  });
});

describe('PreVote and CheckQuorum', () => {
  const E = 10; // default electionTicks

  it('a partitioned node does not inflate its term, and on rejoining does not depose the leader', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('c');
    net.tick(5 * E);
    expect(net.raw('c').status().term).toBe(1); // pre-votes failed, the term never moved
    net.heal();
    net.tick(3 * E);
    expect(net.leaders()).toEqual(['a']);
    expect(net.raw('a').status().term).toBe(1);
    expect(net.raw('c').status().leader).toBe('a');
  });

  it('without PreVote the same partition inflates the term (what PreVote prevents)', () => {
    const net = new Network(['a', 'b', 'c'], { config: { preVote: false } });
    net.elect('a');
    net.isolate('c');
    net.tick(5 * E);
    expect(net.raw('c').status().term).toBeGreaterThan(1);
  });

  it('a leader that loses its quorum steps down exactly one election timeout after the last contact', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('a');
    for (let i = 1; i < E; i++) {
      net.tick(1, ['a']);
      expect(net.raw('a').status().role, `tick ${i}`).toBe('leader');
    }
    net.tick(1, ['a']);
    expect(net.raw('a').status().role).toBe('follower');
  });

  it('a leader hearing from a majority stays leader indefinitely', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('c');
    net.tick(10 * E, ['a', 'b']);
    expect(net.leaders()).toEqual(['a']);
  });

  it('followers that heard from a leader within the election timeout ignore votes unless transfer is set', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    const b = net.raw('b');
    const request = { type: 'vote' as const, from: 'c', to: 'b', term: 5, index: 99, logTerm: 9 };
    b.step(request);
    b.step({ ...request, type: 'preVote' });
    expect(b.status().term).toBe(1);
    expect(b.status().dropped['vote-in-lease']).toBe(2);
    b.step({ ...request, transfer: true });
    const rd = b.ready();
    expect(rd.messages.filter((m) => m.type === 'voteResp' && m.reject !== true).map((m) => m.to)).toEqual(['c']);
    expect(b.status()).toMatchObject({ term: 5, vote: 'c' });
  });

  it('once the election timeout passes without a leader, the same vote is granted', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('b');
    const b = net.raw('b');
    for (let i = 0; i < E; i++) b.tick();
    b.step({ type: 'vote', from: 'c', to: 'b', term: 5, index: 99, logTerm: 9 });
    expect(b.status()).toMatchObject({ term: 5, vote: 'c' });
  });

  it('a restarted node keeps the promise it may have made before crashing: no vote for an election timeout', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.get('b').restart();
    const b = net.raw('b');
    const request = { type: 'vote' as const, from: 'c', to: 'b', term: 5, index: 99, logTerm: 9 };
    b.step(request);
    expect(b.status().term).toBe(1);
    for (let i = 0; i < E; i++) b.tick();
    b.step(request);
    expect(b.status()).toMatchObject({ term: 5, vote: 'c' });
  });

  it('a stale leader returning from a partition learns the new term from a follower and steps down', () => {
    const net = new Network(['a', 'b', 'c'], { config: { checkQuorum: false } });
    net.elect('a');
    net.isolate('a');
    net.tick(4 * E, ['b', 'c']);
    const newLeader = net.leaders().find((id) => id !== 'a')!;
    expect(newLeader).toBeDefined();
    expect(net.raw('a').status().role).toBe('leader'); // without CheckQuorum it never noticed
    net.heal();
    net.tick(1, ['a']);
    expect(net.leaders()).toEqual([newLeader]);
    expect(net.raw('a').status().dropped['stale-term']).toBeUndefined();
    expect(net.raw(newLeader).status().dropped['stale-term']).toBeGreaterThan(0);
  });

  it('elections converge to one leader per term across many seeds', () => {
    for (let seed = 0; seed < 20; seed++) {
      const ids = ['n1', 'n2', 'n3', 'n4', 'n5'].map((x) => `${x}-${seed}`);
      const net = new Network(ids);
      net.tick(6 * E);
      const leaders = net.leaders();
      expect(leaders, `seed ${seed}`).toHaveLength(1);
      const term = net.raw(leaders[0]!).status().term;
      for (const id of ids) expect(net.raw(id).status().leader).toBe(leaders[0]);
      expect(term).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('who may campaign', () => {
  it('a node with an empty membership (waiting to be added) never campaigns', () => {
    const net = new Network([], { empty: ['new'] });
    net.tick(100);
    expect(net.raw('new').status()).toMatchObject({ role: 'follower', term: 0 });
    net.raw('new').campaign();
    expect(net.raw('new').status().role).toBe('follower');
  });

  it('a learner never campaigns', () => {
    const net = new Network(['a', 'b', 'c'], { learners: ['l'] });
    net.elect('a');
    net.isolate('l');
    net.tick(100, ['l']);
    expect(net.raw('l').status()).toMatchObject({ role: 'follower', term: 1 });
  });
});
