// The sqlite engine's key codec (sqlite-key.ts): every code unit survives the round trip, and
// byte order of the encoded keys (SQLite's memcmp of BLOBs) is JavaScript's string order, the
// one the state machine ranges in; UTF-8 bytes, compared the same way, are shown to fail it.

import { describe, expect, it } from 'vitest';
import { decodeKey, encodeKey } from '../../node-runtime/storage/sqlite-key.ts';
import { SeededRandom } from '../../worker/raft/random.ts';

/** Code units from every region whose order differs between UTF-8 and UTF-16. */
function randomKey(rnd: SeededRandom): string {
  const units: number[] = [];
  for (let n = rnd.nextInt(6); n > 0; n--) {
    switch (rnd.nextInt(6)) {
      case 0:
        units.push(rnd.nextInt(0x80)); // ASCII, NUL included
        break;
      case 1:
        units.push(0x80 + rnd.nextInt(0xd800 - 0x80)); // BMP below the surrogates
        break;
      case 2:
        units.push(0xe000 + rnd.nextInt(0x10000 - 0xe000)); // private use .. U+FFFF
        break;
      case 3: {
        const cp = 0x10000 + rnd.nextInt(0x100000); // astral: a surrogate pair
        units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
        break;
      }
      case 4:
        units.push(0xd800 + rnd.nextInt(0x800)); // a lone surrogate (high or low)
        break;
      default:
        units.push(0x61 + rnd.nextInt(3)); // a few letters, so keys share prefixes
    }
  }
  return String.fromCharCode(...units);
}

const jsOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The first pair of `keys` (sorted in JS order) whose encodings are not in the same order, or null. */
function orderMismatch(keys: string[], encode: (k: string) => Buffer): string | null {
  const sorted = [...new Set(keys)].sort(jsOrder);
  const byBytes = [...sorted].sort((a, b) => Buffer.compare(encode(a), encode(b)));
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i] !== byBytes[i]) return `${JSON.stringify(sorted[i])} vs ${JSON.stringify(byBytes[i])} at ${i}`;
  }
  return null;
}

describe('sqlite key codec', () => {
  it('round-trips every code unit, lone surrogates and NUL included', () => {
    const every = String.fromCharCode(...Array.from({ length: 0x10000 }, (_, u) => u));
    const enc = encodeKey(every);
    expect(enc.length).toBe(2 * 0x10000);
    expect(enc.readUInt16BE(2 * 0xd800)).toBe(0xd800); // big-endian, unreplaced
    expect(decodeKey(enc)).toBe(every);
    for (let u = 0; u < 0x10000; u++) {
      const k = `k${String.fromCharCode(u)}`;
      if (decodeKey(encodeKey(k)) !== k) throw new Error(`code unit ${u.toString(16)} did not survive`);
    }
    const pairs = '\u{1F600}\u{10FFFF}\u{10000}';
    expect(decodeKey(encodeKey(pairs))).toBe(pairs);
    expect(decodeKey(encodeKey(''))).toBe('');
  });

  it('decodes in place without touching a shared buffer otherwise', () => {
    const enc = encodeKey('a\uE000');
    const copy = Buffer.from(enc);
    expect(decodeKey(enc)).toBe('a\uE000');
    expect(enc).toEqual(copy);
    expect(decodeKey(enc, true)).toBe('a\uE000');
    expect(() => decodeKey(new Uint8Array(3))).toThrow(RangeError);
  });

  it('orders encoded keys (memcmp) exactly as JavaScript orders the strings', () => {
    const rnd = new SeededRandom(14);
    for (let round = 0; round < 20; round++) {
      const keys = Array.from({ length: 500 }, () => randomKey(rnd));
      keys.push('', '\uE000', '\u{1F600}', '\uFFFF', '\uD800', '\uDBFF\uDFFF');
      expect(orderMismatch(keys, encodeKey)).toBeNull();
    }
  });

  it('the order check fails for UTF-8 (the planted bug: a TEXT column)', () => {
    const rnd = new SeededRandom(14);
    const keys = Array.from({ length: 500 }, () => randomKey(rnd));
    expect(orderMismatch(keys, (k) => Buffer.from(k, 'utf8'))).not.toBeNull();
    // The documented case: U+E000 sorts after U+1F600 in JS, before it in UTF-8.
    expect(orderMismatch(['\uE000', '\u{1F600}'], (k) => Buffer.from(k, 'utf8'))).not.toBeNull();
  });
});
