import { describe, expect, it } from 'vitest';
import { bytes, Network } from './harness.ts';
import { ENTRY_OVERHEAD_BYTES } from '../../worker/raft/log.ts';

describe('append batching', () => {
  it('one append carries many entries, never more than appendBytesMax of them', () => {
    const appendBytesMax = 100;
    const net = new Network(['a', 'b', 'c'], { config: { appendBytesMax } });
    net.elect('a');
    net.isolate('c');
    const cmds = Array.from({ length: 50 }, (_, i) => `cmd-${String(i).padStart(6, '0')}`); // 10 bytes each
    expect(net.propose('a', ...cmds).ok).toBe(true);
    net.heal();
    net.delivered = [];
    net.tick(1);
    const toC = net.delivered.filter((m) => m.type === 'append' && m.to === 'c' && m.entries!.length > 0);
    for (const m of toC) {
      const cost = m.entries!.reduce((n, e) => n + e.data.length + ENTRY_OVERHEAD_BYTES, 0);
      expect(cost).toBeLessThanOrEqual(appendBytesMax);
    }
    expect(Math.max(...toC.map((m) => m.entries!.length))).toBe(Math.floor(appendBytesMax / (10 + ENTRY_OVERHEAD_BYTES)));
    expect(net.get('c').state).toEqual(cmds);
  });

  it('an entry larger than appendBytesMax is refused at propose time', () => {
    const net = new Network(['a', 'b', 'c'], { config: { appendBytesMax: 64 } });
    net.elect('a');
    const r = net.raw('a').propose([new Uint8Array(65)]);
    expect(r).toEqual({ ok: false, reason: 'entry-too-large', leader: 'a' });
  });
});

describe('pipelining', () => {
  it('at most inflightAppendsMax appends are in flight to a follower that does not answer', () => {
    const net = new Network(['a', 'b', 'c'], { config: { inflightAppendsMax: 3 } });
    net.elect('a'); // b and c are in the replicate state now
    net.dropIf((m) => m.type === 'appendResp' && m.from === 'b');
    net.delivered = [];
    for (let i = 0; i < 10; i++) net.propose('a', `x${i}`);
    const toB = net.delivered.filter((m) => m.type === 'append' && m.to === 'b' && m.entries!.length > 0);
    expect(toB).toHaveLength(3);
    expect(net.raw('a').status().progress['b']).toMatchObject({ state: 'replicate', inflight: 3 });
    // c answers, so it got all ten, one append each (a pipeline, no waiting per round trip).
    const toC = net.delivered.filter((m) => m.type === 'append' && m.to === 'c' && m.entries!.length > 0);
    expect(toC).toHaveLength(10);
    // Answers resume: the window drains and b catches up.
    net.heal();
    net.tick(2);
    expect(net.get('b').state).toEqual(Array.from({ length: 10 }, (_, i) => `x${i}`));
  });

  it('several appends go out before the first is answered', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raw('a');
    a.propose([bytes('1')]);
    a.propose([bytes('2')]);
    a.propose([bytes('3')]);
    const appendsToB = a.ready().messages.filter((m) => m.type === 'append' && m.to === 'b');
    expect(appendsToB.map((m) => m.entries!.map((e) => e.index))).toEqual([[2], [3], [4]]);
  });
});

describe('proposal limits and refusals', () => {
  it('a follower refuses proposals and names the leader', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    expect(net.raw('b').propose([bytes('x')])).toEqual({ ok: false, reason: 'not-leader', leader: 'a' });
  });

  it('too many uncommitted entries are refused until some commit', () => {
    const net = new Network(['a', 'b', 'c'], { config: { uncommittedEntriesMax: 5 } });
    net.elect('a');
    net.isolate('a');
    const a = net.raw('a');
    expect(a.propose([1, 2, 3, 4, 5].map((i) => bytes(String(i)))).ok).toBe(true);
    expect(a.propose([bytes('6')])).toMatchObject({ ok: false, reason: 'too-many-uncommitted' });
    net.heal();
    net.tick(1);
    expect(a.propose([bytes('6')]).ok).toBe(true);
  });

  it('propose returns the index and term of the first of consecutive entries', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    expect(net.propose('a', 'p', 'q', 'r')).toEqual({ ok: true, index: 2, term: 1 });
    expect(net.propose('a', 's')).toEqual({ ok: true, index: 5, term: 1 });
    expect(net.get('b').stored.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('the Ready contract', () => {
  it('committed entries come out once, in order, after the entries were handed out for persistence', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.propose('a', 'x', 'y');
    const b = net.get('b');
    const seen: number[] = [];
    let persisted = 0;
    for (const rd of b.readies) {
      for (const e of rd.entries) persisted = Math.max(persisted, e.index);
      for (const e of rd.committedEntries) {
        expect(e.index).toBeLessThanOrEqual(persisted);
        seen.push(e.index);
      }
    }
    expect(seen).toEqual([1, 2, 3]);
  });

  it('ready() twice without advance() is a host bug and throws; hasReady() is false meanwhile', () => {
    const net = new Network(['a', 'b', 'c']);
    const a = net.raw('a');
    a.campaign();
    const rd = a.ready();
    expect(a.hasReady()).toBe(false);
    expect(() => a.ready()).toThrow(/advance/);
    a.advance(rd);
  });

  it('a restart replays nothing that was applied and re-applies nothing', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    net.propose('a', 'x', 'y');
    net.tick(1);
    net.get('b').restart();
    net.propose('a', 'z');
    net.tick(1);
    expect(net.get('b').state).toEqual(['x', 'y', 'z']);
    expect(net.raw('b').status().applied).toBe(4);
  });
});
