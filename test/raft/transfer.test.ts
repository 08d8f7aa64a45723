import { describe, expect, it } from 'vitest';
import { bytes, Network } from './harness.ts';

const E = 10;

describe('leadership transfer', () => {
  it('an up-to-date target gets TimeoutNow at once and wins the next term', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    expect(net.raw('a').transferLeadership('b')).toBe(true);
    net.stabilize();
    expect(net.leaders()).toEqual(['b']);
    expect(net.raw('b').status().term).toBe(2);
    expect(net.delivered.filter((m) => m.type === 'preVote' && m.from === 'b')).toHaveLength(0); // no pre-vote
    expect(net.delivered.filter((m) => m.type === 'vote' && m.from === 'b').every((m) => m.transfer === true)).toBe(true);
  });

  it('a lagging target is caught up first, and only then told to take over', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('b');
    net.propose('a', 'x', 'y');
    net.heal();
    net.delivered = [];
    expect(net.raw('a').transferLeadership('b')).toBe(true);
    net.stabilize();
    const toB = net.delivered.filter((m) => m.from === 'a' && m.to === 'b').map((m) => m.type);
    expect(toB.indexOf('append')).toBeLessThan(toB.indexOf('timeoutNow'));
    expect(net.leaders()).toEqual(['b']);
    expect(net.get('b').stored.entries.map((e) => e.index)).toContain(3);
  });

  it('proposals are refused while transferring; the transfer aborts after an election timeout', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('b');
    net.propose('a', 'x');
    const a = net.raw('a');
    expect(a.transferLeadership('b')).toBe(true);
    expect(a.propose([bytes('y')])).toEqual({ ok: false, reason: 'transferring', leader: 'a' });
    expect(a.proposeConfChange({ type: 'addLearner', node: 'l' })).toMatchObject({ ok: false, reason: 'transferring' });
    expect(a.status().transferee).toBe('b');
    net.tick(E - 1, ['a', 'c']);
    expect(a.status().transferee).toBe('b');
    net.tick(1, ['a', 'c']);
    expect(a.status().transferee).toBe('');
    expect(a.propose([bytes('y')]).ok).toBe(true);
    expect(net.leaders()).toEqual(['a']);
  });

  it('refuses to transfer to itself, a learner or a stranger, and only a leader transfers', () => {
    const net = new Network(['a', 'b', 'c'], { learners: ['l'] });
    net.elect('a');
    expect(net.raw('a').transferLeadership('a')).toBe(false);
    expect(net.raw('a').transferLeadership('l')).toBe(false);
    expect(net.raw('a').transferLeadership('zz')).toBe(false);
    expect(net.raw('b').transferLeadership('c')).toBe(false);
  });

  it('the transfer vote passes followers that are inside their leader lease', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.tick(1); // everyone just heard from a
    net.raw('a').transferLeadership('c');
    net.stabilize();
    expect(net.leaders()).toEqual(['c']);
    expect(net.raw('b').status().dropped['vote-in-lease']).toBeUndefined();
  });
});
