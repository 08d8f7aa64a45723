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
import { SQLITE_READER_THREADS } from '../../node-runtime/storage/sqlite-reader-pool.ts';
import { CHANGED_SQL, WALK_SQL, type SqliteRecords } from '../../node-runtime/storage/sqlite-records.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import type { DiskRecords } from '../../worker/kv/record-store.ts';
import type { KeyRecord } from '../../worker/kv/types.ts';
import { KEY_POOL, diskDifference, rec } from '../support/disk-check.ts';
import { randomRun, sharedDiskCases } from '../support/engine-records.ts';
import { changes } from '../support/kv-changes.ts';

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
    // The read off the loop (the reader threads: a client read's prefetch) agrees with get.
    // Reads one at a time keep to the first thread; reads all at once add threads up to the
    // pool's size and are spread over them; and they are still answered once one thread is
    // gone (by the others), and once all are (on the loop).
    const records = disk as SqliteRecords;
    await engine.offLoopStarted();
    const pool = records.offLoopPool!;
    /** Reads the reader threads answered, all of them. */
    const readsOffLoop = () => pool.answeredPerThread.reduce((a, b) => a + b, 0);
    for (const k of KEY_POOL) expect(await disk.getAsync!(k), k).toEqual(ref.get(k));
    await pool.settled();
    expect(pool.threadsUp).toBe(1);
    expect(readsOffLoop()).toBe(KEY_POOL.length);
    const allAtOnce = async (what: string): Promise<void> => {
      const got = await Promise.all(KEY_POOL.map((k) => disk.getAsync!(k)));
      KEY_POOL.forEach((k, i) => expect(got[i], `${k} ${what}`).toEqual(ref.get(k)));
      await pool.settled();
    };
    for (let burst = 1; burst < SQLITE_READER_THREADS; burst++) {
      await allAtOnce(`in burst ${burst}`);
      expect(pool.threadsUp).toBe(1 + burst); // one thread starts at a time
    }
    const before = pool.answeredPerThread;
    await allAtOnce('with every thread');
    expect(pool.threadsUp).toBe(SQLITE_READER_THREADS);
    expect(readsOffLoop()).toBe((1 + SQLITE_READER_THREADS) * KEY_POOL.length);
    const share = Math.floor(KEY_POOL.length / SQLITE_READER_THREADS);
    pool.answeredPerThread.forEach((n, i) => expect(n - before[i]!, `thread ${i}`).toBeGreaterThanOrEqual(share));
    await pool.terminateForTest(0);
    expect(pool.threadsUp).toBe(SQLITE_READER_THREADS - 1);
    await allAtOnce('with a thread gone');
    expect(pool.threadsUp).toBe(SQLITE_READER_THREADS - 1); // not replaced
    expect(readsOffLoop()).toBe((2 + SQLITE_READER_THREADS) * KEY_POOL.length);
    await pool.terminateForTest();
    expect(pool.threadsUp).toBe(0);
    await allAtOnce('without the threads');
    expect(readsOffLoop()).toBe((2 + SQLITE_READER_THREADS) * KEY_POOL.length);
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

  sharedDiskCases(openDisk, {
    damage: (key) => {
      const db = new DatabaseSync(file);
      const row = db.prepare('SELECT rec FROM records WHERE k = ?').get(encodeKey(key)) as { rec: Uint8Array };
      const flipped = Buffer.from(row.rec);
      flipped[flipped.length - 3]! ^= 0x20;
      db.prepare('UPDATE records SET rec = ? WHERE k = ?').run(flipped, encodeKey(key));
      db.close();
      return Promise.resolve();
    },
    damaged: (key) => [`table records row ${JSON.stringify(key)}`, 'checksum mismatch'],
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
});
