// KV changes the storage tests save, as plain data (no test framework, nothing of Node): the
// Node engines' records tests (engine-records.ts) and the edge's records fixtures
// (test/edge/fixtures/records-cases.ts, run inside workerd) save the same ones.

import type { KeyRecord, KvChanges } from '../../worker/kv/types.ts';
import { rec } from './disk-check.ts';

export function changes(revision: number, upserts: Array<[string, KeyRecord]>, deletes: string[] = []): KvChanges {
  return { revision, upserts, deletes, sessionUpserts: [], sessionDeletes: [] };
}

/** Three records written at revision 1, the start of several tests. */
export const ABC_AT_1 = changes(1, [
  ['a', rec('a1', 1)],
  ['b', rec('b1', 1)],
  ['c', rec('c1', 1)],
]);

/** The views case every tiered DiskRecords passes: a view opened after each of the first two
 *  saves, then a third save. */
export const VIEW_SAVES: readonly [KvChanges, KvChanges, KvChanges] = [
  ABC_AT_1,
  changes(
    2,
    [
      ['a', rec('a2', 2, 1, 2)],
      ['d', rec('d2', 2)],
    ],
    ['b'],
  ),
  changes(3, [['e', rec('e3', 3)]], ['a', 'c']),
];

/** What a walk shows (`key=value`) after VIEW_SAVES: the view opened after the first save, the
 *  one opened after the second, and the disk itself. */
export const VIEW_SHOWS = {
  first: ['a=a1', 'b=b1', 'c=c1'],
  second: ['a=a2', 'c=c1', 'd=d2'],
  live: ['d=d2', 'e=e3'],
} as const;
