// The tables of the edge's key space (Durable Object SQLite), and what reads and writes them
// outside a view: the records, the staging table of a snapshot arriving in chunks, the views'
// pre-images (records.ts), the summary row, and the move of an older database's `kv` table.
//
// `records` is the home of the key space: `k` is the key's UTF-16 code units big-endian
// (worker/kv/key-bytes.ts), so BLOB order is JavaScript's string order; the record's fields are
// columns (no seal: Durable Object SQLite is the platform's, checked by it); `mod` is indexed
// for changedSince, and the index of a WITHOUT ROWID table holds the primary key after it, so
// it serves (mod, k) order without a sort. `staged` has the shape of `records` and no mod index
// (the swap builds it by one sort, as the sqlite engine does: node-runtime/storage/sqlite-schema.ts).

import type { KeyRecord, RecordSummary } from '../kv/types.ts';
import { countRecord, emptySummary } from '../kv/record-summary.ts';
import { encodeKey } from '../kv/key-bytes.ts';
import type { SqlLike, SqlValue } from './sql.ts';
import { blob, int, str } from './sql-values.ts';

export const RECORDS = 'records';
export const STAGED = 'staged';
/** Tables a replace of the whole key space left for the views still reading them (records.ts). */
export const RETIRED_PREFIX = 'records_retired_';

export const recordsTable = (name: string): string =>
  `CREATE TABLE IF NOT EXISTS ${name} (
     k BLOB PRIMARY KEY, value TEXT NOT NULL, create_revision INTEGER NOT NULL,
     mod INTEGER NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID`;
export const RECORDS_MOD_INDEX = `CREATE INDEX IF NOT EXISTS records_mod ON ${RECORDS} (mod)`;

/** A view's pre-images (records.ts): a key's record as it was when the view opened; NULL value
 *  when the key had none. */
export const VIEW_PREV_TABLE = `CREATE TABLE IF NOT EXISTS view_prev (
     view INTEGER NOT NULL, k BLOB NOT NULL, value TEXT, create_revision INTEGER,
     mod INTEGER, version INTEGER, PRIMARY KEY (view, k)) WITHOUT ROWID`;

/** The RecordSummary of `records`; no row: unknown (counted at the next load). */
export const SUMMARY_TABLE = `CREATE TABLE IF NOT EXISTS record_summary (
     id INTEGER PRIMARY KEY CHECK (id = 1), records INTEGER NOT NULL,
     internal_records INTEGER NOT NULL, bytes INTEGER NOT NULL)`;

export const RECORD_SCHEMA: readonly string[] = [
  recordsTable(RECORDS),
  RECORDS_MOD_INDEX,
  recordsTable(STAGED),
  VIEW_PREV_TABLE,
  SUMMARY_TABLE,
];

export const RECORD_COLUMNS = 'k, value, create_revision, mod, version';

export function recordOf(row: Record<string, SqlValue>): KeyRecord {
  return { value: str(row.value), createRevision: int(row.create_revision), modRevision: int(row.mod), version: int(row.version) };
}

/** Writes `record` under `key` in `table` (records or staged). */
export function upsertRow(sql: SqlLike, table: string, key: string, r: KeyRecord): void {
  sql.exec(
    `INSERT OR REPLACE INTO ${table} (${RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?)`,
    blob(encodeKey(key)),
    r.value,
    r.createRevision,
    r.modRevision,
    r.version,
  );
}

export function readSummary(sql: SqlLike): RecordSummary | null {
  const row = sql.exec('SELECT records, internal_records, bytes FROM record_summary').toArray()[0];
  return row === undefined ? null : { records: int(row.records), internalRecords: int(row.internal_records), bytes: int(row.bytes) };
}

/** Sets the summary row; null deletes it (unknown). */
export function writeSummary(sql: SqlLike, s: RecordSummary | null): void {
  if (s === null) {
    sql.exec('DELETE FROM record_summary');
    return;
  }
  sql.exec(
    `INSERT INTO record_summary (id, records, internal_records, bytes) VALUES (1, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET records = excluded.records, internal_records = excluded.internal_records,
     bytes = excluded.bytes`,
    s.records,
    s.internalRecords,
    s.bytes,
  );
}

/** Rows of the old table read per query while moving it. */
const MIGRATE_PAGE_ROWS = 512;

/**
 * A database written before the records table (a deployed edge cluster) kept its records in
 * `kv (key TEXT PRIMARY KEY, value, create_revision, mod_revision, version)`, in UTF-8 order.
 * Moves every row to `records` (key as UTF-16BE), writes their summary, drops `kv`. Run inside
 * the caller's transaction: a failure leaves `kv` as it was, and the next open moves it again.
 * Returns how many records moved (null: there was no `kv` table).
 */
export function migrateKvTable(sql: SqlLike): number | null {
  if (sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kv'`).toArray().length === 0) return null;
  const summary = emptySummary();
  let after: string | null = null;
  for (;;) {
    const rows = sql
      .exec(
        `SELECT key, value, create_revision, mod_revision, version FROM kv ${after === null ? '' : 'WHERE key > ?'} ORDER BY key LIMIT ${MIGRATE_PAGE_ROWS}`,
        ...(after === null ? [] : [after]),
      )
      .toArray();
    for (const row of rows) {
      const key = str(row.key);
      const record: KeyRecord = {
        value: str(row.value),
        createRevision: int(row.create_revision),
        modRevision: int(row.mod_revision),
        version: int(row.version),
      };
      upsertRow(sql, RECORDS, key, record);
      countRecord(summary, key, record);
      after = key;
    }
    if (rows.length < MIGRATE_PAGE_ROWS) break;
  }
  sql.exec('DROP TABLE kv');
  writeSummary(sql, summary);
  return summary.records;
}
