// A PeerStorage in memory for the peer and API tests, built on the reference StateModel (the
// one model of SaveBatch every storage is checked against: test/support/storage-contract.ts).
// What survives a crash is the `MemoryDisk`; a crashed storage never completes the saves it had
// in flight (they were not durable), like a process killed mid-write.

import type { LoadedState, PeerStorage, SaveBatch } from '../../worker/peer/ports.ts';
import { StateModel } from '../../node-runtime/storage/state-model.ts';
import { LogBounds } from '../../node-runtime/storage/log-bounds.ts';

/** The durable part: only what completed saves wrote. */
export class MemoryDisk extends StateModel {
  /** Completed saves, and the batches they carried (for assertions on order and grouping). */
  saves: SaveBatch[] = [];

  /** Apply one batch in the contract's order. Throws, writing nothing, on a batch the Node
   *  engines would refuse (a gap, a rewrite of applied or compacted entries: LogBounds). */
  override apply(batch: SaveBatch): void {
    new LogBounds(this.snapshot.meta.index, this.lastIndex, this.applied).admit(batch);
    super.apply(batch);
    this.saves.push(batch);
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
    return structuredClone(this.disk.toLoaded());
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
