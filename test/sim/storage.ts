// The durable storage of one simulated node: exactly what the host persisted, nothing more.
// A crash throws the node's memory away and rebuilds it from this model only, so anything a
// Ready handed out but the host had not yet saved is lost, as on a real disk.
//
// It implements the same write rules as worker/peer/ports.ts SaveBatch (snapshot install,
// compaction, append-with-truncation, hard state, KV changes + applied index in one step),
// and asserts the shape of what the core asks it to write (gaps, overwriting compacted entries).

import type { Entry, HardState, Membership, RestartState, Snapshot } from '../../worker/raft/types.ts';
import type { KeyRecord, KvChanges, KvState, SessionRecord } from '../../worker/kv/types.ts';
import { encodeState } from '../../worker/kv/codec.ts';
import type { PersistenceMode } from './options.ts';
import { violation } from './violation.ts';

const BOOTSTRAP_INDEX = 1;
const BOOTSTRAP_TERM = 1;

export function emptySnapshot(membership: Membership): Snapshot {
  return { meta: { index: 0, term: 0, membership: copyMembership(membership) }, data: new Uint8Array(0) };
}

export function copyMembership(m: Membership): Membership {
  return { voters: [...m.voters], learners: [...m.learners], addresses: { ...m.addresses } };
}

export class DurableStore {
  readonly mode: PersistenceMode;
  hardState: HardState = { term: 0, vote: '', commit: 0 };
  snapshot: Snapshot;
  /** Entries after snapshot.meta.index, contiguous. Entry objects are never mutated. */
  entries: Entry[] = [];
  applied = 0;
  /** Membership as of `applied`, written with it (the host needs it to describe its snapshots). */
  appliedMembership: Membership;
  revision = 0;
  records = new Map<string, KeyRecord>();
  sessions = new Map<string, SessionRecord>();

  /**
   * A founding member starts as worker/peer/restart.ts bootstraps one: from a snapshot at index
   * 1, term 1, holding the founding membership and an empty KV state, so that a node that joins
   * later (empty membership, empty log) is necessarily sent that snapshot and learns who the
   * founders are. A joiner starts empty.
   */
  constructor(initialMembership: Membership, mode: PersistenceMode) {
    this.mode = mode;
    this.snapshot = emptySnapshot(initialMembership);
    this.appliedMembership = copyMembership(initialMembership);
    if (initialMembership.voters.length > 0) {
      this.snapshot = {
        meta: { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM, membership: copyMembership(initialMembership) },
        data: encodeState({ revision: 0, records: [], sessions: [] }),
      };
      // Term 0, as the peer does: no post-restart lease delays the very first election.
      this.hardState = { term: 0, vote: '', commit: BOOTSTRAP_INDEX };
      this.applied = BOOTSTRAP_INDEX;
    }
  }

  get snapshotIndex(): number {
    return this.snapshot.meta.index;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  /** Term of the entry at `index`, or undefined when compacted away (below the snapshot) or absent. */
  termAt(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshot.meta.term;
    return this.entryAt(index)?.term;
  }

  entryAt(index: number): Entry | undefined {
    if (index <= this.snapshotIndex) return undefined;
    return this.entries[index - this.snapshotIndex - 1];
  }

  /** Step 1 of the Ready contract: install a snapshot (log, KV state, applied index). */
  installSnapshot(snapshot: Snapshot, kv: KvState): void {
    if (snapshot.meta.index <= this.applied) {
      violation('snapshot-regress', `snapshot at ${snapshot.meta.index} would move applied back from ${this.applied}`);
    }
    this.snapshot = snapshot;
    this.entries = [];
    this.applied = snapshot.meta.index;
    this.appliedMembership = copyMembership(snapshot.meta.membership);
    this.revision = kv.revision;
    this.records = new Map(kv.records.map(([k, r]) => [k, { ...r }]));
    this.sessions = new Map(kv.sessions.map(([c, s]) => [c, copySession(s)]));
  }

  /** Step 1: append, truncating any conflicting suffix first. */
  appendEntries(entries: Entry[]): void {
    if (entries.length === 0) return;
    for (let i = 1; i < entries.length; i++) {
      if (entries[i]!.index !== entries[i - 1]!.index + 1) {
        violation('ready-entries', `entries not contiguous: ${entries[i - 1]!.index} then ${entries[i]!.index}`);
      }
    }
    const first = entries[0]!.index;
    if (first <= this.snapshotIndex) {
      violation('ready-entries', `entry ${first} would overwrite the snapshot at ${this.snapshotIndex}`);
    }
    if (first > this.lastIndex() + 1) {
      violation('ready-entries', `entry ${first} leaves a gap after last index ${this.lastIndex()}`);
    }
    // Re-writing an identical entry is harmless; replacing a committed one is the lost-commit bug.
    const commitFloor = Math.max(this.applied, this.hardState.commit);
    for (const e of entries) {
      if (e.index > commitFloor) break;
      const existing = this.termAt(e.index);
      if (existing !== undefined && existing !== e.term) {
        violation('committed-overwrite', `entry ${e.index} term ${existing} replaced by term ${e.term} (commit ${commitFloor})`);
      }
    }
    this.entries.length = first - this.snapshotIndex - 1;
    for (const e of entries) this.entries.push(e);
  }

  /** Step 1: save the hard state (the broken modes live here). */
  saveHardState(hs: HardState): void {
    if (this.mode === 'forget-vote') {
      this.hardState = { term: hs.term, vote: '', commit: hs.commit };
      return;
    }
    this.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  /** Step 3: the KV effects of applied entries and the applied index, in one write. */
  saveApplied(changes: KvChanges, applied: number, membership: Membership): void {
    if (applied < this.applied) violation('applied-monotonic', `durable applied ${this.applied} -> ${applied}`);
    this.revision = changes.revision;
    for (const [k, r] of changes.upserts) this.records.set(k, { ...r });
    for (const k of changes.deletes) this.records.delete(k);
    for (const [c, s] of changes.sessionUpserts) this.sessions.set(c, copySession(s));
    for (const c of changes.sessionDeletes) this.sessions.delete(c);
    this.applied = applied;
    this.appliedMembership = copyMembership(membership);
  }

  /** The host's own snapshot of applied state: keep it, drop the log up to it. */
  compact(snapshot: Snapshot): void {
    const index = snapshot.meta.index;
    if (index <= this.snapshotIndex || index > this.applied) {
      violation('host-compact', `compact at ${index} outside (${this.snapshotIndex}, ${this.applied}]`);
    }
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshot = snapshot;
  }

  /**
   * send-before-fsync: remember the Raft state before a Ready's write, so a crash before that
   * write "reached the disk" can lose it. Not used for a Ready that installs a snapshot (the
   * bug modelled is losing appended entries and the hard state, not a whole install).
   */
  private unsynced: { entries: Entry[]; hardState: HardState } | null = null;

  beginReadyWrite(hasSnapshot: boolean): void {
    if (this.mode !== 'send-before-fsync') return;
    this.unsynced = hasSnapshot ? null : { entries: [...this.entries], hardState: { ...this.hardState } };
  }

  /** The Ready's write is durable now (the host is about to apply its committed entries). */
  endReadyWrite(): void {
    this.unsynced = null;
  }

  /** A crash: in send-before-fsync mode, the write still in flight is lost. */
  onCrash(): void {
    if (this.unsynced === null) return;
    this.entries = this.unsynced.entries;
    this.hardState = this.unsynced.hardState;
    this.unsynced = null;
  }

  kvState(): KvState {
    return {
      revision: this.revision,
      records: [...this.records.entries()].sort(byKey).map(([k, r]) => [k, { ...r }]),
      sessions: [...this.sessions.entries()].sort(byKey).map(([c, s]) => [c, copySession(s)]),
    };
  }

  restartState(): RestartState {
    return {
      hardState: { ...this.hardState },
      snapshot: this.snapshot,
      entries: [...this.entries],
      applied: this.applied,
    };
  }
}

function copySession(s: SessionRecord): SessionRecord {
  return { seq: s.seq, lastIndex: s.lastIndex, result: { ...s.result } };
}

function byKey<T>(a: [string, T], b: [string, T]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
