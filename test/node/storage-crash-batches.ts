// The numbered batches the kill -9 child writes, and the check that a reloaded state holds
// exactly batches 1..n for some n (a prefix: never a hole, never a half-applied batch).

import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import { StateModel } from '../../node-runtime/storage/state-model.ts';
import { entry, snapshotAt, stateDifference } from '../support/storage-batches.ts';

/** Batch i: log entry i, commit i, key k<i> applied at revision i; every 50th compacts. */
export function numberedBatch(i: number): SaveBatch {
  return {
    ...(i % 50 === 0 ? { compact: snapshotAt(i - 25, 1) } : {}),
    entries: [entry(i, 1, `payload-${i}-${'x'.repeat(i % 200)}`)],
    hardState: { term: 1, vote: 'n1', commit: i },
    kv: {
      revision: i,
      upserts: [[`k${i}`, { value: `value-${i}`, createRevision: i, modRevision: i, version: 1 }]],
      deletes: [],
      sessionUpserts: [['writer', { seq: i, lastIndex: i, result: { ok: true, op: 'put', revision: i } }]],
      sessionDeletes: [],
    },
    applied: i,
  };
}

/** Returns n such that `s` is exactly batches 1..n applied (as the reference StateModel
 *  applies them, with the engine's identity meta); throws describing any deviation. */
export function prefixLength(s: LoadedState): number {
  const n = s.applied; // batch i sets applied to i
  const model = new StateModel();
  for (const [k, v] of Object.entries(s.meta)) model.meta.set(k, v);
  for (let i = 1; i <= n; i++) model.apply(numberedBatch(i));
  const diff = stateDifference(s, model.toLoaded());
  if (diff !== null) throw new Error(`state is not batches 1..${n}: ${diff}`);
  return n;
}
