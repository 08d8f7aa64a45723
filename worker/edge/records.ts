// The edge's records as DiskRecords (worker/kv/record-store.ts): what a tiered store reads on a
// cache miss, synchronously, from the object's own SQLite (record-rows.ts has the tables).
//
// Reads are paged queries (`WHERE k >= ? ORDER BY k LIMIT n`, each page read whole with
// toArray()): no SQL cursor stays open while a visit runs, so a visit may itself read. A page
// of records is sized from the records seen so far (PAGE_CHARS), so a walk over largest values
// holds a few of them at a time, not hundreds of megabytes.
//
// Deferred derived batches (storage.ts header): the storage resolves a save of derived state
// before writing it, and the peer then drops those changes from its overlay, so every read of
// the records must show them. walkFrom, changedSince and openView write the waiting batches
// first (the storage's flush(): one transaction), then read. get, the hot read (every cache
// miss), does not: it asks the storage for the waiting batches' own record of the key first
// (a map kept as they are deferred, newest change per key), and reads the table only for a key
// none of them changed, whose row is then the same whether or not they are written. So a miss
// never turns a deferred batch into a write of its own; only range reads do (merging the map
// into a walk in order would cost a sorted copy of it per walk, for reads rarer than misses).
// A view's reads need neither: it opened after a flush, and what is written later keeps its
// pre-images.
//
// Views on one connection: a Durable Object has one SQLite connection, and a view cannot hold
// a read transaction on it across saves. Views are copy-on-write instead, in SQL (a view may
// stay open for minutes while a large state streams: its pre-images must not sit in memory).
// While views are open, every write of a record (upsert, delete), in the save's own
// transaction, first stores the key's record as it is (NULL value: no record) into
// `view_prev` for each open view on the live table, once per view (INSERT OR IGNORE: the first
// pre-image is the one the view opened with). A view's get is its pre-image if it has one,
// else the live row; its walks merge the two in SQL (a compound SELECT ordered by k, or by
// (mod, k)). A replace of the whole key space (a snapshot install, staged or not) while views
// are open renames the live table to a retired one instead of copying every pre-image: the
// views on it read from it from then on (their pre-images still apply on top of it), and later
// writes, to the new live table, store no pre-images for them (a retired table loses its mod
// index, whose name the live table's needs: a view's changedSince over it sorts; only a store
// pinned while an install is written reads one). The last view on a retired table drops it
// when it closes. A view's close deletes its pre-images. Storage open drops whatever
// a crash left of views (the pre-images, retired tables): views do not survive their object.
//
// The renames happen inside the save's transaction: which views read which table changes with
// it, and is undone if it rolls back (commit()/rollback(), called by the storage).
//
// Measured under local workerd (2-core machine, 100,000 records of 100-byte values): a get
// (a miss of the peer's cache) 19 µs; a view's get 25 µs (its pre-image, then the table); a
// walk of every record 2.5-2.9 µs a record, a view's 2-3.3 µs with 5,000 pre-images; 5,000
// upserts in 50 saves 290-345 ms, 395-500 ms with one view open (its pre-image writes); a
// view opened and closed 50 µs.

import type { DiskRecords, DiskView } from '../kv/record-store.ts';
import type { KeyRecord } from '../kv/types.ts';
import { decodeKey, encodeKey } from '../kv/key-bytes.ts';
import type { DurableStorageLike, SqlLike, SqlValue } from './sql.ts';
import { blob, bytes, int, StorageError } from './sql-values.ts';
import { RECORD_COLUMNS, RECORDS, RECORDS_MOD_INDEX, RETIRED_PREFIX, STAGED, recordOf, recordsTable, upsertRow } from './record-rows.ts';

/** What the records need of the storage that writes them (storage.ts). */
export interface RecordsHost {
  /** Write the waiting derived batches now (a range read or a view must show them). */
  flush(): void;
  /** The newest record the waiting derived batches hold for `key`: null for a delete,
   *  undefined when none of them changed it. */
  waiting(key: string): KeyRecord | null | undefined;
  /** Throws once the storage is closed. */
  assertOpen(): void;
}

/** Rows of a walk's first page, and most per page (a page of small records). */
const FIRST_PAGE_ROWS = 16;
const PAGE_ROWS_MAX = 256;
/** What a page of a walk aims to hold: keys and values, in UTF-16 units (the next page's row
 *  count is this over the mean record seen so far). */
const PAGE_CHARS = 256 * 1024;
/** Rows per page of changedSince (keys and revisions only). */
const CHANGED_PAGE_ROWS = 256;

/** The smallest key after `k` (its bytes then one zero code unit): where the next page starts. */
function afterKey(k: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(k.length + 2);
  out.set(k);
  return out.buffer;
}

type Visit = (key: string, record: KeyRecord) => boolean;
type ChangedVisit = (key: string, modRevision: number) => boolean;

/** Pages of (k, record) rows from `page(fromKey, rows)` in key order, until `visit` says stop. */
function walkPages(page: (from: ArrayBuffer, rows: number) => Record<string, SqlValue>[], from: string, visit: Visit): void {
  let start: ArrayBuffer = blob(encodeKey(from));
  let rows = FIRST_PAGE_ROWS;
  let seenRows = 0;
  let seenChars = 0;
  for (;;) {
    const got = page(start, rows);
    let last: Uint8Array | null = null;
    for (const row of got) {
      last = bytes(row.k);
      const key = decodeKey(last);
      const record = recordOf(row);
      seenRows++;
      seenChars += key.length + record.value.length;
      if (!visit(key, record)) return;
    }
    if (got.length < rows || last === null) return;
    start = afterKey(last);
    rows = Math.max(1, Math.min(PAGE_ROWS_MAX, Math.floor(PAGE_CHARS / Math.max(1, seenChars / seenRows))));
  }
}

/** Pages of (k, mod) rows from `page(mod, fromKey, rows)` in (mod, k) order, until `visit` says stop. */
function changedPages(
  page: (mod: number, from: ArrayBuffer, rows: number) => Record<string, SqlValue>[],
  revision: number,
  visit: ChangedVisit,
): void {
  let mod = revision;
  let start = new ArrayBuffer(0);
  for (;;) {
    const got = page(mod, start, CHANGED_PAGE_ROWS);
    for (const row of got) {
      const k = bytes(row.k);
      mod = int(row.mod);
      start = afterKey(k);
      if (!visit(decodeKey(k), mod)) return;
    }
    if (got.length < CHANGED_PAGE_ROWS) return;
  }
}

interface ViewState {
  /** The table the view reads beneath its pre-images: RECORDS, or a retired one. */
  base: string;
}

export class EdgeRecords implements DiskRecords {
  private readonly sql: SqlLike;
  private readonly storage: DurableStorageLike;
  private readonly host: RecordsHost;
  private readonly views = new Map<number, ViewState>();
  private nextViewId = 1;
  private nextRetired = 1;
  /** How to undo what the open transaction changed in `views` (a rename), if it rolls back. */
  private undo: Array<() => void> = [];
  /** Pre-image writes so far, one per open view per record written (INSERT OR IGNORE: a key's
   *  second write for a view stores nothing), for /status and the tests. */
  private preImageWrites = 0;

  constructor(storage: DurableStorageLike, host: RecordsHost) {
    this.storage = storage;
    this.sql = storage.sql;
    this.host = host;
  }

  /** At storage open, in its transaction: what a crash left of views, and of a transfer. */
  static dropLeftovers(sql: SqlLike): void {
    sql.exec('DELETE FROM view_prev');
    if (sql.exec(`SELECT 1 FROM ${STAGED} LIMIT 1`).toArray().length > 0) {
      sql.exec(`DROP TABLE ${STAGED}`);
      sql.exec(recordsTable(STAGED));
    }
    const retired = sql
      .exec(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '${RETIRED_PREFIX.replaceAll('_', '\\_')}%' ESCAPE '\\'`)
      .toArray();
    for (const t of retired) sql.exec(`DROP TABLE "${String(t.name)}"`);
  }

  // ---- reads of the live records ----

  get(key: string): KeyRecord | undefined {
    this.host.assertOpen();
    const waiting = this.host.waiting(key);
    if (waiting !== undefined) return waiting ?? undefined;
    return this.getFrom(RECORDS, key);
  }

  walkFrom(from: string, visit: Visit): void {
    this.host.assertOpen();
    this.host.flush();
    walkPages(
      (start, rows) => this.sql.exec(`SELECT ${RECORD_COLUMNS} FROM ${RECORDS} WHERE k >= ? ORDER BY k LIMIT ${rows}`, start).toArray(),
      from,
      visit,
    );
  }

  changedSince(revision: number, visit: ChangedVisit): void {
    this.host.assertOpen();
    this.host.flush();
    changedPages(
      (mod, start, rows) =>
        this.sql.exec(`SELECT k, mod FROM ${RECORDS} WHERE (mod, k) >= (?, ?) ORDER BY mod, k LIMIT ${rows}`, mod, start).toArray(),
      revision,
      visit,
    );
  }

  openView(): DiskView {
    this.host.assertOpen();
    this.host.flush();
    const id = this.nextViewId++;
    this.views.set(id, { base: RECORDS });
    return new EdgeView(this, id);
  }

  /** Views open now, and pre-image writes since the storage opened. */
  viewCounts(): { open: number; preImageWrites: number } {
    return { open: this.views.size, preImageWrites: this.preImageWrites };
  }

  // ---- writes, inside the storage's transaction ----

  /** Creates or replaces `key`'s record in the live table. */
  put(key: string, record: KeyRecord): void {
    if (this.views.size > 0) this.keepPreImages(key);
    upsertRow(this.sql, RECORDS, key, record);
  }

  remove(key: string): void {
    const k = blob(encodeKey(key));
    if (this.views.size > 0) this.keepPreImages(key);
    this.sql.exec(`DELETE FROM ${RECORDS} WHERE k = ?`, k);
  }

  /** The live table empty, for a snapshot install that writes its records (kv.records): made
   *  anew (a DROP frees the old table's pages at once; a DELETE would write every row). */
  clear(): void {
    if (!this.retireLive()) this.sql.exec(`DROP TABLE ${RECORDS}`);
    this.sql.exec(recordsTable(RECORDS));
    this.sql.exec(RECORDS_MOD_INDEX);
  }

  /** Staged records of a snapshot arriving in chunks (SaveBatch.stage); `reset` empties first. */
  stage(reset: boolean, records: ReadonlyArray<readonly [string, KeyRecord]>): void {
    if (reset) {
      this.sql.exec(`DROP TABLE ${STAGED}`);
      this.sql.exec(recordsTable(STAGED));
    }
    for (const [key, record] of records) upsertRow(this.sql, STAGED, key, record);
  }

  /** The staged records become the live ones (a staged install): the tables are swapped, not
   *  copied, and the mod index is built on the new live table by one sort. */
  swapStaged(): void {
    if (!this.retireLive()) this.sql.exec(`DROP TABLE ${RECORDS}`);
    this.sql.exec(`ALTER TABLE ${STAGED} RENAME TO ${RECORDS}`);
    this.sql.exec(RECORDS_MOD_INDEX);
    this.sql.exec(recordsTable(STAGED));
  }

  /** The transaction committed: its changes to the views stand. */
  commit(): void {
    this.undo = [];
  }

  /** The transaction rolled back: so do its changes to the views. */
  rollback(): void {
    for (const u of this.undo.reverse()) u();
    this.undo = [];
  }

  /** Drops every view (the storage closes). */
  closeAll(): void {
    for (const id of [...this.views.keys()]) this.closeView(id);
  }

  /** Forgets every view without writing (a crash: open drops what they left). */
  forgetAll(): void {
    this.views.clear();
  }

  /** The views reading the live table (the ones a write must keep pre-images for). */
  private liveViews(): number[] {
    const out: number[] = [];
    for (const [id, v] of this.views) if (v.base === RECORDS) out.push(id);
    return out;
  }

  private keepPreImages(key: string): void {
    const k = blob(encodeKey(key));
    for (const id of this.liveViews()) {
      this.sql.exec(
        `INSERT OR IGNORE INTO view_prev (view, ${RECORD_COLUMNS})
         SELECT ?1, ?2, r.value, r.create_revision, r.mod, r.version FROM (SELECT 1) LEFT JOIN ${RECORDS} AS r ON r.k = ?2`,
        id,
        k,
      );
      this.preImageWrites++;
    }
  }

  /** With views on the live table: renames it to a retired table they read from now on (its
   *  mod index dropped: the name is the live table's). Returns whether it did. */
  private retireLive(): boolean {
    const moved = this.liveViews();
    if (moved.length === 0) return false;
    const name = `${RETIRED_PREFIX}${this.nextRetired++}`;
    this.sql.exec('DROP INDEX records_mod');
    this.sql.exec(`ALTER TABLE ${RECORDS} RENAME TO ${name}`);
    for (const id of moved) this.views.get(id)!.base = name;
    this.undo.push(() => {
      for (const id of moved) {
        const v = this.views.get(id);
        if (v !== undefined) v.base = RECORDS;
      }
    });
    return true;
  }

  // ---- views ----

  /** `id`'s state; throws once it is closed. */
  view(id: number): ViewState {
    this.host.assertOpen();
    const v = this.views.get(id);
    if (v === undefined) throw new StorageError('the view is closed');
    return v;
  }

  getFrom(table: string, key: string): KeyRecord | undefined {
    const row = this.sql.exec(`SELECT ${RECORD_COLUMNS} FROM ${table} WHERE k = ?`, blob(encodeKey(key))).toArray()[0];
    return row === undefined ? undefined : recordOf(row);
  }

  viewGet(id: number, key: string): KeyRecord | undefined {
    const { base } = this.view(id);
    const prev = this.sql.exec(`SELECT ${RECORD_COLUMNS} FROM view_prev WHERE view = ? AND k = ?`, id, blob(encodeKey(key))).toArray()[0];
    if (prev !== undefined) return prev.value === null ? undefined : recordOf(prev);
    return this.getFrom(base, key);
  }

  viewWalkFrom(id: number, from: string, visit: Visit): void {
    this.view(id);
    walkPages(
      (start, rows) => {
        // The base table's rows the view has no pre-image for, and its pre-images of records.
        const { base } = this.view(id); // a visit may not close the view: checked per page
        return this.sql
          .exec(
            `SELECT ${RECORD_COLUMNS} FROM ${base} AS b
               WHERE b.k >= ?1 AND NOT EXISTS (SELECT 1 FROM view_prev AS p WHERE p.view = ?2 AND p.k = b.k)
             UNION ALL
             SELECT ${RECORD_COLUMNS} FROM view_prev WHERE view = ?2 AND k >= ?1 AND value IS NOT NULL
             ORDER BY k LIMIT ${rows}`,
            start,
            id,
          )
          .toArray();
      },
      from,
      visit,
    );
  }

  viewChangedSince(id: number, revision: number, visit: ChangedVisit): void {
    this.view(id);
    changedPages(
      (mod, start, rows) => {
        const { base } = this.view(id);
        return this.sql
          .exec(
            `SELECT k, mod FROM ${base} AS b
               WHERE (b.mod, b.k) >= (?1, ?2) AND NOT EXISTS (SELECT 1 FROM view_prev AS p WHERE p.view = ?3 AND p.k = b.k)
             UNION ALL
             SELECT k, mod FROM view_prev WHERE view = ?3 AND value IS NOT NULL AND (mod, k) >= (?1, ?2)
             ORDER BY mod, k LIMIT ${rows}`,
            mod,
            start,
            id,
          )
          .toArray();
      },
      revision,
      visit,
    );
  }

  /** Deletes the view's pre-images, and its retired table if no other view reads it. */
  closeView(id: number): void {
    const v = this.views.get(id);
    if (v === undefined) return;
    this.views.delete(id);
    const lastOnRetired = v.base !== RECORDS && ![...this.views.values()].some((o) => o.base === v.base);
    this.storage.transactionSync(() => {
      this.sql.exec('DELETE FROM view_prev WHERE view = ?', id);
      if (lastOnRetired) this.sql.exec(`DROP TABLE ${v.base}`);
    });
  }
}

class EdgeView implements DiskView {
  private readonly records: EdgeRecords;
  private readonly id: number;

  constructor(records: EdgeRecords, id: number) {
    this.records = records;
    this.id = id;
  }

  get(key: string): KeyRecord | undefined {
    return this.records.viewGet(this.id, key);
  }

  walkFrom(from: string, visit: Visit): void {
    this.records.viewWalkFrom(this.id, from, visit);
  }

  changedSince(revision: number, visit: ChangedVisit): void {
    this.records.viewChangedSince(this.id, revision, visit);
  }

  close(): void {
    this.records.closeView(this.id);
  }
}
