// The hot cache's entries and the recency-ordered lists they live in (one per segment: window,
// probation, protected). Intrusive doubly linked lists, so moving an entry is O(1); each list
// keeps its entry count and the sum of its entries' weights.

/** Which list an entry is in. */
export const WINDOW = 0;
export const PROBATION = 1;
export const PROTECTED = 2;
export type SegmentId = typeof WINDOW | typeof PROBATION | typeof PROTECTED;

export class CacheEntry<V> {
  key: string;
  value: V;
  /** Bytes, as the cache's weigher gave them for this key and value. */
  weight: number;
  /** The key's hash for the frequency sketch, computed once. */
  readonly hash: number;
  segment: SegmentId = WINDOW;
  prev: CacheEntry<V> | null = null;
  next: CacheEntry<V> | null = null;

  constructor(key: string, value: V, weight: number, hash: number) {
    this.key = key;
    this.value = value;
    this.weight = weight;
    this.hash = hash;
  }
}

/** Least recently used first, most recently used last. */
export class LruList<V> {
  private head: CacheEntry<V> | null = null;
  private tail: CacheEntry<V> | null = null;
  length = 0;
  bytes = 0;

  /** The least recently used entry, or undefined when empty. */
  get first(): CacheEntry<V> | undefined {
    return this.head ?? undefined;
  }

  pushLast(entry: CacheEntry<V>): void {
    entry.prev = this.tail;
    entry.next = null;
    if (this.tail) this.tail.next = entry;
    else this.head = entry;
    this.tail = entry;
    this.length++;
    this.bytes += entry.weight;
  }

  remove(entry: CacheEntry<V>): void {
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = entry.next = null;
    this.length--;
    this.bytes -= entry.weight;
  }

  moveToLast(entry: CacheEntry<V>): void {
    if (this.tail === entry) return;
    this.remove(entry);
    this.pushLast(entry);
  }

  /** The entry (in this list) now weighs `weight`. */
  reweigh(entry: CacheEntry<V>, weight: number): void {
    this.bytes += weight - entry.weight;
    entry.weight = weight;
  }

  clear(): void {
    this.head = this.tail = null;
    this.length = 0;
    this.bytes = 0;
  }
}
