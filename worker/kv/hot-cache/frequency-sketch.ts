// TinyLFU's frequency half: how often each key was asked for lately, estimated in a few bytes
// per cached entry. A count-min sketch of 4-bit counters (saturating at 15), four counters per
// key, updated conservatively (only the counters at the key's current minimum grow, which
// keeps collisions from inflating estimates). "Lately" is the reset of the TinyLFU paper: after
// a sample of additions (10 per entry the sketch is sized for) every counter is halved, so old
// popularity fades; the halving touches the whole table once per sample, O(1) amortised.
//
// Sized as Caffeine sizes its sketch for a weighted cache: to the number of entries the cache
// holds (16 counters per entry, a power of two), grown when the cache holds more; growing
// starts from zero counts, as Caffeine's does (only while a cache fills).

/** Counters in the table per entry the sketch is sized for. */
const COUNTERS_PER_ENTRY = 16;
/** Additions per sized-for entry before the counters are halved (TinyLFU's sample size W). */
const SAMPLE_PER_ENTRY = 10;
const ENTRIES_MIN = 64;
/** At most this many entries are sized for: 2^22 entries = 2^26 counters = 32 MiB. */
const ENTRIES_MAX = 1 << 22;
const COUNTER_MAX = 15;
/** Each 32-bit word holds 8 four-bit counters. */
const COUNTERS_PER_WORD = 8;
/** The low bit of each 4-bit counter in a word. */
const LOW_BITS = 0x11111111;
/** Each counter halved: the bits that stay after a shift right by one. */
const HALF_MASK = 0x77777777;

/** A string key's 32-bit hash (FNV-1a over UTF-16 code units); the sketch mixes in its seeds. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Murmur3's finaliser: every input bit affects every output bit. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

export class FrequencySketch {
  private table = new Uint32Array(0);
  /** Counters in the table minus one (a power of two minus one). */
  private counterMask = 0;
  private sizedFor = 0;
  private sampleSize = 0;
  private additions = 0;
  private readonly seedA: number;
  private readonly seedB: number;
  /** The four counter positions of the key being looked at (reused: no allocation per call). */
  private readonly slots = new Uint32Array(4);

  constructor(seedA: number, seedB: number) {
    this.seedA = seedA >>> 0;
    this.seedB = seedB >>> 0;
    this.allocate(ENTRIES_MIN);
  }

  /** Size the table for `entries` cached entries if it is smaller (amortised: doubles). */
  ensureCapacity(entries: number): void {
    if (entries > this.sizedFor && this.sizedFor < ENTRIES_MAX) this.allocate(entries);
  }

  /** The estimated number of recent accesses of the key with this hash, 0..15. */
  frequency(hash: number): number {
    this.locate(hash);
    let min = COUNTER_MAX;
    for (let i = 0; i < 4; i++) min = Math.min(min, this.counter(this.slots[i]!));
    return min;
  }

  /** Record one access of the key with this hash. */
  increment(hash: number): void {
    this.locate(hash);
    let min = COUNTER_MAX;
    for (let i = 0; i < 4; i++) min = Math.min(min, this.counter(this.slots[i]!));
    if (min === COUNTER_MAX) return;
    for (let i = 0; i < 4; i++) {
      const slot = this.slots[i]!;
      if (this.counter(slot) === min) this.table[slot >>> 3]! += 1 << ((slot & 7) << 2);
    }
    if (++this.additions >= this.sampleSize) this.reset();
  }

  private allocate(entries: number): void {
    let n = ENTRIES_MIN;
    while (n < entries && n < ENTRIES_MAX) n *= 2;
    this.sizedFor = n;
    this.table = new Uint32Array((n * COUNTERS_PER_ENTRY) / COUNTERS_PER_WORD);
    this.counterMask = n * COUNTERS_PER_ENTRY - 1;
    this.sampleSize = n * SAMPLE_PER_ENTRY;
    this.additions = 0;
  }

  /** Four distinct counter positions by double hashing (the step is odd, the table 2^k). */
  private locate(hash: number): void {
    const h1 = mix32(hash ^ this.seedA);
    const h2 = mix32(hash ^ this.seedB) | 1;
    for (let i = 0; i < 4; i++) this.slots[i] = ((h1 + Math.imul(i, h2)) >>> 0) & this.counterMask;
  }

  private counter(slot: number): number {
    return (this.table[slot >>> 3]! >>> ((slot & 7) << 2)) & 0xf;
  }

  /** Halve every counter; the additions count drops by what the halving took away. */
  private reset(): void {
    let odd = 0;
    for (let w = 0; w < this.table.length; w++) {
      const word = this.table[w]!;
      odd += popcount32(word & LOW_BITS);
      this.table[w] = (word >>> 1) & HALF_MASK;
    }
    // As Caffeine: each addition raised 4 counters at most, so odd/4 additions were truncated.
    this.additions = Math.max(0, (this.additions - (odd >>> 2)) >>> 1);
  }
}
