// The leveldb engine's records as DiskRecords (worker/kv/record-store.ts): what a tiered store
// reads on a cache miss, synchronously, on the event loop. A point read is db.getSync (a
// memtable and table lookup in this thread, microseconds when the blocks are cached), or
// db.get off the loop for a client's read (getAsync, a tiered store's prefetch), unless the key
// filter (leveldb-key-filter.ts) knows the key is not stored; a walk
// and changedSince go to the reader thread a page at a time (leveldb-reader.ts), over the
// records of the live generation (leveldb-layout.ts) and their modRevision index. Every
// record's seal is checked as it is read: a bad one is StorageCorruptError naming the key.
//
// Visibility: LevelDB applies a write batch atomically, and the engine resolves a group's saves
// once its batch is written, so a resolved save is visible here; a batch still in flight may
// be already, whole, as DiskRecords allows. A walk reads one implicit snapshot from its first
// page to its last. A view is an explicit snapshot held by the reader thread, of the
// generation live when it opened (an install flips the generation; the old one is cleared only
// in the database, not in the snapshot).

import type { ClassicLevel } from 'classic-level';
import type { KeyRecord } from '../../worker/kv/types.ts';
import type { DiskRecords, DiskView } from '../../worker/kv/record-store.ts';
import { FormatError } from './bytes.ts';
import { StorageCorruptError } from './errors.ts';
import { readKeyRecord, unseal } from './records.ts';
import { decodeKey } from './sqlite-key.ts';
import type { LevelReader } from './leveldb-reader.ts';
import { LoopReadCost, type OffLoopReads } from './loop-read-cost.ts';
import { LevelKeyFilter, type KeyFilterEvents } from './leveldb-key-filter.ts';
import {
  MOD_KEY_BYTES_AT,
  P_MOD,
  P_RECORD,
  RECORD_KEY_BYTES_AT,
  genRange,
  modFrom,
  modOf,
  recordKey,
  type Generation,
} from './leveldb-layout.ts';

type Db = ClassicLevel<Buffer, Buffer>;

/** The record stored as `value` under `key`, its seal checked. */
export function unsealRecord(dir: string, key: string, value: Uint8Array): KeyRecord {
  try {
    return unseal(Buffer.from(value.buffer, value.byteOffset, value.byteLength), readKeyRecord);
  } catch (err) {
    if (err instanceof FormatError) throw new StorageCorruptError(dir, -1, `leveldb record ${JSON.stringify(key)}: ${err.message}`);
    throw err;
  }
}

/** Reads of one generation, live (view 0) or as of a view's snapshot. */
class GenerationReader {
  private readonly reader: LevelReader;
  private readonly dir: string;

  constructor(reader: LevelReader, dir: string) {
    this.reader = reader;
    this.dir = dir;
  }

  walkFrom(gen: Generation, view: number, from: string, visit: (key: string, record: KeyRecord) => boolean): void {
    const range = { gte: recordKey(gen, from), lt: genRange(P_RECORD, gen).lt, keysOnly: false, view };
    this.reader.walk(range, (k, v) => {
      const key = decodeKey(k.subarray(RECORD_KEY_BYTES_AT));
      return visit(key, unsealRecord(this.dir, key, v));
    });
  }

  changedSince(gen: Generation, view: number, revision: number, visit: (key: string, modRevision: number) => boolean): void {
    const range = { gte: modFrom(gen, revision), lt: genRange(P_MOD, gen).lt, keysOnly: true, view };
    this.reader.walk(range, (k) => visit(decodeKey(k.subarray(MOD_KEY_BYTES_AT)), modOf(k)));
  }
}

/** What a view reads: the reader thread's snapshot `id`, of generation `gen`. */
interface ViewOf {
  reader: LevelReader;
  reads: GenerationReader;
  dir: string;
  gen: Generation;
  id: number;
  closed: (v: LevelDbView) => void;
}

class LevelDbView implements DiskView {
  private readonly reader: LevelReader;
  private readonly reads: GenerationReader;
  private readonly dir: string;
  private readonly gen: Generation;
  private readonly id: number;
  private readonly closed: (v: LevelDbView) => void;
  private open = true;

  constructor(of: ViewOf) {
    ({ reader: this.reader, reads: this.reads, dir: this.dir, gen: this.gen, id: this.id, closed: this.closed } = of);
  }

  get(key: string): KeyRecord | undefined {
    const answer = this.reader.request({ kind: 'get', view: this.id, key: recordKey(this.gen, key) });
    if (answer.kind !== 'value') throw new Error(`leveldb reader answered a get with ${answer.kind}`);
    return answer.value === null ? undefined : unsealRecord(this.dir, key, answer.value);
  }

  walkFrom(from: string, visit: (key: string, record: KeyRecord) => boolean): void {
    this.reads.walkFrom(this.gen, this.id, from, visit);
  }

  changedSince(revision: number, visit: (key: string, modRevision: number) => boolean): void {
    this.reads.changedSince(this.gen, this.id, revision, visit);
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.reader.post({ kind: 'close-view', id: this.id });
    this.closed(this);
  }
}

/** The engine's records for its whole life (load() hands the same object out every time). */
export class LevelDbRecords implements DiskRecords {
  private readonly views = new Set<LevelDbView>();
  private readonly reads: GenerationReader;
  /** How long a read on the loop takes lately (offLoopReads). */
  readonly loopReads: LoopReadCost;
  /** The keys the live generation may hold: a read of any other is answered without LevelDB. */
  readonly keyFilter: LevelKeyFilter;

  /** The live generation: the engine flips it once an install's batch is written. */
  gen: Generation;

  private readonly db: Db;
  private readonly reader: LevelReader;
  private readonly dir: string;

  constructor(
    db: Db,
    reader: LevelReader,
    dir: string,
    gen: Generation,
    filterEvents: KeyFilterEvents,
    offLoopReads: OffLoopReads = 'auto',
  ) {
    this.loopReads = new LoopReadCost(offLoopReads);
    this.db = db;
    this.reader = reader;
    this.dir = dir;
    this.gen = gen;
    this.reads = new GenerationReader(reader, dir);
    this.keyFilter = new LevelKeyFilter(reader, filterEvents);
  }

  get(key: string): KeyRecord | undefined {
    if (this.keyFilter.excludes(this.gen, key)) return undefined;
    const value = this.loopReads.time(() => this.db.getSync(recordKey(this.gen, key)));
    return value === undefined ? undefined : unsealRecord(this.dir, key, value);
  }

  offLoopReads(): boolean {
    return this.loopReads.offLoop();
  }

  /** get on libuv's thread pool (LevelDB's read runs there; its snapshot is taken then). */
  async getAsync(key: string): Promise<KeyRecord | undefined> {
    if (this.keyFilter.excludes(this.gen, key)) return undefined;
    const value = await this.db.get(recordKey(this.gen, key));
    return value === undefined ? undefined : unsealRecord(this.dir, key, value);
  }

  walkFrom(from: string, visit: (key: string, record: KeyRecord) => boolean): void {
    this.reads.walkFrom(this.gen, 0, from, visit);
  }

  changedSince(revision: number, visit: (key: string, modRevision: number) => boolean): void {
    this.reads.changedSince(this.gen, 0, revision, visit);
  }

  openView(): DiskView {
    const answer = this.reader.request({ kind: 'view' });
    if (answer.kind !== 'view') throw new Error(`leveldb reader answered a view with ${answer.kind}`);
    const view = new LevelDbView({
      reader: this.reader,
      reads: this.reads,
      dir: this.dir,
      gen: this.gen,
      id: answer.id,
      closed: (v) => this.views.delete(v),
    });
    this.views.add(view);
    return view;
  }

  /** Closes every view still open, then the reader thread. */
  async close(): Promise<void> {
    for (const v of [...this.views]) v.close();
    await this.reader.close();
  }
}
