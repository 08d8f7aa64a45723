// The leveldb engine's stall-free layout: snapshot blobs in their own files (not LevelDB values),
// and the log entries a compaction drops deleted a slice per later group, ignored until then.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { LevelDbEngine } from '../../node-runtime/storage/leveldb-engine.ts';
import { StorageCorruptError } from '../../node-runtime/storage/errors.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import type { Entry } from '../../worker/raft/types.ts';
import { entry, snapshotAt } from './storage-batches.ts';

const STALE_DELETES_PER_GROUP = 512; // leveldb-engine.ts

describe('leveldb engine', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'metcd-leveldb-engine-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Log keys (prefix L) stored, read with LevelDB itself while the engine is closed. */
  async function storedLogKeys(): Promise<number> {
    const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    let n = 0;
    for await (const _ of db.keys({ gte: Buffer.from('L'), lt: Buffer.from('M') })) n++;
    await db.close();
    return n;
  }

  const entries = (from: number, to: number): Entry[] => Array.from({ length: to - from + 1 }, (_, k) => entry(from + k, 1));

  it('deletes compacted entries over later groups, and ignores the ones left until then', async () => {
    let s = await LevelDbEngine.open({ dir, log: silentLogger });
    await s.load();
    await s.save({ entries: entries(1, 2000), hardState: { term: 1, vote: '', commit: 2000 }, applied: 2000 });
    await s.save({ compact: { ...snapshotAt(1500, 1), data: new Uint8Array(50_000).fill(9) } });
    await s.close();
    // The compaction's own group deleted one slice; the rest are still stored.
    expect(await storedLogKeys()).toBe(2000 - STALE_DELETES_PER_GROUP);

    s = await LevelDbEngine.open({ dir, log: silentLogger });
    const st = await s.load();
    expect(st.snapshot.meta.index).toBe(1500);
    expect(st.snapshot.data).toEqual(new Uint8Array(50_000).fill(9));
    expect(st.entries.map((e) => e.index)).toEqual(entries(1501, 2000).map((e) => e.index));
    for (let i = 2001; i <= 2003; i++) await s.save({ entries: [entry(i, 1)] });
    await s.close();
    expect(await storedLogKeys()).toBe(503);

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
    await s.save({ entries: entries(1, 1500), applied: 1500 });
    await s.save({ compact: snapshotAt(1400, 1) });
    // Stale now: 513..1400 (one slice went with the compaction). Installing at 1300 replaces the
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
    await s.save({ entries: entries(1, 20), applied: 20 });
    await s.save({ compact: { ...snapshotAt(10, 1), data: new Uint8Array(8000).fill(1) } });
    await s.save({ compact: { ...snapshotAt(15, 1), data: new Uint8Array(8000).fill(2) } });
    await s.close();
    const snaps = readdirSync(dir).filter((n) => n.startsWith('metcd-snap-'));
    expect(snaps).toHaveLength(1); // the first one was removed once the second was stored
    const file = path.join(dir, snaps[0]!);
    const buf = readFileSync(file);
    buf[4000] = buf[4000]! ^ 0x5a;
    writeFileSync(file, buf);
    const damaged = await LevelDbEngine.open({ dir, log: silentLogger }).then(() => undefined, (e: unknown) => e);
    expect(damaged).toBeInstanceOf(StorageCorruptError);
    expect((damaged as StorageCorruptError).file).toBe(file);
    unlinkSync(file);
    await expect(LevelDbEngine.open({ dir, log: silentLogger })).rejects.toBeInstanceOf(StorageCorruptError);
  });
});
