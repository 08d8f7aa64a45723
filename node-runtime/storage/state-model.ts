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

  get lastIndex(): number {
    return this.snapshot.meta.index + this.entries.length;
  }

  apply(b: SaveBatch): void {
    if (b.installSnapshot) {
      this.snapshot = b.installSnapshot.snapshot;
      this.entries = [];
      this.setKv(b.installSnapshot.kv);
      this.applied = b.installSnapshot.snapshot.meta.index;
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
      for (const [key, rec] of b.kv.upserts) this.records.set(key, rec);
      for (const key of b.kv.deletes) this.records.delete(key);
      for (const [client, s] of b.kv.sessionUpserts) this.sessions.set(client, s);
      for (const client of b.kv.sessionDeletes) this.sessions.delete(client);
    }
    if (b.applied !== undefined) this.applied = b.applied;
    if (b.meta) for (const [k, v] of Object.entries(b.meta)) this.meta.set(k, v);
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
