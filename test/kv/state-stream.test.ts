// Streamed snapshot bytes, both ends: StateChunker (a leader's chunks, read on demand from a
// view) and StateStreamDecoder (a follower's records, decoded as the chunks arrive). Both must
// agree byte for byte and record for record with encodeState / decodeState, for any chunking.

import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../worker/raft/random.ts';
import { KvStateMachine } from '../../worker/kv/state-machine.ts';
import { KvCodecError, StateStreamEncoder, decodeState, encodeState } from '../../worker/kv/codec.ts';
import { StateChunker } from '../../worker/kv/state-chunker.ts';
import { StateStreamDecoder } from '../../worker/kv/state-stream-decoder.ts';
import type { KeyRecord, KvCommand, KvState } from '../../worker/kv/types.ts';

// Keys of one to four bytes a character, a BOM and an astral character among them.
const KEY_CHARS = ['a', 'b', 'z', '/', 'é', '中', '\ufeff', '😀', '\u{10348}'];
const BIG_VALUE_CHARS = 70_000; // larger than the largest chunk tried (64 KiB)

function randomText(rnd: SeededRandom, lengthMax: number): string {
  let s = '';
  for (let n = rnd.nextInt(lengthMax + 1); n > 0; n--) s += KEY_CHARS[rnd.nextInt(KEY_CHARS.length)]!;
  return s;
}

/** A state machine with `keys` random puts (some empty values, a few larger than a chunk),
 *  deletes among them, and stamped commands so the state has sessions. */
function buildState(rnd: SeededRandom, keys: number, bigValues: number): { kv: KvStateMachine; index: number } {
  const kv = new KvStateMachine();
  let index = 0;
  const seqs = new Map<string, number>();
  const apply = (cmd: KvCommand): void => {
    const result = kv.apply(++index, cmd);
    expect(result.ok, JSON.stringify(result)).toBe(true);
  };
  for (let i = 0; i < keys; i++) {
    const key = `${randomText(rnd, 6)}${i % 7 === 0 ? '' : 'k'}${i}`;
    const roll = rnd.nextInt(10);
    const value = roll === 0 ? '' : randomText(rnd, 12);
    const cmd: KvCommand = { op: 'put', pairs: [[key, value]] };
    if (rnd.nextInt(4) === 0) {
      const client = `client-${rnd.nextInt(5)}`;
      const seq = (seqs.get(client) ?? 0) + 1;
      seqs.set(client, seq);
      cmd.stamp = { client, seq };
    }
    apply(cmd);
    if (rnd.nextInt(8) === 0) apply({ op: 'delete', keys: [key] });
  }
  for (let i = 0; i < bigValues; i++) {
    const chars = BIG_VALUE_CHARS + rnd.nextInt(1000);
    apply({ op: 'put', pairs: [[`big/${randomText(rnd, 3)}${i}`, (i % 2 === 0 ? 'v' : '😀').repeat(chars / (i % 2 === 0 ? 1 : 2))]] });
  }
  return { kv, index };
}

/** Every chunk of a view, read with a size from `maxBytes` each time. */
function chunkAll(chunker: StateChunker, maxBytes: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (;;) {
    const chunk = chunker.read(offset, maxBytes());
    if (chunk === null) throw new Error(`null at offset ${offset}`);
    chunks.push(chunk.data);
    offset += chunk.data.length;
    if (chunk.done) return chunks;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Random cuts of `bytes` (empty pieces among them). */
function randomSplit(rnd: SeededRandom, bytes: Uint8Array, pieceMax: number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let o = 0; o < bytes.length;) {
    const n = rnd.nextInt(10) === 0 ? 0 : 1 + rnd.nextInt(pieceMax);
    pieces.push(bytes.subarray(o, o + n));
    o += n;
  }
  return pieces;
}

/** Decodes `pieces` with a stream decoder: its records and what finish() says. */
function streamDecode(pieces: Uint8Array[]): KvState & { recordCount: number } {
  const decoder = new StateStreamDecoder();
  const records: Array<[string, KeyRecord]> = [];
  for (const piece of pieces) records.push(...decoder.feed(piece));
  const end = decoder.finish();
  return { revision: end.revision, records, sessions: end.sessions, recordCount: end.recordCount };
}

describe('StateChunker', () => {
  it('chunks concatenate to exactly encodeState’s bytes, whatever the chunk and slice sizes, while commands keep applying', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const rnd = new SeededRandom(seed);
      const built = buildState(rnd, 150 + rnd.nextInt(150), seed % 3);
      const kv = built.kv;
      let index = built.index;
      const expected = encodeState(kv.snapshot());
      expect(kv.snapshot().sessions.length, 'the state has sessions').toBeGreaterThan(0);
      const sizes = [1, 7, 100, 65_536, 0];
      const size = sizes[seed % sizes.length]!;
      const sliceRecords = [1, 3, 1024][seed % 3]!;
      const chunker = new StateChunker(kv.beginView(), { sliceRecords, sliceChars: 1 + rnd.nextInt(50_000) });
      const chunks = chunkAll(chunker, () => {
        // Later commands must not show in the view's bytes.
        if (rnd.nextInt(50) === 0) kv.apply(++index, { op: 'put', pairs: [[randomText(rnd, 4) + 'late', 'x']] });
        return size === 0 ? 1 + rnd.nextInt(3000) : size;
      });
      // Every chunk but the last is as long as asked (a random size is checked by the sum alone).
      if (size !== 0) for (const chunk of chunks.slice(0, -1)) expect(chunk.length).toBe(size);
      expect(Buffer.from(concat(chunks)).equals(Buffer.from(expected)), `seed ${seed}, chunk size ${size}`).toBe(true);
    }
  });

  it('resends the last chunk at its offset, and gives null for any other offset than the next', () => {
    const { kv } = buildState(new SeededRandom(7), 60, 1);
    const expected = encodeState(kv.snapshot());
    const view = kv.beginView();
    const chunker = new StateChunker(view, { sliceRecords: 5 });
    expect(chunker.read(1, 100), 'not 0 before anything was read').toBeNull();
    expect(() => chunker.read(0, 0)).toThrow(RangeError);
    const first = chunker.read(0, 100)!;
    expect(first.data.length).toBe(100);
    expect(chunker.read(0, 100)!.data, 'a resend of the first chunk').toEqual(first.data);
    const second = chunker.read(100, 1000)!;
    expect(Buffer.from(second.data).equals(Buffer.from(expected.subarray(100, 1100)))).toBe(true);
    for (const bad of [0, 99, 101, 1099, 1101, -1, Number.NaN, 2 ** 60]) expect(chunker.read(bad, 1000), `offset ${bad}`).toBeNull();
    expect(chunker.read(100, 7)!.data, 'a resend gives the same bytes, whatever maxBytes says').toEqual(second.data);
    // A stale request did not break the transfer: it goes on from the end of the last chunk.
    const parts = [first.data, second.data];
    let offset = 1100;
    let last = second;
    while (!last.done) {
      last = chunker.read(offset, 64 * 1024)!;
      expect(last).not.toBeNull();
      parts.push(last.data);
      offset += last.data.length;
    }
    expect(Buffer.from(concat(parts)).equals(Buffer.from(expected))).toBe(true);
    expect(() => view.next(1), 'done closes the view').toThrow(/after close/);
    expect(chunker.read(offset, 100), 'nothing after the end').toBeNull();
    expect(chunker.read(0, 100)).toBeNull();
    expect(chunker.read(offset - last.data.length, 100)!.data, 'the last chunk again').toEqual(last.data);
    chunker.close();
    expect(chunker.read(offset - last.data.length, 100), 'closed').toBeNull();
  });

  it('close() closes the view; an empty state is head and tail alone', () => {
    const kv = new KvStateMachine();
    const view = kv.beginView();
    const chunker = new StateChunker(view);
    expect(chunker.read(0, 2)!.done).toBe(false);
    chunker.close();
    expect(() => view.next(1)).toThrow(/after close/);
    expect(chunker.read(2, 2)).toBeNull();
    const whole = new StateChunker(kv.beginView()).read(0, 1 << 20)!;
    expect(whole.done).toBe(true);
    expect(whole.data).toEqual(encodeState(kv.snapshot()));
  });
});

describe('StateStreamDecoder', () => {
  it('yields exactly decodeState’s records, revision and sessions over any split of the bytes', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const rnd = new SeededRandom(100 + seed);
      const { kv } = buildState(rnd, 100 + rnd.nextInt(200), seed % 3);
      const bytes = encodeState(kv.snapshot());
      const expected = decodeState(bytes);
      for (const pieceMax of [1, 7, 100, 65_536]) {
        const got = streamDecode(randomSplit(rnd, bytes, pieceMax));
        expect(got.records, `seed ${seed}, pieces up to ${pieceMax}`).toEqual(expected.records);
        expect(got.revision).toBe(expected.revision);
        expect(got.sessions).toEqual(expected.sessions);
        expect(got.recordCount).toBe(expected.records.length);
      }
      expect(streamDecode([bytes]).records).toEqual(expected.records);
    }
  });

  it('decodes straight from a chunker, handing records out before the last chunk', () => {
    const rnd = new SeededRandom(5);
    const { kv } = buildState(rnd, 2000, 2);
    const expected = decodeState(encodeState(kv.snapshot()));
    const chunker = new StateChunker(kv.beginView(), { sliceRecords: 64 });
    const decoder = new StateStreamDecoder();
    const records: Array<[string, KeyRecord]> = [];
    let offset = 0;
    let recordsBeforeLastChunk = 0;
    for (;;) {
      const chunk = chunker.read(offset, 4096)!;
      records.push(...decoder.feed(chunk.data));
      offset += chunk.data.length;
      if (chunk.done) break;
      recordsBeforeLastChunk = records.length;
    }
    expect(recordsBeforeLastChunk).toBeGreaterThan(expected.records.length / 2);
    expect(records).toEqual(expected.records);
    expect(decoder.finish().sessions).toEqual(expected.sessions);
  });

  it('holds only the bytes of the record it is in the middle of', () => {
    const rnd = new SeededRandom(9);
    const { kv } = buildState(rnd, 300, 3);
    const state = kv.snapshot();
    const bytes = encodeState(state);
    // Where each record's bytes end, from the encoder itself.
    const head = StateStreamEncoder.head(state.revision, state.records.length).length;
    const encoder = new StateStreamEncoder(state.records.length);
    const recordEnds: number[] = [];
    let end = head;
    for (const record of state.records) recordEnds.push((end += encoder.slice([record]).length));
    const tailBytes = bytes.length - end;
    const atRecordEnd = new Set(recordEnds);
    for (const pieceMax of [1, 7, 100, 65_536]) {
      const decoder = new StateStreamDecoder();
      let fed = 0;
      let maxBuffered = 0;
      let unit = 0; // the record the bytes fed so far end in
      for (const piece of randomSplit(rnd, bytes, pieceMax)) {
        decoder.feed(piece);
        fed += piece.length;
        while (unit < recordEnds.length && recordEnds[unit]! <= fed) unit++;
        const buffered = decoder.bufferedBytes;
        maxBuffered = Math.max(maxBuffered, buffered);
        if (fed === head || atRecordEnd.has(fed)) {
          expect(buffered, `at the end of a record (${fed})`).toBe(0);
        } else if (fed < head) {
          expect(buffered).toBeLessThanOrEqual(head);
        } else if (unit < recordEnds.length) {
          const unitBytes = recordEnds[unit]! - (unit === 0 ? head : recordEnds[unit - 1]!);
          expect(buffered, `within record ${unit} at ${fed}, pieces up to ${pieceMax}`).toBeLessThanOrEqual(unitBytes);
        } else {
          expect(buffered).toBeLessThanOrEqual(tailBytes);
        }
      }
      expect(decoder.bufferedBytes).toBe(0);
      expect(maxBuffered, 'a large value is buffered while it arrives').toBeGreaterThan(pieceMax === 65_536 ? 1000 : 0);
      expect(maxBuffered).toBeLessThan(2 * 4 * BIG_VALUE_CHARS);
      decoder.finish();
    }
  });

  it('refuses truncation, trailing bytes, fewer records than announced and broken invariants with KvCodecError', () => {
    const rnd = new SeededRandom(3);
    const { kv } = buildState(rnd, 40, 0);
    const state = kv.snapshot();
    const bytes = encodeState(state);
    const refused = (pieces: Uint8Array[], message: RegExp): void => {
      const decoder = new StateStreamDecoder();
      let error: unknown = null;
      try {
        for (const piece of pieces) decoder.feed(piece);
        decoder.finish();
      } catch (e) {
        error = e;
      }
      expect(error, String(error)).toBeInstanceOf(KvCodecError);
      expect((error as Error).message).toMatch(message);
      // Once failed, always failed.
      if (!/ended/.test((error as Error).message)) expect(() => decoder.feed(new Uint8Array(1))).toThrow(KvCodecError);
    };
    for (let cut = 0; cut < bytes.length; cut += 1 + rnd.nextInt(20)) refused([bytes.subarray(0, cut)], /ended/);
    refused([bytes.subarray(0, bytes.length - 1)], /ended after \d+ of its sessions/);
    refused([bytes, new Uint8Array([0])], /1 trailing bytes/);
    refused(randomSplit(rnd, concat([bytes, new Uint8Array(5)]), 9), /trailing bytes/);

    const rec = (value: string, createRevision: number, modRevision: number, version: number): KeyRecord => ({
      value,
      createRevision,
      modRevision,
      version,
    });
    const slice = (...records: Array<[string, KeyRecord]>): Uint8Array => new StateStreamEncoder(records.length).slice(records);
    const tail = new StateStreamEncoder(0).tail([]);
    const good = slice(['a', rec('1', 1, 2, 2)]);
    expect(streamDecode([StateStreamEncoder.head(2, 1), good, tail]).records).toEqual([['a', rec('1', 1, 2, 2)]]);
    refused([StateStreamEncoder.head(2, 2), good], /ended after 1 of its 2 records/);
    refused([StateStreamEncoder.head(2, 2), good, tail], /not strictly sorted/); // the tail read as a record with key ''
    refused([StateStreamEncoder.head(2, 2), good, good, tail], /not strictly sorted/);
    refused([StateStreamEncoder.head(2, 2), slice(['b', rec('', 1, 1, 1)]), good, tail], /not strictly sorted/);
    refused([StateStreamEncoder.head(1, 1), good, tail], /revision invariants/); // modRevision above the state's
    refused([StateStreamEncoder.head(2, 1), slice(['a', rec('', 2, 1, 1)]), tail], /revision invariants/);
    refused([StateStreamEncoder.head(2, 1), slice(['a', rec('', 0, 1, 1)]), tail], /revision invariants/);
    refused([StateStreamEncoder.head(2, 1), slice(['a', rec('', 1, 1, 0)]), tail], /revision invariants/);
    refused([new Uint8Array([0x54])], /bad magic/);
    refused([new Uint8Array([0x53, 2])], /unknown state format version 2/);
    refused([StateStreamEncoder.head(2, 1), new Uint8Array([0x80, 0x00])], /non-minimal/);
    refused([StateStreamEncoder.head(2, 1), new Uint8Array([2, 0xc3, 0x28])], /UTF-8/);
  });

  it('refuses a record or session longer than unitBytesMax at once, and more sessions than sessionsMax', () => {
    // A key length of 3,000,000: refused before its bytes are waited for.
    const decoder = new StateStreamDecoder();
    expect(() => decoder.feed(concat([StateStreamEncoder.head(1, 1), new Uint8Array([0xc0, 0x8d, 0xb7, 0x01])]))).toThrow(
      /more than \d+ bytes/,
    );
    expect(decoder.bufferedBytes).toBe(0);
    // With a limit of 64 bytes: a record of 56 passes, one of 76 is refused whether it comes
    // whole or cut (what is refused must not depend on the cuts).
    const fits: [string, KeyRecord] = ['a', { value: 'x'.repeat(50), createRevision: 1, modRevision: 1, version: 1 }];
    const tooLong = new StateStreamEncoder(1).slice([['b', { value: 'x'.repeat(70), createRevision: 1, modRevision: 1, version: 1 }]]);
    for (const cut of [tooLong.length, 1, 40]) {
      const small = new StateStreamDecoder({ unitBytesMax: 64 });
      expect(small.feed(concat([StateStreamEncoder.head(1, 2), new StateStreamEncoder(1).slice([fits])]))).toEqual([fits]);
      expect(() => {
        small.feed(tooLong.subarray(0, cut));
        small.feed(tooLong.subarray(cut));
      }, `cut at ${cut}`).toThrow(/more than 64 bytes/);
      expect(small.bufferedBytes).toBe(0);
    }
    const session = { seq: 1, lastIndex: 1, result: { ok: true as const, op: 'put' as const, revision: 1 } };
    const threeSessions = new StateStreamEncoder(0).tail([
      ['a', session],
      ['b', session],
      ['c', session],
    ]);
    const few = new StateStreamDecoder({ sessionsMax: 2 });
    expect(() => few.feed(concat([StateStreamEncoder.head(1, 0), threeSessions]))).toThrow(/3 sessions, above the limit of 2/);
    expect(new StateStreamDecoder({ sessionsMax: 3 }).feed(concat([StateStreamEncoder.head(1, 0), threeSessions]))).toEqual([]);
  });

  it('fuzz: mutated and random bytes give KvCodecError or exactly decodeState’s answer, nothing else', () => {
    const rnd = new SeededRandom(11);
    const { kv } = buildState(rnd, 25, 0);
    const valid = encodeState(kv.snapshot());
    let refusedCount = 0;
    for (let i = 0; i < 400; i++) {
      let bytes: Uint8Array;
      const kind = i % 5;
      if (kind === 4) {
        bytes = new Uint8Array(rnd.nextInt(200)).map(() => rnd.nextInt(256));
        if (bytes.length > 0 && rnd.nextInt(2) === 0) bytes[0] = 0x53;
        if (bytes.length > 1 && rnd.nextInt(2) === 0) bytes[1] = 1;
      } else {
        const copy = Array.from(valid);
        for (let m = 1 + rnd.nextInt(3); m > 0; m--) {
          const at = rnd.nextInt(copy.length);
          if (kind === 0)
            copy[at] = rnd.nextInt(256); // a changed byte
          else if (kind === 1)
            copy[at] = copy[at]! ^ (1 << rnd.nextInt(8)); // a flipped bit
          else if (kind === 2)
            copy.splice(at, 1 + rnd.nextInt(3)); // bytes dropped
          else copy.splice(at, 0, rnd.nextInt(256)); // a byte inserted
        }
        bytes = new Uint8Array(copy);
      }
      let expected: KvState | null = null;
      try {
        expected = decodeState(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(KvCodecError);
      }
      let got: (KvState & { recordCount: number }) | null = null;
      try {
        got = streamDecode(randomSplit(rnd, bytes, 1 + rnd.nextInt(40)));
      } catch (e) {
        expect(e, `mutation ${i}: ${String(e)}`).toBeInstanceOf(KvCodecError);
      }
      if (expected === null) {
        expect(got, `mutation ${i}: decodeState refused it`).toBeNull();
        refusedCount++;
      } else {
        expect(got, `mutation ${i}: decodeState took it`).not.toBeNull();
        expect(got!.records).toEqual(expected.records);
        expect(got!.sessions).toEqual(expected.sessions);
        expect(got!.revision).toBe(expected.revision);
      }
    }
    expect(refusedCount, 'most mutations are refused').toBeGreaterThan(200);
  });
});
