// A bounded cache of hot records, its budget in bytes: the part of the key space kept in memory
// when the storage engine's table is the home of the key space.
//
// The policy is W-TinyLFU: Einziger, Friedman, Manes, "TinyLFU: A Highly Efficient Cache
// Admission Policy", ACM Transactions on Storage 13(4), 2017. Plain LRU lets one sequential scan
// of never-repeated keys (a range read, a snapshot, a bulk load) flush the whole working set;
// W-TinyLFU admits a newcomer to the main cache only if it has been asked for more often lately
// than the entry it would push out.
// - A window LRU (1% of the budget) takes every new entry, so a burst of fresh keys can still
//   hit before it has a frequency.
// - Entries leaving the window are candidates for the main cache, a segmented LRU (probation
//   20%, protected 80%: a probation entry hit again is promoted, protected overflow is demoted
//   back to probation). While the cache is over budget, a candidate is compared with the
//   victim (probation's least recently used entry): the one with the lower estimated frequency
//   goes, the victim keeping ties. Frequencies come from a 4-bit count-min sketch with periodic
//   halving (hot-cache/frequency-sketch.ts). As Caffeine does, a warm candidate (frequency >= 6)
//   that loses is still admitted once in 128, so keys crafted to collide with a hot victim in
//   the sketch cannot shut every newcomer out; no doorkeeper, and no adaptive window.
// Weights are bytes from the caller's weigher; after every call the held bytes are at most the
// budget. Deterministic: the sketch's hash seeds and the jitter are drawn from the random
// source the host passes in (the peer's, seeded in the simulator), as worker/kv never draws its own.
//
// Library or own code: the one W-TinyLFU on npm, `transitory` (2.2.0, October 2025),
// evicts in a deferred maintenance pass on a timer of its own (5 s later: the simulator has no
// timers, and a Node process waits for it), lets the weight exceed the budget by 1% meanwhile,
// draws unseeded randomness, returns null for "absent" (we cache null for "no such
// key"), and its ESM build has directory imports that Node refuses. The other caches found
// either count entries, not bytes (`@neophi/sieve-cache`, SIEVE), or are plain LRU (`lru-cache`,
// `quick-lru`, `tiny-lru`, `mnemonist`). So the policy is written here once.

import { FrequencySketch, hashKey } from './hot-cache/frequency-sketch.ts';
import { CacheEntry, LruList, PROBATION, PROTECTED, WINDOW } from './hot-cache/lru-list.ts';

/** Where the cache draws its hash seeds and admission jitter: the host's random source (the
 *  peer's RandomSource fits), so the same source gives the same cache decisions. */
export interface CacheRandom {
  /** An integer in [0, n). */
  nextInt(n: number): number;
}

/** The window's share of the budget by default (the paper's 1%). */
const WINDOW_SHARE = 0.01;
/** The protected segment's share of the main cache (the paper's 80%). */
const PROTECTED_SHARE = 0.8;
/** A candidate at least this frequent that loses admission is still let in now and then. */
const ADMIT_WARM_FREQUENCY = 6;
const ADMIT_WARM_ODDS = 128;

export interface HotCacheStats {
  hits: number;
  misses: number;
  /** Entries removed to make room (for a candidate that won admission, a heavier value, a smaller budget). */
  evictions: number;
  /** Offers turned away: candidates that lost admission, values heavier than the whole budget. */
  rejected: number;
  entries: number;
  bytes: number;
  capacityBytes: number;
}

export interface HotCacheOptions<V> {
  capacityBytes: number;
  /** An entry's weight in bytes: a positive safe integer, the same for the same key and value. */
  weigh: (key: string, value: V) => number;
  /** Draws the sketch's hash seeds and the admission jitter. */
  random: CacheRandom;
  /** The admission window's share of the budget, 0..1 (default 0.01). Near 1 the policy is
   *  close to plain LRU, at 0 a newcomer must win admission at once. */
  windowShare?: number;
}

export class HotCache<V> {
  private readonly byKey = new Map<string, CacheEntry<V>>();
  private readonly windowList = new LruList<V>();
  private readonly probationList = new LruList<V>();
  private readonly protectedList = new LruList<V>();
  private readonly weigh: (key: string, value: V) => number;
  private readonly sketch: FrequencySketch;
  private readonly random: CacheRandom;
  private readonly windowShare: number;
  private capacityBytes = 0;
  private windowMaxBytes = 0;
  private protectedMaxBytes = 0;
  /** Held bytes, kept apart from the lists' own tallies so each checks the other. */
  private heldBytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private rejected = 0;

  constructor(opts: HotCacheOptions<V>) {
    this.weigh = opts.weigh;
    this.windowShare = opts.windowShare ?? WINDOW_SHARE;
    if (!(this.windowShare >= 0 && this.windowShare <= 1))
      throw new RangeError(`HotCache: windowShare must be in 0..1, got ${opts.windowShare}`);
    this.random = opts.random;
    this.sketch = new FrequencySketch(this.random.nextInt(2 ** 32), this.random.nextInt(2 ** 32));
    this.setBudget(opts.capacityBytes);
  }

  get size(): number {
    return this.byKey.size;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  /** The value, counting a hit or a miss, and recording the access for the policy. */
  get(key: string): V | undefined {
    const entry = this.byKey.get(key);
    this.sketch.increment(entry ? entry.hash : hashKey(key));
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.touch(entry);
    this.checkInvariants();
    return entry.value;
  }

  /** Like get but changes nothing (no stats, no recency): for assertions and views. */
  peek(key: string): V | undefined {
    return this.byKey.get(key)?.value;
  }

  /**
   * Offer a value (after a miss was fetched, or a write): the policy admits or rejects it; an
   * entry already present is replaced in place (its weight may change). An entry heavier than
   * capacityBytes is never admitted (and one present under the key is dropped, never left
   * stale). Returns whether it is now cached. An offer is not an access: the sketch counts
   * `get`s (a miss included), so a miss then its offer count once.
   */
  set(key: string, value: V): boolean {
    const weight = this.weightOf(key, value);
    const entry = this.byKey.get(key);
    if (weight > this.capacityBytes) {
      if (entry) this.remove(entry);
      this.rejected++;
    } else if (entry) {
      entry.value = value;
      this.heldBytes += weight - entry.weight;
      this.listOf(entry).reweigh(entry, weight);
      if (entry.segment === PROTECTED) this.demoteProtectedOverflow();
      this.fit();
    } else {
      const added = new CacheEntry(key, value, weight, hashKey(key));
      this.byKey.set(key, added);
      this.windowList.pushLast(added);
      this.heldBytes += weight;
      this.sketch.ensureCapacity(this.byKey.size);
      this.fit();
    }
    this.checkInvariants();
    return this.byKey.has(key);
  }

  delete(key: string): void {
    const entry = this.byKey.get(key);
    if (entry) this.remove(entry);
    this.checkInvariants();
  }

  /** Forget every entry; the statistics and the access history (the sketch) stay. */
  clear(): void {
    this.byKey.clear();
    this.windowList.clear();
    this.probationList.clear();
    this.protectedList.clear();
    this.heldBytes = 0;
    this.checkInvariants();
  }

  /** Change the budget (evicting at once down to it). */
  resize(capacityBytes: number): void {
    this.setBudget(capacityBytes);
    this.demoteProtectedOverflow();
    this.fit();
    this.checkInvariants();
  }

  stats(): HotCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      rejected: this.rejected,
      entries: this.byKey.size,
      bytes: this.heldBytes,
      capacityBytes: this.capacityBytes,
    };
  }

  /**
   * The admission decision: whether a candidate leaving the window may push out a victim of the
   * main cache, given their estimated frequencies.
   */
  protected admits(candidateFrequency: number, victimFrequency: number): boolean {
    if (candidateFrequency > victimFrequency) return true;
    return candidateFrequency >= ADMIT_WARM_FREQUENCY && this.random.nextInt(ADMIT_WARM_ODDS) === 0;
  }

  /** The weigher's answer for a value being offered, checked. */
  protected weightOf(key: string, value: V): number {
    const weight = this.weigh(key, value);
    if (!Number.isSafeInteger(weight) || weight < 1) {
      throw new RangeError(`HotCache: the weigher gave ${weight} for key ${JSON.stringify(key)}; a weight is a positive integer`);
    }
    return weight;
  }

  private setBudget(capacityBytes: number): void {
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 0) {
      throw new RangeError(`HotCache: capacityBytes must be a non-negative integer, got ${capacityBytes}`);
    }
    this.capacityBytes = capacityBytes;
    this.windowMaxBytes = Math.floor(capacityBytes * this.windowShare);
    this.protectedMaxBytes = Math.floor((capacityBytes - this.windowMaxBytes) * PROTECTED_SHARE);
  }

  /** A hit: most recently used in its segment; a probation entry is promoted to protected. */
  private touch(entry: CacheEntry<V>): void {
    if (entry.segment === PROBATION) {
      this.probationList.remove(entry);
      entry.segment = PROTECTED;
      this.protectedList.pushLast(entry);
      this.demoteProtectedOverflow();
    } else {
      this.listOf(entry).moveToLast(entry);
    }
  }

  private demoteProtectedOverflow(): void {
    while (this.protectedList.bytes > this.protectedMaxBytes) {
      const demoted = this.protectedList.first!;
      this.protectedList.remove(demoted);
      demoted.segment = PROBATION;
      this.probationList.pushLast(demoted);
    }
  }

  /**
   * Back within the budget: the window's overflow goes to admission one candidate at a time,
   * least recently used first; then, if still over (a replaced value grew, the budget shrank),
   * entries go in LRU order, probation first.
   */
  private fit(): void {
    while (this.windowList.bytes > this.windowMaxBytes) {
      const candidate = this.windowList.first!;
      this.windowList.remove(candidate);
      this.offerToMain(candidate);
    }
    while (this.heldBytes > this.capacityBytes) {
      const victim = this.victim();
      // Over budget with nothing listed would mean bytes held by no entry.
      if (victim === undefined) throw new Error(`HotCache invariant: ${this.heldBytes} bytes held by no entry`);
      this.remove(victim);
      this.evictions++;
    }
  }

  /** `candidate` has left the window (its bytes still held): into probation, or dropped. */
  private offerToMain(candidate: CacheEntry<V>): void {
    if (this.heldBytes > this.capacityBytes) {
      const candidateFrequency = this.sketch.frequency(candidate.hash);
      do {
        const victim = this.victim();
        if (victim === undefined) {
          // Nothing else is held: the budget shrank below the candidate's own weight.
          this.drop(candidate);
          this.evictions++;
          return;
        }
        if (!this.admits(candidateFrequency, this.sketch.frequency(victim.hash))) {
          this.drop(candidate);
          this.rejected++;
          return;
        }
        this.remove(victim);
        this.evictions++;
      } while (this.heldBytes > this.capacityBytes);
    }
    candidate.segment = PROBATION;
    this.probationList.pushLast(candidate);
  }

  /** Who goes first when over budget: probation's LRU, else protected's, else the window's. */
  private victim(): CacheEntry<V> | undefined {
    return this.probationList.first ?? this.protectedList.first ?? this.windowList.first;
  }

  /** Forget an entry that is in no list (a candidate between the window and probation). */
  private drop(candidate: CacheEntry<V>): void {
    this.byKey.delete(candidate.key);
    this.heldBytes -= candidate.weight;
  }

  private remove(entry: CacheEntry<V>): void {
    this.listOf(entry).remove(entry);
    this.byKey.delete(entry.key);
    this.heldBytes -= entry.weight;
  }

  private listOf(entry: CacheEntry<V>): LruList<V> {
    return entry.segment === WINDOW ? this.windowList : entry.segment === PROBATION ? this.probationList : this.protectedList;
  }

  /** O(1) after every change: within budget, and the byte and entry tallies agree. */
  private checkInvariants(): void {
    const listed = this.windowList.length + this.probationList.length + this.protectedList.length;
    const listedBytes = this.windowList.bytes + this.probationList.bytes + this.protectedList.bytes;
    if (this.heldBytes > this.capacityBytes || this.heldBytes !== listedBytes || this.byKey.size !== listed) {
      throw new Error(
        `HotCache invariant: ${this.heldBytes} bytes held (lists: ${listedBytes}, budget ${this.capacityBytes}), ` +
          `${this.byKey.size} entries (lists: ${listed})`,
      );
    }
  }
}
