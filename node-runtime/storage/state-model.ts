// The whole persisted state of one peer as plain in-memory structures, with SaveBatch applied
// exactly as worker/peer/ports.ts specifies. The memory engine keeps one of these (its "map in
// memory") and rebuilds it from its image and log on start; tests use it as the reference the
// other engines must agree with.

import type { Entry, HardState, Snapshot } from '../../worker/raft/types.ts';
import type { KeyRecord, KvState, SessionRecord } from '../../worker/kv/types.ts';
import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';

export function emptySnapshot(): Snapshot {
  return { meta: { index: 0, term: 0, membership: { voters: [], learners: [], addresses: {} } }, data: new Uint8Array(0) };
}

export function emptyHardState(): HardState {
  return { term: 0, vote: '', commit: 0 };
}

/**
 * The KV records of a StateModel as of one moment, readable in slices while later batches keep
 * applying (copy-on-write per key: the model hands a key's previous record to every open capture
 * just before changing it). The memory engine writes its image from one of these a slice per
 * event-loop turn instead of encoding the whole state in one blocking call.
 *
 * It walks the live map with its own iterator rather than a copy of the keys (copying 200k keys
 * blocks the loop for 10-50 ms). A Map iterator survives changes: an updated key keeps its
 * place, a key added later is visited too (its saved record is null: skipped), a key deleted
 * before the walk reaches it is not, so once the walk ends every saved record is returned as well.
 * A key may thus come twice, always with its record at the capture's moment, so reading the
 * records into a map (as an image load does) gives exactly the captured state.
 */
export class RecordsCapture {
  /** The map captured; a model that replaces its map (a snapshot install) stops notifying. */
  readonly live: ReadonlyMap<string, KeyRecord>;
  private readonly walk: Iterator<[string, KeyRecord]>;
  /** Record of a key at the capture's moment, for keys changed since (null: it did not exist). */
  private readonly before = new Map<string, KeyRecord | null>();
  /** Set when the walk of the live map ends: the saved records are returned next. */
  private saved: Iterator<[string, KeyRecord | null]> | null = null;
  private finished = false;
  private readonly onClose: (c: RecordsCapture) => void;

  constructor(live: ReadonlyMap<string, KeyRecord>, onClose: (c: RecordsCapture) => void) {
    this.live = live;
    this.walk = live.entries();
    this.onClose = onClose;
  }

  beforeChange(key: string, previous: KeyRecord | undefined): void {
    // Once the walk has ended only saved records are read, and those never change.
    if (this.saved === null && !this.before.has(key)) this.before.set(key, previous ?? null);
  }

  get done(): boolean {
    return this.finished;
  }

  /** The next (at most `recordsMax`) records as they were at the capture's moment; [] once done. */
  next(recordsMax: number): Array<[string, KeyRecord]> {
    const out: Array<[string, KeyRecord]> = [];
    while (out.length < recordsMax && !this.finished) {
      if (this.saved === null) {
        const step = this.walk.next();
        if (step.done) {
          this.saved = this.before.entries();
          continue;
        }
        const [key, rec] = step.value;
        const then = this.before.get(key);
        const value = then === undefined ? rec : then;
        if (value !== null) out.push([key, value]);
      } else {
        const step = this.saved.next();
        if (step.done) this.finished = true;
        else if (step.value[1] !== null) out.push([step.value[0], step.value[1]]);
      }
    }
    return out;
  }

  close(): void {
    this.before.clear();
    this.onClose(this);
  }
}

export class StateModel {
  hardState: HardState = emptyHardState();
  snapshot: Snapshot = emptySnapshot();
  /** Entries after snapshot.meta.index: entries[k].index === snapshot.meta.index + 1 + k. */
  entries: Entry[] = [];
  applied = 0;
  revision = 0;
  records = new Map<string, KeyRecord>();
  sessions = new Map<string, SessionRecord>();
  meta = new Map<string, string>();
  /** The records of a snapshot arriving in chunks (SaveBatch.stage), not yet installed. They
   *  mean nothing after a restart: toLoaded() leaves them out, and a host that opens the
   *  state again empties them (dropStaged). */
  staged = new Map<string, KeyRecord>();
  private readonly captures = new Set<RecordsCapture>();

  get lastIndex(): number {
    return this.snapshot.meta.index + this.entries.length;
  }

  apply(b: SaveBatch): void {
    if (b.stage) {
      if (b.stage.reset) this.staged = new Map();
      for (const [key, rec] of b.stage.records) this.staged.set(key, rec);
    }
    if (b.installSnapshot) {
      const { snapshot, kv, staged } = b.installSnapshot;
      this.snapshot = snapshot;
      this.entries = [];
      if (staged !== undefined) {
        if (kv.records.length > 0) throw new Error(`a staged snapshot install carries ${kv.records.length} records in kv`);
        this.setKv({ ...kv, records: [] });
        this.records = this.staged;
        this.staged = new Map();
      } else this.setKv(kv);
      this.applied = snapshot.meta.index;
    }
    if (b.compact) {
      const drop = b.compact.meta.index - this.snapshot.meta.index;
      this.entries = drop >= this.entries.length ? [] : this.entries.slice(Math.max(0, drop));
      this.snapshot = b.compact;
    }
    if (b.entries && b.entries.length > 0) {
      const keep = b.entries[0]!.index - this.snapshot.meta.index - 1;
      this.entries.length = Math.max(0, Math.min(keep, this.entries.length));
      for (const e of b.entries) this.entries.push(e);
    }
    if (b.hardState) this.hardState = b.hardState;
    if (b.kv) {
      this.revision = b.kv.revision;
      if (this.captures.size > 0) {
        for (const [key] of b.kv.upserts) this.noteChange(key);
        for (const key of b.kv.deletes) this.noteChange(key);
      }
      for (const [key, rec] of b.kv.upserts) this.records.set(key, rec);
      for (const key of b.kv.deletes) this.records.delete(key);
      for (const [client, s] of b.kv.sessionUpserts) this.sessions.set(client, s);
      for (const client of b.kv.sessionDeletes) this.sessions.delete(client);
    }
    if (b.applied !== undefined) this.applied = b.applied;
    if (b.meta) for (const [k, v] of Object.entries(b.meta)) this.meta.set(k, v);
  }

  private noteChange(key: string): void {
    const prev = this.records.get(key);
    for (const c of this.captures) if (c.live === this.records) c.beforeChange(key, prev);
  }

  /** The records as of now, to read in slices while batches keep applying; close() it after. */
  captureRecords(): RecordsCapture {
    const c = new RecordsCapture(this.records, (done) => this.captures.delete(done));
    this.captures.add(c);
    return c;
  }

  /** A restart: what a transfer cut short had staged is gone. */
  dropStaged(): void {
    this.staged = new Map();
  }

  setKv(kv: KvState): void {
    this.revision = kv.revision;
    this.records = new Map(kv.records);
    this.sessions = new Map(kv.sessions);
  }

  kvState(): KvState {
    return { revision: this.revision, records: [...this.records], sessions: [...this.sessions] };
  }

  toLoaded(): LoadedState {
    return {
      hardState: { ...this.hardState },
      snapshot: this.snapshot,
      entries: this.entries.slice(),
      applied: this.applied,
      kv: this.kvState(),
      meta: Object.fromEntries(this.meta),
    };
  }
}
