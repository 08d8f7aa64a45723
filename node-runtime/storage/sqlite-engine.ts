// The `sqlite` engine: node:sqlite (a B-tree; the read-heavy role boltdb plays in etcd) in
// WAL mode. One transaction per commit group: every batch of the group, in order, all or
// nothing, and the group's save() resolves only once the WAL holding it is fsynced.
//
// The writing connection lives in a worker thread (sqlite-writer.ts): a commit's B-tree
// inserts, WAL frame writes, fsync and any auto-checkpoint (with its own fsyncs) would
// otherwise block the event loop for milliseconds per group, during which the node can neither
// serve nor replicate. The event loop only encodes each group as row operations with sealed
// values into one buffer (sqlite-ops.ts), transfers it, and resolves the group's saves when the
// thread answers; the thread commits with synchronous=FULL, so that answer means the WAL frames
// are on disk. Saves queue while a group is in the thread and go together in the next one. If
// the thread fails or dies, the group and every later save are rejected (GroupCommit), which
// stops the node: nothing is acknowledged that the thread did not confirm.
//
// Opening and loading stay on the calling thread, before the node serves: the WAL is checked
// before SQLite opens it (sqlite-wal-scan.ts: a torn tail is truncated, damage before the tail
// is StorageCorruptError naming file and offset), then `quick_check`, then every row is read
// and its CRC32 seal verified (records.ts; SQLite has no page checksums). The writer thread
// starts meanwhile and opens its own connection.
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
import type { KvState } from '../../worker/kv/types.ts';
import { FormatError, type ByteReader } from './bytes.ts';
import { type EngineOptions, type EngineStats, type StorageEngine } from './engine.ts';
import { StorageCorruptError } from './errors.ts';
import { SaveQueue } from './save-queue.ts';
import { readEntry, readHardState, readKeyRecord, readSession, readSnapshot, unseal } from './records.ts';
import { emptyHardState, emptySnapshot } from './state-model.ts';
import { scanSqliteWal } from './sqlite-wal-scan.ts';
import { CONNECTION_PRAGMAS, SCHEMA, SNAPSHOT_ROW_ID, SQLITE_FILE, readUintRow } from './sqlite-schema.ts';
import { encodeGroup } from './sqlite-ops.ts';
import { WriterThread } from './sqlite-writer-client.ts';

export { SQLITE_FILE };

export class SqliteEngine implements StorageEngine {
  readonly engine = 'sqlite' as const;
  private readonly file: string;
  private readonly writer: WriterThread;
  private readonly saves: SaveQueue;

  private constructor(file: string, writer: WriterThread, loaded: LoadedState, opts: EngineOptions) {
    this.file = file;
    this.writer = writer;
    this.saves = new SaveQueue(loaded, (batches) => writer.write(encodeGroup(batches)), opts.groupCommit);
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
      SqliteEngine.quickCheck(db, file);
      db.exec(SCHEMA);
    } catch (err) {
      db?.close();
      throw SqliteEngine.asCorruption(file, err);
    }
    // The writer thread opens its connection while this one reads everything.
    const starting = WriterThread.start(file);
    let loaded: LoadedState;
    try {
      loaded = SqliteEngine.readAll(db, file);
    } catch (err) {
      await starting.then(
        (w) => w.close(),
        () => undefined,
      );
      throw SqliteEngine.asCorruption(file, err);
    } finally {
      db.close();
    }
    let writer: WriterThread;
    try {
      writer = await starting;
    } catch (err) {
      throw SqliteEngine.asCorruption(file, err);
    }
    return new SqliteEngine(file, writer, loaded, opts);
  }

  /** Structural check of every B-tree page (not of values: the seals cover those). */
  private static quickCheck(db: DatabaseSync, file: string): void {
    const rows = db.prepare('PRAGMA quick_check(5)').all() as Array<{ quick_check: string }>;
    if (rows.length === 1 && rows[0]!.quick_check === 'ok') return;
    const detail = rows.map((r) => r.quick_check).join('; ');
    const page = /page (\d+)/i.exec(detail);
    const pageBytes = (db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size;
    throw new StorageCorruptError(file, page ? (Number(page[1]) - 1) * pageBytes : -1, `sqlite quick_check: ${detail}`);
  }

  private static asCorruption(file: string, err: unknown): unknown {
    if (err instanceof StorageCorruptError) return err;
    const msg = err instanceof Error ? err.message : String(err);
    if (/malformed|not a database|corrupt/i.test(msg)) return new StorageCorruptError(file, -1, `sqlite: ${msg}`);
    return err;
  }

  private static readAll(db: DatabaseSync, file: string): LoadedState {
    const check = <T>(table: string, key: string | number, value: unknown, read: (r: ByteReader) => T): T => {
      try {
        return unseal(value as Uint8Array, read);
      } catch (err) {
        if (err instanceof FormatError)
          throw new StorageCorruptError(file, -1, `table ${table} row ${JSON.stringify(key)}: ${err.message}`);
        throw err;
      }
    };
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
    for (const row of db.prepare('SELECT key, rec FROM kv').iterate() as Iterable<{ key: string; rec: Uint8Array }>) {
      kv.records.push([row.key, check('kv', row.key, row.rec, readKeyRecord)]);
    }
    for (const row of db.prepare('SELECT client, rec FROM sessions').iterate() as Iterable<{ client: string; rec: Uint8Array }>) {
      kv.sessions.push([row.client, check('sessions', row.client, row.rec, readSession)]);
    }
    const meta: Record<string, string> = {};
    for (const row of db.prepare('SELECT name, value FROM meta').all() as Array<{ name: string; value: string }>) {
      meta[row.name] = row.value;
    }
    return { hardState, snapshot, entries, applied, kv, meta };
  }

  /** The state read at open; after saves, read again (on this thread) once they are all written. */
  async load(): Promise<LoadedState> {
    const opened = this.saves.takeLoaded();
    if (opened !== undefined) return opened;
    await this.saves.idle();
    const db = new DatabaseSync(this.file);
    try {
      db.exec(CONNECTION_PRAGMAS);
      return SqliteEngine.readAll(db, this.file);
    } catch (err) {
      throw SqliteEngine.asCorruption(this.file, err);
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

  async close(): Promise<void> {
    await this.saves.idle();
    await this.writer.close();
  }
}
