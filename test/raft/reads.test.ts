import { describe, expect, it } from 'vitest';
import { Network } from './harness.ts';

const E = 10;
const DRIFT = 2; // default leaseDriftTicks

describe('ReadIndex', () => {
  it('one heartbeat round serves every read queued before it', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raw('a');
    net.delivered = [];
    expect(a.readIndex('r1')).toBe(true);
    expect(a.readIndex('r2')).toBe(true);
    expect(a.readIndex('r3')).toBe(true);
    net.stabilize();
    expect(net.delivered.filter((m) => m.type === 'heartbeat')).toHaveLength(2); // one round, two followers
    expect(net.get('a').readStates).toEqual([
      { ctx: 'r1', index: 1 },
      { ctx: 'r2', index: 1 },
      { ctx: 'r3', index: 1 },
    ]);
  });

  it('reads arriving while a round is out ride the next round, started when the first confirms', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raw('a');
    a.readIndex('r1');
    net.collect(); // round 1 is on the wire
    a.readIndex('r2');
    a.readIndex('r3');
    net.deliverOnce(); // followers answer round 1
    net.collect();
    expect(net.get('a').readStates.map((r) => r.ctx)).toEqual([]);
    net.deliverOnce(); // answers to round 1 arrive: r1 released, round 2 starts
    net.collect();
    expect(net.get('a').readStates.map((r) => r.ctx)).toEqual(['r1']);
    net.stabilize();
    expect(net.get('a').readStates.map((r) => r.ctx)).toEqual(['r1', 'r2', 'r3']);
  });

  it('each read waits for the commit index at its arrival, also when it joins a round not yet sent', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raw('a');
    a.propose([new TextEncoder().encode('x')]); // index 2, its appends not sent yet
    expect(a.readIndex('r1')).toBe(true); // commit is 1; round 1 is created, unsent
    a.step({ type: 'appendResp', from: 'b', to: 'a', term: 1, index: 1, hintIndex: 2 }); // commits 2
    expect(a.readIndex('r2')).toBe(true); // joins round 1, but must see index 2
    net.stabilize();
    expect(net.get('a').readStates).toEqual([
      { ctx: 'r1', index: 1 },
      { ctx: 'r2', index: 2 },
    ]);
  });

  it('the read index covers everything committed before the read', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.propose('a', 'x', 'y');
    net.raw('a').readIndex('r');
    net.stabilize();
    expect(net.get('a').readStates).toEqual([{ ctx: 'r', index: 3 }]);
  });

  it('is not released without a quorum, and is released by a later round once one answers', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('a');
    net.raw('a').readIndex('r');
    net.stabilize();
    expect(net.get('a').readStates).toEqual([]);
    net.heal();
    net.tick(1);
    expect(net.get('a').readStates).toEqual([{ ctx: 'r', index: 1 }]);
  });

  it('is refused by followers and by a leader that has not committed an entry of its term', () => {
    const net = new Network(['a', 'b', 'c']);
    net.dropIf((m) => m.type === 'appendResp');
    net.elect('a');
    expect(net.raw('a').readIndex('r')).toBe(false);
    expect(net.raw('b').readIndex('r')).toBe(false);
    net.heal();
    net.tick(1);
    expect(net.raw('a').readIndex('r')).toBe(true);
  });

  it('a single node serves reads at once', () => {
    const net = new Network(['solo']);
    net.elect('solo');
    expect(net.raw('solo').readIndex('r')).toBe(true);
    net.stabilize();
    expect(net.get('solo').readStates).toEqual([{ ctx: 'r', index: 1 }]);
  });
});

describe('the leader lease', () => {
  it('is valid from the send tick of a round a quorum acknowledged until electionTicks - leaseDriftTicks later', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raw('a');
    expect(a.leaseRead()).toBeNull(); // no round acknowledged yet
    net.tick(1); // round sent at tick 1, acknowledged
    expect(a.leaseRead()).toBe(1);
    net.isolate('a');
    let lastValid = 1;
    for (let t = 2; t <= E; t++) {
      net.tick(1, ['a']);
      if (a.leaseRead() !== null) lastValid = t;
    }
    expect(lastValid).toBe(1 + E - DRIFT - 1);
    // And no other node could have won an election before then: followers refuse for E ticks.
  });

  it('is not served by followers, nor by a leader before it commits in its term', () => {
    const net = new Network(['a', 'b', 'c']);
    net.dropIf((m) => m.type === 'appendResp');
    net.elect('a');
    net.tick(1);
    expect(net.raw('a').leaseRead()).toBeNull();
    expect(net.raw('b').leaseRead()).toBeNull();
  });

  it('ends for the rest of the term once a TimeoutNow went out, even if the transfer aborts', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.tick(1);
    expect(net.raw('a').leaseRead()).not.toBeNull();
    net.dropIf((m) => m.type === 'timeoutNow');
    net.raw('a').transferLeadership('b');
    net.stabilize();
    expect(net.raw('a').leaseRead()).toBeNull();
    net.tick(E + 1);
    expect(net.raw('a').status()).toMatchObject({ role: 'leader', transferee: '' });
    expect(net.raw('a').leaseRead()).toBeNull();
    expect(net.raw('a').readIndex('r')).toBe(true); // ReadIndex still works
  });

  it('needs CheckQuorum: without it followers make no promise and there is no lease', () => {
    const net = new Network(['a', 'b', 'c'], { config: { checkQuorum: false } });
    net.elect('a');
    net.tick(1);
    expect(net.raw('a').leaseRead()).toBeNull();
  });

  it('a new leader cannot be elected while the old lease is valid (the bound is safe)', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.tick(1);
    expect(net.raw('a').leaseRead(), 'a lease once a round is acknowledged').not.toBeNull();
    net.isolate('a');
    // b and c tick in lockstep with a: while a's lease holds, neither may win.
    let leaseTicks = 0;
    for (let t = 0; t < 3 * E; t++) {
      net.tick(1);
      const others = net.leaders().filter((id) => id !== 'a');
      if (net.raw('a').leaseRead() === null) continue;
      leaseTicks++;
      expect(others, `tick ${t}`).toEqual([]);
    }
    // The check above ran on every tick of the lease (as in the test before).
    expect(leaseTicks).toBe(E - DRIFT - 1);
    expect(net.leaders().filter((id) => id !== 'a')).toHaveLength(1);
  });
});
