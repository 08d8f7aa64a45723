// Checks each SaveBatch against the shape of the stored log before it is queued, so a bug in
// the caller is refused with a clear error instead of leaving a gap or rewriting compacted
// history on disk. Batches are checked in submission order, which is also write order, so the
// bounds here are always those the batch will meet when written.

import type { SaveBatch } from '../../worker/peer/ports.ts';
import { SaveRejectedError } from './errors.ts';

export class LogBounds {
  /** Index covered by the latest snapshot (0 when none). */
  snapshotIndex: number;
  /** Index of the last stored entry, or snapshotIndex when the log is empty. */
  lastIndex: number;
  applied: number;

  constructor(snapshotIndex: number, lastIndex: number, applied: number) {
    this.snapshotIndex = snapshotIndex;
    this.lastIndex = lastIndex;
    this.applied = applied;
  }

  /** Throws SaveRejectedError when `b` is malformed; otherwise advances the bounds past it. */
  admit(b: SaveBatch): void {
    let snap = this.snapshotIndex;
    let last = this.lastIndex;
    let applied = this.applied;
    if (b.installSnapshot) {
      snap = last = applied = b.installSnapshot.snapshot.meta.index;
    }
    if (b.compact) {
      const i = b.compact.meta.index;
      if (i < snap || i > last) {
        throw new SaveRejectedError(`compact to ${i} outside the stored log [${snap}, ${last}]`);
      }
      // The batch is atomic, so the applied index it carries already counts (a peer compacts at
      // the index it is applying in the same batch).
      const appliedAfter = Math.max(applied, b.applied ?? 0);
      if (i > appliedAfter) throw new SaveRejectedError(`compact to ${i} beyond applied index ${appliedAfter}`);
      snap = i;
    }
    if (b.entries && b.entries.length > 0) {
      const first = b.entries[0]!.index;
      if (first <= snap || first > last + 1) {
        throw new SaveRejectedError(`entries start at ${first}; the log accepts (${snap}, ${last + 1}]`);
      }
      if (first <= applied) {
        throw new SaveRejectedError(`entries at ${first} would replace applied entries (applied ${applied})`);
      }
      for (let k = 1; k < b.entries.length; k++) {
        if (b.entries[k]!.index !== first + k) {
          throw new SaveRejectedError(`entries not contiguous at position ${k} (index ${b.entries[k]!.index})`);
        }
      }
      last = first + b.entries.length - 1;
    }
    if (b.applied !== undefined) {
      if (!Number.isSafeInteger(b.applied) || b.applied < applied || b.applied > last) {
        throw new SaveRejectedError(`applied ${b.applied} outside [${applied}, ${last}]`);
      }
      applied = b.applied;
    }
    this.snapshotIndex = snap;
    this.lastIndex = last;
    this.applied = applied;
  }
}
