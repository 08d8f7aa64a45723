import { describe, expect, it } from 'vitest';
import { decodeConfChange, decodeMessages, encodeConfChange, encodeMessages, RaftCodecError } from '../../worker/raft/codec.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import type { ConfChange, Message } from '../../worker/raft/types.ts';
import { bytes, Network } from './harness.ts';

const membership = { voters: ['a', 'b', 'ü-ñode'], learners: ['l'], addresses: { a: 'http://a:1', 'ü-ñode': 'x' } };

const samples: Message[] = [
  { type: 'preVote', from: 'a', to: 'b', term: 3, index: 10, logTerm: 2 },
  { type: 'vote', from: 'a', to: 'b', term: 3, index: 10, logTerm: 2, transfer: true },
  { type: 'preVoteResp', from: 'b', to: 'a', term: 3 },
  { type: 'voteResp', from: 'b', to: 'a', term: 4, reject: true },
  {
    type: 'append',
    from: 'a',
    to: 'b',
    term: 5,
    index: 7,
    logTerm: 4,
    commit: 6,
    entries: [
      { term: 5, index: 8, type: 'normal', data: bytes('hello') },
      { term: 5, index: 9, type: 'conf', data: encodeConfChange({ type: 'addVoter', node: 'c', address: 'http://c' }) },
      { term: 5, index: 10, type: 'normal', data: new Uint8Array(0) },
    ],
  },
  { type: 'append', from: 'a', to: 'b', term: 2 ** 40, index: Number.MAX_SAFE_INTEGER - 1, logTerm: 1, commit: 0, entries: [] },
  { type: 'appendResp', from: 'b', to: 'a', term: 5, index: 7, hintIndex: 6, hintTerm: 3, reject: true },
  { type: 'appendResp', from: 'b', to: 'a', term: 5, index: 7, hintIndex: 10 },
  { type: 'heartbeat', from: 'a', to: 'b', term: 5, commit: 9, context: '12' },
  { type: 'heartbeatResp', from: 'b', to: 'a', term: 5, context: '12' },
  {
    type: 'snapshot',
    from: 'a',
    to: 'b',
    term: 5,
    snapshot: { meta: { index: 100, term: 4, membership }, offset: 4096, data: bytes('chunk'), done: false },
  },
  { type: 'snapshotResp', from: 'b', to: 'a', term: 5, index: 100, hintIndex: 4101 },
  { type: 'timeoutNow', from: 'a', to: 'b', term: 5 },
  { type: 'removed', from: 'a', to: 'b', term: 5, index: 42 },
];

describe('the removed notice', () => {
  it('is not Raft: the core drops it without adopting its term or changing anything', () => {
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    const before = net.raw('b').status();
    net.raw('b').step({ type: 'removed', from: 'a', to: 'b', term: before.term + 5, index: 99 });
    const after = net.raw('b').status();
    expect(after).toEqual({ ...before, dropped: { ...before.dropped, 'not-raft': 1 } });
  });
});

describe('message codec', () => {
  it('round-trips every message type with all its fields', () => {
    for (const m of samples) expect(decodeMessages(encodeMessages([m]))).toEqual([m]);
    expect(decodeMessages(encodeMessages(samples))).toEqual(samples);
    expect(decodeMessages(encodeMessages([]))).toEqual([]);
  });

  it('round-trips ids on both sides of the ASCII fast paths (long, non-ASCII late in the string)', () => {
    const texts = ['n1', 'x'.repeat(32), 'y'.repeat(33), 'z'.repeat(127), 'w'.repeat(128), 'abcdé', `${'a'.repeat(40)}ü`];
    for (const id of texts) {
      const m: Message = { type: 'heartbeat', from: id, to: `t${id}`.slice(0, 128), term: 3, commit: 1 };
      expect(decodeMessages(encodeMessages([m])), JSON.stringify(id)).toEqual([m]);
      const cc: ConfChange = { type: 'addVoter', node: 'n', address: `http://${id.repeat(3)}` };
      expect(decodeConfChange(encodeConfChange(cc)), JSON.stringify(id)).toEqual(cc);
    }
  });

  it('rejects truncation at every length, trailing bytes, unknown versions and bad fields', () => {
    const whole = encodeMessages(samples);
    for (let n = 0; n < whole.length; n++) {
      expect(() => decodeMessages(whole.subarray(0, n)), `length ${n}`).toThrow(RaftCodecError);
    }
    expect(() => decodeMessages(new Uint8Array([...whole, 0]))).toThrow(RaftCodecError);
    expect(() => decodeMessages(new Uint8Array([9, 0]))).toThrow(/version/);
    // Semantically invalid (validated like step() does): an append without entries.
    const noEntries = { type: 'append', from: 'a', to: 'b', term: 1, index: 0, logTerm: 0, commit: 0 } as Message;
    expect(() => decodeMessages(encodeMessages([noEntries]))).toThrow(RaftCodecError);
    // Entries that do not follow the previous index.
    const gap: Message = { ...samples[4]!, entries: [{ term: 5, index: 99, type: 'normal', data: new Uint8Array() }] };
    expect(() => decodeMessages(encodeMessages([gap]))).toThrow(/contiguous/);
  });

  it('refuses a huge declared count without allocating for it', () => {
    // version 1, count = 2^49 (varint), nothing else
    const evil = new Uint8Array([1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    expect(() => decodeMessages(evil)).toThrow(RaftCodecError);
  });

  it('random bytes and mutated messages only ever throw RaftCodecError, and what decodes never makes step throw', () => {
    const rnd = new SeededRandom(42);
    const net = new Network(['a', 'b', 'c']);
    net.elect('a');
    const valid = encodeMessages(samples);
    let decoded = 0;
    for (let i = 0; i < 20_000; i++) {
      let input: Uint8Array;
      if (i % 2 === 0) {
        input = new Uint8Array(rnd.nextInt(64));
        for (let j = 0; j < input.length; j++) input[j] = rnd.nextInt(256);
        if (input.length > 0 && rnd.nextInt(2) === 0) input[0] = 1; // get past the version byte
      } else {
        input = valid.slice();
        for (let k = 1 + rnd.nextInt(4); k > 0; k--) input[rnd.nextInt(input.length)] = rnd.nextInt(256);
      }
      let msgs: Message[];
      try {
        msgs = decodeMessages(input);
      } catch (e) {
        expect(e).toBeInstanceOf(RaftCodecError);
        continue;
      }
      decoded++;
      for (const m of msgs) {
        for (const id of ['a', 'b']) net.raw(id).step({ ...m, to: id });
      }
      net.stabilize();
    }
    expect(decoded).toBeGreaterThan(100); // the mutations did reach step()
  });
});

describe('conf change codec', () => {
  it('round-trips and returns null for anything malformed', () => {
    const ccs: ConfChange[] = [
      { type: 'addVoter', node: 'n', address: 'http://n:1' },
      { type: 'addLearner', node: 'l' },
      { type: 'promoteLearner', node: 'l' },
      { type: 'removeNode', node: 'n' },
    ];
    for (const cc of ccs) expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    const good = encodeConfChange(ccs[0]!);
    for (let n = 0; n < good.length; n++) expect(decodeConfChange(good.subarray(0, n))).toBeNull();
    expect(decodeConfChange(new Uint8Array([...good, 1]))).toBeNull();
    expect(decodeConfChange(new Uint8Array([1, 9, 1, 65, 0]))).toBeNull(); // unknown type
    const rnd = new SeededRandom(7);
    for (let i = 0; i < 5000; i++) {
      const b = new Uint8Array(rnd.nextInt(24));
      for (let j = 0; j < b.length; j++) b[j] = rnd.nextInt(256);
      const cc = decodeConfChange(b);
      if (cc !== null) expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    }
  });
});
