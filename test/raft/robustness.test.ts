// Nothing a peer sends can throw out of step(); what is dropped is counted by reason.

import { MESSAGE_TYPES } from '../../worker/raft/types.ts';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../worker/raft/random.ts';
import type { Message } from '../../worker/raft/types.ts';
import { bytes, Network } from './harness.ts';

function dropped(net: Network, id: string): Record<string, number> {
  return net.raw(id).status().dropped;
}

describe('dropped messages are counted by reason', () => {
  it('malformed, misaddressed, unknown sender, stale term, out-of-range index', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raw('a');
    const before = { ...dropped(net, 'a') };
    a.step({ type: 'append', from: 'b', to: 'a', term: 1 } as Message);
    a.step({ type: 'heartbeatResp', from: 'b', to: 'zz', term: 1 });
    a.step({ type: 'appendResp', from: 'mallory', to: 'a', term: 1, index: 1, hintIndex: 1 });
    a.step({ type: 'appendResp', from: 'b', to: 'a', term: 1, index: 1, hintIndex: 999 });
    a.step({ type: 'appendResp', from: 'b', to: 'a', term: 0, index: 1, hintIndex: 1 });
    const after = dropped(net, 'a');
    const delta = Object.fromEntries(
      Object.keys(after)
        .map((k) => [k, after[k]! - (before[k] ?? 0)])
        .filter(([, n]) => n !== 0),
    );
    expect(delta).toEqual({
      malformed: 1,
      'wrong-recipient': 1,
      'unknown-sender': 1,
      'index-out-of-range': 1,
      'stale-term': 1,
    });
    expect(a.status()).toMatchObject({ role: 'leader', term: 1, commit: 1 });
  });

  it('an append from an old term is answered with the current term, nothing appended', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.raw('a').transferLeadership('b');
    net.stabilize();
    expect(net.raw('c').status().term).toBe(2);
    const stale = dropped(net, 'c')['stale-term'] ?? 0;
    net.raw('c').step({
      type: 'append',
      from: 'a',
      to: 'c',
      term: 1,
      index: 1,
      logTerm: 1,
      commit: 1,
      entries: [{ term: 1, index: 2, type: 'normal', data: bytes('old') }],
    });
    const rd = net.raw('c').ready();
    expect(rd.messages).toEqual([{ type: 'appendResp', from: 'c', to: 'a', term: 2, index: 1, hintIndex: 0 }]);
    expect(rd.entries).toEqual([]);
    expect(dropped(net, 'c')['stale-term']).toBe(stale + 1);
  });

  it('an append that would overwrite a committed entry is not obeyed', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.propose('a', 'x');
    net.tick(1);
    const b = net.raw('b');
    const before = net.get('b').stored.entries.slice();
    b.step({
      type: 'append',
      from: 'a',
      to: 'b',
      term: 1,
      index: 1,
      logTerm: 1,
      commit: 2,
      entries: [{ term: 1, index: 2, type: 'normal', data: bytes('evil') }],
    });
    // index 2 is committed with term 1 and the same term: no conflict, nothing changes…
    expect(net.get('b').stored.entries).toEqual(before);
    // …and one from a newer term that contradicts committed entries is answered with our
    // commit index (appends that start below it are never applied).
    b.step({
      type: 'append',
      from: 'c',
      to: 'b',
      term: 2,
      index: 1,
      logTerm: 1,
      commit: 2,
      entries: [{ term: 2, index: 2, type: 'normal', data: bytes('evil') }],
    });
    const rd = b.ready();
    expect(rd.entries).toEqual([]);
    expect(rd.messages.filter((m) => m.to === 'c')).toEqual([{ type: 'appendResp', from: 'b', to: 'c', term: 2, index: 1, hintIndex: 2 }]);
    b.advance(rd);
    expect(net.get('b').stored.entries).toEqual(before);
  });
});

describe('fuzzing step()', () => {
  const TYPES = [...MESSAGE_TYPES, 'bogus'];

  function junk(rnd: SeededRandom): unknown {
    switch (rnd.nextInt(9)) {
      case 0:
        return undefined;
      case 1:
        return null;
      case 2:
        return -1;
      case 3:
        return rnd.nextInt(20);
      case 4:
        return Number.NaN;
      case 5:
        return 'x';
      case 6:
        return [];
      case 7:
        return { index: rnd.nextInt(5) };
      default:
        return 2 ** 60;
    }
  }

  function randomMessage(rnd: SeededRandom, ids: string[], to: string): unknown {
    const pick = <T>(xs: T[]): T => xs[rnd.nextInt(xs.length)]!;
    const small = (): number => rnd.nextInt(8);
    const m: Record<string, unknown> = {
      type: pick(TYPES),
      from: pick([...ids, 'stranger', '']),
      to: rnd.nextInt(10) === 0 ? 'zz' : to,
      term: small(),
    };
    if (rnd.nextInt(2)) m.index = small();
    if (rnd.nextInt(2)) m.logTerm = small();
    if (rnd.nextInt(2)) m.commit = small();
    if (rnd.nextInt(2)) m.hintIndex = small();
    if (rnd.nextInt(3) === 0) m.hintTerm = small();
    if (rnd.nextInt(3) === 0) m.reject = true;
    if (rnd.nextInt(4) === 0) m.transfer = true;
    if (rnd.nextInt(3) === 0) m.context = String(small());
    if (rnd.nextInt(2)) {
      const start = (m.index as number | undefined) ?? 0;
      const n = small();
      m.entries = Array.from({ length: n }, (_, i) => ({
        term: Math.max(1, Math.min(m.term as number, (m.logTerm as number | undefined) ?? 1)),
        index: start + 1 + i,
        type: rnd.nextInt(6) === 0 ? 'conf' : 'normal',
        data: new Uint8Array(small()),
      }));
    }
    if (rnd.nextInt(5) === 0) {
      m.snapshot = {
        meta: {
          index: 1 + small(),
          term: 1,
          membership: { voters: ids.slice(0, 1 + rnd.nextInt(ids.length)), learners: [], addresses: {} },
        },
        offset: rnd.nextInt(3) === 0 ? small() : 0,
        data: bytes('[]'),
        done: rnd.nextInt(2) === 0,
      };
    }
    // Corrupt one field now and then.
    if (rnd.nextInt(4) === 0) {
      const keys = Object.keys(m);
      m[keys[rnd.nextInt(keys.length)]!] = junk(rnd);
    }
    return rnd.nextInt(50) === 0 ? junk(rnd) : m;
  }

  it('random and corrupted messages in every role never throw and never break the core invariants', () => {
    // Forged messages (a fake leader's entries or snapshot) can of course mislead a node:
    // Raft does not tolerate Byzantine peers. What must hold is that nothing throws and each
    // node's own state stays coherent.
    const rnd = new SeededRandom(2024);
    const ids = ['a', 'b', 'c'];
    for (let round = 0; round < 30; round++) {
      const net = new Network(ids);
      if (round % 3 !== 0) net.elect('a');
      const terms = new Map<string, number>();
      for (let i = 0; i < 300; i++) {
        const to = ids[rnd.nextInt(ids.length)]!;
        net.raw(to).step(randomMessage(rnd, ids, to) as Message);
        if (i % 10 === 0) net.tick(1);
        const st = net.raw(to).status();
        expect(st.applied).toBeLessThanOrEqual(st.commit);
        expect(st.commit).toBeLessThanOrEqual(st.lastIndex);
        expect(st.term).toBeGreaterThanOrEqual(terms.get(to) ?? 0);
        terms.set(to, st.term);
      }
      net.stabilize();
    }
  });

  it('duplicated, delayed and reordered honest messages never throw and the cluster still agrees', () => {
    const rnd = new SeededRandom(99);
    const ids = ['a', 'b', 'c'];
    for (let round = 0; round < 10; round++) {
      const net = new Network(ids);
      const history: Message[] = [];
      for (let i = 0; i < 200; i++) {
        net.collect();
        history.push(...net.inFlight);
        // Deliver a random subset now, keep the rest for later (reordering), replay old ones.
        const keep: Message[] = [];
        for (const m of net.inFlight) (rnd.nextInt(4) === 0 ? keep : []).push(m);
        net.deliverOnce();
        net.inFlight = keep;
        for (let k = rnd.nextInt(3); k > 0 && history.length > 0; k--) {
          const old = history[rnd.nextInt(history.length)]!;
          net.raw(old.to).step(old);
        }
        for (const id of ids) if (rnd.nextInt(3) === 0) net.raw(id).tick();
        const leader = net.leaders()[0];
        if (leader !== undefined && rnd.nextInt(5) === 0) net.raw(leader).propose([bytes(`v${round}-${i}`)]);
      }
      net.inFlight = [];
      net.stabilize();
      const leader = net.tickUntilLeader(ids);
      expect(net.raw(leader).propose([bytes(`final-${round}`)]).ok).toBe(true);
      net.tick(3);
      const states = ids.map((id) => net.get(id).state);
      for (const st of states) expect(st).toEqual(states[0]);
      expect(states[0]).toContain(`final-${round}`);
    }
  });
});
