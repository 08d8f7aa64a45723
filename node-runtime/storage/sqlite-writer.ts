// The sqlite engine's writer: the one connection that changes the database, run in a worker
// thread (sqlite-writer-thread.ts) so that a commit group's B-tree inserts, WAL frame writes,
// fsyncs and auto-checkpoints never block the event loop. The event loop encodes a group into
// one byte buffer (encodeGroup) and transfers it; writeGroup decodes and applies it in ONE
// transaction, committed with synchronous=FULL: when writeGroup returns, the WAL frames holding
// the group are on disk (SQLite fsyncs the WAL at every commit in FULL mode).

import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import path from 'node:path';
import type { SaveBatch } from '../../worker/peer/ports.ts';
import type { HardState, Snapshot } from '../../worker/raft/types.ts';
import { ByteReader, ByteWriter } from './bytes.ts';
import { readSaveBatch, seal, writeEntry, writeHardState, writeKeyRecord, writeSaveBatch, writeSession, writeSnapshot } from './records.ts';
import { CONNECTION_PRAGMAS, SNAPSHOT_ROW_ID, uintCodec } from './sqlite-schema.ts';

/** One group as bytes: the batch count, then each batch (records.ts writeSaveBatch), in order. */
export function encodeGroup(batches: readonly SaveBatch[]): Uint8Array<ArrayBuffer> {
  // Sized for the blobs up front (a snapshot is MBs: no doubling copies). The copy below is
  // exact-size and owns its ArrayBuffer, so transferring (detaching) it touches nothing else.
  const w = new ByteWriter(4096 + blobBytes(batches));
  w.uint(batches.length);
  for (const b of batches) writeSaveBatch(w, b);
  const out = new Uint8Array(w.length);
  out.set(w.view());
  return out;
}

/** Bytes of the snapshot and entry payloads in `batches` (most of an encoded group). */
function blobBytes(batches: readonly SaveBatch[]): number {
  let n = 0;
  for (const b of batches) {
    if (b.installSnapshot) n += b.installSnapshot.snapshot.data.length;
    if (b.compact) n += b.compact.data.length;
    if (b.entries) for (const e of b.entries) n += e.data.length + 16;
  }
  return n;
}

interface GroupRows {
  hardState?: HardState;
  revision?: number;
  applied?: number;
  snapshot?: Snapshot;
}

interface Statements {
  putState: StatementSync;
  putSnapshot: StatementSync;
  delStateSnapshot: StatementSync;
  putMeta: StatementSync;
  putEntry: StatementSync;
  truncateFrom: StatementSync;
  compactTo: StatementSync;
  putKey: StatementSync;
  delKey: StatementSync;
  putSession: StatementSync;
  delSession: StatementSync;
  clearLog: StatementSync;
  clearKv: StatementSync;
  clearSessions: StatementSync;
}

export class SqliteWriter {
  private readonly file: string;
  private readonly db: DatabaseSync;
  private readonly st: Statements;
  /** Whether the directory entry of the WAL (created by the first commit) has been fsynced. */
  private walNamed = false;
  /**
   * The single-row values a group sets (hard state, revision, applied index, snapshot): only
   * the last of each is written, once per group, not once per batch.
   */
  private rows: GroupRows = {};

  /** Opens `file`, whose tables the loader has already created and checked. */
  constructor(file: string) {
    this.file = file;
    const db = new DatabaseSync(file);
    this.db = db;
    db.exec(`${CONNECTION_PRAGMAS} PRAGMA synchronous = FULL;`);
    this.st = {
      putState: db.prepare('INSERT OR REPLACE INTO state (name, value) VALUES (?, ?)'),
      putSnapshot: db.prepare(`INSERT OR REPLACE INTO snapshot (id, value) VALUES (${SNAPSHOT_ROW_ID}, ?)`),
      delStateSnapshot: db.prepare("DELETE FROM state WHERE name = 'snapshot'"),
      putMeta: db.prepare('INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)'),
      putEntry: db.prepare('INSERT OR REPLACE INTO log (idx, entry) VALUES (?, ?)'),
      truncateFrom: db.prepare('DELETE FROM log WHERE idx >= ?'),
      compactTo: db.prepare('DELETE FROM log WHERE idx <= ?'),
      putKey: db.prepare('INSERT OR REPLACE INTO kv (key, rec) VALUES (?, ?)'),
      delKey: db.prepare('DELETE FROM kv WHERE key = ?'),
      putSession: db.prepare('INSERT OR REPLACE INTO sessions (client, rec) VALUES (?, ?)'),
      delSession: db.prepare('DELETE FROM sessions WHERE client = ?'),
      clearLog: db.prepare('DELETE FROM log'),
      clearKv: db.prepare('DELETE FROM kv'),
      clearSessions: db.prepare('DELETE FROM sessions'),
    };
  }

  /** Applies one encodeGroup() buffer, all or nothing; returns once it is durable. */
  writeGroup(group: Uint8Array): number {
    const r = new ByteReader(group);
    const count = r.uint();
    this.db.exec('BEGIN IMMEDIATE');
    try {
      for (let i = 0; i < count; i++) this.apply(readSaveBatch(r));
      r.done();
      this.writeRows();
      this.db.exec('COMMIT');
    } catch (err) {
      this.rows = {};
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
    if (!this.walNamed) {
      // SQLite syncs the directory when it creates the WAL; do it once more ourselves, since
      // a WAL whose name is lost in a crash would take acknowledged commits with it.
      const fd = openSync(path.dirname(this.file), 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      this.walNamed = true;
    }
    return count;
  }

  private apply(b: SaveBatch): void {
    const st = this.st;
    if (b.installSnapshot) {
      const { snapshot, kv } = b.installSnapshot;
      st.clearLog.run();
      st.clearKv.run();
      st.clearSessions.run();
      this.rows.snapshot = snapshot;
      for (const [key, rec] of kv.records) st.putKey.run(key, seal((w) => writeKeyRecord(w, rec)));
      for (const [client, s] of kv.sessions) st.putSession.run(client, seal((w) => writeSession(w, s)));
      this.rows.revision = kv.revision;
      this.rows.applied = snapshot.meta.index;
    }
    if (b.compact) {
      this.rows.snapshot = b.compact;
      st.compactTo.run(b.compact.meta.index);
    }
    if (b.entries && b.entries.length > 0) {
      st.truncateFrom.run(b.entries[0]!.index);
      for (const e of b.entries) st.putEntry.run(e.index, seal((w) => writeEntry(w, e)));
    }
    if (b.hardState) this.rows.hardState = b.hardState;
    if (b.kv) {
      this.rows.revision = b.kv.revision;
      for (const [key, rec] of b.kv.upserts) st.putKey.run(key, seal((w) => writeKeyRecord(w, rec)));
      for (const key of b.kv.deletes) st.delKey.run(key);
      for (const [client, s] of b.kv.sessionUpserts) st.putSession.run(client, seal((w) => writeSession(w, s)));
      for (const client of b.kv.sessionDeletes) st.delSession.run(client);
    }
    if (b.applied !== undefined) this.rows.applied = b.applied;
    if (b.meta) for (const [k, v] of Object.entries(b.meta)) st.putMeta.run(k, v);
  }

  private writeRows(): void {
    const { hardState, revision, applied, snapshot } = this.rows;
    this.rows = {};
    const st = this.st;
    if (hardState) st.putState.run('hardState', seal((w) => writeHardState(w, hardState)));
    if (revision !== undefined) st.putState.run('revision', uintCodec.write(revision));
    if (applied !== undefined) st.putState.run('applied', uintCodec.write(applied));
    if (snapshot) {
      st.putSnapshot.run(seal((w) => writeSnapshot(w, snapshot), new ByteWriter(snapshot.data.length + 256)));
      st.delStateSnapshot.run(); // where data dirs written before the snapshot table kept it
    }
  }

  close(): void {
    this.db.close();
  }
}
