// The scale phase's Zipf sampler (zipf.ts) against the theory: the head of the distribution
// (the ten most popular ranks, and the mass of the rest) drawn as often as (r + 1)^-s / zeta(n, s)
// says, within sampling noise; a sampler of a wrong exponent is caught by the same check.

import { describe, expect, it } from 'vitest';
import { ZipfSampler, rankSpreader, zeta, zipfProbability } from './zipf.ts';

const HEAD = 10;

/**
 * The largest deviation, in standard deviations of the binomial count, between `draws` draws of
 * `sample` and Zipf(n, s): over each of the first HEAD ranks and the rest taken together.
 */
function headDeviation(sample: () => number, draws: number, n: number, s: number): number {
  const counts = new Array<number>(HEAD + 1).fill(0);
  for (let i = 0; i < draws; i++) {
    const r = sample();
    if (!(Number.isInteger(r) && r >= 0 && r < n)) throw new Error(`rank ${r} out of [0, ${n})`);
    counts[Math.min(r, HEAD)]!++;
  }
  const zetaN = zeta(n, s);
  const expected = Array.from({ length: HEAD }, (_, r) => zipfProbability(r, s, zetaN));
  expected.push(1 - expected.reduce((a, b) => a + b, 0));
  return Math.max(...counts.map((c, k) => Math.abs(c - draws * expected[k]!) / Math.sqrt(draws * expected[k]! * (1 - expected[k]!))));
}

const DRAWS = 200_000;
// Eleven cells: a fair sampler's largest |z| exceeds 4.5 with probability below 1e-4 (and the
// draws are seeded, so a run is reproducible); a wrong exponent is off by dozens.
const Z_MAX = 4.5;

describe('Zipf sampler', () => {
  for (const n of [1000, 100_000, 10_000_000]) {
    it(`s = 0.99 over ${n} items: the head frequencies are the theory's`, () => {
      const z = new ZipfSampler(n, 0.99, 42);
      expect(headDeviation(() => z.next(), DRAWS, n, 0.99)).toBeLessThan(Z_MAX);
    });
  }

  it('other exponents too (the sampler is exact for any s > 0, 1 included)', () => {
    for (const s of [0.5, 1, 1.5]) {
      const z = new ZipfSampler(5000, s, 7);
      expect(headDeviation(() => z.next(), DRAWS, 5000, s)).toBeLessThan(Z_MAX);
    }
  });

  it('the check catches a planted wrong exponent (0.9 or 1.1 drawn, 0.99 claimed)', () => {
    for (const wrong of [0.9, 1.1]) {
      const z = new ZipfSampler(100_000, wrong, 42);
      expect(headDeviation(() => z.next(), DRAWS, 100_000, 0.99)).toBeGreaterThan(10 * Z_MAX);
    }
  });

  it('the check catches a sampler that is right about rank 0 but wrong after it', () => {
    // Rank 0 as often as it should be, the rest uniform: the head is flat, the check says so.
    const z = new ZipfSampler(1000, 0.99, 3);
    const p0 = zipfProbability(0, 0.99, zeta(1000, 0.99));
    let u = 0;
    const flat = (): number => (z.next() === 0 ? 0 : 1 + (u++ % 999));
    expect(p0).toBeGreaterThan(0.1);
    expect(headDeviation(flat, DRAWS, 1000, 0.99)).toBeGreaterThan(10 * Z_MAX);
  });

  it('the same seed draws the same ranks; another seed others', () => {
    const a = new ZipfSampler(1_000_000, 0.99, 1);
    const b = new ZipfSampler(1_000_000, 0.99, 1);
    const c = new ZipfSampler(1_000_000, 0.99, 2);
    const draw = (z: ZipfSampler) => Array.from({ length: 50 }, () => z.next());
    const [da, db, dc] = [draw(a), draw(b), draw(c)];
    expect(da).toEqual(db);
    expect(dc).not.toEqual(da);
  });

  it('refuses what it cannot draw from', () => {
    expect(() => new ZipfSampler(0, 0.99, 1)).toThrow(RangeError);
    expect(() => new ZipfSampler(10, 0, 1)).toThrow(RangeError);
    expect(new ZipfSampler(1, 0.99, 1).next()).toBe(0);
  });
});

describe('rankSpreader', () => {
  it('is a permutation of [0, n), whatever n factors into', () => {
    for (const n of [1, 2, 10, 1000, 2 ** 20, 3 * 5 * 7 * 11 * 13 * 17]) {
      const spread = rankSpreader(n);
      const seen = new Uint8Array(n);
      for (let r = 0; r < n; r++) seen[spread(r)]!++;
      expect(seen.every((x) => x === 1)).toBe(true);
    }
  });

  it('scatters the popular ranks: the first ten are not neighbours', () => {
    expect(() => rankSpreader(2 ** 32)).toThrow(RangeError);
    const spread = rankSpreader(1_000_000);
    const items = Array.from({ length: 10 }, (_, r) => spread(r));
    const sorted = [...items].sort((a, b) => a - b);
    expect(Math.min(...sorted.slice(1).map((x, k) => x - sorted[k]!))).toBeGreaterThan(1000);
  });
});
