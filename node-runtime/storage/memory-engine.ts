// The `memory` engine: the whole state lives in a StateModel in memory; durability comes from
// an append-only log of checksummed records (record-file.ts), fsynced before save() resolves.
// This answers the raftexample question "how does a memory map lose nothing?": every change is
// in the log before it is acknowledged, and the map is rebuilt from the log on start.
//
//   image-<gen>.bin   magic | crc32(body) | body      the state when log <gen> started
//   wal-<gen>.log     records, each one commit group   (batches applied on top of it)
//   snap-<seq>.bin    one snapshot blob; log records and images name it by BlobRef
//
// Start-up loads the newest image (none: empty state) and replays wal-<gen>, wal-<gen+1>, … in
// order. Nothing large is encoded on the event loop in one go (a stall there delays every
// request on the node):
//   - snapshot blobs (megabytes, one per compaction) go to their own file, written once from
//     the thread pool, never copied into a log record or an image;
//   - the log is bounded by rewrites: once it outgrows twice the last image (and a floor), new
//     groups go to a fresh log at once, and the image of the state at that switch is written in
//     the background a slice per event-loop turn (RecordsCapture keeps that state readable
//     while later batches apply). Until the image is durable the previous image and BOTH logs
//     recover the state; after it, the older generation is deleted.
// A crash at any point leaves an image and an unbroken chain of logs after it (a torn tail can
// only be in the newest log: every older one ended with an fsynced record before the switch).

import { open as openFile, readdir, readFile, rename } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import type { Entry, Snapshot } from '../../worker/raft/types.ts';
import type { SessionRecord } from '../../worker/kv/types.ts';
import { ByteReader, ByteWriter, FormatError } from './bytes.ts';
import { type EngineOptions, type EngineStats, type StorageEngine } from './engine.ts';
import { StorageCorruptError } from './errors.ts';
import { BlobFiles, type BlobRef, fsyncDir, unlinkIfExists } from './durable-fs.ts';
import { SaveQueue } from './save-queue.ts';
import { RecordAppender, scanRecords } from './record-file.ts';
import {
  readEntry,
  readHardState,
  readKeyRecord,
  readKvState,
  readSaveBatch,
  readSession,
  readSnapshot,
  writeEntry,
  writeHardState,
  writeKeyRecord,
  writeSaveBatch,
  writeSession,
  writeSnapshot,
} from './records.ts';
import { type RecordsCapture, StateModel } from './state-model.ts';

/** v1: everything inline, whole kv state as one list. v2: snapshot by BlobRef, records streamed. */
const IMAGE_MAGIC_V1 = Buffer.from('MTCDIMG1', 'latin1');
const IMAGE_MAGIC = Buffer.from('MTCDIMG2', 'latin1');
const IMAGE_HEADER_BYTES = 12;
/** A v2 log record's payload starts with 0 (a v1 payload starts with its non-zero batch count). */
const GROUP_V2_MARK = 0;
const GROUP_V2_VERSION = 2;
const REF_INSTALL = 1;
const REF_COMPACT = 2;
/** Image bytes encoded per event-loop turn while writing an image in the background. */
const IMAGE_SLICE_BYTES = 256 * 1024;
const EMPTY = new Uint8Array(0);

export interface MemoryEngineOptions extends EngineOptions {
  /** The log is rewritten once it exceeds max(this, 2 × last image bytes). */
  rewriteMinBytes?: number;
  /** Largest record (one commit group) accepted in the log. */
  recordBytesMax?: number;
}

const DEFAULT_REWRITE_MIN_BYTES = 64 * 1024 * 1024;
const DEFAULT_RECORD_BYTES_MAX = 1024 * 1024 * 1024;
const SNAP_PREFIX = 'snap-';

const imageName = (gen: number) => `image-${String(gen).padStart(12, '0')}.bin`;
const walName = (gen: number) => `wal-${String(gen).padStart(12, '0')}.log`;
const GEN_FILE = /^(image|wal)-(\d+)\.(bin|log)$/;

function writeRef(w: ByteWriter, ref: BlobRef): void {
  w.uint(ref.seq).uint(ref.bytes).u32(ref.crc);
}

function readRef(r: ByteReader): BlobRef {
  return { seq: r.uint(), bytes: r.uint(), crc: r.u32() };
}

const withoutData = (s: Snapshot): Snapshot => ({ meta: s.meta, data: EMPTY });

/** A batch as the log holds it, with the files its snapshots were written to. */
interface LoggedBatch {
  batch: SaveBatch;
  installRef?: BlobRef;
  compactRef?: BlobRef;
}

function encodeGroup(items: LoggedBatch[]): Buffer {
  const w = new ByteWriter(4096);
  w.u8(GROUP_V2_MARK).u8(GROUP_V2_VERSION).uint(items.length);
  for (const { batch, installRef, compactRef } of items) {
    w.u8((installRef ? REF_INSTALL : 0) | (compactRef ? REF_COMPACT : 0));
    if (installRef) writeRef(w, installRef);
    if (compactRef) writeRef(w, compactRef);
    const stored: SaveBatch = { ...batch };
    if (installRef) stored.installSnapshot = { snapshot: withoutData(batch.installSnapshot!.snapshot), kv: batch.installSnapshot!.kv };
    if (compactRef) stored.compact = withoutData(batch.compact!);
    writeSaveBatch(w, stored);
  }
  return w.view();
}

function decodeGroup(file: string, offset: number, payload: Buffer): LoggedBatch[] {
  const r = new ByteReader(payload);
  try {
    const out: LoggedBatch[] = [];
    if (payload[0] === GROUP_V2_MARK) {
      r.u8();
      const version = r.u8();
      if (version !== GROUP_V2_VERSION) throw new FormatError(`unknown record version ${version}`);
      for (let n = r.uint(); n > 0; n--) {
        const refs = r.u8();
        if (refs > (REF_INSTALL | REF_COMPACT)) throw new FormatError(`bad snapshot reference flags ${refs}`);
        const item: Partial<LoggedBatch> = {};
        if (refs & REF_INSTALL) item.installRef = readRef(r);
        if (refs & REF_COMPACT) item.compactRef = readRef(r);
        item.batch = readSaveBatch(r);
        if ((item.installRef && !item.batch.installSnapshot) || (item.compactRef && !item.batch.compact)) {
          throw new FormatError('snapshot reference without a snapshot');
        }
        out.push(item as LoggedBatch);
      }
    } else {
      for (let n = r.uint(); n > 0; n--) out.push({ batch: readSaveBatch(r) });
    }
    r.done();
    return out;
  } catch (err) {
    // The checksum matched, so this is a format bug or a foreign file, not a torn write.
    if (err instanceof FormatError) throw new StorageCorruptError(file, offset, `record malformed: ${err.message}`);
    throw err;
  }
}

/** The state at one moment, held so it can be written out over many event-loop turns. */
interface ImageCapture {
  hardState: StateModel['hardState'];
  snapshot: Snapshot;
  snapRef: BlobRef | null;
  entries: Entry[];
  applied: number;
  meta: Array<[string, string]>;
  revision: number;
  sessions: Array<[string, SessionRecord]>;
  records: RecordsCapture;
}

interface DecodedImage {
  model: StateModel;
  snapRef: BlobRef | null;
}

function decodeImage(file: string, buf: Buffer): DecodedImage {
  const v1 = buf.length >= IMAGE_HEADER_BYTES && buf.subarray(0, 8).equals(IMAGE_MAGIC_V1);
  if (buf.length < IMAGE_HEADER_BYTES || (!v1 && !buf.subarray(0, 8).equals(IMAGE_MAGIC))) {
    throw new StorageCorruptError(file, 0, 'not a metcd image (bad magic)');
  }
  if (buf.readUInt32LE(8) !== crc32(buf.subarray(IMAGE_HEADER_BYTES))) {
    throw new StorageCorruptError(file, IMAGE_HEADER_BYTES, 'image body fails its checksum');
  }
  const r = new ByteReader(buf, IMAGE_HEADER_BYTES);
  try {
    const m = new StateModel();
    let snapRef: BlobRef | null = null;
    m.hardState = readHardState(r);
    m.snapshot = readSnapshot(r);
    if (v1) {
      const entries: Entry[] = [];
      for (let n = r.uint(); n > 0; n--) entries.push(readEntry(r));
      m.entries = entries;
      m.applied = r.uint();
      m.setKv(readKvState(r));
      for (let n = r.uint(); n > 0; n--) m.meta.set(r.str(), r.str());
    } else {
      if (r.bool()) snapRef = readRef(r);
      m.applied = r.uint();
      for (let n = r.uint(); n > 0; n--) m.meta.set(r.str(), r.str());
      m.revision = r.uint();
      for (let n = r.uint(); n > 0; n--) m.sessions.set(r.str(), readSession(r));
      const entries: Entry[] = [];
      for (let n = r.uint(); n > 0; n--) entries.push(readEntry(r));
      m.entries = entries;
      while (r.bool()) m.records.set(r.str(), readKeyRecord(r));
    }
    r.done();
    return { model: m, snapRef };
  } catch (err) {
    if (err instanceof FormatError) throw new StorageCorruptError(file, r.offset, `image malformed: ${err.message}`);
    throw err;
  }
}

/** Thrown inside a background image write when the engine closes: the write is abandoned. */
class ImageAbandoned extends Error {}

export class MemoryEngine implements StorageEngine {
  readonly engine = 'memory' as const;
  private readonly dir: string;
  private readonly opts: MemoryEngineOptions;
  private readonly model: StateModel;
  private readonly blobs: BlobFiles;
  /** The blob file holding model.snapshot's data (null: none, or inline in an old image/log). */
  private snapRef: BlobRef | null;
  /** Generation of the log being appended to. */
  private gen: number;
  private wal: RecordAppender;
  private imageBytes: number;
  private readonly saves: SaveQueue;
  /** The background image write under way, if any. */
  private rewriting: Promise<void> | null = null;
  private closing = false;

  private constructor(
    opts: MemoryEngineOptions,
    model: StateModel,
    blobs: BlobFiles,
    snapRef: BlobRef | null,
    gen: number,
    wal: RecordAppender,
    imageBytes: number,
  ) {
    this.dir = opts.dir;
    this.opts = opts;
    this.model = model;
    this.blobs = blobs;
    this.snapRef = snapRef;
    this.gen = gen;
    this.wal = wal;
    this.imageBytes = imageBytes;
    this.saves = new SaveQueue(model.toLoaded(), (batches) => this.writeGroup(batches), opts.groupCommit);
  }

  static async open(opts: MemoryEngineOptions): Promise<MemoryEngine> {
    mkdirSync(opts.dir, { recursive: true });
    const names = await readdir(opts.dir);
    for (const n of names) if (n.endsWith('.tmp')) await unlinkIfExists(path.join(opts.dir, n));
    const gensOf = (kind: string) =>
      names
        .map((n) => GEN_FILE.exec(n))
        .filter((m) => m !== null && m[1] === kind)
        .map((m) => Number(m![2]));
    const images = gensOf('image');
    const base = images.length > 0 ? Math.max(...images) : 0;

    let model = new StateModel();
    let snapRef: BlobRef | null = null;
    let imageBytes = 0;
    if (images.length > 0) {
      const file = path.join(opts.dir, imageName(base));
      const buf = await readFile(file);
      ({ model, snapRef } = decodeImage(file, buf));
      imageBytes = buf.length;
    }

    // The logs after the image, which must follow each other without a gap.
    const chain = gensOf('wal')
      .filter((g) => g >= base)
      .sort((a, b) => a - b);
    chain.forEach((g, k) => {
      if (g !== base + k) {
        throw new StorageCorruptError(path.join(opts.dir, walName(base + k)), -1, `log missing: ${walName(g)} follows image ${base}`);
      }
    });
    let validBytes = 0;
    for (const [k, g] of chain.entries()) {
      const walFile = path.join(opts.dir, walName(g));
      const buf = await readFile(walFile);
      const scan = scanRecords(walFile, buf, opts.recordBytesMax ?? DEFAULT_RECORD_BYTES_MAX);
      for (const payload of scan.payloads) {
        const offset = payload.byteOffset - buf.byteOffset - 8;
        for (const item of decodeGroup(walFile, offset, payload)) {
          model.apply(item.batch);
          if (item.batch.installSnapshot) snapRef = item.installRef ?? null;
          if (item.batch.compact) snapRef = item.compactRef ?? null;
        }
      }
      if (scan.tornBytes > 0) {
        if (k < chain.length - 1) {
          // A newer log exists only after this one's last record was fsynced.
          throw new StorageCorruptError(walFile, scan.validBytes, `damaged record in a log that ${walName(chain[k + 1]!)} follows`);
        }
        opts.log.warn('torn tail truncated', { file: walFile, offset: scan.validBytes, bytes: scan.tornBytes });
      }
      validBytes = scan.validBytes;
    }
    const gen = chain.length > 0 ? chain[chain.length - 1]! : base;
    const wal = await RecordAppender.open(path.join(opts.dir, walName(gen)), validBytes);
    if (chain.length === 0) await fsyncDir(opts.dir);

    const blobs = BlobFiles.open(opts.dir, SNAP_PREFIX, names);
    if (snapRef !== null) model.snapshot = { meta: model.snapshot.meta, data: await blobs.read(snapRef) };
    // Generations older than the newest image are fully contained in it; blobs no longer named
    // are older snapshots, or were written by a group that never reached the log.
    for (const n of names) {
      const m = GEN_FILE.exec(n);
      if (m && Number(m[2]) < base) await unlinkIfExists(path.join(opts.dir, n));
    }
    await blobs.removeExcept(new Set(snapRef === null ? [] : [snapRef.seq]));
    return new MemoryEngine(opts, model, blobs, snapRef, gen, wal, imageBytes);
  }

  async load(): Promise<LoadedState> {
    return this.saves.takeLoaded() ?? this.model.toLoaded();
  }

  save(batch: SaveBatch): Promise<void> {
    return this.saves.save(batch);
  }

  private async writeGroup(batches: SaveBatch[]): Promise<void> {
    // Snapshot blobs first, each durable in its own file, so the record naming them may follow.
    const items: LoggedBatch[] = [];
    const written: BlobRef[] = [];
    for (const batch of batches) {
      const item: LoggedBatch = { batch };
      const install = batch.installSnapshot?.snapshot.data;
      if (install !== undefined && install.length > 0) written.push((item.installRef = await this.blobs.write(install)));
      if (batch.compact !== undefined && batch.compact.data.length > 0)
        written.push((item.compactRef = await this.blobs.write(batch.compact.data)));
      items.push(item);
    }
    await this.wal.append(encodeGroup(items));

    const previous = this.snapRef;
    for (const item of items) {
      this.model.apply(item.batch);
      if (item.batch.installSnapshot) this.snapRef = item.installRef ?? null;
      if (item.batch.compact) this.snapRef = item.compactRef ?? null;
    }
    // Older blobs are no longer the latest snapshot: a recovery replays through the record just
    // written, which names the new one (an image that still names an old one is always followed
    // by that record in its chain of logs).
    const stale = [previous, ...written].filter((r) => r !== null && r.seq !== this.snapRef?.seq) as BlobRef[];
    for (const r of stale) await this.blobs.remove(r.seq);

    const threshold = Math.max(this.opts.rewriteMinBytes ?? DEFAULT_REWRITE_MIN_BYTES, 2 * this.imageBytes);
    if (this.rewriting === null && !this.closing && this.wal.size > threshold) await this.startRewrite();
  }

  /**
   * Starts generation gen+1: new groups go to a fresh log from now on, and the image of the
   * state as of this moment is written in the background (finishRewrite).
   */
  private async startRewrite(): Promise<void> {
    const next = this.gen + 1;
    const m = this.model;
    const capture: ImageCapture = {
      hardState: { ...m.hardState },
      snapshot: m.snapshot,
      snapRef: this.snapRef,
      entries: m.entries.slice(),
      applied: m.applied,
      meta: [...m.meta],
      revision: m.revision,
      sessions: [...m.sessions],
      records: m.captureRecords(),
    };
    let wal: RecordAppender;
    try {
      wal = await RecordAppender.open(path.join(this.dir, walName(next)), 0);
      await fsyncDir(this.dir);
    } catch (err) {
      capture.records.close();
      throw err;
    }
    const old = this.wal;
    this.wal = wal;
    this.gen = next;
    await old.close();
    this.rewriting = this.finishRewrite(next, capture).finally(() => {
      this.rewriting = null;
    });
  }

  private async finishRewrite(gen: number, capture: ImageCapture): Promise<void> {
    try {
      const bytes = await this.writeImage(gen, capture);
      this.imageBytes = bytes;
      for (const n of await readdir(this.dir)) {
        const m = GEN_FILE.exec(n);
        if (m && Number(m[2]) < gen) await unlinkIfExists(path.join(this.dir, n));
      }
      this.opts.log.debug('memory engine log rewritten', { gen, imageBytes: bytes });
    } catch (err) {
      // The previous image and the chain of logs still hold everything; a later rewrite retries.
      await unlinkIfExists(path.join(this.dir, `${imageName(gen)}.tmp`)).catch(() => {});
      if (!(err instanceof ImageAbandoned)) {
        this.opts.log.error('memory engine image write failed', { gen, error: err instanceof Error ? err.message : String(err) });
      }
    } finally {
      capture.records.close();
    }
  }

  /** Writes image-<gen> from `c` a slice at a time; returns its size once durable. */
  private async writeImage(gen: number, c: ImageCapture): Promise<number> {
    const file = path.join(this.dir, imageName(gen));
    const tmp = `${file}.tmp`;
    const fh = await openFile(tmp, 'w');
    let pos = IMAGE_HEADER_BYTES;
    let crc = 0;
    let w = new ByteWriter(IMAGE_SLICE_BYTES + 64 * 1024);
    const flush = async (): Promise<void> => {
      const buf = w.view();
      crc = crc32(buf, crc);
      for (let off = 0; off < buf.length;) off += (await fh.write(buf, off, buf.length - off, pos + off)).bytesWritten;
      pos += buf.length;
      w = new ByteWriter(IMAGE_SLICE_BYTES + 64 * 1024);
      if (this.closing) throw new ImageAbandoned();
    };
    const maybeFlush = () => (w.length >= IMAGE_SLICE_BYTES ? flush() : undefined);
    try {
      writeHardState(w, c.hardState);
      writeSnapshot(w, c.snapRef === null ? c.snapshot : withoutData(c.snapshot));
      w.bool(c.snapRef !== null);
      if (c.snapRef !== null) writeRef(w, c.snapRef);
      w.uint(c.applied);
      w.uint(c.meta.length);
      for (const [k, v] of c.meta) w.str(k).str(v);
      w.uint(c.revision);
      w.uint(c.sessions.length);
      for (const [client, s] of c.sessions) {
        writeSession(w.str(client), s);
        await maybeFlush();
      }
      w.uint(c.entries.length);
      for (const e of c.entries) {
        writeEntry(w, e);
        await maybeFlush();
      }
      while (!c.records.done) {
        for (const [key, rec] of c.records.next(256)) writeKeyRecord(w.bool(true).str(key), rec);
        await maybeFlush();
      }
      w.bool(false);
      await flush();
      const header = Buffer.allocUnsafe(IMAGE_HEADER_BYTES);
      IMAGE_MAGIC.copy(header, 0);
      header.writeUInt32LE(crc, 8);
      await fh.write(header, 0, IMAGE_HEADER_BYTES, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    await fsyncDir(this.dir);
    return pos;
  }

  stats(): EngineStats {
    return this.saves.stats();
  }

  async close(): Promise<void> {
    await this.saves.idle();
    this.closing = true;
    await this.rewriting;
    await this.wal.close();
  }
}
