// The portable key encoding (worker/kv/key-bytes.ts, the edge's records table) is byte for byte
// the sqlite engine's (node-runtime/storage/sqlite-key.ts), round-trips every code unit, and
// sorts as JavaScript sorts strings.

import { describe, expect, it } from 'vitest';
import { decodeKey, encodeKey } from '../../worker/kv/key-bytes.ts';
import * as nodeKey from '../../node-runtime/storage/sqlite-key.ts';
import { SeededRandom } from '../../worker/raft/random.ts';

const KEYS = ['', 'a', 'a/b', '\u0000', '\u00e9', '\ud7ff', '\ud800', '\udc00', 'x\ud83d', '\u{1F600}z', '\u{10FFFF}', '\ue000', '\uffff'];

function memcmp(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

describe('key bytes', () => {
  it('match the sqlite engine and round-trip, for keys from every region and a long one', () => {
    const long = Array.from({ length: 10_000 }, (_, i) => String.fromCharCode((i * 7919) % 0x10000)).join('');
    for (const key of [...KEYS, long]) {
      const bytes = encodeKey(key);
      expect(Buffer.from(bytes).equals(nodeKey.encodeKey(key))).toBe(true);
      expect(decodeKey(bytes)).toBe(key);
    }
    expect(() => decodeKey(new Uint8Array(3))).toThrow(RangeError);
  });

  it('memcmp of the bytes is JavaScript string order', () => {
    const rnd = new SeededRandom(3);
    const keys = [...KEYS];
    for (let i = 0; i < 300; i++) keys.push(String.fromCharCode(...Array.from({ length: rnd.nextInt(4) }, () => rnd.nextInt(0x10000))));
    const js = [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const byBytes = [...keys].sort((a, b) => memcmp(encodeKey(a), encodeKey(b)));
    expect(byBytes).toEqual(js);
  });
});
