// The sqlite engine's writer thread: commits happen off the event loop, a writer thread that
// dies or fails never acknowledges a save (that save and every later one are rejected), and
// the snapshot lives in its own table (data dirs that kept it in `state` still load).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SqliteEngine } from '../../node-runtime/storage/sqlite-engine.ts';
import { SQLITE_FILE } from '../../node-runtime/storage/sqlite-schema.ts';
import { WriterThread } from '../../node-runtime/storage/sqlite-writer-client.ts';
import { encodeGroup } from '../../node-runtime/storage/sqlite-ops-encode.ts';
import { StorageFailedError } from '../../node-runtime/storage/errors.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import { entry, snapshotAt } from '../support/storage-batches.ts';

let dir: string;
let file: string;
const open = () => SqliteEngine.open({ dir, log: silentLogger });
/** The engine's writer thread (private: tests reach it to crash it). */
const writerOf = (e: SqliteEngine) => (e as unknown as { writer: WriterThread }).writer;
const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 5));

/** Holds SQLite's write lock from another connection, so the writer thread waits inside BEGIN. */
function holdWriteLock(): { release: () => void } {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA busy_timeout = 0; BEGIN IMMEDIATE');
  return {
    release: () => {
      db.exec('ROLLBACK');
      db.close();
    },
  };
}

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'metcd-sqlite-writer-'));
  file = path.join(dir, SQLITE_FILE);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('sqlite writer thread', () => {
  it('opens while another connection briefly holds the database locked (the lock wait is set before the WAL pragma)', async () => {
    // What a closing connection does for a moment (the last one checkpoints and removes the WAL
    // under an exclusive lock); the storage contract's reopen cases met it as a rare "database
    // is locked" at open. Here a connection holds an exclusive lock for 300 ms while the writer
    // thread opens: the thread must wait for it, not fail.
    const s = await open();
    await s.close();
    const db = new DatabaseSync(file);
    db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN IMMEDIATE; COMMIT');
    db.prepare('SELECT COUNT(*) FROM log').get();
    const released = new Promise<void>((resolve) =>
      setTimeout(() => {
        db.close();
        resolve();
      }, 300),
    );
    const writer = await WriterThread.start(file);
    await released;
    await writer.close();
  });

  it('commits off the event loop: a commit that waits leaves the loop turning and its save pending', async () => {
    const s = await open();
    await s.load();
    await s.save({ entries: [entry(1, 1)] });
    const lock = holdWriteLock();
    let acked = false;
    const saving = s.save({ entries: [entry(2, 1)] }).then(() => {
      acked = true;
    });
    let turns = 0;
    for (; turns < 20; turns++) await turn(); // timers fire while the writer waits for the lock
    expect(turns).toBe(20);
    expect(acked).toBe(false);
    lock.release();
    await saving;
    expect(acked).toBe(true);
    await s.close();
    const again = await open();
    expect((await again.load()).entries).toEqual([entry(1, 1), entry(2, 1)]);
    await again.close();
  });

  it('a writer thread that dies with a save in flight rejects it and every later save', async () => {
    const s = await open();
    await s.load();
    await s.save({ entries: [entry(1, 1)] });
    const lock = holdWriteLock();
    const outcome = s.save({ entries: [entry(2, 1)] }).then(
      () => 'acknowledged',
      (err: unknown) => err,
    );
    await turn(); // the group is posted; the thread waits for the lock
    const exited = writerOf(s).terminateForTest();
    lock.release();
    await exited;
    const err = await outcome;
    expect(err).toBeInstanceOf(StorageFailedError);
    expect((err as Error).message).toContain(file);
    await expect(s.save({ entries: [entry(3, 1)] })).rejects.toBeInstanceOf(StorageFailedError);
    await s.close();
    const again = await open(); // whatever reached the disk is a consistent store
    expect((await again.load()).entries.map((e) => e.index)).toEqual(expect.arrayContaining([1]));
    await again.close();
  });

  it('a group the thread cannot write is rolled back and rejected, and so is every later write', async () => {
    const s = await open();
    await s.load();
    await s.save({ entries: [entry(1, 1)] });
    await s.close();
    const w = await WriterThread.start(file);
    // Operation 1 empties the log, kv and sessions; operation 200 does not exist.
    const err = await w.write(new Uint8Array([1, 200])).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageFailedError);
    expect((err as Error).message).toContain(`sqlite write to ${file} failed`);
    expect((err as Error).message).toContain('unknown operation 200');
    await expect(w.write(encodeGroup([{ entries: [entry(2, 1)] }]))).rejects.toBeInstanceOf(StorageFailedError);
    await w.close();
    const again = await open();
    expect((await again.load()).entries).toEqual([entry(1, 1)]); // the emptying was rolled back
    await again.close();
  });

  it('stores a snapshot larger than the buffer pool (handed over without a copy, sealed by the thread)', async () => {
    const s = await open();
    await s.load();
    await s.save({ entries: [1, 2, 3].map((i) => entry(i, 1)), applied: 3 });
    const big = snapshotAt(3, 1);
    big.data = Uint8Array.from({ length: 4 * Buffer.poolSize + 123 }, (_, i) => (i * 7) & 0xff);
    await s.save({ compact: big, entries: [entry(4, 1)] });
    await s.close();
    const again = await open();
    const st = await again.load(); // every value's seal is verified on load
    expect([st.snapshot, st.entries]).toEqual([big, [entry(4, 1)]]);
    await again.close();
  });

  it('loads a snapshot kept in the state table (older data dirs) and moves it at the next compaction', async () => {
    const s = await open();
    await s.load();
    await s.save({ entries: [1, 2, 3].map((i) => entry(i, 1)), applied: 3 });
    await s.save({ compact: snapshotAt(2, 1) });
    await s.close();
    const db = new DatabaseSync(file);
    db.exec("INSERT INTO state (name, value) SELECT 'snapshot', value FROM snapshot; DELETE FROM snapshot;");
    db.close();

    const old = await open();
    expect((await old.load()).snapshot).toEqual(snapshotAt(2, 1));
    await old.save({ compact: snapshotAt(3, 1) });
    await old.close();
    const check = new DatabaseSync(file);
    expect(check.prepare("SELECT count(*) AS n FROM state WHERE name = 'snapshot'").get()).toEqual({ n: 0 });
    expect(check.prepare('SELECT count(*) AS n FROM snapshot').get()).toEqual({ n: 1 });
    check.close();
    const moved = await open();
    const st = await moved.load();
    expect([st.snapshot, st.entries.length]).toEqual([snapshotAt(3, 1), 0]);
    await moved.close();
  });
});
