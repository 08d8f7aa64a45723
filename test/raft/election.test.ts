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
