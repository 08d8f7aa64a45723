// The sqlite engine's writer: the one connection that changes the database, run in a worker
// thread (sqlite-writer-thread.ts) so that a commit group's B-tree inserts, WAL frame writes,
// fsyncs and auto-checkpoints never block the event loop. The event loop encodes a group into
// one buffer of row operations with sealed values (sqlite-ops.ts) and transfers it;
// writeGroup applies it in ONE transaction, committed with synchronous=FULL: when writeGroup
// returns, the WAL frames holding the group are on disk (SQLite fsyncs the WAL at every commit
// in FULL mode).

import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import path from 'node:path';
import { decodeGroup, type OpSink } from './sqlite-ops.ts';
import { CONNECTION_PRAGMAS, SNAPSHOT_ROW_ID, STAGED_RESET, STAGED_SWAP, STAGED_TABLE } from './sqlite-schema.ts';

export class SqliteWriter {
  private readonly file: string;
  private readonly db: DatabaseSync;
  private readonly sink: OpSink;
  /** Whether the directory entry of the WAL (created by the first commit) has been fsynced. */
  private walNamed = false;

  /** Opens `file`, whose tables the loader has already created and checked. */
  constructor(file: string) {
    this.file = file;
    const db = new DatabaseSync(file);
    this.db = db;
    db.exec(`${CONNECTION_PRAGMAS} PRAGMA synchronous = FULL;`);
    this.sink = SqliteWriter.statements(db);
  }

  private static statements(db: DatabaseSync): OpSink {
    const st = (sql: string): StatementSync => db.prepare(sql);
    const clearLog = st('DELETE FROM log');
    const clearRecords = st('DELETE FROM records');
    const clearSessions = st('DELETE FROM sessions');
    const compactTo = st('DELETE FROM log WHERE idx <= ?');
    const truncateFrom = st('DELETE FROM log WHERE idx >= ?');
    const putEntry = st('INSERT OR REPLACE INTO log (idx, entry) VALUES (?, ?)');
    const putKey = st('INSERT OR REPLACE INTO records (k, rec, mod) VALUES (?, ?, ?)');
    const delKey = st('DELETE FROM records WHERE k = ?');
    const putSession = st('INSERT OR REPLACE INTO sessions (client, rec) VALUES (?, ?)');
    const delSession = st('DELETE FROM sessions WHERE client = ?');
    const putState = st('INSERT OR REPLACE INTO state (name, value) VALUES (?, ?)');
    const delState = st('DELETE FROM state WHERE name = ?');
    const putSnapshot = st(`INSERT OR REPLACE INTO snapshot (id, value) VALUES (${SNAPSHOT_ROW_ID}, ?)`);
    const delStateSnapshot = st("DELETE FROM state WHERE name = 'snapshot'");
    const putMeta = st('INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)');
    // The tables these name are dropped and made again (STAGED_RESET, STAGED_SWAP): SQLite
    // prepares the statements again at their next run, on the tables of that name then.
    const stageKey = st(`INSERT OR REPLACE INTO ${STAGED_TABLE} (k, rec, mod) VALUES (?, ?, ?)`);
    return {
      clear: () => {
        clearLog.run();
        clearRecords.run();
        clearSessions.run();
      },
      compactTo: (index) => compactTo.run(index),
      truncateFrom: (index) => truncateFrom.run(index),
      putEntry: (index, sealed) => putEntry.run(index, sealed),
      putKey: (key, mod, sealed) => putKey.run(key, sealed, mod),
      delKey: (key) => delKey.run(key),
      putSession: (client, sealed) => putSession.run(client, sealed),
      delSession: (client) => delSession.run(client),
      putState: (name, sealed) => putState.run(name, sealed),
      delState: (name) => delState.run(name),
      putSnapshot: (sealed) => {
        putSnapshot.run(sealed);
        delStateSnapshot.run(); // where data dirs written before the snapshot table kept it
      },
      putMeta: (name, value) => putMeta.run(name, value),
      stageReset: () => db.exec(STAGED_RESET),
      stageKey: (key, mod, sealed) => stageKey.run(key, sealed, mod),
      installStaged: () => {
        clearLog.run();
        clearSessions.run();
        db.exec(STAGED_SWAP);
      },
    };
  }

  /** Applies one encodeGroup() buffer, all or nothing; returns once it is durable. */
  writeGroup(group: Uint8Array): void {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      decodeGroup(group, this.sink);
      this.db.exec('COMMIT');
    } catch (err) {
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
  }

  close(): void {
    this.db.close();
  }
}
