// The event loop's side of the leveldb engine's reader thread (leveldb-reader-thread.ts): a
// synchronous walk over a LevelDB range. classic-level iterates only asynchronously, and a
// tiered store's walks run inside apply, which must not wait: so the walk asks the thread for
// each page and blocks until it answers (Atomics.wait on a shared flag, then the answer taken
// off a port with receiveMessageOnPort; the pattern of synckit). A page costs one round trip
// between threads (tens of microseconds), so pages grow from a few entries (a walk that stops at
// its first records: a range with a limit) to hundreds.
//
// Point reads do not come here: db.getSync reads on the event loop itself. The thread also
// builds key filters in the background (leveldb-key-filter.ts), between the walks' pages.
//
// If the thread does not answer within ANSWER_TIMEOUT_MS (it died, or LevelDB hangs), the read
// fails with StorageFailedError, which stops the node rather than leave it waiting for ever.

import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { startThread } from './thread-start.ts';
import { StorageFailedError } from './errors.ts';
import type { FilterBuilt, FromReader, ReaderData, ToReader, WalkRequest } from './leveldb-reader-protocol.ts';

const THREAD_FILE = new URL('./leveldb-reader-thread.ts', import.meta.url);
const ANSWER_TIMEOUT_MS = 30_000;
/** Entries in a walk's first page, and the most in any page. */
const FIRST_PAGE = 8;
const LARGEST_PAGE = 512;

/** What a walk reads: a WalkRequest less what the reader fills in. */
export type WalkRange = Omit<WalkRequest, 'kind' | 'id' | 'n'>;

export class LevelReader {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly signal: Int32Array;
  private readonly dir: string;
  private nextIter = 1;
  private closed = false;

  private constructor(worker: Worker, port: MessagePort, signal: Int32Array, dir: string) {
    this.worker = worker;
    this.port = port;
    this.signal = signal;
    this.dir = dir;
    // The thread never keeps the process alive; requests are answered while the loop waits.
    worker.unref();
    port.unref();
  }

  /** Starts the thread on the database at `dir`, which this process has open with
   *  `multithreading: true`; resolves once the thread has opened it too. */
  static start(dir: string): Promise<LevelReader> {
    const signal = new Int32Array(new SharedArrayBuffer(4));
    const { port1, port2 } = new MessageChannel();
    const data: ReaderData = { dir, signal, port: port2 };
    return startThread(THREAD_FILE, { workerData: data, transferList: [port2] }, `leveldb reader thread for ${dir}`).then(
      (worker) => new LevelReader(worker, port1, signal, dir),
      (err: unknown) => {
        port1.close();
        throw err;
      },
    );
  }

  /** Sends `m` and waits for the thread's answer. */
  request(m: ToReader): FromReader {
    if (this.closed) throw new StorageFailedError(`leveldb reader for ${this.dir} is closed`);
    Atomics.store(this.signal, 0, 0);
    this.port.postMessage(m);
    if (Atomics.wait(this.signal, 0, 0, ANSWER_TIMEOUT_MS) === 'timed-out') {
      throw new StorageFailedError(`leveldb reader thread for ${this.dir} did not answer a ${m.kind} within ${ANSWER_TIMEOUT_MS} ms`);
    }
    const got = receiveMessageOnPort(this.port);
    if (got === undefined) throw new StorageFailedError(`leveldb reader thread for ${this.dir} signalled without an answer`);
    const answer = got.message as FromReader;
    if (answer.kind === 'failed') throw new StorageFailedError(`leveldb read in ${this.dir} failed: ${answer.message}`);
    return answer;
  }

  /** Calls `handle` with every filter the thread builds (a `filter` request's outcome). */
  onFilter(handle: (m: FilterBuilt) => void): void {
    this.worker.on('message', (m: FilterBuilt) => {
      if (m.kind === 'filter' || m.kind === 'filter-failed') handle(m);
    });
  }

  /** Sends `m`, which has no answer (the thread handles messages in order). */
  post(m: ToReader): void {
    if (!this.closed) this.port.postMessage(m);
  }

  /**
   * The entries of `range` in key order, handed to `visit` until it returns false. Nothing is
   * read ahead of `visit` but the page at hand; the thread's iterator (one snapshot of the
   * database) is closed however the walk ends.
   */
  walk(range: WalkRange, visit: (key: Uint8Array, value: Uint8Array) => boolean): void {
    const id = this.nextIter++;
    let n = FIRST_PAGE;
    let answer = this.request({ kind: 'walk', id, ...range, n });
    let open = true;
    try {
      for (;;) {
        if (answer.kind !== 'page') throw new StorageFailedError(`leveldb reader answered a walk with ${answer.kind}`);
        if (answer.done) open = false;
        const page = Buffer.from(answer.page);
        let at = 0;
        for (let i = 0; i < answer.count; i++) {
          const kl = page.readUInt32LE(at);
          const key = page.subarray(at + 4, at + 4 + kl);
          at += 4 + kl;
          const vl = page.readUInt32LE(at);
          const value = page.subarray(at + 4, at + 4 + vl);
          at += 4 + vl;
          if (!visit(key, value)) return;
        }
        if (!open) return;
        n = Math.min(n * 4, LARGEST_PAGE);
        answer = this.request({ kind: 'next', id, n });
      }
    } finally {
      if (open) this.post({ kind: 'close-iter', id });
    }
  }

  /** Closes the thread's iterators, views and handle, then the thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      this.request({ kind: 'close' });
    } finally {
      this.closed = true;
      this.port.close();
      await this.worker.terminate();
    }
  }
}
