// Scenario tests mapped to sections and figures of the Raft paper (Ongaro & Ousterhout, 2014).

import { describe, expect, it } from 'vitest';
import { Network } from './harness.ts';
import type { Message } from '../../worker/raft/types.ts';

const paperRaft = { preVote: false, checkQuorum: false };

function voteRequest(from: string, to: string, term: number, index: number, logTerm: number): Message {
  return { type: 'vote', from, to, term, index, logTerm };
}

describe('§5.2 leader election', () => {
  it('a server votes for at most one candidate per term, first come first served', () => {
    const net = new Network(['a', 'b', 'c'], { config: paperRaft });
    const c = net.raw('c');
    c.step(voteRequest('a', 'c', 1, 0, 0));
    c.step(voteRequest('b', 'c', 1, 0, 0));
    const answers = c.ready().messages;
    expect(answers.map((m) => [m.to, m.type, m.reject === true])).toEqual([
      ['a', 'voteResp', false],
      ['b', 'voteResp', true],
    ]);
    expect(c.status().vote).toBe('a');
  });

  it('the vote is in the same Ready as the answer that depends on it (persist before speak)', () => {
    const net = new Network(['a', 'b', 'c'], { config: paperRaft });
    const c = net.raw('c');
    c.step(voteRequest('a', 'c', 1, 0, 0));
    const rd = c.ready();
    expect(rd.hardState).toEqual({ term: 1, vote: 'a', commit: 0 });
    expect(rd.messages[0]!.type).toBe('voteResp');
  });

  it('a candidate that hears from a leader of its term returns to follower', () => {
    const net = new Network(['a', 'b', 'c'], { config: paperRaft });
    net.isolate('b');
    net.raw('b').campaign(); // b: candidate in term 1, nobody hears it
    net.stabilize();
    expect(net.raw('b').status().role).toBe('candidate');
    net.heal();
    net.cut('a', 'b'); // a cannot reach b yet
    net.raw('c').campaign(); // term 1 as well: c's vote request reaches a only
    net.stabilize();
    // c collected a's vote and is leader of term 1; heal and let the heartbeat reach b.
    expect(net.leaders()).toEqual(['c']);
    net.heal();
    net.tick(1, ['c']);
    expect(net.raw('b').status()).toMatchObject({ role: 'follower', leader: 'c', term: 1 });
  });

  it('a split vote is resolved by a later election with a higher term', () => {
    const net = new Network(['a', 'b', 'c', 'd'], { config: paperRaft });
    net.cut('a', 'c');
    net.cut('a', 'd');
    net.cut('b', 'c');
    net.cut('b', 'd');
    net.raw('a').campaign();
    net.raw('c').campaign();
    net.stabilize(); // a gets b, c gets d: 2 of 4 each, nobody wins
    expect(net.leaders()).toEqual([]);
    net.heal();
    net.tick(40);
    expect(net.leaders()).toHaveLength(1);
    expect(net.raw(net.leaders()[0]!).status().term).toBeGreaterThan(1);
  });
});

describe('§5.3 log replication', () => {
  it('a committed entry reaches every follower and every state machine in the same order', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    for (const cmd of ['x', 'y', 'z']) expect(net.propose('a', cmd).ok).toBe(true);
    net.tick(1);
    for (const id of ['a', 'b', 'c']) {
      expect(net.get(id).state).toEqual(['x', 'y', 'z']);
      expect(net.get(id).logTerms()).toEqual([1, 1, 1, 1]);
    }
  });

  it('a follower that missed entries is caught up (log matching)', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('c');
    net.propose('a', 'x');
    net.propose('a', 'y');
    expect(net.get('c').state).toEqual([]);
    net.heal();
    net.tick(1);
    expect(net.get('c').state).toEqual(['x', 'y']);
    expect(net.get('c').stored.entries).toEqual(net.get('a').stored.entries);
  });
});

describe('figure 7: a new leader brings every kind of follower log in line', () => {
  it('missing, extra and conflicting entries end up identical to the leader', () => {
    const ids = ['leader', 'a', 'b', 'c', 'd', 'e', 'f'];
    const net = new Network(ids, { config: paperRaft });
    net.get('leader').setLog([1, 1, 1, 4, 4, 5, 5, 6, 6, 6], 7);
    net.get('a').setLog([1, 1, 1, 4, 4, 5, 5, 6, 6]);
    net.get('b').setLog([1, 1, 1, 4]);
    net.get('c').setLog([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]);
    net.get('d').setLog([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]);
    net.get('e').setLog([1, 1, 1, 4, 4, 4, 4]);
    net.get('f').setLog([1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]);
    net.elect('leader'); // term 8, with the votes of a, b, e, f (c and d have newer logs)
    expect(net.raw('leader').status()).toMatchObject({ role: 'leader', term: 8 });
    const want = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8];
    for (const id of ids) expect(net.get(id).logTerms(), id).toEqual(want);
    expect(net.raw('d').status().commit).toBe(11);
  });

  it('fast backtracking finds the match point of f in one rejection, not seven', () => {
    const net = new Network(['leader', 'f', 'x'], { config: paperRaft });
    net.get('leader').setLog([1, 1, 1, 4, 4, 5, 5, 6, 6, 6], 7);
    net.get('x').setLog([1, 1, 1, 4, 4, 5, 5, 6, 6, 6], 7);
    net.get('f').setLog([1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]);
    net.elect('leader');
    const rejections = net.delivered.filter((m) => m.from === 'f' && m.type === 'appendResp' && m.reject === true);
    expect(rejections).toHaveLength(1);
    expect(net.get('f').logTerms()).toEqual([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8]);
  });
});

describe('§5.4.1 election restriction', () => {
  it('a candidate whose log is behind a majority cannot win; one that is up to date can', () => {
    const net = new Network(['a', 'b', 'c'], { config: paperRaft });
    net.get('a').setLog([1, 1], 1);
    net.get('b').setLog([1, 1, 1], 1);
    net.get('c').setLog([1, 1, 1], 1);
    net.elect('a');
    expect(net.leaders()).toEqual([]);
    expect(net.raw('a').status().role).not.toBe('leader');
    net.elect('c');
    expect(net.leaders()).toEqual(['c']);
  });

  it('a longer log of an older last term loses to a shorter log of a newer term', () => {
    const net = new Network(['a', 'b', 'c'], { config: paperRaft });
    net.get('a').setLog([1, 1, 1, 1], 2);
    net.get('b').setLog([1, 2], 2);
    net.get('c').setLog([1, 2], 2);
    net.elect('a');
    expect(net.leaders()).toEqual([]);
  });
});

describe('§5.4.2 figure 8: entries from older terms commit only through the current term', () => {
  // (c): S1 leads term 4 and has replicated its term-2 entry at index 2 to S2 and S3 — a
  // majority — while S5 holds a term-3 entry at index 2 it could still impose.
  function figure8c(): Network {
    const net = new Network(['s1', 's2', 's3', 's4', 's5'], { config: { ...paperRaft, appendBytesMax: 1 } });
    net.get('s1').setLog([1, 2], 3, 1);
    net.get('s2').setLog([1], 3, 1);
    net.get('s3').setLog([1], 3, 1);
    net.get('s4').setLog([1], 3, 1);
    net.get('s5').setLog([1, 3], 3, 1);
    net.cut('s1', 's4');
    net.cut('s1', 's5');
    // S1's term-4 entry never lands anywhere (S1 "crashes" before it does). The first append
    // to each follower may pass: they lack index 2, so they reject it, which starts the probe
    // that carries the term-2 entry alone (appendBytesMax: 1 sends one entry per append).
    const probed = new Set<string>();
    net.dropIf((m) => {
      if (m.type !== 'append' || !(m.entries ?? []).some((e) => e.term === 4)) return false;
      if (!probed.has(m.to)) {
        probed.add(m.to);
        return false;
      }
      return true;
    });
    net.elect('s1');
    return net;
  }

  it('a majority holding the term-2 entry does not commit it', () => {
    const net = figure8c();
    const s1 = net.raw('s1').status();
    expect(s1).toMatchObject({ role: 'leader', term: 4 });
    expect(s1.progress['s2']!.match).toBe(2);
    expect(s1.progress['s3']!.match).toBe(2);
    expect(s1.commit).toBe(1);
  });

  it('so S5 can still overwrite it safely, and nobody ever applied it', () => {
    const net = figure8c();
    net.heal();
    net.isolate('s1');
    net.raw('s5').campaign(); // term 4: s2 and s3 already voted for s1 in term 4
    net.stabilize();
    net.raw('s5').campaign(); // term 5: s2, s3, s4 grant (last term 3 beats 2)
    net.stabilize();
    expect(net.leaders()).toContain('s5');
    for (const id of ['s2', 's3', 's4', 's5']) expect(net.get(id).logTerms(), id).toEqual([1, 3, 5]);
    for (const id of ['s1', 's2', 's3', 's4', 's5']) expect(net.get(id).state).not.toContain('2@2');
  });

  it('once an entry of term 4 reaches a majority, both commit', () => {
    const net = figure8c();
    net.heal();
    net.cut('s1', 's4');
    net.cut('s1', 's5');
    net.tick(1, ['s1']);
    expect(net.raw('s1').status().commit).toBe(3);
    expect(net.get('s1').state).toEqual(['1@1', '2@2']);
  });
});
