// The leveldb engine's stall-free layout: snapshot blobs in their own files (not LevelDB values),
// a batch's entries stored as one segment, and the segments a compaction drops deleted a slice
// per later group, ignored until then.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { LevelDbEngine } from '../../node-runtime/storage/leveldb-engine.ts';
import { StorageCorruptError } from '../../node-runtime/storage/errors.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import { seal, writeEntry, writeSnapshot } from '../../node-runtime/storage/records.ts';
import type { Entry } from '../../worker/raft/types.ts';
import { entry, snapshotAt } from '../support/storage-batches.ts';

const STALE_DELETES_PER_GROUP = 64; // leveldb-engine.ts

describe('leveldb engine', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'metcd-leveldb-engine-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Log keys (segments G, single entries L) stored, read with LevelDB while the engine is closed. */
  async function storedLogKeys(): Promise<number> {
    const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    let n = 0;
    for await (const key of db.keys()) if (key[0] === 0x47 || key[0] === 0x4c) n++;
    await db.close();
    return n;
  }

  const entries = (from: number, to: number): Entry[] => Array.from({ length: to - from + 1 }, (_, k) => entry(from + k, 1));

  /** Appends from..to in batches of 10 entries (one segment each). */
  async function append(s: LevelDbEngine, from: number, to: number): Promise<void> {
    for (let i = from; i <= to; i += 10) await s.save({ entries: entries(i, Math.min(to, i + 9)) });
  }

  it('stores each batch of entries as one key, and rewrites a conflicting tail inside one', async () => {
    let s = await LevelDbEngine.open({ dir, log: silentLogger });
    await s.load();
    await append(s, 1, 100);
    // A new leader's entries replace 55.. : the segment 51..60 keeps 51..54, later ones go.
    await s.save({ entries: [entry(55, 2), entry(56, 2)] });
    // Two conflicting batches in one group: the second cuts into the segment the first wrote.
    await Promise.all([s.save({ entries: [entry(57, 3), entry(58, 3), entry(59, 3)] }), s.save({ entries: [entry(58, 4)] })]);
    await s.close();
    expect(await storedLogKeys()).toBe(5 + 1 + 1 + 1 + 1);
    s = await LevelDbEngine.open({ dir, log: silentLogger });
    const st = await s.load();
    await s.close();
    expect(st.entries.map((e) => `${e.index}:${e.term}`)).toEqual([
      ...entries(1, 54).map((e) => `${e.index}:1`),
      '55:2',
      '56:2',
      '57:3',
      '58:4',
    ]);
  });

  it('reads the one-key-per-entry log and inline snapshot of older data dirs, and replaces them', async () => {
    const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    const legacyKey = (i: number) => Buffer.concat([Buffer.from('L'), Buffer.from([0, 0, 0, 0, 0, 0, 0, i])]);
    for (let i = 3; i <= 8; i++)
      await db.put(
        legacyKey(i),
        seal((x) => writeEntry(x, entry(i, 1))),
      );
    await db.put(
      Buffer.from('Ssnapshot'),
      seal((x) => writeSnapshot(x, snapshotAt(2, 1, 'old-inline'))),
    );
    await db.close();

    let s = await LevelDbEngine.open({ dir, log: silentLogger });
    const st = await s.load();
    expect(new TextDecoder().decode(st.snapshot.data)).toBe('old-inline');
    expect(st.entries.map((e) => e.index)).toEqual([3, 4, 5, 6, 7, 8]);
    await s.save({ entries: [entry(7, 2), entry(8, 2), entry(9, 2)], applied: 6 }); // cuts into the old keys
    await s.save({ compact: { ...snapshotAt(6, 1), data: new Uint8Array(100).fill(6) } });
    await s.save({ entries: [entry(10, 2)] });
    await s.close();
    expect(await storedLogKeys()).toBe(2); // the old keys 3..6 were compacted, 7..8 replaced
    s = await LevelDbEngine.open({ dir, log: silentLogger });
    const st2 = await s.load();
    await s.close();
    expect(st2.snapshot.data).toEqual(new Uint8Array(100).fill(6));
    expect(st2.entries.map((e) => `${e.index}:${e.term}`)).toEqual(['7:2', '8:2', '9:2', '10:2']);
  });

  it('deletes compacted entries over later groups, and ignores the ones left until then', async () => {
    let s = await LevelDbEngine.open({ dir, log: silentLogger });
    await s.load();
    await append(s, 1, 2000); // 200 segments
    await s.save({ hardState: { term: 1, vote: '', commit: 2000 }, applied: 2000 });
    await s.save({ compact: { ...snapshotAt(1500, 1), data: new Uint8Array(50_000).fill(9) } });
    await s.close();
    // The compaction's own group deleted one slice of the 150 dropped segments; the rest remain.
    expect(await storedLogKeys()).toBe(200 - STALE_DELETES_PER_GROUP);

    s = await LevelDbEngine.open({ dir, log: silentLogger });
    const st = await s.load();
    expect(st.snapshot.meta.index).toBe(1500);
    expect(st.snapshot.data).toEqual(new Uint8Array(50_000).fill(9));
    expect(st.entries.map((e) => e.index)).toEqual(entries(1501, 2000).map((e) => e.index));
    for (let i = 2001; i <= 2003; i++) await s.save({ entries: [entry(i, 1)] });
    await s.close();
    expect(await storedLogKeys()).toBe(50 + 3); // 86 stale segments went in two groups

    // A second compaction while nothing is stale any more, then a reopen: still exact.
    s = await LevelDbEngine.open({ dir, log: silentLogger });
    await s.load();
    await s.save({ compact: snapshotAt(1990, 1), applied: 2003 });
    await s.close();
    s = await LevelDbEngine.open({ dir, log: silentLogger });
    const st2 = await s.load();
    await s.close();
    expect(st2.snapshot.meta.index).toBe(1990);
    expect(st2.entries.map((e) => e.index)).toEqual(entries(1991, 2003).map((e) => e.index));
  });

  it('an installed snapshot below entries still awaiting deletion does not revive them', async () => {
    const s = await LevelDbEngine.open({ dir, log: silentLogger });
    await s.load();
    await append(s, 1, 1500);
    await s.save({ applied: 1500 });
    await s.save({ compact: snapshotAt(1400, 1) });
    // Stale now: 641..1400 (one slice went with the compaction). Installing at 1300 replaces the
    // whole log, so 1301..1400 must go at once: above the new snapshot they would look live.
    await s.save({ installSnapshot: { snapshot: snapshotAt(1300, 2, 'installed'), kv: { revision: 7, records: [], sessions: [] } } });
    await s.save({ entries: [entry(1301, 2)] });
    await s.close();
    const again = await LevelDbEngine.open({ dir, log: silentLogger });
    const st = await again.load();
    await again.close();
    expect(st.snapshot.meta.index).toBe(1300);
    expect(new TextDecoder().decode(st.snapshot.data)).toBe('installed');
    expect(st.entries.map((e) => e.index)).toEqual([1301]);
    expect(st.applied).toBe(1300);
  });

  it('keeps the snapshot blob in its own file; damaged or missing, it refuses to start', async () => {
    const s = await LevelDbEngine.open({ dir, log: silentLogger });
    await s.load();
    await append(s, 1, 20);
    await s.save({ applied: 20 });
    await s.save({ compact: { ...snapshotAt(10, 1), data: new Uint8Array(8000).fill(1) } });
    await s.save({ compact: { ...snapshotAt(15, 1), data: new Uint8Array(8000).fill(2) } });
    await s.close();
    const snaps = readdirSync(dir).filter((n) => n.startsWith('metcd-snap-'));
    expect(snaps).toHaveLength(1); // the first one was removed once the second was stored
    const file = path.join(dir, snaps[0]!);
    const buf = readFileSync(file);
    buf[4000] = buf[4000]! ^ 0x5a;
    writeFileSync(file, buf);
    const damaged = await LevelDbEngine.open({ dir, log: silentLogger }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(damaged).toBeInstanceOf(StorageCorruptError);
    expect((damaged as StorageCorruptError).file).toBe(file);
    unlinkSync(file);
    await expect(LevelDbEngine.open({ dir, log: silentLogger })).rejects.toBeInstanceOf(StorageCorruptError);
  });
});
