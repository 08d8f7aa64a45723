// The Bloom filter of stored keys (key-filter.ts): never "not held" for a key added, from a
// string or from its stored UTF-16BE bytes alike (the reader thread builds from bytes, the
// event loop adds and asks with strings); false positives near what its size promises; a
// filter built elsewhere merged in; when it counts as full; and a growing one, which takes
// keys past that in new parts.

import { describe, expect, it } from 'vitest';
import { GrowingKeyFilter, KeyFilter, filterBitsFor } from '../../node-runtime/storage/key-filter.ts';
import { encodeKey } from '../../node-runtime/storage/sqlite-key.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import { KEY_POOL } from '../support/disk-check.ts';

/** A random key of 1–20 code units, any of them (lone surrogates included). */
function randomKey(rnd: SeededRandom): string {
  let s = '';
  for (let n = 1 + rnd.nextInt(20); n > 0; n--)
    s += String.fromCharCode(rnd.nextInt(4) === 0 ? rnd.nextInt(0x10000) : 0x20 + rnd.nextInt(0x5f));
  return s;
}

describe('KeyFilter', () => {
  it('holds every key added, from its string or its UTF-16BE bytes, and the two hash alike', () => {
    const rnd = new SeededRandom(5);
    const keys = [...KEY_POOL, ...Array.from({ length: 20_000 }, () => randomKey(rnd))];
    const fromStrings = new KeyFilter(filterBitsFor(keys.length));
    const fromBytes = new KeyFilter(filterBitsFor(keys.length));
    for (const k of keys) {
      fromStrings.add(k);
      const stored = Buffer.concat([Buffer.from([0x52, 0]), encodeKey(k)]); // R<gen><key>, as LevelDB holds it
      fromBytes.addUtf16be(stored, 2);
    }
    for (const k of keys) {
      expect(fromStrings.mayHold(k), k).toBe(true);
      expect(fromBytes.mayHold(k), k).toBe(true);
    }
    expect(Buffer.from(fromBytes.words.buffer).equals(Buffer.from(fromStrings.words.buffer))).toBe(true);
  });

  it('answers "maybe" for about 0.2% of keys never added when holding what it was sized for', () => {
    const rnd = new SeededRandom(9);
    const n = 50_000;
    const filter = new KeyFilter(filterBitsFor(n));
    for (let i = 0; i < n; i++) filter.add(`key/${i}`);
    let maybe = 0;
    const asked = 100_000;
    for (let i = 0; i < asked; i++) if (filter.mayHold(`other/${i}/${rnd.nextInt(1000)}`)) maybe++;
    // filterBitsFor gives 14 bits a key: 0.15% false positives.
    expect(maybe / asked).toBeLessThan(0.004);
    expect(maybe).toBeGreaterThan(0); // it is a filter, not a set: the bound above can fail
    expect(filter.full).toBe(false);
  });

  it('merges a filter built elsewhere; is full past 12 bits a key; refuses sizes that are not whole words', () => {
    const a = new KeyFilter(1 << 16);
    const b = new KeyFilter(1 << 16);
    a.add('one');
    b.add('two');
    a.merge(b.words, b.keys);
    expect([a.mayHold('one'), a.mayHold('two')]).toEqual([true, true]);
    expect(a.keys).toBe(2);
    expect(() => a.merge(new Uint32Array(8), 1)).toThrow(/merging 8 words/);
    for (let i = 2; i < Math.floor((1 << 16) / 12); i++) a.add(`k${i}`);
    expect(a.full).toBe(false); // 12 bits a key or a little more
    a.add('one more');
    expect(a.full).toBe(true);
    expect(() => new KeyFilter(1000)).toThrow(/whole 32-bit words/);
    expect(filterBitsFor(0)).toBe(1 << 20);
    expect(filterBitsFor(1_000_000)).toBe(14_000_000);
  });

  it('a growing filter holds every key added past its first part, in few parts, with few false positives', () => {
    const filter = new GrowingKeyFilter(new KeyFilter(1 << 16)); // full at 8,192 keys
    const n = 300_000;
    for (let i = 0; i < n; i++) filter.add(`grown/${i}`);
    for (let i = 0; i < n; i++) if (!filter.mayHold(`grown/${i}`)) throw new Error(`grown/${i} not held`);
    // Parts of 2^16, 2^18, 2^20, 2^22 bits: full at 5.5k, 22k, 87k, 350k keys (12 bits a key).
    expect(filter.partCount).toBe(4);
    expect(filter.bits).toBe((1 << 16) + (1 << 18) + (1 << 20) + (1 << 22));
    let maybe = 0;
    for (let i = 0; i < 100_000; i++) if (filter.mayHold(`never/${i}`)) maybe++;
    expect(maybe / 100_000).toBeLessThan(0.015); // three closed parts at 0.3% each, the last emptier
  });
});
