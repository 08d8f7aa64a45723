// Where the KV state machine keeps its records: the seam between apply (pure, synchronous) and
// the memory that holds the key space. The state machine reads and writes every record through
// a RecordStore and never holds the records itself, so a host may back the store with memory
// (memory-records.ts: the whole key space in a map) or with a storage engine's table and a
// bounded cache of hot records (a tiered store), and apply decides the same results either way.
//
// Reads are synchronous: apply must not wait in the middle of a command (every replica applies
// the same commands in the same order to the same answers). A store over an engine serves a
// miss from the engine's own index (an in-process B-tree read), not from a remote call.

import type { KeyRecord } from './types.ts';

export type { RecordSummary } from './types.ts';

/** The records of a store as of one moment, in key order, a slice at a time, while later writes
 *  keep changing the store (for snapshots and backups). */
export interface RecordCursor {
  /** How many records the cursor returns in all. */
  readonly recordCount: number;
  /** Every record has been returned by next(). */
  readonly done: boolean;
  /** The next records in key order: at most `recordsMax`, and stopping once their keys and
   *  values pass `charsMax` UTF-16 units (at least one record). [] once done. */
  next(recordsMax: number, charsMax?: number): Array<[string, KeyRecord]>;
  /** Stop tracking changes (when done with the cursor, or to abandon it). */
  close(): void;
}

/** How a tiered store's reads were served since it opened. */
export interface TierCounts {
  /** Reads answered from the overlay or the cache. */
  hits: number;
  /** Reads that went to the disk. */
  misses: number;
  /** Of those, the reads whose record was fetched off the event loop before the read ran (prefetch). */
  missesOffLoop: number;
  /** Changes waiting for their save (the overlay's entries). */
  pending: number;
  /** The cache: records held, their estimated bytes, its budget, records pushed out. */
  entries: number;
  bytes: number;
  capacityBytes: number;
  evictions: number;
}

export interface RecordStore {
  /** Records held (metcd's own keys included). */
  readonly size: number;
  get(key: string): KeyRecord | undefined;
  /** Create or replace `key`'s record (records are immutable: a new object per write). `prev` is
   *  its record until now, as get() just returned it (the caller always reads before it writes:
   *  a store on disk need not read it again). */
  set(key: string, record: KeyRecord, prev: KeyRecord | undefined): void;
  /** Remove `key`, whose record until now is `prev` (as get() just returned it). */
  delete(key: string, prev: KeyRecord): void;
  /** The records with keys >= `from` in order, until `visit` returns false. The store must not
   *  be changed during the walk. */
  walkFrom(from: string, visit: (key: string, record: KeyRecord) => boolean): void;
  /** A cursor over the records as of now that later writes do not change. */
  beginView(): RecordCursor;
  /** The changes made so far go in the save being built: a number for changesDurable(). */
  sealChanges(): number;
  /** The saves carrying the changes sealed up to `batch` resolved (a store on disk may now
   *  read them from there). */
  changesDurable(batch: number): void;
  /** A snapshot install is about to replace the store's backing: reads must keep seeing the
   *  state as of now until the store is dropped (a store on disk reads a view from then on). */
  pin(): void;
  /** The store is dropped (its state was replaced): release what it holds. */
  close(): void;
  /** How a tiered store served its reads (null: all in memory, nothing to count). */
  tierCounts(): TierCounts | null;
  /** Reads `keys` that memory does not hold from the disk off the event loop, so the get that
   *  follows does not wait on the disk: resolves when they are in hand. Null when there is
   *  nothing to fetch (all in memory, or a disk that reads only on the loop). */
  prefetch(keys: readonly string[]): Promise<void> | null;
}

/**
 * The durable records of a storage engine with an index on disk: what a tiered store
 * (tiered-records.ts) reads on a cache miss, synchronously, from the engine's own index in this
 * process (a B-tree lookup, microseconds when the page is cached). It shows every save that has
 * resolved, and may show one still in flight already (whole, never in part: sqlite's writer
 * thread commits a moment before its answer reaches the peer); the store's overlay holds the
 * same or newer records for every key such a save carries, so either way reads agree. A record
 * whose stored form fails its check throws the engine's corruption error.
 */
export interface DiskRecords {
  get(key: string): KeyRecord | undefined;
  /** get, off the event loop (an engine whose reads can run on another thread): what a read's
   *  prefetch uses, so a miss does not block the loop for other requests. Shows at least what
   *  get would show when called. */
  getAsync?(key: string): Promise<KeyRecord | undefined>;
  /** Whether a read on the event loop is slow enough now that getAsync is worth its hop (an
   *  engine that times its reads: a page-cached read costs less than the hop). Absent: always. */
  offLoopReads?(): boolean;
  /** The records with keys >= `from` in JavaScript string order (UTF-16 code units, as
   *  sorted-keys.ts), until `visit` returns false. No save resolves during a walk. */
  walkFrom(from: string, visit: (key: string, record: KeyRecord) => boolean): void;
  /** The durable records as of now, unchanged by saves that resolve later (a read transaction
   *  on a connection of its own), until closed: what a snapshot or backup cursor reads. */
  openView(): DiskView;
  /** The durable records' keys whose modRevision is >= `revision`, with that modRevision, in
   *  (modRevision, key) order, until `visit` returns false: a watch replays the changes of the
   *  key space from here (history.ts), with no index of them in memory. */
  changedSince(revision: number, visit: (key: string, modRevision: number) => boolean): void;
}

export interface DiskView {
  get(key: string): KeyRecord | undefined;
  walkFrom(from: string, visit: (key: string, record: KeyRecord) => boolean): void;
  changedSince(revision: number, visit: (key: string, modRevision: number) => boolean): void;
  close(): void;
}
