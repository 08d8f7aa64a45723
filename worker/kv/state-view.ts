// A consistent view of the KV state as of one moment that stays readable, in key order and in
// slices, while later commands keep applying: the records come from the record store's cursor
// (record-store.ts, copy-on-write per key), the revision and sessions are copied at the moment.
// Snapshots and backups are encoded from a view a slice at a time, so a large state never stops
// the peer for the whole encoding.

import type { KeyRecord, SessionRecord } from './types.ts';
import type { RecordCursor } from './record-store.ts';

export class StateView {
  /** Revision and sessions as of the view's moment. */
  readonly revision: number;
  readonly sessions: Array<[string, SessionRecord]>;
  private readonly cursor: RecordCursor;

  constructor(cursor: RecordCursor, revision: number, sessions: Array<[string, SessionRecord]>) {
    this.cursor = cursor;
    this.revision = revision;
    this.sessions = sessions;
  }

  /** How many records the view holds (what next() returns in all). */
  get recordCount(): number {
    return this.cursor.recordCount;
  }

  /** Every record has been returned by next(). */
  get done(): boolean {
    return this.cursor.done;
  }

  /**
   * The next records of the view in key order: at most `recordsMax`, and stopping once their
   * keys and values pass `charsMax` UTF-16 units (at least one record). [] once done.
   */
  next(recordsMax: number, charsMax = Infinity): Array<[string, KeyRecord]> {
    return this.cursor.next(recordsMax, charsMax);
  }

  /** Stop tracking changes (call when done with the view, or to abandon it). */
  close(): void {
    this.cursor.close();
  }
}
