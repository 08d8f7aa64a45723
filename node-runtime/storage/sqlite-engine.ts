// The `sqlite` engine: node:sqlite (a B-tree; the read-heavy role boltdb plays in etcd) in
// WAL mode. One transaction per commit group: every batch of the group, in order, all or
// nothing, and the group's save() resolves only once the WAL holding it is fsynced.
//
// A tiered engine: its `records` table is the home of the key space. load() does not read the
// records; it hands the peer `tier.disk` (sqlite-records.ts: a read-only connection on this
// thread that reads them on demand) and `tier.summary`, the counts over them kept in the
// `state` table's summary row, written with every batch of KV changes (sqlite-ops-encode.ts).
//
// The writing connection lives in a worker thread (sqlite-writer.ts): a commit's B-tree
// inserts, WAL frame writes, fsync and any auto-checkpoint (with its own fsyncs) would
// otherwise block the event loop for milliseconds per group, during which the node can neither
// serve nor replicate. The event loop only encodes each group as row operations with sealed
// values into one buffer (sqlite-ops-encode.ts), transfers it, and resolves the group's saves when the
// thread answers; the thread commits with synchronous=FULL, so that answer means the WAL frames
// are on disk, and `tier.disk` shows them. Saves queue while a group is in the thread and go
// together in the next one. If the thread fails or dies, the group and every later save are
// rejected (GroupCommit), which stops the node: nothing is acknowledged that the thread did
// not confirm.
//
// Opening reads only what recovery needs, so its cost does not grow with the number of keys:
// the WAL is checked before SQLite opens it (sqlite-wal-scan.ts: a torn tail is truncated,
// damage before the tail is StorageCorruptError naming file and offset); then the hard state,
// snapshot, log, sessions and meta are read and their CRC32 seals verified (records.ts; SQLite
// has no page checksums). A data dir from before the records table is migrated once
// (sqlite-migrate.ts); a missing summary row (a batch without one) is counted once, by one scan
// of the records, and written; the staging table of a snapshot transfer that a restart cut
// short is emptied (SaveBatch.stage: the records of a snapshot arriving in chunks are staged
// in a table of their own, swapped in for the records at install: sqlite-schema.ts). There is no `PRAGMA quick_check` at open: it reads every page
// of the file, growing with the data: 174-307 ms for 1,000,000 records of 100-byte values (a
// 200 MB file) with its pages in the OS cache, on a 2-core machine; more from a cold disk.
// Damage is still caught where it is read: every record's seal is checked on every read, and
// `cell_size_check` checks B-tree cells as they are read. Open and load of that file: ~90 ms,
// as for an empty one (reading and checking every row, as before, took 3.4-5.6 s). The writer
// thread starts meanwhile and opens its own connection.
//
// README (node-runtime/README.md), proposed text for the sqlite row's durability column:
//   WAL mode, one transaction per commit group, committed (synchronous=FULL) by a connection in
//   a worker thread; the event loop hands the group over and is answered once the WAL is
//   fsynced. A writer thread that dies stops the node.

import { DatabaseSync } from 'node:sqlite';
import { mkdirSync, readFileSync, existsSync, truncateSync } from 'node:fs';
import path from 'node:path';
import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import type { Entry, HardState, Snapshot } from '../../worker/raft/types.ts';
import type { KvState, RecordSummary } from '../../worker/kv/types.ts';
import type { ByteReader } from './bytes.ts';
import type { Logger } from '../log.ts';
import { type EngineOptions, type EngineStats, type StorageEngine } from './engine.ts';
import { StorageCorruptError } from './errors.ts';
import { SaveQueue } from './save-queue.ts';
import { readEntry, readHardState, readRecordSummary, readSession, readSnapshot } from './records.ts';
import { countRecord, emptySummary } from '../../worker/kv/record-summary.ts';
import { emptyHardState, emptySnapshot } from './state-model.ts';
import { scanSqliteWal } from './sqlite-wal-scan.ts';
import {
  CONNECTION_PRAGMAS,
  SCHEMA,
  SNAPSHOT_ROW_ID,
  SQLITE_FILE,
  STAGED_RESET,
  STAGED_TABLE,
  SUMMARY_ROW,
  asCorruption,
  readUintRow,
  unsealRow,
} from './sqlite-schema.ts';
import { encodeGroup } from './sqlite-ops-encode.ts';
import { migrateKvTable, storeSummary } from './sqlite-migrate.ts';
import { SqliteRecords } from './sqlite-records.ts';
import { WriterThread } from './sqlite-writer-client.ts';
import { SqliteReaderPool } from './sqlite-reader-pool.ts';

export { SQLITE_FILE };

/** Empties the staging table at open: what a snapshot transfer cut short by a restart staged
 *  (the next transfer starts over). A check of one row when it is empty, as it mostly is. */
function dropStaged(db: DatabaseSync, file: string, log: Logger): void {
  if (db.prepare(`SELECT 1 FROM ${STAGED_TABLE} LIMIT 1`).get() === undefined) return;
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(STAGED_RESET);
    db.exec('COMMIT');
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
  log.info('sqlite staged records of an unfinished snapshot transfer dropped', { file });
}

/** What readAll finds; the summary is null when its row is missing (unknown). */
type StoredState = Omit<LoadedState, 'tier'> & { summary: RecordSummary | null };

export class SqliteEngine implements StorageEngine {
  readonly engine = 'sqlite' as const;
  private readonly file: string;
  private readonly writer: WriterThread;
  private readonly disk: SqliteRecords;
  private readonly saves: SaveQueue;
  private offLoopStarting: Promise<void> = Promise.resolve();

  private constructor(file: string, writer: WriterThread, disk: SqliteRecords, loaded: LoadedState, opts: EngineOptions) {
    this.file = file;
    this.writer = writer;
    this.disk = disk;
    this.saves = new SaveQueue(loaded, (batches) => writer.write(encodeGroup(batches)), opts.groupCommit, { staging: true });
    this.startOffLoopReads(opts);
  }

  static async open(opts: EngineOptions): Promise<SqliteEngine> {
    mkdirSync(opts.dir, { recursive: true });
    const file = path.join(opts.dir, SQLITE_FILE);
    const walFile = `${file}-wal`;
    if (existsSync(walFile)) {
      const scan = scanSqliteWal(walFile, readFileSync(walFile));
      if (scan.tornBytes > 0) {
        truncateSync(walFile, scan.validBytes);
        opts.log.warn('torn tail truncated', { file: walFile, offset: scan.validBytes, bytes: scan.tornBytes });
      }
    }
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(file);
      db.exec(CONNECTION_PRAGMAS);
      const mode = (db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode;
      if (mode !== 'wal') throw new Error(`journal_mode is ${mode}, not wal`);
      db.exec(SCHEMA);
      migrateKvTable(db, file, opts.log);
      dropStaged(db, file, opts.log);
    } catch (err) {
      db?.close();
      throw asCorruption(file, err);
    }
    // The writer thread opens its connection while this one reads what recovery needs.
    const starting = WriterThread.start(file);
    let disk: SqliteRecords | undefined;
    let loaded: LoadedState;
    try {
      const stored = SqliteEngine.readAll(db, file);
      disk = new SqliteRecords(file, opts.offLoopReads);
      loaded = SqliteEngine.withTier(stored, disk, (summary) => {
        storeSummary(db!, summary);
        // A new store counts its empty table once, unremarkably; a scan of records is logged.
        if (summary.records > 0) opts.log.info('sqlite records summary counted', { file, records: summary.records });
      });
    } catch (err) {
      await disk?.close();
      await starting.then(
        (w) => w.close(),
        () => undefined,
      );
      throw asCorruption(file, err);
    } finally {
      db.close();
    }
    let writer: WriterThread;
    try {
      writer = await starting;
    } catch (err) {
      await disk.close();
      throw asCorruption(file, err);
    }
    return new SqliteEngine(file, writer, disk, loaded, opts);
  }

  /** Resolves once the first reader thread is up, or failed to start (for tests). */
  offLoopStarted(): Promise<void> {
    return this.offLoopStarting;
  }

  /** The reader pool (reads off the loop: sqlite-reader-pool.ts) starts its first thread once
   *  the engine is open, not before: nothing needs it to start, and its start is CPU a restart
   *  can use. */
  private startOffLoopReads(opts: EngineOptions): void {
    this.offLoopStarting = SqliteReaderPool.start(this.file, opts.log).then(
      (reader) => this.disk.attachOffLoop(reader),
      (err: unknown) => {
        // Reads stay on the event loop, as they are until the thread is up.
        opts.log.warn('sqlite reader thread did not start: reads stay on the event loop', {
          file: this.file,
          error: err instanceof Error ? err.message : String(err),
        });
      },
    );
  }

  /** `stored` as a tiered LoadedState over `disk`; a missing summary is counted from `disk`
   *  (one scan, every seal checked) and handed to `store`. */
  private static withTier(stored: StoredState, disk: SqliteRecords, store?: (s: RecordSummary) => void): LoadedState {
    const { summary: found, ...state } = stored;
    let summary = found;
    if (summary === null) {
      const counted = emptySummary();
      disk.walkFrom('', (key, record) => {
        countRecord(counted, key, record);
        return true;
      });
      store?.(counted);
      summary = counted;
    }
    return { ...state, tier: { disk, summary } };
  }

  /** Everything but the records (sessions are bounded by sessionsMax; the log by compaction). */
  private static readAll(db: DatabaseSync, file: string): StoredState {
    const check = <T>(table: string, key: string | number, value: unknown, read: (r: ByteReader) => T): T =>
      unsealRow(file, table, key, value as Uint8Array, read);
    const state = new Map<string, Uint8Array>();
    for (const row of db.prepare('SELECT name, value FROM state').all() as Array<{ name: string; value: Uint8Array }>) {
      state.set(row.name, row.value);
    }
    const get = <T>(name: string, read: (r: ByteReader) => T, dflt: T): T => {
      const v = state.get(name);
      return v === undefined ? dflt : check('state', name, v, read);
    };
    const hardState: HardState = get('hardState', readHardState, emptyHardState());
    const snapRow = db.prepare('SELECT value FROM snapshot WHERE id = ?').get(SNAPSHOT_ROW_ID) as { value: Uint8Array } | undefined;
    const snapshot: Snapshot =
      snapRow !== undefined
        ? check('snapshot', SNAPSHOT_ROW_ID, snapRow.value, readSnapshot)
        : get('snapshot', readSnapshot, emptySnapshot());
    const applied = get('applied', readUintRow, 0);
    const revision = get('revision', readUintRow, 0);
    const summary = get<RecordSummary | null>(SUMMARY_ROW, readRecordSummary, null);

    const entries: Entry[] = [];
    for (const row of db.prepare('SELECT idx, entry FROM log ORDER BY idx').iterate() as Iterable<{ idx: number; entry: Uint8Array }>) {
      const e = check('log', row.idx, row.entry, readEntry);
      const want = snapshot.meta.index + entries.length + 1;
      if (e.index !== row.idx || e.index !== want) {
        throw new StorageCorruptError(file, -1, `table log row ${row.idx}: holds entry ${e.index}, expected ${want}`);
      }
      entries.push(e);
    }
    const kv: KvState = { revision, records: [], sessions: [] };
    for (const row of db.prepare('SELECT client, rec FROM sessions').iterate() as Iterable<{ client: string; rec: Uint8Array }>) {
      kv.sessions.push([row.client, check('sessions', row.client, row.rec, readSession)]);
    }
    const meta: Record<string, string> = {};
    for (const row of db.prepare('SELECT name, value FROM meta').all() as Array<{ name: string; value: string }>) {
      meta[row.name] = row.value;
    }
    return { hardState, snapshot, entries, applied, kv, meta, summary };
  }

  /** The state read at open; after saves, read again (on this thread) once they are all written,
   *  with the same `tier.disk` (a missing summary is counted, not stored: the next open does). */
  async load(): Promise<LoadedState> {
    const opened = this.saves.takeLoaded();
    if (opened !== undefined) return opened;
    await this.saves.idle();
    const db = new DatabaseSync(this.file);
    try {
      db.exec(CONNECTION_PRAGMAS);
      return SqliteEngine.withTier(SqliteEngine.readAll(db, this.file), this.disk);
    } catch (err) {
      throw asCorruption(this.file, err);
    } finally {
      db.close();
    }
  }

  save(batch: SaveBatch): Promise<void> {
    return this.saves.save(batch);
  }

  stats(): EngineStats {
    return this.saves.stats();
  }

  /** The records' reader first: the writer's connection, closing last, checkpoints the WAL. */
  async close(): Promise<void> {
    await this.saves.idle();
    await this.offLoopStarting;
    await this.disk.close();
    await this.writer.close();
  }
}
