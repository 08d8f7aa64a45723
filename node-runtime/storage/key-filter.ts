// A Bloom filter over keys: "surely not stored" without a disk read. A tiered store looks up
// every key a write names before applying it (its version, its create revision), and most keys
// a write names are new; LevelDB answers such a lookup only after its memtable, the bloom
// filters of its tables and, each time, a charge against the tables' seek budgets, which then
// compact. This answers it in memory, in about a microsecond.
//
// Bloom, "Space/time trade-offs in hash coding with allowable errors" (CACM 1970); k probes by
// double hashing (Kirsch and Mitzenmacher, "Less hashing, same performance", 2006) as LevelDB's
// own filter does. A key's hash is over its UTF-16 code units, so the same key hashes alike from
// a string (the event loop) and from its stored bytes, UTF-16BE (the reader thread that builds
// the filter from the table: leveldb-layout.ts). There is no delete: a deleted key may still
// "maybe" be stored, which costs a disk read, never a wrong answer.

// A filter outgrown takes more keys in a new part four times its size (Almeida et al.,
// "Scalable Bloom Filters", 2007: GrowingKeyFilter), rather than a rebuild, which would walk
// every stored key again.
//
// False positives matter beyond their own read: LevelDB compacts a table after enough reads
// passed through it without finding their key ("seek compaction"), so each one costs
// compaction work later. Hence 14 bits a key (0.1%), and a part is closed at 12 (0.3%).

/** Probes per key: fewer than the optimum (ln 2 × bits per key, 8–10 here), which would
 *  lower false positives little for the extra probes. */
const PROBES = 7;
const BITS_PER_KEY = 14;
const MIN_BITS_PER_KEY = 12;
/** 128 KiB: what 87,000 keys need; little next to a node's memory. */
const MIN_BITS = 1 << 20;
/** 2^31 bits (256 MiB) at most: far beyond any key count a node's quota admits. */
const MAX_BITS = 2 ** 31;

/** The bits to use for `keys` keys (BITS_PER_KEY each, whole 32-bit words). */
export function filterBitsFor(keys: number): number {
  return Math.min(MAX_BITS, Math.max(MIN_BITS, Math.ceil((keys * BITS_PER_KEY) / 32) * 32));
}

const fmix32 = (h: number): number => {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
};

/** FNV-1a over the code units, mixed (FNV alone spreads short keys poorly). */
function hashString(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return fmix32(h);
}

/** hashString of the key whose UTF-16BE bytes are `bytes[from..]`. */
function hashUtf16be(bytes: Uint8Array, from: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i + 1 < bytes.length; i += 2) h = Math.imul(h ^ ((bytes[i]! << 8) | bytes[i + 1]!), 0x01000193);
  return fmix32(h);
}

export class KeyFilter {
  readonly bits: number;
  /** The bit array (bits / 32 words); a built one's words are OR-ed in (merge). */
  readonly words: Uint32Array;
  /** Keys added (those merged in counted by the builder): when the filter is too full. */
  keys = 0;

  constructor(bits: number, words = new Uint32Array(bits / 32)) {
    if (!Number.isSafeInteger(bits) || bits < 32 || bits % 32 !== 0 || bits > MAX_BITS) {
      throw new RangeError(`KeyFilter: bits must be whole 32-bit words, 32..2^31, got ${bits}`);
    }
    if (words.length !== bits / 32) throw new RangeError(`KeyFilter: ${words.length} words for ${bits} bits`);
    this.bits = bits;
    this.words = words;
  }

  add(key: string): void {
    this.set(hashString(key));
  }

  /** Adds the key stored as UTF-16BE in `bytes` from `from` on. */
  addUtf16be(bytes: Uint8Array, from: number): void {
    this.set(hashUtf16be(bytes, from));
  }

  /** False: `key` was never added. True: it may have been. */
  mayHold(key: string): boolean {
    let h = hashString(key);
    const delta = (h >>> 17) | (h << 15) | 1;
    for (let j = 0; j < PROBES; j++) {
      const bit = (h >>> 0) % this.bits;
      if ((this.words[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
      h = (h + delta) | 0;
    }
    return true;
  }

  /** Adds every key of `other` (a filter of the same size, built elsewhere). */
  merge(other: Uint32Array, keys: number): void {
    if (other.length !== this.words.length) throw new RangeError(`KeyFilter: merging ${other.length} words into ${this.words.length}`);
    for (let i = 0; i < other.length; i++) this.words[i]! |= other[i]!;
    this.keys += keys;
  }

  /** Whether it holds more keys than it was sized for (it answers "maybe" more often). */
  get full(): boolean {
    return this.keys * MIN_BITS_PER_KEY > this.bits && this.bits < MAX_BITS;
  }

  private set(h: number): void {
    const delta = (h >>> 17) | (h << 15) | 1;
    for (let j = 0; j < PROBES; j++) {
      const bit = (h >>> 0) % this.bits;
      this.words[bit >>> 5]! |= 1 << (bit & 31);
      h = (h + delta) | 0;
    }
    this.keys++;
  }
}

/** Parts of a GrowingKeyFilter grow by this factor: few parts to probe (5 from none to 20M
 *  keys), each about 0.3% false positives when closed. */
const GROWTH = 4;

/** A KeyFilter that takes any number of keys: once its last part is full, keys go to a new one
 *  GROWTH times larger; a key may be held if any part may hold it. */
export class GrowingKeyFilter {
  private readonly parts: KeyFilter[];

  constructor(first: KeyFilter) {
    this.parts = [first];
  }

  /** The first part: where a filter built elsewhere, of its size, is merged. */
  get first(): KeyFilter {
    return this.parts[0]!;
  }

  get bits(): number {
    return this.parts.reduce((n, p) => n + p.bits, 0);
  }

  get partCount(): number {
    return this.parts.length;
  }

  add(key: string): void {
    let last = this.parts[this.parts.length - 1]!;
    if (last.full) {
      last = new KeyFilter(Math.min(last.bits * GROWTH, MAX_BITS));
      this.parts.push(last);
    }
    last.add(key);
  }

  mayHold(key: string): boolean {
    for (const p of this.parts) if (p.mayHold(key)) return true;
    return false;
  }
}
