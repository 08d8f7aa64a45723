// The event loop's side of the sqlite writer thread: posts encoded groups (transferring their
// buffers) and resolves each when the thread reports it committed and synced. If the thread
// dies (an uncaught error, an exit, a failed group), every outstanding and later write is
// rejected: nothing is acknowledged that the thread did not confirm, and the engine's
// GroupCommit then fails the node's storage, which stops the node.

import { Worker } from 'node:worker_threads';
import { StorageFailedError } from './errors.ts';
import { startThread } from './thread-start.ts';
import type { FromWriter, ToWriter, WriterData } from './sqlite-writer-protocol.ts';

const THREAD_FILE = new URL('./sqlite-writer-thread.ts', import.meta.url);

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class WriterThread {
  private readonly worker: Worker;
  private readonly file: string;
  private readonly pending = new Map<number, Pending>();
  private readonly exited: Promise<void>;
  private nextId = 1;
  private failure: Error | null = null;
  private closing = false;

  private constructor(worker: Worker, file: string) {
    this.worker = worker;
    this.file = file;
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: FromWriter) => this.onMessage(m));
    worker.on('error', (err) => this.fail(new StorageFailedError(`sqlite writer thread for ${file} crashed: ${err.message}`)));
    worker.on('exit', (code) => {
      if (!this.closing) this.fail(new StorageFailedError(`sqlite writer thread for ${file} exited (code ${code})`));
    });
    // Idle, the thread does not keep the process alive; a write in flight does (see write()).
    worker.unref();
  }

  /** Starts the thread; resolves once it has opened `file` (errors name what failed). */
  static async start(file: string): Promise<WriterThread> {
    const worker = await startThread(THREAD_FILE, { workerData: { file } satisfies WriterData }, `sqlite writer thread for ${file}`);
    return new WriterThread(worker, file);
  }

  /** Writes one encodeGroup() buffer (its ArrayBuffer is transferred: do not use it after). */
  write(group: Uint8Array<ArrayBuffer>): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (group.byteOffset !== 0) throw new RangeError('a group must own its ArrayBuffer from offset 0');
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref();
      const msg: ToWriter = { kind: 'group', id, buf: group.buffer, bytes: group.byteLength };
      this.worker.postMessage(msg, [group.buffer]);
    });
  }

  private onMessage(m: FromWriter): void {
    if (m.kind !== 'done' && m.kind !== 'failed') return;
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.worker.unref();
    if (m.kind === 'done') {
      p.resolve();
    } else {
      const err = new StorageFailedError(`sqlite write to ${this.file} failed: ${m.message}`);
      p.reject(err);
      this.fail(err); // its transaction rolled back, but a storage error stops the node
    }
  }

  private fail(err: Error): void {
    if (this.failure === null) this.failure = err;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(this.failure);
  }

  /** Closes the database in the thread and ends it (after every write has been answered). */
  async close(): Promise<void> {
    if (this.closing) return this.exited;
    this.closing = true;
    this.worker.ref();
    if (this.failure !== null) {
      await this.worker.terminate();
      return;
    }
    const closed = new Promise<void>((resolve) => {
      this.worker.on('message', (m: FromWriter) => {
        if (m.kind === 'closed') resolve();
      });
    });
    this.worker.postMessage({ kind: 'close' } satisfies ToWriter);
    await Promise.race([closed, this.exited]);
    await this.exited;
  }

  /** Test hook: ends the thread abruptly, as a crash would. */
  terminateForTest(): Promise<number> {
    return this.worker.terminate();
  }
}
