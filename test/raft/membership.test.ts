import { describe, expect, it } from 'vitest';
import { bytes, Network } from './harness.ts';

const E = 10;

describe('learners', () => {
  it('receive the log but are never counted for commitment', () => {
    const net = new Network(['a', 'b', 'c'], { learners: ['l'] });
    net.elect('a');
    net.propose('a', 'x');
    net.tick(1);
    expect(net.get('l').state).toEqual(['x']);
    net.cut('a', 'b');
    net.cut('a', 'c');
    net.propose('a', 'y');
    expect(net.raw('a').status().progress['l']!.match).toBe(3); // the learner has it…
    expect(net.raw('a').status().commit).toBe(2); // …and it does not count
  });

  it('are never asked for a vote', () => {
    const net = new Network(['a', 'b', 'c'], { learners: ['l'] });
    net.elect('a');
    const asked = net.delivered.filter((m) => m.type === 'preVote' || m.type === 'vote').map((m) => m.to);
    expect(new Set(asked)).toEqual(new Set(['b', 'c']));
  });

  it('once promoted, count toward the quorum', () => {
    const net = new Network(['a', 'b'], { learners: ['l'] });
    net.elect('a');
    net.isolate('b');
    net.propose('a', 'x');
    expect(net.raw('a').status().commit).toBe(1); // a alone of {a, b}
    net.heal();
    net.tick(1);
    expect(net.raw('a').proposeConfChange({ type: 'promoteLearner', node: 'l' }).ok).toBe(true);
    net.stabilize();
    expect(net.raw('a').membership().voters).toEqual(['a', 'b', 'l']);
    net.isolate('b');
    net.propose('a', 'y');
    expect(net.get('a').state).toEqual(['x', 'y']); // a + l are 2 of 3
  });
});

describe('adding and removing voters', () => {
  it('a node added later learns the founding membership and becomes part of the quorum', () => {
    const net = new Network(['a', 'b', 'c'], { empty: ['d'], bootstrapIndex: 1 });
    net.elect('a');
    net.propose('a', 'x');
    expect(net.raw('a').proposeConfChange({ type: 'addVoter', node: 'd', address: 'addr-d' }).ok).toBe(true);
    net.stabilize();
    net.tick(1);
    expect(net.raw('d').membership()).toEqual(net.raw('a').membership());
    expect(net.raw('d').membership().voters).toEqual(['a', 'b', 'c', 'd']);
    expect(net.get('d').state).toEqual(['x']);
    // 3 of 4 are needed now: a + b is not enough.
    net.cut('a', 'c');
    net.cut('a', 'd');
    const before = net.raw('a').status().commit;
    net.propose('a', 'y');
    expect(net.raw('a').status().commit).toBe(before);
    net.heal();
    net.cut('a', 'c');
    net.tick(1);
    expect(net.get('d').state).toEqual(['x', 'y']);
  });

  it('a removed follower stops receiving and no longer counts', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    expect(net.raw('a').proposeConfChange({ type: 'removeNode', node: 'c' }).ok).toBe(true);
    net.stabilize();
    expect(Object.keys(net.raw('a').status().progress).sort()).toEqual(['a', 'b']);
    net.isolate('b');
    net.propose('a', 'x');
    expect(net.raw('a').status().commit).toBe(2); // {a, b}: a alone cannot commit
    net.heal();
    net.isolate('c');
    net.tick(1, ['a', 'b']);
    expect(net.get('a').state).toEqual(['x']);
  });

  it('a removed leader leads until the change commits, then steps down and never campaigns', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('a');
    const r = net.raw('a').proposeConfChange({ type: 'removeNode', node: 'a' });
    expect(r.ok).toBe(true);
    net.stabilize();
    expect(net.raw('a').status().role).toBe('leader'); // not committed yet
    net.heal();
    net.tick(1, ['a']);
    expect(net.raw('a').status().role).toBe('follower');
    expect(net.raw('b').membership().voters).toEqual(['b', 'c']);
    net.tick(4 * E);
    const leaders = net.leaders();
    expect(leaders).toHaveLength(1);
    expect(leaders[0]).not.toBe('a');
    net.isolate('a');
    net.tick(5 * E, ['a']);
    expect(net.raw('a').status().role).toBe('follower');
  });
});

describe('one change at a time, and only after a commit in the term', () => {
  it('a second change waits for the first to commit', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('a');
    expect(net.raw('a').proposeConfChange({ type: 'addLearner', node: 'l1' }).ok).toBe(true);
    expect(net.raw('a').proposeConfChange({ type: 'addLearner', node: 'l2' })).toMatchObject({ ok: false, reason: 'conf-change-pending' });
    net.heal();
    net.tick(1);
    expect(net.raw('a').proposeConfChange({ type: 'addLearner', node: 'l2' }).ok).toBe(true);
  });

  it('a new leader refuses changes until it has committed an entry of its term', () => {
    const net = new Network(['a', 'b', 'c']);
    net.dropIf((m) => m.type === 'appendResp');
    net.elect('a');
    const a = net.raw('a');
    expect(a.status().role).toBe('leader');
    expect(a.proposeConfChange({ type: 'addLearner', node: 'l' })).toMatchObject({ ok: false, reason: 'no-commit-in-term' });
    net.heal();
    net.tick(1);
    expect(a.proposeConfChange({ type: 'addLearner', node: 'l' }).ok).toBe(true);
  });

  it('invalid changes are refused', () => {
    const net = new Network(['a'], { learners: ['l'] });
    net.elect('a');
    const a = net.raw('a');
    for (const cc of [
      { type: 'addVoter' as const, node: 'a' },
      { type: 'addLearner' as const, node: 'a' },
      { type: 'addLearner' as const, node: 'l' },
      { type: 'promoteLearner' as const, node: 'zz' },
      { type: 'removeNode' as const, node: 'zz' },
      { type: 'removeNode' as const, node: 'a' }, // the last voter
      { type: 'addVoter' as const, node: '' },
    ]) {
      expect(a.proposeConfChange(cc), JSON.stringify(cc)).toMatchObject({ ok: false, reason: 'conf-change-invalid' });
    }
  });
});

describe('a membership takes effect when appended and reverts when truncated (dissertation §4.1)', () => {
  it('an uncommitted addition that a new leader overwrites disappears from the follower', () => {
    const net = new Network(['a', 'b', 'c', 'd', 'e']);
    net.elect('a');
    // The change reaches b only, and nobody acknowledges it.
    net.cut('a', 'c');
    net.cut('a', 'd');
    net.cut('a', 'e');
    net.dropIf((m) => m.type === 'appendResp');
    expect(net.raw('a').proposeConfChange({ type: 'addVoter', node: 'x' }).ok).toBe(true);
    net.stabilize();
    expect(net.raw('b').membership().voters).toContain('x'); // in effect on append
    expect(net.raw('b').status().commit).toBe(1);
    // c, d, e elect one of them, whose log lacks the change; its log then replaces b's tail.
    net.heal();
    net.isolate('a');
    net.isolate('b');
    net.tickUntilLeader(['c', 'd', 'e']);
    net.heal();
    net.isolate('a');
    net.tick(1, ['b', 'c', 'd', 'e']);
    expect(net.raw('b').membership().voters).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});

describe('conf entries travel as data', () => {
  it('followers record them as committed entries of type conf', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.raw('a').proposeConfChange({ type: 'addLearner', node: 'l', address: 'http://l' });
    net.stabilize();
    net.tick(1);
    const confs = net
      .get('b')
      .readies.flatMap((rd) => rd.committedEntries)
      .filter((e) => e.type === 'conf');
    expect(confs).toHaveLength(1);
    expect(net.raw('b').membership().addresses['l']).toBe('http://l');
    expect(net.raw('a').propose([bytes('after')]).ok).toBe(true);
  });
});
