// What the tiered engines' records tests share (test/node/*-records.test.ts): KV changes to
// save, and a random run of saves (puts, deletes, now and then an inline snapshot install)
// checked against a reference map after each one resolves.

import type { StorageEngine } from '../../node-runtime/storage/engine.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import type { DiskRecords } from '../../worker/kv/record-store.ts';
import type { KeyRecord, KvChanges } from '../../worker/kv/types.ts';
import { snapshotAt } from './storage-batches.ts';
import { KEY_POOL, diskDifference, randomChanges, rec } from './disk-check.ts';

export function changes(revision: number, upserts: Array<[string, KeyRecord]>, deletes: string[] = []): KvChanges {
  return { revision, upserts, deletes, sessionUpserts: [], sessionDeletes: [] };
}

/** Three records written at revision 1, the start of several tests. */
export const ABC_AT_1 = changes(1, [
  ['a', rec('a1', 1)],
  ['b', rec('b1', 1)],
  ['c', rec('c1', 1)],
]);

/** Random batches (puts, deletes, now and then a snapshot install replacing every record),
 *  each saved and checked against the reference once it resolves. With `replaced`, each batch
 *  says what it replaces (KvChanges.replaced), as the state machine does. */
export async function randomRun(
  engine: StorageEngine,
  disk: DiskRecords,
  ref: Map<string, KeyRecord>,
  seed: number,
  batches: number,
  opts: { replaced?: boolean } = {},
): Promise<number> {
  const rnd = new SeededRandom(seed);
  let revision = 0;
  let snapIndex = 0;
  for (let b = 0; b < batches; b++) {
    revision++;
    const pick = () => KEY_POOL[rnd.nextInt(KEY_POOL.length)]!;
    if (rnd.nextInt(10) === 0) {
      ref.clear();
      for (let n = rnd.nextInt(8); n > 0; n--) ref.set(pick(), rec(`snap-${revision}-${n}`, 1 + rnd.nextInt(revision)));
      snapIndex += 1 + rnd.nextInt(5);
      await engine.save({ installSnapshot: { snapshot: snapshotAt(snapIndex, 1), kv: { revision, records: [...ref], sessions: [] } } });
    } else {
      const before = new Map(ref);
      const { upserts, deletes } = randomChanges(rnd, ref, revision, pick);
      const kv = changes(revision, upserts, deletes);
      if (opts.replaced === true) {
        const keys = [...upserts.map(([k]) => k), ...deletes].filter((k) => before.has(k));
        kv.replaced = keys.map((k) => [k, before.get(k)!.modRevision]);
      }
      await engine.save({ kv });
    }
    const diff = diskDifference(disk, ref, revision);
    if (diff !== null) throw new Error(`after batch ${b}: ${diff}`);
  }
  return revision;
}
