// What the sqlite engine's sides share (the loader on the event loop, sqlite-engine.ts, the
// readers of the records, sqlite-records.ts, and the writer in its worker thread,
// sqlite-writer.ts): the file name, the tables, the connection settings, the decoding of the
// integer rows of the `state` table, and how a bad row or an SQLite error reads as corruption.

import { FormatError, type ByteReader } from './bytes.ts';
import { StorageCorruptError } from './errors.ts';
import { unseal } from './records.ts';

export const SQLITE_FILE = 'metcd.db';

// The snapshot has a (rowid) table of its own: in the WITHOUT ROWID `state` table its blob, MBs
// on overflow pages, was read whole whenever a search compared against its row (SQLite's index
// b-tree compares full records), which tripled the cost of every commit once a snapshot
// existed. Data dirs written before keep it as the `snapshot` row of `state` until the next
// compaction moves it.
export const SNAPSHOT_ROW_ID = 1;

// The records are the home of the key space (load() does not read them; sqlite-records.ts
// serves them): `k` is the key's UTF-16 code units big-endian (sqlite-key.ts), so BLOB order is
// JavaScript's string order; `rec` the sealed KeyRecord; `mod` its modRevision, indexed for
// DiskRecords.changedSince. Data dirs from before kept them in a `kv` table keyed by TEXT
// (UTF-8 order), moved here at open (sqlite-migrate.ts).
//
// `staged` has the shape of `records` and holds the records of a snapshot arriving in chunks
// (SaveBatch.stage), apart from the live ones; installing them swaps the tables (STAGED_SWAP).
// It has no mod index: the swap builds one (an index built by sorting once is ~3x cheaper than
// one kept up to date under inserts in random mod order: 200k records staged and swapped in
// 1.0-1.4 s against 2.9-3.8 s). Its rows mean nothing after a restart: open empties it.
const recordsTable = (name: string): string =>
  `CREATE TABLE IF NOT EXISTS ${name} (k BLOB PRIMARY KEY, rec BLOB NOT NULL, mod INTEGER NOT NULL) WITHOUT ROWID;`;
const RECORDS_MOD_INDEX = 'CREATE INDEX IF NOT EXISTS records_mod ON records(mod);';
export const STAGED_TABLE = 'staged';

export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY, value BLOB NOT NULL);
  CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL);
  ${recordsTable('records')}
  ${RECORDS_MOD_INDEX}
  ${recordsTable(STAGED_TABLE)}
  CREATE TABLE IF NOT EXISTS sessions (client TEXT PRIMARY KEY, rec BLOB NOT NULL) WITHOUT ROWID;
`;

/** Empties the staging table: dropped and made again, which frees its pages in one step (a
 *  DELETE would write every row's page to the WAL). In a transaction of the writer, or at open. */
export const STAGED_RESET = `DROP TABLE ${STAGED_TABLE}; ${recordsTable(STAGED_TABLE)}`;

/**
 * The staged records become the records: the tables are swapped, not copied (the old table's
 * pages go to the free list in one step; no row is written twice), the mod index is built on
 * the new table by one sort, and an empty staging table is made. In the writer's transaction,
 * so a crash leaves the old records or the new, never a mix. Prepared statements naming
 * `records` (the writer's, the readers' in sqlite-records.ts) are prepared again by SQLite at
 * their next step, on the new table; a reader holding a read transaction begun before the swap
 * (a DiskView) keeps reading the old table's pages, which a writer may reuse only in new WAL
 * frames it does not see.
 */
export const STAGED_SWAP = `DROP TABLE records; ALTER TABLE ${STAGED_TABLE} RENAME TO records; ${RECORDS_MOD_INDEX} ${recordsTable(STAGED_TABLE)}`;

/** Every connection: waits (not fails) for a lock the other holds briefly — set first, since
 *  the WAL pragma itself may meet one (the loader's connection closing as the writer thread
 *  opens: the last connection checkpoints under an exclusive lock) — WAL mode, B-tree cells
 *  checked as read, the WAL cut back to 64 MiB after a checkpoint. */
export const CONNECTION_PRAGMAS =
  'PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA cell_size_check = ON; PRAGMA journal_size_limit = 67108864;';

/** The `state` row holding the RecordSummary of `records` (sealed, records.ts), written with
 *  every batch of KV changes that carries one and deleted by one that does not (unknown: the
 *  next open counts again). */
export const SUMMARY_ROW = 'kvSummary';

/** Settings of the connections that only read (sqlite-records.ts): the lock wait and the cell
 *  checks; no journal pragmas (the mode is the file's, set by the writing connections). */
export const READER_PRAGMAS = 'PRAGMA busy_timeout = 10000; PRAGMA cell_size_check = ON; PRAGMA query_only = ON;';

/** The `applied` and `revision` rows: a sealed unsigned integer (written in sqlite-ops-encode.ts). */
export const readUintRow = (r: ByteReader): number => r.uint();

/** A sealed value of `table`'s row `key`, checked and decoded; a bad one is StorageCorruptError. */
export function unsealRow<T>(file: string, table: string, key: string | number, value: Uint8Array, read: (r: ByteReader) => T): T {
  try {
    return unseal(value, read);
  } catch (err) {
    if (err instanceof FormatError) throw new StorageCorruptError(file, -1, `table ${table} row ${JSON.stringify(key)}: ${err.message}`);
    throw err;
  }
}

/** SQLite's own reports of a damaged file as StorageCorruptError; other errors as they are. */
export function asCorruption(file: string, err: unknown): unknown {
  if (err instanceof StorageCorruptError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (/malformed|not a database|corrupt/i.test(msg)) return new StorageCorruptError(file, -1, `sqlite: ${msg}`);
  return err;
}
