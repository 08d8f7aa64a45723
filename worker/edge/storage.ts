// PeerStorage on a SQLite-backed Durable Object (worker/peer/ports.ts).
//
// One table per kind of state: hard_state, log (+ log_chunk), snapshot (+ snapshot_chunk),
// session, applied_state (applied index + KV revision) and meta, and the key space's tables
// (record-rows.ts: records, staged, the record summary). Every SaveBatch runs in ONE
// transactionSync, so its parts (staged records, snapshot install, compaction, log
// append/truncate, hard state, KV effects + applied index, meta) land together or not at all: a
// restart can never see KV effects without the applied index that covers them (apply exactly
// once).
//
// A tiered storage: the `records` table is the home of the key space. load() does not read the
// records; it hands the peer `tier.disk` (records.ts: reads on demand, views, and how they see
// derived batches still waiting, below) and `tier.summary`, the counts over them kept in the
// summary row, written with every batch of KV changes (absent: counted by one scan at the next
// load, and stored). A database from before the records table, with a `kv` table (a deployed
// cluster), is moved into `records` once, in one transaction, when the storage is constructed.
// A snapshot arriving in chunks is staged in a table of its own (SaveBatch.stage) and swapped in
// for the records at install (installSnapshot.staged); open empties what a restart cut short.
//
// Persist before you speak — where the output gate is relied on: save() returns as soon as
// the transaction has run locally; it does NOT wait for the write to be replicated
// (ctx.storage.sync()). What makes that safe is the Durable Object output gate: until every
// storage write made so far is confirmed durable, the runtime holds back everything the object
// sends — the RPC calls of the peer transport (votes, append responses) and the responses to
// clients. So the peer loop's order "await save(), then send, then answer" becomes "durable,
// then observable" without paying a replication round trip per batch. If the write fails, the
// runtime breaks the object and the held messages never leave. test/edge/persist.test.ts
// checks the visible half: nothing a peer says is ahead of its own storage.
//
// Derived state waits for the next write. A batch that only advances the commit index and
// carries apply results (hard state with the term and vote already written, KV changes, applied
// index) is recomputable from the durable log: Raft never needs the commit index durable, and a
// restart re-applies committed entries above the stored applied index (restart.ts). Such a
// batch is not written at once; it is written, in order, in the same transaction as the next
// write (a log append, a vote, a compaction), or on its own after DERIVED_FLUSH_MS, before a
// read is answered (flush()), and by close(). Two things this buys on every client write: the
// leader's answer is no longer held by the output gate behind a commit-only write, and the
// leader and each follower commit one SQLite transaction per write instead of two. A crash
// loses at most the batches still waiting: the restart comes back with an older commit and
// applied index (stored together, so applied <= commit still holds) and re-applies the same
// entries to the same results. Nothing acknowledged depends on them: an acknowledged write is
// durable in the logs of a majority, whose writes are never deferred.
//
// Rows in Durable Object SQLite are limited to 2 MB (STORAGE_ROW_BYTES_MAX, kv/types.ts), so
// log entry payloads and snapshot data larger than ROW_BLOB_BYTES_MAX are split over chunk
// rows. KV records are stored inline, one row each: the KV limits are derived from the row
// limit so that a largest key (UTF-16 in its BLOB: two bytes a code unit) and value fit
// (checked at open). Every row is measured where it is written, and one above the limit is
// refused loudly (RowTooLargeError): the transaction it belongs to rolls back whole and the
// peer stops, naming the row, instead of SQLite failing somewhere inside the platform's write.

import type { Entry, HardState, Membership, Snapshot } from '../raft/types.ts';
import type { KeyRecord, KvChanges, KvLimits, KvResult, KvState, RecordSummary, SessionRecord } from '../kv/types.ts';
import { ROW_FRAMING_BYTES_MAX, STORAGE_ROW_BYTES_MAX } from '../kv/types.ts';
import { countRecord, emptySummary, summarize } from '../kv/record-summary.ts';
import { onlyDerivedState, type LoadedState, type PeerStorage, type SaveBatch } from '../peer/ports.ts';
import type { DurableStorageLike, SqlLike } from './sql.ts';
import {
  INTEGER_BYTES,
  ROW_BLOB_BYTES_MAX,
  RowTooLargeError,
  blob,
  entryType,
  readChunks,
  bytes,
  checkRow,
  int,
  split,
  str,
  StorageError,
  textBytes,
} from './sql-values.ts';
import { EdgeRecords } from './records.ts';
import { RECORD_SCHEMA, STAGED as STAGED_TABLE, migrateKvTable, readSummary, writeSummary } from './record-rows.ts';

export { ROW_BLOB_BYTES_MAX, RowTooLargeError, StorageError };

/** How long derived state may wait for the next write before it is written on its own. */
export const DERIVED_FLUSH_MS = 100;
/** Derived batches waiting at most; one more writes them all at once. */
export const DERIVED_BATCHES_MAX = 256;

export interface DerivedStats {
  /** Batches deferred so far, and how many of them were written with a later write. */
  deferred: number;
  merged: number;
  /** Batches waiting now. */
  waiting: number;
}

const SCHEMA: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS hard_state (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     term INTEGER NOT NULL, vote TEXT NOT NULL, commit_index INTEGER NOT NULL)`,
  // data is NULL when the payload is split over `chunks` rows of log_chunk.
  `CREATE TABLE IF NOT EXISTS log (
     idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type TEXT NOT NULL,
     data BLOB, chunks INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS log_chunk (
     idx INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL,
     PRIMARY KEY (idx, part))`,
  `CREATE TABLE IF NOT EXISTS snapshot (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     idx INTEGER NOT NULL, term INTEGER NOT NULL, membership TEXT NOT NULL, chunks INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS snapshot_chunk (part INTEGER PRIMARY KEY, data BLOB NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS session (
     client TEXT PRIMARY KEY, seq INTEGER NOT NULL, result TEXT NOT NULL, last_index INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS applied_state (
     id INTEGER PRIMARY KEY CHECK (id = 1), applied INTEGER NOT NULL, revision INTEGER NOT NULL)`,
  ...RECORD_SCHEMA,
];

const EMPTY_MEMBERSHIP: Membership = { voters: [], learners: [], addresses: {} };

export class DurableObjectPeerStorage implements PeerStorage {
  private readonly storage: DurableStorageLike;
  private readonly sql: SqlLike;
  private readonly flushMs: number;
  private closed = false;
  /** Derived batches not written yet, oldest first (see the header). */
  private derived: SaveBatch[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  /** Term and vote as last written (or about to be): a batch that changes them is never deferred. */
  private termVote: { term: number; vote: string } | null = null;
  /** A failed deferred write: every later save throws it (the peer stops). */
  private failure: Error | null = null;
  private readonly derivedStats = { deferred: 0, merged: 0 };
  /** The newest record the waiting derived batches hold per key they change (null: deleted),
   *  so a read of one key need not write them first (records.ts). */
  private waitingRecords = new Map<string, KeyRecord | null>();
  /** The key space's table (the same object for the storage's life: LoadedState.tier.disk). */
  private readonly records: EdgeRecords;
  /** Records moved from an old `kv` table at construction (null: there was none). */
  readonly migratedRecords: number | null;

  /** Creates the tables if needed. Call from the object's blockConcurrencyWhile. `limits`: the
   *  KV limits the peer runs with (a largest key and value must fit one row);
   *  `flushMs`: how long derived state may wait (DERIVED_FLUSH_MS); 0 writes every batch at once. */
  constructor(storage: DurableStorageLike, limits: Pick<KvLimits, 'keyBytesMax' | 'valueBytesMax'>, flushMs = DERIVED_FLUSH_MS) {
    // A key of keyBytesMax UTF-8 bytes has at most as many UTF-16 code units, two bytes each.
    const recordBytes = 2 * limits.keyBytesMax + limits.valueBytesMax + ROW_FRAMING_BYTES_MAX;
    if (recordBytes > STORAGE_ROW_BYTES_MAX) {
      throw new StorageError(
        `keyBytesMax ${limits.keyBytesMax} + valueBytesMax ${limits.valueBytesMax} do not fit one ${STORAGE_ROW_BYTES_MAX}-byte row: KV records are stored inline`,
      );
    }
    this.storage = storage;
    this.sql = storage.sql;
    this.flushMs = flushMs;
    this.migratedRecords = storage.transactionSync(() => {
      for (const ddl of SCHEMA) this.sql.exec(ddl);
      EdgeRecords.dropLeftovers(this.sql);
      return migrateKvTable(this.sql);
    });
    this.records = new EdgeRecords(storage, {
      flush: () => this.flush(),
      waiting: (key) => this.waitingRecords.get(key),
      assertOpen: () => this.assertOpen(),
    });
  }

  async load(): Promise<LoadedState> {
    this.assertOpen();
    const meta: Record<string, string> = {};
    for (const row of this.sql.exec('SELECT key, value FROM meta').toArray()) {
      meta[str(row.key)] = str(row.value);
    }
    const hs = this.sql.exec('SELECT term, vote, commit_index FROM hard_state').toArray()[0];
    const hardState: HardState = hs
      ? { term: int(hs.term), vote: str(hs.vote), commit: int(hs.commit_index) }
      : { term: 0, vote: '', commit: 0 };
    this.termVote = { term: hardState.term, vote: hardState.vote };

    const snapshot = this.loadSnapshot();
    const entries: Entry[] = [];
    for (const row of this.sql.exec('SELECT idx, term, type, data, chunks FROM log ORDER BY idx').toArray()) {
      const index = int(row.idx);
      const chunks = int(row.chunks);
      entries.push({
        index,
        term: int(row.term),
        type: entryType(row.type),
        data: chunks === 0 ? bytes(row.data) : readChunks(this.sql, 'log_chunk', 'idx = ?', [index], chunks),
      });
    }
    for (let i = 0; i < entries.length; i++) {
      const expected = snapshot.meta.index + 1 + i;
      if (entries[i]!.index !== expected) {
        throw new StorageError(`log hole: expected index ${expected}, found ${entries[i]!.index}`);
      }
    }

    const applied = this.sql.exec('SELECT applied, revision FROM applied_state').toArray()[0];
    const sessions: Array<[string, SessionRecord]> = [];
    for (const row of this.sql.exec('SELECT client, seq, result, last_index FROM session ORDER BY client').toArray()) {
      sessions.push([
        str(row.client),
        { seq: int(row.seq), result: JSON.parse(str(row.result)) as KvResult, lastIndex: int(row.last_index) },
      ]);
    }
    return {
      hardState,
      snapshot,
      entries,
      applied: applied ? int(applied.applied) : snapshot.meta.index,
      kv: { revision: applied ? int(applied.revision) : 0, records: [], sessions },
      meta,
      tier: { disk: this.records, summary: this.summary() },
    };
  }

  /** The stored summary of the records; when unknown, counted by one scan and stored. */
  private summary(): RecordSummary {
    this.flush();
    const stored = readSummary(this.sql);
    if (stored !== null) return stored;
    const counted = emptySummary();
    this.records.walkFrom('', (key, record) => {
      countRecord(counted, key, record);
      return true;
    });
    this.storage.transactionSync(() => writeSummary(this.sql, counted));
    return counted;
  }

  /** Views of the records open now, and pre-image writes for them so far (records.ts). */
  viewCounts(): { open: number; preImageWrites: number } {
    return this.records.viewCounts();
  }

  async save(batch: SaveBatch): Promise<void> {
    this.assertOpen();
    if (this.failure !== null) throw this.failure;
    if (this.flushMs > 0 && onlyDerivedState(batch, this.termVote)) {
      this.derived.push(batch);
      if (batch.kv) {
        for (const [key, record] of batch.kv.upserts) this.waitingRecords.set(key, record);
        for (const key of batch.kv.deletes) this.waitingRecords.set(key, null);
      }
      this.derivedStats.deferred++;
      if (this.derived.length >= DERIVED_BATCHES_MAX) this.flush();
      else this.flushTimer ??= setTimeout(() => this.flushLater(), this.flushMs);
      return;
    }
    this.derivedStats.merged += this.derived.length;
    try {
      this.write(batch);
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      throw this.failure;
    }
  }

  /** Write the derived state still waiting, now (before answering a read that shows it). */
  flush(): void {
    if (this.failure !== null) throw this.failure;
    if (this.derived.length === 0 || this.closed) return;
    try {
      this.write(null);
    } catch (err) {
      // The waiting batches are gone with the failed transaction: every later save must fail.
      this.failure = err instanceof Error ? err : new Error(String(err));
      throw this.failure;
    }
  }

  derivedCounts(): DerivedStats {
    return { ...this.derivedStats, waiting: this.derived.length };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.failure === null) this.flush();
    this.records.closeAll();
    this.closed = true;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
  }

  /** A crash (the object is being aborted): drop the derived batches still waiting, unwritten,
   *  and close. Returns how many there were. */
  discard(): number {
    const lost = this.derived.length;
    this.derived = [];
    this.waitingRecords = new Map();
    this.records.forgetAll();
    this.closed = true;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    return lost;
  }

  /** Only a commit index that moved, and apply results: see the header. */

  private flushLater(): void {
    this.flushTimer = null;
    try {
      this.flush();
    } catch {
      // Nobody awaits a timer: flush() kept the failure, the next save throws it, the peer stops.
    }
  }

  /** The waiting derived batches, then `batch`, in ONE transaction, in that order. */
  private write(batch: SaveBatch | null): void {
    const batches = batch === null ? this.derived : [...this.derived, batch];
    this.derived = [];
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    // One transaction for all of it (see the header). No await inside: nothing else can run on
    // this object between the parts. Returning resolves save() before the write is confirmed;
    // the output gate holds every outgoing message until it is (see the header).
    try {
      this.storage.transactionSync(() => {
        for (const b of batches) this.writeBatch(b);
      });
    } catch (err) {
      this.records.rollback();
      throw err;
    }
    this.records.commit();
    this.waitingRecords = new Map();
    for (const b of batches) if (b.hardState) this.termVote = { term: b.hardState.term, vote: b.hardState.vote };
  }

  private writeBatch(batch: SaveBatch): void {
    if (batch.stage) {
      for (const [key, record] of batch.stage.records) this.checkRecordRow(STAGED_TABLE, key, record);
      this.records.stage(batch.stage.reset, batch.stage.records);
    }
    if (batch.installSnapshot) this.installSnapshot(batch.installSnapshot);
    if (batch.compact) this.compact(batch.compact);
    if (batch.entries && batch.entries.length > 0) this.appendEntries(batch.entries);
    if (batch.hardState) {
      const hs = batch.hardState;
      this.sql.exec(
        `INSERT INTO hard_state (id, term, vote, commit_index) VALUES (1, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET term = excluded.term, vote = excluded.vote,
         commit_index = excluded.commit_index`,
        hs.term,
        hs.vote,
        hs.commit,
      );
    }
    if (batch.kv) this.applyKv(batch.kv);
    if (batch.applied !== undefined) {
      this.sql.exec(
        `INSERT INTO applied_state (id, applied, revision) VALUES (1, ?, 0)
         ON CONFLICT (id) DO UPDATE SET applied = excluded.applied`,
        batch.applied,
      );
    }
    if (batch.meta) {
      for (const [key, value] of Object.entries(batch.meta)) {
        checkRow('meta', () => `key ${JSON.stringify(key)}`, textBytes(key) + textBytes(value));
        this.sql.exec('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, value);
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageError('storage is closed');
  }

  private loadSnapshot(): Snapshot {
    const row = this.sql.exec('SELECT idx, term, membership, chunks FROM snapshot').toArray()[0];
    if (!row) return { meta: { index: 0, term: 0, membership: EMPTY_MEMBERSHIP }, data: new Uint8Array(0) };
    return {
      meta: { index: int(row.idx), term: int(row.term), membership: JSON.parse(str(row.membership)) as Membership },
      data: readChunks(this.sql, 'snapshot_chunk', '1 = 1', [], int(row.chunks)),
    };
  }

  /** Replaces the log, snapshot, records, sessions and applied state with the snapshot's. The
   *  records are kv.records, or (staged) the staged ones, swapped in. */
  private installSnapshot(install: { snapshot: Snapshot; kv: KvState; staged?: RecordSummary }): void {
    const { snapshot, kv, staged } = install;
    this.sql.exec('DELETE FROM log');
    this.sql.exec('DELETE FROM log_chunk');
    this.writeSnapshot(snapshot);
    this.sql.exec('DELETE FROM session');
    if (staged !== undefined) {
      if (kv.records.length > 0) throw new StorageError(`a staged snapshot install carries ${kv.records.length} records in kv`);
      this.records.swapStaged();
      writeSummary(this.sql, staged);
    } else {
      this.records.clear();
      for (const [key, record] of kv.records) this.upsertRecord(key, record);
      writeSummary(this.sql, summarize(kv.records));
    }
    for (const [client, session] of kv.sessions) this.upsertSession(client, session);
    this.sql.exec(
      `INSERT INTO applied_state (id, applied, revision) VALUES (1, ?, ?)
       ON CONFLICT (id) DO UPDATE SET applied = excluded.applied, revision = excluded.revision`,
      snapshot.meta.index,
      kv.revision,
    );
  }

  private compact(snapshot: Snapshot): void {
    this.writeSnapshot(snapshot);
    this.sql.exec('DELETE FROM log WHERE idx <= ?', snapshot.meta.index);
    this.sql.exec('DELETE FROM log_chunk WHERE idx <= ?', snapshot.meta.index);
  }

  private writeSnapshot(snapshot: Snapshot): void {
    const parts = split(snapshot.data);
    this.sql.exec('DELETE FROM snapshot_chunk');
    parts.forEach((part, i) => {
      checkRow('snapshot_chunk', () => `part ${i}`, INTEGER_BYTES + part.byteLength);
      this.sql.exec('INSERT INTO snapshot_chunk (part, data) VALUES (?, ?)', i, blob(part));
    });
    const membership = JSON.stringify(snapshot.meta.membership);
    checkRow('snapshot', () => `index ${snapshot.meta.index}`, 4 * INTEGER_BYTES + textBytes(membership));
    this.sql.exec(
      `INSERT INTO snapshot (id, idx, term, membership, chunks) VALUES (1, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET idx = excluded.idx, term = excluded.term,
       membership = excluded.membership, chunks = excluded.chunks`,
      snapshot.meta.index,
      snapshot.meta.term,
      membership,
      parts.length,
    );
  }

  private appendEntries(entries: Entry[]): void {
    // An entry at an existing index replaces it and everything after it (ports.ts, Ready).
    const first = entries[0]!.index;
    this.sql.exec('DELETE FROM log WHERE idx >= ?', first);
    this.sql.exec('DELETE FROM log_chunk WHERE idx >= ?', first);
    for (const entry of entries) {
      if (entry.data.byteLength <= ROW_BLOB_BYTES_MAX) {
        checkRow('log', () => `index ${entry.index}`, 4 * INTEGER_BYTES + entry.data.byteLength);
        this.sql.exec(
          'INSERT INTO log (idx, term, type, data, chunks) VALUES (?, ?, ?, ?, 0)',
          entry.index,
          entry.term,
          entry.type,
          blob(entry.data),
        );
        continue;
      }
      const parts = split(entry.data);
      this.sql.exec(
        'INSERT INTO log (idx, term, type, data, chunks) VALUES (?, ?, ?, NULL, ?)',
        entry.index,
        entry.term,
        entry.type,
        parts.length,
      );
      parts.forEach((part, i) => {
        checkRow('log_chunk', () => `index ${entry.index} part ${i}`, 2 * INTEGER_BYTES + part.byteLength);
        this.sql.exec('INSERT INTO log_chunk (idx, part, data) VALUES (?, ?, ?)', entry.index, i, blob(part));
      });
    }
  }

  private applyKv(changes: KvChanges): void {
    for (const [key, record] of changes.upserts) this.upsertRecord(key, record);
    for (const key of changes.deletes) this.records.remove(key);
    writeSummary(this.sql, changes.summary ?? null);
    for (const [client, session] of changes.sessionUpserts) this.upsertSession(client, session);
    for (const client of changes.sessionDeletes) this.sql.exec('DELETE FROM session WHERE client = ?', client);
    this.sql.exec(
      `INSERT INTO applied_state (id, applied, revision) VALUES (1, 0, ?)
       ON CONFLICT (id) DO UPDATE SET revision = excluded.revision`,
      changes.revision,
    );
  }

  private upsertRecord(key: string, r: KeyRecord): void {
    this.checkRecordRow('records', key, r);
    this.records.put(key, r);
  }

  /** A record's row: its key's UTF-16 bytes, its value, three integers, and two more for the
   *  copy a view's pre-image makes of it (records.ts). */
  private checkRecordRow(table: string, key: string, r: KeyRecord): void {
    checkRow(table, () => `key of ${2 * key.length} bytes`, 2 * key.length + textBytes(r.value) + 5 * INTEGER_BYTES);
  }

  private upsertSession(client: string, s: SessionRecord): void {
    const result = JSON.stringify(s.result);
    checkRow('session', () => `client ${JSON.stringify(client)}`, textBytes(client) + textBytes(result) + 2 * INTEGER_BYTES);
    this.sql.exec(
      `INSERT INTO session (client, seq, result, last_index) VALUES (?, ?, ?, ?)
       ON CONFLICT (client) DO UPDATE SET seq = excluded.seq, result = excluded.result,
       last_index = excluded.last_index`,
      client,
      s.seq,
      result,
      s.lastIndex,
    );
  }
}
