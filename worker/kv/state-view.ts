// A consistent view of the KV state as of one moment that stays readable, in key order and in
// slices, while later commands keep applying: the state machine tells every open view about a
// key's previous record just before it changes that key, and the view keeps the first such
// record (copy-on-write, per key). Snapshots are encoded from a view a slice at a time, so a
// large state never stops the peer for the whole encoding.

import type { KeyRecord, SessionRecord } from './types.ts';

export class StateView {
  /** Revision and sessions as of the view's moment. */
  readonly revision: number;
  readonly sessions: Array<[string, SessionRecord]>;
  /** How many records the view holds (what next() returns in all). */
  readonly recordCount: number;
  private readonly live: ReadonlyMap<string, KeyRecord>;
  /** The key order at the view's moment (may hold keys already deleted then: skipped). */
  private readonly keys: string[];
  private pos = 0;
  /** Record of a key at the view's moment, for keys changed since (null: it did not exist). */
  private readonly before = new Map<string, KeyRecord | null>();
  private readonly onClose: (view: StateView) => void;
  private closed = false;

  constructor(
    live: ReadonlyMap<string, KeyRecord>,
    keys: string[],
    revision: number,
    sessions: Array<[string, SessionRecord]>,
    onClose: (view: StateView) => void,
  ) {
    this.live = live;
    this.keys = keys;
    this.revision = revision;
    this.sessions = sessions;
    this.recordCount = live.size;
    this.onClose = onClose;
  }

  /** The state machine is about to change `key`, whose record is `previous` until then. */
  beforeChange(key: string, previous: KeyRecord | undefined): void {
    if (!this.before.has(key)) this.before.set(key, previous ?? null);
  }

  /** Every record has been returned by next(). */
  get done(): boolean {
    return this.pos >= this.keys.length;
  }

  /**
   * The next records of the view in key order: at most `recordsMax`, and stopping once their
   * keys and values pass `charsMax` UTF-16 units (at least one record). [] once done.
   */
  next(recordsMax: number, charsMax = Infinity): Array<[string, KeyRecord]> {
    if (this.closed) throw new Error('StateView.next after close');
    const out: Array<[string, KeyRecord]> = [];
    let chars = 0;
    while (this.pos < this.keys.length && out.length < recordsMax && (out.length === 0 || chars < charsMax)) {
      const key = this.keys[this.pos++]!;
      const saved = this.before.get(key);
      const record = saved === undefined ? this.live.get(key) : saved;
      if (record === undefined || record === null) continue;
      out.push([key, record]);
      chars += key.length + record.value.length;
    }
    return out;
  }

  /** Stop tracking changes (call when done with the view, or to abandon it). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.before.clear();
    this.onClose(this);
  }
}
