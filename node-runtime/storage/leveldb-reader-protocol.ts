// The messages between the leveldb engine's event loop and its reader thread
// (leveldb-reader.ts, leveldb-reader-thread.ts), on a port of their own; the thread's start is
// reported on its parentPort ('ready' or 'failed'). Requests that answer are made one at a time,
// the event loop waiting for the answer; `close-iter`, `close-view` and `filter` do not answer
// there: a filter, built in the background, is posted on the parentPort when done (FilterBuilt).

import type { MessagePort } from 'node:worker_threads';

export interface ReaderData {
  dir: string;
  /** Requests arrive and answers leave here (the event loop reads them with receiveMessageOnPort). */
  port: MessagePort;
  /** The answer is posted, then signal[0] is set to 1 and notified (Atomics). */
  signal: Int32Array;
}

/** An iterator over [gte, lt), with values or keys only, on a view's snapshot (0: the live
 *  database, a snapshot of its own as of this request). */
export interface WalkRequest {
  kind: 'walk';
  id: number;
  gte: Uint8Array;
  lt: Uint8Array;
  keysOnly: boolean;
  view: number;
  /** Entries in the first page. */
  n: number;
}

export type ToReader =
  | WalkRequest
  | { kind: 'next'; id: number; n: number }
  | { kind: 'close-iter'; id: number }
  | { kind: 'view' }
  | { kind: 'get'; view: number; key: Uint8Array }
  | { kind: 'close-view'; id: number }
  /** Build a KeyFilter (key-filter.ts) of `bits` over the record keys in [gte, lt), whose
   *  key bytes start at `keyAt`; a later filter request abandons this one. */
  | { kind: 'filter'; id: number; bits: number; gte: Uint8Array; lt: Uint8Array; keyAt: number }
  | { kind: 'close' };

/** A filter request's outcome, on the parentPort. */
export type FilterBuilt =
  { kind: 'filter'; id: number; words: ArrayBuffer; keys: number } | { kind: 'filter-failed'; id: number; message: string };

/** A page is [u32 key bytes][key][u32 value bytes][value]... (values empty for keys only). */
export type FromReader =
  | { kind: 'ready' }
  | { kind: 'page'; page: ArrayBuffer; count: number; done: boolean }
  | { kind: 'view'; id: number }
  | { kind: 'value'; value: Uint8Array | null }
  | { kind: 'closed' }
  | { kind: 'failed'; message: string };
