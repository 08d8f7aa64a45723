// The leveldb engine's filter of the keys its live generation stores (key-filter.ts): a point
// read of a key the filter has never seen is answered "none" without LevelDB (most keys a write
// names are new ones).
//
// A filter is built in the background by the reader thread, from a walk of the generation's
// record keys, while the event loop adds every key it stages into that generation from the
// moment the build is asked for; the two are OR-ed when the walk is done, and only then is the
// filter consulted. Nothing is missed because the build is asked for only between write groups
// (`settled`: no key is staged but unwritten), so a key is either written before the walk's
// snapshot (the walk sees it) or staged after the request (the loop adds it).
//
// A new filter is built when the live generation changes (an install); until it is ready,
// reads go to LevelDB, as they always may. A filter outgrown grows (GrowingKeyFilter) rather
// than being built again.

import type { Generation } from './leveldb-layout.ts';
import { genRange, P_RECORD, RECORD_KEY_BYTES_AT } from './leveldb-layout.ts';
import type { LevelReader } from './leveldb-reader.ts';
import type { FilterBuilt } from './leveldb-reader-protocol.ts';
import { filterBitsFor, GrowingKeyFilter, KeyFilter } from './key-filter.ts';

/** How long after a failed build the next may start. */
const RETRY_MS = 60_000;

interface GenFilter {
  gen: Generation;
  filter: GrowingKeyFilter;
}

export interface KeyFilterEvents {
  built(info: { gen: Generation; keys: number; bits: number; ms: number }): void;
  failed(message: string): void;
}

export class LevelKeyFilter {
  private readonly reader: LevelReader;
  private readonly events: KeyFilterEvents;
  /** The filter consulted: complete for its generation. */
  private live: GenFilter | null = null;
  /** The filter being built (its request `id`, asked at `startedMs`). */
  private building: (GenFilter & { id: number; startedMs: number }) | null = null;
  private nextId = 1;
  /** After a failed build, the next is not asked for before this. */
  private retryAtMs = 0;
  /** Reads the filter answered (no LevelDB read). */
  excluded = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(reader: LevelReader, events: KeyFilterEvents) {
    this.reader = reader;
    this.events = events;
    reader.onFilter((m) => this.arrived(m));
  }

  /** True when `key` is surely not stored in generation `gen` (the live one). */
  excludes(gen: Generation, key: string): boolean {
    const live = this.live;
    if (live === null || live.gen !== gen || live.filter.mayHold(key)) return false;
    this.excluded++;
    return true;
  }

  /** `key` is being staged into generation `gen`. */
  added(gen: Generation, key: string): void {
    if (this.live?.gen === gen) this.live.filter.add(key);
    if (this.building?.gen === gen) this.building.filter.add(key);
  }

  /**
   * Every key staged so far is written, and `gen` is live with about `records` records: builds
   * its filter if there is none. Call only between write groups.
   */
  settled(gen: Generation, records: number): void {
    if (this.building?.gen === gen || this.live?.gen === gen) return;
    this.live = null;
    if (this.building === null && performance.now() < this.retryAtMs) return;
    const id = this.nextId++;
    const filter = new GrowingKeyFilter(new KeyFilter(filterBitsFor(records)));
    this.building = { gen, filter, id, startedMs: performance.now() };
    const range = genRange(P_RECORD, gen);
    this.reader.post({ kind: 'filter', id, bits: filter.first.bits, gte: range.gte, lt: range.lt, keyAt: RECORD_KEY_BYTES_AT });
  }

  /** The size of the filter consulted (0: none yet). */
  get bits(): number {
    return this.live?.filter.bits ?? 0;
  }

  /** Resolves once no build is under way (for tests: the filter is then consulted). */
  idle(): Promise<void> {
    if (this.building === null) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private arrived(m: FilterBuilt): void {
    const b = this.building;
    if (b === null || m.id !== b.id) return; // abandoned (a newer one was asked for)
    this.building = null;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    if (m.kind === 'filter-failed') {
      this.retryAtMs = performance.now() + RETRY_MS;
      return this.events.failed(m.message);
    }
    b.filter.first.merge(new Uint32Array(m.words), m.keys);
    this.live = { gen: b.gen, filter: b.filter };
    this.events.built({ gen: b.gen, keys: m.keys, bits: b.filter.bits, ms: Math.round(performance.now() - b.startedMs) });
  }
}
