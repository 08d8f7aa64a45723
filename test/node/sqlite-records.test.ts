// The sqlite engine's records as DiskRecords (sqlite-records.ts), on a real database: get,
// walkFrom and changedSince against a reference map after random batches (the checker is shown
// to catch planted bugs), a view's isolation from later saves, visibility of a save once it
// resolves, walks stopped early or broken by a throw leaving no read transaction behind (shown
// to matter: an iteration left open pins the connection to its snapshot), and a damaged
// record's seal caught when that record is read, not at open.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SqliteEngine } from '../../node-runtime/storage/sqlite-engine.ts';
import { SQLITE_FILE } from '../../node-runtime/storage/sqlite-schema.ts';
import { encodeKey } from '../../node-runtime/storage/sqlite-key.ts';
import { CHANGED_SQL, WALK_SQL, type SqliteRecords } from '../../node-runtime/storage/sqlite-records.ts';
import { StorageCorruptError } from '../../node-runtime/storage/errors.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import type { DiskRecords } from '../../worker/kv/record-store.ts';
import type { KeyRecord } from '../../worker/kv/types.ts';
import { KEY_POOL, diskDifference, rec } from '../support/disk-check.ts';
import { ABC_AT_1, changes, randomRun } from '../support/engine-records.ts';

let dir: string;
let file: string;
const open = () => SqliteEngine.open({ dir, log: silentLogger });

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'metcd-sqlite-records-'));
  file = path.join(dir, SQLITE_FILE);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function openDisk(): Promise<{ engine: SqliteEngine; disk: DiskRecords }> {
  const engine = await open();
  const loaded = await engine.load();
  expect(loaded.kv.records).toEqual([]); // the records stay on disk
  return { engine, disk: loaded.tier!.disk };
}

describe('sqlite records (DiskRecords)', () => {
  it('get, walkFrom and changedSince match a reference map after random batches, and after a reopen', async () => {
    const { engine, disk } = await openDisk();
    const ref = new Map<string, KeyRecord>();
    const revision = await randomRun(engine, disk, ref, 7, 150);
    expect(ref.size).toBeGreaterThan(0);
    // The read off the loop (the reader thread: a client read's prefetch) agrees with get,
    // and still answers, on the loop, once that thread is gone.
    await engine.offLoopStarted();
    for (const k of KEY_POOL) expect(await disk.getAsync!(k), k).toEqual(ref.get(k));
    expect((disk as SqliteRecords).readsOffLoop).toBe(KEY_POOL.length);
    await (disk as SqliteRecords).terminateOffLoopForTest();
    for (const k of KEY_POOL) expect(await disk.getAsync!(k), `${k} without the thread`).toEqual(ref.get(k));
    await engine.close();
    const again = await openDisk();
    expect(diskDifference(again.disk, ref, revision)).toBeNull();
    await again.engine.close();
  });

  it('the checker catches a walk that skips the first key >= from, a wrong changedSince bound, and a stale get', async () => {
    const { engine, disk } = await openDisk();
    const ref = new Map<string, KeyRecord>();
    const revision = await randomRun(engine, disk, ref, 8, 40);
    expect(diskDifference(disk, ref, revision)).toBeNull();
    const skipsFirst: DiskRecords = {
      ...disk,
      get: (k) => disk.get(k),
      walkFrom: (from, visit) => {
        let first = true;
        disk.walkFrom(from, (k, r) => {
          if (first) {
            first = false;
            return true;
          }
          return visit(k, r);
        });
      },
      changedSince: (rev, visit) => disk.changedSince(rev, visit),
    };
    expect(diskDifference(skipsFirst, ref, revision)).toMatch(/^walkFrom/);
    const strictSince: DiskRecords = {
      ...skipsFirst,
      walkFrom: (f, v) => disk.walkFrom(f, v),
      changedSince: (rev, v) => disk.changedSince(rev + 1, v),
    };
    expect(diskDifference(strictSince, ref, revision)).toMatch(/^changedSince/);
    const [someKey, someRec] = [...ref][0]!;
    const stale: DiskRecords = {
      ...strictSince,
      changedSince: (rev, v) => disk.changedSince(rev, v),
      get: (k) => (k === someKey ? { ...someRec, version: someRec.version + 1 } : disk.get(k)),
    };
    expect(diskDifference(stale, ref, revision)).toMatch(/^get/);
    await engine.close();
  });

  it('a view keeps the records as of its opening while saves go on; several views at once', async () => {
    const { engine, disk } = await openDisk();
    await engine.save({ kv: ABC_AT_1 });
    const first = disk.openView();
    await engine.save({
      kv: changes(
        2,
        [
          ['a', rec('a2', 2, 1, 2)],
          ['d', rec('d2', 2)],
        ],
        ['b'],
      ),
    });
    const second = disk.openView();
    await engine.save({ kv: changes(3, [['e', rec('e3', 3)]], ['a', 'c']) });
    const walk = (v: { walkFrom: DiskRecords['walkFrom'] }): string[] => {
      const out: string[] = [];
      v.walkFrom('', (k, r) => out.push(`${k}=${r.value}`) > 0);
      return out;
    };
    expect(walk(first)).toEqual(['a=a1', 'b=b1', 'c=c1']);
    expect(first.get('a')?.value).toBe('a1');
    expect(first.get('e')).toBeUndefined();
    expect(walk(second)).toEqual(['a=a2', 'c=c1', 'd=d2']);
    expect(second.get('b')).toBeUndefined();
    // A fresh read shows the newest state.
    expect(walk(disk)).toEqual(['d=d2', 'e=e3']);
    expect(disk.get('a')).toBeUndefined();
    first.close();
    first.close(); // closing twice is harmless
    expect(walk(second)).toEqual(['a=a2', 'c=c1', 'd=d2']); // the other view is unaffected
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

  it('a walk stopped early or broken by a throw leaves no read transaction: later commits are seen', async () => {
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
    // A walk inside a walk's visit has a statement of its own: both run to their end.
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

  it('(why the reset matters) an iteration left open on a read connection keeps it on that snapshot', async () => {
    const { engine } = await openDisk();
    await engine.save({
      kv: changes(1, [
        ['a', rec('a1', 1)],
        ['b', rec('b1', 1)],
      ]),
    });
    const db = new DatabaseSync(file, { readOnly: true });
    const get = db.prepare('SELECT rec FROM records WHERE k = ?');
    const rows = db.prepare('SELECT k FROM records ORDER BY k').iterate();
    rows.next(); // stopped after one row, without return()
    const before = get.get(encodeKey('a'));
    await engine.save({ kv: changes(2, [['a', rec('a2-longer-value', 2, 1, 2)]]) });
    expect(get.get(encodeKey('a'))).toEqual(before); // the new commit is invisible
    rows.return!();
    expect(get.get(encodeKey('a'))).not.toEqual(before);
    db.close();
    await engine.close();
  });

  it('walks and changedSince are served by indexes, not scans or sorts', async () => {
    const { engine } = await openDisk();
    await engine.close();
    const db = new DatabaseSync(file, { readOnly: true });
    const plan = (sql: string, arg: Uint8Array | number) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(arg) as Array<{ detail: string }>).map((r) => r.detail).join('; ');
    expect(plan(WALK_SQL, encodeKey('a'))).toBe('SEARCH records USING PRIMARY KEY (k>?)');
    expect(plan(CHANGED_SQL, 5)).toBe('SEARCH records USING COVERING INDEX records_mod (mod>?)');
    db.close();
  });

  it('a damaged record is caught when it is read (naming table and key), not at open', async () => {
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
    const db = new DatabaseSync(file);
    const row = db.prepare('SELECT rec FROM records WHERE k = ?').get(encodeKey('bad\ue000')) as { rec: Uint8Array };
    const flipped = Buffer.from(row.rec);
    flipped[flipped.length - 3]! ^= 0x20;
    db.prepare('UPDATE records SET rec = ? WHERE k = ?').run(flipped, encodeKey('bad\ue000'));
    db.close();

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
    expect((err as Error).message).toContain(`table records row ${JSON.stringify('bad\ue000')}`);
    expect((err as Error).message).toContain('checksum mismatch');
    expect(() => again.disk.walkFrom('', () => true)).toThrow(StorageCorruptError);
    expect(again.disk.get('zed')?.value).toBe('z'); // the walk that threw left the connection usable
    await again.engine.close();
  });
});
