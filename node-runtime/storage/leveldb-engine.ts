// The `leveldb` engine: classic-level (an LSM tree; the write-heavy engine). One
// commit group = one WriteBatch written with sync: true, so LevelDB's own log is fsynced before
// save() resolves and the group is applied all or nothing.
//
// Key layout (one byte prefix, so each kind is a contiguous range):
//   M<name>            meta value (UTF-8)
//   S<name>            hardState | snapshotRef | applied | revision   (sealed)
//                      (snapshot: the inline form older data dirs hold)
//   G<index u64 BE>    log segment: the entries one batch appended, from index  (sealed)
//   L<index u64 BE>    one log entry (the layout of older data dirs; read, never written)
//   K<key>             KV record                                  (sealed)
//   C<client>          session                                    (sealed)
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
import type { KvState } from '../../worker/kv/types.ts';
import { ByteWriter, FormatError, type ByteReader } from './bytes.ts';
import { type EngineOptions, type EngineStats, type StorageEngine } from './engine.ts';
import { DataDirError, StorageCorruptError } from './errors.ts';
import { BlobFiles, type BlobRef } from './durable-fs.ts';
import { SaveQueue } from './save-queue.ts';
import {
  readEntry,
  readHardState,
  readKeyRecord,
  readSession,
  readSnapshot,
  seal,
  unseal,
  writeEntry,
  writeHardState,
  writeKeyRecord,
  writeSession,
  writeSnapshot,
} from './records.ts';
import { emptyHardState, emptySnapshot } from './state-model.ts';
import { scanLevelLog } from './leveldb-log-scan.ts';

type Db = ClassicLevel<Buffer, Buffer>;

const P_META = 0x4d; // M
const P_STATE = 0x53; // S
const P_LOG = 0x4c; // L
const P_SEG = 0x47; // G
const P_KEY = 0x4b; // K
const P_CLIENT = 0x43; // C

function strKey(prefix: number, s: string): Buffer {
  const n = Buffer.byteLength(s, 'utf8');
  const b = Buffer.allocUnsafe(1 + n);
  b[0] = prefix;
  b.write(s, 1, n, 'utf8');
  return b;
}

function segKey(index: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = P_SEG;
  b.writeUInt32BE(Math.floor(index / 0x1_0000_0000), 1);
  b.writeUInt32BE(index >>> 0, 5);
  return b;
}

function logIndex(key: Buffer): number {
  return key.readUInt32BE(1) * 0x1_0000_0000 + key.readUInt32BE(5);
}

const range = (prefix: number) => ({ gte: Buffer.from([prefix]), lt: Buffer.from([prefix + 1]) });

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

/** What load() reads, plus every stored segment (those at or below the snapshot are stale). */
interface ReadState {
  loaded: LoadedState;
  snapRef: BlobRef | null;
  segments: Segment[];
}

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
  delPrefix(prefix: number): void {
    for (const op of this.ops.values()) if (op.key[0] === prefix) op.value = null;
  }
}

export class LevelDbEngine implements StorageEngine {
  readonly engine = 'leveldb' as const;
  private readonly dir: string;
  private readonly db: Db;
  private readonly saves: SaveQueue;
  private readonly blobs: BlobFiles;
  /** The blob file of the stored snapshot (null: none, or inline). */
  private snapRef: BlobRef | null;
  /** The stored log's range as of the writes applied so far (including the group being built). */
  private firstIndex: number;
  private lastIndex: number;
  /** Stored log segments in index order; those ending below firstIndex await deletion. */
  private segments: Segment[];

  private constructor(dir: string, db: Db, blobs: BlobFiles, read: ReadState, opts: EngineOptions) {
    this.dir = dir;
    this.db = db;
    this.blobs = blobs;
    const loaded = read.loaded;
    const snap = loaded.snapshot.meta.index;
    this.snapRef = read.snapRef;
    this.firstIndex = snap + 1;
    this.lastIndex = snap + loaded.entries.length;
    this.segments = read.segments;
    this.saves = new SaveQueue(loaded, (batches) => this.writeGroup(batches), opts.groupCommit);
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
    const db: Db = new ClassicLevel<Buffer, Buffer>(opts.dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
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
    try {
      const blobs = BlobFiles.open(opts.dir, SNAP_PREFIX, readdirSync(opts.dir));
      const read = await LevelDbEngine.readAll(db, opts.dir, blobs);
      // Blobs no key names: older snapshots, or written by a group that never reached LevelDB.
      await blobs.removeExcept(new Set(read.snapRef === null ? [] : [read.snapRef.seq]));
      return new LevelDbEngine(opts.dir, db, blobs, read, opts);
    } catch (err) {
      await db.close();
      const msg = err instanceof Error ? err.message : String(err);
      if (!(err instanceof StorageCorruptError) && /corrupt/i.test(msg)) throw new StorageCorruptError(opts.dir, -1, `leveldb: ${msg}`);
      throw err;
    }
  }

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
    const kv: KvState = { revision: 0, records: [], sessions: [] };
    const pieces: Array<{ segment: Segment; entries: Entry[] }> = [];
    const meta: Record<string, string> = {};
    const it = db.iterator();
    try {
      for (;;) {
        const page = await it.nextv(1000);
        if (page.length === 0) break;
        for (const [key, value] of page) {
          switch (key[0]) {
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
              break;
            }
            case P_LOG:
            case P_SEG: {
              const es = key[0] === P_LOG ? [check(key, value, readEntry)] : check(key, value, readSegment);
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
            case P_KEY:
              kv.records.push([key.toString('utf8', 1), check(key, value, readKeyRecord)]);
              break;
            case P_CLIENT:
              kv.sessions.push([key.toString('utf8', 1), check(key, value, readSession)]);
              break;
            default:
              throw new StorageCorruptError(dir, -1, `leveldb holds a key with unknown prefix ${key[0]}`);
          }
        }
      }
    } finally {
      await it.close();
    }
    // A data dir that has stored a snapshot by reference keeps no inline one (the same batch
    // deleted it), so the reference, when present, is the latest.
    const snapRef = stored === null ? null : (stored as StoredSnapshot).ref;
    if (stored !== null) snapshot = { meta: (stored as StoredSnapshot).snapshot.meta, data: await blobs.read(snapRef!) };
    // The log sorts before the snapshot is known (G, L < S), and older single-entry keys sort
    // apart from segments. Entries at or below the snapshot are compacted ones not deleted yet;
    // the rest must follow it without a gap.
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
    return { loaded: { hardState, snapshot, entries: live, applied, kv, meta }, snapRef, segments: pieces.map((p) => p.segment) };
  }

  async load(): Promise<LoadedState> {
    return this.saves.takeLoaded() ?? (await LevelDbEngine.readAll(this.db, this.dir, this.blobs)).loaded;
  }

  save(batch: SaveBatch): Promise<void> {
    return this.saves.save(batch);
  }

  private async writeGroup(batches: SaveBatch[]): Promise<void> {
    const w = new PendingWrites();
    const before = { first: this.firstIndex, last: this.lastIndex, segments: this.segments.slice(), snapRef: this.snapRef };
    const written: BlobRef[] = [];
    try {
      for (const b of batches) await this.stage(w, b, written);
      // A slice of the segments earlier compactions dropped.
      let stale = 0;
      while (stale < STALE_DELETES_PER_GROUP && stale < this.segments.length && this.segments[stale]!.last < this.firstIndex) {
        w.del(this.segments[stale++]!.key);
      }
      if (stale > 0) this.segments.splice(0, stale);
      const ops = [...w.ops.values()].map((o) =>
        o.value === null ? { type: 'del' as const, key: o.key } : { type: 'put' as const, key: o.key, value: o.value },
      );
      await this.db.batch(ops, { sync: true });
    } catch (err) {
      this.firstIndex = before.first;
      this.lastIndex = before.last;
      this.segments = before.segments;
      this.snapRef = before.snapRef;
      throw err;
    }
    // Blobs that are not the stored snapshot any more (the batch naming the new one is durable).
    for (const r of [before.snapRef, ...written]) {
      if (r !== null && r.seq !== this.snapRef?.seq) await this.blobs.remove(r.seq);
    }
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

  private async stage(w: PendingWrites, b: SaveBatch, written: BlobRef[]): Promise<void> {
    if (b.installSnapshot) {
      const { snapshot, kv } = b.installSnapshot;
      // Segments reaching above the snapshot contradict it and go now (stale ones of an earlier
      // compaction too, should the snapshot lie below them); the rest are stale.
      while (this.segments.length > 0 && this.segments[this.segments.length - 1]!.last > snapshot.meta.index) {
        w.del(this.segments.pop()!.key);
      }
      for (const prefix of [P_KEY, P_CLIENT]) {
        w.delPrefix(prefix);
        for await (const key of this.db.keys(range(prefix))) w.del(key);
      }
      await this.stageSnapshot(w, snapshot, written);
      for (const [key, rec] of kv.records)
        w.put(
          strKey(P_KEY, key),
          seal((x) => writeKeyRecord(x, rec)),
        );
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
      for (const [key, rec] of c.upserts)
        w.put(
          strKey(P_KEY, key),
          seal((x) => writeKeyRecord(x, rec)),
        );
      for (const key of c.deletes) w.del(strKey(P_KEY, key));
      for (const [client, s] of c.sessionUpserts)
        w.put(
          strKey(P_CLIENT, client),
          seal((x) => writeSession(x, s)),
        );
      for (const client of c.sessionDeletes) w.del(strKey(P_CLIENT, client));
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

  async close(): Promise<void> {
    await this.saves.idle();
    await this.db.close();
  }
}
