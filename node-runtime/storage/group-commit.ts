// Group commit: save() calls that arrive while a write is in flight (or in the same turn of the
// event loop) wait together and are written by ONE durable write, in submission order, then
// all resolve. This is how concurrent client requests share one fsync.
//
// A failed write fails its whole group and every later submission: after an I/O error the
// engine cannot know what reached the disk, so the node must stop and restart from disk.

import { StorageFailedError } from './errors.ts';

export interface GroupCommitLimits {
  /** Most batches written by one group write (bounds one write's size and latency). */
  groupItemsMax: number;
  /** Most batches waiting; more are refused (the caller is outrunning the disk). */
  queuedItemsMax: number;
}

interface Waiter<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<T> {
  private readonly write: (items: T[]) => Promise<void> | void;
  private readonly limits: GroupCommitLimits;
  private queue: Waiter<T>[] = [];
  private running = false;
  private failure: unknown = undefined;
  private idleWaiters: Array<() => void> = [];
  /** Durable writes performed (one per group): lets tests and metrics see the grouping. */
  writes = 0;
  itemsWritten = 0;

  constructor(write: (items: T[]) => Promise<void> | void, limits: GroupCommitLimits) {
    this.write = write;
    this.limits = limits;
  }

  submit(item: T): Promise<void> {
    if (this.failure !== undefined) {
      return Promise.reject(new StorageFailedError(`storage failed earlier: ${String(this.failure)}`));
    }
    if (this.queue.length >= this.limits.queuedItemsMax) {
      return Promise.reject(new StorageFailedError(`storage queue full (${this.limits.queuedItemsMax} batches waiting)`));
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) {
        this.running = true;
        // Defer the first write to the end of this event-loop turn so that submissions made
        // in the same turn (and a synchronous engine's whole backlog) share it.
        setImmediate(() => void this.drain());
      }
    });
  }

  /** Resolves once nothing is queued or being written. */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue.splice(0, this.limits.groupItemsMax);
      try {
        await this.write(group.map((w) => w.item));
        this.writes++;
        this.itemsWritten += group.length;
        for (const w of group) w.resolve();
      } catch (err) {
        this.failure = err;
        const failed = new StorageFailedError(`storage write failed: ${err instanceof Error ? err.message : String(err)}`);
        for (const w of group) w.reject(err);
        for (const w of this.queue.splice(0)) w.reject(failed);
      }
    }
    this.running = false;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
