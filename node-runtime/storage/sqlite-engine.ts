// The `sqlite` engine: node:sqlite (a B-tree; the read-heavy role boltdb plays in the seed) in
// WAL mode. One transaction per commit group: every batch of the group, in order, all or
// nothing, and the group's save() resolves only once the WAL holding it is fsynced.
//
// DatabaseSync runs on the event loop, so the fsync is not left to it (synchronous=FULL would
// block the loop ~4 ms per commit, during which the node cannot serve or replicate): the
// connection commits with synchronous=NORMAL (the WAL is written, not synced) and the engine
// then fdatasyncs the WAL file itself, from the thread pool, before resolving the group. The
// durability is FULL's: a commit is acknowledged only once its WAL frames are on disk
// (fsync works per file, whichever descriptor asks). Checkpoints still sync the database file
// inside SQLite. Saves queue while a group commits and syncs, and go together in the next one.
//
// Every stored value is sealed with a CRC32 (records.ts) because SQLite has no page checksums;
// load verifies them all. The WAL is checked before SQLite opens it (sqlite-wal-scan.ts).

import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { mkdirSync, readFileSync, existsSync, truncateSync } from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import type { Entry, HardState, Snapshot } from '../../worker/raft/types.ts';
import type { KvState } from '../../worker/kv/types.ts';
import { FormatError, type ByteReader } from './bytes.ts';
import { type EngineOptions, type EngineStats, type StorageEngine } from './engine.ts';
import { StorageCorruptError } from './errors.ts';
import { SaveQueue } from './save-queue.ts';
import {
  readEntry, readHardState, readKeyRecord, readSession, readSnapshot,
  seal, unseal, writeEntry, writeHardState, writeKeyRecord, writeSession, writeSnapshot,
} from './records.ts';
import { emptyHardState, emptySnapshot } from './state-model.ts';
import { scanSqliteWal } from './sqlite-wal-scan.ts';
import { fsyncDir } from './durable-fs.ts';

export const SQLITE_FILE = 'metcd.db';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL);
  CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, rec BLOB NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS sessions (client TEXT PRIMARY KEY, rec BLOB NOT NULL) WITHOUT ROWID;
`;

const uintCodec = {
  write: (v: number) => seal((w) => w.uint(v)),
  read: (r: ByteReader) => r.uint(),
};

interface Statements {
  putState: StatementSync;
  putMeta: StatementSync;
  putEntry: StatementSync;
  truncateFrom: StatementSync;
  compactTo: StatementSync;
  putKey: StatementSync;
  delKey: StatementSync;
  putSession: StatementSync;
  delSession: StatementSync;
}

export class SqliteEngine implements StorageEngine {
  readonly engine = 'sqlite' as const;
  private readonly file: string;
  private readonly db: DatabaseSync;
  private readonly st: Statements;
  private readonly saves: SaveQueue;
  /** The WAL, opened on the first commit (SQLite creates it), kept for fdatasync. */
  private wal: FileHandle | null = null;

  private constructor(file: string, db: DatabaseSync, loaded: LoadedState, opts: EngineOptions) {
    this.file = file;
    this.db = db;
    this.st = {
      putState: db.prepare('INSERT OR REPLACE INTO state (name, value) VALUES (?, ?)'),
      putMeta: db.prepare('INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)'),
      putEntry: db.prepare('INSERT OR REPLACE INTO log (idx, entry) VALUES (?, ?)'),
      truncateFrom: db.prepare('DELETE FROM log WHERE idx >= ?'),
      compactTo: db.prepare('DELETE FROM log WHERE idx <= ?'),
      putKey: db.prepare('INSERT OR REPLACE INTO kv (key, rec) VALUES (?, ?)'),
      delKey: db.prepare('DELETE FROM kv WHERE key = ?'),
      putSession: db.prepare('INSERT OR REPLACE INTO sessions (client, rec) VALUES (?, ?)'),
      delSession: db.prepare('DELETE FROM sessions WHERE client = ?'),
    };
    this.saves = new SaveQueue(loaded, (batches) => this.writeGroup(batches), opts.groupCommit);
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
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(file);
      db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cell_size_check = ON; PRAGMA journal_size_limit = 67108864;');
      const mode = (db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode;
      if (mode !== 'wal') throw new Error(`journal_mode is ${mode}, not wal`);
      SqliteEngine.quickCheck(db, file);
      db.exec(SCHEMA);
    } catch (err) {
      throw SqliteEngine.asCorruption(file, err);
    }
    try {
      return new SqliteEngine(file, db, SqliteEngine.readAll(db, file), opts);
    } catch (err) {
      db.close();
      throw SqliteEngine.asCorruption(file, err);
    }
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
        if (err instanceof FormatError) throw new StorageCorruptError(file, -1, `table ${table} row ${JSON.stringify(key)}: ${err.message}`);
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
    const snapshot: Snapshot = get('snapshot', readSnapshot, emptySnapshot());
    const applied = get('applied', uintCodec.read, 0);
    const revision = get('revision', uintCodec.read, 0);

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

  async load(): Promise<LoadedState> {
    return this.saves.takeLoaded() ?? SqliteEngine.readAll(this.db, this.file);
  }

  save(batch: SaveBatch): Promise<void> {
    return this.saves.save(batch);
  }

  private async writeGroup(batches: SaveBatch[]): Promise<void> {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      for (const b of batches) this.apply(b);
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
    await this.syncWal();
  }

  /** fdatasync the WAL (see the header): the group is durable when this resolves. */
  private async syncWal(): Promise<void> {
    if (this.wal === null) {
      this.wal = await openFile(`${this.file}-wal`, 'r');
      // The WAL may have been created by this commit: make its directory entry durable too.
      await fsyncDir(path.dirname(this.file));
    }
    await this.wal.datasync();
  }

  private apply(b: SaveBatch): void {
    const st = this.st;
    if (b.installSnapshot) {
      const { snapshot, kv } = b.installSnapshot;
      this.db.exec('DELETE FROM log; DELETE FROM kv; DELETE FROM sessions;');
      st.putState.run('snapshot', seal((w) => writeSnapshot(w, snapshot)));
      for (const [key, rec] of kv.records) st.putKey.run(key, seal((w) => writeKeyRecord(w, rec)));
      for (const [client, s] of kv.sessions) st.putSession.run(client, seal((w) => writeSession(w, s)));
      st.putState.run('revision', uintCodec.write(kv.revision));
      st.putState.run('applied', uintCodec.write(snapshot.meta.index));
    }
    if (b.compact) {
      const snap = b.compact;
      st.putState.run('snapshot', seal((w) => writeSnapshot(w, snap)));
      st.compactTo.run(snap.meta.index);
    }
    if (b.entries && b.entries.length > 0) {
      st.truncateFrom.run(b.entries[0]!.index);
      for (const e of b.entries) st.putEntry.run(e.index, seal((w) => writeEntry(w, e)));
    }
    if (b.hardState) {
      const h = b.hardState;
      st.putState.run('hardState', seal((w) => writeHardState(w, h)));
    }
    if (b.kv) {
      st.putState.run('revision', uintCodec.write(b.kv.revision));
      for (const [key, rec] of b.kv.upserts) st.putKey.run(key, seal((w) => writeKeyRecord(w, rec)));
      for (const key of b.kv.deletes) st.delKey.run(key);
      for (const [client, s] of b.kv.sessionUpserts) st.putSession.run(client, seal((w) => writeSession(w, s)));
      for (const client of b.kv.sessionDeletes) st.delSession.run(client);
    }
    if (b.applied !== undefined) st.putState.run('applied', uintCodec.write(b.applied));
    if (b.meta) for (const [k, v] of Object.entries(b.meta)) st.putMeta.run(k, v);
  }

  stats(): EngineStats {
    return this.saves.stats();
  }

  async close(): Promise<void> {
    await this.saves.idle();
    await this.wal?.close();
    this.wal = null;
    this.db.close();
  }
}
