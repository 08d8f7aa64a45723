import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../worker/raft/random.ts';
import { readUtf8, utf8Length, writeUtf8 } from '../../worker/kv/utf8.ts';

const te = new TextEncoder();
const UNITS = ['a', 'é', '中', '😀', '\ufeff', '\u0000', '\u07ff', '\uffff'];

function randomWellFormed(rnd: SeededRandom, length: number): string {
  let s = '';
  while (s.length < length) s += UNITS[rnd.nextInt(UNITS.length)]!;
  return s;
}

describe('utf8 helpers', () => {
  it('measure and write exactly what TextEncoder produces, short and long (chunked)', () => {
    const rnd = new SeededRandom(1);
    // Lengths around the loop threshold, and past the 16384-unit chunk with pairs straddling it.
    for (const length of [0, 1, 15, 16, 17, 100, 16383, 16384, 16385, 40000]) {
      for (let t = 0; t < 3; t++) {
        const s = randomWellFormed(rnd, length);
        const expected = te.encode(s);
        expect(utf8Length(s), `length ${length}`).toBe(expected.length);
        const out = new Uint8Array(expected.length + 2);
        expect(writeUtf8(out, 1, s, expected.length)).toBe(1 + expected.length);
        expect(out.subarray(1, 1 + expected.length)).toEqual(expected);
        expect(readUtf8(out, 1, expected.length)).toBe(s);
      }
    }
    // A pair exactly across the chunk boundary.
    const s = 'a'.repeat(16383) + '😀' + 'b';
    expect(utf8Length(s)).toBe(te.encode(s).length);
  });

  it('reports lone surrogates, short and long, anywhere', () => {
    for (const bad of [
      '\ud800',
      'a\udc00',
      '\ud800a',
      'x'.repeat(30) + '\udbff',
      '\udfff' + 'x'.repeat(20000),
      'x'.repeat(16384) + '\ud800',
    ]) {
      expect(utf8Length(bad)).toBe(-1);
    }
  });

  it('keeps a leading byte order mark when reading', () => {
    const bytes = te.encode('\ufeffkey-with-bom-long-enough-for-TextDecoder');
    expect(readUtf8(bytes, 0, bytes.length).charCodeAt(0)).toBe(0xfeff);
    const short = te.encode('\ufeffk');
    expect(readUtf8(short, 0, short.length)).toBe('\ufeffk');
  });
});
