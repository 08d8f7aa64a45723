// The `leveldb` engine: classic-level (an LSM tree; the write-heavy engine). One
// commit group = one WriteBatch written with sync: true, so LevelDB's own log is fsynced before
// save() resolves and the group is applied all or nothing (a group holding a snapshot install
// behind one still unwritten may go in two batches, each of whole SaveBatches: below).
//
// A tiered engine: LevelDB is the home of the key space (the key layout: leveldb-layout.ts).
// load() reads what recovery needs (hard state, snapshot, log, sessions, meta, the records'
// summary: none of them grows with the number of keys) and hands the peer `tier.disk`
// (leveldb-records.ts: getSync on this thread, walks through a reader thread). Records are
// stored under their UTF-16 bytes with a modRevision index beside them, which a save keeps
// exact: an upsert or delete drops its old index entry (KvChanges.replaced says which, else it
// reads the stored record). A data dir of the untiered layout (K<key>) has its records moved
// to R at open, once. Every key a save stages goes into the key filter too
// (leveldb-key-filter.ts), which answers reads of keys never stored without LevelDB; a save
// that has written its batch is the moment a filter build may start (`settled`).
//
// Snapshot installs: the records live in one of two generations. A snapshot arriving in chunks
// is staged in the other one (SaveBatch.stage; `reset` clears it first) and the install flips
// the live generation in the batch that stores the snapshot; an inline install writes its
// records there and flips the same way. The old generation is then cleared in the background
// (db.clear: LevelDB's own range delete), and at the next reset or open at the latest. Clearing
// is never done to the generation the database names live: a group that flipped it in memory
// writes what it holds so far first.
//
// LevelDB's log is checked before LevelDB opens it (leveldb-log-scan.ts); the seals catch damage
// in the sorted tables that LevelDB's own checks let through.
//
// Nothing large is prepared on the event loop in one go (a stall there delays every request):
//   - a snapshot's blob (megabytes) is written to its own file (metcd-snap-<seq>.bin, durable
//     before the batch naming it), not sealed and copied into a LevelDB value that LevelDB then
//     writes to its log, its memtable and every table compaction;
//   - a batch's entries are ONE value (a segment), not one key each: LevelDB's batch is prepared
//     on the event loop op by op, and per-entry keys doubled a follower's ops per group;
//   - the segments a compaction drops are deleted a slice per later write group: load() ignores
//     entries at or below the snapshot's index, so they are harmless until then.

import { ClassicLevel } from 'classic-level';
import { mkdirSync, readdirSync, readFileSync, truncateSync } from 'node:fs';
import path from 'node:path';
import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import type { Entry, HardState, Snapshot } from '../../worker/raft/types.ts';
import type { KeyRecord, KvState, RecordSummary } from '../../worker/kv/types.ts';
import { countRecord, emptySummary, summarize } from '../../worker/kv/record-summary.ts';
import { ByteWriter, FormatError, type ByteReader } from './bytes.ts';
import { type EngineOptions, type EngineStats, type StorageEngine } from './engine.ts';
import { DataDirError, StorageCorruptError } from './errors.ts';
import { BlobFiles, type BlobRef } from './durable-fs.ts';
import { SaveQueue } from './save-queue.ts';
import type { Logger } from '../log.ts';
import {
  readEntry,
  readHardState,
  readRecordSummary,
  readSession,
  readSnapshot,
  seal,
  unseal,
  writeEntry,
  writeHardState,
  writeKeyRecord,
  writeRecordSummary,
  writeSession,
  writeSnapshot,
} from './records.ts';
import { emptyHardState, emptySnapshot } from './state-model.ts';
import { scanLevelLog } from './leveldb-log-scan.ts';
import {
  P_CLIENT,
  P_LOG,
  P_META,
  P_MOD,
  P_OLD_KEY,
  P_RECORD,
  P_SEG,
  P_STATE,
  RECORD_KEY_BYTES_AT,
  genRange,
  logIndex,
  modKey,
  prefixRange,
  recordKey,
  segKey,
  strKey,
  type Generation,
} from './leveldb-layout.ts';
import { LevelDbRecords, unsealRecord } from './leveldb-records.ts';
import { LevelReader } from './leveldb-reader.ts';
import { decodeKey } from './sqlite-key.ts';

type Db = ClassicLevel<Buffer, Buffer>;

const SNAP_PREFIX = 'metcd-snap-';
/** Compacted log segments deleted per write group (bounds that group's batch preparation). */
const STALE_DELETES_PER_GROUP = 64;
const EMPTY = new Uint8Array(0);

/** A stored snapshot: its metadata, and where its data is (null: inline, an older data dir). */
interface StoredSnapshot {
  snapshot: Snapshot;
  ref: BlobRef | null;
}

function writeSnapshotRef(w: ByteWriter, s: Snapshot, ref: BlobRef): void {
  writeSnapshot(w, { meta: s.meta, data: EMPTY });
  w.uint(ref.seq).uint(ref.bytes).u32(ref.crc);
}

function readSnapshotRef(r: ByteReader): StoredSnapshot {
  const snapshot = readSnapshot(r);
  return { snapshot, ref: { seq: r.uint(), bytes: r.uint(), crc: r.u32() } };
}

/** One stored run of log entries [first, last] under `key` (a segment, or an older single entry). */
interface Segment {
  readonly first: number;
  readonly last: number;
  readonly key: Buffer;
}

function sealSegment(entries: readonly Entry[]): Buffer {
  let bytes = 16;
  for (const e of entries) bytes += e.data.length + 24;
  return seal((x) => {
    x.uint(entries.length);
    for (const e of entries) writeEntry(x, e);
  }, new ByteWriter(bytes));
}

function readSegment(r: ByteReader): Entry[] {
  const out: Entry[] = [];
  for (let n = r.uint(); n > 0; n--) out.push(readEntry(r));
  return out;
}

/** What readAll finds: the state but the records, the live generation, the records' summary
 *  (null: unknown, to be counted), and every stored segment (those at or below the snapshot are
 *  stale). */
interface ReadState {
  loaded: Omit<LoadedState, 'tier'>;
  gen: Generation;
  summary: RecordSummary | null;
  snapRef: BlobRef | null;
  segments: Segment[];
}

/** How long after open the key filter's first build waits (EngineOptions.keyFilterDelayMs). */
const KEY_FILTER_DELAY_MS = 3000;

/** Old-layout records moved per batch at open (each batch moves whole records: a restart
 *  midway goes on from where it stopped). */
const MIGRATE_PER_BATCH = 4096;

/** A write group under construction: the last operation per key wins, in batch order. */
class PendingWrites {
  readonly ops = new Map<string, { key: Buffer; value: Buffer | null }>();
  put(key: Buffer, value: Buffer): void {
    this.ops.set(key.toString('latin1'), { key, value });
  }
  del(key: Buffer): void {
    this.ops.set(key.toString('latin1'), { key, value: null });
  }
  /** The value this group writes to `key`: a Buffer, null (deleted), or undefined (untouched). */
  pending(key: Buffer): Buffer | null | undefined {
    return this.ops.get(key.toString('latin1'))?.value;
  }
  /** Forgets this group's writes to keys starting with `head` (a generation being cleared). */
  forget(head: Buffer): void {
    for (const [k, op] of this.ops) if (op.key.subarray(0, head.length).equals(head)) this.ops.delete(k);
  }
  take(): Array<{ type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer }> {
    const out = [...this.ops.values()].map((o) =>
      o.value === null ? { type: 'del' as const, key: o.key } : { type: 'put' as const, key: o.key, value: o.value },
    );
    this.ops.clear();
    return out;
  }
}

const sealRecord = (rec: KeyRecord) => seal((x) => writeKeyRecord(x, rec));
/** A replaced record's modRevision not known: read it (putRecord). */
const READ = Symbol('read');
const EMPTY_VALUE = Buffer.alloc(0);

export class LevelDbEngine implements StorageEngine {
  readonly engine = 'leveldb' as const;
  private readonly dir: string;
  private readonly db: Db;
  private readonly saves: SaveQueue;
  private readonly blobs: BlobFiles;
  private readonly records: LevelDbRecords;
  private readonly log: Logger;
  /** The snapshot's blob file (null: none, or inline). */
  private snapRef: BlobRef | null;
  /** The stored log's range as of the writes applied so far (including the group being built). */
  private firstIndex: number;
  private lastIndex: number;
  /** Stored log segments in index order; those ending below firstIndex await deletion. */
  private segments: Segment[];
  /** The live generation as the database names it (written), and as the group being built
   *  leaves it (an install in it flips it). */
  private diskGen: Generation;
  private gen: Generation;
  /** The background clear of the generation not live (settled: nothing to clear). */
  private clearing: Promise<void> = Promise.resolve();
  /** A transfer's staged records are in the generation not live: a reset since the last open
   *  or flip emptied it for them (a staged set is volatile: every transfer starts with a reset,
   *  SaveBatch.stage). Without one it holds an old generation, so staging there is refused. */
  private staging = false;
  /** About how many records the live generation holds (the last summary written): the size a
   *  key filter is built for. */
  private liveRecords: number;
  private filterTimer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(opts: EngineOptions, db: Db, blobs: BlobFiles, records: LevelDbRecords, read: ReadState, loaded: LoadedState) {
    this.dir = opts.dir;
    this.db = db;
    this.blobs = blobs;
    this.records = records;
    this.log = opts.log;
    const snap = loaded.snapshot.meta.index;
    this.snapRef = read.snapRef;
    this.firstIndex = snap + 1;
    this.lastIndex = snap + loaded.entries.length;
    this.segments = read.segments;
    this.diskGen = read.gen;
    this.gen = read.gen;
    this.saves = new SaveQueue(loaded, (batches) => this.writeGroup(batches), opts.groupCommit, { staging: true });
    this.liveRecords = loaded.tier!.summary.records;
    // The key filter's first build waits for the start to be over (its walk is CPU the start
    // needs), and then for the writes in flight (its rule: between write groups).
    const delay = opts.keyFilterDelayMs ?? KEY_FILTER_DELAY_MS;
    if (delay === 0) this.filterSettled();
    else {
      // Then the first moment between write groups starts it: the end of one (writePending), or
      // no writes at all (idle).
      this.filterTimer = setTimeout(() => {
        this.filterTimer = null;
        void this.saves.idle().then(() => this.filterSettled());
      }, delay);
      this.filterTimer.unref();
    }
    // Whatever the other generation holds (an old one whose clear a restart cut short, or a
    // transfer's staged records) is no one's: cleared while the node starts serving.
    this.clearInBackground(other(read.gen));
  }

  static async open(opts: EngineOptions): Promise<LevelDbEngine> {
    mkdirSync(opts.dir, { recursive: true });
    const logs = readdirSync(opts.dir)
      .filter((n) => /^\d+\.log$/.test(n))
      .sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
    logs.forEach((name, i) => {
      const file = path.join(opts.dir, name);
      const scan = scanLevelLog(file, readFileSync(file));
      if (scan.tornBytes === 0) return;
      if (i < logs.length - 1) {
        throw new StorageCorruptError(file, scan.validBytes, 'leveldb log is damaged but a newer log follows it');
      }
      truncateSync(file, scan.validBytes);
      opts.log.warn('torn tail truncated', { file, offset: scan.validBytes, bytes: scan.tornBytes });
    });
    // multithreading: the reader thread opens the same database (one LevelDB per process).
    const db: Db = new ClassicLevel<Buffer, Buffer>(opts.dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', multithreading: true });
    try {
      await db.open({ createIfMissing: true });
    } catch (err) {
      const cause = (err as { cause?: Error }).cause;
      const msg = `${(err as Error).message}${cause ? `: ${cause.message}` : ''}`;
      if ((err as { code?: string }).code === 'LEVEL_LOCKED' || /lock/i.test(msg)) {
        throw new DataDirError(`${opts.dir} is in use by another process (${msg})`);
      }
      if (/corrupt/i.test(msg)) throw new StorageCorruptError(opts.dir, -1, `leveldb: ${msg}`);
      throw err;
    }
    // The reader thread opens its handle while this one reads what recovery needs.
    const starting = LevelReader.start(opts.dir);
    starting.catch(() => undefined); // awaited below, or closed when the open fails first
    try {
      const blobs = BlobFiles.open(opts.dir, SNAP_PREFIX, readdirSync(opts.dir));
      let read = await LevelDbEngine.readAll(db, opts.dir, blobs);
      if (await LevelDbEngine.migrate(db, opts.dir, read.gen, opts.log)) read = { ...read, summary: null };
      let summary = read.summary;
      if (summary === null) {
        const counted = await LevelDbEngine.count(db, opts.dir, read.gen);
        await db.put(
          strKey(P_STATE, 'summary'),
          seal((x) => writeRecordSummary(x, counted)),
          { sync: true },
        );
        if (counted.records > 0) opts.log.info('leveldb records summary counted', { dir: opts.dir, records: counted.records });
        summary = counted;
      }
      // Blobs no key names: older snapshots, or written by a group that never reached LevelDB.
      await blobs.removeExcept(new Set(read.snapRef === null ? [] : [read.snapRef.seq]));
      const records = new LevelDbRecords(
        db,
        await starting,
        opts.dir,
        read.gen,
        {
          built: (b) => opts.log.debug('leveldb key filter built', { dir: opts.dir, keys: b.keys, bytes: b.bits / 8, ms: b.ms }),
          failed: (message) => opts.log.warn('leveldb key filter build failed', { dir: opts.dir, error: message }),
        },
        opts.offLoopReads,
      );
      const loaded: LoadedState = { ...read.loaded, tier: { disk: records, summary } };
      return new LevelDbEngine(opts, db, blobs, records, read, loaded);
    } catch (err) {
      await starting.then(
        (r) => r.close(),
        () => undefined,
      );
      await db.close();
      const msg = err instanceof Error ? err.message : String(err);
      if (!(err instanceof StorageCorruptError) && /corrupt/i.test(msg)) throw new StorageCorruptError(opts.dir, -1, `leveldb: ${msg}`);
      throw err;
    }
  }

  /** Moves the records of the untiered layout (K<key UTF-8>) into generation `gen`, with their
   *  index. Whether there were any (their summary is then counted afresh). */
  private static async migrate(db: Db, dir: string, gen: Generation, log: Logger): Promise<boolean> {
    let moved = 0;
    const it = db.iterator(prefixRange(P_OLD_KEY));
    try {
      for (;;) {
        const page = await it.nextv(MIGRATE_PER_BATCH);
        if (page.length === 0) break;
        const ops: Array<{ type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer }> = [];
        for (const [k, v] of page) {
          const key = k.toString('utf8', 1);
          const rec = unsealRecord(dir, key, v);
          ops.push(
            { type: 'put', key: recordKey(gen, key), value: v },
            { type: 'put', key: modKey(gen, rec.modRevision, key), value: EMPTY_VALUE },
          );
          ops.push({ type: 'del', key: k });
        }
        await db.batch(ops, { sync: false });
        moved += page.length;
      }
    } finally {
      await it.close();
    }
    if (moved === 0) return false;
    await db.del(strKey(P_STATE, 'summary'), { sync: true });
    log.info('leveldb records moved to the tiered layout', { dir, records: moved });
    return true;
  }

  /** The summary of generation `gen`'s records, by one walk (every seal checked). */
  private static async count(db: Db, dir: string, gen: Generation): Promise<RecordSummary> {
    const summary = emptySummary();
    for await (const [k, v] of db.iterator(genRange(P_RECORD, gen))) {
      const key = decodeKey(k.subarray(RECORD_KEY_BYTES_AT));
      countRecord(summary, key, unsealRecord(dir, key, v));
    }
    return summary;
  }

  /** Everything but the records (sessions are bounded by sessionsMax; the log by compaction). */
  private static async readAll(db: Db, dir: string, blobs: BlobFiles): Promise<ReadState> {
    const check = <T>(key: Buffer, value: Buffer, read: (r: ByteReader) => T): T => {
      try {
        return unseal(value, read);
      } catch (err) {
        if (err instanceof FormatError) {
          throw new StorageCorruptError(dir, -1, `leveldb key ${JSON.stringify(key.toString('latin1'))}: ${err.message}`);
        }
        throw err;
      }
    };
    let hardState: HardState = emptyHardState();
    let snapshot: Snapshot = emptySnapshot();
    let stored: StoredSnapshot | null = null;
    let applied = 0;
    let gen: Generation = 0;
    let summary: RecordSummary | null = null;
    const kv: KvState = { revision: 0, records: [], sessions: [] };
    const pieces: Array<{ segment: Segment; entries: Entry[] }> = [];
    const meta: Record<string, string> = {};
    for (const prefix of [P_CLIENT, P_SEG, P_LOG, P_META, P_STATE]) {
      for await (const [key, value] of db.iterator(prefixRange(prefix))) {
        switch (prefix) {
          case P_META:
            meta[key.toString('utf8', 1)] = value.toString('utf8');
            break;
          case P_STATE: {
            const name = key.toString('utf8', 1);
            if (name === 'hardState') hardState = check(key, value, readHardState);
            else if (name === 'snapshot') snapshot = check(key, value, readSnapshot);
            else if (name === 'snapshotRef') stored = check(key, value, readSnapshotRef);
            else if (name === 'applied') applied = check(key, value, (r) => r.uint());
            else if (name === 'revision') kv.revision = check(key, value, (r) => r.uint());
            else if (name === 'summary') summary = check(key, value, readRecordSummary);
            else if (name === 'generation') gen = check(key, value, (r) => readGeneration(dir, r.uint()));
            break;
          }
          case P_LOG:
          case P_SEG: {
            const es = prefix === P_LOG ? [check(key, value, readEntry)] : check(key, value, readSegment);
            const first = key.length === 9 ? logIndex(key) : -1;
            if (es.length === 0 || es.some((e, k) => e.index !== first + k)) {
              throw new StorageCorruptError(
                dir,
                -1,
                `leveldb log key ${JSON.stringify(key.toString('latin1'))} holds entries ${es.map((e) => e.index).join(',')}`,
              );
            }
            pieces.push({ segment: { first, last: first + es.length - 1, key }, entries: es });
            break;
          }
          case P_CLIENT:
            kv.sessions.push([key.toString('utf8', 1), check(key, value, readSession)]);
            break;
        }
      }
    }
    // A data dir that has stored a snapshot by reference keeps no inline one (the same batch
    // deleted it), so the reference, when present, is the latest.
    const snapRef = stored === null ? null : (stored as StoredSnapshot).ref;
    if (stored !== null) snapshot = { meta: (stored as StoredSnapshot).snapshot.meta, data: await blobs.read(snapRef!) };
    // Older single-entry keys sort apart from segments. Entries at or below the snapshot are
    // compacted ones not deleted yet; the rest must follow it without a gap.
    pieces.sort((a, b) => a.segment.first - b.segment.first);
    pieces.forEach((p, k) => {
      if (k > 0 && p.segment.first <= pieces[k - 1]!.segment.last) {
        throw new StorageCorruptError(dir, -1, `leveldb log segments overlap at entry ${p.segment.first}`);
      }
    });
    const snapIndex = snapshot.meta.index;
    const live: Entry[] = [];
    for (const p of pieces) for (const e of p.entries) if (e.index > snapIndex) live.push(e);
    live.forEach((e, k) => {
      if (e.index !== snapIndex + 1 + k) {
        throw new StorageCorruptError(dir, -1, `leveldb log has entry ${e.index} where ${snapIndex + 1 + k} belongs`);
      }
    });
    return {
      loaded: { hardState, snapshot, entries: live, applied, kv, meta },
      gen,
      summary,
      snapRef,
      segments: pieces.map((p) => p.segment),
    };
  }

  /** The state read at open; after saves, read again once they are all written, with the same
   *  `tier.disk` (a missing summary is counted, not stored: the next open does). */
  async load(): Promise<LoadedState> {
    const opened = this.saves.takeLoaded();
    if (opened !== undefined) return opened;
    await this.saves.idle();
    const read = await LevelDbEngine.readAll(this.db, this.dir, this.blobs);
    const summary = read.summary ?? (await LevelDbEngine.count(this.db, this.dir, read.gen));
    return { ...read.loaded, tier: { disk: this.records, summary } };
  }

  save(batch: SaveBatch): Promise<void> {
    return this.saves.save(batch);
  }

  private async writeGroup(batches: SaveBatch[]): Promise<void> {
    const w = new PendingWrites();
    const before = { first: this.firstIndex, last: this.lastIndex, segments: this.segments.slice(), snapRef: this.snapRef, gen: this.gen };
    const written: BlobRef[] = [];
    try {
      for (const b of batches) await this.stage(w, b, written);
      // A slice of the segments earlier compactions dropped.
      let stale = 0;
      while (stale < STALE_DELETES_PER_GROUP && stale < this.segments.length && this.segments[stale]!.last < this.firstIndex) {
        w.del(this.segments[stale++]!.key);
      }
      if (stale > 0) this.segments.splice(0, stale);
      await this.writePending(w);
    } catch (err) {
      this.firstIndex = before.first;
      this.lastIndex = before.last;
      this.segments = before.segments;
      this.snapRef = before.snapRef;
      this.gen = this.diskGen;
      throw err;
    }
    // Blobs that are not the stored snapshot any more (the batch naming the new one is durable).
    for (const r of [before.snapRef, ...written]) {
      if (r !== null && r.seq !== this.snapRef?.seq) await this.blobs.remove(r.seq);
    }
  }

  /** Writes what `w` holds (durably); a flip of the live generation in it takes effect. */
  private async writePending(w: PendingWrites): Promise<void> {
    await this.db.batch(w.take(), { sync: true });
    if (this.diskGen !== this.gen) {
      this.diskGen = this.gen;
      this.records.gen = this.gen;
      this.clearInBackground(other(this.gen));
    }
    // Nothing is staged but unwritten now: the moment a key filter may start (its rule).
    if (this.filterTimer === null) this.filterSettled();
  }

  /** Nothing is staged but unwritten: the key filter may start a build. */
  private filterSettled(): void {
    if (!this.closed) this.records.keyFilter.settled(this.diskGen, this.liveRecords);
  }

  /** Clears generation `gen` (not live) after any clear in progress. */
  private clearInBackground(gen: Generation): void {
    this.clearing = this.clearing.then(() =>
      this.clearGeneration(gen).catch((err: unknown) => {
        // The next reset (or open) clears it again, and reports a failure then.
        this.log.warn('leveldb clear of an old generation failed', {
          dir: this.dir,
          error: err instanceof Error ? err.message : String(err),
        });
      }),
    );
  }

  private async clearGeneration(gen: Generation): Promise<void> {
    if (gen === this.diskGen) throw new Error(`leveldb engine: generation ${gen} is live, not to be cleared`);
    await this.db.clear(genRange(P_RECORD, gen));
    await this.db.clear(genRange(P_MOD, gen));
  }

  /** Empties the generation an install will make live (`other(this.gen)`), and this group's
   *  writes to it. If this group already flipped the live generation, what it holds is written
   *  first, so the one cleared is never the one the database names live. */
  private async resetStaging(w: PendingWrites): Promise<void> {
    if (this.gen !== this.diskGen) await this.writePending(w);
    const target = other(this.gen);
    await this.clearing;
    await this.clearGeneration(target);
    w.forget(Buffer.from([P_RECORD, target]));
    w.forget(Buffer.from([P_MOD, target]));
  }

  /** Stages `key`'s record in generation `gen`, replacing its stored one there, whose
   *  modRevision is `old` (undefined: none; READ: not known, read it). */
  private putRecord(w: PendingWrites, gen: Generation, key: string, rec: KeyRecord, old: number | undefined | typeof READ): void {
    const at = recordKey(gen, key);
    const mod = old === READ ? this.storedMod(w, key, at) : old;
    if (mod !== undefined && mod !== rec.modRevision) w.del(modKey(gen, mod, key));
    w.put(at, sealRecord(rec));
    w.put(modKey(gen, rec.modRevision, key), EMPTY_VALUE);
    this.records.keyFilter.added(gen, key);
  }

  private deleteRecord(w: PendingWrites, gen: Generation, key: string, old: number | undefined | typeof READ): void {
    const at = recordKey(gen, key);
    const mod = old === READ ? this.storedMod(w, key, at) : old;
    if (mod !== undefined) w.del(modKey(gen, mod, key));
    w.del(at);
  }

  /** The modRevision of the record stored at `at` as this group leaves it so far. */
  private storedMod(w: PendingWrites, key: string, at: Buffer): number | undefined {
    const pending = w.pending(at);
    const value = pending === undefined ? this.db.getSync(at) : pending;
    return value === null || value === undefined ? undefined : unsealRecord(this.dir, key, value).modRevision;
  }

  /** Writes a snapshot's blob to its own file and stages the key naming it. */
  private async stageSnapshot(w: PendingWrites, snapshot: Snapshot, written: BlobRef[]): Promise<void> {
    if (snapshot.data.length === 0) {
      w.put(
        strKey(P_STATE, 'snapshot'),
        seal((x) => writeSnapshot(x, snapshot)),
      );
      w.del(strKey(P_STATE, 'snapshotRef'));
      this.snapRef = null;
      return;
    }
    const ref = await this.blobs.write(snapshot.data);
    written.push(ref);
    w.put(
      strKey(P_STATE, 'snapshotRef'),
      seal((x) => writeSnapshotRef(x, snapshot, ref)),
    );
    w.del(strKey(P_STATE, 'snapshot'));
    this.snapRef = ref;
  }

  /** Removes every stored entry at or above `index` (a segment across it keeps its head). */
  private async truncateFrom(w: PendingWrites, index: number): Promise<void> {
    for (;;) {
      const seg = this.segments[this.segments.length - 1];
      if (seg === undefined || seg.last < index) return;
      this.segments.pop();
      if (seg.first >= index) {
        w.del(seg.key);
        continue;
      }
      const kept = (await this.segmentEntries(w, seg)).filter((e) => e.index < index);
      w.put(seg.key, sealSegment(kept));
      this.segments.push({ first: seg.first, last: index - 1, key: seg.key });
      return;
    }
  }

  /** A stored segment's entries, as this group has left them so far. */
  private async segmentEntries(w: PendingWrites, seg: Segment): Promise<Entry[]> {
    const value = w.pending(seg.key) ?? (await this.db.get(seg.key));
    if (value === null || value === undefined) throw new Error(`leveldb engine: log segment at ${seg.first} is not stored`);
    try {
      return seg.key[0] === P_LOG ? [unseal(value, readEntry)] : unseal(value, readSegment);
    } catch (err) {
      if (err instanceof FormatError) throw new StorageCorruptError(this.dir, -1, `leveldb log segment at ${seg.first}: ${err.message}`);
      throw err;
    }
  }

  private putSummary(w: PendingWrites, summary: RecordSummary | undefined): void {
    const at = strKey(P_STATE, 'summary');
    if (summary === undefined) w.del(at);
    else
      w.put(
        at,
        seal((x) => writeRecordSummary(x, summary)),
      );
  }

  private async stage(w: PendingWrites, b: SaveBatch, written: BlobRef[]): Promise<void> {
    if (b.stage) {
      if (b.stage.reset) {
        await this.resetStaging(w);
        this.staging = true;
      }
      if (!this.staging) throw new Error('leveldb engine: staged records without a reset since the last install or open');
      // A transfer holds each key once (a chunk sent again holds the same records), and the
      // generation was empty at its reset: nothing to replace.
      const target = other(this.gen);
      for (const [key, rec] of b.stage.records) this.putRecord(w, target, key, rec, undefined);
    }
    if (b.installSnapshot) {
      const { snapshot, kv, staged } = b.installSnapshot;
      // Segments reaching above the snapshot contradict it and go now (stale ones of an earlier
      // compaction too, should the snapshot lie below them); the rest are stale.
      while (this.segments.length > 0 && this.segments[this.segments.length - 1]!.last > snapshot.meta.index) {
        w.del(this.segments.pop()!.key);
      }
      if (staged === undefined) {
        // Inline: the records go to the other generation, emptied first, as a staged set would.
        await this.resetStaging(w);
        for (const [key, rec] of kv.records) this.putRecord(w, other(this.gen), key, rec, undefined);
      } else if (!this.staging) {
        throw new Error('leveldb engine: a staged install without a reset since the last install or open');
      }
      this.staging = false;
      this.gen = other(this.gen);
      w.put(
        strKey(P_STATE, 'generation'),
        seal((x) => x.uint(this.gen)),
      );
      const summary = staged ?? summarize(kv.records);
      this.putSummary(w, summary);
      this.liveRecords = summary.records;
      w.forget(Buffer.from([P_CLIENT]));
      for await (const key of this.db.keys(prefixRange(P_CLIENT))) w.del(key);
      await this.stageSnapshot(w, snapshot, written);
      for (const [client, s] of kv.sessions)
        w.put(
          strKey(P_CLIENT, client),
          seal((x) => writeSession(x, s)),
        );
      w.put(
        strKey(P_STATE, 'revision'),
        seal((x) => x.uint(kv.revision)),
      );
      w.put(
        strKey(P_STATE, 'applied'),
        seal((x) => x.uint(snapshot.meta.index)),
      );
      this.firstIndex = snapshot.meta.index + 1;
      this.lastIndex = snapshot.meta.index;
    }
    if (b.compact) {
      const snap = b.compact;
      await this.stageSnapshot(w, snap, written);
      this.firstIndex = snap.meta.index + 1;
      this.lastIndex = Math.max(this.lastIndex, snap.meta.index);
    }
    if (b.entries && b.entries.length > 0) {
      const from = b.entries[0]!.index;
      const last = b.entries[b.entries.length - 1]!.index;
      await this.truncateFrom(w, from);
      const key = segKey(from);
      w.put(key, sealSegment(b.entries));
      this.segments.push({ first: from, last, key });
      this.lastIndex = last;
    }
    if (b.hardState) {
      const h = b.hardState;
      w.put(
        strKey(P_STATE, 'hardState'),
        seal((x) => writeHardState(x, h)),
      );
    }
    if (b.kv) {
      const c = b.kv;
      w.put(
        strKey(P_STATE, 'revision'),
        seal((x) => x.uint(c.revision)),
      );
      // What the changes replace, as the state machine knew it (KvChanges.replaced), else read.
      const replaced = c.replaced === undefined ? null : new Map(c.replaced);
      const old = (key: string) => (replaced === null ? READ : replaced.get(key));
      for (const [key, rec] of c.upserts) this.putRecord(w, this.gen, key, rec, old(key));
      for (const key of c.deletes) this.deleteRecord(w, this.gen, key, old(key));
      if (c.summary !== undefined) this.liveRecords = c.summary.records;
      for (const [client, s] of c.sessionUpserts)
        w.put(
          strKey(P_CLIENT, client),
          seal((x) => writeSession(x, s)),
        );
      for (const client of c.sessionDeletes) w.del(strKey(P_CLIENT, client));
      this.putSummary(w, c.summary);
    }
    if (b.applied !== undefined) {
      const a = b.applied;
      w.put(
        strKey(P_STATE, 'applied'),
        seal((x) => x.uint(a)),
      );
    }
    if (b.meta) for (const [k, v] of Object.entries(b.meta)) w.put(strKey(P_META, k), Buffer.from(v, 'utf8'));
  }

  stats(): EngineStats {
    return this.saves.stats();
  }

  /** Resolves once no old generation is being cleared (for tests: the database then holds only
   *  the live records and any staged ones). */
  cleared(): Promise<void> {
    return this.clearing;
  }

  /** The records' reader (and its views) first, then the database. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.filterTimer !== null) clearTimeout(this.filterTimer);
    await this.saves.idle();
    await this.clearing;
    await this.records.close();
    await this.db.close();
  }
}

const other = (gen: Generation): Generation => (gen === 0 ? 1 : 0);

function readGeneration(dir: string, n: number): Generation {
  if (n !== 0 && n !== 1) throw new StorageCorruptError(dir, -1, `leveldb names generation ${n} live (0 or 1)`);
  return n;
}
