// The keys of the KV map in sorted order, for range reads and snapshots, kept cheaply under a
// write-heavy load: writes only append new keys to a pending list (O(1)); the sorted array is
// brought up to date lazily, on the next ordered read. Deleted keys stay in the array as
// "ghosts" (skipped by readers, who check the live map) until they are half of it.
//
// Order is JavaScript string order (UTF-16 code units). It matches UTF-8 byte order except
// that characters U+E000..U+FFFF sort after supplementary-plane characters; the order is the
// same on every replica, which is what ranges and snapshots need.

/** Below this many pending keys, binary insertion beats sort-and-merge. */
const INSERT_PENDING_MAX = 16;
/** Pending keys are merged in early once they are more than this and more than the live keys. */
const PENDING_MIN_BEFORE_DRAIN = 1024;
/** Pending keys are also sorted in once they are this many and a sixteenth of the sorted ones:
 *  a snapshot or range read after 100k new keys would otherwise sort them all in one go
 *  (~50 ms with the peer stopped); this spreads it at O(1) amortized per key. */
const PENDING_MERGE_MIN = 4096;

export class SortedKeys {
  private sorted: string[] = [];
  private pending: string[] = [];
  private ghosts = 0;
  private readonly live: ReadonlyMap<string, unknown>;

  /** `live` is the map whose keys these are; readers skip keys it no longer holds. */
  constructor(live: ReadonlyMap<string, unknown>, initialSorted: string[] = []) {
    this.live = live;
    this.sorted = initialSorted;
  }

  /** A key was created in the live map (it may still be a ghost in `sorted`). */
  added(key: string): void {
    this.pending.push(key);
    // Bound the pending list under create/delete churn with no ordered reads to drain it.
    if (this.pending.length > PENDING_MIN_BEFORE_DRAIN && this.pending.length > this.live.size) this.normalize();
    else if (this.pending.length >= PENDING_MERGE_MIN && this.pending.length >= this.sorted.length >>> 4) {
      this.sorted = this.merge(this.pending.sort());
      this.pending = [];
    }
  }

  /** A key was removed from the live map. */
  removed(): void {
    this.ghosts++;
  }

  /**
   * Visit live keys >= `from` in order until `visit` returns false. Keys must not be added or
   * removed during the walk.
   */
  walkFrom(from: string, visit: (key: string) => boolean): void {
    this.normalize();
    const sorted = this.sorted;
    for (let i = lowerBound(sorted, from); i < sorted.length; i++) {
      const key = sorted[i]!;
      if (!this.live.has(key)) continue;
      if (!visit(key)) return;
    }
  }

  /** The keys in order as of now, as an array the caller owns (may include deleted keys). */
  orderedCopy(): string[] {
    this.normalize();
    return this.sorted.slice();
  }

  private normalize(): void {
    const pending = this.pending;
    if (pending.length > 0) {
      if (pending.length <= INSERT_PENDING_MAX) {
        for (const key of pending) {
          const i = lowerBound(this.sorted, key);
          if (this.sorted[i] === key)
            this.ghosts--; // a ghost came back to life
          else this.sorted.splice(i, 0, key);
        }
      } else {
        this.sorted = this.merge(pending.sort());
      }
      this.pending = [];
    }
    if (this.ghosts > 0 && this.ghosts * 2 > this.sorted.length) {
      this.sorted = this.sorted.filter((k) => this.live.has(k));
      this.ghosts = 0;
    }
  }

  /** Merge sorted `extra` into `sorted`, dropping duplicates. Ghosts stay (readers skip them,
   *  the filter in normalize() drops them once they are half): checking every key against the
   *  live map costs several times the merge itself. */
  private merge(extra: string[]): string[] {
    const a = this.sorted;
    const out: string[] = [];
    let i = 0;
    let j = 0;
    let last: string | undefined;
    while (i < a.length || j < extra.length) {
      let k: string;
      if (j >= extra.length || (i < a.length && a[i]! <= extra[j]!)) k = a[i++]!;
      else k = extra[j++]!;
      if (k !== last) out.push(k);
      else if (this.ghosts > 0) this.ghosts--; // a ghost came back to life
      last = k;
    }
    return out;
  }
}

/** First index in sorted `a` whose element is >= `key`. */
export function lowerBound<T extends string | number>(a: readonly T[], key: T): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
