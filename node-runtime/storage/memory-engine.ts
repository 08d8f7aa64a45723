// The `memory` engine: the whole state lives in a StateModel in memory; durability comes from
// an append-only log of checksummed records (record-file.ts), fsynced before save() resolves.
// This answers the raftexample question "how does a memory map lose nothing?": every change is
// in the log before it is acknowledged, and the map is rebuilt from the log on start.
//
// The log is bounded by periodic rewrites: when it outgrows twice the last image (and a floor),
// the current state is written as a new image, and a fresh log starts after it:
//
//   image-<gen>.bin   magic | crc32(body) | body        (the state after generation gen-1)
//   wal-<gen>.log     records, each one commit group     (batches applied on top of the image)
//
// A new generation becomes current only once its image is fsynced and renamed into place, so a
// crash at any point leaves either the old generation (image + log) or the new image intact.

import { readdir, readFile } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import type { Entry } from '../../worker/raft/types.ts';
import { ByteReader, ByteWriter, FormatError } from './bytes.ts';
import { type EngineOptions, type EngineStats, type StorageEngine } from './engine.ts';
import { StorageCorruptError } from './errors.ts';
import { fsyncDir, unlinkIfExists, writeFileDurable } from './durable-fs.ts';
import { SaveQueue } from './save-queue.ts';
import { RecordAppender, scanRecords } from './record-file.ts';
import {
  readEntry, readHardState, readKvState, readSaveBatch, readSnapshot,
  writeEntry, writeHardState, writeKvState, writeSaveBatch, writeSnapshot,
} from './records.ts';
import { StateModel } from './state-model.ts';

const IMAGE_MAGIC = Buffer.from('MTCDIMG1', 'latin1');

export interface MemoryEngineOptions extends EngineOptions {
  /** The log is rewritten once it exceeds max(this, 2 × last image bytes). */
  rewriteMinBytes?: number;
  /** Largest record (one commit group) accepted in the log. */
  recordBytesMax?: number;
}

const DEFAULT_REWRITE_MIN_BYTES = 64 * 1024 * 1024;
const DEFAULT_RECORD_BYTES_MAX = 1024 * 1024 * 1024;

const imageName = (gen: number) => `image-${String(gen).padStart(12, '0')}.bin`;
const walName = (gen: number) => `wal-${String(gen).padStart(12, '0')}.log`;

function encodeImage(m: StateModel): Buffer {
  const w = new ByteWriter(1 << 20);
  w.u32(0).u32(0).u32(0); // magic (8) + crc, patched below
  writeHardState(w, m.hardState);
  writeSnapshot(w, m.snapshot);
  w.uint(m.entries.length);
  for (const e of m.entries) writeEntry(w, e);
  w.uint(m.applied);
  writeKvState(w, m.kvState());
  w.uint(m.meta.size);
  for (const [k, v] of m.meta) w.str(k).str(v);
  const out = w.view();
  IMAGE_MAGIC.copy(out, 0);
  out.writeUInt32LE(crc32(out.subarray(12)), 8);
  return out;
}

function decodeImage(file: string, buf: Buffer): StateModel {
  if (buf.length < 12 || !buf.subarray(0, 8).equals(IMAGE_MAGIC)) {
    throw new StorageCorruptError(file, 0, 'not a metcd image (bad magic)');
  }
  if (buf.readUInt32LE(8) !== crc32(buf.subarray(12))) {
    throw new StorageCorruptError(file, 12, 'image body fails its checksum');
  }
  const r = new ByteReader(buf, 12);
  try {
    const m = new StateModel();
    m.hardState = readHardState(r);
    m.snapshot = readSnapshot(r);
    const entries: Entry[] = [];
    for (let n = r.uint(); n > 0; n--) entries.push(readEntry(r));
    m.entries = entries;
    m.applied = r.uint();
    m.setKv(readKvState(r));
    for (let n = r.uint(); n > 0; n--) m.meta.set(r.str(), r.str());
    r.done();
    return m;
  } catch (err) {
    if (err instanceof FormatError) throw new StorageCorruptError(file, r.offset, `image malformed: ${err.message}`);
    throw err;
  }
}

function encodeGroup(batches: SaveBatch[]): Buffer {
  const w = new ByteWriter(4096);
  w.uint(batches.length);
  for (const b of batches) writeSaveBatch(w, b);
  return w.view();
}

function decodeGroup(file: string, offset: number, payload: Buffer): SaveBatch[] {
  const r = new ByteReader(payload);
  try {
    const out: SaveBatch[] = [];
    for (let n = r.uint(); n > 0; n--) out.push(readSaveBatch(r));
    r.done();
    return out;
  } catch (err) {
    // The checksum matched, so this is a format bug or a foreign file, not a torn write.
    if (err instanceof FormatError) throw new StorageCorruptError(file, offset, `record malformed: ${err.message}`);
    throw err;
  }
}

export class MemoryEngine implements StorageEngine {
  readonly engine = 'memory' as const;
  private readonly dir: string;
  private readonly opts: MemoryEngineOptions;
  private model: StateModel;
  private gen: number;
  private wal: RecordAppender;
  private imageBytes: number;
  private readonly saves: SaveQueue;

  private constructor(opts: MemoryEngineOptions, model: StateModel, gen: number, wal: RecordAppender, imageBytes: number) {
    this.dir = opts.dir;
    this.opts = opts;
    this.model = model;
    this.gen = gen;
    this.wal = wal;
    this.imageBytes = imageBytes;
    this.saves = new SaveQueue(model.toLoaded(), (batches) => this.writeGroup(batches), opts.groupCommit);
  }

  static async open(opts: MemoryEngineOptions): Promise<MemoryEngine> {
    mkdirSync(opts.dir, { recursive: true });
    const names = await readdir(opts.dir);
    for (const n of names) if (n.endsWith('.tmp')) await unlinkIfExists(path.join(opts.dir, n));
    const gens = names.map((n) => /^image-(\d+)\.bin$/.exec(n)).filter((m) => m !== null).map((m) => Number(m[1]));
    const gen = gens.length > 0 ? Math.max(...gens) : 0;

    let model = new StateModel();
    let imageBytes = 0;
    if (gens.length > 0) {
      const file = path.join(opts.dir, imageName(gen));
      const buf = await readFile(file);
      model = decodeImage(file, buf);
      imageBytes = buf.length;
    }

    const walFile = path.join(opts.dir, walName(gen));
    let validBytes = 0;
    const walExists = names.includes(walName(gen));
    if (walExists) {
      const buf = await readFile(walFile);
      const scan = scanRecords(walFile, buf, opts.recordBytesMax ?? DEFAULT_RECORD_BYTES_MAX);
      for (const payload of scan.payloads) {
        const offset = payload.byteOffset - buf.byteOffset - 8;
        for (const b of decodeGroup(walFile, offset, payload)) model.apply(b);
      }
      if (scan.tornBytes > 0) {
        opts.log.warn('torn tail truncated', { file: walFile, offset: scan.validBytes, bytes: scan.tornBytes });
      }
      validBytes = scan.validBytes;
    }
    const wal = await RecordAppender.open(walFile, validBytes);
    if (!walExists) await fsyncDir(opts.dir);

    // Generations older than the current image are fully contained in it.
    for (const n of names) {
      const m = /^(image|wal)-(\d+)\.(bin|log)$/.exec(n);
      if (m && Number(m[2]) < gen) await unlinkIfExists(path.join(opts.dir, n));
    }
    return new MemoryEngine(opts, model, gen, wal, imageBytes);
  }

  async load(): Promise<LoadedState> {
    return this.saves.takeLoaded() ?? this.model.toLoaded();
  }

  save(batch: SaveBatch): Promise<void> {
    return this.saves.save(batch);
  }

  private async writeGroup(batches: SaveBatch[]): Promise<void> {
    await this.wal.append(encodeGroup(batches));
    for (const b of batches) this.model.apply(b);
    const threshold = Math.max(this.opts.rewriteMinBytes ?? DEFAULT_REWRITE_MIN_BYTES, 2 * this.imageBytes);
    if (this.wal.size > threshold) await this.rewrite();
  }

  /** Starts generation gen+1: image of the current state, then an empty log. */
  private async rewrite(): Promise<void> {
    const next = this.gen + 1;
    const image = encodeImage(this.model);
    await writeFileDurable(path.join(this.dir, imageName(next)), image);
    const wal = await RecordAppender.open(path.join(this.dir, walName(next)), 0);
    await fsyncDir(this.dir);
    const old = this.gen;
    await this.wal.close();
    this.wal = wal;
    this.gen = next;
    this.imageBytes = image.length;
    await unlinkIfExists(path.join(this.dir, walName(old)));
    await unlinkIfExists(path.join(this.dir, imageName(old)));
    this.opts.log.debug('memory engine log rewritten', { gen: next, imageBytes: image.length });
  }

  stats(): EngineStats {
    return this.saves.stats();
  }

  async close(): Promise<void> {
    await this.saves.idle();
    await this.wal.close();
  }
}
