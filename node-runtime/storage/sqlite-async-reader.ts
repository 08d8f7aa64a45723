// The event loop's side of the sqlite engine's reader thread (sqlite-reader-thread.ts): a
// record's stored bytes read off the event loop, answered when the thread has them (a client's
// read that misses the cache: DiskRecords.getAsync). node:sqlite reads only synchronously, so
// the read runs on a connection in a thread of its own. A thread that fails or dies is not the
// end of the node: its reads, and every later one, are answered by the caller's own
// synchronous read instead (undefined here). Several of these make a pool (sqlite-reader-pool.ts).

import type { Worker } from 'node:worker_threads';
import { startThread } from './thread-start.ts';
import type { FromSqliteReader, SqliteReaderData, ToSqliteReader } from './sqlite-reader-protocol.ts';

const THREAD_FILE = new URL('./sqlite-reader-thread.ts', import.meta.url);

interface Waiting {
  resolve: (rec: Uint8Array | null | undefined) => void;
}

export class SqliteAsyncReader {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Waiting>();
  private readonly exited: Promise<void>;
  private nextId = 1;
  /** The thread failed or is closing: reads are answered undefined (read synchronously). */
  private down = false;

  private constructor(worker: Worker) {
    this.worker = worker;
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: FromSqliteReader) => this.onMessage(m));
    worker.on('error', () => this.goDown());
    worker.on('exit', () => this.goDown());
    worker.unref();
  }

  /** Starts the thread; resolves once it has opened `file`. */
  static async start(file: string): Promise<SqliteAsyncReader> {
    const data: SqliteReaderData = { file };
    return new SqliteAsyncReader(await startThread(THREAD_FILE, { workerData: data }, `sqlite reader thread for ${file}`));
  }

  /** Reads the thread answered (for tests). */
  answered = 0;

  /** Reads sent and not yet answered (the pool sends a read to the least busy thread). */
  get waitingReads(): number {
    return this.waiting.size;
  }

  /** Whether the thread failed, died or was closed: it answers nothing more. */
  get isDown(): boolean {
    return this.down;
  }

  /** The stored bytes of the record under `key` (encodeKey), null when there is none, or
   *  undefined when the thread could not answer (read it synchronously instead). */
  get(key: Uint8Array): Promise<Uint8Array | null | undefined> {
    if (this.down) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, { resolve });
      if (this.waiting.size === 1) this.worker.ref();
      this.worker.postMessage({ kind: 'get', id, key } satisfies ToSqliteReader);
    });
  }

  private onMessage(m: FromSqliteReader): void {
    if (m.kind !== 'record' && m.kind !== 'failed') return;
    const w = this.waiting.get(m.id);
    if (w === undefined) return;
    this.waiting.delete(m.id);
    if (this.waiting.size === 0) this.worker.unref();
    if (m.kind === 'record') this.answered++;
    w.resolve(m.kind === 'record' ? m.rec : undefined);
  }

  private goDown(): void {
    this.down = true;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) w.resolve(undefined);
  }

  /** Closes the thread's connection and ends it; reads still waiting are answered undefined. */
  async close(): Promise<void> {
    if (this.down)
      return this.exited.then(
        () => undefined,
        () => undefined,
      );
    this.goDown();
    this.worker.ref();
    this.worker.postMessage({ kind: 'close' } satisfies ToSqliteReader);
    await Promise.race([
      this.exited,
      new Promise<void>((resolve) => this.worker.once('message', (m: FromSqliteReader) => m.kind === 'closed' && resolve())),
    ]);
    await this.worker.terminate();
  }

  /** Test hook: ends the thread abruptly, as a crash would. */
  terminateForTest(): Promise<number> {
    return this.worker.terminate();
  }
}
