// Key history (MVCC), etcd style: every write keeps the version it replaces, addressed by
// revision, until compaction discards what no read at or above the compacted revision can see.
//
// The history lives in the KV map itself, as records under metcd's own keys (tokens.ts), so every
// engine, snapshot and restore carries it with no storage change of its own:
//   \u0001h/<revision, 16 digits>/<key>  →  "p<createRevision>,<version>,<value>"  a version of <key>
//                                           written at <revision> and replaced since
//                                        →  "d"                                    <key> deleted at <revision>
//   \u0001meta/compacted                 →  the compacted revision (decimal)
// A key's current version is its ordinary record; the history holds only what was replaced and
// the deletes, so writing new keys costs nothing extra. This class is the in-memory index over
// those records (rebuilt from them on restore): the revisions of each key's past versions (the
// versions themselves are read back from the records when asked for, so a tiered store keeps
// their values on disk), and which keys each revision changed (for watch replay, in revision
// order, keys in order within a revision).

import type { KeyRecord } from './types.ts';
import { INTERNAL_KEY_PREFIX } from './tokens.ts';
import { lowerBound } from './sorted-keys.ts';

const HISTORY_PREFIX = `${INTERNAL_KEY_PREFIX}h/`;
export const COMPACTED_KEY = `${INTERNAL_KEY_PREFIX}meta/compacted`;
const REVISION_DIGITS = 16;

/** A past version of a key: its record, or null where the key was deleted at `revision`. */
export interface PastVersion {
  revision: number;
  record: KeyRecord | null;
}

/** One change to a key, as a watch or a replay sees it. */
export interface KeyEvent {
  type: 'put' | 'delete';
  key: string;
  revision: number;
  /** The new record (put), absent for a delete. */
  record?: KeyRecord;
  /** The version this change replaced, when it is still in the history. */
  prev?: KeyRecord;
}

export function isHistoryKey(key: string): boolean {
  return key.startsWith(HISTORY_PREFIX);
}

export function historyKey(revision: number, key: string): string {
  return `${HISTORY_PREFIX}${String(revision).padStart(REVISION_DIGITS, '0')}/${key}`;
}

export function encodePast(record: KeyRecord | null): string {
  return record === null ? 'd' : `p${record.createRevision},${record.version},${record.value}`;
}

/** A history record back: [key, its past version]; a malformed one means corrupt state (thrown). */
export function decodePast(storedKey: string, value: string): [string, PastVersion] {
  const rest = storedKey.slice(HISTORY_PREFIX.length);
  const slash = rest.indexOf('/');
  const revision = Number(rest.slice(0, slash));
  const key = rest.slice(slash + 1);
  const bad = () => new Error(`KV state: history record ${JSON.stringify(storedKey)} is malformed`);
  if (slash !== REVISION_DIGITS || !Number.isSafeInteger(revision) || revision < 1 || key === '') throw bad();
  if (value === 'd') return [key, { revision, record: null }];
  const comma1 = value.indexOf(',');
  const comma2 = value.indexOf(',', comma1 + 1);
  const createRevision = Number(value.slice(1, comma1));
  const version = Number(value.slice(comma1 + 1, comma2));
  if (value[0] !== 'p' || comma1 < 0 || comma2 < 0 || !(createRevision >= 1 && createRevision <= revision) || !(version >= 1)) throw bad();
  return [key, { revision, record: { value: value.slice(comma2 + 1), createRevision, modRevision: revision, version } }];
}

/** How the history and the lease table write and remove metcd's own records (the state machine
 *  writes them with the change that made them). */
export interface RecordWrites {
  set(key: string, value: string): void;
  remove(key: string): void;
}

/** Where a history over a tiered store (tiered-records.ts) finds the current records' changes:
 *  the client keys whose current record has modRevision >= `from`, in (modRevision, key) order,
 *  until `visit` returns false. */
export type CurrentChanges = (from: number, visit: (key: string, modRevision: number) => boolean) => void;

/** How many current changes a replay over a tiered store reads from it at a time. */
const CURRENT_CHANGES_PAGE = 1024;

/** A past version in the index: its revision, negated for a delete (revisions are >= 1). */
type PastEntry = number;
const entryRevision = (e: PastEntry): number => (e < 0 ? -e : e);

/** Reads one of metcd's own records (a history record) back from the records. */
export type StoredRecord = (storedKey: string) => KeyRecord | undefined;

export class KeyHistory {
  /** Per key, its replaced versions and deletes, oldest first, as PastEntry. */
  private readonly past = new Map<string, PastEntry[]>();
  private readonly stored: StoredRecord;
  /** Revisions that changed keys, ascending, and the keys each changed (sorted once complete).
   *  Empty over a tiered store: the changes are read from the store (`currentChanges`), so a
   *  restart does not read every key changed within the window. */
  private readonly revisions: number[] = [];
  private readonly changed: string[][] = [];
  private currentChanges: CurrentChanges | null = null;
  /** Reads below this revision are refused (its history is gone). */
  compacted = 0;

  private constructor(stored: StoredRecord) {
    this.stored = stored;
  }

  /** Restore: every history record, the current records and the compacted revision; `stored`
   *  reads the history records back (the state machine's records hold them). */
  /** `current`: each client key's modRevision, at least for those >= `compacted` (any order). */
  static restore(
    pastRecords: Array<[string, PastVersion]>,
    current: Iterable<[string, number]>,
    compacted: number,
    stored: StoredRecord,
  ): KeyHistory {
    const h = new KeyHistory(stored);
    h.compacted = compacted;
    const changes: Array<[number, string]> = [];
    for (const [key, version] of pastRecords) {
      let list = h.past.get(key);
      if (list === undefined) h.past.set(key, (list = []));
      list.push(version.record === null ? -version.revision : version.revision);
      if (version.revision >= compacted) changes.push([version.revision, key]);
    }
    for (const list of h.past.values()) list.sort((a, b) => entryRevision(a) - entryRevision(b));
    for (const [key, modRevision] of current) if (modRevision >= compacted) changes.push([modRevision, key]);
    changes.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    for (const [revision, key] of changes) h.noteChange(revision, key);
    return h;
  }

  /** Restore over a tiered store: the history records and the compacted revision; the current
   *  records' changes stay in the store and are read from it when a replay asks. */
  static restoreOverStore(
    pastRecords: Array<[string, PastVersion]>,
    currentChanges: CurrentChanges,
    compacted: number,
    stored: StoredRecord,
  ): KeyHistory {
    const h = KeyHistory.restore(pastRecords, [], compacted, stored);
    h.revisions.length = 0;
    h.changed.length = 0;
    h.currentChanges = currentChanges;
    return h;
  }

  /** `key` changes at `revision` from `prev` (its current record, if any); `deleted` for a delete. */
  change(revision: number, key: string, prev: KeyRecord | undefined, deleted: boolean, writes: RecordWrites): void {
    if (prev !== undefined) this.keep(key, { revision: prev.modRevision, record: prev }, writes);
    if (deleted) this.keep(key, { revision, record: null }, writes);
    this.noteChange(revision, key);
  }

  /** A revision's changes are complete: its keys go in order (as a restore would list them). */
  endRevision(revision: number): void {
    const last = this.revisions.length - 1;
    if (last >= 0 && this.revisions[last] === revision) this.changed[last]!.sort();
  }

  /** The version of `key` as of `revision` (current: its current record), or undefined. */
  at(key: string, revision: number, current: KeyRecord | undefined): KeyRecord | undefined {
    if (current !== undefined && current.modRevision <= revision) return current;
    const list = this.past.get(key);
    if (list === undefined) return undefined;
    const i = lastAtOrBefore(list, revision);
    return i < 0 ? undefined : (this.version(key, list[i]!) ?? undefined);
  }

  /** The past version `entry` of `key`, read back from its history record (null: a delete). */
  private version(key: string, entry: PastEntry): KeyRecord | null {
    if (entry < 0) return null;
    const storedKey = historyKey(entry, key);
    const stored = this.stored(storedKey);
    if (stored === undefined) throw new Error(`KV state: the history record ${JSON.stringify(storedKey)} is missing`);
    return decodePast(storedKey, stored.value)[1].record;
  }

  /** Keys that have a past (some may have no current record), for ranges at a revision. */
  keysWithPast(): IterableIterator<string> {
    return this.past.keys();
  }

  /** The changes of revisions >= `from`, in revision order, keys in order within one. */
  *events(from: number, current: (key: string) => KeyRecord | undefined): Generator<KeyEvent> {
    if (this.currentChanges !== null) {
      yield* this.eventsOverStore(from, this.currentChanges, current);
      return;
    }
    for (let i = lowerBound(this.revisions, from); i < this.revisions.length; i++) {
      const revision = this.revisions[i]!;
      for (const key of this.changed[i]!) yield this.eventAt(key, revision, current(key));
    }
  }

  /**
   * events() over a tiered store: a change at revision r to key k is either k's past version at
   * r (a put replaced since, or a delete) or k's current record, modified at r. Both streams come
   * in (revision, key) order (the past sorted here, the current from the store a page at a time),
   * and are merged.
   */
  private *eventsOverStore(
    from: number,
    currentChanges: CurrentChanges,
    current: (key: string) => KeyRecord | undefined,
  ): Generator<KeyEvent> {
    const pastChanges: Array<[string, number]> = [];
    for (const [key, list] of this.past) {
      for (const e of list) if (entryRevision(e) >= from) pastChanges.push([key, entryRevision(e)]);
    }
    pastChanges.sort(byRevisionThenKey);
    let p = 0;
    let resume: [string, number] | null = null;
    for (;;) {
      const page: Array<[string, number]> = [];
      currentChanges(resume === null ? from : resume[1], (key, modRevision) => {
        // A page resumes at the last revision it reached: skip what it already gave.
        if (resume !== null && byRevisionThenKey([key, modRevision], resume) <= 0) return true;
        page.push([key, modRevision]);
        return page.length < CURRENT_CHANGES_PAGE;
      });
      for (const change of page) {
        while (p < pastChanges.length && byRevisionThenKey(pastChanges[p]!, change) < 0) {
          const [key, revision] = pastChanges[p++]!;
          yield this.eventAt(key, revision, current(key));
        }
        if (p < pastChanges.length && byRevisionThenKey(pastChanges[p]!, change) === 0) p++;
        yield this.eventAt(change[0], change[1], current(change[0]));
      }
      if (page.length < CURRENT_CHANGES_PAGE) break;
      resume = page[page.length - 1]!;
    }
    while (p < pastChanges.length) {
      const [key, revision] = pastChanges[p++]!;
      yield this.eventAt(key, revision, current(key));
    }
  }

  /** The change to `key` at `revision`, with the version it replaced. */
  private eventAt(key: string, revision: number, current: KeyRecord | undefined): KeyEvent {
    const list = this.past.get(key) ?? [];
    const i = lastAtOrBefore(list, revision);
    const here = i >= 0 && entryRevision(list[i]!) === revision ? list[i]! : null;
    const record = here !== null ? this.version(key, here) : current !== undefined && current.modRevision === revision ? current : null;
    const before = here !== null ? i - 1 : i;
    const prev = before >= 0 ? (this.version(key, list[before]!) ?? undefined) : undefined;
    const event: KeyEvent = record === null ? { type: 'delete', key, revision } : { type: 'put', key, revision, record };
    if (prev !== undefined) event.prev = prev;
    return event;
  }

  /**
   * Discard what no read at or above `revision` needs: per key, every past version but the one
   * visible at `revision` (when it is not a delete), and the change list below it.
   */
  compact(revision: number, current: (key: string) => KeyRecord | undefined, writes: RecordWrites): void {
    if (revision <= this.compacted) return;
    const drop = lowerBound(this.revisions, revision);
    // Only keys changed in [compacted, revision] can have a version to discard (a change at
    // `revision` itself hides the version before it): any other key's oldest kept version is
    // still the one visible at `revision`. So a compaction costs the changes it passes over,
    // not every key with a past (it runs inside apply).
    // Over a tiered store there is no change list: every key with a past is a candidate.
    const touched = new Set<string>(this.currentChanges !== null ? this.past.keys() : []);
    const passed = lowerBound(this.revisions, revision + 1);
    for (let i = 0; i < passed; i++) for (const key of this.changed[i]!) touched.add(key);
    for (const key of touched) {
      const list = this.past.get(key);
      if (list === undefined) continue;
      // Kept: the changes at or above `revision`, and the version shown at `revision` when it is
      // a past put (the current record, or a delete, shows nothing from the past).
      const v = lastAtOrBefore(list, revision);
      let keepFrom = 0;
      if (v >= 0) {
        const e = list[v]!;
        const cur = current(key);
        const shown = entryRevision(e) === revision || (e > 0 && !(cur !== undefined && cur.modRevision <= revision));
        keepFrom = shown ? v : v + 1;
      }
      for (let i = 0; i < keepFrom; i++) writes.remove(historyKey(entryRevision(list[i]!), key));
      if (keepFrom >= list.length) this.past.delete(key);
      else if (keepFrom > 0) list.splice(0, keepFrom);
    }
    this.revisions.splice(0, drop);
    this.changed.splice(0, drop);
    this.compacted = revision;
    writes.set(COMPACTED_KEY, String(revision));
  }

  private keep(key: string, version: PastVersion, writes: RecordWrites): void {
    let list = this.past.get(key);
    if (list === undefined) this.past.set(key, (list = []));
    list.push(version.record === null ? -version.revision : version.revision);
    writes.set(historyKey(version.revision, key), encodePast(version.record));
  }

  private noteChange(revision: number, key: string): void {
    if (this.currentChanges !== null) return; // the store and the past versions hold the changes
    const last = this.revisions.length - 1;
    if (last >= 0 && this.revisions[last] === revision) this.changed[last]!.push(key);
    else {
      this.revisions.push(revision);
      this.changed.push([key]);
    }
  }
}

const byRevisionThenKey = (a: readonly [string, number], b: readonly [string, number]): number =>
  a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** Index of the last version at or before `revision`, or -1. */
function lastAtOrBefore(list: PastEntry[], revision: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entryRevision(list[mid]!) <= revision) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}
