// The record store of a tiered engine: the engine's table is the home of the key space
// (DiskRecords, record-store.ts) and memory holds two things only:
//   - the overlay: every change applied but not yet durable, newest first in every read, kept
//     until the save carrying it resolves (sealChanges / changesDurable), so a read never sees
//     the disk behind what apply has done;
//   - a bounded cache of hot records (hot-cache.ts, W-TinyLFU), clean copies of disk records,
//     including "no such key", so repeated reads of hot keys never reach the disk.
// A miss reads the engine's index synchronously (an in-process B-tree lookup): apply stays
// synchronous and deterministic, and decides from the same records as a memory store would.
// A client's read of a key need not wait on the disk in the event loop, though: prefetch reads
// the keys it names off the loop (DiskRecords.getAsync) and holds them for the get that
// follows, which takes them as its miss. They are only good while the disk has not moved: a
// save that resolves (or a pin) drops them, and a fetch that started before it is discarded.
//
// Views (snapshots, backups) pair a read transaction on the disk with a copy of the overlay at
// the same moment: the disk view shows the durable state, the overlay copy everything after it,
// and later saves change neither. A save the engine has committed but not yet answered may show
// in the disk view too; the overlay holds the same or newer records for those keys, and wins.

import type { KeyRecord, RecordSummary } from './types.ts';
import type { DiskRecords, DiskView, RecordCursor, RecordStore, TierCounts } from './record-store.ts';
import { lowerBound } from './sorted-keys.ts';

/** What the store needs of its cache (hot-cache.ts is one). Values may be null: "no such key". */
export interface RecordCache {
  get(key: string): KeyRecord | null | undefined;
  /** Like get, but no read is counted (the policy's frequencies, its recency): a lookup ahead of
   *  a read that will count itself. */
  peek(key: string): KeyRecord | null | undefined;
  set(key: string, value: KeyRecord | null): boolean;
  delete(key: string): void;
  clear(): void;
  stats(): { entries: number; bytes: number; capacityBytes: number; evictions: number };
}

interface Pending {
  record: KeyRecord | null;
  /** The change batch (sealChanges) that carries this change to the disk. */
  batch: number;
  /** Whether the record goes to the cache once durable: the key was cached when it changed (it
   *  is read), not a key only written (most keys a write names are new: offering each would
   *  cost an admission, perhaps an eviction, for a record no read has asked for). */
  offer: boolean;
}

const byRevisionThenKey = (a: readonly [string, number], b: readonly [string, number]): number =>
  a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** Fetched records held at most (a prefetch whose read never came is dropped with the rest). */
const FETCHED_MAX = 4096;
/** Changes made durable lately that the store remembers (changedSince from a recent revision). */
const RECENT_MAX = 4096;

/** The smallest string after `key` in JS order: where a walk resumes after `key`. */
const after = (key: string): string => key + '\u0000';

export class TieredRecords implements RecordStore {
  private readonly disk: DiskRecords;
  private readonly cache: RecordCache;
  private readonly overlay = new Map<string, Pending>();
  /** The overlay's keys in order, rebuilt on the first walk after a change (null: stale). */
  private overlayOrder: string[] | null = [];
  private records: number;
  /** The batch the changes made now belong to. */
  private openBatch = 1;
  /** The keys each batch not yet durable changed, oldest batch first: a save that resolves
   *  visits its own changes, not the whole overlay. */
  private readonly batchKeys: Array<{ batch: number; keys: string[] }> = [];
  /** Reads go here instead of `disk` once pinned (a snapshot install is being written). */
  private pinned: DiskView | null = null;
  private hits = 0;
  private misses = 0;
  private missesOffLoop = 0;
  /** Records fetched off the loop (prefetch), each taken by the next get of its key. */
  private readonly fetched = new Map<string, KeyRecord | null>();
  /** Counts the moments the disk may have moved (a save resolved, a pin): a fetch started
   *  before one is dropped. */
  private diskEpoch = 0;
  /** A key the last get found absent, not yet offered to the cache: a write of it usually
   *  follows (most keys a write names are new), and the overlay then answers for it, so its
   *  absence is offered only when another read comes first (the next get). */
  private absentUnoffered: string | null = null;
  /** The changes made durable lately, (key, modRevision) in (modRevision, key) order (saves
   *  resolve in order and carry ever higher revisions), live from `recentStart`; with
   *  `recentFloor`, the revision from which it holds every durable change (none yet: Infinity).
   *  A watch catching up from a recent revision reads them here, not from the disk (a hop to
   *  another thread on leveldb, per watcher per write). */
  private readonly recent: Array<[string, number]> = [];
  private recentStart = 0;
  private recentFloor = Infinity;

  constructor(disk: DiskRecords, cache: RecordCache, summary: RecordSummary) {
    this.disk = disk;
    this.cache = cache;
    this.records = summary.records;
  }

  get size(): number {
    return this.records;
  }

  tierCounts(): TierCounts {
    const c = this.cache.stats();
    return {
      hits: this.hits,
      misses: this.misses,
      missesOffLoop: this.missesOffLoop,
      pending: this.overlay.size,
      entries: c.entries,
      bytes: c.bytes,
      capacityBytes: c.capacityBytes,
      evictions: c.evictions,
    };
  }

  get(key: string): KeyRecord | undefined {
    this.offerAbsent();
    const pending = this.overlay.get(key);
    if (pending !== undefined) {
      this.hits++;
      return pending.record ?? undefined;
    }
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.hits++;
      return cached ?? undefined;
    }
    this.misses++;
    const fetched = this.fetched.get(key);
    let record: KeyRecord | undefined;
    if (fetched === undefined) record = this.reader().get(key);
    else {
      this.fetched.delete(key);
      this.missesOffLoop++;
      record = fetched ?? undefined;
    }
    if (record === undefined) this.absentUnoffered = key;
    else this.cache.set(key, record);
    return record;
  }

  private offerAbsent(): void {
    if (this.absentUnoffered === null) return;
    this.cache.set(this.absentUnoffered, null);
    this.absentUnoffered = null;
  }

  prefetch(keys: readonly string[]): Promise<void> | null {
    const disk = this.disk;
    if (disk.getAsync === undefined || this.pinned !== null) return null;
    if (disk.offLoopReads?.() === false) return null; // cheaper to read them on the loop now
    this.offerAbsent();
    const wanted = keys.filter((k) => !this.overlay.has(k) && this.cache.peek(k) === undefined && !this.fetched.has(k));
    if (wanted.length === 0) return null;
    const epoch = this.diskEpoch;
    return Promise.all(wanted.map((k) => disk.getAsync!(k))).then((records) => {
      if (epoch !== this.diskEpoch) return; // the disk moved meanwhile: get reads it again
      // Taken by the gets that follow; a read that never came leaves its fetch behind.
      if (this.fetched.size + wanted.length > FETCHED_MAX) this.fetched.clear();
      wanted.forEach((k, i) => this.fetched.set(k, records[i] ?? null));
    });
  }

  /** The disk may show newer records from now on: what was fetched before is stale. */
  private diskMoved(): void {
    this.diskEpoch++;
    this.fetched.clear();
  }

  set(key: string, record: KeyRecord, prev: KeyRecord | undefined): void {
    if (prev === undefined) this.records++;
    this.change(key, record);
  }

  delete(key: string): void {
    this.records--;
    this.change(key, null);
  }

  private change(key: string, record: KeyRecord | null): void {
    if (this.absentUnoffered === key) this.absentUnoffered = null;
    const before = this.overlay.get(key);
    if (before === undefined) this.overlayOrder = null;
    if (before?.batch !== this.openBatch) {
      const last = this.batchKeys[this.batchKeys.length - 1];
      if (last?.batch === this.openBatch) last.keys.push(key);
      else this.batchKeys.push({ batch: this.openBatch, keys: [key] });
    }
    const offer = before?.offer === true || this.cache.peek(key) !== undefined;
    this.overlay.set(key, { record, batch: this.openBatch, offer });
    this.cache.delete(key); // the overlay answers for it until durable
  }

  /** The changes made so far go in the save being built: its batch number, for changesDurable. */
  sealChanges(): number {
    return this.openBatch++;
  }

  /** The saves of batches <= `batch` resolved: the disk shows their changes, which leave the
   *  overlay (and, for keys that were cached, go to the cache: the newest reads of them). */
  changesDurable(batch: number): void {
    if (this.pinned !== null) return; // an install is replacing the disk under this store
    this.diskMoved();
    while (this.batchKeys.length > 0 && this.batchKeys[0]!.batch <= batch) {
      const done = this.batchKeys.shift()!;
      const durable: Array<[string, number]> = [];
      for (const key of done.keys) {
        const pending = this.overlay.get(key);
        // Changed again in a later batch: that one carries it, and it stays.
        if (pending === undefined || pending.batch !== done.batch) continue;
        this.overlay.delete(key);
        this.overlayOrder = null;
        if (pending.offer) this.cache.set(key, pending.record);
        if (pending.record !== null) durable.push([key, pending.record.modRevision]);
      }
      this.noteDurable(durable);
    }
  }

  /** Remembers changes that just became durable (one batch's, all above what came before). */
  private noteDurable(changes: Array<[string, number]>): void {
    if (changes.length === 0) return;
    changes.sort(byRevisionThenKey);
    const last = this.recent[this.recent.length - 1];
    if (last !== undefined && byRevisionThenKey(last, changes[0]!) >= 0) {
      // Not above what came before (a revision written in two saves): forget the list rather
      // than keep it out of order; changedSince below the new floor reads the disk.
      this.recentFloor = Math.max(last[1], changes[changes.length - 1]![1]) + 1;
      this.recent.length = 0;
      this.recentStart = 0;
      return;
    }
    // Every change durable from now on is listed. Those before this store opened are at its
    // opening revision or lower, and so may be the first ones listed (a compaction writes at the
    // current revision): the list is whole from the revision after the first one listed.
    if (this.recentFloor === Infinity) this.recentFloor = changes[0]![1] + 1;
    for (const c of changes) this.recent.push(c);
    while (this.recent.length - this.recentStart > RECENT_MAX) {
      const [, mod] = this.recent[this.recentStart++]!;
      this.recentFloor = Math.max(this.recentFloor, mod + 1);
    }
    if (this.recentStart > RECENT_MAX) {
      this.recent.splice(0, this.recentStart);
      this.recentStart = 0;
    }
  }

  /**
   * Stop reading the live disk: a snapshot install is about to replace it, and until the peer
   * swaps this store for one over the installed state, reads must keep seeing this store's
   * state, not a mix. Reads then go to a view of the disk as of now.
   */
  pin(): void {
    this.pinned ??= this.disk.openView();
    this.diskMoved();
  }

  /** Release the pinned view (the store is being dropped). */
  close(): void {
    this.pinned?.close();
    this.pinned = null;
    this.absentUnoffered = null;
    this.cache.clear();
  }

  private reader(): DiskRecords | DiskView {
    return this.pinned ?? this.disk;
  }

  private sortedOverlay(): string[] {
    this.overlayOrder ??= [...this.overlay.keys()].sort();
    return this.overlayOrder;
  }

  walkFrom(from: string, visit: (key: string, record: KeyRecord) => boolean): void {
    walkMerged(this.reader(), this.overlay, this.sortedOverlay(), from, visit);
  }

  /**
   * The keys whose current record has modRevision >= `from`, in (modRevision, key) order, until
   * `visit` returns false: the disk's, less the keys the overlay changed, merged with the
   * overlay's own (a watch replays the key space's changes from here: history.ts).
   */
  changedSince(from: number, visit: (key: string, modRevision: number) => boolean): void {
    const mine: Array<[string, number]> = [];
    for (const [key, p] of this.overlay) if (p.record !== null && p.record.modRevision >= from) mine.push([key, p.record.modRevision]);
    mine.sort(byRevisionThenKey);
    let i = 0;
    let open = true;
    const upTo = (key: string | null, mod: number): void => {
      while (open && i < mine.length && (key === null || byRevisionThenKey(mine[i]!, [key, mod]) < 0)) open = visit(...mine[i++]!);
    };
    const durable = (key: string, mod: number): boolean => {
      if (this.overlay.has(key)) return true; // the overlay's record is the current one
      upTo(key, mod);
      if (open) open = visit(key, mod);
      return open;
    };
    if (from >= this.recentFloor) this.recentSince(from, durable);
    else this.reader().changedSince(from, durable);
    upTo(null, 0);
  }

  /** changedSince of the durable records from the changes remembered (from >= recentFloor):
   *  those that are still their key's record, in (modRevision, key) order. */
  private recentSince(from: number, visit: (key: string, modRevision: number) => boolean): void {
    let lo = this.recentStart;
    let hi = this.recent.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.recent[mid]![1] < from) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.recent.length; i++) {
      const [key, mod] = this.recent[i]!;
      if (this.overlay.has(key)) continue; // its durable record is not its current one
      const cached = this.cache.peek(key);
      const record = cached === undefined ? this.reader().get(key) : cached;
      // Changed since (a later entry, or the overlay) or deleted: not this change any more.
      if (record?.modRevision !== mod) continue;
      if (!visit(key, mod)) return;
    }
  }

  beginView(): RecordCursor {
    const overlay = new Map<string, Pending>(this.overlay);
    return new TieredCursor(this.disk.openView(), overlay, [...this.sortedOverlay()], this.records);
  }
}

/** The disk's records from `from` with the overlay's changes merged in, in key order. */
function walkMerged(
  disk: Pick<DiskRecords, 'walkFrom'>,
  overlay: ReadonlyMap<string, Pending>,
  order: readonly string[],
  from: string,
  visit: (key: string, record: KeyRecord) => boolean,
): void {
  let i = lowerBound(order, from);
  let open = true;
  /** Visit the overlay's keys before `bound` (all when undefined): its puts, not its deletes. */
  const overlayUpTo = (bound: string | undefined): void => {
    while (open && i < order.length && (bound === undefined || order[i]! < bound)) {
      const record = overlay.get(order[i++]!)!.record;
      if (record !== null) open = visit(order[i - 1]!, record);
    }
  };
  disk.walkFrom(from, (key, record) => {
    overlayUpTo(key);
    if (!open) return false;
    if (i < order.length && order[i] === key) {
      const mine = overlay.get(order[i++]!)!.record;
      if (mine !== null) open = visit(key, mine);
    } else {
      open = visit(key, record);
    }
    return open;
  });
  overlayUpTo(undefined);
}

class TieredCursor implements RecordCursor {
  readonly recordCount: number;
  private readonly view: DiskView;
  private readonly overlay: ReadonlyMap<string, Pending>;
  private readonly order: readonly string[];
  /** Where the next slice starts ('' first), null once done. */
  private from: string | null = '';
  private returned = 0;
  private closed = false;

  constructor(view: DiskView, overlay: ReadonlyMap<string, Pending>, order: readonly string[], recordCount: number) {
    this.view = view;
    this.overlay = overlay;
    this.order = order;
    this.recordCount = recordCount;
  }

  get done(): boolean {
    return this.from === null;
  }

  next(recordsMax: number, charsMax = Infinity): Array<[string, KeyRecord]> {
    if (this.closed) throw new Error('RecordCursor.next after close');
    const out: Array<[string, KeyRecord]> = [];
    if (this.from === null) return out;
    let chars = 0;
    let more = false;
    walkMerged(this.view, this.overlay, this.order, this.from, (key, record) => {
      if (out.length >= recordsMax || (out.length > 0 && chars >= charsMax)) {
        more = true;
        return false;
      }
      out.push([key, record]);
      chars += key.length + record.value.length;
      return true;
    });
    this.returned += out.length;
    this.from = more ? after(out[out.length - 1]![0]) : null;
    if (this.from === null && this.returned !== this.recordCount) {
      throw new Error(`tiered view: ${this.returned} records walked, the store counted ${this.recordCount}`);
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.view.close();
  }
}
