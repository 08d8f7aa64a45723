// The record store that holds the whole key space in memory: a map for point reads and the keys
// in order beside it (sorted-keys.ts) for ranges. Views are copy-on-write per key: the store
// hands a key's previous record to every open view just before it changes the key, and the view
// keeps the first such record, so a snapshot encodes the state as of its moment a slice at a time
// while later commands keep applying.

import type { KeyRecord } from './types.ts';
import type { RecordCursor, RecordStore } from './record-store.ts';
import { SortedKeys } from './sorted-keys.ts';

export class MemoryRecords implements RecordStore {
  private readonly records: Map<string, KeyRecord>;
  private readonly keys: SortedKeys;
  private readonly views = new Set<MemoryCursor>();

  /** `records` becomes the store's own; `sortedKeys`, when given, are its keys in order. */
  constructor(records = new Map<string, KeyRecord>(), sortedKeys?: string[]) {
    this.records = records;
    this.keys = new SortedKeys(records, sortedKeys ?? [...records.keys()].sort());
  }

  get size(): number {
    return this.records.size;
  }

  get(key: string): KeyRecord | undefined {
    return this.records.get(key);
  }

  set(key: string, record: KeyRecord, prev: KeyRecord | undefined): void {
    if (this.views.size > 0) for (const v of this.views) v.beforeChange(key, prev);
    this.records.set(key, record);
    if (prev === undefined) this.keys.added(key);
  }

  delete(key: string, prev: KeyRecord): void {
    if (this.views.size > 0) for (const v of this.views) v.beforeChange(key, prev);
    this.records.delete(key);
    this.keys.removed();
  }

  walkFrom(from: string, visit: (key: string, record: KeyRecord) => boolean): void {
    this.keys.walkFrom(from, (key) => visit(key, this.records.get(key)!));
  }

  /** Memory is the only home of these records: nothing waits for a save. */
  sealChanges(): number {
    return 0;
  }

  changesDurable(): void {}

  /** Nothing replaces this store's backing under it: an install builds a new store. */
  pin(): void {}

  close(): void {}

  tierCounts(): null {
    return null;
  }

  /** Every record is in memory. */
  prefetch(): null {
    return null;
  }

  beginView(): RecordCursor {
    const view = new MemoryCursor(this.records, this.keys.orderedCopy(), (v) => this.views.delete(v));
    this.views.add(view);
    return view;
  }
}

class MemoryCursor implements RecordCursor {
  readonly recordCount: number;
  private readonly live: ReadonlyMap<string, KeyRecord>;
  /** The key order at the view's moment (may hold keys already deleted then: skipped). */
  private readonly keys: string[];
  private pos = 0;
  /** Record of a key at the view's moment, for keys changed since (null: it did not exist). */
  private readonly before = new Map<string, KeyRecord | null>();
  private readonly onClose: (view: MemoryCursor) => void;
  private closed = false;

  constructor(live: ReadonlyMap<string, KeyRecord>, keys: string[], onClose: (view: MemoryCursor) => void) {
    this.live = live;
    this.keys = keys;
    this.recordCount = live.size;
    this.onClose = onClose;
  }

  /** The store is about to change `key`, whose record is `previous` until then. */
  beforeChange(key: string, previous: KeyRecord | undefined): void {
    if (!this.before.has(key)) this.before.set(key, previous ?? null);
  }

  get done(): boolean {
    return this.pos >= this.keys.length;
  }

  next(recordsMax: number, charsMax = Infinity): Array<[string, KeyRecord]> {
    if (this.closed) throw new Error('RecordCursor.next after close');
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

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.before.clear();
    this.onClose(this);
  }
}
