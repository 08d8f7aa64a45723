// A PeerStorage in memory that honours the SaveBatch contract (worker/peer/ports.ts), for the
// peer and API tests. What survives a crash is the `MemoryDisk`; a crashed storage never
// completes the saves it had in flight (they were not durable), like a process killed mid-write.

import type { Entry, HardState, Snapshot } from '../../worker/raft/types.ts';
import type { KeyRecord, KvState, SessionRecord } from '../../worker/kv/types.ts';
import type { LoadedState, PeerStorage, SaveBatch } from '../../worker/peer/ports.ts';

/** The durable part: only what completed saves wrote. */
export class MemoryDisk {
  hardState: HardState = { term: 0, vote: '', commit: 0 };
  snapshot: Snapshot = {
    meta: { index: 0, term: 0, membership: { voters: [], learners: [], addresses: {} } },
    data: new Uint8Array(0),
  };
  entries: Entry[] = [];
  applied = 0;
  revision = 0;
  records = new Map<string, KeyRecord>();
  sessions = new Map<string, SessionRecord>();
  meta: Record<string, string> = {};
  /** Completed saves, and the batches they carried (for assertions on order and grouping). */
  saves: SaveBatch[] = [];

  lastIndex(): number {
    return this.snapshot.meta.index + this.entries.length;
  }

  /** Apply one batch in the contract's order. Throws on a batch that breaks the log's shape. */
  apply(batch: SaveBatch): void {
    if (batch.installSnapshot !== undefined) {
      const { snapshot, kv } = batch.installSnapshot;
      this.snapshot = snapshot;
      this.entries = [];
      this.records = new Map(kv.records);
      this.sessions = new Map(kv.sessions);
      this.revision = kv.revision;
      this.applied = snapshot.meta.index;
    }
    if (batch.compact !== undefined) {
      const drop = batch.compact.meta.index - this.snapshot.meta.index;
      if (drop < 0) throw new Error(`compact at ${batch.compact.meta.index} below the snapshot ${this.snapshot.meta.index}`);
      this.entries = this.entries.slice(drop);
      this.snapshot = batch.compact;
    }
    if (batch.entries !== undefined && batch.entries.length > 0) {
      const first = batch.entries[0]!.index;
      const base = this.snapshot.meta.index;
      if (first <= base || first > this.lastIndex() + 1) {
        throw new Error(`entries from ${first} do not continue the log (snapshot ${base}, last ${this.lastIndex()})`);
      }
      this.entries = this.entries.slice(0, first - base - 1).concat(batch.entries);
    }
    if (batch.hardState !== undefined) this.hardState = batch.hardState;
    if (batch.kv !== undefined) {
      for (const [key, record] of batch.kv.upserts) this.records.set(key, record);
      for (const key of batch.kv.deletes) this.records.delete(key);
      for (const [client, session] of batch.kv.sessionUpserts) this.sessions.set(client, session);
      for (const client of batch.kv.sessionDeletes) this.sessions.delete(client);
      this.revision = batch.kv.revision;
    }
    if (batch.applied !== undefined) this.applied = batch.applied;
    if (batch.meta !== undefined) Object.assign(this.meta, batch.meta);
    this.saves.push(batch);
  }

  kvState(): KvState {
    const records = [...this.records].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const sessions = [...this.sessions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return { revision: this.revision, records, sessions };
  }
}

export class MemoryStorage implements PeerStorage {
  readonly disk: MemoryDisk;
  private crashed = false;
  private closed = false;
  /** When set, save() throws this (a failing disk). */
  failWith: Error | null = null;
  /** While set, saves wait for it (tests hold a save in flight to observe grouping). */
  gate: Promise<void> | null = null;

  constructor(disk: MemoryDisk = new MemoryDisk()) {
    this.disk = disk;
  }

  async load(): Promise<LoadedState> {
    const d = this.disk;
    return structuredClone({
      hardState: d.hardState,
      snapshot: d.snapshot,
      entries: d.entries,
      applied: d.applied,
      kv: d.kvState(),
      meta: d.meta,
    });
  }

  async save(batch: SaveBatch): Promise<void> {
    if (this.closed) throw new Error('save after close');
    // Copy now: the caller may reuse its objects, and the disk must hold what was asked.
    const copy = structuredClone(batch);
    await Promise.resolve();
    while (this.gate !== null) await this.gate;
    if (this.crashed) return new Promise(() => {}); // never durable, never acknowledged
    if (this.failWith !== null) throw this.failWith;
    this.disk.apply(copy);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** The process died: nothing in flight completes; the disk keeps what completed. */
  crash(): void {
    this.crashed = true;
  }
}
