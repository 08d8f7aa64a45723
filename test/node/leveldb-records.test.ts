// The leveldb engine's records as DiskRecords (leveldb-records.ts), on a real database: get,
// walkFrom and changedSince against a reference map after random batches and inline installs
// (each flipping the live generation), and after a reopen; views isolated from later saves;
// a save visible once it resolves; walks stopped early, broken by a throw or nested in a visit
// (each its own iterator in the reader thread); a damaged record caught when it is read; and a
// data dir of the untiered layout (K<key>) moved to the tiered one at open.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { LevelDbEngine } from '../../node-runtime/storage/leveldb-engine.ts';
import type { LevelDbRecords } from '../../node-runtime/storage/leveldb-records.ts';
import { P_OLD_KEY, P_RECORD, P_STATE, modKey, prefixRange, recordKey, strKey } from '../../node-runtime/storage/leveldb-layout.ts';
import { seal, unseal, readRecordSummary, writeKeyRecord } from '../../node-runtime/storage/records.ts';
import type { Logger, LogFields } from '../../node-runtime/log.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import { summarize } from '../../worker/kv/record-summary.ts';
import type { DiskRecords } from '../../worker/kv/record-store.ts';
import type { KeyRecord } from '../../worker/kv/types.ts';
import { KEY_POOL, diskDifference, rec } from '../support/disk-check.ts';
import { randomRun, sharedDiskCases, walkAll } from '../support/engine-records.ts';
import { ABC_AT_1, changes } from '../support/kv-changes.ts';
import { snapshotAt, stagedInstall } from '../support/storage-batches.ts';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'metcd-leveldb-records-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The engine with its key filter built at once (keyFilterDelayMs 0), so every case reads
 *  through it as well. */
async function openDisk(log: Logger = silentLogger, keyFilterDelayMs = 0): Promise<{ engine: LevelDbEngine; disk: DiskRecords }> {
  const engine = await LevelDbEngine.open({ dir, log, keyFilterDelayMs });
  const loaded = await engine.load();
  expect(loaded.kv.records).toEqual([]); // the records stay on disk
  return { engine, disk: loaded.tier!.disk };
}

/** A handle of the test's own on the engine's database (multithreading, as the engine's). */
async function rawDb(): Promise<ClassicLevel<Buffer, Buffer>> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', multithreading: true });
  await db.open({ createIfMissing: true });
  return db;
}

describe('leveldb records (DiskRecords)', () => {
  it('get, walkFrom and changedSince match a reference map after random batches and installs, and after a reopen', async () => {
    const { engine, disk } = await openDisk();
    const ref = new Map<string, KeyRecord>();
    const revision = await randomRun(engine, disk, ref, 7, 150);
    expect(ref.size).toBeGreaterThan(0);
    // The read off the loop (a client read's prefetch) agrees with get.
    for (const k of KEY_POOL) expect(await disk.getAsync!(k), k).toEqual(ref.get(k));
    await engine.close();
    const again = await openDisk();
    expect(diskDifference(again.disk, ref, revision)).toBeNull();
    // Go on from the reopened state: the index entries it holds are the ones later saves drop.
    const more = await randomRun(again.engine, again.disk, ref, 11, 60);
    expect(more).toBeGreaterThan(0);
    await again.engine.close();
  });

  it('the same, with each batch saying what it replaces (KvChanges.replaced) instead of the engine reading it', async () => {
    const { engine, disk } = await openDisk();
    const ref = new Map<string, KeyRecord>();
    await randomRun(engine, disk, ref, 17, 150, { replaced: true });
    await engine.close();
  });

  it('(the checker sees a wrong KvChanges.replaced: the index entry it should have dropped stays)', async () => {
    const { engine, disk } = await openDisk();
    await engine.save({ kv: ABC_AT_1 });
    await engine.save({ kv: { ...changes(2, [['a', rec('a2', 2, 1, 2)]]), replaced: [['a', 7]] } });
    const ref = new Map<string, KeyRecord>([
      ['a', rec('a2', 2, 1, 2)],
      ['b', rec('b1', 1)],
      ['c', rec('c1', 1)],
    ]);
    expect(diskDifference(disk, ref, 2)).toMatch(/^changedSince/);
    await engine.close();
  });

  it('the checker catches an index entry a save left behind (planted: an upsert that keeps the old one)', async () => {
    const { engine, disk } = await openDisk();
    await engine.save({ kv: ABC_AT_1 });
    await engine.save({ kv: changes(2, [['a', rec('a2', 2, 1, 2)]]) });
    const ref = new Map<string, KeyRecord>([
      ['a', rec('a2', 2, 1, 2)],
      ['b', rec('b1', 1)],
      ['c', rec('c1', 1)],
    ]);
    expect(diskDifference(disk, ref, 2)).toBeNull();
    await engine.close();
    // What a save that forgot the old index entry would have left: a@1 beside a@2.
    const db = await rawDb();
    await db.put(modKey(0, 1, 'a'), Buffer.alloc(0));
    await db.close();
    const again = await openDisk();
    expect(diskDifference(again.disk, ref, 2)).toMatch(/^changedSince/);
    await again.engine.close();
  });

  it('a view keeps reading its generation while an install flips it and the old one is cleared', async () => {
    const { engine, disk } = await openDisk();
    await engine.save({ kv: ABC_AT_1 });
    const view = disk.openView();
    await engine.save({
      installSnapshot: { snapshot: snapshotAt(5, 1), kv: { revision: 9, records: [['z', rec('z9', 9)]], sessions: [] } },
    });
    await engine.cleared();
    expect(walkAll(view)).toEqual(['a=a1', 'b=b1', 'c=c1']);
    expect(view.get('b')?.value).toBe('b1');
    const changed: string[] = [];
    view.changedSince(1, (k, mod) => changed.push(`${k}@${mod}`) > 0);
    expect(changed).toEqual(['a@1', 'b@1', 'c@1']);
    expect(walkAll(disk)).toEqual(['z=z9']);
    await engine.close(); // closes the view left open
    expect(() => view.get('a')).toThrow();
  });

  sharedDiskCases(openDisk, {
    damage: async (key) => {
      const db = await rawDb();
      const value = Buffer.from((await db.get(recordKey(0, key)))!);
      value[value.length - 3]! ^= 0x20;
      await db.put(recordKey(0, key), value);
      await db.close();
    },
    damaged: (key) => [`leveldb record ${JSON.stringify(key)}`, 'checksum mismatch'],
  });

  it('long walks cross many pages of the reader thread: every record once, in order', async () => {
    const { engine, disk } = await openDisk();
    // 3,000 records: pages grow from 8 to their largest (512).
    const many = Array.from({ length: 3000 }, (_, i): [string, KeyRecord] => [
      `m/${String(i).padStart(5, '0')}`,
      rec(`v${i}`, 10 + (i % 7)),
    ]);
    await engine.save({ kv: changes(20, many) });
    const keys: string[] = [];
    disk.walkFrom('m/', (k) => keys.push(k) > 0);
    expect(keys).toEqual(many.map(([k]) => k));
    const since: string[] = [];
    disk.changedSince(15, (k, mod) => since.push(`${mod} ${k}`) > 0);
    const want = many.filter(([, r]) => r.modRevision >= 15).map(([k, r]) => `${r.modRevision} ${k}`);
    expect(since).toEqual(want.sort());
    await engine.close();
  });

  it('walks of large records return them all (LevelDB hands fewer than a page asks once a MiB is read)', async () => {
    const { engine, disk } = await openDisk();
    // 600 records of 8 KiB: a page of 512 holds 4 MiB, over the reader's 1 MiB read-ahead.
    const big = Array.from({ length: 600 }, (_, i): [string, KeyRecord] => [`big/${String(i).padStart(4, '0')}`, rec('x'.repeat(8192), 3)]);
    await engine.save({ kv: changes(3, big) });
    const keys: string[] = [];
    disk.walkFrom('', (k) => keys.push(k) > 0);
    expect(keys).toEqual(big.map(([k]) => k));
    await engine.close();
  });

  it('the key filter: once built, reads of keys never stored skip LevelDB; stored keys are found through writes, an install and growth', async () => {
    const { engine, disk } = await openDisk();
    const records = disk as LevelDbRecords;
    const filter = records.keyFilter;
    const at = (prefix: string, n: number, mod: number) =>
      Array.from({ length: n }, (_, i): [string, KeyRecord] => [`${prefix}/${String(i).padStart(5, '0')}`, rec(`${prefix}${i}`, mod)]);
    const found = (want: Array<[string, KeyRecord]>) => want.filter(([k, r]) => disk.get(k)?.value === r.value).length;
    const skipped = (keys: string[]) => {
      const before = filter.excluded;
      for (const k of keys) expect(disk.get(k)).toBeUndefined();
      return filter.excluded - before;
    };
    const absent = Array.from({ length: 1000 }, (_, i) => `absent/${i}`);

    const first = at('a', 3000, 2);
    await engine.save({ kv: changes(2, first) });
    await filter.idle();
    expect(filter.bits).toBeGreaterThan(0);
    expect(found(first)).toBe(first.length);
    expect(skipped(absent)).toBeGreaterThan(950); // about 1% are false positives, read from LevelDB
    // Keys written after the build are in it too (the event loop adds what it stages).
    const later = at('b', 500, 3);
    await engine.save({ kv: changes(3, later) });
    expect(found(later)).toBe(later.length);
    expect(await disk.getAsync!('b/00007')).toEqual(later[7]![1]);

    // An install makes the other generation live: its filter is built anew, and until then reads
    // go to LevelDB.
    const installed = at('c', 2000, 4);
    await engine.save({ stage: { reset: true, records: installed.slice(0, 1200) } });
    await engine.save(stagedInstall(installed, { reset: false, records: installed.slice(1200) }));
    expect(found(installed)).toBe(installed.length);
    await filter.idle();
    expect(found(installed)).toBe(installed.length);
    expect(disk.get('a/00001')).toBeUndefined();
    expect(skipped(absent)).toBeGreaterThan(950);

    // Past 8 bits a key the filter grows a part (no walk of the stored keys again).
    const bitsBefore = filter.bits;
    const grown: Array<[string, KeyRecord]> = [];
    for (let b = 0; b < 10; b++) {
      const batch = at(`g${b}`, 10_000, 10 + b); // 100,000: past the first part's 87,000
      grown.push(...batch);
      await engine.save({ kv: changes(10 + b, batch) });
    }
    await filter.idle();
    expect(filter.bits).toBeGreaterThan(bitsBefore);
    expect(found(grown)).toBe(grown.length);
    expect(found(installed)).toBe(installed.length);
    expect(skipped(absent)).toBeGreaterThan(950);
    await engine.close();

    // A reopen builds it from the table alone.
    const again = await openDisk();
    await (again.disk as LevelDbRecords).keyFilter.idle();
    expect((again.disk as LevelDbRecords).keyFilter.bits).toBeGreaterThan(0);
    expect(grown.filter(([k, r]) => again.disk.get(k)?.value === r.value)).toHaveLength(grown.length);
    await again.engine.close();
  });

  it('the key filter waits after open (the start needs the CPU), then builds at the end of a write or, with none, at once', async () => {
    const busy = await openDisk(silentLogger, 300);
    const filter = (busy.disk as LevelDbRecords).keyFilter;
    await busy.engine.save({ kv: ABC_AT_1 });
    await filter.idle();
    expect(filter.bits).toBe(0); // not yet: reads go to LevelDB
    expect(busy.disk.get('nothing')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 400));
    await busy.engine.save({ kv: changes(2, [['d', rec('d2', 2)]]) });
    await filter.idle();
    expect(filter.bits).toBeGreaterThan(0);
    expect(['a', 'b', 'c', 'd'].map((k) => busy.disk.get(k)?.value)).toEqual(['a1', 'b1', 'c1', 'd2']);
    await busy.engine.close();

    const quiet = await openDisk(silentLogger, 300);
    await new Promise((r) => setTimeout(r, 400));
    await (quiet.disk as LevelDbRecords).keyFilter.idle();
    expect((quiet.disk as LevelDbRecords).keyFilter.bits).toBeGreaterThan(0);
    expect(quiet.disk.get('d')?.value).toBe('d2');
    await quiet.engine.close();
  });

  it('keys sort in JavaScript string order, not UTF-8 order', async () => {
    const { engine, disk } = await openDisk();
    const pool = KEY_POOL.filter((k) => k !== '');
    await engine.save({
      kv: changes(
        1,
        pool.map((k) => [k, rec(k, 1)]),
      ),
    });
    const keys: string[] = [];
    disk.walkFrom('', (k) => keys.push(k) > 0);
    expect(keys).toEqual([...pool].sort());
    await engine.close();
  });

  it('a data dir of the untiered layout has its records moved at open, counted, and read from disk', async () => {
    // What the untiered engine stored: K<key UTF-8> → the sealed record.
    const old = KEY_POOL.filter((k) => k !== '' && Buffer.from(k, 'utf8').toString('utf8') === k).map((k, i): [string, KeyRecord] => [
      k,
      rec(`v-${i}`, 1 + i),
    ]);
    const db = await rawDb();
    await db.batch(old.map(([k, r]) => ({ type: 'put' as const, key: strKey(P_OLD_KEY, k), value: seal((x) => writeKeyRecord(x, r)) })));
    await db.close();

    const infos: LogFields[] = [];
    const log: Logger = { ...silentLogger, info: (msg, f) => infos.push({ msg, ...f }) };
    const { engine, disk } = await openDisk(log);
    expect(infos.map((i) => i.msg)).toContain('leveldb records moved to the tiered layout');
    expect(infos.find((i) => i.msg === 'leveldb records moved to the tiered layout')?.records).toBe(old.length);
    expect((await engine.load()).tier!.summary).toEqual(summarize(old));
    expect(diskDifference(disk, new Map(old), old.length + 1)).toBeNull();
    await engine.close();

    const raw = await rawDb();
    const left = (await raw.keys(prefixRange(P_OLD_KEY)).all()).length;
    const moved = (await raw.keys(prefixRange(P_RECORD)).all()).length;
    const summary = unseal((await raw.get(strKey(P_STATE, 'summary')))!, readRecordSummary);
    await raw.close();
    expect({ left, moved, summary }).toEqual({ left: 0, moved: old.length, summary: summarize(old) });
  });

  it('the records summary is stored with each batch; a batch without one makes the next open count them', async () => {
    const { engine } = await openDisk();
    const first: Array<[string, KeyRecord]> = [
      ['a', rec('a1', 1)],
      ['\u0001token/x', rec('t', 1)],
    ];
    await engine.save({ kv: { ...changes(1, first), summary: summarize(first) } });
    await engine.close();
    const infos: LogFields[] = [];
    const log: Logger = { ...silentLogger, info: (msg, f) => infos.push({ msg, ...f }) };
    const again = await openDisk(log);
    expect((await again.engine.load()).tier!.summary).toEqual(summarize(first));
    expect(infos).toEqual([]); // read, not counted
    await again.engine.save({ kv: changes(2, [['b', rec('b2', 2)]]) }); // no summary: unknown now
    await again.engine.close();
    const third = await openDisk(log);
    const now = [...first, ['b', rec('b2', 2)] as [string, KeyRecord]];
    expect((await third.engine.load()).tier!.summary).toEqual(summarize(now));
    expect(infos.map((x) => x.msg)).toEqual(['leveldb records summary counted']);
    await third.engine.close();
  });

  it('staged records or a staged install without a reset since the open or the last install are refused', async () => {
    const { engine } = await openDisk();
    await engine.save({ kv: ABC_AT_1 });
    // After an open: the generation not live may hold an old one (cleared in the background).
    await expect(engine.save({ stage: { reset: false, records: [['s', rec('s', 2)]] } })).rejects.toThrow(/without a reset/);
    await engine.close();
    const again = await openDisk();
    await expect(again.engine.save(stagedInstall([]))).rejects.toThrow(/staged install without a reset/);
    await again.engine.close();
    const third = await openDisk();
    // A transfer, then an inline install in its midst: the transfer's staging is gone with it.
    await third.engine.save({ stage: { reset: true, records: [['s', rec('s', 2)]] } });
    await third.engine.save({
      installSnapshot: { snapshot: snapshotAt(5, 1), kv: { revision: 9, records: [['z', rec('z9', 9)]], sessions: [] } },
    });
    await expect(third.engine.save({ stage: { reset: false, records: [['t', rec('t', 3)]] } })).rejects.toThrow(/without a reset/);
    expect(walkAll(third.disk)).toEqual(['z=z9']);
    await third.engine.close();
  });
});
