// The numbered batches the kill -9 child writes, and the check that a reloaded state holds
// exactly batches 1..n for some n (a prefix: never a hole, never a half-applied batch).

import type { LoadedState, SaveBatch } from '../../worker/peer/ports.ts';
import { entry, snapshotAt } from '../support/storage-batches.ts';

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

/** Returns n such that `s` is exactly batches 1..n applied; throws describing any deviation. */
export function prefixLength(s: LoadedState): number {
  const n = s.applied;
  const problems: string[] = [];
  if (s.hardState.commit !== n) problems.push(`commit ${s.hardState.commit} != applied ${n}`);
  if (s.kv.revision !== n) problems.push(`revision ${s.kv.revision} != applied ${n}`);
  const last = s.entries.length > 0 ? s.entries[s.entries.length - 1]!.index : s.snapshot.meta.index;
  if (last !== n) problems.push(`last entry ${last} != applied ${n}`);
  s.entries.forEach((e, k) => {
    const want = entry(e.index, 1, `payload-${e.index}-${'x'.repeat(e.index % 200)}`);
    if (e.index !== s.snapshot.meta.index + 1 + k || Buffer.compare(Buffer.from(e.data), Buffer.from(want.data)) !== 0) {
      problems.push(`entry at position ${k} is ${e.index}`);
    }
  });
  const keys = new Map(s.kv.records);
  for (let i = 1; i <= n; i++) if (keys.get(`k${i}`)?.value !== `value-${i}`) problems.push(`k${i} missing`);
  if (keys.size !== n) problems.push(`${keys.size} keys for ${n} batches`);
  const expectedSnap = Math.floor(n / 50) * 50 - 25;
  if (s.snapshot.meta.index !== Math.max(0, expectedSnap)) problems.push(`snapshot at ${s.snapshot.meta.index}`);
  if (problems.length > 0) throw new Error(`state is not a prefix of the batches: ${problems.slice(0, 5).join('; ')}`);
  return n;
}
