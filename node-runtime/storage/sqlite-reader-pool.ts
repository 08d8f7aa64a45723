// The sqlite engine's reads off the event loop, spread over reader threads
// (sqlite-async-reader.ts): a read goes to the thread with the fewest reads waiting. A thread
// answers one read at a time, so with one thread a read that waits on the disk holds every read
// behind it; several keep several reads at the disk at once, as libuv's pool of four does for
// leveldb's reads. The pool starts with one thread and adds one (up to its size) each time a
// read finds every thread busy: a node whose reads stay on the loop, or come one at a time,
// pays for one thread (each is a V8 isolate and a connection, some 15 MB). A thread that dies
// leaves the others serving; with none left, reads are answered undefined (read synchronously
// by the caller).

import type { Logger } from '../log.ts';
import { SqliteAsyncReader } from './sqlite-async-reader.ts';

/** Reader threads per engine at most: libuv's default pool size, the number leveldb's reads share. */
export const SQLITE_READER_THREADS = 4;

export class SqliteReaderPool {
  private readonly readers: SqliteAsyncReader[];
  private readonly file: string;
  private readonly maxThreads: number;
  private readonly log: Logger;
  /** A thread starting (one at a time). */
  private starting: Promise<void> | null = null;
  /** A thread failed to start: the pool stays the size it is. */
  private full = false;
  private closed = false;

  private constructor(file: string, first: SqliteAsyncReader, maxThreads: number, log: Logger) {
    this.file = file;
    this.readers = [first];
    this.maxThreads = maxThreads;
    this.log = log;
  }

  /** Starts the first thread; resolves once it has opened `file`. */
  static async start(file: string, log: Logger, maxThreads: number = SQLITE_READER_THREADS): Promise<SqliteReaderPool> {
    if (maxThreads < 1) throw new Error(`a reader pool needs at least one thread, got ${maxThreads}`);
    return new SqliteReaderPool(file, await SqliteAsyncReader.start(file), maxThreads, log);
  }

  /** The stored bytes of the record under `key` (encodeKey), null when there is none, or
   *  undefined when no thread could answer (read it synchronously instead). */
  async get(key: Uint8Array): Promise<Uint8Array | null | undefined> {
    for (;;) {
      const reader = this.leastBusy();
      if (reader === undefined) return undefined;
      if (reader.waitingReads > 0) this.grow();
      const rec = await reader.get(key);
      // undefined from a thread that went down while the read waited: another may answer it.
      if (rec !== undefined || !reader.isDown) return rec;
    }
  }

  private leastBusy(): SqliteAsyncReader | undefined {
    let best: SqliteAsyncReader | undefined;
    for (const r of this.readers) if (!r.isDown && (best === undefined || r.waitingReads < best.waitingReads)) best = r;
    return best;
  }

  private grow(): void {
    if (this.starting !== null || this.full || this.closed || this.readers.length >= this.maxThreads) return;
    this.starting = SqliteAsyncReader.start(this.file)
      .then(
        // A pool closed while the thread started: the thread is closed too (it holds a connection).
        (reader) => (this.closed ? reader.close() : void this.readers.push(reader)),
        (err: unknown) => {
          this.full = true;
          this.log.warn('sqlite reader thread did not start: the pool stays at its size', {
            file: this.file,
            threads: this.readers.length,
            error: err instanceof Error ? err.message : String(err),
          });
        },
      )
      .finally(() => {
        this.starting = null;
      });
  }

  /** Threads started and still serving. */
  get threadsUp(): number {
    return this.readers.filter((r) => !r.isDown).length;
  }

  /** Reads each thread answered (for tests). */
  get answeredPerThread(): number[] {
    return this.readers.map((r) => r.answered);
  }

  /** Resolves once no thread is starting (for tests). */
  async settled(): Promise<void> {
    while (this.starting !== null) await this.starting;
  }

  /** Closes every thread (one still starting too); reads still waiting are answered undefined. */
  async close(): Promise<void> {
    this.closed = true;
    await this.settled();
    await Promise.all(this.readers.map((r) => r.close()));
  }

  /** Test hook: ends one thread (or, with no index, every thread) abruptly, as a crash would. */
  async terminateForTest(index?: number): Promise<void> {
    const ending = index === undefined ? this.readers : [this.readers[index]!];
    await Promise.all(ending.map((r) => r.terminateForTest()));
  }
}
