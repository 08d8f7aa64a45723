// A state's bytes (encodeState's, codec.ts) in chunks read on demand from a StateView, for a
// leader that streams a snapshot to a follower: each read encodes just enough of the view, a
// slice of records at a time, so the chunker holds about one slice and one chunk of bytes however
// large the state. The transfer only moves forward: the next chunk, or the last one again (its
// answer was lost); any other offset means the two ends disagree, and the caller starts over
// from a new view.

import { StateStreamEncoder } from './codec.ts';
import type { StateView } from './state-view.ts';

/** Records per slice, and their key and value characters: a slice stops at whichever comes
 *  first (at least one record). */
export const STATE_CHUNKER_SLICE_RECORDS = 1024;
export const STATE_CHUNKER_SLICE_CHARS = 1024 * 1024;

export interface StateChunk {
  /** The state's bytes from the chunk's offset on. */
  data: Uint8Array;
  /** These bytes end the state. */
  done: boolean;
}

export interface StateChunkerOptions {
  sliceRecords?: number;
  sliceChars?: number;
}

type Stage = 'head' | 'records' | 'tail';

export class StateChunker {
  private readonly view: StateView;
  private readonly encoder: StateStreamEncoder;
  private readonly sliceRecords: number;
  private readonly sliceChars: number;
  private stage: Stage = 'head';
  /** Encoded bytes not yet in a chunk, in order; the first from queueHead on. */
  private readonly queue: Uint8Array[] = [];
  private queueHead = 0;
  /** The last chunk returned and its offset in the state, for a resend. */
  private last: { offset: number; chunk: StateChunk } | null = null;
  private viewClosed = false;
  private closed = false;

  /** Takes the view over: the chunker closes it. */
  constructor(view: StateView, options: StateChunkerOptions = {}) {
    this.view = view;
    this.encoder = new StateStreamEncoder(view.recordCount);
    this.sliceRecords = options.sliceRecords ?? STATE_CHUNKER_SLICE_RECORDS;
    this.sliceChars = options.sliceChars ?? STATE_CHUNKER_SLICE_CHARS;
    if (!(this.sliceRecords >= 1 && this.sliceChars >= 1))
      throw new RangeError('StateChunker: slices take at least one record and one character');
  }

  /**
   * The state's bytes from `offset`, at most `maxBytes` (at least 1) of them, and whether they
   * end it. `offset` is 0 for the first read, then the end of the last chunk for the next one, or
   * the last chunk's own offset for the same bytes again (whatever maxBytes says). Null for any
   * other offset, after the end, or once closed: the transfer cannot go on from there.
   */
  read(offset: number, maxBytes: number): StateChunk | null {
    if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 1))
      throw new RangeError(`StateChunker: maxBytes ${maxBytes} is not a whole number >= 1`);
    if (this.closed) return null;
    const last = this.last;
    if (last !== null && offset === last.offset) return last.chunk;
    const end = last === null ? 0 : last.offset + last.chunk.data.length;
    if (offset !== end || last?.chunk.done === true) return null;
    const chunk = this.nextChunk(maxBytes);
    this.last = { offset, chunk };
    if (chunk.done) this.closeView(); // every record is encoded: the view may stop tracking changes
    return chunk;
  }

  /** Drop the transfer and the view; every later read is null. */
  close(): void {
    this.closed = true;
    this.last = null;
    this.queue.length = 0;
    this.closeView();
  }

  private closeView(): void {
    if (this.viewClosed) return;
    this.viewClosed = true;
    this.view.close();
  }

  private nextChunk(maxBytes: number): StateChunk {
    const parts: Uint8Array[] = [];
    let bytes = 0;
    while (bytes < maxBytes) {
      const first = this.queue[0];
      if (first === undefined) {
        if (!this.encodeMore()) break;
        continue;
      }
      const take = Math.min(first.length - this.queueHead, maxBytes - bytes);
      parts.push(first.subarray(this.queueHead, this.queueHead + take));
      bytes += take;
      this.queueHead += take;
      if (this.queueHead === first.length) {
        this.queue.shift();
        this.queueHead = 0;
      }
    }
    // A copy, not a view into a slice: the chunk kept for a resend must not hold a slice.
    const data = new Uint8Array(bytes);
    let o = 0;
    for (const part of parts) {
      data.set(part, o);
      o += part.length;
    }
    return { data, done: this.stage === 'tail' && this.queue.length === 0 };
  }

  /** Queues the next encoded bytes: false when the whole state has been queued. */
  private encodeMore(): boolean {
    const view = this.view;
    if (this.stage === 'head') {
      this.queue.push(StateStreamEncoder.head(view.revision, view.recordCount));
      this.stage = 'records';
      return true;
    }
    if (this.stage === 'tail') return false;
    if (!view.done) {
      const records = view.next(this.sliceRecords, this.sliceChars);
      if (records.length === 0 && !view.done) throw new Error('StateChunker: the view gave no records before its end');
      const slice = this.encoder.slice(records);
      if (slice.length > 0) this.queue.push(slice);
      return true;
    }
    this.queue.push(this.encoder.tail(view.sessions));
    this.stage = 'tail';
    return true;
  }
}
