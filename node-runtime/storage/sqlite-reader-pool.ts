// The sqlite engine's reads off the event loop, spread over several reader threads
// (sqlite-async-reader.ts): a read goes to the thread with the fewest reads waiting. A thread
// answers one read at a time, so with one thread a read that waits on the disk holds every read
// behind it: at 10,000,000 keys, Zipfian reads ran at 0.37 of the all-hot rate through one
// thread, against 0.55 with every read on the loop. Several keep several reads at the disk at
// once, as libuv's pool of four does for leveldb's reads. A thread that dies leaves the others
// serving; with none left, reads are answered undefined (read synchronously by the caller).

import { SqliteAsyncReader } from './sqlite-async-reader.ts';

/** Reader threads per engine: libuv's default pool size, the number leveldb's reads share. */
export const SQLITE_READER_THREADS = 4;

export class SqliteReaderPool {
  private readonly readers: readonly SqliteAsyncReader[];

  private constructor(readers: SqliteAsyncReader[]) {
    if (readers.length === 0) throw new Error('a reader pool needs at least one thread');
    this.readers = readers;
  }

  /** Starts `threads` readers of `file`; resolves once they have opened it. Threads that fail
   *  to start are left out; rejects only when none started (naming the first failure). */
  static async start(file: string, threads: number = SQLITE_READER_THREADS): Promise<SqliteReaderPool> {
    const started = await Promise.allSettled(Array.from({ length: threads }, () => SqliteAsyncReader.start(file)));
    const readers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    if (readers.length === 0) throw (started[0] as PromiseRejectedResult).reason;
    return new SqliteReaderPool(readers);
  }

  /** The stored bytes of the record under `key` (encodeKey), null when there is none, or
   *  undefined when no thread could answer (read it synchronously instead). */
  async get(key: Uint8Array): Promise<Uint8Array | null | undefined> {
    for (;;) {
      const reader = this.leastBusy();
      if (reader === undefined) return undefined;
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

  /** Threads still serving. */
  get threadsUp(): number {
    return this.readers.filter((r) => !r.isDown).length;
  }

  /** Reads each thread answered (for tests). */
  get answeredPerThread(): number[] {
    return this.readers.map((r) => r.answered);
  }

  /** Closes every thread; reads still waiting are answered undefined. */
  async close(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.close()));
  }

  /** Test hook: ends one thread (or, with no index, every thread) abruptly, as a crash would. */
  async terminateForTest(index?: number): Promise<void> {
    const ending = index === undefined ? this.readers : [this.readers[index]!];
    await Promise.all(ending.map((r) => r.terminateForTest()));
  }
}
