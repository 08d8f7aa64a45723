// What the sqlite engine's two sides share (the loader on the event loop, sqlite-engine.ts, and
// the writer in its worker thread, sqlite-writer.ts): the file name, the tables, the
// connection settings, and the decoding of the integer rows of the `state` table.

import type { ByteReader } from './bytes.ts';

export const SQLITE_FILE = 'metcd.db';

// The snapshot has a (rowid) table of its own: in the WITHOUT ROWID `state` table its blob, MBs
// on overflow pages, was read whole whenever a search compared against its row (SQLite's index
// b-tree compares full records), which tripled the cost of every commit once a snapshot
// existed. Data dirs written before keep it as the `snapshot` row of `state` until the next
// compaction moves it.
export const SNAPSHOT_ROW_ID = 1;

export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY, value BLOB NOT NULL);
  CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL);
  CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, rec BLOB NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS sessions (client TEXT PRIMARY KEY, rec BLOB NOT NULL) WITHOUT ROWID;
`;

/** Every connection: waits (not fails) for a lock the other holds briefly — set first, since
 *  the WAL pragma itself may meet one (the loader's connection closing as the writer thread
 *  opens: the last connection checkpoints under an exclusive lock) — WAL mode, B-tree cells
 *  checked as read, the WAL cut back to 64 MiB after a checkpoint. */
export const CONNECTION_PRAGMAS =
  'PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA cell_size_check = ON; PRAGMA journal_size_limit = 67108864;';

/** The `applied` and `revision` rows: a sealed unsigned integer (written in sqlite-ops.ts). */
export const readUintRow = (r: ByteReader): number => r.uint();
