// The sqlite engine's records as DiskRecords (worker/kv/record-store.ts): what a tiered store
// reads on a cache miss, synchronously, on the event loop. A read-only connection of its own
// (node:sqlite is synchronous: a lookup is a B-tree descent in this thread, microseconds when
// the pages are cached) with prepared statements over the `records` table, whose BLOB keys sort
// in JavaScript string order (sqlite-key.ts). Every record's seal is checked as it is read: a
// bad one is StorageCorruptError naming the table and the key.
//
// Visibility: the connection holds no transaction between reads, so each read sees the last
// commit; a save resolves only after the writer thread committed it (WAL mode), so a resolved
// save is visible here. The converse is not exact: between the thread's COMMIT and its answer
// reaching the event loop (a turn of it), a group in flight is already visible, all of it at
// once, never in part. Holding a read transaction from one answer to the next would hide it,
// but a reader that never lets go keeps the WAL from ever being reset under a steady write load.
// A walk steps a statement, which holds a read transaction until it is reset: the walk, and the
// reads its visits make on this connection, see one snapshot whatever commits meanwhile; and a
// walk stopped early resets its statement (the iterator's return()), or every later read on
// this connection would keep seeing the snapshot of that walk.
//
// A view (openView) is a connection of its own holding one read transaction: BEGIN and one read
// pin the WAL snapshot, which later commits do not change, until close(). Opened while a group
// is in the writer thread, it holds that group or not, as a read then would (above).

import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { KeyRecord } from '../../worker/kv/types.ts';
import type { DiskRecords, DiskView } from '../../worker/kv/record-store.ts';
import { readKeyRecord } from './records.ts';
import { decodeKey, encodeKey } from './sqlite-key.ts';
import { READER_PRAGMAS, asCorruption, unsealRow } from './sqlite-schema.ts';
import type { SqliteReaderPool } from './sqlite-reader-pool.ts';
import { LoopReadCost, type OffLoopReads } from './loop-read-cost.ts';

const GET_SQL = 'SELECT rec FROM records WHERE k = ?';
/** Exported for the test of their query plans (the primary key; the records_mod index). */
export const WALK_SQL = 'SELECT k, rec FROM records WHERE k >= ? ORDER BY k';
// The mod index holds (mod, k): ordered by both with no sort (k's bytes are the JS key order).
export const CHANGED_SQL = 'SELECT k, mod FROM records WHERE mod >= ? ORDER BY mod, k';

function openReader(file: string): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(file, { readOnly: true });
    db.exec(READER_PRAGMAS);
    return db;
  } catch (err) {
    db?.close();
    throw asCorruption(file, err);
  }
}

/**
 * Steps `st` with `param`, handing each row to `onRow` until it returns false. The statement
 * is reset however this ends (rows done, stopped early, a throw), ending its read transaction:
 * the iterator's return(), a no-op once the rows ran out. SQLite's errors read as corruption.
 */
function eachRow(file: string, st: StatementSync, param: Uint8Array | number, onRow: (row: unknown[]) => boolean): void {
  let rows: Iterator<unknown> | undefined;
  try {
    try {
      rows = st.iterate(param);
    } catch (err) {
      throw asCorruption(file, err);
    }
    for (;;) {
      let step: IteratorResult<unknown>;
      try {
        step = rows.next();
      } catch (err) {
        throw asCorruption(file, err);
      }
      if (step.done === true || !onRow(step.value as unknown[])) return;
    }
  } finally {
    rows?.return?.();
  }
}

/** get, walkFrom and changedSince on one connection. */
class RecordReader {
  private readonly db: DatabaseSync;
  private readonly file: string;
  private readonly getStmt: StatementSync;
  private readonly walkStmt: StatementSync;
  /** Served by the records_mod index (a covering index: it holds k beside mod). */
  private readonly changedStmt: StatementSync;
  /** A walk is stepping walkStmt (a visit may start another walk: it gets its own statement). */
  private walking = false;
  private changing = false;

  constructor(db: DatabaseSync, file: string) {
    this.db = db;
    this.file = file;
    this.getStmt = this.prepare(GET_SQL);
    this.walkStmt = this.prepare(WALK_SQL);
    this.changedStmt = this.prepare(CHANGED_SQL);
  }

  changedSince(revision: number, visit: (key: string, modRevision: number) => boolean): void {
    if (this.changing) throw new Error('changedSince called from its own visit');
    this.changing = true;
    try {
      eachRow(this.file, this.changedStmt, revision, (row) => visit(decodeKey(row[0] as Uint8Array, true), row[1] as number));
    } finally {
      this.changing = false;
    }
  }

  private prepare(sql: string): StatementSync {
    const st = this.db.prepare(sql);
    st.setReturnArrays(true);
    return st;
  }

  get(key: string): KeyRecord | undefined {
    let row: [Uint8Array] | undefined;
    try {
      row = this.getStmt.get(encodeKey(key)) as [Uint8Array] | undefined;
    } catch (err) {
      throw asCorruption(this.file, err);
    }
    return row === undefined ? undefined : unsealRow(this.file, 'records', key, row[0], readKeyRecord);
  }

  walkFrom(from: string, visit: (key: string, record: KeyRecord) => boolean): void {
    // iterate() on a statement mid-walk would end the walk in progress ("iterator was invalidated").
    const nested = this.walking;
    const st = nested ? this.prepare(WALK_SQL) : this.walkStmt;
    this.walking = true;
    try {
      eachRow(this.file, st, encodeKey(from), (row) => {
        const key = decodeKey(row[0] as Uint8Array, true);
        return visit(key, unsealRow(this.file, 'records', key, row[1] as Uint8Array, readKeyRecord));
      });
    } finally {
      if (!nested) this.walking = false;
    }
  }
}

class SqliteView implements DiskView {
  private readonly db: DatabaseSync;
  private readonly reader: RecordReader;
  private readonly closed: (v: SqliteView) => void;
  private open = true;

  constructor(file: string, closed: (v: SqliteView) => void) {
    this.db = openReader(file);
    try {
      this.db.exec('BEGIN');
      // A deferred BEGIN takes its snapshot at the first read: take it now.
      this.db.prepare('SELECT 1 FROM records LIMIT 1').get();
      this.reader = new RecordReader(this.db, file);
    } catch (err) {
      this.db.close();
      throw asCorruption(file, err);
    }
    this.closed = closed;
  }

  get(key: string): KeyRecord | undefined {
    return this.reader.get(key);
  }

  walkFrom(from: string, visit: (key: string, record: KeyRecord) => boolean): void {
    this.reader.walkFrom(from, visit);
  }

  changedSince(revision: number, visit: (key: string, modRevision: number) => boolean): void {
    this.reader.changedSince(revision, visit);
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    try {
      if (this.db.isTransaction) this.db.exec('COMMIT');
    } finally {
      this.db.close();
      this.closed(this);
    }
  }
}

/** The engine's records for its whole life (load() hands the same object out every time);
 *  closed by the engine's close(), after which every read throws. */
export class SqliteRecords implements DiskRecords {
  private readonly file: string;
  private readonly db: DatabaseSync;
  private readonly reader: RecordReader;
  private readonly views = new Set<SqliteView>();
  /** Reads off the event loop (getAsync); none (not started yet): getAsync reads here. */
  private offLoop: SqliteReaderPool | null = null;
  private closed = false;
  /** How long a read on the loop takes lately (offLoopReads). */
  readonly loopReads: LoopReadCost;

  constructor(file: string, offLoopReads: OffLoopReads = 'auto') {
    this.file = file;
    this.loopReads = new LoopReadCost(offLoopReads);
    this.db = openReader(file);
    try {
      this.reader = new RecordReader(this.db, file);
    } catch (err) {
      this.db.close();
      throw asCorruption(file, err);
    }
  }

  get(key: string): KeyRecord | undefined {
    return this.loopReads.time(() => this.reader.get(key));
  }

  offLoopReads(): boolean {
    return this.offLoop !== null && this.loopReads.offLoop();
  }

  /** get on a reader thread's connection (a client read's prefetch); here when they are down. */
  async getAsync(key: string): Promise<KeyRecord | undefined> {
    const rec = this.offLoop === null ? undefined : await this.offLoop.get(encodeKey(key));
    if (rec === undefined) return this.get(key);
    return rec === null ? undefined : unsealRow(this.file, 'records', key, rec, readKeyRecord);
  }

  walkFrom(from: string, visit: (key: string, record: KeyRecord) => boolean): void {
    this.reader.walkFrom(from, visit);
  }

  openView(): DiskView {
    const view = new SqliteView(this.file, (v) => this.views.delete(v));
    this.views.add(view);
    return view;
  }

  changedSince(revision: number, visit: (key: string, modRevision: number) => boolean): void {
    this.reader.changedSince(revision, visit);
  }

  /** The reader threads, once started (for tests). */
  get offLoopPool(): SqliteReaderPool | null {
    return this.offLoop;
  }

  /** Reads off the loop go to `reader` from now on (it started after the engine opened: a start
   *  does not wait for threads it does not need yet). Closed at once if these records are. */
  async attachOffLoop(reader: SqliteReaderPool): Promise<void> {
    if (this.closed) await reader.close();
    else this.offLoop = reader;
  }

  /** Closes every view still open, then the connections (the reader threads' too). */
  async close(): Promise<void> {
    this.closed = true;
    for (const v of [...this.views]) v.close();
    if (this.db.isOpen) this.db.close();
    await this.offLoop?.close();
  }
}
