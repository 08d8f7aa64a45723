// The memory engine's stall-free layout: snapshot blobs in their own files, and the log rewrite
// whose image is written in the background (a crash before that image is durable recovers from
// the previous image and the chain of logs after it).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MemoryEngine } from '../../node-runtime/storage/memory-engine.ts';
import { type RecordsCapture, StateModel } from '../../node-runtime/storage/state-model.ts';
import { SeededRandom } from '../../worker/raft/random.ts';
import { StorageCorruptError } from '../../node-runtime/storage/errors.ts';
import { silentLogger } from '../../node-runtime/log.ts';
import type { SaveBatch } from '../../worker/peer/ports.ts';
import type { KeyRecord } from '../../worker/kv/types.ts';
import { BatchStream, entry, normalized, snapshotAt } from '../support/storage-batches.ts';

const rec = (value: string, rev: number): KeyRecord => ({ value, createRevision: rev, modRevision: rev, version: 1 });

/** Batch i: entry i, key k<i>, applied i; `compact` adds a snapshot of `blobBytes` bytes. */
function batch(i: number, compactAt?: number, blobBytes = 0): SaveBatch {
  const b: SaveBatch = {
    entries: [entry(i, 1)],
    hardState: { term: 1, vote: 'n1', commit: i },
    kv: { revision: i, upserts: [[`k${i}`, rec(`v${i}`, i)]], deletes: [], sessionUpserts: [], sessionDeletes: [] },
    applied: i,
  };
  if (compactAt !== undefined) b.compact = { ...snapshotAt(compactAt, 1), data: new Uint8Array(blobBytes).fill(compactAt % 251) };
  return b;
}

describe('memory engine', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'metcd-memory-engine-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const files = (re: RegExp) =>
    readdirSync(dir)
      .filter((n) => re.test(n))
      .sort();

  it('keeps snapshot blobs in their own files, out of the log, and only the latest one', async () => {
    const s = await MemoryEngine.open({ dir, log: silentLogger });
    await s.load();
    for (let i = 1; i <= 10; i++) await s.save(batch(i, i === 4 || i === 8 ? i - 1 : undefined, 200_000));
    await s.close();
    expect(files(/^snap-/)).toHaveLength(1);
    // The log holds ten small groups, not two 200 kB blobs.
    expect(statSync(path.join(dir, files(/^wal-/)[0]!)).size).toBeLessThan(20_000);
    const again = await MemoryEngine.open({ dir, log: silentLogger });
    const st = await again.load();
    await again.close();
    expect(st.snapshot.meta.index).toBe(7);
    expect(st.snapshot.data).toEqual(new Uint8Array(200_000).fill(7));
    expect(st.entries.map((e) => e.index)).toEqual([8, 9, 10]);
  });

  it('refuses to start when the snapshot file is damaged or missing', async () => {
    const s = await MemoryEngine.open({ dir, log: silentLogger });
    await s.load();
    for (let i = 1; i <= 5; i++) await s.save(batch(i, i === 5 ? 3 : undefined, 5000));
    await s.close();
    const snap = path.join(dir, files(/^snap-/)[0]!);
    const buf = readFileSync(snap);
    buf[100] = buf[100]! ^ 0x5a;
    writeFileSync(snap, buf);
    const damaged = await MemoryEngine.open({ dir, log: silentLogger }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(damaged).toBeInstanceOf(StorageCorruptError);
    expect((damaged as StorageCorruptError).file).toBe(snap);
    unlinkSync(snap);
    const missing = await MemoryEngine.open({ dir, log: silentLogger }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(missing).toBeInstanceOf(StorageCorruptError);
    expect((missing as Error).message).toContain('missing');
  });

  it('a crash before the background image is durable recovers from the older image and both logs', async () => {
    const stream = new BatchStream(11);
    // A tiny threshold: the first group over it switches logs and starts an image; closing at
    // once abandons that image, which is what a crash before its rename leaves on disk.
    let s = await MemoryEngine.open({ dir, log: silentLogger, rewriteMinBytes: 4096 });
    await s.load();
    let saved = 0;
    while (files(/^wal-/).length < 2) {
      await s.save(stream.next());
      saved++;
      expect(saved).toBeLessThan(2000);
    }
    await s.close();
    expect(files(/^image-/)).toEqual([]); // the image was abandoned
    expect(files(/^wal-/)).toEqual(['wal-000000000000.log', 'wal-000000000001.log']);
    const stateAtCrash = normalized(stream.model.toLoaded());

    // Recovery: image (none) + wal-0 + wal-1; later writes continue in wal-1.
    s = await MemoryEngine.open({ dir, log: silentLogger });
    expect(normalized(await s.load())).toEqual(stateAtCrash);
    for (let i = 0; i < 20; i++) await s.save(stream.next());
    await s.close();
    s = await MemoryEngine.open({ dir, log: silentLogger });
    expect(normalized(await s.load())).toEqual(normalized(stream.model.toLoaded()));
    await s.close();

    // A record of the older log that fails its checksum is not a torn tail: a newer log follows.
    const older = path.join(dir, 'wal-000000000000.log');
    truncateSync(older, statSync(older).size - 3);
    const err = await MemoryEngine.open({ dir, log: silentLogger }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageCorruptError);
    expect((err as StorageCorruptError).file).toBe(older);
  });

  it('finishes background images while writes continue, then drops the older generation', async () => {
    const stream = new BatchStream(12);
    const s = await MemoryEngine.open({ dir, log: silentLogger, rewriteMinBytes: 8192 });
    await s.load();
    for (let i = 0; i < 400; i++) await s.save(stream.next());
    await s.close();
    const images = files(/^image-/);
    expect(images.length).toBe(1);
    // Only the generation of the newest image (and logs after it) remain.
    const base = Number(/\d+/.exec(images[0]!)![0]);
    expect(base).toBeGreaterThan(1);
    for (const w of files(/^wal-/)) expect(Number(/\d+/.exec(w)![0])).toBeGreaterThanOrEqual(base);
    const again = await MemoryEngine.open({ dir, log: silentLogger });
    expect(normalized(await again.load())).toEqual(normalized(stream.model.toLoaded()));
    await again.close();
  });
});

describe('RecordsCapture', () => {
  /** Everything a capture returns, read into a map (as an image load does), checking that a key
   *  returned twice comes with the same record both times. */
  function drain(cap: RecordsCapture, slice: number, between: () => void = () => {}): Map<string, KeyRecord> {
    const out = new Map<string, KeyRecord>();
    while (!cap.done) {
      for (const [k, v] of cap.next(slice)) {
        if (out.has(k)) expect(v).toEqual(out.get(k));
        out.set(k, v);
      }
      between();
    }
    cap.close();
    return out;
  }

  it('reads the records as they were when captured while batches keep applying', () => {
    const m = new StateModel();
    m.apply({
      kv: {
        revision: 3,
        upserts: [
          ['a', rec('a1', 1)],
          ['b', rec('b1', 2)],
          ['c', rec('c1', 3)],
        ],
        deletes: [],
        sessionUpserts: [],
        sessionDeletes: [],
      },
    });
    const cap = m.captureRecords();
    expect(cap.next(1)).toEqual([['a', rec('a1', 1)]]);
    m.apply({
      kv: {
        revision: 5,
        upserts: [
          ['b', rec('b2', 4)],
          ['d', rec('d1', 5)],
          ['a', rec('a2', 5)],
        ],
        deletes: ['c'],
        sessionUpserts: [],
        sessionDeletes: [],
      },
    });
    expect(drain(cap, 10)).toEqual(
      new Map([
        ['a', rec('a1', 1)],
        ['b', rec('b1', 2)],
        ['c', rec('c1', 3)],
      ]),
    );
    expect([...m.records.keys()].sort()).toEqual(['a', 'b', 'd']);
  });

  it('gives exactly the captured state under random upserts, deletes and re-inserts between slices', () => {
    const rnd = new SeededRandom(5);
    for (let round = 0; round < 20; round++) {
      const m = new StateModel();
      let rev = 0;
      const change = (n: number) => {
        const upserts: Array<[string, KeyRecord]> = [];
        const deletes: string[] = [];
        for (let i = 0; i < n; i++) {
          const key = `k${rnd.nextInt(60)}`;
          if (rnd.nextInt(3) === 0) deletes.push(key);
          else upserts.push([key, rec(`${key}@${++rev}`, rev)]);
        }
        m.apply({
          kv: {
            revision: ++rev,
            upserts,
            deletes: deletes.filter((d) => !upserts.some(([k]) => k === d)),
            sessionUpserts: [],
            sessionDeletes: [],
          },
        });
      };
      change(80);
      const expected = new Map(m.records);
      const cap = m.captureRecords();
      expect(drain(cap, 1 + rnd.nextInt(7), () => change(rnd.nextInt(12)))).toEqual(expected);
    }
  });

  it('is not disturbed by a snapshot install that replaces the whole map', () => {
    const m = new StateModel();
    m.apply({ kv: { revision: 1, upserts: [['a', rec('a1', 1)]], deletes: [], sessionUpserts: [], sessionDeletes: [] } });
    const cap = m.captureRecords();
    m.setKv({ revision: 9, records: [['z', rec('z9', 9)]], sessions: [] });
    m.apply({ kv: { revision: 10, upserts: [['a', rec('a10', 10)]], deletes: [], sessionUpserts: [], sessionDeletes: [] } });
    expect(drain(cap, 10)).toEqual(new Map([['a', rec('a1', 1)]]));
  });
});
