// The in-memory Raft log: a snapshot base followed by the entries after it.
//
// The core keeps every entry since the latest snapshot in memory (the host compacts), so it
// never reads storage. "Unstable" entries are those not yet handed to the host in a Ready;
// the host persists a Ready before acting on it, so everything before `unstableFrom` is (or is
// about to be) durable.

import { invariant } from './assert.ts';
import type { Entry, Snapshot } from './types.ts';

/** Bytes an entry costs in an append or Ready batch: its data plus fixed framing. */
export const ENTRY_OVERHEAD_BYTES = 16;

export class RaftLog {
  /** Index and term of the last entry folded into the snapshot (0/0 for a fresh log). */
  snapshotIndex: number;
  snapshotTerm: number;
  /** entries[i].index === snapshotIndex + 1 + i. */
  entries: Entry[];
  /** Highest index known committed. Never decreases. */
  committed: number;
  /** Highest index the host has applied (as of the last advance). */
  applied: number;
  /** First index not yet handed to the host in a Ready. */
  unstableFrom: number;
  /**
   * Highest index the host has confirmed durable (advance() of the Ready that carried it),
   * for the entries now in the log: a truncation or a snapshot install lowers it. Between
   * ready() and advance(), entries below unstableFrom may be above it (being written).
   */
  persisted: number;
  /** A snapshot received from the leader, installed here, not yet handed to the host. */
  pendingSnapshot: Snapshot | null = null;

  constructor(snapshotIndex: number, snapshotTerm: number, entries: Entry[], committed: number, applied: number) {
    this.snapshotIndex = snapshotIndex;
    this.snapshotTerm = snapshotTerm;
    this.entries = entries.slice();
    for (let i = 0; i < this.entries.length; i++) {
      invariant(this.entries[i]!.index === snapshotIndex + 1 + i, 'restart entries are contiguous after the snapshot');
    }
    this.committed = committed;
    this.applied = applied;
    this.unstableFrom = this.lastIndex() + 1;
    this.persisted = this.lastIndex();
    invariant(applied <= committed && committed <= this.lastIndex(), 'restart: applied <= commit <= last index');
  }

  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  lastTerm(): number {
    const n = this.entries.length;
    return n === 0 ? this.snapshotTerm : this.entries[n - 1]!.term;
  }

  /** Term of the entry at `index`, or undefined when compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    const e = this.entries[index - this.snapshotIndex - 1];
    return e === undefined ? undefined : e.term;
  }

  entry(index: number): Entry | undefined {
    return index > this.snapshotIndex ? this.entries[index - this.snapshotIndex - 1] : undefined;
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Entries lo..hi (inclusive) within the log, cut once their cost exceeds bytesMax (at least
   * one entry is returned when lo <= hi, so a single entry up to the limit always moves).
   */
  slice(lo: number, hi: number, bytesMax: number): Entry[] {
    invariant(lo > this.snapshotIndex && hi <= this.lastIndex(), 'slice within the log');
    if (lo > hi) return [];
    const start = lo - this.snapshotIndex - 1;
    const end = hi - this.snapshotIndex; // exclusive
    let bytes = 0;
    let i = start;
    for (; i < end; i++) {
      bytes += this.entries[i]!.data.length + ENTRY_OVERHEAD_BYTES;
      if (bytes > bytesMax && i > start) break;
    }
    return this.entries.slice(start, i);
  }

  /** Leader: append new entries at the end. */
  append(entries: Entry[]): void {
    for (const e of entries) {
      invariant(e.index === this.lastIndex() + 1, 'appended entries are contiguous');
      this.entries.push(e);
    }
  }

  /**
   * First index in `entries` whose term differs from ours (or that we do not have), or 0 when
   * we already hold them all. Etcd's findConflict.
   */
  findConflict(entries: Entry[]): number {
    for (const e of entries) {
      if (this.term(e.index) !== e.term) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term` (etcd's findConflictByTerm), for the
   * fast-backtracking hint. Stops at the snapshot base, whose term is all we know below it.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (; i > this.snapshotIndex; i--) {
      const t = this.entries[i - this.snapshotIndex - 1]!.term;
      if (t <= term) return { index: i, term: t };
    }
    return { index: i, term: i === this.snapshotIndex ? this.snapshotTerm : 0 };
  }

  /** Drop `index` and everything after it. Only uncommitted entries may go. */
  truncateFrom(index: number): void {
    invariant(index > this.committed, 'never truncate committed entries');
    if (index > this.lastIndex()) return;
    this.entries.length = index - this.snapshotIndex - 1;
    if (this.unstableFrom > index) this.unstableFrom = index;
    if (this.persisted >= index) this.persisted = index - 1;
  }

  /**
   * The host made entries up to (index, term) durable. Ignored when that entry is no longer in
   * the log (a truncation replaced it while the write was out): by log matching, an entry still
   * there with the same term means everything before it is what was written.
   */
  stableTo(index: number, term: number): void {
    if (index > this.persisted && this.term(index) === term) this.persisted = index;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    invariant(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Install a snapshot from the leader: the log restarts after it. */
  restore(snapshot: Snapshot): void {
    invariant(snapshot.meta.index > this.committed, 'restore only moves forward');
    const previousCommit = this.committed;
    this.snapshotIndex = snapshot.meta.index;
    this.snapshotTerm = snapshot.meta.term;
    this.entries = [];
    this.committed = snapshot.meta.index;
    this.unstableFrom = snapshot.meta.index + 1;
    // What is durable is the old log, which this snapshot replaces: nothing counts until the
    // snapshot itself is written (stableTo at its index).
    this.persisted = Math.min(this.persisted, previousCommit);
    this.pendingSnapshot = snapshot;
  }

  /** The host snapshotted applied state at `index`: drop the entries up to it. */
  compact(index: number): void {
    invariant(index > this.snapshotIndex && index <= this.applied, 'compact within applied entries');
    invariant(index < this.unstableFrom, 'compact only persisted entries');
    const term = this.term(index)!;
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }

  unstableEntries(): Entry[] {
    const last = this.lastIndex();
    if (this.unstableFrom > last) return [];
    return this.entries.slice(this.unstableFrom - this.snapshotIndex - 1);
  }

  /** Committed entries the host has not applied yet, bounded by bytes. */
  nextCommitted(bytesMax: number): Entry[] {
    const lo = Math.max(this.applied, this.snapshotIndex) + 1;
    if (lo > this.committed) return [];
    return this.slice(lo, this.committed, bytesMax);
  }

  hasNextCommitted(): boolean {
    return Math.max(this.applied, this.snapshotIndex) < this.committed;
  }
}
