import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../worker/raft/random.ts';
import {
  decodeCommand,
  decodeState,
  DEFAULT_KV_LIMITS,
  encodeCommand,
  encodeState,
  KvCodecError,
  KvStateMachine,
  validateCommand,
} from '../../worker/kv/index.ts';
import type { KvCommand, KvState } from '../../worker/kv/index.ts';
import { randomCommands, randomString } from './random-commands.ts';

describe('command codec', () => {
  it('round-trips commands, including awkward strings and large numbers', () => {
    const cmds: KvCommand[] = [
      { op: 'put', pairs: [['k', 'v']] },
      {
        op: 'put',
        pairs: [
          ['\ufeffbom-first', ''],
          ['😀é\u0000', 'x'.repeat(5000)],
        ],
        compare: { key: 'c', modRevision: 0 },
      },
      { op: 'delete', keys: ['a', 'b'], stamp: { client: 'client-1', seq: Number.MAX_SAFE_INTEGER } },
      { op: 'put', pairs: [['k', 'é'.repeat(100)]], compare: { key: 'k', modRevision: 2 ** 40 + 3 }, stamp: { client: 'x', seq: 128 } },
    ];
    for (const cmd of cmds) expect(decodeCommand(encodeCommand(cmd))).toEqual(cmd);
  });

  it('round-trips random commands and is much smaller than JSON', () => {
    const rnd = new SeededRandom(3);
    const source = randomCommands(rnd, { keys: 50, clients: 5 });
    const sm = new KvStateMachine();
    let binary = 0;
    let json = 0;
    for (let i = 0; i < 2000; i++) {
      const cmd = source.next(sm);
      const bytes = encodeCommand(cmd);
      expect(decodeCommand(bytes)).toEqual(cmd);
      binary += bytes.length;
      json += new TextEncoder().encode(JSON.stringify(cmd)).length;
      sm.apply(i + 1, cmd);
    }
    expect(binary * 2).toBeLessThan(json);
  });

  it('refuses to encode a string with a lone surrogate (it would change on the way)', () => {
    expect(() => encodeCommand({ op: 'put', pairs: [['a\ud800', 'v']] })).toThrow(KvCodecError);
    expect(() => encodeCommand({ op: 'delete', keys: ['\udc00'] })).toThrow(KvCodecError);
  });

  it('throws KvCodecError on every truncation, on trailing bytes, and on bad versions or flags', () => {
    const bytes = encodeCommand({
      op: 'put',
      pairs: [['key', 'välue']],
      compare: { key: 'k', modRevision: 300 },
      stamp: { client: 'c', seq: 9 },
    });
    for (let n = 0; n < bytes.length; n++) expect(() => decodeCommand(bytes.subarray(0, n)), `prefix ${n}`).toThrow(KvCodecError);
    expect(() => decodeCommand(new Uint8Array([...bytes, 0]))).toThrow(KvCodecError);
    expect(() => decodeCommand(new Uint8Array([3, ...bytes.subarray(1)]))).toThrow(/version/);
    expect(() => decodeCommand(new Uint8Array([1, 0x80 | bytes[1]!, ...bytes.subarray(2)]))).toThrow(/flags/);
  });

  it('throws KvCodecError on invalid UTF-8 and non-minimal numbers', () => {
    // put, one pair: key of 1 byte 0xff.
    expect(() => decodeCommand(new Uint8Array([1, 0, 1, 1, 0xff, 0]))).toThrow(/UTF-8/);
    // Overlong encoding of '/' (0xc0 0xaf) in a long-enough key to take the TextDecoder path.
    expect(() => decodeCommand(new Uint8Array([1, 0, 1, 2, 0xc0, 0xaf, 0]))).toThrow(KvCodecError);
    // count 1 written as two bytes (0x81 0x00).
    expect(() => decodeCommand(new Uint8Array([1, 0, 0x81, 0x00, 1, 0x61, 0]))).toThrow(/non-minimal/);
    // A huge count cannot make the decoder allocate: it is checked against the bytes left.
    expect(() => decodeCommand(new Uint8Array([1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f]))).toThrow(/count/);
  });

  it('never throws anything but KvCodecError on random garbage, and what decodes re-encodes identically', () => {
    const rnd = new SeededRandom(11);
    const source = randomCommands(rnd, { keys: 10, clients: 3 });
    const sm = new KvStateMachine();
    let decoded = 0;
    for (let i = 0; i < 20000; i++) {
      let bytes: Uint8Array;
      if (i % 2 === 0) {
        // Pure garbage, mostly small byte values so lengths and counts sometimes line up.
        bytes = new Uint8Array(1 + rnd.nextInt(24));
        for (let j = 0; j < bytes.length; j++) bytes[j] = rnd.nextInt(4) === 0 ? rnd.nextInt(256) : rnd.nextInt(8);
        if (rnd.nextInt(2) === 0) bytes[0] = 1;
      } else {
        // A valid encoding with one or two bytes changed.
        bytes = encodeCommand(source.next(sm)).slice();
        for (let f = 1 + rnd.nextInt(2); f > 0; f--) bytes[rnd.nextInt(bytes.length)] = rnd.nextInt(256);
      }
      let cmd: KvCommand;
      try {
        cmd = decodeCommand(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(KvCodecError);
        continue;
      }
      decoded++;
      expect(encodeCommand(cmd)).toEqual(bytes);
      // And applying it never throws, whatever it holds.
      new KvStateMachine().apply(1, cmd);
    }
    expect(decoded).toBeGreaterThan(1000);
  });

  it('counts command bytes in validation exactly as encoded', () => {
    const rnd = new SeededRandom(5);
    for (let i = 0; i < 500; i++) {
      const pairs: Array<[string, string]> = [];
      const n = 1 + rnd.nextInt(4);
      for (let j = 0; j < n; j++) pairs.push([`k${j}${randomString(rnd, 40)}`, randomString(rnd, 300)]);
      const cmd: KvCommand = { op: 'put', pairs, stamp: { client: 'c'.repeat(1 + rnd.nextInt(64)), seq: 1 + rnd.nextInt(2 ** 30) } };
      if (rnd.nextInt(2) === 0) cmd.compare = { key: 'k0', modRevision: rnd.nextInt(2 ** 20) };
      const size = encodeCommand(cmd).length;
      expect(validateCommand(cmd, { ...DEFAULT_KV_LIMITS, commandBytesMax: size }).ok).toBe(true);
      expect(validateCommand(cmd, { ...DEFAULT_KV_LIMITS, commandBytesMax: size - 1 })).toMatchObject({ ok: false, code: 'too-large' });
    }
  });
});

describe('state codec', () => {
  function stateAfter(seed: number, steps: number): KvState {
    const rnd = new SeededRandom(seed);
    const source = randomCommands(rnd, { keys: 30, clients: 6 });
    const sm = new KvStateMachine();
    for (let i = 1; i <= steps; i++) sm.apply(i, source.next(sm));
    return sm.snapshot();
  }

  it('round-trips and is deterministic whatever order the parts come in', () => {
    const state = stateAfter(1, 400);
    expect(state.sessions.length).toBeGreaterThan(0);
    expect(state.sessions.some(([, s]) => !s.result.ok)).toBe(true);
    const bytes = encodeState(state);
    expect(decodeState(bytes)).toEqual(state);
    const shuffled: KvState = { ...state, records: [...state.records].reverse(), sessions: [...state.sessions].reverse() };
    expect(encodeState(shuffled)).toEqual(bytes);
    expect(encodeState({ revision: 0, records: [], sessions: [] })).toEqual(new Uint8Array([0x53, 1, 0, 0, 0]));
  });

  it('rejects duplicates, truncation, trailing bytes, a command, and broken invariants', () => {
    const state = stateAfter(2, 200);
    const bytes = encodeState(state);
    const dup: KvState = { ...state, records: [state.records[0]!, ...state.records] };
    expect(() => encodeState(dup)).toThrow(/duplicate/);
    for (let n = 0; n < bytes.length; n += 7) expect(() => decodeState(bytes.subarray(0, n))).toThrow(KvCodecError);
    expect(() => decodeState(new Uint8Array([...bytes, 0]))).toThrow(/trailing/);
    expect(() => decodeState(encodeCommand({ op: 'put', pairs: [['a', 'b']] }))).toThrow(/magic/);
    const future = encodeState({
      revision: 1,
      records: [['a', { value: 'v', createRevision: 1, modRevision: 2, version: 1 }]],
      sessions: [],
    });
    expect(() => decodeState(future)).toThrow(/invariants/);
  });
});
