// What the tiered engines' records tests share (test/node/*-records.test.ts): a random run of
// saves (puts, deletes, now and then an inline snapshot install) checked against a reference
// map after each one resolves, and the cases every engine's DiskRecords passes alike
// (sharedDiskCases: views isolated from later saves, a save visible once it resolves). The
// changes they save are in kv-changes.ts, shared with the edge's fixtures.

import { expect, it } from 'vitest';
import type { StorageEngine } from '../../node-runtime/storage/engine.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import type { DiskRecords } from '../../worker/kv/record-store.ts';
import type { KeyRecord } from '../../worker/kv/types.ts';
import { snapshotAt } from './storage-batches.ts';
import { StorageCorruptError } from '../../node-runtime/storage/errors.ts';
import { KEY_POOL, diskDifference, randomChanges, rec } from './disk-check.ts';
import { ABC_AT_1, VIEW_SAVES, VIEW_SHOWS, changes } from './kv-changes.ts';

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

/** Every record's key=value in a walk from the start. */
export const walkAll = (v: { walkFrom: DiskRecords['walkFrom'] }): string[] => {
  const out: string[] = [];
  v.walkFrom('', (k, r) => out.push(`${k}=${r.value}`) > 0);
  return out;
};

/** How a test damages a stored record (a byte of its sealed bytes flipped, the engine closed),
 *  and what the corruption error then names. */
export interface Damage {
  damage(key: string): Promise<void>;
  damaged(key: string): string[];
}

/** Registers, in the caller's describe, the cases every tiered engine's records pass alike. */
export function sharedDiskCases(openDisk: () => Promise<{ engine: StorageEngine; disk: DiskRecords }>, damage: Damage): void {
  it('a view keeps the records as of its opening while saves go on; several views at once', async () => {
    const { engine, disk } = await openDisk();
    await engine.save({ kv: VIEW_SAVES[0] });
    const first = disk.openView();
    await engine.save({ kv: VIEW_SAVES[1] });
    const second = disk.openView();
    await engine.save({ kv: VIEW_SAVES[2] });
    expect(walkAll(first)).toEqual(VIEW_SHOWS.first);
    expect(first.get('a')?.value).toBe('a1');
    expect(first.get('e')).toBeUndefined();
    expect(walkAll(second)).toEqual(VIEW_SHOWS.second);
    expect(second.get('b')).toBeUndefined();
    // A fresh read shows the newest state.
    expect(walkAll(disk)).toEqual(VIEW_SHOWS.live);
    expect(disk.get('a')).toBeUndefined();
    first.close();
    first.close(); // closing twice is harmless
    expect(walkAll(second)).toEqual(VIEW_SHOWS.second); // the other view is unaffected
    expect(() => first.get('a')).toThrow();
    await engine.close(); // closes the view left open
    expect(() => second.get('a')).toThrow();
    expect(() => disk.get('a')).toThrow();
  });

  it('a save is visible through the disk as soon as it resolves, one by one and in concurrent groups', async () => {
    const { engine, disk } = await openDisk();
    for (let i = 1; i <= 30; i++) {
      await engine.save({ kv: changes(i, [['k', rec(`v${i}`, i, 1, i)]]) });
      expect(disk.get('k')?.value).toBe(`v${i}`);
    }
    const seen: string[] = [];
    await Promise.all(
      Array.from({ length: 200 }, (_, j) => {
        const i = 31 + j;
        return engine.save({ kv: changes(i, [[`c/${j}`, rec(`w${i}`, i)]]) }).then(() => {
          seen.push(disk.get(`c/${j}`)?.value ?? 'missing');
        });
      }),
    );
    expect(seen.sort()).toEqual(Array.from({ length: 200 }, (_, j) => `w${31 + j}`).sort());
    expect(engine.stats().syncs).toBeLessThan(engine.stats().batches); // some saves did share a group
    await engine.close();
  });

  it('a damaged record is caught when it is read (naming it), not at open', async () => {
    const { engine, disk } = await openDisk();
    await engine.save({
      kv: {
        ...changes(1, [
          ['good', rec('fine', 1)],
          ['bad\ue000', rec('damaged-soon', 1)],
          ['zed', rec('z', 1)],
        ]),
        summary: { records: 3, internalRecords: 0, bytes: 30 },
      },
    });
    expect(disk.get('bad\ue000')?.value).toBe('damaged-soon');
    await engine.close();
    await damage.damage('bad\ue000');

    const again = await openDisk(); // opens: the records are not read at open
    expect(again.disk.get('good')?.value).toBe('fine');
    const err = (() => {
      try {
        again.disk.get('bad\ue000');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(StorageCorruptError);
    for (const part of damage.damaged('bad\ue000')) expect((err as Error).message).toContain(part);
    expect(() => again.disk.walkFrom('', () => true)).toThrow(StorageCorruptError);
    expect(again.disk.get('zed')?.value).toBe('z'); // the walk that threw left the reader usable
    await again.engine.close();
  });

  it('a walk stopped early, broken by a throw or nested in a visit holds nothing back: later saves are seen', async () => {
    const { engine, disk } = await openDisk();
    await engine.save({ kv: ABC_AT_1 });
    let visited = 0;
    disk.walkFrom('', () => ++visited < 2); // stops on the second record
    expect(visited).toBe(2);
    await engine.save({ kv: changes(2, [['a', rec('a2', 2, 1, 2)]]) });
    expect(disk.get('a')?.value).toBe('a2');
    expect(() =>
      disk.walkFrom('', () => {
        throw new Error('visit failed');
      }),
    ).toThrow('visit failed');
    await engine.save({ kv: changes(3, [['a', rec('a3', 3, 1, 3)]]) });
    expect(disk.get('a')?.value).toBe('a3');
    disk.walkFrom('b', () => true); // to the end
    await engine.save({ kv: changes(4, [['a', rec('a4', 4, 1, 4)]]) });
    expect(disk.get('a')?.value).toBe('a4');
    expect(walkAll(disk)).toEqual(['a=a4', 'b=b1', 'c=c1']);
    // A walk inside a walk's visit has a cursor of its own: both run to their end.
    const outer: string[] = [];
    const inner: string[] = [];
    disk.walkFrom('', (k) => {
      outer.push(k);
      if (k === 'a') disk.walkFrom('b', (k2) => inner.push(k2) > 0);
      return true;
    });
    expect([outer, inner]).toEqual([
      ['a', 'b', 'c'],
      ['b', 'c'],
    ]);
    await engine.close();
  });
}
