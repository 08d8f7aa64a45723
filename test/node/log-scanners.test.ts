// The pre-open checks of SQLite's and LevelDB's write-ahead logs, on logs those libraries
// really wrote: clean logs pass, leftovers of an older SQLite WAL generation are not mistaken
// for a torn tail, a write torn anywhere inside (even in its middle fragments) is a torn tail,
// and damage followed by a later write is corruption.

import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ClassicLevel } from 'classic-level';
import { scanSqliteWal } from '../../node-runtime/storage/sqlite-wal-scan.ts';
import { scanLevelLog } from '../../node-runtime/storage/leveldb-log-scan.ts';
import { StorageCorruptError } from '../../node-runtime/storage/errors.ts';

const root = mkdtempSync(path.join(tmpdir(), 'metcd-scan-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const flip = (buf: Buffer, at: number): Buffer => {
  const out = Buffer.from(buf);
  out[at] = out[at]! ^ 0xff;
  return out;
};

describe('SQLite WAL scan', () => {
  const file = path.join(root, 'wal.db');
  const db = new DatabaseSync(file);
  db.exec(
    'PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB);',
  );
  const insert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
  let k = 0;
  const txns = (n: number) => {
    for (let i = 0; i < n; i++) insert.run(++k, Buffer.alloc(3000, k));
  };
  const wal = () => readFileSync(`${file}-wal`);
  afterAll(() => db.close());

  it('counts committed transactions of a clean WAL and finds no tail', () => {
    txns(5);
    const scan = scanSqliteWal('w', wal());
    expect(scan.commits).toBe(6); // the CREATE TABLE and five inserts
    expect(scan.tornBytes).toBe(0);
    expect(scan.validBytes).toBe(wal().length);
  });

  it('ignores frames an older WAL generation left behind', () => {
    db.exec('PRAGMA wal_checkpoint(PASSIVE)');
    txns(1); // restarts the WAL from its start with new salts; old frames stay after it
    const buf = wal();
    const scan = scanSqliteWal('w', buf);
    expect(scan.commits).toBe(1);
    expect(scan.validBytes).toBeLessThan(buf.length);
    expect(scan.tornBytes).toBe(0);
  });

  it('calls a damaged last transaction a torn tail, and a damaged earlier one corruption', () => {
    txns(2);
    const buf = wal();
    const scan = scanSqliteWal('w', buf);
    expect(scan.commits).toBe(3);
    const pageBytes = buf.readUInt32BE(8);
    const frameBytes = 24 + pageBytes;
    // Cut inside the last transaction's last frame: torn.
    const torn = scanSqliteWal('w', buf.subarray(0, scan.validBytes - 100));
    expect(torn.commits).toBe(2);
    expect(torn.tornBytes).toBeGreaterThan(0);
    // Damage the first frame's page: later transactions of this generation committed after it.
    expect(() => scanSqliteWal('w', flip(buf, 32 + 24 + 10))).toThrow(StorageCorruptError);
    // Damage only the last transaction's frames: still a torn tail.
    const lastFrame = scan.validBytes - frameBytes;
    const tornLast = scanSqliteWal('w', flip(buf, lastFrame + 24 + 10));
    expect(tornLast.commits).toBe(2);
    expect(tornLast.tornBytes).toBeGreaterThan(0);
  });
});

describe('LevelDB log scan', () => {
  const dir = path.join(root, 'level');
  const logOf = () => {
    const name = readdirSync(dir)
      .filter((n) => /^\d+\.log$/.test(n))
      .sort()
      .pop()!;
    return readFileSync(path.join(dir, name));
  };

  it('reads whole writes, including ones fragmented across 32 KiB blocks', async () => {
    const db = new ClassicLevel<string, Buffer>(dir, { valueEncoding: 'buffer' });
    await db.open();
    await db.put('small', Buffer.from('v'), { sync: true });
    await db.put('big', Buffer.alloc(100_000, 7), { sync: true }); // FIRST, MIDDLE…, LAST
    await db.put('after', Buffer.from('w'), { sync: true });
    const buf = logOf();
    await db.close();
    const scan = scanLevelLog('l', buf);
    expect(scan).toEqual({ validBytes: buf.length, tornBytes: 0, writes: 3 });

    // Torn inside the big write's middle fragments, with the last write not yet written.
    const torn = scanLevelLog('l', buf.subarray(0, 50_000));
    expect(torn.writes).toBe(1);
    expect(torn.tornBytes).toBe(50_000 - torn.validBytes);
    // Damage in the big write's middle, with a later write after it: corruption.
    expect(() => scanLevelLog('l', flip(buf, 40_000))).toThrow(StorageCorruptError);
    // Damage in the first write, later ones intact: corruption, naming the offset.
    try {
      scanLevelLog('l', flip(buf, 9));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(StorageCorruptError);
      expect((err as StorageCorruptError).offset).toBe(0);
    }
    // Damage only in the last write: torn tail.
    const last = scanLevelLog('l', flip(buf, buf.length - 1));
    expect(last.writes).toBe(2);
    expect(last.tornBytes).toBeGreaterThan(0);
  });
});
