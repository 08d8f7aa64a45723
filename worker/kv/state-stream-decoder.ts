// Decodes a state's bytes (encodeState's, codec.ts) as they arrive in chunks cut at any byte,
// so a follower installs a streamed snapshot into its storage engine record by record without
// ever holding the state: feed() hands out each record once its last byte is in, and keeps only
// the bytes of the one record (or session) not yet complete. Every check is decodeState's own
// (the same readers); the counts cannot be checked against bytes still to come, so finish()
// says whether the stream ended where the state does.

import type { KeyRecord, SessionRecord } from './types.ts';
import { DEFAULT_KV_LIMITS, ROW_FRAMING_BYTES_MAX, STORAGE_ROW_BYTES_MAX } from './types.ts';
import { ByteReader } from './bytes.ts';
import { asCodecError, readStateHead, readStateRecord, readStateSession } from './codec.ts';
import { KvCodecError, KvCodecTruncatedError } from './errors.ts';

/**
 * The most bytes one record or one session may take. Each is stored as one row of at most
 * STORAGE_ROW_BYTES_MAX bytes (kv/types.ts), and its encoding's lengths and numbers take less
 * than the row's framing: a longer one is garbage, refused before its bytes are buffered.
 */
export const STATE_STREAM_UNIT_BYTES_MAX = STORAGE_ROW_BYTES_MAX + ROW_FRAMING_BYTES_MAX;

/** What the state holds beside its records, known once its last byte is in. */
export interface StateStreamEnd {
  revision: number;
  sessions: Array<[string, SessionRecord]>;
  recordCount: number;
}

/** The decoder reads one unit at a time: the head (up to the record count), a record, the
 *  session count, a session. */
type Stage = 'head' | 'records' | 'session-count' | 'sessions' | 'end' | 'failed';

const EMPTY = new Uint8Array(0);

export class StateStreamDecoder {
  private readonly unitBytesMax: number;
  private readonly sessionsMax: number;
  private stage: Stage = 'head';
  private revision = 0;
  private recordCount = 0;
  private recordsRead = 0;
  private prevKey: string | null = null;
  private sessionCount = 0;
  private readonly sessions: Array<[string, SessionRecord]> = [];
  /** The unit begun in earlier chunks: its bytes so far are pending[0, pendingBytes), and the
   *  buffer is as long as the unit is known to be (pendingNeeded), so it fills in place. */
  private pending: Uint8Array = EMPTY;
  private pendingBytes = 0;
  private pendingNeeded = 0;

  /**
   * `unitBytesMax`: the most bytes one record or session may take (a host whose KV limits allow
   * larger records raises it). `sessionsMax`: the KV limit of that name, which no state's
   * sessions exceed (the state machine evicts beyond it), so the decoded sessions kept for
   * finish() stay bounded.
   */
  constructor(options: { unitBytesMax?: number; sessionsMax?: number } = {}) {
    this.unitBytesMax = options.unitBytesMax ?? STATE_STREAM_UNIT_BYTES_MAX;
    this.sessionsMax = options.sessionsMax ?? DEFAULT_KV_LIMITS.sessionsMax;
  }

  /** Bytes held for the unit not yet complete (the buffer's length): never above the unit's
   *  size, so never above unitBytesMax. */
  get bufferedBytes(): number {
    return this.pending.length;
  }

  /**
   * The next bytes of the state: returns the records they complete, in key order. Throws
   * KvCodecError on bytes that are not a valid state (then on every later call too).
   */
  feed(bytes: Uint8Array): Array<[string, KeyRecord]> {
    if (this.stage === 'failed') throw new KvCodecError('the state stream failed earlier');
    try {
      return this.feedOrThrow(bytes);
    } catch (e) {
      this.stage = 'failed';
      this.pending = EMPTY;
      throw asCodecError(e);
    }
  }

  /** After the last byte: the revision, sessions and record count, or KvCodecError when the
   *  stream ended before the state did. */
  finish(): StateStreamEnd {
    switch (this.stage) {
      case 'end':
        return { revision: this.revision, sessions: this.sessions, recordCount: this.recordCount };
      case 'failed':
        throw new KvCodecError('the state stream failed earlier');
      case 'head':
        throw new KvCodecError('the state stream ended within its head');
      case 'records':
        throw new KvCodecError(`the state stream ended after ${this.recordsRead} of its ${this.recordCount} records`);
      default:
        throw new KvCodecError(`the state stream ended after ${this.sessions.length} of its sessions`);
    }
  }

  private feedOrThrow(bytes: Uint8Array): Array<[string, KeyRecord]> {
    const out: Array<[string, KeyRecord]> = [];
    let from = 0;
    // First complete the unit begun earlier, copying in only as many bytes as it is known to
    // need: the rest of the chunk is read where it lies.
    while (this.pendingBytes > 0) {
      const take = Math.min(bytes.length - from, this.pendingNeeded - this.pendingBytes);
      this.pending.set(bytes.subarray(from, from + take), this.pendingBytes);
      this.pendingBytes += take;
      from += take;
      if (this.pendingBytes < this.pendingNeeded) return out;
      const r = new ByteReader(this.pending);
      if (!this.readUnit(r, out)) continue; // it needs more than it showed so far (grown)
      if (r.offset !== this.pendingBytes) throw new Error('StateStreamDecoder: a unit ended before the bytes it needed');
      this.pending = EMPTY;
      this.pendingBytes = 0;
      this.pendingNeeded = 0;
    }
    const r = new ByteReader(bytes);
    r.offset = from;
    while (r.remaining > 0) {
      if (this.stage === 'end') throw new KvCodecError(`${r.remaining} trailing bytes after the state`);
      const start = r.offset;
      if (!this.readUnit(r, out)) {
        const rest = bytes.subarray(start);
        this.pending.set(rest, 0);
        this.pendingBytes = rest.length;
        break;
      }
    }
    return out;
  }

  /**
   * Reads one unit at r.offset: true when it was whole (the decoder moved on past it), false
   * when the bytes end within it (nothing changed but `pending`, now a buffer as long as the
   * unit is known to need, holding its bytes so far from index 0 when they were there).
   */
  private readUnit(r: ByteReader, out: Array<[string, KeyRecord]>): boolean {
    const start = r.offset;
    try {
      this.readUnitOrThrow(r, out);
      // The same limit on a unit that came whole: what is refused must not depend on the cuts.
      this.checkUnitBytes(r.offset - start);
      return true;
    } catch (e) {
      if (!(e instanceof KvCodecTruncatedError)) throw e;
      const needed = e.bytesNeeded - start;
      this.checkUnitBytes(needed);
      const grown = new Uint8Array(needed);
      grown.set(this.pending.subarray(0, this.pendingBytes), 0);
      this.pending = grown;
      this.pendingNeeded = needed;
      return false;
    }
  }

  private checkUnitBytes(bytes: number): void {
    if (bytes > this.unitBytesMax) throw new KvCodecError(`a record or session of more than ${this.unitBytesMax} bytes`);
  }

  /** Reads the unit the stage expects; the decoder changes only once the unit was whole. */
  private readUnitOrThrow(r: ByteReader, out: Array<[string, KeyRecord]>): void {
    switch (this.stage) {
      case 'head': {
        const revision = readStateHead(r);
        this.recordCount = r.varuint();
        this.revision = revision;
        this.stage = this.recordCount > 0 ? 'records' : 'session-count';
        return;
      }
      case 'records': {
        const record = readStateRecord(r, this.revision, this.prevKey);
        out.push(record);
        this.prevKey = record[0];
        if (++this.recordsRead === this.recordCount) this.stage = 'session-count';
        return;
      }
      case 'session-count':
        this.sessionCount = r.varuint();
        if (this.sessionCount > this.sessionsMax)
          throw new KvCodecError(`${this.sessionCount} sessions, above the limit of ${this.sessionsMax}`);
        this.stage = this.sessionCount > 0 ? 'sessions' : 'end';
        return;
      case 'sessions': {
        const session = readStateSession(r, this.sessions.at(-1)?.[0] ?? null);
        this.sessions.push(session);
        if (this.sessions.length === this.sessionCount) this.stage = 'end';
        return;
      }
      default:
        throw new Error(`StateStreamDecoder: no unit to read at stage ${this.stage}`);
    }
  }
}
