// A DiskRecords (worker/kv/record-store.ts) over a map in memory, for tests and the simulator:
// what a tiered engine's table shows, with the writes applied when the test (or the simulated
// disk) says a save resolved. Views are copies, so later writes never reach them.

import type { DiskRecords, DiskView } from '../../worker/kv/record-store.ts';
import type { KeyRecord, KvChanges, KvState } from '../../worker/kv/types.ts';

/** Counts what the disk was asked, so a test can see the tier really went to it. */
export interface MapDiskCounts {
  gets: number;
  walks: number;
  /** changedSince calls (a watch's replay read from the disk). */
  changed: number;
  views: number;
  openViews: number;
}

export class MapDiskRecords implements DiskRecords {
  private records = new Map<string, KeyRecord>();
  readonly counts: MapDiskCounts = { gets: 0, walks: 0, changed: 0, views: 0, openViews: 0 };

  private readonly onGet: () => void;

  /** An asynchronous read (DiskRecords.getAsync), when made with `readLater`: the record as of
   *  the call, handed over when `readLater` delivers, by which time saves may have resolved
   *  (the race a store's prefetch must survive). */
  readonly getAsync?: (key: string) => Promise<KeyRecord | undefined>;

  /** `onGet`: called on each get (a cache miss of the store reading this disk). `readLater`:
   *  schedules the delivery of an asynchronous read (none: this disk reads only synchronously). */
  constructor(records: Iterable<[string, KeyRecord]> = [], onGet: () => void = () => {}, readLater?: (deliver: () => void) => void) {
    for (const [k, r] of records) this.records.set(k, r);
    this.onGet = onGet;
    if (readLater !== undefined) {
      this.getAsync = (key) => {
        const record = this.get(key);
        return new Promise((resolve) => readLater(() => resolve(record)));
      };
    }
  }

  /** A save carrying `kv` resolved. What it says it replaces (KvChanges.replaced, which an
   *  engine with an index by modRevision trusts) must be what this disk holds. */
  applyChanges(kv: Pick<KvChanges, 'upserts' | 'deletes' | 'replaced'>): void {
    if (kv.replaced !== undefined) {
      const said = new Map(kv.replaced);
      const changed = [...kv.upserts.map(([k]) => k), ...kv.deletes];
      for (const key of changed) {
        const stored = this.records.get(key)?.modRevision;
        if (said.get(key) !== stored) {
          throw new Error(`KvChanges.replaced: ${JSON.stringify(key)} replaces modRevision ${said.get(key)}, the disk holds ${stored}`);
        }
      }
      if (said.size !== changed.filter((k) => this.records.has(k)).length) throw new Error('KvChanges.replaced names a key not changed');
    }
    for (const [k, r] of kv.upserts) this.records.set(k, r);
    for (const k of kv.deletes) this.records.delete(k);
  }

  /** A save installing `kv` resolved: it replaces every record. */
  install(kv: Pick<KvState, 'records'>): void {
    this.records = new Map(kv.records);
  }

  /** The records now (a copy). */
  entries(): Array<[string, KeyRecord]> {
    return [...this.records];
  }

  get size(): number {
    return this.records.size;
  }

  get(key: string): KeyRecord | undefined {
    this.counts.gets++;
    this.onGet();
    return this.records.get(key);
  }

  walkFrom(from: string, visit: (key: string, record: KeyRecord) => boolean): void {
    this.counts.walks++;
    walkSorted(this.records, from, visit);
  }

  changedSince(revision: number, visit: (key: string, modRevision: number) => boolean): void {
    this.counts.changed++;
    changedSorted(this.records, revision, visit);
  }

  openView(): DiskView {
    this.counts.views++;
    this.counts.openViews++;
    const copy = new Map(this.records);
    let open = true;
    const check = () => {
      if (!open) throw new Error('MapDiskRecords: view used after close');
    };
    return {
      get: (key) => (check(), copy.get(key)),
      walkFrom: (from, visit) => (check(), walkSorted(copy, from, visit)),
      changedSince: (revision, visit) => (check(), changedSorted(copy, revision, visit)),
      close: () => {
        if (open) this.counts.openViews--;
        open = false;
      },
    };
  }
}

function changedSorted(
  records: ReadonlyMap<string, KeyRecord>,
  revision: number,
  visit: (key: string, modRevision: number) => boolean,
): void {
  const changed = [...records].filter(([, r]) => r.modRevision >= revision);
  changed.sort(([ka, a], [kb, b]) => a.modRevision - b.modRevision || (ka < kb ? -1 : ka > kb ? 1 : 0));
  for (const [k, r] of changed) if (!visit(k, r.modRevision)) return;
}

function walkSorted(records: ReadonlyMap<string, KeyRecord>, from: string, visit: (key: string, record: KeyRecord) => boolean): void {
  const keys = [...records.keys()].filter((k) => k >= from).sort();
  for (const k of keys) if (!visit(k, records.get(k)!)) return;
}
