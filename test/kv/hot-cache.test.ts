// HotCache (worker/kv/hot-cache.ts): each method and its frequency sketch, then two checkers
// that can fail, each shown failing on planted bugs.
// - The model check: seeded random operations against a Map of the last value set. Whatever
//   get/peek return is that value (a cache may forget, never lie); after every step the bytes
//   are the sum of the weights of what peek finds, within the budget, and the entry counts agree;
//   with a budget that holds everything, nothing is forgotten.
// - Scan resistance: a Zipfian (s = 0.99) working set with periodic one-off sequential scans of
//   never-repeated keys; HotCache's hit rate must beat a plain byte-budget LRU's by a margin and
//   stay above a floor.

import { describe, expect, it } from 'vitest';
import { HotCache } from '../../worker/kv/hot-cache.ts';
import { FrequencySketch, hashKey } from '../../worker/kv/hot-cache/frequency-sketch.ts';
import { SeededRandom } from '../../worker/raft/random.ts';

type Value = string | null;

/** What the checkers drive: HotCache or a planted-bug variant of it. */
type MakeCache = (capacityBytes: number, seed: number) => HotCache<Value>;

/** What the hit-rate measure drives: those, or the LRU baseline. */
interface ReadThrough {
  get(key: string): Value | undefined;
  set(key: string, value: Value): boolean;
}

/** The model's weigher: key and value bytes plus a fixed overhead; null is a small record. */
function weigh(key: string, value: Value): number {
  return key.length + (value === null ? 1 : value.length) + 4;
}

const makeHotCache: MakeCache = (capacityBytes, seed) => new HotCache<Value>({ capacityBytes, weigh, random: new SeededRandom(seed) });

// ---------------------------------------------------------------------------------------------
// The model check

const MODEL_KEYS = Array.from({ length: 30 }, (_, i) => `key-${i}`);
const MODEL_VALUE_MAX = 40;
/** Budget for which every key at its heaviest fits at once. */
const MODEL_ALL_FIT = MODEL_KEYS.reduce((sum, k) => sum + weigh(k, 'x'.repeat(MODEL_VALUE_MAX)), 0);
const MODEL_BUDGETS = [0, 30, 120, 400, 1000];

/**
 * Runs `steps` random operations; returns the first discrepancy, or null. `allFit` keeps a budget
 * that holds every key, under which a get must find the last value set (nothing may be forgotten).
 */
function modelCheck(make: MakeCache, seed: number, steps: number, allFit: boolean, seen: Seen): string | null {
  const rnd = new SeededRandom(seed);
  const pickBudget = (): number => (allFit ? MODEL_ALL_FIT + rnd.nextInt(100) : MODEL_BUDGETS[rnd.nextInt(MODEL_BUDGETS.length)]!);
  let budget = pickBudget();
  const cache = make(budget, seed);
  const model = new Map<string, Value>();
  let hits = 0;
  let misses = 0;
  try {
    for (let step = 1; step <= steps; step++) {
      const at = `seed ${seed} step ${step}`;
      const key = MODEL_KEYS[rnd.nextInt(MODEL_KEYS.length)]!;
      const op = rnd.nextInt(100);
      if (op < 40 || (op >= 40 && op < 50)) {
        const got = op < 40 ? cache.get(key) : cache.peek(key);
        if (op < 40 && got === undefined) misses++;
        else if (op < 40) hits++;
        const expected = model.get(key);
        if (got !== undefined && (!model.has(key) || got !== expected)) {
          return `${at}: ${op < 40 ? 'get' : 'peek'}(${key}) gave ${JSON.stringify(got)}, the last value set is ${JSON.stringify(expected)}`;
        }
        if (allFit && got === undefined && model.has(key)) return `${at}: ${key} forgotten although everything fits`;
      } else if (op < 88) {
        const value = rnd.nextInt(6) === 0 ? null : 'v'.repeat(rnd.nextInt(MODEL_VALUE_MAX + 1));
        const cached = cache.set(key, value);
        model.set(key, value);
        if (cached !== (cache.peek(key) !== undefined)) return `${at}: set(${key}) returned ${cached}, peek disagrees`;
        if (cached && cache.peek(key) !== value) return `${at}: set(${key}) returned true, peek gives another value`;
        if (allFit && !cached) return `${at}: set(${key}) rejected although everything fits`;
      } else if (op < 96) {
        cache.delete(key);
        model.delete(key);
        if (cache.peek(key) !== undefined) return `${at}: ${key} still cached after delete`;
      } else if (op < 97) {
        cache.clear();
        model.clear();
      } else {
        budget = pickBudget();
        cache.resize(budget);
      }
      // The invariants, from outside: what peek finds is what the tallies say.
      let entries = 0;
      let bytes = 0;
      for (const k of MODEL_KEYS) {
        const v = cache.peek(k);
        if (v === undefined) continue;
        entries++;
        bytes += weigh(k, v);
      }
      const stats = cache.stats();
      if (cache.bytes !== bytes || stats.bytes !== bytes)
        return `${at}: bytes ${cache.bytes} (stats ${stats.bytes}), weights held ${bytes}`;
      if (cache.size !== entries || stats.entries !== entries)
        return `${at}: size ${cache.size} (stats ${stats.entries}), entries held ${entries}`;
      if (bytes > budget || stats.capacityBytes !== budget)
        return `${at}: ${bytes} bytes held, budget ${budget} (stats ${stats.capacityBytes})`;
      if (stats.hits !== hits || stats.misses !== misses)
        return `${at}: stats ${stats.hits} hits ${stats.misses} misses, counted ${hits}/${misses}`;
    }
  } catch (error) {
    return `seed ${seed}: threw ${String(error)}`;
  }
  if (hits === 0) return `seed ${seed}: not one hit in ${steps} steps`;
  seen.evictions += cache.stats().evictions;
  seen.rejected += cache.stats().rejected;
  return null;
}

/** What the model runs went through: a check that never evicted or rejected proves little. */
interface Seen {
  evictions: number;
  rejected: number;
}

function modelCheckSeeds(make: MakeCache, allFit: boolean, seen: Seen = { evictions: 0, rejected: 0 }): string | null {
  for (let seed = 1; seed <= 12; seed++) {
    const failure = modelCheck(make, seed, 6000, allFit, seen);
    if (failure) return failure;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Scan resistance

const ZIPF_KEYS = 20_000;
const ZIPF_S = 0.99;
const ROUNDS = 20;
const ZIPF_PER_ROUND = 10_000;
const SCAN_PER_ROUND = 5_000;

/** A record's value: 20..119 bytes, fixed per key. */
function recordFor(key: string): string {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (Math.imul(h, 31) + key.charCodeAt(i)) >>> 0;
  return 'r'.repeat(20 + (h % 100));
}

/** Every access of the scan workload, in order: Zipfian rounds, each followed by a fresh scan. */
function scanWorkload(seed: number): string[] {
  const rnd = new SeededRandom(seed);
  const cdf = new Float64Array(ZIPF_KEYS);
  let total = 0;
  for (let rank = 1; rank <= ZIPF_KEYS; rank++) cdf[rank - 1] = total += 1 / Math.pow(rank, ZIPF_S);
  // Ranks are spread over the key names, so the hot keys are not also the first ones scanned.
  const names = Array.from({ length: ZIPF_KEYS }, (_, i) => `user/${((i * 7919) % ZIPF_KEYS).toString().padStart(5, '0')}`);
  const trace: string[] = [];
  let scanned = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < ZIPF_PER_ROUND; i++) {
      const u = rnd.nextFloat() * total;
      let lo = 0;
      let hi = ZIPF_KEYS - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cdf[mid]! < u) lo = mid + 1;
        else hi = mid;
      }
      trace.push(names[lo]!);
    }
    for (let i = 0; i < SCAN_PER_ROUND; i++) trace.push(`scan/${(scanned++).toString().padStart(7, '0')}`);
  }
  return trace;
}

/** The budget: a tenth of the Zipfian key space's bytes. */
const SCAN_BUDGET = Math.floor(
  Array.from({ length: ZIPF_KEYS }, (_, i) => {
    const key = `user/${i.toString().padStart(5, '0')}`;
    return weigh(key, recordFor(key));
  }).reduce((a, b) => a + b, 0) / 10,
);

/** Read-through: get, and on a miss fetch the record and offer it. Hit rates over all gets. */
function hitRate(cache: ReadThrough, trace: readonly string[]): { all: number; zipf: number } {
  let hits = 0;
  let zipfHits = 0;
  let zipfGets = 0;
  for (const key of trace) {
    const zipf = key.startsWith('user/');
    if (zipf) zipfGets++;
    if (cache.get(key) !== undefined) {
      hits++;
      if (zipf) zipfHits++;
    } else {
      cache.set(key, recordFor(key));
    }
  }
  return { all: hits / trace.length, zipf: zipfHits / zipfGets };
}

/** A plain LRU with the same byte budget: the baseline HotCache must beat. */
class ByteLru implements ReadThrough {
  private readonly map = new Map<string, Value>();
  private held = 0;
  private readonly capacityBytes: number;
  constructor(capacityBytes: number) {
    this.capacityBytes = capacityBytes;
  }
  get(key: string): Value | undefined {
    if (!this.map.has(key)) return undefined;
    const value = this.map.get(key)!;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }
  set(key: string, value: Value): boolean {
    if (this.map.has(key)) this.drop(key, this.map.get(key)!);
    this.map.set(key, value);
    this.held += weigh(key, value);
    for (const [k, v] of this.map) {
      if (this.held <= this.capacityBytes) break;
      this.drop(k, v);
    }
    return this.map.has(key);
  }
  private drop(key: string, value: Value): void {
    this.map.delete(key);
    this.held -= weigh(key, value);
  }
}

const SCAN_SEEDS = [1, 2, 3];
/** HotCache must beat LRU by this much (hit-rate points over all gets; measured: about 6). */
const SCAN_MARGIN = 0.04;
/** And hit at least this often over all gets, the scans' certain misses included (measured: about 0.49). */
const SCAN_FLOOR = 0.45;

interface ScanResult {
  seed: number;
  cache: { all: number; zipf: number };
  lru: { all: number; zipf: number };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** Runs the scan workload per seed; returns the rates and the first shortfall, or null. */
function scanCheck(make: MakeCache): { results: ScanResult[]; failure: string | null } {
  const results = SCAN_SEEDS.map((seed) => {
    const trace = scanWorkload(seed);
    return { seed, cache: hitRate(make(SCAN_BUDGET, seed), trace), lru: hitRate(new ByteLru(SCAN_BUDGET), trace) };
  });
  for (const r of results) {
    if (r.cache.all < r.lru.all + SCAN_MARGIN)
      return { results, failure: `seed ${r.seed}: ${pct(r.cache.all)} is not ${pct(SCAN_MARGIN)} above LRU's ${pct(r.lru.all)}` };
    if (r.cache.all < SCAN_FLOOR)
      return { results, failure: `seed ${r.seed}: ${pct(r.cache.all)} is below the floor of ${pct(SCAN_FLOOR)}` };
  }
  return { results, failure: null };
}

function printScan(name: string, results: ScanResult[]): void {
  for (const r of results) {
    console.log(
      `${name}, seed ${r.seed}: all gets ${pct(r.cache.all)} (LRU ${pct(r.lru.all)}); Zipfian gets ${pct(r.cache.zipf)} (LRU ${pct(r.lru.zipf)})`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Planted bugs, each of which one checker must report

/** Admits every candidate; with a window of the whole budget it is plain LRU. */
class AdmitsAll<V> extends HotCache<V> {
  protected override admits(): boolean {
    return true;
  }
}

/** Keeps the old value when a present key is offered a new one: a stale read. */
class KeepsOldValue<V> extends HotCache<V> {
  override set(key: string, value: V): boolean {
    if (this.peek(key) !== undefined) return true;
    return super.set(key, value);
  }
}

/** Weighs each key once and reuses that weight when its value is replaced. */
class StaleWeight<V> extends HotCache<V> {
  private readonly firstWeight = new Map<string, number>();
  protected override weightOf(key: string, value: V): number {
    const weight = this.firstWeight.get(key) ?? super.weightOf(key, value);
    this.firstWeight.set(key, weight);
    return weight;
  }
}

/** Ignores delete. */
class ForgetsDelete<V> extends HotCache<V> {
  override delete(): void {}
}

/** Refuses every offer: never lies, never helps. */
class CachesNothing<V> extends HotCache<V> {
  override set(): boolean {
    return false;
  }
}

function variant(Cache: typeof HotCache<Value>, windowShare?: number): MakeCache {
  return (capacityBytes, seed) =>
    new Cache({ capacityBytes, weigh, random: new SeededRandom(seed), ...(windowShare === undefined ? {} : { windowShare }) });
}

// ---------------------------------------------------------------------------------------------

/** A record of exactly `weight` bytes under the test weigher (key + value + 4). */
function valueOfWeight(key: string, weight: number): string {
  return 'x'.repeat(weight - key.length - 4);
}

describe('HotCache', () => {
  it('get counts hits and misses; a cached null is a hit, not an absence', () => {
    const cache = new HotCache<Value>({ capacityBytes: 1000, weigh, random: new SeededRandom(1) });
    expect(cache.get('a')).toBeUndefined();
    expect(cache.set('a', null)).toBe(true);
    expect(cache.get('a')).toBeNull();
    expect(cache.set('b', '')).toBe(true);
    expect(cache.get('b')).toBe('');
    expect(cache.stats()).toEqual({ hits: 2, misses: 1, evictions: 0, rejected: 0, entries: 2, bytes: 6 + 5, capacityBytes: 1000 });
    expect(cache.size).toBe(2);
    expect(cache.bytes).toBe(11);
  });

  it('admits a newcomer over a resident only if it was asked for more often; peek records nothing', () => {
    // Ten residents of 100 bytes fill the budget; each is read three times.
    const cache = new HotCache<Value>({ capacityBytes: 1000, weigh, random: new SeededRandom(7) });
    const residents = Array.from({ length: 10 }, (_, i) => `res-${i}`);
    for (const key of residents) expect(cache.set(key, valueOfWeight(key, 100))).toBe(true);
    for (let round = 0; round < 3; round++) for (const key of residents) expect(cache.get(key)).toBeDefined();
    expect(cache.bytes).toBe(1000);

    // A one-off (a single miss) is turned away and nothing is pushed out.
    expect(cache.get('fresh')).toBeUndefined();
    expect(cache.set('fresh', valueOfWeight('fresh', 100))).toBe(false);
    expect(cache.stats()).toMatchObject({ rejected: 1, evictions: 0, entries: 10 });
    for (const key of residents) expect(cache.peek(key)).toBeDefined();

    // Peeked at five times, it is no more wanted: peek changes neither the policy nor the stats.
    const before = cache.stats();
    for (let i = 0; i < 5; i++) expect(cache.peek('fresh')).toBeUndefined();
    expect(cache.stats()).toEqual(before);
    expect(cache.set('fresh', valueOfWeight('fresh', 100))).toBe(false);

    // Asked for five times (more than any resident's three), it gets in, one resident out.
    for (let i = 0; i < 5; i++) expect(cache.get('fresh')).toBeUndefined();
    expect(cache.set('fresh', valueOfWeight('fresh', 100))).toBe(true);
    expect(cache.stats()).toMatchObject({ rejected: 2, evictions: 1, entries: 10, bytes: 1000 });
    expect(residents.filter((key) => cache.peek(key) === undefined)).toHaveLength(1);
  });

  it('set replaces in place and the bytes follow the new weight', () => {
    const cache = new HotCache<Value>({ capacityBytes: 500, weigh, random: new SeededRandom(1) });
    expect(cache.set('k', valueOfWeight('k', 50))).toBe(true);
    expect(cache.set('k', valueOfWeight('k', 200))).toBe(true);
    expect(cache.peek('k')).toBe(valueOfWeight('k', 200));
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: 200 });
    expect(cache.set('k', null)).toBe(true);
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: 6 });
  });

  it('never admits an entry heavier than the budget, and drops the one it would replace', () => {
    const cache = new HotCache<Value>({ capacityBytes: 100, weigh, random: new SeededRandom(1) });
    expect(cache.set('k', valueOfWeight('k', 100))).toBe(true);
    expect(cache.set('k', valueOfWeight('k', 101))).toBe(false);
    expect(cache.peek('k')).toBeUndefined();
    expect(cache.set('other', valueOfWeight('other', 101))).toBe(false);
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0, rejected: 2 });
  });

  it('caches nothing with a budget of 0', () => {
    const cache = new HotCache<Value>({ capacityBytes: 0, weigh, random: new SeededRandom(1) });
    for (let i = 0; i < 3; i++) {
      expect(cache.get('k')).toBeUndefined();
      expect(cache.set('k', null)).toBe(false);
    }
    expect(cache.stats()).toEqual({ hits: 0, misses: 3, evictions: 0, rejected: 3, entries: 0, bytes: 0, capacityBytes: 0 });
  });

  it('delete and clear forget entries; clear keeps the counters', () => {
    const cache = new HotCache<Value>({ capacityBytes: 1000, weigh, random: new SeededRandom(1) });
    for (const key of ['a', 'b', 'c']) cache.set(key, key);
    cache.get('a');
    cache.delete('a');
    cache.delete('absent');
    expect(cache.peek('a')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ hits: 1, entries: 2, bytes: 12 });
    cache.clear();
    expect([cache.peek('b'), cache.peek('c')]).toEqual([undefined, undefined]);
    expect(cache.stats()).toEqual({ hits: 1, misses: 0, evictions: 0, rejected: 0, entries: 0, bytes: 0, capacityBytes: 1000 });
  });

  it('resize evicts down to a smaller budget at once, and a larger one keeps what is held', () => {
    const cache = new HotCache<Value>({ capacityBytes: 1000, weigh, random: new SeededRandom(1) });
    for (let i = 0; i < 10; i++) expect(cache.set(`k${i}`, valueOfWeight(`k${i}`, 100))).toBe(true);
    cache.resize(2000);
    expect(cache.stats()).toMatchObject({ entries: 10, bytes: 1000, capacityBytes: 2000 });
    cache.resize(350);
    expect(cache.stats()).toMatchObject({ entries: 3, bytes: 300, evictions: 7, capacityBytes: 350 });
    cache.resize(0);
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0, evictions: 10 });
  });

  it('resize below the weight of an entry still in the window drops it (found by the model check)', () => {
    const cache = new HotCache<Value>({ capacityBytes: 10_000, weigh, random: new SeededRandom(1) });
    expect(cache.set('w', valueOfWeight('w', 80))).toBe(true); // within the window's 100 bytes
    cache.resize(50);
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0, evictions: 1, capacityBytes: 50 });
  });

  it('refuses a weigher that gives no positive integer, and a bad budget or window', () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity]) {
      const cache = new HotCache<Value>({ capacityBytes: 100, weigh: () => bad, random: new SeededRandom(1) });
      expect(() => cache.set('k', 'v')).toThrow(RangeError);
    }
    for (const bad of [-1, 1.5, NaN])
      expect(() => new HotCache<Value>({ capacityBytes: bad, weigh, random: new SeededRandom(1) })).toThrow(RangeError);
    expect(() => new HotCache<Value>({ capacityBytes: 100, weigh, random: new SeededRandom(1) }).resize(-5)).toThrow(RangeError);
    expect(() => new HotCache<Value>({ capacityBytes: 100, weigh, random: new SeededRandom(1), windowShare: 1.5 })).toThrow(RangeError);
  });

  it('makes the same decisions from the same seed', () => {
    const trace = scanWorkload(9).slice(0, 60_000);
    const run = (): object => {
      const cache = new HotCache<Value>({ capacityBytes: SCAN_BUDGET / 4, weigh, random: new SeededRandom(42) });
      hitRate(cache, trace);
      return cache.stats();
    };
    expect(run()).toEqual(run());
  });
});

describe('FrequencySketch', () => {
  it('never underestimates a count (up to 15) within a sample, and rarely overestimates', () => {
    const rnd = new SeededRandom(5);
    const sketch = new FrequencySketch(rnd.nextU32(), rnd.nextU32());
    sketch.ensureCapacity(1000); // sized for 1024 entries: halving after 10,240 additions
    const counts = Array.from({ length: 1000 }, () => 1 + rnd.nextInt(12)); // ~6,500 additions
    const order = counts.flatMap((count, i) => Array.from({ length: count }, () => i));
    for (let i = order.length - 1; i > 0; i--) {
      const j = rnd.nextInt(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const i of order) sketch.increment(hashKey(`key-${i}`));
    let over = 0;
    counts.forEach((count, i) => {
      const estimate = sketch.frequency(hashKey(`key-${i}`));
      expect(estimate, `key-${i}`).toBeGreaterThanOrEqual(count);
      over += estimate - count;
    });
    console.log(`sketch: mean overestimate ${(over / counts.length).toFixed(3)} over 1000 keys`);
    expect(over / counts.length).toBeLessThan(0.25);
  });

  it('halves every counter once a sample of additions is reached', () => {
    const sketch = new FrequencySketch(1, 2);
    sketch.ensureCapacity(1000);
    const hot = hashKey('hot');
    for (let i = 0; i < 20; i++) sketch.increment(hot);
    expect(sketch.frequency(hot)).toBe(15); // saturated
    for (let i = 0; i < 10_240; i++) sketch.increment(hashKey(`cold-${i}`));
    expect(sketch.frequency(hot)).toBeGreaterThanOrEqual(7);
    expect(sketch.frequency(hot)).toBeLessThanOrEqual(8);
  });
});

describe('model check: a cache may forget, never lie', () => {
  it('HotCache passes under random budgets, and forgets nothing when everything fits', () => {
    const seen = { evictions: 0, rejected: 0 };
    expect(modelCheckSeeds(makeHotCache, false, seen)).toBeNull();
    expect(modelCheckSeeds(variant(HotCache, 0), false, seen)).toBeNull();
    expect(modelCheckSeeds(variant(HotCache, 0.3), false, seen)).toBeNull();
    console.log(`model check went through ${seen.evictions} evictions and ${seen.rejected} rejections`);
    expect(seen.evictions).toBeGreaterThan(1000);
    expect(seen.rejected).toBeGreaterThan(1000);
    expect(modelCheckSeeds(makeHotCache, true)).toBeNull();
  });

  it('reports each planted bug', () => {
    expect(modelCheckSeeds(variant(KeepsOldValue), false)).toMatch(/get\(.*\) gave|peek\(.*\) gave|another value/);
    expect(modelCheckSeeds(variant(StaleWeight), false)).toMatch(/bytes \d+ .*weights held/);
    expect(modelCheckSeeds(variant(ForgetsDelete), false)).toMatch(/still cached after delete/);
    expect(modelCheckSeeds(variant(CachesNothing), true)).toMatch(/rejected although everything fits/);
    expect(modelCheckSeeds(variant(CachesNothing), false)).toMatch(/not one hit/);
  });
});

describe('scan resistance: a Zipfian working set with one-off scans', () => {
  it(`HotCache beats a plain LRU of the same byte budget by ${pct(SCAN_MARGIN)} or more`, () => {
    const { results, failure } = scanCheck(makeHotCache);
    printScan('HotCache', results);
    expect(failure).toBeNull();
  });

  it('the checker fails an LRU-like HotCache (a window of the whole budget, admitting everything)', () => {
    const { results, failure } = scanCheck(variant(AdmitsAll, 1));
    printScan('planted: admits all, window 100%', results);
    expect(failure).toMatch(/is not .* above LRU's/);
  });
});
