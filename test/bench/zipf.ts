// Zipfian key choice for the scale phase's reads: rank r (0 = the most popular) of n items is
// drawn with probability (r + 1)^-s / zeta(n, s), zeta(n, s) = sum over i = 1..n of i^-s.
//
// The sampler is rejection-inversion (Hörmann and Derflinger, "Rejection-inversion to generate
// variates from monotone discrete distributions", ACM TOMACS 6(3), 1996), in the form Apache
// Commons RNG gives it (an integral of the hat function with a limit at s = 1, so every s > 0
// works): exact, constant expected time per draw, no O(n) set-up. Not the method of Gray et
// al. ("Quickly generating billion-record synthetic databases", SIGMOD 1994) that YCSB uses:
// that one is exact only for the first two ranks and approximates the rest, drawing the third
// item about 18% too often at s = 0.99 (measured with 2 M draws at n = 1000 and 100,000).

import { SeededRandom } from '../../worker/raft/random.ts';

/** zeta(n, s) = sum over i = 1..n of 1 / i^s (one pass; for expected frequencies, not sampling). */
export function zeta(n: number, s: number): number {
  let sum = 0;
  for (let i = 1; i <= n; i++) sum += 1 / Math.pow(i, s);
  return sum;
}

/** The probability of rank r (0-based) under Zipf(n, s); `zetaN` = zeta(n, s). */
export function zipfProbability(rank: number, s: number, zetaN: number): number {
  return 1 / Math.pow(rank + 1, s) / zetaN;
}

/** log1p(x) / x, continuous at 0. */
const log1pOverX = (x: number): number => (Math.abs(x) > 1e-8 ? Math.log1p(x) / x : 1 - x * (1 / 2 - x * (1 / 3 - x / 4)));
/** expm1(x) / x, continuous at 0. */
const expm1OverX = (x: number): number => (Math.abs(x) > 1e-8 ? Math.expm1(x) / x : 1 + (x / 2) * (1 + (x / 3) * (1 + x / 4)));

export class ZipfSampler {
  readonly n: number;
  readonly s: number;
  private readonly random: SeededRandom;
  /** H(1.5) - 1 and H(n + 0.5): the range the uniform variate is drawn from. */
  private readonly hLow: number;
  private readonly hHigh: number;
  /** Below this distance from the rounded value a candidate is accepted without the test. */
  private readonly squeeze: number;

  constructor(n: number, s: number, seed: number) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`Zipf needs n ≥ 1 items, got ${n}`);
    if (!(s > 0)) throw new RangeError(`Zipf needs an exponent s > 0, got ${s}`);
    this.n = n;
    this.s = s;
    this.random = new SeededRandom(seed);
    this.hLow = this.hIntegral(1.5) - 1;
    this.hHigh = this.hIntegral(n + 0.5);
    this.squeeze = 2 - this.hIntegralInverse(this.hIntegral(2.5) - this.h(2));
  }

  /** The next rank in [0, n): 0 is the most frequent. */
  next(): number {
    for (;;) {
      // u uniform in (hLow, hHigh]; its inverse image x lies in (0.5, n + 0.5].
      const u = this.hHigh + this.random.nextFloat() * (this.hLow - this.hHigh);
      const x = this.hIntegralInverse(u);
      const k = Math.min(this.n, Math.max(1, Math.round(x)));
      if (k - x <= this.squeeze || u >= this.hIntegral(k + 0.5) - this.h(k)) return k - 1;
    }
  }

  /** The hat function x^-s. */
  private h(x: number): number {
    return Math.exp(-this.s * Math.log(x));
  }

  /** H(x) = (x^(1-s) - 1) / (1 - s), the integral of h from 1 (log x at s = 1). */
  private hIntegral(x: number): number {
    const logX = Math.log(x);
    return expm1OverX((1 - this.s) * logX) * logX;
  }

  private hIntegralInverse(y: number): number {
    const t = Math.max(-1, y * (1 - this.s));
    return Math.exp(log1pOverX(t) * y);
  }
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** (a × b) mod n for a, b < n < 2^32, without leaving the doubles' exact integers (2^53). */
function mulMod(a: number, b: number, n: number): number {
  const hi = Math.floor(b / 65536);
  const lo = b % 65536;
  return (((a * hi) % n) * 65536 + a * lo) % n;
}

/**
 * Rank → item index, a bijection on [0, n): multiplication mod n by the integer nearest n/φ
 * that is coprime to n (Fibonacci hashing), so the popular items lie scattered over the key
 * space rather than side by side in its first pages, as YCSB's ScrambledZipfianGenerator
 * scatters them (that one hashes, and collides; this keeps the distribution over items exactly
 * the one over ranks).
 */
export function rankSpreader(n: number): (rank: number) => number {
  if (!(Number.isInteger(n) && n >= 1 && n < 2 ** 32)) throw new RangeError(`rankSpreader needs 1 ≤ n < 2^32, got ${n}`);
  let m = Math.max(1, Math.round(n * 0.6180339887498949));
  while (gcd(m, n) !== 1) m++;
  const multiplier = m % n;
  return (rank) => mulMod(rank, multiplier, n);
}
